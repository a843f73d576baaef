#!/bin/bash
# wingxfer-status: the records of real transfers (an outgoing one by
# wingxfer-push to a slow recording receiver, watched with --follow; an
# incoming one received by wingxfer-destination as CGI), and synthetic
# records for what a real run rarely shows (a dead owner, a cancel under
# way, an unknown total, a malformed record), as text and as JSON.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
wx_tmpdir
panel_start
source_node
ST="$WX_BIN/wingxfer-status"

# status ARGS...: runs it on the node; sets OUT, ERR and RC.
status() {
	OUT=$(WINGXFER_CONFIG="$CFG" "$ST" "$@" 2>"$WX_TEST_TMP/status.err")
	RC=$?
	ERR=$(cat "$WX_TEST_TMP/status.err")
}
# jq_of JSON PY-EXPR: a field of a JSON document (python expression on v).
jq_of() { printf '%s' "$1" | python3 -c "import json,sys; v=json.load(sys.stdin); print($2)"; }

# --- nothing yet ------------------------------------------------------------
EMPTY="$WX_TEST_TMP/empty"
ECFG=$(make_node_config "$EMPTY" empty)
rm -rf "$EMPTY/state"
OUT=$(WINGXFER_CONFIG="$ECFG" "$ST"); RC=$?
is "$RC" 0 "no state directory: exit 0"
like "$OUT" '^No transfers on this node' "... says there are none"
ok "... and creates nothing" test ! -e "$EMPTY/state"
OUT=$(WINGXFER_CONFIG="$ECFG" "$ST" --json)
is "$(jq_of "$OUT" 'len(v["transfers"]), v["active"]')" "0 0" "... --json: an empty list"

# --- a real outgoing transfer, watched --------------------------------------
U=$(new_uuid)
make_server "$DATA" "$U"
panel_server "$U"
panel_api POST /_emulator/transfers \
	"{\"server\":\"$U\",\"source\":\"src\",\"destination\":\"dst\",\"notify\":false}" >/dev/null
head -c 30000000 /dev/urandom > "$DATA/$U/world.dat"
for i in $(seq 1 20); do echo "line $i" > "$DATA/$U/file$i.txt"; done
recv_start slow --mode slow --rate 1000000
out=$(post_transfer "$CFG" "$U" "$RECV_URL")
is "$(status_of "$out")" 202 "outgoing: the transfer starts (202)"
track_worker "$STATE" "$U"
wait_for "bytes on the wire" 60 counter_above "$STATE" "$U" bytes_sent 1000000
# Watched from now on, while it is surely active.
"$ST" --config "$CFG" --follow --json --interval 1 "$U" > "$WX_TEST_TMP/follow.jsonl" 2>"$WX_TEST_TMP/follow.err" &
FOLLOW=$!
track_pid $FOLLOW
status
is "$RC" 0 "while it streams: exit 0"
like "$OUT" "^1 transfer, 1 active" "... the count"
like "$OUT" "$U  outgoing  processing \\((streaming|archiving)\\)" "... the server, direction, state and phase"
like "$OUT" '\[#*-*\] +[0-9.]+%  [0-9.]+ [KMG]iB of [0-9.]+ MiB  [0-9.]+ [KMG]?i?B/s  ETA ' \
	"... a progress bar, percent, bytes of total, rate and ETA"
like "$OUT" "to $RECV_URL" "... where it goes"
unlike "$OUT" 'process is gone' "... its process is alive"
status --json
is "$(jq_of "$OUT" 'v["transfers"][0]["direction"], v["transfers"][0]["state"], v["transfers"][0]["owner_alive"]')" \
	"outgoing processing True" "--json: direction, state, owner alive"
is "$(jq_of "$OUT" 'v["transfers"][0]["destination_url"]')" "$RECV_URL" "--json: destination_url"
t='v["transfers"][0]'
like "$(jq_of "$OUT" "$t[\"bytes_total\"] > 30000000, 0 < $t[\"percent\"] <= 100, $t[\"bytes_total\"], $t[\"percent\"], $t[\"phase\"]")" \
	'^True True ' "--json: the total and a percent (0 < percent <= 100)"
ok "--json: a rate while it streams" test "$(jq_of "$OUT" 'v["transfers"][0]["rate_bytes_per_second"]')" -gt 0
wait_for "--follow to end with the transfer" 120 bash -c "! kill -0 $FOLLOW 2>/dev/null"
wait $FOLLOW; RC=$?
is "$RC" 0 "--follow --json ends by itself when the transfer ends (exit 0)"
ok "... after more than one snapshot" test "$(wc -l < "$WX_TEST_TMP/follow.jsonl")" -ge 2
last=$(tail -n 1 "$WX_TEST_TMP/follow.jsonl")
is "$(jq_of "$last" 'v["transfers"][0]["state"], v["active"]')" "completed 0" "... the last one says completed"
first=$(head -n 1 "$WX_TEST_TMP/follow.jsonl")
is "$(jq_of "$first" 'v["transfers"][0]["active"]')" True "... the first one said active"
wait_worker "$STATE" "$U"
status "$U"
like "$OUT" "$U  outgoing  completed" "finished: completed"
like "$OUT" '\[####################\] 100\.0%' "... a full bar"
like "$OUT" 'on average  took [0-9]+ s' "... the average rate and how long it took"
like "$OUT" '21 files' "... the file count"

