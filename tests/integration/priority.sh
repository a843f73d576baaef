#!/bin/bash
# Good neighbour: a running push worker (every thread of it) and a process
# receiving a transfer (wingxfer-destination over FastCGI) have the CPU and
# I/O priority system.transfers.nice and io_priority say: by default nice 10
# and best-effort level 7; nice 5 and idle when configured; unchanged with
# nice 0 and normal.  The FastCGI worker gets its priority back after the
# transfer.  The same for a chunked upload: the FastCGI worker reading a
# PATCH, and the upload's assembler (its extractor is forked from it).
# Read from /proc/PID/task/*/stat and ionice -p.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
command -v ionice >/dev/null || { echo "not ok 1 - ionice missing (util-linux)"; echo 1..1; exit 1; }
command -v cgi-fcgi >/dev/null || { echo "not ok 1 - cgi-fcgi missing (libfcgi-bin)"; echo 1..1; exit 1; }
wx_tmpdir
panel_start
panel_node src id-src token-src http://127.0.0.1:1
SELF_NICE=$(nice)
SELF_IO=$(ionice -p $$)

# nices PID: the distinct niceness values of the threads of PID.
nices() {
	local t
	for t in /proc/"$1"/task/*/stat; do
		sed 's/^.*) //' "$t" 2>/dev/null | cut -d' ' -f17
	done | sort -u | tr '\n' ' ' | sed 's/ $//'
}
# prio_is nices|ios PID WANT: the threads of PID all have WANT.
prio_is() { [ "$("$1" "$2")" = "$3" ]; }
# ios PID: the distinct I/O priorities of the threads of PID, as ionice says.
ios() {
	local t
	for t in /proc/"$1"/task/*; do
		ionice -p "${t##*/}" 2>/dev/null
	done | sort -u | tr '\n' ';' | sed 's/;$//'
}

# --- the push worker -----------------------------------------------------------
# push_case NAME EXTRA-YAML WANT-NICE WANT-IO
push_case() {
	local name=$1 extra=$2 want_nice=$3 want_io=$4 node="$WX_TEST_TMP/src-$1" cfg u pid
	cfg=$(make_node_config "$node" src "$extra")
	u=$(new_uuid)
	make_server "$node/data" "$u"
	panel_server "$u"
	panel_api POST /_emulator/transfers \
		"{\"server\":\"$u\",\"source\":\"src\",\"destination\":\"dst\",\"notify\":false}" >/dev/null
	head -c 20000000 /dev/urandom > "$node/data/$u/world.dat"
	recv_start "$name" --mode slow --rate 500000
	out=$(post_transfer "$cfg" "$u" "$RECV_URL")
	is "$(status_of "$out")" 202 "push $name: the transfer starts"
	track_worker "$node/state" "$u"
	wait_for "push $name: bytes on the wire" 60 counter_above "$node/state" "$u" bytes_sent 0
	pid=$(rec "$node/state" "$u" '["pid"]')
	is "$(nices "$pid")" "$want_nice" "push $name: every thread of the worker at nice $want_nice"
	is "$(ios "$pid")" "$want_io" "push $name: ... and I/O priority '$want_io'"
	node=$(sed -n 's/^token: //p' "$cfg")
	out=$(cgi wingxfer-source "$cfg" DELETE "/api/servers/$u/transfer" "Bearer $node")
	is "$(status_of "$out")" 202 "push $name: cancelled"
	wait_worker "$(dirname "$cfg")/state" "$u"
	stop_pid "$RECV_PID"
}
push_case default "" 10 "best-effort: prio 7"
push_case custom "    nice: 5
    io_priority: idle" 5 "idle"
push_case off "    nice: 0
    io_priority: normal" "$SELF_NICE" "$SELF_IO"

# --- the receiving process (one FastCGI worker, config re-read per request) ----
. "$top_srcdir/tests/lib/destination.sh"
DEST_DIR="$WX_TEST_TMP/dest"
make_node_config "$DEST_DIR" dest >/dev/null
cp "$DEST_DIR/config.yml" "$WX_TEST_TMP/dest-base.yml"
panel_node dest id-dest token-dest http://127.0.0.1:1
SOCK="$WX_TEST_TMP/dest.sock"
"$WX_BIN/wingxfer-destination" --config "$DEST_DIR/config.yml" --listen "$SOCK" --workers 1 \
	2>"$WX_TEST_TMP/dest.err" &
