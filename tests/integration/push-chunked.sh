#!/bin/bash
# wingxfer-push's side of the chunked, resumable protocol (docs/protocol.md)
# against tests/receiver/chunked-receiver, a strict stand-in destination that
# checks every header, offset and digest, reassembles the body and injects
# faults: negotiation (chunked only when named and configured), the body
# byte-identical to the single POST's, a 413 halving the chunk size, resume
# after a cut, 502s, a busy answer, a lost 202 and an offset moved back,
# a bounded give-up and a cancel (both DELETE the upload), the counters in
# the record and the status outputs, the secret never shown.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
wx_tmpdir
panel_start
source_node "    stall_timeout: 10
    response_timeout: 8
    connect_timeout: 3
    preflight: false
    chunk_size: 2MiB
    resume_attempts: 3"
CFG_OFF="$WX_TEST_TMP/config-off.yml"
{ cat "$CFG"; echo "    chunked: off"; } > "$CFG_OFF"
CFG_PATIENT="$WX_TEST_TMP/config-patient.yml"
sed -e 's/^    stall_timeout: 10$/    stall_timeout: 1/' -e 's/^    resume_attempts: 3$/    resume_attempts: 1000/' "$CFG" > "$CFG_PATIENT"
CFG_LIMIT="$WX_TEST_TMP/config-limit.yml"
{ cat "$CFG"; echo "    upload_limit: 1"; } > "$CFG_LIMIT"
TREES="$top_srcdir/tests/lib/trees.py"
MIB=1048576

# crecv_start NAME [ARGS...]: a chunked-receiver; sets CR_URL CR_DIR CR_RECORD CR_BASE.
crecv_start() {
	local name=$1; shift
	CR_DIR="$WX_TEST_TMP/crecv-$name"
	mkdir -p "$CR_DIR/bodies"
	"$top_srcdir/tests/receiver/chunked-receiver" --port-file "$CR_DIR/port" \
		--record "$CR_DIR/record.jsonl" --dir "$CR_DIR/bodies" "$@" 2>>"$CR_DIR/log" &
	track_pid $!
	wait_for "chunked-receiver $name" 20 test -s "$CR_DIR/port" || return 1
	CR_BASE="http://127.0.0.1:$(cat "$CR_DIR/port")"
	CR_URL="$CR_BASE/api/transfers"
	CR_RECORD="$CR_DIR/record.jsonl"
}
fault() { curl -sf -X POST --data "$1" "$CR_BASE/_fault" >/dev/null; }
# q PY-EXPR: evaluated with ev (the receiver's events, a list of dicts).
q() {
	python3 -c 'import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
print(eval(sys.argv[2]))' "$CR_RECORD" "$1"
}
patches() { q "len([e for e in ev if e['event'] == 'patch'])"; }
violations() { q "[e['violation'] for e in ev if e.get('violation')]"; }
done_body() { q "[e['body'] for e in ev if e['event'] == 'completed'][0]"; }
chunked() { rec "$STATE" "$1" "[\"extra\"][\"chunked\"][\"$2\"]"; }
# run_transfer CFG U: POSTs the transfer and waits for the worker.
run_transfer() {
	local out
	out=$(post_transfer "$1" "$2" "$CR_URL")
	[ "$(status_of "$out")" = 202 ] || { diag "POST transfer: $out"; return 1; }
	track_worker "$STATE" "$2"
	wait_worker "$STATE" "$2" 120
}
# archive_of BODY: the archive part of a multipart body file, into BODY.archive.
archive_of() {
	python3 - "$1" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
boundary = data[2:data.index(b"\r\n")]
start = data.index(b"\r\n\r\n") + 4
end = data.index(b"\r\n--" + boundary, start)
open(sys.argv[1] + ".archive", "wb").write(data[start:end])
PY
}
# same_tree BODY U LABEL: the body's archive extracts to the server's tree.
same_tree() {
	local x="$WX_TEST_TMP/x-$3"
	archive_of "$1" && mkdir -p "$x" && bsdtar -xpf "$1.archive" -C "$x" &&
		[ "$(python3 "$TREES" manifest "$x")" = "$(python3 "$TREES" manifest "$DATA/$2")" ]
}

