#!/bin/bash
# End to end: a panel (emulator) moves a server between two wingxfer nodes,
# each behind its own web server with TLS, configured from the shipped
# www-config files.  Apache -> lighttpd, lighttpd -> Apache, Apache -> Apache;
# cancel from the panel on both sides; a wrong CA.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
webstack_init
PANEL_TLS=1 panel_start || { echo "not ok 1 - panel emulator"; echo 1..1; exit 1; }
PANEL_TLS=1
TREES="$top_srcdir/tests/lib/trees.py"

callbacks() { # callbacks UUID KIND: how many KIND callbacks the panel recorded for UUID
	panel_api GET "/_emulator/callbacks?server=$1" | python3 -c '
import json, sys
print(sum(1 for c in json.load(sys.stdin) if c.get("kind") == sys.argv[1]))' "$2"
}
panel_state() { panel_api GET "/_emulator/transfers/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("state"))'; }
src_status() { https_curl -H "Authorization: Bearer token-$1" "${NODE_URL[$1]}/api/servers/$2/transfer"; }
dst_status() { https_curl -H "Authorization: Bearer token-$1" "${NODE_URL[$1]}/api/transfers/$2"; }
state_of() { json_get "$1" '["state"]' 2>/dev/null; }
has_failure() { [ "$(callbacks "$1" failure)" -ge 1 ]; }
dest_moving() { [ "$(json_get "$(dst_status "$1" "$2")" '["bytes_read"]' 2>/dev/null || echo 0)" -gt 0 ] 2>/dev/null; }
dest_inactive() { [ "$(json_get "$(dst_status "$1" "$2")" '["active"]' 2>/dev/null)" = false ]; }
finished() { # finished NODE UUID: the source record reached an end state
	case "$(state_of "$(src_status "$1" "$2")")" in completed|failed|cancelled) return 0 ;; esac
	return 1
}

# Nodes: two Apache, one lighttpd.
node_setup a1; node_start a1 apache
node_setup a2; node_start a2 apache
node_setup l1; node_start l1 lighttpd
for n in a1 a2 l1; do panel_node "$n" "id-$n" "token-$n" "${NODE_URL[$n]}"; done

transfer() { # transfer FROM TO UUID FILES
	local from=$1 to=$2 uuid=$3 files=$4 label="${NODE_WEB[$1]} -> ${NODE_WEB[$2]}"
	python3 "$TREES" make "$WX_TEST_TMP/$from/data/$uuid" --files "$files" --seed "${#uuid}"
	python3 "$TREES" manifest "$WX_TEST_TMP/$from/data/$uuid" > "$WX_TEST_TMP/$uuid.before"
	panel_server "$uuid" 0
	local answer
	answer=$(panel_api POST /_emulator/transfers "{\"server\":\"$uuid\",\"source\":\"$from\",\"destination\":\"$to\"}")
	like "$answer" '"source_status": ?202' "$label: the source accepts the transfer (202)"
	wait_for "transfer $uuid" 300 finished "$from" "$uuid"
	is "$(state_of "$(src_status "$from" "$uuid")")" completed "$label: source record completed"
	is "$(state_of "$(dst_status "$to" "$uuid")")" completed "$label: destination record completed"
	python3 "$TREES" manifest "$WX_TEST_TMP/$to/data/$uuid" > "$WX_TEST_TMP/$uuid.after" 2>/dev/null
	ok "$label: $(wc -l < "$WX_TEST_TMP/$uuid.before") entries arrive byte-identical (types, modes, links, mtimes)" \
		cmp -s "$WX_TEST_TMP/$uuid.before" "$WX_TEST_TMP/$uuid.after"
	is "$(callbacks "$uuid" success)" 1 "$label: exactly one success callback"
	is "$(callbacks "$uuid" failure)" 0 "$label: no failure callback"
	is "$(panel_state "$uuid")" completed "$label: the panel's transfer is completed"
	ok "$label: no staging left on the destination" test ! -e "$WX_TEST_TMP/$to/data/.wingxfer-staging/$uuid"
	ok "$label: the source data is still in place (the panel deletes it)" test -d "$WX_TEST_TMP/$from/data/$uuid"
}

transfer a1 l1 11111111-0000-4000-8000-000000000001 3000
transfer l1 a1 11111111-0000-4000-8000-000000000002 3000
transfer a1 a2 11111111-0000-4000-8000-000000000003 3000

