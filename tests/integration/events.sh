#!/bin/bash
# Live progress as Server-Sent Events (wingxfer-events), through Apache and
# lighttpd with TLS (the shipped templates), read with curl -N:
#   - no token is 401, a wrong one 403 and an unknown transfer 404, each with
#     a JSON error;
#   - a transfer A is held on its destination (its create-environment hook
#     waits for a gate file, so it stays active as long as the test wants,
#     whatever the machine's speed) while streams are open on both nodes:
#     as many destination streams as wingxfer-events has workers, plus one
#     more that must wait for a worker;
#   - while A is held: every open stream has a progress event (phase, bytes,
#     rate, ETA) and heartbeats, the extra stream has nothing yet;
#   - the starvation proof: with every events worker of the destination
#     busy and one of its two wingxfer-destination workers held by A, a
#     second transfer B still starts and completes;
#   - a client that goes away frees its worker: the waiting stream is
#     served next, still while A is held;
#   - once A is released, every stream gets one end event (completed) as its
#     last and ends by itself.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
webstack_init
PANEL_TLS=1 panel_start || { echo "not ok 1 - panel emulator"; echo 1..1; exit 1; }
PANEL_TLS=1
NODE_WORKERS=2          # source and destination: two workers each
NODE_EVENTS_WORKERS=2   # wingxfer-events: two streams at once
GATE="$WX_TEST_TMP/gate"
# The destination's hook holds the transfer named in held-uuid until the gate
# file exists (or the test's directory is gone: the test ended).
cat > "$WX_TEST_TMP/hold-hook" <<EOF
#!/bin/sh
[ "\$SERVER_UUID" = "\$(cat "$WX_TEST_TMP/held-uuid")" ] || exit 0
while [ ! -e "$GATE" ] && [ -e "$WX_TEST_TMP/held-uuid" ]; do sleep 0.1; done
EOF
chmod +x "$WX_TEST_TMP/hold-hook"
DEST_YAML="    download_limit: 1
    events_heartbeat: 1
    hooks:
      create_environment: [$WX_TEST_TMP/hold-hook]"

src_status() { https_curl -H "Authorization: Bearer token-$1" "${NODE_URL[$1]}/api/servers/$2/transfer"; }
dst_status() { https_curl -H "Authorization: Bearer token-$1" "${NODE_URL[$1]}/api/transfers/$2"; }
state_of() { json_get "$1" '["state"]' 2>/dev/null; }
src_known() { [ -n "$(state_of "$(src_status "$1" "$2")")" ]; }
dst_known() { [ -n "$(state_of "$(dst_status "$1" "$2")")" ]; }
dst_phase() { [ "$(json_get "$(dst_status "$1" "$2")" '["phase"]' 2>/dev/null)" = "$3" ]; }
both_completed() { # both_completed SRC DST UUID
	[ "$(state_of "$(src_status "$1" "$3")")" = completed ] &&
		[ "$(state_of "$(dst_status "$2" "$3")")" = completed ]
}
# ask URL [TOKEN]: a plain GET (no Authorization without TOKEN); sets CODE and BODY.
ask() {
	CODE=$(https_curl --http1.1 -o "$WX_TEST_TMP/body" -w '%{http_code}' --max-time 60 \
		${2:+-H "Authorization: Bearer $2"} "$1" 2>/dev/null)
	BODY=$(head -c 400 "$WX_TEST_TMP/body")
}
# open_stream NAME URL TOKEN: curl -N in the background, the stream in
# $WX_TEST_TMP/NAME.sse, its headers in NAME.hdr; STREAM_PID[NAME] is curl's
# own pid (not a subshell's: killing it must close the connection).
declare -A STREAM_PID
open_stream() {
	curl -sS --cacert "$WX_CA" -N --max-time 600 -D "$WX_TEST_TMP/$1.hdr" -o "$WX_TEST_TMP/$1.sse" \
		-H "Authorization: Bearer $3" "$2" 2>"$WX_TEST_TMP/$1.err" &
	STREAM_PID[$1]=$!
	track_pid "${STREAM_PID[$1]}"
}
has() { grep -q "$2" "$WX_TEST_TMP/$1.sse" 2>/dev/null; }
ended() { ! kill -0 "${STREAM_PID[$1]}" 2>/dev/null; }
# events_of NAME: "event state phase active" per event, in order.
events_of() {
	python3 - "$WX_TEST_TMP/$1.sse" <<'PY'
import json, sys
ev = None
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    if line.startswith("event: "):
        ev = line[7:]
    elif line.startswith("data: "):
        d = json.loads(line[6:])
        print(ev, d.get("state"), d.get("phase"), d.get("active"))
PY
}
# progress_ok NAME: a progress event with every field a watcher needs.
progress_ok() {
	python3 - "$WX_TEST_TMP/$1.sse" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
for i, l in enumerate(lines):
    if l == "event: progress" and i + 1 < len(lines) and lines[i + 1].startswith("data: "):
        d = json.loads(lines[i + 1][6:])
        need = ("state", "phase", "bytes_total", "bytes_read", "rate_bytes_per_second",
                "eta_seconds", "percent", "warning", "error")
        if d.get("active") is True and all(k in d for k in need):
            sys.exit(0)
sys.exit(1)
PY
}
# reap NAME: waits for a stream's curl (already ended); its exit status.
reap() {
	local rc=0
	wait "${STREAM_PID[$1]}" || rc=$?
	TRACKED_PIDS=$(printf ' %s ' $TRACKED_PIDS | sed "s/ ${STREAM_PID[$1]} / /g")
	echo "$rc"
}
new_server() { # new_server NODE UUID MIB: incompressible data, known to the panel
	mkdir -p "$WX_TEST_TMP/$1/data/$2"
	head -c "$(($3 * 1048576))" /dev/urandom > "$WX_TEST_TMP/$1/data/$2/world.dat"
	echo "motd" > "$WX_TEST_TMP/$1/data/$2/server.properties"
	panel_server "$2" 0
}