SUP=$!
track_pid $SUP
wait_for "socket $SOCK" 10 test -S "$SOCK"
WORKER=$SUP  # --workers 1: the process serves itself
head -c 4000000 /dev/urandom > "$WX_TEST_TMP/big.bin"
tar -C "$WX_TEST_TMP" -czf "$WX_TEST_TMP/big.tgz" big.bin
body_for "$WX_TEST_TMP/big.body" "$WX_TEST_TMP/big.tgz"
is "$(nices "$WORKER"):$(ios "$WORKER")" "$SELF_NICE:$SELF_IO" "FastCGI worker idle: the priority it was started with"

# feed FILE GO: the first MB of FILE, then the rest once GO exists (bounded).
feed() {
	python3 - "$1" "$2" <<'PY'
import os, sys, time
data = open(sys.argv[1], "rb").read()
out = sys.stdout.buffer
out.write(data[:1000000]); out.flush()
deadline = time.monotonic() + 120
while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
    time.sleep(0.05)
out.write(data[1000000:]); out.flush()
PY
}

# dest_config EXTRA-YAML: the destination's config, re-read per request.
dest_config() {
	{ cat "$WX_TEST_TMP/dest-base.yml"; printf '%s\n' "$1"; } > "$DEST_DIR/config.yml.new"
	mv "$DEST_DIR/config.yml.new" "$DEST_DIR/config.yml"
}
# prio_now LABEL PID WANT-NICE WANT-IO: two checks, waiting for PID's priority.
prio_now() {
	ok "$1 at nice $3" wait_for "nice $3" 60 prio_is nices "$2" "$3"
	ok "$(printf '%s' "$1" | cut -d: -f1): ... and I/O priority '$4'" \
		wait_for "I/O priority $4" 60 prio_is ios "$2" "$4"
}
# release LABEL POSTER OUT WANT-STATUS WHAT: lets the held body go, waits
# for its request to end; checks its status and that the worker has its
# priority back.
release() {
	touch "$WX_TEST_TMP/go"
	wait_for "$1: the request to end" 120 bash -c "! kill -0 $2 2>/dev/null"
	wait "$2"
	is "$(status_of "$(cat "$3")")" "$4" "$1: $5 ($4)"
	is "$(nices "$WORKER"):$(ios "$WORKER")" "$SELF_NICE:$SELF_IO" \
		"$1: afterwards the worker has its priority back"
}

# recv_case NAME EXTRA-YAML WANT-NICE WANT-IO
recv_case() {
	local name=$1 extra=$2 want_nice=$3 want_io=$4 u token pid
	dest_config "$extra"
	u=$(new_server)
	token=$(token_for "$u")
	rm -f "$WX_TEST_TMP/go"
	feed "$WX_TEST_TMP/big.body" "$WX_TEST_TMP/go" | env -i REQUEST_METHOD=POST REQUEST_URI=/api/transfers \
		QUERY_STRING= HTTP_AUTHORIZATION="Bearer $token" CONTENT_TYPE="$CT" \
		CONTENT_LENGTH="$(stat -c %s "$WX_TEST_TMP/big.body")" \
		cgi-fcgi -bind -connect "$SOCK" > "$WX_TEST_TMP/post.out" 2>/dev/null &
	local poster=$!
	# The worker lowers its priority, then saves the record in phase
	# "receiving"; bytes_read is saved at most once a second while data flows,
	# so it can stay 0 while the feed holds back.
	wait_for "receive $name: phase receiving" 60 phase_is "$DEST_DIR/state" "$u" receiving
	pid=$(rec "$DEST_DIR/state" "$u" '["pid"]')
	is "$pid" "$WORKER" "receive $name: the FastCGI worker receives"
	prio_now "receive $name: while receiving" "$pid" "$want_nice" "$want_io"
	diag "receive $name: nice $(nices "$pid"), I/O $(ios "$pid")"
	release "receive $name" "$poster" "$WX_TEST_TMP/post.out" 200 "the transfer completes"
}
recv_case default "" 10 "best-effort: prio 7"
recv_case custom "    nice: 5
    io_priority: idle" 5 "idle"
