#!/bin/bash
# wingxfer-watchdog with the real programs: kill -9 of a push worker and of a
# receiving FastCGI handler mid-transfer (the next watchdog run reports the
# failure exactly once, removes staging, leaves the source tree intact, and
# the server can be transferred again); a destination that stops reading
# (failure after the stall timeout, once); a source that stops sending (the
# watchdog cancels the blocked receiving handler with SIGUSR2).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
command -v cgi-fcgi >/dev/null || { echo "not ok 1 - cgi-fcgi missing (apt-get install libfcgi-bin)"; echo 1..1; exit 1; }
wx_tmpdir
WD="$WX_BIN/wingxfer-watchdog"
TREES="$top_srcdir/tests/lib/trees.py"
panel_start
panel_node src id-src token-src http://127.0.0.1:1
panel_node dest id-dest token-dest http://127.0.0.1:1

count() { # count UUID KIND: callbacks of that kind the panel recorded
	panel_api GET "/_emulator/callbacks?server=$1" |
		python3 -c "import json,sys; print(sum(1 for c in json.load(sys.stdin) if c['kind']=='$2'))"
}
open_transfer() { panel_api POST /_emulator/transfers "{\"server\":\"$1\",\"notify\":false}" >/dev/null; }
wd() { OUT=$("$WD" --config "$1" 2>"$WX_TEST_TMP/wd.err"); RC=$?; }