# --- the stream itself, as CGI, on records written by the test ------------
CDIR="$WX_TEST_TMP/cgi"
CCFG=$(make_node_config "$CDIR" cgi "    events_heartbeat: 1")
# The same node, its streams closed after 3 s (for c2 only: a check must not
# race that bound).
CCFG_SHORT="$CDIR/config-short.yml"
sed 's/^    events_heartbeat: 1$/    events_heartbeat: 1\n    events_max_duration: 3/' "$CCFG" > "$CCFG_SHORT"
# synth UUID JSON: a record of an incoming transfer, JSON on top of an active
# one started at a fixed time (the start tells one transfer from the next).
synth() {
	python3 - "$CDIR/state/transfers/$1.json" "$1" "$2" <<'PY'
import json, os, sys, time
now = int(time.time())
r = {"uuid": sys.argv[2], "role": "destination", "status": "processing", "phase": "receiving",
     "pid": 0, "request_id": "", "created_at": 1767225600, "updated_at": now,
     "progress_at": now, "finished_at": 0, "bytes_total": 4000, "bytes_read": 1000,
     "bytes_sent": 900, "files": 1, "rate": 500.0, "url": None, "error": None,
     "warning": None, "callback": None}
r.update(json.loads(sys.argv[3]))
open(sys.argv[1] + ".tmp", "w").write(json.dumps(r))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
PY
}
# cgi_stream NAME UUID [CONFIG]: wingxfer-events as CGI in the background (its own pid).
cgi_stream() {
	( exec env -i PATH="$PATH" WINGXFER_CONFIG="${3:-$CCFG}" REQUEST_METHOD=GET \
		REQUEST_URI="/api/transfers/$2/events" HTTP_AUTHORIZATION="Bearer token-cgi" \
		"$WX_BIN/wingxfer-events" >"$WX_TEST_TMP/$1.sse" 2>>"$WX_TEST_TMP/cgi.err" ) &
	STREAM_PID[$1]=$!
	track_pid "${STREAM_PID[$1]}"
}
count() { grep -c "$2" "$WX_TEST_TMP/$1.sse" 2>/dev/null; }
mkdir -p "$CDIR/state/transfers"
U1=c1c1c1c1-0000-4000-8000-000000000001
# logline N: a "transfer logs" line of the events file, message "line N".
logline() { printf '{"time":"2026-01-01T00:00:00Z","event":"transfer logs","args":["line %s"]}\n' "$1"; }
for i in $(seq 1 25); do logline "$i"; done > "$CDIR/state/transfers/$U1.events"
printf '{"time":"2026-01-01T00:00:00Z","event":"transfer status","args":["x"]}\n' >> "$CDIR/state/transfers/$U1.events"
synth "$U1" '{}'
cgi_stream c1 "$U1"
wait_for "the first progress event" 60 has c1 '^event: progress'
head=$(sed -n '1,/^\r$/p' "$WX_TEST_TMP/c1.sse")
like "$head" '^Status: 200 OK' "CGI: 200"
like "$head" 'Content-Type: text/event-stream' "... text/event-stream"
like "$head" 'Cache-Control: no-cache' "... not to be cached"
unlike "$head" 'Content-Length' "... and no length"
like "$(sed -n 's/^data: //p' "$WX_TEST_TMP/c1.sse")" '"bytes_read":1000,.*"rate_bytes_per_second":500,"eta_seconds":6,"percent":25' \
	"... the first progress event: bytes, rate, ETA, percent"
