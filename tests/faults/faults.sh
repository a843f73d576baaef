#!/bin/bash
# Fault injection with the real programs, two nodes behind Apache with TLS,
# on the single POST (system.transfers.chunked: off on the source)
# (s sends, d receives at 2 MiB/s so a transfer lasts about 10 s; a test
# that interrupts a transfer holds it first, see hold):
#   - the destination's web server restarted mid-transfer (a clean failure);
#   - the source's web server and FastCGI programs restarted mid-transfer
#     (the detached worker carries on: the transfer completes);
#   - the panel down during and after a transfer that completes and one that
#     fails (callbacks queued, delivered once when it is back);
#   - the panel answering 500 once, and dropping the connection once;
#   - the destination's receiving process stopped (SIGSTOP: it stops reading);
#   - disk full on the destination: a small tmpfs as its data directory, out
#     of bytes and out of inodes (root only); with the preflight the source
#     learns it before stopping the server.
# After each, both watchdogs run until nothing is active, and the invariants
# of tests/faults/lib.sh are checked: no staging, the source tree intact,
# exactly one callback per node that ended the transfer, a success only with
# a byte-identical tree.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
. "$top_srcdir/tests/faults/lib.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root to run Apache as www-data"
wx_tmpdir
MOUNTS=""
trap '_stop_workers; for m in $MOUNTS; do umount "$m" 2>/dev/null || umount -l "$m"; done; _tap_cleanup' EXIT
webstack_ca || { echo "not ok 1 - test CA"; echo 1..1; exit 1; }
panel_start || { echo "not ok 1 - panel emulator"; echo 1..1; exit 1; }
RESULTS="${FAULT_RESULTS:-$top_builddir/tests/faults/results-faults.txt}"
mkdir -p "$(dirname "$RESULTS")"
: > "$RESULTS"
FAULTS=0
# note KIND RESULT...: one fault injected, and what came of it.
note() { FAULTS=$((FAULTS + 1)); echo "$*" >> "$RESULTS"; }

SRC="$WX_TEST_TMP/s" DST="$WX_TEST_TMP/d"
# These are the single POST's faults (what Go Wings peers always get, and
# chunked: off): each interruption fails the transfer cleanly.  The chunked
# protocol resumes instead: its faults are tests/faults/chunked-faults.sh.
node_setup s "    stall_timeout: 3
    response_timeout: 60
    connect_timeout: 3
    chunked: off"
node_setup d "    stall_timeout: 3
    download_limit: 2"
# The destination waits up to 2 min for each panel answer (not 5 s): the
# "killed while delivering" case below holds one answer back 30 s and kills
# the process while it waits, however long the test takes to notice.
sed -i 's/^  timeout: 5$/  timeout: 120/' "$DST/config.yml"
node_start s apache && node_start d apache || { echo "not ok 1 - Apache does not start"; echo 1..1; exit 1; }
panel_node s id-s token-s "${NODE_URL[s]}"
panel_node d id-d token-d "${NODE_URL[d]}"
template_tree "$WX_TEST_TMP/template"
SRC_NAME=s DEST_NAME=d

