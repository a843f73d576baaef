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
#   - the assembler killed -9: the next request starts a new one, which
#     extracts the chunks received so far again from the spool (kept as
#     .done-<offset>); the offset stays and the rest completes the upload;
#   - the same with the spool on a filesystem too small to keep them (the
#     chunks are dropped, .dropped says so): offset 0, the body sent again
#     completes;
#   - DELETE of the upload and the node-token DELETE /api/transfers/<uuid>
#     cancel it (one failure callback, staging gone);
#   - write-behind with its flushes (write_behind_flush) on a chunk and on
#     the extraction, as the debug log counts them;
#   - X-Wingxfer-Checksum: body (the destination names body-checksum): a
#     body without checksum parts installs, its verified Repr-Digest
#     standing for the archive checksum, on a node that requires one
#     (perform_checksum_checks); the same body without the header is
#     refused 422; another value of the header is refused 400.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
. "$top_srcdir/tests/lib/chunked.sh"
webstack_init
panel_start

make_tree "$WX_TEST_TMP/src" --files 100
head -c 3000000 /dev/urandom > "$WX_TEST_TMP/src/random.bin"
# Text that compresses well: the body is far smaller than the files it carries.
yes 'a log line of a game server' | head -c 3000000 > "$WX_TEST_TMP/src/latest.log"
# The files' bytes as the source's size walk counts them (a hardlinked file once).
RAW_SIZE=$(find "$WX_TEST_TMP/src" -type f -printf '%i %s\n' | sort -u | awk '{s += $2} END {print s}')
tar -C "$WX_TEST_TMP/src" -czf "$WX_TEST_TMP/tree.tgz" .
body_for "$WX_TEST_TMP/body" "$WX_TEST_TMP/tree.tgz"
BODY_SIZE=$(stat -c %s "$WX_TEST_TMP/body")
BODY_SHA=$(sha256sum "$WX_TEST_TMP/body" | cut -d' ' -f1)
CHUNK=524288
diag "body: $BODY_SIZE bytes, chunks of $CHUNK"