# --- the body in chunks equals the single POST's body -------------------------
U=$(new_source_server "$DATA")
python3 "$TREES" make "$DATA/$U" --files 60 >/dev/null
head -c 5000000 /dev/urandom > "$DATA/$U/world/data.bin"
crecv_start plain --chunk-max $((3 * MIB))
ok "plain: the transfer ends" run_transfer "$CFG" "$U"
is "$(rec "$STATE" "$U" '["status"]')" completed "plain: completed"
is "$(violations)" "[]" "plain: every request follows docs/protocol.md (headers, offsets, digests)"
is "$(q "[e['event'] for e in ev if e['event'] in ('create', 'single')]")" "['create']" \
	"plain: one create, no single POST"
is "$(q "[e['headers']['authorization'] for e in ev if e['event'] == 'create'][0]")" "$TEST_TOKEN" \
	"plain: the create carries the panel's token"
is "$(q "max(e['length'] for e in ev if e['event'] == 'patch')")" $((2 * MIB)) \
	"plain: chunks of min(chunk_size 2 MiB, Chunk-Max 3 MiB)"
like "$(patches)" '^([3-9]|[1-9][0-9])$' "plain: several PATCHes"
is "$(q "[e['complete'] for e in ev if e['event'] == 'patch'][-1]")" True "plain: the last says Upload-Complete: ?1"
is "$(q "[e['event'] for e in ev if e['event'] in ('completed', 'failed')]")" "['completed']" \
	"plain: the destination reassembled a body whose multipart shape and checksums are right"
CHUNK_BODY=$(done_body)
is "$(chunked "$U" acked)" "$(stat -c %s "$CHUNK_BODY")" "plain: extra.chunked.acked = the body's size"
is "$(chunked "$U" chunk_size)" $((2 * MIB)) "plain: extra.chunked.chunk_size"
is "$(chunked "$U" interruptions) $(chunked "$U" resent_bytes)" "0 0" "plain: no interruption, nothing resent"
ok "plain: the archive extracts to the server's tree" same_tree "$CHUNK_BODY" "$U" plain
is "$(rec "$STATE" "$U" '["extra"]["archive_sha256"]')" "$(sha256sum "$CHUNK_BODY.archive" | cut -d' ' -f1)" \
	"plain: the recorded archive checksum is the SHA-256 of the archive received"
SECRET=$(rec "$STATE" "$U" '["extra"]["resume"]["secret"]')
like "$SECRET" '^[0-9a-f]{64}$' "plain: the upload's secret is in the record (to resume)"
is "$(stat -c %a "$STATE/transfers/$U.json")" 600 "plain: the record is 0600"
st=$(body_of "$(cgi wingxfer-source "$CFG" GET "/api/servers/$U/transfer" "Bearer token-src" </dev/null)")
is "$(json_get "$st" '["chunked"]["acked"]')" "$(chunked "$U" acked)" "plain: GET /api/servers/:uuid/transfer shows the counters"
stxt=$(WINGXFER_CONFIG="$CFG" "$WX_BIN/wingxfer-status" "$U")
like "$stxt" "chunked: upload [0-9a-f]{32}, .* acknowledged, chunks of 2.0 MiB, 0 interruptions" \
	"plain: wingxfer-status shows them"
sjson=$(WINGXFER_CONFIG="$CFG" "$WX_BIN/wingxfer-status" --json "$U")
secret_seen() { grep -l "$SECRET" "$STATE/transfers/$U.log" "$STATE/transfers/$U.events" 2>/dev/null; \
	printf '%s\n%s\n%s\n' "$st" "$stxt" "$sjson" | grep -c "$SECRET"; }
is "$(secret_seen)" 0 "plain: the secret is in no log, events file or status output"

