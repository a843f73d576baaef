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

n=0
for kind in apache lighttpd; do
	n=$((n + 1))
	s=s-$kind d=d-$kind
	A=aaaaaaaa-0000-4000-8000-00000000000$n
	B=bbbbbbbb-0000-4000-8000-00000000000$n
	node_setup "$s" "    events_heartbeat: 1"
	node_setup "$d" "$DEST_YAML"
	node_start "$s" "$kind" && node_start "$d" "$kind" ||
		{ ok "$kind: the nodes start" false; node_stop "$s"; node_stop "$d"; continue; }
	for x in "$s" "$d"; do panel_node "$x" "id-$x" "token-$x" "${NODE_URL[$x]}"; done
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
	new_server "$s" "$A" 3
	new_server "$s" "$B" 1
	answer=$(panel_api POST /_emulator/transfers "{\"server\":\"$A\",\"source\":\"$s\",\"destination\":\"$d\"}")
	like "$answer" '"source_status": ?202' "$kind: transfer A starts"
	wait_for "source record of A" 60 src_known "$s" "$A"
	open_stream s1-$kind "$S_EV" "token-$s"
	open_stream s2-$kind "$S_EV" "token-$s"
	wait_for "destination record of A" 120 dst_known "$d" "$A"
	open_stream d1-$kind "$D_EV" "token-$d"
	open_stream d2-$kind "$D_EV" "token-$d"
	for st in s1 s2 d1 d2; do
		wait_for "a progress event on $st" 120 has "$st-$kind" '^event: progress'
	done
	wait_for "A held in its hook" 120 dst_phase "$d" "$A" installing
	# Both events workers of the destination now serve d1 and d2, which
	# cannot end while A is held: d3 waits for a worker.
	open_stream d3-$kind "$D_EV" "token-$d"
	for st in s1 s2 d1 d2; do
		ok "$kind: $st: a progress event (state, phase, bytes, rate, ETA) while A runs" progress_ok "$st-$kind"
		like "$(grep -i '^content-type:' "$WX_TEST_TMP/$st-$kind.hdr")" 'text/event-stream' \
			"$kind: $st: Content-Type text/event-stream"
	done
	for st in d1 d2; do
		wait_for "a heartbeat on $st" 60 has "$st-$kind" '^: heartbeat$'
		ok "$kind: $st: heartbeats while nothing changes" has "$st-$kind" '^: heartbeat$'
	done

	# --- starvation proof: B starts and completes meanwhile ---------------
	answer=$(panel_api POST /_emulator/transfers "{\"server\":\"$B\",\"source\":\"$s\",\"destination\":\"$d\"}")
	like "$answer" '"source_status": ?202' "$kind: with every events worker busy, transfer B starts"
	wait_for "transfer B completed on both nodes" 120 both_completed "$s" "$d" "$B"
	ok "$kind: ... and completes on both nodes" both_completed "$s" "$d" "$B"
	is "$(state_of "$(dst_status "$d" "$A")")" processing "$kind: ... while A is still held"
	ok "$kind: ... while d1 and d2 are still open" bash -c "! { ! kill -0 ${STREAM_PID[d1-$kind]} || ! kill -0 ${STREAM_PID[d2-$kind]}; } 2>/dev/null"
	ok "$kind: ... and d3 still waits for an events worker (nothing received)" \
		test ! -s "$WX_TEST_TMP/d3-$kind.sse"

	# --- a client going away frees its worker ------------------------------
	kill "${STREAM_PID[d1-$kind]}"
	reap d1-$kind >/dev/null
	wait_for "d3 served once d1 is gone" 60 has "d3-$kind" '^event: progress'
	ok "$kind: d1's client gone: its worker serves d3, while A is still held" has "d3-$kind" '^event: progress'
	is "$(state_of "$(dst_status "$d" "$A")")" processing "$kind: ... (A still processing)"

	# --- A released: final event, streams end by themselves ---------------
	touch "$GATE"
	for st in s1 s2 d2 d3; do
		wait_for "$st to end by itself" 120 ended "$st-$kind"
		is "$(reap "$st-$kind")" 0 "$kind: $st ends by itself after A ends (curl exit 0)"
		last=$(events_of "$st-$kind" | tail -n 1)
		like "$last" '^end completed [a-z]+ False$' "$kind: $st: the last event is end, state completed"
		is "$(events_of "$st-$kind" | grep -c '^end ')" 1 "$kind: $st: exactly one end event"
		is "$(events_of "$st-$kind" | grep -vc '^end ')" "$(events_of "$st-$kind" | grep -c '^progress .* True$')" \
			"$kind: $st: every other event is progress of an active transfer"
	done
	ok "$kind: transfer A completed on both nodes" both_completed "$s" "$d" "$A"

	# A finished transfer: only its end event, at once.
	open_stream f-$kind "$D_EV" "token-$d"
	wait_for "f to end" 60 ended "f-$kind"
	is "$(reap "f-$kind")" 0 "$kind: events of a finished transfer: the stream ends at once"
	is "$(events_of "f-$kind")" "end completed completed False" "$kind: ... with only the end event"
	got=$(json_get "$(sed -n 's/^data: //p' "$WX_TEST_TMP/f-$kind.sse")" '["bytes_read"]')
	ok "$kind: ... which has the bytes received ($got, more than the 3 MiB of data)" test "$got" -gt 3145728
	node_stop "$s"
	node_stop "$d"
done
done_testing