recv_case off "    nice: 0
    io_priority: normal" "$SELF_NICE" "$SELF_IO"

# --- a chunked upload: the worker reading a PATCH, and the upload's assembler ---
. "$top_srcdir/tests/lib/chunked.sh"
BIG_SHA=$(b64sha "$WX_TEST_TMP/big.body")
# rec_final STATE UUID: the record's status is final.
rec_final() { case $(rec "$1" "$2" '["status"]' 2>/dev/null) in completed|failed|cancelled) return 0 ;; esac; return 1; }
# asm_of ID: the pid of the upload's assembler.
asm_of() { pgrep -f -- "--assemble $1" | head -n 1; }
# chunk_case NAME EXTRA-YAML WANT-NICE WANT-IO
chunk_case() {
	local name=$1 extra=$2 want_nice=$3 want_io=$4 u out id secret asm
	dest_config "$extra"
	u=$(new_server)
	out=$(env -i REQUEST_METHOD=POST REQUEST_URI=/api/transfers/uploads QUERY_STRING= \
		HTTP_AUTHORIZATION="Bearer $(token_for "$u")" HTTP_UPLOAD_COMPLETE='?0' \
		HTTP_X_WINGXFER_BODY_TYPE="$CT" CONTENT_LENGTH=0 cgi-fcgi -bind -connect "$SOCK" </dev/null)
	is "$(status_of "$out")" 201 "chunked $name: the upload is created (201)"
	id=$(json_get "$(body_of "$out")" '["upload"]')
	secret=$(json_get "$(body_of "$out")" '["secret"]')
	wait_for "chunked $name: its assembler" 60 test -n "$(asm_of "$id")"
	asm=$(asm_of "$id")
	prio_now "chunked $name: the assembler" "$asm" "$want_nice" "$want_io"
	rm -f "$WX_TEST_TMP/go"
	feed "$WX_TEST_TMP/big.body" "$WX_TEST_TMP/go" | env -i REQUEST_METHOD=PATCH \
		REQUEST_URI="/api/transfers/uploads/$id" QUERY_STRING= HTTP_AUTHORIZATION="Bearer $secret" \
		HTTP_UPLOAD_OFFSET=0 HTTP_UPLOAD_COMPLETE='?1' HTTP_CONTENT_DIGEST="sha-256=:$BIG_SHA:" \
		HTTP_REPR_DIGEST="sha-256=:$BIG_SHA:" CONTENT_TYPE=application/partial-upload \
		CONTENT_LENGTH="$(stat -c %s "$WX_TEST_TMP/big.body")" \
		cgi-fcgi -bind -connect "$SOCK" > "$WX_TEST_TMP/patch.out" 2>/dev/null &
	local poster=$!
	# The chunk's file in the spool exists while the worker reads it.
	wait_for "chunked $name: the PATCH is read" 60 \
		bash -c "ls '$DEST_DIR/state/uploads/$id.spool'/.tmp-* >/dev/null 2>&1"
	prio_now "chunked $name: the worker reads the PATCH" "$WORKER" "$want_nice" "$want_io"
	release "chunked $name" "$poster" "$WX_TEST_TMP/patch.out" 202 "the last chunk is acknowledged"
	wait_for "chunked $name: the upload to end" 120 rec_final "$DEST_DIR/state" "$u"
	is "$(rec "$DEST_DIR/state" "$u" '["status"]')" completed "chunked $name: the transfer completes"
}
chunk_case default "" 10 "best-effort: prio 7"
chunk_case custom "    nice: 5
    io_priority: idle" 5 "idle"
chunk_case off "    nice: 0
    io_priority: normal" "$SELF_NICE" "$SELF_IO"
stop_pid $SUP
done_testing