# The FastCGI worker (not the assembler) that has FILE open.
holder_of() {
	local f p
	# One find for every fd on the machine (a readlink each would be a fork
	# each: minutes per pass on a loaded machine).
	for f in $(find /proc/[0-9]*/fd -mindepth 1 -maxdepth 1 -lname "$1" 2>/dev/null); do
		p=${f#/proc/}; p=${p%%/*}
		grep -qa -- --assemble "/proc/$p/cmdline" 2>/dev/null && continue
		echo "$p"; return 0
	done
	return 1
}
tmp_chunk() { ls "$STATE/uploads/$1.spool"/.tmp-* 2>/dev/null | head -n 1; }
up_answers() { up_get "$1" "$2"; [ "$CODE" = 200 ]; }
has_callback() { [ "$(callbacks "$1" "$2")" -ge 1 ]; }
lock_free() { flock -n "$STATE/transfers/$1.lock" true; }

web=apache
node_setup "d"
DEST_DIR="$WX_TEST_TMP/d"
sed -i '1i debug: true' "$DEST_DIR/config.yml"   # the per-chunk log lines
# The gentlest write-behind (the flushes are off by default).
transfers_key "$DEST_DIR/config.yml" write_behind 256KiB
transfers_key "$DEST_DIR/config.yml" write_behind_flush 256KiB
DATA="$DEST_DIR/data"
STATE="$DEST_DIR/state"
node_start d apache || { echo "not ok - apache does not start"; exit 1; }
URL=${NODE_URL[d]}
panel_node dest "id-d" "token-d" "$URL"

# --- negotiation ---
https_curl --http1.1 -X OPTIONS -D "$WX_TEST_TMP/opt.hdr" -o /dev/null "$URL/api/transfers"
like "$(grep -i '^X-Wingxfer-Capabilities' "$WX_TEST_TMP/opt.hdr")" '[ ,]chunked' "OPTIONS names chunked"
like "$(grep -i '^X-Wingxfer-Capabilities' "$WX_TEST_TMP/opt.hdr")" '[ ,]prefix-digest' "OPTIONS names prefix-digest"
like "$(grep -i '^X-Wingxfer-Capabilities' "$WX_TEST_TMP/opt.hdr")" '[ ,]body-checksum' "OPTIONS names body-checksum"
like "$(grep -i '^X-Wingxfer-Chunk-Max' "$WX_TEST_TMP/opt.hdr")" ': 100663296' "OPTIONS: X-Wingxfer-Chunk-Max 96 MiB"

# --- a body in chunks ---
U=$(new_server)
up_create "$(token_for "$U")" -H "X-Wingxfer-Size: $RAW_SIZE"
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
is "$(json_get "$RESP" '["state"]')" completed "GET: completed" || diag "$RESP"
is "$(json_get "$RESP" '["result"]["status"]')" completed "GET: the single POST's result"
is "$(json_get "$RESP" '["prefix_sha256"]')" "$BODY_SHA" "GET: prefix_sha256 is the body's SHA-256"
ok "the tree arrived byte-identical" same_tree "$WX_TEST_TMP/src" "$DATA/$U"
is "$(callbacks "$U" success)" 1 "the panel got one success callback"
is "$(callbacks "$U" failure)" 0 "... and no failure callback"
code=$(https_curl -o "$WX_TEST_TMP/st.out" -w '%{http_code}' -H "Authorization: Bearer token-d" "$URL/api/transfers/$U")
st=$(cat "$WX_TEST_TMP/st.out")
is "$code $(json_get "$st" '["chunked"]["acked"]')" "200 $BODY_SIZE" "GET /api/transfers/<uuid>: chunked.acked"
is "$(json_get "$st" '["chunked"]["chunk_size"]')" $CHUNK "... chunked.chunk_size"
# X-Wingxfer-Size is the files' raw size and the body is compressed: the
# progress counts the bytes extracted against it, not the body's bytes.
is "$(json_get "$st" '["bytes_total"]') $(json_get "$st" '["percent"]')" "$RAW_SIZE 100.0" \
	"... bytes_total is X-Wingxfer-Size and percent reaches 100 (extracted bytes, not the smaller body's)"
unlike "$st$(cat "$STATE/transfers/$U.json")" "$SECRET" "... the secret is in neither status nor record"
ok "the spool is gone" test ! -e "$STATE/uploads/$ID.spool"
# write_behind and write_behind_flush (both 256KiB here): a chunk of
# 512 KiB is flushed to the disk once while it arrives, the extraction every
# 256 KiB it writes back.
like "$(node_log d | grep "upload $ID: chunk at 0 ")" '\(fsync [0-9]+, 1 flushes, 0 through the chunk\)' \
	"a chunk's data was flushed while it arrived (write_behind_flush), through an unnamed file"
like "$(node_log d | grep 'write-behind: ')" 'in [0-9]+ ranges, [1-9][0-9]* flushes \(0 through received files, [0-9]+ put off for pace\); 0 files left' \
	"... and the extracted files' data too"
up_patch "$ID" "$SECRET" "$BODY_SIZE" "$WX_TEST_TMP/body" 0
is "$CODE $(json_get "$RESP" '["code"]')" "409 completed" "PATCH after completion: 409 completed"
code=$(https_curl --http1.1 -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer $SECRET" "$URL/api/transfers/uploads/$ID")
is "$code" 410 "DELETE after completion: 410"


# --- the refusals of a PATCH, each changing nothing ---
U=$(new_server)
up_create "$(token_for "$U")"
U2=$U ID2=$ID SECRET2=$SECRET
split -b 2097152 -d -a 4 "$WX_TEST_TMP/body" "$WX_TEST_TMP/first."
FIRST="$WX_TEST_TMP/first.0000"   # the first 2 MiB
up_patch 0123456789abcdef0123456789abcdef "$SECRET2" 0 "$FIRST" 0
is "$CODE $(json_get "$RESP" '["code"]')" "404 unknown_upload" "an unknown upload: 404 unknown_upload"
up_patch "$ID2" "$(printf '%064d' 7)" 0 "$FIRST" 0
is "$CODE $(json_get "$RESP" '["code"]')" "401 bad_secret" "a wrong secret: 401 bad_secret"
up_patch "$ID2" "$SECRET1" 0 "$FIRST" 0
is "$CODE $(json_get "$RESP" '["code"]')" "401 bad_secret" "another upload's secret: 401 bad_secret"
unlike "$RESP" "$SECRET1" "... the answer does not echo the secret"
up_patch "$ID2" "$SECRET2" 5 "$FIRST" 0
is "$CODE $(json_get "$RESP" '["code"]') $(json_get "$RESP" '["offset"]') $(up_hdr Upload-Offset)" \
	"409 offset_mismatch 0 0" "a wrong offset: 409 offset_mismatch with the acknowledged offset (JSON and header)"
UP_DIGEST=$(printf 'not the bytes' | openssl dgst -sha256 -binary | base64) up_patch "$ID2" "$SECRET2" 0 "$FIRST" 0
is "$CODE $(json_get "$RESP" '["code"]')" "400 digest_mismatch" "bytes not matching Content-Digest: 400 digest_mismatch"
up_get "$ID2" "$SECRET2"
is "$(json_get "$RESP" '["offset"]') $(json_get "$RESP" '["interruptions"]')" "0 1" "... not acknowledged (offset 0), counted as an interruption"
ok "... and nothing of it in the spool" bash -c "[ -z \"\$(ls -A '$STATE/uploads/$ID2.spool')\" ]"
UP_PREFIX=$(printf 'not the bytes' | openssl dgst -sha256 -binary | base64) up_patch "$ID2" "$SECRET2" 0 "$FIRST" 0
is "$CODE $(json_get "$RESP" '["code"]')" "400 digest_mismatch" "a body not matching X-Wingxfer-Prefix-Digest: 400 digest_mismatch"
like "$(json_get "$RESP" '["error"]')" 'X-Wingxfer-Prefix-Digest' "... the error names the header"
up_get "$ID2" "$SECRET2"
is "$(json_get "$RESP" '["offset"]') $(json_get "$RESP" '["interruptions"]')" "0 2" "... not acknowledged (offset 0), counted as an interruption"
UP_PREFIX='abc' up_patch "$ID2" "$SECRET2" 0 "$FIRST" 0
is "$CODE $(json_get "$RESP" '["code"]')" "400 bad_request" "a malformed X-Wingxfer-Prefix-Digest: 400 bad_request"
like "$(json_get "$RESP" '["error"]')" 'X-Wingxfer-Prefix-Digest is malformed' "... naming the header"
# The right prefix digest, and a right Content-Digest beside a wrong prefix one: each one sent is checked.
UP_PREFIX=$(printf 'not the bytes' | openssl dgst -sha256 -binary | base64) up_patch "$ID2" "$SECRET2" 0 "$FIRST" 0 "" \
	-H "Content-Digest: sha-256=:$(b64sha "$FIRST"):"
is "$CODE $(json_get "$RESP" '["code"]')" "400 digest_mismatch" "a right Content-Digest beside a wrong X-Wingxfer-Prefix-Digest: 400 digest_mismatch"
CODE=$(https_curl --http1.1 -X PATCH -o "$WX_TEST_TMP/up.resp" -w '%{http_code}' -H "Authorization: Bearer $SECRET2" \
	-H 'Upload-Complete: ?0' -H "Content-Digest: sha-256=:$(b64sha "$FIRST"):" --data-binary "@$FIRST" \
	"$URL/api/transfers/uploads/$ID2" 2>/dev/null)
is "$CODE $(json_get "$(cat "$WX_TEST_TMP/up.resp")" '["code"]')" "400 bad_request" "no Upload-Offset: 400 bad_request"
CODE=$(https_curl --http1.1 -X PATCH -o "$WX_TEST_TMP/up.resp" -w '%{http_code}' -H "Authorization: Bearer $SECRET2" \
	-H 'Upload-Offset: 0' -H 'Upload-Complete: ?0' -H "Content-Digest: sha-256=:$(b64sha "$FIRST"):" \
	-H 'Transfer-Encoding: chunked' --data-binary "@$FIRST" "$URL/api/transfers/uploads/$ID2" 2>/dev/null)
is "$CODE $(json_get "$(cat "$WX_TEST_TMP/up.resp")" '["code"]')" "411 length_required" "no Content-Length (chunked coding): 411 length_required"
# Over the limit: the answer comes with not one body byte sent.
over=$(python3 - "${NODE_PORT[d]}" "$ID2" "$SECRET2" "$WX_CA" <<'PY'
import socket, ssl, sys
port, upload, secret, ca = sys.argv[1:]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))), server_hostname="127.0.0.1")
s.sendall(("PATCH /api/transfers/uploads/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Authorization: Bearer %s\r\nUpload-Offset: 0\r\nUpload-Complete: ?0\r\n"
           "Content-Digest: sha-256=:%s=:\r\nContent-Type: application/partial-upload\r\n"
           "Content-Length: 100663297\r\n\r\n" % (upload, secret, "A" * 43)).encode())
