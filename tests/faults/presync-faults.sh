#!/bin/bash
# Issue 16, item 4: a live pre-sync (docs/presync.md) survives interruptions
# during its rounds and its final round, and fails safely when it cannot go
# on.  Two nodes in their own network namespaces joined by a veth pair, as
# in tests/faults/chunked-faults.sh; the source's server has 64 MiB that do
# not compress, moved in chunks of 4 MiB at 8 MiB/s (upload_limit and
# download_limit), while tests/lib/game-writer.py stands in for the game.
# The stop hook saves 16 MiB more (as a game saves its world when it
# stops: the final round then lasts seconds), stops the writer and
# snapshots the tree (trees.py manifest --exact).  Interruptions are placed
# on the acknowledged offset (extra.chunked.acked), never on a timer.
#
#   linkcut         the link cut twice during round 1 and once during the
#                   final round (after the stop hook), each time until the
#                   source noticed
#   kill9-assembler the destination's assembler killed -9 during round 1,
#                   and again during the final round: the next request
#                   starts a new one, which applies every round again from
#                   the chunks this node kept
#   apache-restart  the destination's Apache restarted during round 1, and
#                   again during the final round
#   kill9-push      the push worker killed -9 during the final round: it is
#                   not started again (the rounds cannot be made again);
#                   the transfer fails once the watchdogs ran, the server's
#                   tree is as it was stopped, nothing is installed
#
# A scenario that succeeds ends with: both records completed, the installed
# tree byte-identical to the snapshot taken when the server stopped (content,
# modes, ns mtimes, symlinks, empty directories, hard links), exactly one
# success callback and no failure.  PRESYNC_FAULTS="..." picks the
# scenarios; FAULT_SEED=N reproduces a run's interruption points.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
. "$top_srcdir/tests/lib/incompressible.sh"
. "$top_srcdir/tests/faults/lib.sh"
. "$top_srcdir/tests/lib/netpair.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root for network namespaces and Apache"
command -v ip >/dev/null || skip_all "needs ip (iproute2) for network namespaces"
SCENARIOS=${PRESYNC_FAULTS:-linkcut kill9-assembler apache-restart kill9-push}
CHUNK=4194304          # system.transfers.chunk_size below, in bytes
BIG_FILES=8 BIG_MIB=8  # the incompressible part of the server: 64 MiB
SIZE=$((BIG_FILES * BIG_MIB * 1048576))
TREES="$top_srcdir/tests/lib/trees.py"
WRITER="$top_srcdir/tests/lib/game-writer.py"

wx_tmpdir
trap '_stop_workers; _tap_cleanup; netpair_cleanup' EXIT
netpair_init 234 || skip_all "cannot create network namespaces and a veth pair here"
RESULTS="${FAULT_RESULTS:-$top_builddir/tests/faults/results-presync.txt}"
mkdir -p "$(dirname "$RESULTS")"
fault_seed
echo "seed $FAULT_SEED" > "$RESULTS"
webstack_ca || { echo "not ok - test CA"; echo 1..1; exit 1; }
netpair_cert || { echo "not ok - the destination's certificate"; echo 1..1; exit 1; }
netpair_panel || { echo "not ok - panel emulator"; echo 1..1; exit 1; }

HOOKS="$WX_TEST_TMP/hooks"
mkdir -p "$HOOKS"
cat > "$HOOKS/stop" <<EOF
#!/bin/sh
head -c 16777216 /dev/urandom > "\$SERVER_DIR/world/save-on-stop.dat"
python3 "$WRITER" --stop "$HOOKS/\$SERVER_UUID.pid"
python3 "$TREES" manifest "\$SERVER_DIR" --exact > "$HOOKS/\$SERVER_UUID.stopped"
date +%s.%N > "$HOOKS/\$SERVER_UUID.hook"
EOF
chmod 755 "$HOOKS/stop"

SRC="$WX_TEST_TMP/s" DST="$WX_TEST_TMP/d"
NODE_NS[s]=$NSA NODE_NS[d]=$NSB
node_setup s "    stall_timeout: 10
    response_timeout: 120
    connect_timeout: 3
    chunk_size: 4MiB
    upload_limit: 8
    resume_attempts: 100
    presync_threshold: 1MiB
    hooks:
      stop: [$HOOKS/stop]"
PANEL_URL=$NETPAIR_PANEL_B NODE_HOST=$ADDR_B node_setup d "    download_limit: 8"
sed -i "s|cert: .*node.pem|cert: $WX_TEST_TMP/ca/b.pem|; s|key: .*node.key|key: $WX_TEST_TMP/ca/b.key|" "$DST/config.yml"
node_start s apache && node_start d apache || { echo "not ok - Apache does not start"; echo 1..1; exit 1; }
panel_node s id-s token-s "${NODE_URL[s]}"
panel_node d id-d token-d "${NODE_URL[d]}"
WATCHDOG_NS_SRC="ip netns exec $NSA" WATCHDOG_NS_DEST="ip netns exec $NSB"

