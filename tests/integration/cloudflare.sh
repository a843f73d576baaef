#!/bin/bash
# Issue 15, item 7: a transfer between two wingxfer nodes through a
# "Cloudflare free plan" (tests/lib/cfproxy.sh: nginx, TLS, request bodies
# over 100 MB refused with 413, the whole body buffered before the origin
# sees it, 100 s read timeout) in front of the destination's Apache.  The
# panel emulator gives the source the proxy's URL, as a panel would for a
# node behind Cloudflare.
#
#  (a) system.transfers.chunked: off (the single POST of wings-protocol.md):
#      a server whose archive is well over 100 MB fails with 413 at the
#      proxy (the destination never sees the body); the source says so in
#      its record, the panel gets exactly one failure callback, the source's
#      files are intact and nothing is installed on the destination.
#  (b) chunked: auto (the default), presync: off (an archive, not pre-sync
#      rounds): a 2 GiB server of incompressible data
#      goes through the same proxy in chunks (docs/protocol.md) and
#      completes: byte-identical tree, exactly one success callback, both
#      records' extra.chunked show the chunks acknowledged, and no request
#      through the proxy carried more than 100 MB; every destination process
#      (the FastCGI workers serving the PATCHes, the assembler, its confined
#      extractor) peaks under 32 MiB of RSS (VmHWM, sampled about once a
#      second during the transfer; the ASan build: under 1 GiB).  Every
#      chunk carries X-Wingxfer-Prefix-Digest and no Content-Digest (the
#      destination names prefix-digest), and the upload is created with
#      X-Wingxfer-Checksum: body (it names body-checksum): the destination
#      says the body's SHA-256 stood for the archive checksum.
#  (c) A destination of an earlier version, which does not name
#      prefix-digest (a second proxy drops it from X-Wingxfer-Capabilities):
#      a small transfer completes with Content-Digest on every chunk and
#      the archive checksum verified as before.
#
# (b) needs the chunked protocol on both sides (issue 15); in a build where
# neither the push worker nor the destination knows it at all, (b) is
# skipped and says why.  Takes about a minute for (a); (b) moves 2 GiB.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/cfproxy.sh"
. "$top_srcdir/tests/lib/incompressible.sh"
webstack_init
[ -x "$CFPROXY_NGINX" ] || skip_all "needs nginx (apt-get install nginx-light)"
PANEL_TLS=1 panel_start || { echo "not ok 1 - panel emulator"; echo 1..1; exit 1; }
PANEL_TLS=1
TREES="$top_srcdir/tests/lib/trees.py"
MB100=100000000