s.sendall(b"x" * (1 << 20))  # 1 MiB of the 96 MiB + 1, then nothing
s.settimeout(120)
data = b""
while b"\r\n\r\n" not in data or b"}" not in data.split(b"\r\n\r\n", 1)[1]:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
print(head.split(b" ")[1].decode(), body.decode(errors="replace").strip())
PY
)
is "${over%% *} $(grep -o '"code":"[a-z_]*"' <<< "$over")" '413 "code":"too_large"' "Content-Length over X-Wingxfer-Chunk-Max: 413 too_large without waiting for the body"
up_get "$ID2" "$SECRET2"
is "$CODE $(json_get "$RESP" '["offset"]') $(json_get "$RESP" '["state"]')" "200 0 receiving" "after all that: offset 0, receiving"

# Two writers at one offset, the second starting while the first still sends.
( up_patch "$ID2" "$SECRET2" 0 "$FIRST" 0 "" --limit-rate 600k; echo "$CODE $(json_get "$RESP" '["code"]' 2>/dev/null)" > "$WX_TEST_TMP/race.1" ) &
R1=$!; track_pid $R1
wait_for "the first writer's bytes" 30 bash -c "[ -s \"\$(ls $STATE/uploads/$ID2.spool/.tmp-* 2>/dev/null | head -n1)\" ]"
( up_patch "$ID2" "$SECRET2" 0 "$FIRST" 0 "" --limit-rate 600k; echo "$CODE $(json_get "$RESP" '["code"]' 2>/dev/null)" > "$WX_TEST_TMP/race.2" ) &
R2=$!; track_pid $R2
wait_for "both writers to end" 60 bash -c "! kill -0 $R1 2>/dev/null && ! kill -0 $R2 2>/dev/null"
is "$(cat "$WX_TEST_TMP/race.1") / $(cat "$WX_TEST_TMP/race.2")" "409 superseded / 204 " \
	"racing writers: the newer wins (204), the older stops (409 superseded)"
