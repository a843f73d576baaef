#!/bin/bash
# A whole transfer between two wingxfer nodes behind real web servers with
# TLS, started by the panel emulator: lighttpd -> Apache and Apache ->
# lighttpd.  The tree arrives byte for byte (symlinks, empty dirs, modes,
# mtimes, UTF-8 and long names), only the destination reports success, and
# the source's TLS verification is real (a wrong CA fails the transfer).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root to run Apache/lighttpd as www-data"
wx_tmpdir
webstack_ca || { echo "not ok 1 - test CA"; echo 1..1; exit 1; }
PANEL_TLS=1 panel_start
PANEL_TLS=1
TREES="$top_srcdir/tests/lib/trees.py"

transfer_between() { # transfer_between SRC-WEB DST-WEB
	local sw=$1 dw=$2 src="s-$1" dst="d-$2" u
	u=$(python3 -c 'import uuid; print(uuid.uuid4())')
	node_setup "$src"
	node_setup "$dst"
	node_start "$src" "$sw" || return 1
	node_start "$dst" "$dw" || return 1
	panel_node "$src" "id-$src" "token-$src" "${NODE_URL[$src]}"
	panel_node "$dst" "id-$dst" "token-$dst" "${NODE_URL[$dst]}"
	python3 "$TREES" make "$WX_TEST_TMP/$src/data/$u" --files 400 --big-mib 12 >/dev/null
	panel_server "$u" 0
	local answer
	answer=$(panel_api POST /_emulator/transfers "{\"server\":\"$u\",\"source\":\"$src\",\"destination\":\"$dst\"}")
	is "$(json_get "$answer" '["source_status"]')" 202 "$sw -> $dw: the source node answers the panel 202 over TLS"
	local sstate="$WX_TEST_TMP/$src/state"
	ok "$sw -> $dw: the source's worker finishes" wait_worker "$sstate" "$u" 300
	is "$(rec "$sstate" "$u" '["status"]')" completed "$sw -> $dw: the source says completed"
	is "$(rec "$sstate" "$u" '["error"]')" null "$sw -> $dw: ... without an error"
	local dj
	dj=$(https_curl -H "Authorization: Bearer token-$dst" "${NODE_URL[$dst]}/api/transfers/$u")
	is "$(json_get "$dj" '["state"]')" completed "$sw -> $dw: the destination says completed"
	is "$(python3 "$TREES" manifest "$WX_TEST_TMP/$dst/data/$u" 2>&1)" \
		"$(python3 "$TREES" manifest "$WX_TEST_TMP/$src/data/$u")" \
		"$sw -> $dw: the tree arrived byte for byte (symlinks, empty dirs, modes, mtimes, names)"
	local t
	t=$(panel_api GET "/_emulator/transfers/$u")
	is "$(json_get "$t" '["state"]')" completed "$sw -> $dw: the panel's transfer is completed"
	is "$(printf '%s' "$t" | python3 -c 'import json, sys
print(" ".join(c["kind"] + "@" + c["node"] for c in json.load(sys.stdin)["callbacks"]))')" \
		"success@$dst" "$sw -> $dw: one callback, success, from the destination only"
	ok "$sw -> $dw: the source keeps its copy until the panel deletes it" \
		test -f "$WX_TEST_TMP/$src/data/$u/libraries/net/minecraftforge/unix_args.txt"
	like "$(events "$sstate" "$u")" 'Uploading \[|Finished streaming archive to destination' \
		"$sw -> $dw: the source's events in Wings' words"
	node_stop "$src"
	node_stop "$dst"
}
transfer_between lighttpd apache
transfer_between apache lighttpd

# --- TLS is verified: a source trusting another CA refuses the destination ---
node_setup s-tls "    stall_timeout: 10"
node_setup d-tls
sed -i "s|ca_file: .*|ca_file: $WX_TEST_TMP/ca/other-ca.pem|" "$WX_TEST_TMP/s-tls/config.yml"
node_start s-tls lighttpd
node_start d-tls apache
panel_node s-tls id-s-tls token-s-tls "${NODE_URL[s-tls]}"
panel_node d-tls id-d-tls token-d-tls "${NODE_URL[d-tls]}"
U=$(python3 -c 'import uuid; print(uuid.uuid4())')
mkdir -p "$WX_TEST_TMP/s-tls/data/$U"
echo data > "$WX_TEST_TMP/s-tls/data/$U/file"
panel_server "$U" 0
answer=$(panel_api POST /_emulator/transfers "{\"server\":\"$U\",\"source\":\"s-tls\",\"destination\":\"d-tls\"}")
is "$(json_get "$answer" '["source_status"]')" 202 "wrong CA: the transfer starts (202)"
ok "wrong CA: the worker ends" wait_worker "$WX_TEST_TMP/s-tls/state" "$U" 120
is "$(rec "$WX_TEST_TMP/s-tls/state" "$U" '["status"]')" failed "wrong CA: the transfer fails"
like "$(rec "$WX_TEST_TMP/s-tls/state" "$U" '["error"]')" 'SSL certificate|certificate verify' \
	"wrong CA: the record says the certificate could not be verified"
ok "wrong CA: nothing arrived at the destination" test ! -e "$WX_TEST_TMP/d-tls/data/$U"
# The same CA also guards the panel: the failure report waits in the outbox.
is "$(rec "$WX_TEST_TMP/s-tls/state" "$U" '["extra"]["callback_result"]["result"]')" queued \
	"wrong CA: the failure report stays queued for the watchdog (the panel is TLS too)"
node_stop s-tls
node_stop d-tls
done_testing