# dest_events UUID: the destination's log lines of UUID's transfer.
dest_events() {
	python3 -c 'import json, sys
for l in open(sys.argv[1]):
    print(json.loads(l)["args"][0])' "$WX_TEST_TMP/d/state/transfers/$1.events" 2>/dev/null
}
callbacks() { # callbacks UUID KIND: how many KIND callbacks the panel recorded for UUID
	panel_api GET "/_emulator/callbacks?server=$1" | python3 -c '
import json, sys
print(sum(1 for c in json.load(sys.stdin) if c.get("kind") == sys.argv[1]))' "$2"
}
src_status() { https_curl -H "Authorization: Bearer token-s" "${NODE_URL[s]}/api/servers/$1/transfer"; }
dst_status() { https_curl -H "Authorization: Bearer token-d" "${NODE_URL[d]}/api/transfers/$1"; }
state_of() { json_get "$1" '["state"]' 2>/dev/null; }
finished() {
	case "$(state_of "$(src_status "$1")")" in completed|failed|cancelled) return 0 ;; esac
	return 1
}
dst_final() {
	case "$(state_of "$(dst_status "$1")")" in completed|failed|cancelled) return 0 ;; esac
	return 1
}
has_callback() { [ "$(callbacks "$1" "$2")" -ge 1 ]; }
outboxes_empty() { ! ls "$WX_TEST_TMP"/s/state/outbox/*.json "$WX_TEST_TMP"/d/state/outbox/*.json >/dev/null 2>&1; }
# set_chunked VALUE: system.transfers.chunked of the source node (the push
# worker reads the configuration when it starts).
set_chunked() { transfers_key "$WX_TEST_TMP/s/config.yml" chunked "$1"; }
go() { # go UUID: the panel starts the transfer s -> d with the proxy's URL
	local answer
	panel_server "$1" 0
	answer=$(panel_api POST /_emulator/transfers "{\"server\":\"$1\",\"source\":\"s\",\"destination\":\"d\",
		\"url\":\"${CFPROXY_URL[cf]}/api/transfers\"}")
	like "$answer" '"source_status": ?202' "$2: the source accepts the transfer (202)"
}
# proxy_since N: the proxy's access log after its first N lines
proxy_since() { cfproxy_log cf | tail -n +"$(($1 + 1))"; }

node_setup s
node_setup d
node_start s apache && node_start d apache || { echo "not ok 1 - Apache does not start"; echo 1..1; exit 1; }
panel_node s id-s token-s "${NODE_URL[s]}"
panel_node d id-d token-d "${NODE_URL[d]}"

# --- the proxy itself ------------------------------------------------------
own_cert() { ! cmp -s "$WX_TEST_TMP/cfproxy-cf/proxy.pem" "$WX_TEST_TMP/ca/node.pem"; }
ok "nginx starts as a TLS reverse proxy in front of the destination's Apache" \
	cfproxy_start cf "${NODE_URL[d]}"
caps=$(https_curl -s -D - -o /dev/null -X OPTIONS "${CFPROXY_URL[cf]}/api/transfers" | tr -d '\r')
like "$caps" 'X-Wingxfer-Capabilities: ' "through the proxy, OPTIONS reaches the destination (its capabilities come back)"
ok "the proxy's certificate is its own, not the node's" own_cert
code=$(head -c 105000000 /dev/zero | https_curl -o /dev/null -w '%{http_code}' -X POST \
	-H 'Content-Type: application/octet-stream' --data-binary @- "${CFPROXY_URL[cf]}/api/transfers")
is "$code" 413 "a 105 MB request body is refused by the proxy with 413 (client_max_body_size 100m)"
last_answered_by_proxy() { cfproxy_log cf | tail -n 1 | grep -q '"status":413,"upstream_status":""'; }
ok "... and the proxy answered it itself (no upstream status logged)" last_answered_by_proxy
own_pidfile() { [ "$(cat "$WX_TEST_TMP/cfproxy-cf/nginx.pid")" = "${CFPROXY_PID[cf]}" ] && ! grep -qsx "${CFPROXY_PID[cf]}" /run/nginx.pid; }
ok "the proxy's pid file is its own (not /run/nginx.pid)" own_pidfile

# --- (a) the single POST: refused by the proxy --------------------------------
U=aaaaaaaa-0000-4000-8000-000000000001
set_chunked off
incompressible_tree "$WX_TEST_TMP/s/data/$U" 3 56 11 || { echo "not ok - generating the tree"; done_testing; exit 1; }
python3 "$TREES" manifest "$WX_TEST_TMP/s/data/$U" > "$WX_TEST_TMP/$U.before"
diag "single POST: a $(du -sm "$WX_TEST_TMP/s/data/$U" | cut -f1) MiB server of incompressible data"
mark=$(cfproxy_log cf | wc -l)
go "$U" "chunked: off"
wait_for "transfer $U" 300 finished "$U"
j=$(src_status "$U")
is "$(state_of "$j")" failed "chunked: off: the source record ends failed"
like "$(json_get "$j" '["error"]' 2>/dev/null)" '413' "chunked: off: the source's error names the 413"
diag "source error: $(json_get "$j" '["error"]' 2>/dev/null | head -c 300)"
n413=$(proxy_since "$mark" | python3 -c '
import json, sys
print(sum(1 for l in sys.stdin for r in [json.loads(l)]
          if r["method"] == "POST" and r["uri"].rstrip("/") == "/api/transfers" and r["status"] == 413
          and r["upstream_status"] == ""))')
is "$n413" 1 "chunked: off: the proxy answered the POST /api/transfers 413 itself (the body never reached the destination)"
wait_for "the failure callback" 60 has_callback "$U" failure
wait_for "both outboxes delivered" 60 outboxes_empty
is "$(callbacks "$U" failure)" 1 "chunked: off: exactly one failure callback"
is "$(callbacks "$U" success)" 0 "chunked: off: no success callback"
python3 "$TREES" manifest "$WX_TEST_TMP/s/data/$U" > "$WX_TEST_TMP/$U.after"
ok "chunked: off: the server's files are intact on the source" cmp -s "$WX_TEST_TMP/$U.before" "$WX_TEST_TMP/$U.after"
ok "chunked: off: nothing installed on the destination (no server directory, no staging)" \
	test ! -e "$WX_TEST_TMP/d/data/$U" -a ! -e "$WX_TEST_TMP/d/data/.wingxfer-staging/$U"
unlike "$(state_of "$(dst_status "$U")")" 'completed' "chunked: off: no destination record claims success"
rm -rf "${WX_TEST_TMP:?}/s/data/$U"

# --- (b) chunked: through the same proxy --------------------------------------
like "$(https_curl -s -D - -o /dev/null -X OPTIONS "${CFPROXY_URL[cf]}/api/transfers" | tr -d '\r' |
	grep -i '^X-Wingxfer-Capabilities:')" '(^|[ ,:])chunked(,|$| )' \
	"through the proxy the destination names chunked in X-Wingxfer-Capabilities"
U=bbbbbbbb-0000-4000-8000-000000000002
set_chunked auto
sed -i "s|^    chunked: auto$|    chunked: auto\n    presync: off|" "$WX_TEST_TMP/s/config.yml"
# 16 x 128 MiB of incompressible data and a small tree: 2 GiB, and an
# archive of about 2.1 GB whatever the codec.
incompressible_tree "$WX_TEST_TMP/s/data/$U" 16 128 12 || { echo "not ok - generating the tree"; done_testing; exit 1; }
python3 "$TREES" manifest "$WX_TEST_TMP/s/data/$U" > "$WX_TEST_TMP/$U.before"
diag "chunked: a $(du -sm "$WX_TEST_TMP/s/data/$U" | cut -f1) MiB server of incompressible data"
mark=$(cfproxy_log cf | wc -l)
t0=$SECONDS
go "$U" "chunked: auto"
# sample_rss: the highest VmHWM (kB) of the destination's processes (all run
# with its config.yml) so far, in PEAK_KB, and who, in PEAK_WHO; at most once
# a second.
PEAK_KB=0 PEAK_WHO="" RSS_AT=-1
sample_rss() {
	local p h
	[ "$SECONDS" != "$RSS_AT" ] || return 0
	RSS_AT=$SECONDS
	for p in $(pgrep -f -- "--config $WX_TEST_TMP/d/config.yml"); do
		h=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/status" 2>/dev/null)
		[ -n "$h" ] && [ "$h" -gt "$PEAK_KB" ] || continue
		PEAK_KB=$h PEAK_WHO="pid $p: $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-120)"
	done
	return 0
}
finished_sampled() { sample_rss; finished "$1"; }
wait_for "transfer $U" 1800 finished_sampled "$U"
wait_for "the destination's record final" 120 dst_final "$U"
diag "chunked: 2 GiB through the proxy in $((SECONDS - t0)) s"
js=$(src_status "$U") jd=$(dst_status "$U")
is "$(state_of "$js")" completed "chunked: auto: the source record completed"
[ "$(state_of "$js")" = completed ] || diag "source error: $(json_get "$js" '["error"]' 2>/dev/null)"
is "$(state_of "$jd")" completed "chunked: auto: the destination record completed"
python3 "$TREES" manifest "$WX_TEST_TMP/d/data/$U" > "$WX_TEST_TMP/$U.after" 2>/dev/null
ok "chunked: auto: $(wc -l < "$WX_TEST_TMP/$U.before") entries arrive byte-identical (2 GiB)" \
	cmp -s "$WX_TEST_TMP/$U.before" "$WX_TEST_TMP/$U.after"
wait_for "the success callback" 60 has_callback "$U" success
wait_for "both outboxes delivered" 60 outboxes_empty
is "$(callbacks "$U" success)" 1 "chunked: auto: exactly one success callback"
is "$(callbacks "$U" failure)" 0 "chunked: auto: no failure callback"
ok "chunked: auto: no staging left on the destination" test ! -e "$WX_TEST_TMP/d/data/.wingxfer-staging/$U"
diag "chunked: the destination's highest peak RSS: $PEAK_KB kB ($PEAK_WHO)"
# ASan maps shadow memory and keeps freed memory in quarantine: the 32 MiB
# bound is the normal build's.
if grep -q '^#define WX_SANITIZERS 1' "$top_builddir/autoconf.h"; then
	ok "chunked: auto: every destination process peaked under 1 GiB of RSS on the ASan build ($PEAK_KB kB; 32 MiB is checked on the normal build)" \
		test "$PEAK_KB" -gt 0 -a "$PEAK_KB" -lt 1048576
else
	ok "chunked: auto: every destination process peaked under 32 MiB of RSS ($PEAK_KB kB)" \
		test "$PEAK_KB" -gt 0 -a "$PEAK_KB" -lt 32768
fi

# What went through the proxy for it (docs/protocol.md §3).
proxy_since "$mark" > "$WX_TEST_TMP/proxy-b.log"
summary=$(python3 - "$WX_TEST_TMP/proxy-b.log" "$MB100" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
limit = int(sys.argv[2])
def cl(r): return int(r["content_length"]) if r["content_length"].isdigit() else 0
single = [r for r in rows if r["method"] == "POST" and r["uri"].rstrip("/") == "/api/transfers"]
create = [r for r in rows if r["method"] == "POST" and r["uri"].rstrip("/") == "/api/transfers/uploads"]
patch = [r for r in rows if r["method"] == "PATCH" and r["uri"].startswith("/api/transfers/uploads/")]
acked = [r for r in patch if r["status"] in (202, 204)]
print("single=%d create=%d create201=%d patches=%d acked=%d last202=%d max_body=%d over100=%d s413=%d"
    " with_prefix=%d with_content=%d" % (
    len(single), len(create), sum(1 for r in create if r["status"] == 201), len(patch), len(acked),
    sum(1 for r in patch if r["status"] == 202), max([cl(r) for r in rows] or [0]),
    sum(1 for r in rows if cl(r) > limit), sum(1 for r in rows if r["status"] == 413),
    sum(1 for r in patch if r["prefix_digest"].startswith("sha-256=:")),
    sum(1 for r in patch if r["content_digest"] != "")))
PY
)
diag "through the proxy: $summary"
kv() { printf '%s\n' "$summary" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
is "$(kv single)" 0 "chunked: auto: no single POST /api/transfers went through the proxy"
is "$(kv create201)" 1 "chunked: auto: one upload created (POST /api/transfers/uploads, 201)"
ok "chunked: auto: many PATCH chunks acknowledged through the proxy ($(kv acked))" test "$(kv acked)" -ge 16
is "$(kv last202)" 1 "chunked: auto: exactly one last chunk answered 202"
is "$(kv over100)" 0 "chunked: auto: no request body through the proxy over 100 MB (largest $(kv max_body) bytes)"
is "$(kv s413)" 0 "chunked: auto: no 413 from the proxy"
is "$(kv with_prefix) $(kv with_content)" "$(kv patches) 0" \
	"chunked: auto: every PATCH carried X-Wingxfer-Prefix-Digest, none Content-Digest"
like "$(dest_events "$U")" 'Body checksum verified \(SHA-256 [0-9a-f]{64} of the whole upload' \
	"chunked: auto: the destination took the verified body digest as the archive checksum (X-Wingxfer-Checksum: body)"

# many_chunks ACKED CHUNK-SIZE: more than 2 GiB acknowledged, a chunk
# size within the protocol's bounds, and at least 16 chunks of it.
many_chunks() { [ "$1" -gt 2147483648 ] && [ "$2" -gt 0 ] && [ "$2" -le 100663296 ] && [ $(($1 / $2)) -ge 16 ]; }
# Both records: extra.chunked (docs/protocol.md §4, "Record fields").
for side in s d; do
	f="$WX_TEST_TMP/$side/state/transfers/$U.json"
	[ $side = s ] && who=source || who=destination
	c=$(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
c = (r.get("extra") or {}).get("chunked")
if not isinstance(c, dict):
    print("missing"); sys.exit()
print("upload=%s acked=%s chunk_size=%s interruptions=%s resumes=%s resent_bytes=%s" % tuple(
    c.get(k) for k in ("upload", "acked", "chunk_size", "interruptions", "resumes", "resent_bytes")))' "$f" 2>/dev/null)
	diag "$who record extra.chunked: $c"
	like "$c" '^upload=[0-9a-f]{32} ' "chunked: auto: the $who record has extra.chunked with the upload id"
	acked=$(printf '%s\n' "$c" | sed -n 's/.* acked=\([0-9]*\) .*/\1/p')
	csize=$(printf '%s\n' "$c" | sed -n 's/.* chunk_size=\([0-9]*\) .*/\1/p')
	ok "chunked: auto: the $who acknowledged the whole body, in several chunks (acked ${acked:-?} bytes, chunk_size ${csize:-?})" \
		many_chunks "${acked:-0}" "${csize:-0}"
done
# The status answers show the record's extra.chunked as "chunked" (shared/status.c).
shown_acked() {
	printf '%s' "$1" | python3 -c 'import json, sys
j = json.load(sys.stdin)
c = j.get("chunked") or (j.get("extra") or {}).get("chunked") or {}
print(c.get("acked", ""))' 2>/dev/null
}
like "$(shown_acked "$js")" '^[0-9]+$' \
	"chunked: auto: GET /api/servers/:uuid/transfer on the source shows the acknowledged bytes"
like "$(shown_acked "$jd")" '^[0-9]+$' \
	"chunked: auto: GET /api/transfers/:uuid on the destination shows the acknowledged bytes"
rm -rf "${WX_TEST_TMP:?}/s/data/$U" "${WX_TEST_TMP:?}/d/data/$U"

# --- (c) a destination that does not name prefix-digest ----------------------
cfproxy_start old "${NODE_URL[d]}" 'proxy_hide_header X-Wingxfer-Capabilities;
		add_header X-Wingxfer-Capabilities "zstd, gzip, preflight, chunked, presync" always;' ||
	{ echo "not ok - the second proxy does not start"; done_testing; exit 1; }
unlike "$(https_curl -s -D - -o /dev/null -X OPTIONS "${CFPROXY_URL[old]}/api/transfers" | tr -d '\r' |
	grep -i '^X-Wingxfer-Capabilities:')" 'prefix-digest' \
	"through the second proxy the destination does not name prefix-digest"