# The same server, the single POST (chunked: off): the same bytes, but for the boundary.
U2=$(new_source_server "$DATA")
rmdir "$DATA/$U2" && cp -a "$DATA/$U" "$DATA/$U2"
ok "off: the transfer ends" run_transfer "$CFG_OFF" "$U2"
is "$(q "[e['event'] for e in ev if e['event'] in ('create', 'single')]")" "['create', 'single']" \
	"off: system.transfers.chunked off sends the single POST to a chunked destination"
SINGLE_BODY=$(q "[e['body'] for e in ev if e['event'] == 'single'][-1]")
# same_content A B: two bodies carry the same tar (the chunked one's archive
# is cut into more gzip members / zstd frames: its marks), and every other
# byte is the same but for the boundary and the archive's checksums.
same_content() {
	python3 - "$1" "$2" <<'PY'
import gzip, re, subprocess, sys
def split(path):
    data = open(path, "rb").read()
    boundary = data[2:data.index(b"\r\n")]
    start = data.index(b"\r\n\r\n") + 4
    end = data.index(b"\r\n--" + boundary, start)
    archive = data[start:end]
    if archive[:2] == b"\x1f\x8b":
        tar = gzip.decompress(archive)
    else:
        tar = subprocess.run(["zstd", "-dcq"], input=archive, stdout=subprocess.PIPE, check=True).stdout
    rest = (data[:start] + data[end:]).replace(boundary, b"B")
    rest = re.sub(rb"\r\n\r\n[0-9a-f]{64}", b"\r\n\r\nSUM", rest)
    return tar, rest
(ta, ra), (tb, rb) = split(sys.argv[1]), split(sys.argv[2])
print(ta == tb and ra == rb, len(ta), len(tb), ra == rb)
PY
}
like "$(same_content "$SINGLE_BODY" "$CHUNK_BODY")" '^True ' \
	"off: the chunked body carries the single POST's tar, and the same parts around it: deterministic archive"

# The same with gzip (parallel gzip): a destination naming gzip and chunked only.
crecv_start gzip --capabilities "gzip, chunked" --chunk-max 1572864
U3=$(new_source_server "$DATA") U4=$(new_source_server "$DATA")
rmdir "$DATA/$U3" "$DATA/$U4" && cp -a "$DATA/$U" "$DATA/$U3" && cp -a "$DATA/$U" "$DATA/$U4"
ok "gzip: the chunked transfer ends" run_transfer "$CFG" "$U3"
ok "gzip: the single POST ends" run_transfer "$CFG_OFF" "$U4"
is "$(rec "$STATE" "$U3" '["extra"]["codec"]') $(rec "$STATE" "$U4" '["extra"]["codec"]')" "gzip gzip" "gzip: both sent tar.gz"
is "$(q "sorted(set(e['length'] for e in ev if e['event'] == 'patch'))[-1]")" 1572864 \
	"gzip: chunks of X-Wingxfer-Chunk-Max (1.5 MiB) when it is below chunk_size"
like "$(same_content "$(q "[e['body'] for e in ev if e['event'] == 'single'][-1]")" "$(done_body)")" '^True ' \
	"gzip: the chunked body carries the single POST's tar, and the same parts around it"

# --- upload_limit paces the chunks too ----------------------------------------------
U=$(new_source_server "$DATA")
head -c 4000000 /dev/urandom > "$DATA/$U/data.bin"
crecv_start limit
ok "limit: the transfer ends" run_transfer "$CFG_LIMIT" "$U"
ms=$(q "int(1000 * ([e['end'] for e in ev if e['event'] == 'patch'][-1] - [e['start'] for e in ev if e['event'] == 'patch'][0]))")
is "$(rec "$STATE" "$U" '["status"]') $(q "len([e for e in ev if e['event'] == 'patch'])")" "completed 2" "limit: completed in 2 chunks"
# At 1 MiB/s with at most one second's burst (and one take), the PATCHes of
# 4 MB take at least 2.6 s.
ok "limit: system.transfers.upload_limit (1 MiB/s) holds: $ms ms for 4 MB of chunks" test "$ms" -ge 2500