logs() { sed -n 's/^data: {"time":"[^"]*","message":"\(.*\)"}$/\1/p' "$WX_TEST_TMP/$1.sse" | tr '\n' ,; }
is "$(logs c1)" "$(seq -f 'line %g' 6 25 | tr '\n' ,)" "a new stream first gets the last 20 log lines"
logline 26 >> "$CDIR/state/transfers/$U1.events"
wait_for "log line 26" 60 has c1 '"line 26"'
ok "a log line appended: a log event" has c1 '"message":"line 26"'
# A trim, as wx_events_append does it: the newest lines, atomically, plus a new one.
{ for i in $(seq 20 26); do logline "$i"; done; logline 27; } > "$CDIR/state/transfers/$U1.events.new"
mv "$CDIR/state/transfers/$U1.events.new" "$CDIR/state/transfers/$U1.events"
wait_for "log line 27" 60 has c1 '"line 27"'
is "$(logs c1)" "$(seq -f 'line %g' 6 27 | tr '\n' ,)" "after a trim of the log: the new line once, nothing again"
synth "$U1" '{"bytes_read":2000,"warning":"The archive checksum does not match (not enforced)."}'
wait_for "the change" 60 has c1 '"bytes_read":2000'
ok "a change to the record: a progress event" has c1 '"bytes_read":2000'
like "$(grep -A1 '^event: warning' "$WX_TEST_TMP/c1.sse")" '"warning":"The archive checksum does not match' \
	"... and a warning event for the new warning"
synth "$U1" '{"status":"failed","phase":"receiving","finished_at":'"$(date +%s)"',"error":"The archive is damaged: unexpected end of data."}'
wait_for "c1 to end" 60 ended c1
is "$(reap c1)" 0 "the transfer failed: the stream ends (exit 0)"
is "$(events_of c1 | tail -n 1)" "end failed receiving False" "... with an end event saying failed"
like "$(tail -n 3 "$WX_TEST_TMP/c1.sse")" '"error":"The archive is damaged: unexpected end of data\."' "... and its error"
is "$(count c1 '^event: warning')" 1 "one warning event for one warning"

U2=c2c2c2c2-0000-4000-8000-000000000002
synth "$U2" '{}'
cgi_stream c2 "$U2" "$CCFG_SHORT"
wait_for "c2 to end" 60 ended c2
is "$(reap c2)" 0 "nothing changes: the stream ends after events_max_duration (exit 0)"
ok "... with heartbeats before" test "$(count c2 '^: heartbeat$')" -ge 1
like "$(tail -n 2 "$WX_TEST_TMP/c2.sse")" '^: events_max_duration reached; reconnect' "... and says why it ends"
is "$(count c2 '^event: ')" 1 "... one progress event, no end event (the transfer runs on)"

