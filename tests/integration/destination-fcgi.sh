#!/bin/bash
# wingxfer-destination over a real FastCGI socket (--listen, --workers 2,
# driven by cgi-fcgi): a tree arrives identical; progress is visible from
# another worker while a slow upload runs; DELETE stops the receiving worker
# in its blocked FCGX read (SIGUSR2) within a second; a receiving worker
# killed with -9 leaves a record for the watchdog and new POSTs say so.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
command -v cgi-fcgi >/dev/null || { echo "not ok 1 - cgi-fcgi missing (apt-get install libfcgi-bin)"; echo 1..1; exit 1; }
wx_tmpdir
panel_start
dest_node
SOCK="$WX_TEST_TMP/dest.sock"

"$WX_BIN/wingxfer-destination" --config "$DEST_DIR/config.yml" --listen "$SOCK" --workers 2 \
	2>"$WX_TEST_TMP/dest.err" &
SUP=$!
track_pid $SUP
wait_for "socket $SOCK" 10 test -S "$SOCK"
wait_for "two workers" 10 bash -c "[ \$(pgrep -P $SUP | wc -l) = 2 ]"

fcgi() { # fcgi METHOD URI AUTH [VAR=value...] < body
	local m=$1 u=$2 a=$3; shift 3
	env -i REQUEST_METHOD="$m" REQUEST_URI="$u" QUERY_STRING= ${a:+HTTP_AUTHORIZATION="$a"} "$@" \
		cgi-fcgi -bind -connect "$SOCK" 2>/dev/null
}
post() { # post TOKEN BODY-FILE
	fcgi POST /api/transfers "Bearer $1" CONTENT_TYPE="$CT" CONTENT_LENGTH="$(stat -c %s "$2")" < "$2"
}

make_tree "$WX_TEST_TMP/src" --files 120
tar -C "$WX_TEST_TMP/src" -czf "$WX_TEST_TMP/tree.tgz" .
body_for "$WX_TEST_TMP/tree.body" "$WX_TEST_TMP/tree.tgz"
U=$(new_server)
out=$(post "$(token_for "$U")" "$WX_TEST_TMP/tree.body")
is "$(status_of "$out")" 200 "FastCGI: a tree: 200"
ok "FastCGI: installed byte-identical" same_tree "$WX_TEST_TMP/src" "$DATA/$U"
is "$(callbacks "$U" success)" 1 "FastCGI: one success callback"
out=$(post "$(token_for "$U" '"scope":"websocket"')" "$WX_TEST_TMP/tree.body")
is "$(status_of "$out")" 403 "FastCGI: a websocket token: 403"

# A slow upload: progress from the other worker, then DELETE.
head -c 6000000 /dev/urandom > "$WX_TEST_TMP/big.bin"
tar -C "$WX_TEST_TMP" -czf "$WX_TEST_TMP/big.tgz" big.bin
body_for "$WX_TEST_TMP/big.body" "$WX_TEST_TMP/big.tgz"
slow() { # slow FILE: 1 MB at once, then 1 KiB every 0.2 s (never the end within the 10 min bound)
	python3 - "$1" <<'PY'
import sys, time
data = open(sys.argv[1], "rb").read()
out = sys.stdout.buffer
try:
    out.write(data[:1000000]); out.flush()
    end = time.time() + 600
    for i in range(1000000, len(data), 1024):
        if time.time() > end:
            break
        time.sleep(0.2)
        out.write(data[i:i + 1024]); out.flush()
except BrokenPipeError:
    pass
PY
}
U=$(new_server)
TOKEN=$(token_for "$U")
( slow "$WX_TEST_TMP/big.body" | env -i REQUEST_METHOD=POST REQUEST_URI=/api/transfers QUERY_STRING= \
	HTTP_AUTHORIZATION="Bearer $TOKEN" CONTENT_TYPE="$CT" CONTENT_LENGTH="$(stat -c %s "$WX_TEST_TMP/big.body")" \
	cgi-fcgi -bind -connect "$SOCK" > "$WX_TEST_TMP/slow.out" 2>/dev/null ) &