# --- a destination that does not name chunked: the single POST -------------------
U=$(new_source_server "$DATA")
head -c 300000 /dev/urandom > "$DATA/$U/data.bin"
crecv_start nocap --capabilities "zstd, gzip"
ok "nocap: the transfer ends" run_transfer "$CFG" "$U"
is "$(rec "$STATE" "$U" '["status"]')" completed "nocap: completed"
is "$(q "[e['event'] for e in ev if e['event'] in ('create', 'single', 'patch')]")" "['single']" \
	"nocap: no chunked request, the single POST"

# --- faults: 413 halves, a cut, 502s, busy, an offset moved back, the lost 202 ---
U=$(new_source_server "$DATA")
python3 "$TREES" make "$DATA/$U" --files 40 --seed 7 >/dev/null
head -c 6000000 /dev/urandom > "$DATA/$U/world/data.bin"
crecv_start faults
fault '{"kind": "limit", "max": 1500000}'
fault "{\"kind\": \"cut\", \"after\": 300000, \"min_offset\": $((2 * MIB))}"
fault "{\"kind\": \"status\", \"status\": 502, \"count\": 2, \"min_offset\": $((3 * MIB))}"
fault "{\"kind\": \"busy\", \"min_offset\": $((4 * MIB))}"
fault "{\"kind\": \"superseded\", \"min_offset\": $((5 * MIB))}"
fault '{"kind": "lose"}'
ok "faults: the transfer ends" run_transfer "$CFG" "$U"
is "$(rec "$STATE" "$U" '["status"]')" completed "faults: completed despite every fault"
is "$(violations)" "[]" "faults: every request follows docs/protocol.md"
is "$(q "[e['length'] for e in ev if e['event'] == 'patch'][0]")" $((2 * MIB)) "faults: the first chunk is 2 MiB"
is "$(q "[e['fault'] for e in ev if e['event'] == 'patch'][0]")" limit "faults: ... answered 413 by a hop"
is "$(q "sorted(set(e['length'] for e in ev if e['event'] == 'patch' and e.get('fault') != 'limit'))[-1]")" $MIB \
	"faults: then chunks of 1 MiB (halved)"
is "$(chunked "$U" chunk_size)" $MIB "faults: extra.chunked.chunk_size says 1 MiB"
is "$(q "sorted(e['fault'] for e in ev if e['event'] == 'patch' and e['fault'])")" \
	"['busy', 'cut', 'limit', 'lose', 'status', 'status', 'superseded']" "faults: every fault happened"
is "$(q "(lambda p: [x['offset'] for i, x in enumerate(p) if i and p[i - 1].get('fault') == 'cut'])([e for e in ev if e['event'] == 'patch'])")" \
	"[$((2 * MIB))]" "faults: after the cut, the chunk is sent again from the acknowledged offset"
# A cut connection is an interruption whether the worker asks the state (GET)
# or libcurl sends the chunk again at once on a fresh connection.
is "$(chunked "$U" interruptions) $(chunked "$U" resumes)" "5 5" \
	"faults: 5 interruptions and resumes (cut, two 502s, 409 superseded, the lost 202)"
is "$(q "(lambda r: r[[e.get('fault') for e in r].index('lose') + 1])([e for e in ev if e['event'] in ('get', 'patch')]).get('code') or 'state'")" \
	"$(q "'completed' if any(e.get('code') == 'completed' for e in ev) else 'state'")" \
	"faults: after the lost 202, the source learns the outcome (GET, or 409 completed)"
resent=$(chunked "$U" resent_bytes)
# Sent again: at most the chunk refused by the 413 (2 MiB), and one chunk (1 MiB)
# for each of the cut, the two 502s, the superseded, the busy answer and the lost 202.
ok "faults: bytes sent again ($resent) at most one chunk per interruption, 413 and busy answer" \
	test "$resent" -gt 0 -a "$resent" -le $((2 * MIB + 6 * MIB))
