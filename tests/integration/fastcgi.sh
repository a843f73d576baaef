#!/bin/bash
# The handlers served over a real FastCGI socket: --listen, spawn-fcgi with
# several processes, and a config fixed while the program runs.
. "$top_srcdir/tests/lib/tap.sh"
command -v cgi-fcgi >/dev/null || { echo "not ok 1 - cgi-fcgi missing (apt-get install libfcgi-bin)"; echo 1..1; exit 1; }
wx_tmpdir
CFG=$(make_node_config "$WX_TEST_TMP/node" dest)
UUID=0b2a1c3d-1111-4222-8333-444455556666
SOCK="$WX_TEST_TMP/dest.sock"

fcgi() { # fcgi SOCKET METHOD URI [AUTH]
	env -i REQUEST_METHOD="$2" REQUEST_URI="$3" QUERY_STRING= ${4:+HTTP_AUTHORIZATION="$4"} \
		cgi-fcgi -bind -connect "$1" 2>/dev/null
}

"$WX_BIN/wingxfer-destination" --config "$CFG" --listen "$SOCK" 2>"$WX_TEST_TMP/dest.err" &
PID=$!
track_pid $PID
wait_for "socket $SOCK" 10 test -S "$SOCK"
out=$(fcgi "$SOCK" GET /api/transfers/$UUID "Bearer token-dest")
is "$(status_of "$out")" 404 "--listen: an authorised status request is served (404, no record)"
out=$(fcgi "$SOCK" GET /api/transfers/$UUID)
is "$(status_of "$out")" 401 "--listen: 401 without a token"
ok "the program keeps serving after several requests" kill -0 $PID
for i in 1 2 3 4 5; do fcgi "$SOCK" GET /api/transfers/$UUID "Bearer token-dest" >/dev/null; done
out=$(fcgi "$SOCK" GET /api/transfers/$UUID "Bearer token-dest")
like "$(header_of "$out" X-Request-Id)" '^[0-9a-f-]{36}$' "X-Request-Id over FastCGI"

# Break the config while it runs: 500 "node misconfigured"; fix it: served again.
cp "$CFG" "$CFG.good"
printf 'token: t\n' > "$CFG"
out=$(fcgi "$SOCK" GET /api/transfers/$UUID "Bearer token-dest")
is "$(status_of "$out")" 500 "a config broken while running: 500"
is "$(json_get "$(body_of "$out")" '["error"]')" "node misconfigured" "... node misconfigured"
like "$(cat "$WX_TEST_TMP/dest.err")" 'token_id: missing' "the detail goes to the error log"
cp "$CFG.good" "$CFG"
out=$(fcgi "$SOCK" GET /api/transfers/$UUID "Bearer token-dest")
is "$(status_of "$out")" 404 "the fixed config is picked up without a restart"

stop_pid $PID
ok "SIGTERM while idle ends the program" bash -c "! kill -0 $PID 2>/dev/null"

# --workers: several processes on one socket, a killed one replaced.
SOCK3="$WX_TEST_TMP/workers.sock"
"$WX_BIN/wingxfer-destination" --config "$CFG" --listen "$SOCK3" --workers 3 2>"$WX_TEST_TMP/workers.err" &
SUP=$!
track_pid $SUP
wait_for "socket $SOCK3" 10 test -S "$SOCK3"
children() { pgrep -P "$SUP" | sort | tr '\n' ' '; }
wait_for "three workers" 10 bash -c "[ \$(pgrep -P $SUP | wc -l) = 3 ]"
before=$(children)
is "$(echo $before | wc -w)" 3 "--workers 3 runs three worker processes"
victim=$(echo $before | cut -d' ' -f1)
kill -KILL "$victim"
wait_for "a replacement worker" 10 bash -c "[ \$(pgrep -P $SUP | wc -l) = 3 ] && ! pgrep -P $SUP | grep -qx $victim"
after=$(children)
is "$(echo $after | wc -w)" 3 "a worker killed with -9 is replaced"
like "$(cat "$WX_TEST_TMP/workers.err")" "worker $victim killed by signal 9" "the replacement is logged"
out=$(fcgi "$SOCK3" GET /api/transfers/$UUID "Bearer token-dest")
is "$(status_of "$out")" 404 "--workers: requests are served"
kill -TERM "$SUP"
wait_for "supervisor exit" 10 bash -c "! kill -0 $SUP 2>/dev/null"
ok "SIGTERM stops the supervisor and its workers" test -z "$(pgrep -f "^$WX_BIN/wingxfer-destination .*$SOCK3")"

# spawn-fcgi with two processes on one socket (how Apache deployments run it).
if command -v spawn-fcgi >/dev/null; then
	SOCK2="$WX_TEST_TMP/src.sock"
	WINGXFER_CONFIG="$CFG" spawn-fcgi -s "$SOCK2" -F 2 -P "$WX_TEST_TMP/src.pid" \
		-- "$WX_BIN/wingxfer-source" >/dev/null 2>&1
	wait_for "spawn-fcgi socket" 10 test -S "$SOCK2"
	wait_for "spawn-fcgi pid file" 10 test -s "$WX_TEST_TMP/src.pid"
	pids=$(tr '\n' ' ' < "$WX_TEST_TMP/src.pid")
	for p in $pids; do track_pid "$p"; done
	is "$(echo $pids | wc -w)" 2 "spawn-fcgi -F 2 started two processes"
	out=$(fcgi "$SOCK2" GET /api/servers/$UUID/transfer "Bearer token-dest")
	is "$(status_of "$out")" 404 "spawn-fcgi: served"
	out=$(fcgi "$SOCK2" DELETE /api/servers/$UUID/transfer)
	is "$(status_of "$out")" 401 "spawn-fcgi: auth enforced"
	for p in $pids; do stop_pid "$p"; done
else
	echo "not ok - spawn-fcgi missing (apt-get install spawn-fcgi)"
	TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1))
fi
done_testing