TEMPLATE="$WX_TEST_TMP/template"
incompressible_tree "$TEMPLATE" "$BIG_FILES" "$BIG_MIB" 6 || { echo "not ok - the template tree"; echo 1..1; exit 1; }

reach() { ip netns exec "$NSA" curl -s -o /dev/null --max-time 2 --cacert "$WX_CA" "${NODE_URL[d]}/"; }
unreachable() { ! reach; }
alive() { kill -0 "$1" 2>/dev/null; }
not() { ! "$@" 2>/dev/null; }
ok "the destination names presync in X-Wingxfer-Capabilities" bash -c \
	"ip netns exec $NSA curl -s -D - -o /dev/null --max-time 10 --cacert $WX_CA -X OPTIONS \
	${NODE_URL[d]}/api/transfers | tr -d '\r' | grep -i '^X-Wingxfer-Capabilities:' | grep -qw presync"

# go UUID: a copy of the template with its writer running, then the
# transfer started through the source's Apache (the panel's request).
go() {
	local u=$1
	cp -a "$TEMPLATE" "$SRC/data/$u"
	python3 "$WRITER" "$SRC/data/$u" --pid-file "$HOOKS/$u.pid" --interval 0.2 \
		--regions-per-turn 2 --count-file "$HOOKS/$u.turns" --max-seconds 1200 &
	track_pid $!
	WPID=$!
	wait_for "the writer of $u starts" 60 test -s "$HOOKS/$u.turns"
	ns_transfer "$u"
}
acked_src() { rec_int "$SRC/state" "$1" acked; }
interruptions_src() { rec_int "$SRC/state" "$1" interruptions; }
acked_past() { [ "$(acked_src "$1")" -ge "$2" ] 2>/dev/null; }
interrupted_more() { [ "$(interruptions_src "$1")" -gt "$2" ] 2>/dev/null; }
stopped() { test -s "$HOOKS/$1.hook"; }
# point: a seeded offset between 15 % and 60 % of round 1 (POINT)
point() { POINT=$((SIZE * 15 / 100 + ((RANDOM * 32768 + RANDOM) % (SIZE * 45 / 100 / 4096)) * 4096)); }
# after_stop UUID: the stop hook ran and the final round is a chunk under way (AT_STOP: acked then)
after_stop() {
	wait_for "$1: the stop hook" 300 stopped "$1" || return 1
	AT_STOP=$(acked_src "$1")
	wait_for "$1: the final round under way" 300 acked_past "$1" $((AT_STOP + CHUNK))
}
# cut LABEL UUID: the link down until the source noticed, then up
cut() {
	local before
	before=$(interruptions_src "$2")
	netpair_down
	ok "$1 at $(acked_src "$2") acknowledged bytes: the destination is out of reach" unreachable
	ok "$1: the source notices (extra.chunked.interruptions > ${before:-0})" \
		wait_for "the source to notice" 120 interrupted_more "$2" "${before:-0}"
	netpair_up
	ok "$1: the link is back" wait_for "link" 30 reach
	echo "$1 acked=$(acked_src "$2")" >> "$RESULTS"
}
# succeeded LABEL UUID: settled; the checks every successful scenario ends with
succeeded() {
	local label=$1 u=$2
	wait_for "$label: the source finished" 600 _worker_done "$SRC/state" "$u"
	settle "$u" "$SRC" "$DST" 120
	is "$(rec "$SRC/state" "$u" '["status"]'):$(rec "$DST/state" "$u" '["status"]')" completed:completed \
		"$label: both records completed"
	[ "$(rec "$DST/state" "$u" '["status"]')" = completed ] || diag "destination: $(rec "$DST/state" "$u" '["error"]')"
	python3 "$TREES" manifest "$DST/data/$u" --exact > "$HOOKS/$u.installed" 2>/dev/null
	ok "$label: the installed tree is byte-identical to the source's when it stopped" \
		cmp -s "$HOOKS/$u.stopped" "$HOOKS/$u.installed"
	cmp -s "$HOOKS/$u.stopped" "$HOOKS/$u.installed" || diff "$HOOKS/$u.stopped" "$HOOKS/$u.installed" | head -10 | sed 's/^/# /'
	is "$(callbacks_by_node "$u" | grep -c '^d success$')" 1 "$label: exactly one success callback (the destination's)"
	is "$(callbacks_by_node "$u" | grep -c ' failure$')" 0 "$label: no failure callback"
	ok "$label: no staging left" test ! -e "$DST/data/.wingxfer-staging/$u"
	diag "$label: rounds $(rec "$SRC/state" "$u" '["extra"]["presync"]["rounds"]' | python3 -c 'import json,sys; print([r["data_bytes"] for r in json.load(sys.stdin)])' 2>/dev/null), chunked $(rec "$SRC/state" "$u" '["extra"]["chunked"]')"
	rm -rf "${DST:?}/data/$u" "${SRC:?}/data/$u"
}