U3=c3c3c3c3-0000-4000-8000-000000000003
synth "$U3" '{}'
cgi_stream c3 "$U3"
wait_for "c3 progress" 60 has c3 '^event: progress'
rm "$CDIR/state/transfers/$U3.json"
wait_for "c3 to end" 60 ended c3
is "$(reap c3)" 0 "the record removed while watched: the stream ends"
like "$(events_of c3 | tail -n 1)" '^end unknown ' "... with an end event, state unknown"

U4=c4c4c4c4-0000-4000-8000-000000000004
synth "$U4" '{}'
cgi_stream c4 "$U4"
wait_for "c4 progress" 60 has c4 '^event: progress'
synth "$U4" '{"created_at":1767225700,"bytes_read":0}'
wait_for "c4 to end" 60 ended c4
is "$(reap c4)" 0 "a later transfer replaced the record before the end was seen: the stream ends"
like "$(tail -n 3 "$WX_TEST_TMP/c4.sse")" '"state":"unknown",.*"error":"A later transfer of this server replaced' \
	"... with an end event saying so"

# Two nodes, one behind each web server; A and B go from the Apache node to
# the lighttpd one, then the other way: each web server serves both routes.
node_setup apache "$DEST_YAML"
node_setup lighttpd "$DEST_YAML"
node_start apache apache && node_start lighttpd lighttpd ||
	{ ok "the nodes start" false; node_stop apache; node_stop lighttpd; done_testing; exit 1; }