up_get "$ID2" "$SECRET2"
is "$(json_get "$RESP" '["offset"]')" 2097152 "... the chunk was acknowledged once"

# The FastCGI process reading a PATCH killed -9 mid-body: a client sends
# the headers and 300 KiB of a 512 KiB chunk, then holds the connection.
split -b $CHUNK -d -a 4 "$WX_TEST_TMP/body" "$WX_TEST_TMP/part."
NEXT="$WX_TEST_TMP/part.0004"   # [2 MiB, 2.5 MiB)
python3 - "${NODE_PORT[d]}" "$ID2" "$SECRET2" "$WX_CA" "$NEXT" "$(b64sha "$NEXT")" "$WX_TEST_TMP/release" \
	> "$WX_TEST_TMP/killed.code" 2>&1 <<'PY' &
import os, socket, ssl, sys, time
port, upload, secret, ca, path, digest, release = sys.argv[1:]
data = open(path, "rb").read()
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port))), server_hostname="127.0.0.1")
s.sendall(("PATCH /api/transfers/uploads/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Authorization: Bearer %s\r\nUpload-Offset: 2097152\r\nUpload-Complete: ?0\r\n"
           "Content-Digest: sha-256=:%s:\r\nContent-Type: application/partial-upload\r\n"
           "Content-Length: %d\r\n\r\n" % (upload, secret, digest, len(data))).encode())