# --- a real incoming transfer (wingxfer-destination as CGI) ------------------
DEST_DIR="$NODE"
. "$top_srcdir/tests/lib/destination.sh"
panel_node dest id-src token-src http://127.0.0.1:1
UI=$(new_server)
mkdir -p "$WX_TEST_TMP/in"; echo hello > "$WX_TEST_TMP/in/a.txt"
tar -C "$WX_TEST_TMP/in" -czf "$WX_TEST_TMP/in.tgz" .
body_for "$WX_TEST_TMP/in.body" "$WX_TEST_TMP/in.tgz"
dest_post "$(token_for "$UI")" "$WX_TEST_TMP/in.body"
is "$(status_of "$OUT")" 200 "incoming: received (200)"
status
like "$OUT" "^2 transfers, 0 active" "both listed"
like "$OUT" "$UI  incoming  completed" "incoming: direction and state"
status --json "$UI"
is "$(jq_of "$OUT" 'v["transfers"][0]["direction"], v["transfers"][0]["role"], v["transfers"][0]["state"]')" \
	"incoming destination completed" "incoming --json"

# --- synthetic records -------------------------------------------------------
# synth UUID JSON-FIELDS: writes a record as the programs would.
synth() {
	python3 - "$STATE/transfers/$1.json" "$1" "$2" <<'PY'
import json, sys, time
now = int(time.time())
r = {"uuid": sys.argv[2], "role": "source", "status": "processing", "phase": "streaming",
     "pid": 0, "request_id": "", "created_at": now - 300, "updated_at": now - 1,
     "progress_at": now - 1, "finished_at": 0, "bytes_total": 0, "bytes_read": 0,
     "bytes_sent": 0, "files": 0, "rate": 0.0, "url": None, "error": None,
     "warning": None, "callback": None}
r.update(json.loads(sys.argv[3]))
open(sys.argv[1], "w").write(json.dumps(r))
PY
}
UF=11111111-1111-4111-8111-111111111111
synth "$UF" '{"status":"failed","role":"destination","phase":"failed","finished_at":'$(( $(date +%s) - 100 ))',
  "bytes_total":1000000,"bytes_read":250000,"error":"The archive is damaged: unexpected end of data.",
  "warning":"checksum mismatch (not enforced)"}'
status "$UF"
like "$OUT" "$UF  incoming  failed" "failed: state"
like "$OUT" '\[#####---------------\]  25\.0%  244\.1 KiB of 976\.6 KiB' "failed: the bar stops where it failed"
like "$OUT" 'error: The archive is damaged: unexpected end of data\.' "failed: the last error"
like "$OUT" 'warning: checksum mismatch' "failed: the warning"
UD=22222222-2222-4222-8222-222222222222
synth "$UD" '{"bytes_total":4000000,"bytes_read":1000000,"rate":500000.0}'
status "$UD"
like "$OUT" "$UD  outgoing  processing \\(streaming\\)  -- its process is gone; wingxfer-watchdog will end it" \
	"nobody holds the lock: the process is gone"
like "$OUT" '25\.0%.*488\.3 KiB/s  ETA 6 s' "... rate and ETA from the record"
status --json "$UD"
is "$(jq_of "$OUT" 'v["transfers"][0]["owner_alive"], v["transfers"][0]["eta_seconds"]')" "False 6" \
	"--json: owner_alive false, eta_seconds"
UC=33333333-3333-4333-8333-333333333333
synth "$UC" '{"role":"destination","phase":"receiving","bytes_read":3000000,"rate":1048576.0}'
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(120)' \
	"$STATE/transfers/$UC.lock" > "$WX_TEST_TMP/locker.out" &
LOCKER=$!
track_pid $LOCKER
wait_for "lock held" 20 grep -q locked "$WX_TEST_TMP/locker.out"
touch "$STATE/transfers/$UC.cancel"
status "$UC"
like "$OUT" "$UC  incoming  cancelling \\(receiving\\)$" "a cancel under way, owner alive: cancelling"
like "$OUT" '\[          \?         \]  2\.9 MiB \(total unknown\)  1\.0 MiB/s  ETA \?' \
	"an unknown total: no bar, no ETA"
echo '{"uuid": "broken' > "$STATE/transfers/44444444-4444-4444-8444-444444444444.json"
status --active
is "$RC" 0 "--active with a malformed record: exit 0"
like "$ERR" '44444444-4444-4444-8444-444444444444\.json: not a transfer record' "... the malformed one named on stderr"
like "$OUT" '^2 transfers, 2 active' "... only the active ones"
unlike "$OUT" "$U|$UF" "... none of the finished ones"
status --follow --interval 1 --max-time 2 "$UC"
is "$RC" 3 "--follow gives up after --max-time with the transfer still active: exit 3"
like "$ERR" 'still active after --max-time' "... saying so"
ok "... after more than one listing" test "$(grep -c "$UC  incoming" <<< "$OUT")" -ge 2
stop_pid $LOCKER

# --- usage --------------------------------------------------------------------
status 55555555-5555-4555-8555-555555555555
is "$RC" 1 "a UUID without a record: exit 1"
like "$ERR" 'no transfer of server 55555555-5555-4555-8555-555555555555 is known' "... saying so"
status not-a-uuid
is "$RC" 2 "not a UUID: exit 2"
status --interval 0
is "$RC" 2 "--interval 0: exit 2"
like "$ERR" "--interval '0'" "... naming the option"
"$ST" --help | grep -q '^SYNOPSIS'; is "$?" 0 "--help prints the manual"
like "$("$ST" --version)" '^wingxfer-status [0-9]' "--version"
status --check-config
is "$RC" 0 "--check-config"
done_testing