for x in apache lighttpd; do panel_node "$x" "id-$x" "token-$x" "${NODE_URL[$x]}"; done
n=0
for s in apache lighttpd; do
	n=$((n + 1))
	d=lighttpd; [ "$s" = lighttpd ] && d=apache
	kind="$s -> $d"
	tag=$s   # in file names
	A=aaaaaaaa-0000-4000-8000-00000000000$n
	B=bbbbbbbb-0000-4000-8000-00000000000$n
	S_EV="${NODE_URL[$s]}/api/servers/$A/transfer/events"
	D_EV="${NODE_URL[$d]}/api/transfers/$A/events"

	# --- refusals ---------------------------------------------------------
	# As every node-token endpoint (and Wings): 401 without a token, 403
	# for a wrong one.
	for url in "$S_EV" "$D_EV"; do
		side=source; [ "$url" = "$D_EV" ] && side=destination
		ask "$url"
		is "$CODE" 401 "$kind: $side events without a token: 401"
		like "$BODY" '^\{"error": ?"' "... with a JSON error"
		ask "$url" wrong-token
		is "$CODE" 403 "$kind: $side events with a wrong token: 403"
		like "$BODY" '^\{"error": ?"' "... with a JSON error"
	done
	ask "$S_EV" "token-$s"
	is "$CODE" 404 "$kind: source events of an unknown transfer: 404"
	like "$BODY" '"error": ?"No outgoing transfer' "... with a JSON error"
	ask "$D_EV" "token-$d"
	is "$CODE" 404 "$kind: destination events of an unknown transfer: 404"
	like "$BODY" '"error": ?"No incoming transfer' "... with a JSON error"

	# --- transfer A, held on the destination ------------------------------
	rm -f "$GATE"
	echo "$A" > "$WX_TEST_TMP/held-uuid"
	new_server "$s" "$A" 2
	new_server "$s" "$B" 0
	answer=$(panel_api POST /_emulator/transfers "{\"server\":\"$A\",\"source\":\"$s\",\"destination\":\"$d\"}")
	like "$answer" '"source_status": ?202' "$kind: transfer A starts"
	wait_for "source record of A" 60 src_known "$s" "$A"
	open_stream s1-$tag "$S_EV" "token-$s"
	open_stream s2-$tag "$S_EV" "token-$s"
	wait_for "destination record of A" 120 dst_known "$d" "$A"
	open_stream d1-$tag "$D_EV" "token-$d"
	open_stream d2-$tag "$D_EV" "token-$d"
	for st in s1 s2 d1 d2; do
		wait_for "a progress event on $st" 120 has "$st-$tag" '^event: progress'
	done
	wait_for "A held in its hook" 120 dst_phase "$d" "$A" installing
	# Both events workers of the destination now serve d1 and d2, which
	# cannot end while A is held: d3 waits for a worker.
	open_stream d3-$tag "$D_EV" "token-$d"
	for st in s1 s2 d1 d2; do
		ok "$kind: $st: a progress event (state, phase, bytes, rate, ETA) while A runs" progress_ok "$st-$tag"
		like "$(grep -i '^content-type:' "$WX_TEST_TMP/$st-$tag.hdr")" 'text/event-stream' \
			"$kind: $st: Content-Type text/event-stream"
	done
	for st in d1 d2; do
		wait_for "a heartbeat on $st" 60 has "$st-$tag" '^: heartbeat$'
		ok "$kind: $st: heartbeats while nothing changes" has "$st-$tag" '^: heartbeat$'
	done

	# --- starvation proof: B starts and completes meanwhile ---------------
	answer=$(panel_api POST /_emulator/transfers "{\"server\":\"$B\",\"source\":\"$s\",\"destination\":\"$d\"}")
	like "$answer" '"source_status": ?202' "$kind: with every events worker busy, transfer B starts"
	wait_for "transfer B completed on both nodes" 120 both_completed "$s" "$d" "$B"
	ok "$kind: ... and completes on both nodes" both_completed "$s" "$d" "$B"
	is "$(state_of "$(dst_status "$d" "$A")")" processing "$kind: ... while A is still held"
	ok "$kind: ... while d1 and d2 are still open" bash -c "! { ! kill -0 ${STREAM_PID[d1-$tag]} || ! kill -0 ${STREAM_PID[d2-$tag]}; } 2>/dev/null"
	ok "$kind: ... and d3 still waits for an events worker (nothing received)" \
		test ! -s "$WX_TEST_TMP/d3-$tag.sse"

	# --- a client going away frees its worker ------------------------------
	kill "${STREAM_PID[d1-$tag]}"
	reap d1-$tag >/dev/null
	wait_for "d3 served once d1 is gone" 60 has "d3-$tag" '^event: progress'
	ok "$kind: d1's client gone: its worker serves d3, while A is still held" has "d3-$tag" '^event: progress'
	is "$(state_of "$(dst_status "$d" "$A")")" processing "$kind: ... (A still processing)"

	# --- A released: final event, streams end by themselves ---------------
	touch "$GATE"
	for st in s1 s2 d2 d3; do
		wait_for "$st to end by itself" 120 ended "$st-$tag"
		is "$(reap "$st-$tag")" 0 "$kind: $st ends by itself after A ends (curl exit 0)"
		last=$(events_of "$st-$tag" | tail -n 1)
		like "$last" '^end completed [a-z]+ False$' "$kind: $st: the last event is end, state completed"
		is "$(events_of "$st-$tag" | grep -c '^end ')" 1 "$kind: $st: exactly one end event"
		is "$(events_of "$st-$tag" | grep -vc '^\(end\|log\) ')" "$(events_of "$st-$tag" | grep -c '^progress .* True$')" \
			"$kind: $st: every other event is progress of an active transfer, or a log line"
	done
	ok "$kind: transfer A completed on both nodes" both_completed "$s" "$d" "$A"
	like "$(grep -A1 '^event: log' "$WX_TEST_TMP/s1-$tag.sse")" '"message":"' "$kind: s1: the transfer's log lines as log events"
	like "$(grep -A1 '^event: log' "$WX_TEST_TMP/d2-$tag.sse")" '"message":"' "$kind: d2: the transfer's log lines as log events"

	# A finished transfer: only its end event, at once.
	open_stream f-$tag "$D_EV" "token-$d"
	wait_for "f to end" 60 ended "f-$tag"
	is "$(reap "f-$tag")" 0 "$kind: events of a finished transfer: the stream ends at once"
	is "$(events_of "f-$tag" | grep -v '^log ')" "end completed completed False" \
		"$kind: ... with only the end event (after its last log lines)"
	got=$(json_get "$(grep -A1 '^event: end$' "$WX_TEST_TMP/f-$tag.sse" | sed -n 's/^data: //p')" '["bytes_read"]')
	ok "$kind: ... which has the bytes received ($got, more than the 2 MiB of data)" test "$got" -gt 2097152
done
node_stop apache
node_stop lighttpd
done_testing