s.sendall(data[:300 * 1024])
while not os.path.exists(release):
    time.sleep(0.1)
s.settimeout(120)
try:
    print(s.recv(4096).split(b" ")[1].decode())
except Exception as e:
    print("no answer (%s)" % type(e).__name__)
PY
K=$!; track_pid $K
# Its chunk file exists once every header check passed and the body is being read.
find_victim() { local t; t=$(tmp_chunk "$ID2"); [ -n "$t" ] && victim=$(holder_of "$t"); }
victim=
WX_WAIT_MIN=60 wait_for "the chunk's file in the spool, and its reader" 30 find_victim ||
	{ diag "spool: $(ls -la "$STATE/uploads/$ID2.spool")"; grep PATCH "$DEST_DIR/web/access.log" | tail -n 4 | sed 's/^/# /'; }
ok "the FastCGI worker reading the chunk found ($victim)" test -n "$victim"
[ -n "$victim" ] && kill -9 "$victim"
touch "$WX_TEST_TMP/release"
wait_for "the cut PATCH to end" 60 bash -c "! kill -0 $K 2>/dev/null"
unlike "$(cat "$WX_TEST_TMP/killed.code")" '^20' "... the cut PATCH got no 2xx ($(cat "$WX_TEST_TMP/killed.code"))"
wait_for "a worker to answer" 60 up_answers "$ID2" "$SECRET2"
up_get "$ID2" "$SECRET2"
is "$(json_get "$RESP" '["offset"]') $(json_get "$RESP" '["state"]')" "2097152 receiving" "... the offset is unchanged"
is "$(json_get "$RESP" '["prefix_sha256"]')" "$(sha256sum "$FIRST" | cut -d' ' -f1)" "... prefix_sha256 is the SHA-256 of the acknowledged bytes"
code=$(https_curl --http1.1 -I -o /dev/null -D "$WX_TEST_TMP/up.hdr" -w '%{http_code}' -H "Authorization: Bearer $SECRET2" "$URL/api/transfers/uploads/$ID2")
is "$code $(up_hdr Upload-Offset) $(up_hdr Upload-Complete) $(up_hdr X-Wingxfer-Upload-State)" "204 2097152 ?0 receiving" \
	"HEAD: 204 with Upload-Offset, Upload-Complete and X-Wingxfer-Upload-State"
UP_BY_PREFIX=1 up_send_all "$ID2" "$SECRET2" "$WX_TEST_TMP/body" $CHUNK 2097152
like "$SENT_CODES" '^(204 )*202$' "the chunk sent again and the rest, with X-Wingxfer-Prefix-Digest only: acknowledged"
wait_for "the upload to finish" 60 up_final "$ID2" "$SECRET2"
up_get "$ID2" "$SECRET2"
is "$(json_get "$RESP" '["state"]')" completed "... completed" || diag "$RESP"
ok "... the tree arrived byte-identical" same_tree "$WX_TEST_TMP/src" "$DATA/$U2"
is "$(callbacks "$U2" success) $(callbacks "$U2" failure)" "1 0" "... one success callback, no failure"
# The killed reader cannot count itself.
is "$(json_get "$RESP" '["interruptions"]')" 4 "... interruptions counted (the three digest mismatches, the superseded writer)"
ok "... resumes counted" test "$(json_get "$RESP" '["resumes"]')" -ge 1