# === linkcut =======================================================================
if [[ " $SCENARIOS " == *" linkcut "* ]]; then
	U=$(new_uuid)
	ok "linkcut: the transfer starts" go "$U"
	point; first=$POINT; point; second=$POINT
	[ "$second" -ge "$first" ] || { t=$first; first=$second; second=$t; }
	second=$((second + 2 * CHUNK))
	wait_for "linkcut: acked past $first" 300 acked_past "$U" "$first"
	ok "linkcut: round 1 under way, the server running (its writer writes)" not stopped "$U"
	cut "linkcut 1 (round 1)" "$U"
	wait_for "linkcut: acked past $second" 300 acked_past "$U" "$second"
	cut "linkcut 2 (round 1)" "$U"
	ok "linkcut: the final round under way after the stop" after_stop "$U"
	cut "linkcut 3 (final round)" "$U"
	succeeded "linkcut" "$U"
fi

# === kill9-assembler ===============================================================
# kill_assembler LABEL UUID: kill -9 of the destination's assembler of the upload
kill_assembler() {
	local apid
	apid=$(rec_int "$DST/state" "$2" pid)
	is_assembler() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q -- '--assemble '; }
	ok "$1: kill -9 of the destination's assembler (pid $apid) at $(acked_src "$2") acknowledged bytes" \
		bash -c "$(declare -f is_assembler); is_assembler '$apid' && kill -KILL '$apid'"
	echo "$1 acked=$(acked_src "$2") assembler=$apid" >> "$RESULTS"
}
if [[ " $SCENARIOS " == *" kill9-assembler "* ]]; then
	U=$(new_uuid)
	ok "kill9-assembler: the transfer starts" go "$U"
	point
	wait_for "kill9-assembler: acked past $POINT" 300 acked_past "$U" "$POINT"
	kill_assembler "kill9-assembler (round 1)" "$U"
	ok "kill9-assembler: the final round under way after the stop" after_stop "$U"
	kill_assembler "kill9-assembler (final round)" "$U"
	succeeded "kill9-assembler" "$U"
	restarts=$(rec "$DST/state" "$U" '["extra"]["chunked"]["restarts"]' 2>/dev/null)
	ok "kill9-assembler: new assemblers took the upload over ($restarts restarts counted)" \
		test "${restarts:-0}" -ge 1 2>/dev/null
fi

# === apache-restart ================================================================
if [[ " $SCENARIOS " == *" apache-restart "* ]]; then
	U=$(new_uuid)
	ok "apache-restart: the transfer starts" go "$U"
	point
	wait_for "apache-restart: acked past $POINT" 300 acked_past "$U" "$POINT"
	ok "apache-restart: the destination's Apache restarted at $(acked_src "$U") acknowledged bytes (round 1)" \
		node_restart_web d
	ok "apache-restart: the final round under way after the stop" after_stop "$U"
	ok "apache-restart: the destination's Apache restarted at $(acked_src "$U") acknowledged bytes (final round)" \
		node_restart_web d
	succeeded "apache-restart" "$U"
fi

# === kill9-push: the push worker killed during the final round =================
if [[ " $SCENARIOS " == *" kill9-push "* ]]; then
	U=$(new_uuid)
	ok "kill9-push: the transfer starts" go "$U"
	ok "kill9-push: the final round under way after the stop" after_stop "$U"
	pid=$(rec_int "$SRC/state" "$U" pid)
	kill_worker() { tr '\0' ' ' < "/proc/$1/cmdline" | grep -q "wingxfer-push.* $2" && kill -KILL "$1"; }
	ok "kill9-push: kill -9 of the push worker (pid $pid) at $(acked_src "$U") acknowledged bytes" \
		kill_worker "$pid" "$U"
	echo "kill9-push acked=$(acked_src "$U") pid=$pid" >> "$RESULTS"
	settle "$U" "$SRC" "$DST" 120
	is "$(rec "$SRC/state" "$U" '["status"]')" failed "kill9-push: the source's record failed"
	d_st=$(rec "$DST/state" "$U" '["status"]')
	dest_ended() { case "$d_st" in failed|cancelled) test ! -e "$DST/data/$U" ;; *) return 1 ;; esac; }
	ok "kill9-push: the destination's record is final ($d_st), nothing installed" dest_ended
	ok "kill9-push: ... no staging left" test ! -e "$DST/data/.wingxfer-staging/$U"
	python3 "$TREES" manifest "$SRC/data/$U" --exact > "$HOOKS/$U.after" 2>/dev/null
	ok "kill9-push: the source's tree is as it was when the server stopped" cmp -s "$HOOKS/$U.stopped" "$HOOKS/$U.after"
	is "$(callbacks_by_node "$U" | grep -c ' success$')" 0 "kill9-push: no success callback"
	ok "kill9-push: a failure callback, at most one per node ($(callbacks_by_node "$U" | tr '\n' ' '))" \
		test "$(callbacks_by_node "$U" | grep -c '^s failure$')" -le 1 -a \
		"$(callbacks_by_node "$U" | grep -c '^d failure$')" -le 1 -a \
		"$(callbacks_by_node "$U" | grep -c ' failure$')" -ge 1
	rm -rf "${DST:?}/data/$U" "${SRC:?}/data/$U"
fi

node_stop s
node_stop d
echo "elapsed ${SECONDS} s" >> "$RESULTS"
done_testing
