#!/bin/bash
# upload_limit is node-wide: two push workers sending at the same time to a
# recording receiver share it.  Checked as an upper bound on the body bytes
# received over the elapsed time, which a slow machine only makes looser:
# bytes <= limit * elapsed + one second of the limit (the full bucket) +
# one read (128 KiB).  Per-worker buckets would let each have the whole
# limit and break the bound.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
wx_tmpdir
panel_start
panel_node src id-src token-src http://127.0.0.1:1
NODE="$WX_TEST_TMP/node"
CFG=$(make_node_config "$NODE" src "    upload_limit: 1
    compression_level: 0")
STATE="$NODE/state"
DATA="$NODE/data"
MIB=1048576

# The receiver without --save-dir: two requests at once would share its file names.
RECV_DIR="$WX_TEST_TMP/recv"
mkdir -p "$RECV_DIR"
"$top_srcdir/tests/receiver/recording-receiver" --port-file "$RECV_DIR/port" \
	--record "$RECV_DIR/record.jsonl" --capabilities gzip 2>>"$RECV_DIR/log" &
track_pid $!
wait_for "receiver" 20 test -s "$RECV_DIR/port"
RECV_URL="http://127.0.0.1:$(cat "$RECV_DIR/port")/api/transfers"
RECV_RECORD="$RECV_DIR/record.jsonl"

for i in 1 2; do
	U[$i]=$(new_uuid)
	make_server "$DATA" "${U[$i]}"
	head -c 3000000 /dev/urandom > "$DATA/${U[$i]}/blob.bin"
	panel_server "${U[$i]}"
	panel_api POST /_emulator/transfers \
		"{\"server\":\"${U[$i]}\",\"source\":\"src\",\"destination\":\"dst\",\"notify\":false}" >/dev/null
done

t0=$(date +%s%N)
for i in 1 2; do
	is "$(status_of "$(post_transfer "$CFG" "${U[$i]}" "$RECV_URL")")" 202 "transfer $i: 202"
done
for i in 1 2; do
	track_worker "$STATE" "${U[$i]}"
done
for i in 1 2; do
	ok "transfer $i: the worker finishes" wait_worker "$STATE" "${U[$i]}"
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))

for i in 1 2; do
	is "$(rec "$STATE" "${U[$i]}" '["status"]')" completed "transfer $i under upload_limit 1 MiB/s: completed"
done
summary=$(python3 -c 'import json, sys
done = [json.loads(l) for l in open(sys.argv[1]) if "\"done\"" in l]
print(len(done), sum(1 for r in done if r["complete"] and not r["errors"]), sum(r["body_bytes"] for r in done))' "$RECV_RECORD")
read -r n whole total <<< "$summary"
is "$n $whole" "2 2" "the receiver got both bodies whole"
ok "each body carries the 3 MB server (stored, not compressed)" test "$total" -ge 6000000
bound=$(( MIB * ms / 1000 + MIB + 128 * 1024 ))
ok "together $total bytes in $ms ms: at most 1 MiB/s over the run plus one bucket and one read ($bound)" \
	test "$total" -le "$bound"
ok "the node's bucket is a file in the state directory" test -f "$STATE/bandwidth-upload"

# --- a cancel while paced -------------------------------------------------------
# 8 MB at 1 MiB/s: the DELETE finds the worker waiting on the bucket.
U3=$(new_uuid)
make_server "$DATA" "$U3"
head -c 8000000 /dev/urandom > "$DATA/$U3/blob.bin"
panel_server "$U3"
panel_api POST /_emulator/transfers \
	"{\"server\":\"$U3\",\"source\":\"src\",\"destination\":\"dst\",\"notify\":false}" >/dev/null
post_transfer "$CFG" "$U3" "$RECV_URL" >/dev/null
track_worker "$STATE" "$U3"
wait_for "bytes on the wire" 60 counter_above "$STATE" "$U3" bytes_sent 0
out=$(cgi wingxfer-source "$CFG" DELETE "/api/servers/$U3/transfer" "Bearer token-src" </dev/null 2>/dev/null)
is "$(status_of "$out")" 202 "paced: DELETE mid-stream: 202"
ok "paced: the worker stops" wait_worker "$STATE" "$U3"
is "$(rec "$STATE" "$U3" '["status"]')" cancelled "paced: the record says cancelled"
is "$(recv_last '["complete"]')" false "paced: the receiver never got the whole body"
done_testing