is "$(q "[e['event'] for e in ev if e['event'] in ('completed', 'failed')]")" "['completed']" \
	"faults: the destination's body is whole and right"
ok "faults: the archive extracts to the server's tree" same_tree "$(done_body)" "$U" faults
is "$(q "len([e for e in ev if e['event'] == 'delete'])")" 0 "faults: no DELETE on success"
is "$(callbacks "$U" | grep -c . || true)" 0 "faults: no failure callback"

# --- the destination lost acknowledged bytes: the body is made again ------------
U=$(new_source_server "$DATA")
python3 "$TREES" make "$DATA/$U" --files 40 --seed 9 >/dev/null
head -c 5000000 /dev/urandom > "$DATA/$U/world/data.bin"
crecv_start back
fault "{\"kind\": \"back\", \"to\": 700000, \"min_offset\": $((4 * MIB))}"
ok "back: the transfer ends" run_transfer "$CFG" "$U"
is "$(rec "$STATE" "$U" '["status"]')" completed "back: completed"
is "$(violations)" "[]" "back: every request follows docs/protocol.md"
is "$(q "(lambda p: [x['offset'] for i, x in enumerate(p) if i and p[i - 1].get('fault') == 'back'])([e for e in ev if e['event'] == 'patch'])")" \
	"[700000]" "back: after 409 offset_mismatch to 700000, the next chunk starts there"
like "$(cat "$STATE/transfers/$U.log")" 'made again from the start' "back: the body was made again"
like "$(cat "$STATE/transfers/$U.log")" 'matches the destination.s prefix' "back: ... and checked against prefix_sha256"
ok "back: the archive extracts to the server's tree" same_tree "$(done_body)" "$U" back

# --- kill -9 of the worker: its supervisor starts it again, it resumes --------
U=$(new_source_server "$DATA")
python3 "$TREES" make "$DATA/$U" --files 40 --seed 11 >/dev/null
head -c 5000000 /dev/urandom > "$DATA/$U/world/data.bin"
crecv_start kill
fault "{\"kind\": \"hold\", \"ms\": 3000, \"min_offset\": $((2 * MIB))}"
out=$(post_transfer "$CFG" "$U" "$CR_URL")
is "$(status_of "$out")" 202 "kill: 202"
track_worker "$STATE" "$U"
wait_for "the held chunk" 60 grep -q '"event": "held"' "$CR_RECORD"
pid1=$(rec_int "$STATE" "$U" pid)
ok "kill: kill -9 of the worker $pid1 while its second chunk is unanswered" kill -KILL "$pid1"
new_pid() { p=$(rec_int "$STATE" "$U" pid); [ -n "$p" ] && [ "$p" != "$pid1" ]; }
ok "kill: a new worker runs" wait_for "a new worker" 60 new_pid
track_worker "$STATE" "$U"
ok "kill: the transfer ends" wait_worker "$STATE" "$U" 120
is "$(rec "$STATE" "$U" '["status"]')" completed "kill: completed by the new worker"
is "$(violations)" "[]" "kill: every request follows docs/protocol.md"
like "$(cat "$STATE/transfers/$U.log")" 'died by signal 9.*starting it again' "kill: the supervisor says why it restarted the worker"
like "$(cat "$STATE/transfers/$U.log")" 'matches the destination.s prefix' "kill: the body made again matches the destination's prefix"
ok "kill: resumes counted" test "$(chunked "$U" resumes)" -ge 1
is "$(q "len([e for e in ev if e['event'] == 'create'])")" 1 "kill: one upload, created once"
ok "kill: the archive extracts to the server's tree" same_tree "$(done_body)" "$U" kill
is "$(callbacks "$U" | grep -c . || true)" 0 "kill: no failure callback"