# go UUID [DEST]: copies the template and starts the transfer through the
# source's web server, as a panel does; true on 202.
go() {
	local u=$1 dest=${2:-d} tok body code
	cp -a "$TEMPLATE" "$SRC/data/$u"
	panel_server "$u" 0
	panel_api POST /_emulator/transfers "{\"server\":\"$u\",\"notify\":false}" >/dev/null
	tok=$(json_get "$(panel_api POST /_emulator/tokens "{\"server\":\"$u\",\"node\":\"$dest\"}")" '["token"]')
	body="{\"url\":\"${NODE_URL[$dest]}/api/transfers\",\"token\":\"Bearer $tok\"}"
	code=$(https_curl --max-time 60 -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer token-s" \
		-H 'Content-Type: application/json' -d "$body" "${NODE_URL[s]}/api/servers/$u/transfer")
	track_worker "$SRC/state" "$u"
	[ "$code" = 202 ] || { diag "the source answered $code"; return 1; }
}
# receiving NODE-DIR UUID BYTES: the destination has received more than BYTES
# (read with rec_int, not python: see tests/lib/push.sh).
receiving() { [ "$(rec_int "$1/state" "$2" bytes_read)" -gt "$3" ] 2>/dev/null; }
# hold NODE-DIR UUID: SIGSTOPs the push worker and the receiving process of
# a transfer seen receiving, so that it cannot end before the test
# interrupts it however loaded the machine is (HELD_PUSH, HELD_RECV); their
# pids are read with sed, in a few milliseconds.  Once continued, both see
# the time they were stopped as a stall.
hold() {
	HELD_PUSH=$(rec_int "$SRC/state" "$2" pid) HELD_RECV=$(rec_int "$1/state" "$2" pid)
	[ -n "$HELD_PUSH" ] && [ -n "$HELD_RECV" ] || return 1
	kill -STOP "$HELD_PUSH" || return 1 # the push has ended: too late to hold
	kill -STOP "$HELD_RECV"
}
statuses() { echo "$(rec "$SRC/state" "$1" '["status"]'):$(rec "$2/state" "$1" '["status"]')"; }

# --- the destination's web server restarted mid-transfer ---------------------
U=$(new_uuid)
go "$U"
ok "web restart (destination): bytes are arriving" wait_for "receiving" 30 receiving "$DST" "$U" 1000000
ok "web restart (destination): held mid-transfer" hold "$DST" "$U"
ok "web restart (destination): Apache is back" node_restart_web d
kill -CONT "$HELD_PUSH" "$HELD_RECV"
settle "$U" "$SRC" "$DST"
is "$(statuses "$U" "$DST")" failed:failed "web restart (destination): the transfer failed on both nodes"
invariants "web restart (destination)" "$U" "$SRC" "$DST"
note "web-restart-destination $(statuses "$U" "$DST"): source: $(rec "$SRC/state" "$U" '["error"]'); destination: $(rec "$DST/state" "$U" '["error"]')"

# --- the source's web server and programs restarted mid-transfer ------------
U=$(new_uuid)
go "$U"
ok "restart (source): bytes are arriving" wait_for "receiving" 30 receiving "$DST" "$U" 1000000
ok "restart (source): Apache is back" node_restart_web s
# (its output to /dev/null inside the function: a redirect after `ok` would
# swallow the TAP line too)
spawn_src() {
	env WINGXFER_SBINDIR="$WX_BIN" "$WX_TOOLS/wingxfer-spawn" \
		--config "$SRC/config.yml" --rundir "$SRC/run" --logdir "$SRC/log" "$@" >/dev/null
}
ok "restart (source): the FastCGI programs stop" spawn_src stop
ok "restart (source): ... and start again" spawn_src --workers 3 start
track_pid "$(cat "$SRC/run/source.pid")"
track_pid "$(cat "$SRC/run/destination.pid")"
wait_worker "$SRC/state" "$U" 60
settle "$U" "$SRC" "$DST"
is "$(statuses "$U" "$DST")" completed:completed \
	"restart (source): Apache and the FastCGI programs restarted, the detached worker completed the transfer"
invariants "restart (source)" "$U" "$SRC" "$DST"
note "restart-source $(statuses "$U" "$DST")"

# --- the panel down during and after a transfer -------------------------------
# Two transfers with the panel going down while both are receiving (the
# installer step is done).  U2 is held (its push worker and its receiving
# process SIGSTOPped) as soon as it receives, so it cannot end before its
# push worker is killed, however loaded the machine; U1 completes.  The
# destination tries for Wings' 30 s window, then leaves the callback queued;
# the watchdogs keep them; when the panel is back, --retry-now delivers each
# once.
U1=$(new_uuid) U2=$(new_uuid)
go "$U2"
ok "panel down: the transfer to kill is receiving" wait_for "receiving" 30 receiving "$DST" "$U2" 500000
ok "panel down: held" hold "$DST" "$U2"
P2=$HELD_PUSH H2=$HELD_RECV
go "$U1"
ok "panel down: the transfer to complete is receiving" wait_for "receiving" 30 receiving "$DST" "$U1" 500000
panel_stop
kill -KILL "$P2"
kill -CONT "$H2"
# Callbacks that reached the panel before it went down (U1 may have ended
# already on a slow build) are not expected in the outbox: counted from the
# state the emulator saved.
early() { python3 -c 'import json, sys
cs = json.load(open(sys.argv[1]))["callbacks"]
print(sum(1 for c in cs if c["server"] in sys.argv[3:] and c["node"] == sys.argv[2]))' \
	"$WX_TEST_TMP/panel/state.json" "$1" "$U1" "$U2"; }
early_d=$(early d) early_s=$(early s)
[ $((early_d + early_s)) = 0 ] || diag "panel down: $early_d destination and $early_s source callback(s) reached the panel before it went down"
wait_worker "$SRC/state" "$U1" 90
wait_for "the destination to answer" 90 _quiet "$DST/state" "$U1"
settle "$U2" "$SRC" "$DST" 60
is "$(statuses "$U1" "$DST"):$(statuses "$U2" "$DST")" completed:completed:failed:failed \
	"panel down: one transfer completed, the killed one failed, with the panel down"
queued=$(ls "$DST/state/outbox"/*.json "$SRC/state/outbox"/*.json 2>/dev/null | wc -l)
is "$queued" $((3 - early_d - early_s)) "panel down: three callbacks are queued (a success and two failures), less those sent before it went down"
"$WX_BIN/wingxfer-watchdog" --config "$DST/config.yml" >/dev/null 2>&1
is "$(ls "$DST/state/outbox"/*.json 2>/dev/null | wc -l)" $((2 - early_d)) "panel down: a watchdog run while it is down loses nothing"
panel_start
for n in "$SRC" "$DST"; do "$WX_BIN/wingxfer-watchdog" --config "$n/config.yml" --retry-now >>"$WX_TEST_TMP/watchdog.out" 2>&1; done
is "$(ls "$DST/state/outbox"/*.json "$SRC/state/outbox"/*.json 2>/dev/null | wc -l)" 0 \
	"panel back: the watchdogs delivered every queued callback"
invariants "panel down (completed transfer)" "$U1" "$SRC" "$DST"
invariants "panel down (failed transfer)" "$U2" "$SRC" "$DST"
for n in "$SRC" "$DST"; do "$WX_BIN/wingxfer-watchdog" --config "$n/config.yml" --retry-now >>"$WX_TEST_TMP/watchdog.out" 2>&1; done
is "$(callbacks_by_node "$U1" | wc -l):$(callbacks_by_node "$U2" | wc -l)" 1:2 \
	"panel back: another watchdog run sends nothing twice"
note "panel-down $(statuses "$U1" "$DST") $(statuses "$U2" "$DST")"

# --- the panel answers 500 once / drops the connection once ------------------
for fault in '"status":500' '"drop":true'; do
	U=$(new_uuid)
	panel_api POST /_emulator/faults "{\"path\":\"/servers/$U/transfer/success\",$fault,\"count\":1}" >/dev/null
	go "$U"
	wait_worker "$SRC/state" "$U" 90
	settle "$U" "$SRC" "$DST"
	is "$(statuses "$U" "$DST")" completed:completed "panel fault {$fault}: the transfer completes"
	is "$(panel_api GET "/_emulator/requests?server=$U" | python3 -c 'import json,sys
print(sum(1 for r in json.load(sys.stdin) if r["path"].endswith("/success")))')" 2 \
		"panel fault {$fault}: the success callback was tried twice"
	invariants "panel fault {$fault}" "$U" "$SRC" "$DST"
	note "panel-fault $fault $(statuses "$U" "$DST")"
done

# --- the destination killed while it delivers its success callback ------------
# The panel holds its answer to the success 30 s; the receiving process is
# killed once the panel has the request (the fault is used up), its callback
# still queued (no tombstone).  The panel got it; the watchdog sends the
# queued copy again, and the panel refuses one of the two (409, the transfer
# is closed): at-least-once delivery across a kill -9.  The tree was
# installed before the callback: the destination is completed.
U=$(new_uuid)
panel_api POST /_emulator/faults "{\"path\":\"/servers/$U/transfer/success\",\"delay\":30,\"count\":1}" >/dev/null
go "$U"
d_completed() { [ "$(rec "$DST/state" "$U" '["status"]')" = completed ]; }
ok "killed while delivering: the destination's record is completed" wait_for "completed" 60 d_completed
at_panel() { python3 -c 'import json, sys
sys.exit(any(sys.argv[2] in f["path"] for f in json.load(open(sys.argv[1]))["faults"]))' \
	"$WX_TEST_TMP/panel/state.json" "$U"; }
ok "killed while delivering: the panel holds the success callback" wait_for "the callback at the panel" 60 at_panel
HANDLER=$(rec "$DST/state" "$U" '["pid"]')
ok "killed while delivering: kill -9 of the receiving process $HANDLER" kill -KILL "$HANDLER"
wait_worker "$SRC/state" "$U" 60
settle "$U" "$SRC" "$DST"
d_successes() { [ "$(panel_api GET "/_emulator/callbacks?server=$U" | python3 -c 'import json,sys
print(sum(1 for c in json.load(sys.stdin) if c["node"] == "d" and c["kind"] == "success"))')" = 2 ]; }
wait_for "the held first copy to be answered" 60 d_successes
# (Whether the first copy is taken (204) or refused too depends on whether
# the source's failure, for the answer it never got, came first.)
like "$(panel_api GET "/_emulator/callbacks?server=$U" | python3 -c 'import json,sys
print(" ".join("%s:%s:%s" % (c["node"], c["kind"], c["status"]) for c in sorted(json.load(sys.stdin), key=lambda c: c["id"]) if c["node"] == "d"))')" \
	'^d:success:(204|409) d:success:409$' \
	"killed while delivering: the panel got the success, and refused the watchdog's second copy (409)"
KILLED_NODE=d invariants "killed while delivering its success" "$U" "$SRC" "$DST"
note "killed-while-delivering $(statuses "$U" "$DST"): source: $(rec "$SRC/state" "$U" '["error"]'); redelivered $REDELIVERED"

# --- the destination stops reading ---------------------------------------------
U=$(new_uuid)
go "$U"
ok "stopped reader: bytes are arriving" wait_for "receiving" 30 receiving "$DST" "$U" 1000000
hold "$DST" "$U"
HANDLER=$HELD_RECV
kill -CONT "$HELD_PUSH"
settle "$U" "$SRC" "$DST" 60
like "$(rec "$SRC/state" "$U" '["error"]')" 'stall|no progress|[0-9]+ s' \
	"stopped reader: the source gave up after system.transfers.stall_timeout"
like "$(cat "$WX_TEST_TMP/watchdog.out")" "$U: stalled: .*pid $HANDLER" \
	"stopped reader: the destination's watchdog found the stalled receiver"
ok "stopped reader: the stopped process is gone (killed after the grace period)" \
	wait_for "pid $HANDLER gone" 15 bash -c "! kill -0 $HANDLER 2>/dev/null"
kill -CONT "$HANDLER" 2>/dev/null
invariants "stopped reader" "$U" "$SRC" "$DST"
note "stopped-reader $(statuses "$U" "$DST"): source: $(rec "$SRC/state" "$U" '["error"]'); destination: $(rec "$DST/state" "$U" '["error"]')"

# --- disk full on the destination -----------------------------------------------
# f1: 8 MiB of bytes; f2: 400 inodes, and a tree of 1 500 small files.
tmpfs_node() { # tmpfs_node NAME MOUNT-OPTIONS
	node_setup "$1" "    stall_timeout: 3"
	mount -t tmpfs -o "$2,mode=0755" "wingxfer-$1" "$WX_TEST_TMP/$1/data" || return 1
	MOUNTS="$MOUNTS $WX_TEST_TMP/$1/data"
	node_start "$1" apache || return 1
	panel_node "$1" "id-$1" "token-$1" "${NODE_URL[$1]}"
}
if [ "$(id -u)" != 0 ]; then
	skip "disk full on the destination" "not root: cannot mount a tmpfs"
elif ! tmpfs_node f1 size=8m || ! tmpfs_node f2 size=64m,nr_inodes=400; then
	skip "disk full on the destination" "cannot mount a tmpfs here (mount -t tmpfs failed)"
else
	# With the preflight (on by default) the source asks f1 first: no room for
	# the tree, so the server is never stopped and f1 never starts receiving.
	DEST_NAME=f1
	U=$(new_uuid)
	go "$U" f1
	wait_worker "$SRC/state" "$U" 60
	settle "$U" "$SRC" "$WX_TEST_TMP/f1"
	is "$(statuses "$U" "$WX_TEST_TMP/f1")" "failed:(no record)" \
		"disk full, preflight: the source fails, the destination never started"
	like "$(rec "$SRC/state" "$U" '["error"]')" 'before stopping the server.*507: Not enough disk space' \
		"disk full, preflight: the source says why, before the stop"
	invariants "disk full, preflight" "$U" "$SRC" "$WX_TEST_TMP/f1"
	rm -rf "${SRC:?}/data/$U"
	# The receiving side's own checks while the disk fills: without the preflight.
	sed -i 's/^    connect_timeout: 3$/    connect_timeout: 3\n    preflight: false/' "$SRC/config.yml"
	for f in f1 f2; do
		if [ $f = f2 ]; then
			TEMPLATE="$WX_TEST_TMP/many" TEMPLATE_MANIFEST="$WX_TEST_TMP/many.manifest"
			mkdir -p "$TEMPLATE"
			python3 -c 'import os, sys
for i in range(1500):
    d = os.path.join(sys.argv[1], "d%02d" % (i % 30))
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "f%04d" % i), "w").write("x")' "$TEMPLATE"
			python3 "$top_srcdir/tests/lib/trees.py" manifest "$TEMPLATE" > "$TEMPLATE_MANIFEST"
		fi
		DEST_NAME=$f
		U=$(new_uuid)
		go "$U" "$f"
		wait_worker "$SRC/state" "$U" 60
		settle "$U" "$SRC" "$WX_TEST_TMP/$f"
		is "$(statuses "$U" "$WX_TEST_TMP/$f")" failed:failed "disk full ($f): the transfer failed on both nodes"
		like "$(rec "$SRC/state" "$U" '["error"]')" '507|disk space' "disk full ($f): the source says the destination's disk is full"
		like "$(rec "$WX_TEST_TMP/$f/state" "$U" '["error"]')" 'Not enough disk space' "disk full ($f): so does the destination's record"
		invariants "disk full ($f)" "$U" "$SRC" "$WX_TEST_TMP/$f"
		is "$(ls -A "$WX_TEST_TMP/$f/data" | tr '\n' ' ')" ".wingxfer-staging " "disk full ($f): the filesystem is empty again"
		is "$(ls -A "$WX_TEST_TMP/$f/data/.wingxfer-staging" | wc -l)" 0 "disk full ($f): ... and staging too"
		note "disk-full-$f $(statuses "$U" "$WX_TEST_TMP/$f"): $(rec "$WX_TEST_TMP/$f/state" "$U" '["error"]')"
		rm -rf "${SRC:?}/data/$U"
	done
	sed -i '/^    preflight: false$/d' "$SRC/config.yml"
	# A server that fits still arrives.
	TEMPLATE="$WX_TEST_TMP/small" TEMPLATE_MANIFEST="$WX_TEST_TMP/small.manifest"
	python3 "$top_srcdir/tests/lib/trees.py" make "$TEMPLATE" --files 20 >/dev/null
	python3 "$top_srcdir/tests/lib/trees.py" manifest "$TEMPLATE" > "$TEMPLATE_MANIFEST"
	U=$(new_uuid)
	DEST_NAME=f1
	go "$U" f1
	wait_worker "$SRC/state" "$U" 60
	settle "$U" "$SRC" "$WX_TEST_TMP/f1"
	is "$(statuses "$U" "$WX_TEST_TMP/f1")" completed:completed "disk full: afterwards a server that fits arrives"
	invariants "after disk full" "$U" "$SRC" "$WX_TEST_TMP/f1"
	node_stop f1
	node_stop f2
fi
unlike "$(node_log s; node_log d)" 'AddressSanitizer|runtime error' "no sanitizer report in the nodes' logs"
node_stop s
node_stop d
panel_stop
echo "faults $FAULTS" >> "$RESULTS"
echo "elapsed ${SECONDS} s" >> "$RESULTS"
done_testing