# The assembler killed -9: the next request starts a new one, which reads
# the chunks received so far again from the spool.
done_chunks() { ls "$STATE/uploads/$1.spool" | grep -c '^\.done-' || true; }
kept() { [ "$(ls -A "$STATE/uploads/$1.spool" | grep -c '^\.done-')" = "$2" ]; }
U=$(new_server)
up_create "$(token_for "$U")"
U3=$U ID3=$ID SECRET3=$SECRET
for i in 0 1 2; do up_patch "$ID3" "$SECRET3" $((i * CHUNK)) "$WX_TEST_TMP/part.000$i" 0; done
is "$CODE" 204 "three chunks acknowledged"
ok "... the assembler keeps the three chunks it consumed (.done-<offset>)" \
	wait_for "three consumed chunks" 120 kept "$ID3" 3
apid=$(record_of "$U3" '["pid"]')
ok "the record names the assembler ($apid)" grep -qa -- --assemble "/proc/$apid/cmdline"
kill -9 "$apid"
wait_for "the transfer's lock to be free" 60 lock_free "$U3"
up_get "$ID3" "$SECRET3"
is "$CODE $(json_get "$RESP" '["offset"]') $(json_get "$RESP" '["state"]') $(json_get "$RESP" '["restarts"]')" \
	"200 $((3 * CHUNK)) receiving 1" "the next request: a new assembler, the offset stays (nothing to send again)"
ok "... the new assembler holds the lock" bash -c "! flock -n '$STATE/transfers/$U3.lock' true"
new_assembler() { local p; p=$(record_of "$U3" '["pid"]'); [ -n "$p" ] && [ "$p" != "$apid" ]; }
ok "... the record names the new assembler" wait_for "the new assembler" 120 new_assembler
up_send_all "$ID3" "$SECRET3" "$WX_TEST_TMP/body" $CHUNK $((3 * CHUNK))
like "$SENT_CODES" '^(204 )*202$' "... the rest from the acknowledged offset: acknowledged"
wait_for "the upload to finish" 60 up_final "$ID3" "$SECRET3"
up_get "$ID3" "$SECRET3"
is "$(json_get "$RESP" '["state"]')" completed "... completed" || diag "$RESP"
ok "... the tree arrived byte-identical" same_tree "$WX_TEST_TMP/src" "$DATA/$U3"
is "$(callbacks "$U3" success) $(callbacks "$U3" failure)" "1 0" "... one success callback, no failure"
ok "... the spool is gone" test ! -e "$STATE/uploads/$ID3.spool"

# No room to keep them (the uploads' directory on a 64 MiB tmpfs: less free
# than disk_reserve + 1 GiB): they are dropped; a dead assembler then costs
# the body from offset 0.
mkdir -p "$STATE/uploads"
if mount -t tmpfs -o size=64m,mode=0700 wingxfer-spool "$STATE/uploads" 2>/dev/null; then
	trap 'umount "$STATE/uploads" 2>/dev/null || umount -l "$STATE/uploads"; _tap_cleanup' EXIT
	U=$(new_server)
	up_create "$(token_for "$U")"
	U5=$U ID5=$ID SECRET5=$SECRET
	for i in 0 1 2; do up_patch "$ID5" "$SECRET5" $((i * CHUNK)) "$WX_TEST_TMP/part.000$i" 0; done
	is "$CODE" 204 "small spool: three chunks acknowledged"
	ok "... the consumed chunks are dropped for room (.dropped)" \
		wait_for ".dropped" 120 test -e "$STATE/uploads/$ID5.spool/.dropped"
	is "$(done_chunks "$ID5")" 0 "... none is kept"
	apid=$(record_of "$U5" '["pid"]')
	kill -9 "$apid"
	wait_for "the transfer's lock to be free" 60 lock_free "$U5"
	up_get "$ID5" "$SECRET5"
	is "$CODE $(json_get "$RESP" '["offset"]') $(json_get "$RESP" '["state"]') $(json_get "$RESP" '["restarts"]')" \
		"200 0 receiving 1" "... the assembler killed: a new one, offset back to 0"
	up_patch "$ID5" "$SECRET5" $((3 * CHUNK)) "$WX_TEST_TMP/part.0003" 0
	is "$CODE $(json_get "$RESP" '["offset"]')" "409 0" "... a chunk at the old offset: 409 with offset 0"
	up_send_all "$ID5" "$SECRET5" "$WX_TEST_TMP/body" $CHUNK
	like "$SENT_CODES" '^(204 )*202$' "... the body sent again from 0: acknowledged"
	wait_for "the upload to finish" 60 up_final "$ID5" "$SECRET5"
	up_get "$ID5" "$SECRET5"
	is "$(json_get "$RESP" '["state"]')" completed "... completed" || diag "$RESP"
	ok "... the tree arrived byte-identical" same_tree "$WX_TEST_TMP/src" "$DATA/$U5"
	is "$(callbacks "$U5" success) $(callbacks "$U5" failure)" "1 0" "... one success callback, no failure"
	umount "$STATE/uploads" || umount -l "$STATE/uploads"
	trap _tap_cleanup EXIT