# === source side: kill -9 of the push worker ===========================================
SRC="$WX_TEST_TMP/src"
SCFG=$(make_node_config "$SRC" src "    stall_timeout: 3
    response_timeout: 5
    connect_timeout: 3")
SSTATE="$SRC/state"
U=$(new_uuid)
panel_server "$U"
open_transfer "$U"
python3 "$TREES" make "$SRC/data/$U" --files 80 --big-mib 4 >/dev/null
python3 "$TREES" manifest "$SRC/data/$U" > "$WX_TEST_TMP/before.manifest"
recv_start slow --mode slow --rate 200000
out=$(post_transfer "$SCFG" "$U" "$RECV_URL")
is "$(status_of "$out")" 202 "push: the source handler started the worker (202)"
track_worker "$SSTATE" "$U"
ok "push: bytes are moving" wait_for "bytes sent" 30 counter_above "$SSTATE" "$U" bytes_sent 100000
PUSH=$(rec "$SSTATE" "$U" '["pid"]')
kill -KILL "$PUSH"
wait_for "the worker to die" 10 bash -c "! kill -0 $PUSH 2>/dev/null"
is "$(rec "$SSTATE" "$U" '["status"]')" processing "push: after kill -9 the record is still processing"
is "$(count "$U" failure)" 0 "push: nobody told the panel yet"
wd "$SCFG"
is "$RC" 0 "push: the watchdog run exits 0"
like "$OUT" "^$U: source transfer failed: worker died \(pid $PUSH, during [a-z]+" \
	"push: the watchdog reports the dead worker"
is "$(count "$U" failure)" 1 "push: the panel got exactly one failure"
is "$(rec "$SSTATE" "$U" '["status"]')" failed "push: the record is failed"
python3 "$TREES" manifest "$SRC/data/$U" > "$WX_TEST_TMP/after.manifest"
ok "push: the source tree is intact" cmp -s "$WX_TEST_TMP/before.manifest" "$WX_TEST_TMP/after.manifest"
wd "$SCFG"
is "$OUT" "" "push: the next run is silent"
is "$(count "$U" failure)" 1 "push: still one failure"
stop_pid "$RECV_PID"
recv_start again
open_transfer "$U"
out=$(post_transfer "$SCFG" "$U" "$RECV_URL")
is "$(status_of "$out")" 202 "push: the server can be transferred again"
ok "push: and that transfer completes" wait_worker "$SSTATE" "$U"
is "$(rec "$SSTATE" "$U" '["status"]')" completed "push: completed"

# A destination that stops reading: failed after the stall timeout, once, by
# the worker itself; the watchdog then has nothing to add.
U2=$(new_uuid)
panel_server "$U2"
open_transfer "$U2"
python3 "$TREES" make "$SRC/data/$U2" --files 20 --big-mib 8 >/dev/null
recv_start stall --mode stall --after 65536
out=$(post_transfer "$SCFG" "$U2" "$RECV_URL")
track_worker "$SSTATE" "$U2"
ok "stall: the worker ends" wait_worker "$SSTATE" "$U2" 60
is "$(rec "$SSTATE" "$U2" '["status"]')" failed "stall: failed"
like "$(rec "$SSTATE" "$U2" '["error"]')" 'for 3 s' "stall: after system.transfers.stall_timeout"
wd "$SCFG"
is "$OUT" "" "stall: the watchdog finds nothing to do"
is "$(count "$U2" failure)" 1 "stall: exactly one failure"
stop_pid "$RECV_PID"

# === destination side: a real FastCGI receiver ==========================================
DEST="$WX_TEST_TMP/dest"
DCFG=$(make_node_config "$DEST" dest "    stall_timeout: 3")
DATA="$DEST/data"
SOCK="$WX_TEST_TMP/dest.sock"
"$WX_BIN/wingxfer-destination" --config "$DCFG" --listen "$SOCK" --workers 2 2>"$WX_TEST_TMP/dest.err" &
SUP=$!
track_pid $SUP
wait_for "socket $SOCK" 10 test -S "$SOCK"
wait_for "two workers" 10 bash -c "[ \$(pgrep -P $SUP | wc -l) = 2 ]"
BOUNDARY=$(printf '5f2b%.0s' $(seq 15))
CT="multipart/form-data; boundary=$BOUNDARY"
head -c 6000000 /dev/urandom > "$WX_TEST_TMP/big.bin"
tar -C "$WX_TEST_TMP" -czf "$WX_TEST_TMP/big.tgz" big.bin
python3 "$top_srcdir/tests/lib/multipart.py" --boundary "$BOUNDARY" "$WX_TEST_TMP/big.body" \
	"archive=@$WX_TEST_TMP/big.tgz" "checksum=$(sha256sum "$WX_TEST_TMP/big.tgz" | cut -d' ' -f1)"
feed() { # feed FILE MODE: 1 MB at once, then 1 KiB every 0.2 s ("slow": never the end within the bound), nothing more ("stop") or the rest at once ("all"), <= 10 min
	python3 - "$1" "$2" <<'PY'
import select, sys, time
data, mode = open(sys.argv[1], "rb").read(), sys.argv[2]
out = sys.stdout.buffer
gone = select.poll()
gone.register(sys.stdout.fileno(), select.POLLERR)
try:
    out.write(data[:1000000]); out.flush()
    if mode == "all":
        out.write(data[1000000:]); out.flush()
    end = time.time() + 600
    i = 1000000
    while time.time() < end and i < len(data):
        time.sleep(0.2)
        if gone.poll(0):  # the reader went away
            break
        if mode == "slow":
            out.write(data[i:i + 1024]); out.flush()
            i += 1024
except BrokenPipeError:
    pass
PY
}
post_slow() { # post_slow UUID MODE: a background POST fed by feed; sets POSTER
	local tok
	tok=$(json_get "$(panel_api POST /_emulator/tokens "{\"server\":\"$1\",\"node\":\"dest\"}")" '["token"]')
	( feed "$WX_TEST_TMP/big.body" "$2" | env -i REQUEST_METHOD=POST REQUEST_URI=/api/transfers \
		QUERY_STRING= HTTP_AUTHORIZATION="Bearer $tok" CONTENT_TYPE="$CT" \
		CONTENT_LENGTH="$(stat -c %s "$WX_TEST_TMP/big.body")" \
		cgi-fcgi -bind -connect "$SOCK" > "$WX_TEST_TMP/post.out" 2>/dev/null ) &
	POSTER=$!
	track_pid $POSTER
}
drec() { json_get "$(cat "$DEST/state/transfers/$1.json" 2>/dev/null)" "$2" 2>/dev/null; }
receiving() { [ "$(drec "$1" '["bytes_read"]')" -gt 0 ] 2>/dev/null && test -d "$DATA/.wingxfer-staging/$1"; }

# kill -9 of the receiving handler.
D=$(new_uuid)
panel_server "$D"
open_transfer "$D"
post_slow "$D" slow
ok "dest: bytes arrive into staging" wait_for "receiving" 30 receiving "$D"
RECEIVER=$(drec "$D" '["pid"]')
kill -KILL "$RECEIVER"
stop_pid $POSTER
is "$(drec "$D" '["status"]')" processing "dest: after kill -9 the record is still processing"
ok "dest: staging is still there" test -d "$DATA/.wingxfer-staging/$D"
wd "$DCFG"
like "$OUT" "^$D: destination transfer failed: worker died \(pid $RECEIVER, during receiving" \
	"dest: the watchdog reports the dead receiver"
like "$OUT" "removed $DATA/.wingxfer-staging/$D" "dest: and removed staging"
ok "dest: staging is gone, nothing installed" test ! -e "$DATA/.wingxfer-staging/$D" -a ! -e "$DATA/$D"
is "$(count "$D" failure)" 1 "dest: the panel got exactly one failure"
wd "$DCFG"
is "$OUT" "" "dest: the next run is silent"
is "$(count "$D" failure)" 1 "dest: still one failure"
wait_for "a replacement worker" 10 bash -c "[ \$(pgrep -P $SUP | wc -l) = 2 ]"
open_transfer "$D"
post_slow "$D" all
ok "dest: the same server can be received again" wait_for "answer" 60 bash -c "grep -q '^Status' '$WX_TEST_TMP/post.out'"
is "$(status_of "$(cat "$WX_TEST_TMP/post.out")")" 200 "dest: ... and completes: 200"
is "$(count "$D" success)" 1 "dest: one success"

# A source that stops sending: the handler is blocked in its read; the
# watchdog cancels it (SIGUSR2 breaks the read) and it cleans up itself.
D2=$(new_uuid)
panel_server "$D2"
open_transfer "$D2"
post_slow "$D2" stop
in_staging() { [ "$(drec "$1" '["status"]')" = processing ] && test -d "$DATA/.wingxfer-staging/$1"; }
ok "stopped source: the handler is receiving into staging" wait_for "receiving" 30 in_staging "$D2"
stale() {
	local p
	p=$(drec "$D2" '["progress_at"]')
	[ -n "$p" ] && [ $(( $(date +%s) - p )) -gt 4 ]
}
ok "stopped source: no progress for longer than stall_timeout" wait_for "stale" 30 stale
HANDLER=$(drec "$D2" '["pid"]')
wd "$DCFG"
like "$OUT" "$D2: stalled: no progress for .* during receiving .*asked pid $HANDLER to stop" \
	"stopped source: the watchdog asks the blocked handler to stop"
unlike "$OUT" "killed" "stopped source: the handler stops within the grace period"
ok "stopped source: the handler is still alive (the read was interrupted, not the process)" kill -0 "$HANDLER"
ok "stopped source: the POST is answered" wait_for "answer" 20 bash -c "grep -q '^Status' '$WX_TEST_TMP/post.out'"
ok "stopped source: staging is gone" test ! -e "$DATA/.wingxfer-staging/$D2"
is "$(count "$D2" failure)" 1 "stopped source: exactly one failure"
ok "stopped source: the record is final" bash -c "case \$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"status\"])' '$DEST/state/transfers/$D2.json') in failed|cancelled) exit 0;; *) exit 1;; esac"
stop_pid $POSTER
wd "$DCFG"
is "$OUT" "" "stopped source: the next run is silent"

done_testing