POSTER=$!
track_pid $POSTER
rec="$DEST_DIR/state/transfers/$U.json"
wait_for "bytes arriving" 30 bash -c "python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r[\"phase\"]==\"receiving\" and r[\"bytes_read\"]>0 else 1)' '$rec' 2>/dev/null"
out=$(fcgi GET "/api/transfers/$U" "Bearer token-dest")
st=$(body_of "$out")
is "$(status_of "$out")" 200 "GET status from the other worker while receiving: 200"
is "$(json_get "$st" '["state"]')" processing "... state processing"
is "$(json_get "$st" '["phase"]')" receiving "... phase receiving"
is "$(json_get "$st" '["owner_alive"]')" true "... the receiving worker holds the lock"
ok "... bytes received so far are shown" test "$(json_get "$st" '["bytes_read"]')" -gt 0
ok "... and the total (Content-Length)" test "$(json_get "$st" '["bytes_total"]')" -gt 6000000
receiver=$(record_of "$U" '["pid"]')
out=$(fcgi DELETE "/api/transfers/$U" "Bearer token-dest")
is "$(status_of "$out")" 202 "DELETE while the other worker is blocked in its read: 202"
wait_for "the POST to be answered" 10 bash -c "grep -q '^Status' '$WX_TEST_TMP/slow.out'"
is "$(status_of "$(cat "$WX_TEST_TMP/slow.out")")" 409 "the POST answers 409, cancelled"
ok "staging removed, nothing installed" test ! -e "$DATA/$U" -a ! -e "$DATA/.wingxfer-staging/$U"
is "$(record_of "$U" '["status"]')" cancelled "the record says cancelled"
is "$(callbacks "$U" failure)" 1 "the panel got one failure callback"
ok "the worker that was cancelled still runs" kill -0 "$receiver"
stop_pid $POSTER
U2=$(new_server)
out=$(post "$(token_for "$U2")" "$WX_TEST_TMP/tree.body")
is "$(status_of "$out")" 200 "the workers serve the next transfer"

# kill -9 of the receiving worker: the record stays active, the lock is free.
U=$(new_server)
TOKEN=$(token_for "$U")
( slow "$WX_TEST_TMP/big.body" | env -i REQUEST_METHOD=POST REQUEST_URI=/api/transfers QUERY_STRING= \
	HTTP_AUTHORIZATION="Bearer $TOKEN" CONTENT_TYPE="$CT" CONTENT_LENGTH="$(stat -c %s "$WX_TEST_TMP/big.body")" \
	cgi-fcgi -bind -connect "$SOCK" > /dev/null 2>&1 ) &
POSTER=$!
track_pid $POSTER
rec="$DEST_DIR/state/transfers/$U.json"
wait_for "bytes arriving" 30 bash -c "python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r[\"bytes_read\"]>0 else 1)' '$rec' 2>/dev/null"
kill -KILL "$(record_of "$U" '["pid"]')"
stop_pid $POSTER
wait_for "a replacement worker" 10 bash -c "[ \$(pgrep -P $SUP | wc -l) = 2 ]"
out=$(post "$(token_for "$U")" "$WX_TEST_TMP/tree.body")
is "$(status_of "$out")" 409 "after kill -9 of the receiver, a new POST: 409"
like "$(body_of "$out")" 'watchdog' "... saying the watchdog will clean up"
out=$(fcgi DELETE "/api/transfers/$U" "Bearer token-dest")
is "$(status_of "$out")" 409 "DELETE of the dead transfer: 409"
like "$(body_of "$out")" 'process receiving it is gone' "... saying its process is gone"
out=$(fcgi GET "/api/transfers/$U" "Bearer token-dest")
is "$(json_get "$(body_of "$out")" '["owner_alive"]')" false "GET shows no live owner"
done_testing