else
	skip "small spool: the chunks are dropped for room" "cannot mount a tmpfs here (mount -t tmpfs failed)"
fi

# Cancel with the upload's secret.
U=$(new_server)
up_create "$(token_for "$U")"
U4=$U ID4=$ID SECRET4=$SECRET
up_patch "$ID4" "$SECRET4" 0 "$WX_TEST_TMP/part.0000" 0
code=$(https_curl --http1.1 -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer $SECRET2" "$URL/api/transfers/uploads/$ID4")
is "$code" 401 "DELETE with another upload's secret: 401"
code=$(https_curl --http1.1 -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer $SECRET4" "$URL/api/transfers/uploads/$ID4")
is "$code" 204 "DELETE of the upload: 204"
up_get "$ID4" "$SECRET4"
is "$(json_get "$RESP" '["state"]')" cancelled "... GET: cancelled"
is "$(record_of "$U4" '["status"]')" cancelled "... the record: cancelled"
ok "... no staging, nothing installed, no spool" test ! -e "$DATA/.wingxfer-staging/$U4" -a ! -e "$DATA/$U4" -a ! -e "$STATE/uploads/$ID4.spool"
wait_for "the failure callback" 30 has_callback "$U4" failure
is "$(callbacks "$U4" failure) $(callbacks "$U4" success)" "1 0" "... one failure callback"
up_patch "$ID4" "$SECRET4" $CHUNK "$WX_TEST_TMP/part.0001" 0
is "$CODE $(json_get "$RESP" '["code"]')" "410 cancelled" "PATCH after cancel: 410 cancelled"

# Cancel with the node token, as the panel does.
U=$(new_server)
up_create "$(token_for "$U")"
U5=$U ID5=$ID SECRET5=$SECRET
code=$(https_curl --http1.1 -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer token-d" "$URL/api/transfers/$U5")
is "$code" 202 "DELETE /api/transfers/<uuid> (node token) of a chunked upload: 202"
wait_for "the upload to end" 60 up_final "$ID5" "$SECRET5"
up_get "$ID5" "$SECRET5"
is "$(json_get "$RESP" '["state"]') $(record_of "$U5" '["status"]')" "cancelled cancelled" "... the upload and the record: cancelled"

# The whole body's digest does not match: the upload fails.
U=$(new_server)
up_create "$(token_for "$U")"
U6=$U ID6=$ID SECRET6=$SECRET
up_patch "$ID6" "$SECRET6" 0 "$WX_TEST_TMP/body" 1 "$(printf 'another body' | openssl dgst -sha256 -binary | base64)"
is "$CODE $(json_get "$RESP" '["code"]')" "422 repr_digest_mismatch" "a wrong Repr-Digest: 422 repr_digest_mismatch"
wait_for "the upload to end" 60 up_final "$ID6" "$SECRET6"
up_get "$ID6" "$SECRET6"
is "$(json_get "$RESP" '["state"]') $(json_get "$RESP" '["status"]')" "failed 422" "... GET: failed, status 422"
ok "... nothing installed" test ! -e "$DATA/$U6"
wait_for "the failure callback" 30 has_callback "$U6" failure
is "$(callbacks "$U6" failure) $(callbacks "$U6" success)" "1 0" "... one failure callback"

# X-Wingxfer-Checksum: body.  The node requires an archive checksum from now on.
sed -i 's/^    disk_reserve: 0$/    disk_reserve: 0\n    perform_checksum_checks: true/' "$DEST_DIR/config.yml"
python3 "$top_srcdir/tests/lib/multipart.py" --boundary "$BOUNDARY" "$WX_TEST_TMP/bare" \
	"archive=@$WX_TEST_TMP/tree.tgz" || echo "not ok - making the body without checksum parts"
U=$(new_server)
up_create "$(token_for "$U")" -H 'X-Wingxfer-Checksum: md5'
is "$CODE $(json_get "$RESP" '["code"]')" "400 bad_request" "X-Wingxfer-Checksum other than body: 400 bad_request"
like "$(json_get "$RESP" '["error"]')" 'X-Wingxfer-Checksum' "... naming the header"
up_create "$(token_for "$U")" -H 'X-Wingxfer-Checksum: body'
is "$CODE" 201 "X-Wingxfer-Checksum: body: create 201"
UP_BY_PREFIX=1 up_send_all "$ID" "$SECRET" "$WX_TEST_TMP/bare" $CHUNK
like "$SENT_CODES" '^(204 )*202$' "... a body without checksum parts: every chunk acknowledged"
wait_for "the upload to finish" 60 up_final "$ID" "$SECRET"
up_get "$ID" "$SECRET"
is "$(json_get "$RESP" '["state"]') $(json_get "$RESP" '["result"]["checksum"]')" "completed verified" \
	"... completed, the checksum verified (perform_checksum_checks: true)" || diag "$RESP"
is "$(json_get "$RESP" '["result"]["sha256"]')" "$(sha256sum "$WX_TEST_TMP/bare" | cut -d' ' -f1)" \
	"... the checksum is the whole body's SHA-256"
ok "... the tree arrived byte-identical" same_tree "$WX_TEST_TMP/src" "$DATA/$U"
wait_for "the success callback" 30 has_callback "$U" success
is "$(callbacks "$U" success) $(callbacks "$U" failure)" "1 0" "... one success callback"
U=$(new_server)
up_create "$(token_for "$U")"
UP_BY_PREFIX=1 up_send_all "$ID" "$SECRET" "$WX_TEST_TMP/bare" $CHUNK
wait_for "the upload to end" 60 up_final "$ID" "$SECRET"
up_get "$ID" "$SECRET"
is "$(json_get "$RESP" '["state"]') $(json_get "$RESP" '["status"]')" "failed 422" \
	"the same body without X-Wingxfer-Checksum: failed 422 (no archive checksum)"
like "$(json_get "$RESP" '["error"]')" 'no archive checksum' "... saying so"
ok "... nothing installed" test ! -e "$DATA/$U"
node_stop d

# lighttpd: the happy path.
node_setup "l"
DEST_DIR="$WX_TEST_TMP/l"
DATA="$DEST_DIR/data"
if node_start l lighttpd; then
	URL=${NODE_URL[l]}
	panel_node dest "id-l" "token-l" "$URL"
	U=$(new_server)
	up_create "$(token_for "$U")"
	is "$CODE" 201 "lighttpd: create: 201"
	up_send_all "$ID" "$SECRET" "$WX_TEST_TMP/body" $CHUNK
	like "$SENT_CODES" '^(204 )*202$' "lighttpd: every chunk acknowledged"
	wait_for "the upload to finish" 60 up_final "$ID" "$SECRET"
	up_get "$ID" "$SECRET"
	is "$(json_get "$RESP" '["state"]')" completed "lighttpd: completed"
	ok "lighttpd: the tree arrived byte-identical" same_tree "$WX_TEST_TMP/src" "$DATA/$U"
	is "$(callbacks "$U" success)" 1 "lighttpd: one success callback"
	node_stop l
else
	ok "lighttpd starts" false
fi

done_testing