U=cccccccc-0000-4000-8000-000000000003
incompressible_tree "$WX_TEST_TMP/s/data/$U" 3 32 4 || { echo "not ok - generating the tree"; done_testing; exit 1; }
python3 "$TREES" manifest "$WX_TEST_TMP/s/data/$U" > "$WX_TEST_TMP/$U.before"
panel_server "$U" 0
like "$(panel_api POST /_emulator/transfers "{\"server\":\"$U\",\"source\":\"s\",\"destination\":\"d\",
	\"url\":\"${CFPROXY_URL[old]}/api/transfers\"}")" '"source_status": ?202' "older destination: the source accepts the transfer (202)"
wait_for "transfer $U" 600 finished "$U"
wait_for "the destination's record final" 120 dst_final "$U"
is "$(state_of "$(src_status "$U")") $(state_of "$(dst_status "$U")")" "completed completed" \
	"older destination: both records completed"
python3 "$TREES" manifest "$WX_TEST_TMP/d/data/$U" > "$WX_TEST_TMP/$U.after" 2>/dev/null
ok "older destination: the tree arrives byte-identical" cmp -s "$WX_TEST_TMP/$U.before" "$WX_TEST_TMP/$U.after"
wait_for "the success callback" 60 has_callback "$U" success
is "$(callbacks "$U" success) $(callbacks "$U" failure)" "1 0" "older destination: one success callback, no failure"
like "$(dest_events "$U")" 'Archive checksum verified' \
	"older destination: the body carried the archive checksum, verified as before"
digests=$(cfproxy_log old | python3 -c 'import json, sys
rows = [json.loads(l) for l in sys.stdin]
p = [r for r in rows if r["method"] == "PATCH" and r["status"] in (202, 204)]
print("%d %d %d" % (len(p), sum(1 for r in p if r["content_digest"].startswith("sha-256=:")),
    sum(1 for r in p if r["prefix_digest"] != "")))')
set -- $digests
ok "older destination: every acknowledged PATCH ($1) carried Content-Digest ($2), none X-Wingxfer-Prefix-Digest ($3)" \
	test "${1:-0}" -ge 2 -a "${2:-x}" = "${1:-y}" -a "${3:-x}" = 0
rm -rf "${WX_TEST_TMP:?}/s/data/$U" "${WX_TEST_TMP:?}/d/data/$U"
cfproxy_stop old

cfproxy_stop cf
node_stop s
node_stop d
panel_stop
done_testing