# Cancel from the panel mid-transfer: the destination reads slowly
# (download_limit 1 MiB/s) so there is time to cancel.
slow_dest() {
	local n=$1
	sed -i 's/^    disk_reserve: 0$/    disk_reserve: 0\n    download_limit: 1/' "$WX_TEST_TMP/$n/config.yml"
}
slow_dest a2
# ... and the source sends chunks of 1 MiB (docs/protocol.md): the
# destination's progress moves only as chunks are acknowledged, and with the
# default 32 MiB the whole body would be one chunk, acknowledged before the
# first byte shows as received, with nothing left to cancel.
sed -i 's/^    disk_reserve: 0$/    disk_reserve: 0\n    chunk_size: 1MiB/' "$WX_TEST_TMP/a1/config.yml"
# outboxes_empty: no callback of a1 or a2 is still queued.
outboxes_empty() { ! ls "$WX_TEST_TMP"/a1/state/outbox/*.json "$WX_TEST_TMP"/a2/state/outbox/*.json >/dev/null 2>&1; }
for side in source destination; do
	[ $side = source ] && uuid=22222222-0000-4000-8000-000000000001 || uuid=22222222-0000-4000-8000-000000000002
	python3 "$TREES" make "$WX_TEST_TMP/a1/data/$uuid" --files 50 --big-mib 40 --seed 7
	python3 "$TREES" manifest "$WX_TEST_TMP/a1/data/$uuid" > "$WX_TEST_TMP/$uuid.before"
	panel_server "$uuid" 0
	panel_api POST /_emulator/transfers "{\"server\":\"$uuid\",\"source\":\"a1\",\"destination\":\"a2\"}" >/dev/null
	wait_for "bytes moving" 30 dest_moving a2 "$uuid"
	if [ $side = source ]; then
		code=$(https_curl -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer token-a1" \
			"${NODE_URL[a1]}/api/servers/$uuid/transfer")
	else
		code=$(https_curl -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer token-a2" \
			"${NODE_URL[a2]}/api/transfers/$uuid")
	fi
	is "$code" 202 "cancel on the $side mid-transfer: 202"
	wait_for "cancelled transfer $uuid" 30 finished a1 "$uuid"
	like "$(state_of "$(src_status a1 "$uuid")")" '^(failed|cancelled)$' "cancel on the $side: the source record ends failed/cancelled"
	wait_for "destination record ends" 30 dest_inactive a2 "$uuid"
	ok "cancel on the $side: no server directory on the destination" test ! -e "$WX_TEST_TMP/a2/data/$uuid"
	ok "cancel on the $side: no staging left" test ! -e "$WX_TEST_TMP/a2/data/.wingxfer-staging/$uuid"
	python3 "$TREES" manifest "$WX_TEST_TMP/a1/data/$uuid" > "$WX_TEST_TMP/$uuid.after"
	ok "cancel on the $side: the source tree is intact" cmp -s "$WX_TEST_TMP/$uuid.before" "$WX_TEST_TMP/$uuid.after"
	wait_for "failure callbacks" 30 has_failure "$uuid"
	wait_for "both outboxes delivered" 60 outboxes_empty
	is "$(callbacks "$uuid" success)" 0 "cancel on the $side: no success callback"
	ok "cancel on the $side: failure reported, at most once per node" \
		test "$(callbacks "$uuid" failure)" -ge 1 -a "$(callbacks "$uuid" failure)" -le 2
done

# Panel-driven cancel (DELETE on both nodes, as FeatherPanel does).
uuid=33333333-0000-4000-8000-000000000001
python3 "$TREES" make "$WX_TEST_TMP/a1/data/$uuid" --files 50 --big-mib 40 --seed 9
panel_server "$uuid" 0
panel_api POST /_emulator/transfers "{\"server\":\"$uuid\",\"source\":\"a1\",\"destination\":\"a2\"}" >/dev/null
wait_for "bytes moving" 30 dest_moving a2 "$uuid"
answer=$(panel_api POST "/_emulator/transfers/$uuid/cancel")
like "$answer" 'cancelled' "the panel cancels a running transfer on both nodes"
wait_for "cancelled transfer $uuid" 30 finished a1 "$uuid"
ok "panel cancel: nothing left on the destination" test ! -e "$WX_TEST_TMP/a2/data/$uuid" -a ! -e "$WX_TEST_TMP/a2/data/.wingxfer-staging/$uuid"

# A destination whose certificate the source does not trust: a clean failure.
d="$WX_TEST_TMP/ca"
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/w1.key" -out "$d/w1.csr" >/dev/null 2>&1
openssl x509 -req -in "$d/w1.csr" -CA "$d/other-ca.pem" -CAkey "$d/other-ca.key" -CAcreateserial \
	-days 2 -extfile "$d/ext.cnf" -out "$d/w1.pem" >/dev/null 2>&1
node_setup w1
sed -i "s|cert: .*node.pem|cert: $d/w1.pem|; s|key: .*node.key|key: $d/w1.key|" "$WX_TEST_TMP/w1/config.yml"
NODE_CA[w1]="$d/other-ca.pem"
node_start w1 apache
panel_node w1 id-w1 token-w1 "${NODE_URL[w1]}"
uuid=44444444-0000-4000-8000-000000000001
python3 "$TREES" make "$WX_TEST_TMP/l1/data/$uuid" --files 20 --seed 3
panel_server "$uuid" 0
panel_api POST /_emulator/transfers "{\"server\":\"$uuid\",\"source\":\"l1\",\"destination\":\"w1\"}" >/dev/null
wait_for "untrusted-destination transfer ends" 60 finished l1 "$uuid"
j=$(src_status l1 "$uuid")
is "$(state_of "$j")" failed "untrusted destination certificate: the source fails the transfer"
like "$(json_get "$j" '["error"]')" '[Cc]ertificate|TLS|SSL' "... and the error says it is the certificate"
wait_for "failure callback" 60 has_failure "$uuid"
is "$(callbacks "$uuid" failure)" 1 "... exactly one failure callback"
ok "... nothing arrived on the destination" test ! -e "$WX_TEST_TMP/w1/data/$uuid" -a ! -e "$WX_TEST_TMP/w1/data/.wingxfer-staging/$uuid"
python3 "$TREES" manifest "$WX_TEST_TMP/l1/data/$uuid" > /dev/null && ok "... the source tree is still there" test -d "$WX_TEST_TMP/l1/data/$uuid"
node_stop w1

for n in a1 a2 l1; do node_stop "$n"; done
panel_stop
done_testing