# --- bounded give-up: the destination stays down --------------------------------
U=$(new_source_server "$DATA")
head -c 5000000 /dev/urandom > "$DATA/$U/data.bin"
crecv_start down
fault "{\"kind\": \"down\", \"min_offset\": $((2 * MIB))}"
ok "down: the worker ends" run_transfer "$CFG" "$U"
is "$(rec "$STATE" "$U" '["status"]')" failed "down: failed"
like "$(rec "$STATE" "$U" '["error"]')" 'interrupted 4 times in a row without progress \(system.transfers.resume_attempts\)' \
	"down: after resume_attempts (3) interruptions without progress"
is "$(q "len([e for e in ev if e['event'] == 'delete'])")" 1 "down: the upload is deleted (DELETE sent)"
is "$(callbacks "$U" | cut -d' ' -f1 | tr '\n' '|')" "failure|" "down: exactly one failure callback"

# --- while it resumes, wingxfer-watchdog lets it be (up to resume_window) ---------
U=$(new_source_server "$DATA")
head -c 3000000 /dev/urandom > "$DATA/$U/data.bin"
crecv_start patient
fault "{\"kind\": \"down\", \"min_offset\": $((2 * MIB))}"
out=$(post_transfer "$CFG_PATIENT" "$U" "$CR_URL")
is "$(status_of "$out")" 202 "patient: 202"
track_worker "$STATE" "$U"
idle_resuming() {
	[ "$(rec "$STATE" "$U" '["phase"]')" = resuming ] &&
		[ $(( $(date +%s) - $(rec_int "$STATE" "$U" progress_at) )) -ge 3 ]
}
ok "patient: resuming, no progress for 3 s (stall_timeout is 1 s)" wait_for "idle while resuming" 60 idle_resuming
wd_out=$("$WX_BIN/wingxfer-watchdog" --config "$CFG_PATIENT" 2>&1)
ok "patient: the watchdog does not stop a chunked upload that is resuming" test ! -e "$STATE/transfers/$U.cancel"
unlike "$wd_out" "$U" "patient: ... nor names it"
cgi wingxfer-source "$CFG" DELETE "/api/servers/$U/transfer" "Bearer token-src" </dev/null >/dev/null 2>&1
ok "patient: cancelled while resuming, the worker stops" wait_worker "$STATE" "$U" 20
is "$(rec "$STATE" "$U" '["status"]')" cancelled "patient: cancelled"
is "$(q "[e['status'] for e in ev if e['event'] == 'delete']")" "[204]" "patient: the upload is deleted"

# --- cancel mid-transfer: stops within a second, DELETE sent ------------------
U=$(new_source_server "$DATA")
head -c 5000000 /dev/urandom > "$DATA/$U/data.bin"
crecv_start cancel
fault "{\"kind\": \"hold\", \"ms\": 60000, \"min_offset\": $((2 * MIB))}"
out=$(post_transfer "$CFG" "$U" "$CR_URL")
is "$(status_of "$out")" 202 "cancel: 202"
track_worker "$STATE" "$U"
wait_for "the held chunk" 60 grep -q '"event": "held"' "$CR_RECORD"
t0=$(date +%s%N)
out=$(cgi wingxfer-source "$CFG" DELETE "/api/servers/$U/transfer" "Bearer token-src" </dev/null 2>/dev/null)
is "$(status_of "$out")" 202 "cancel: DELETE mid-transfer: 202"
ok "cancel: the worker stops" wait_worker "$STATE" "$U" 20
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$(rec "$STATE" "$U" '["status"]')" cancelled "cancel: the record says cancelled"
is "$(q "[e['status'] for e in ev if e['event'] == 'delete']")" "[204]" "cancel: the upload is deleted on the destination"
diag "cancel took $ms ms"
is "$(q "[e['event'] for e in ev if e['event'] in ('completed', 'failed')]")" "[]" "cancel: the destination never completed"
is "$(callbacks "$U" | cut -d' ' -f1 | tr '\n' '|')" "failure|" "cancel: exactly one failure callback"

done_testing
