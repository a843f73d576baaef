# kill -9 at seeded random points of real transfers; sourced by
# kill9-push.sh (FAULT_KIND=push: the push worker on the source) and
# kill9-receiver.sh (FAULT_KIND=receiver: the FastCGI process receiving on
# the destination, behind Apache with TLS), FAULT_KILLS times (default 20).
# The delay after the process is known is drawn from a seeded generator
# over a little more than a whole transfer, so the kills land while
# archiving and uploading, receiving and extracting, waiting for the
# answer, and sometimes after the end.  After each kill both watchdogs run
# (explicitly, short timeouts) until nothing is active; then: no staging,
# the source tree byte-identical, exactly one callback per node that ended
# the transfer, a success only with a byte-identical tree.
# FAULT_SEED=N reproduces a run's kill points.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
. "$top_srcdir/tests/faults/lib.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root to run Apache as www-data"
wx_tmpdir
webstack_ca || { echo "not ok 1 - test CA"; echo 1..1; exit 1; }
panel_start || { echo "not ok 1 - panel emulator"; echo 1..1; exit 1; }
fault_seed
KILLS=${FAULT_KILLS:-20}
KIND=${FAULT_KIND:?push or receiver}
RESULTS="${FAULT_RESULTS:-$top_builddir/tests/faults/results-kill9-$KIND.txt}"
mkdir -p "$(dirname "$RESULTS")"
echo "seed $FAULT_SEED" > "$RESULTS"

SRC_NAME=s DEST_NAME=d
# The node whose process is killed (see invariants in tests/faults/lib.sh).
if [ "$KIND" = push ]; then KILLED_NODE=s; else KILLED_NODE=d; fi
SRC="$WX_TEST_TMP/s" DST="$WX_TEST_TMP/d"
src_node "$SRC" s
# 4 MiB/s on the destination (after a first second's worth): a transfer
# lasts about five seconds, long enough for kills to land in every phase.
node_setup d "    stall_timeout: 3
    download_limit: 4"
node_start d apache || { echo "not ok 1 - Apache does not start"; echo 1..1; exit 1; }
panel_node s id-s token-s http://127.0.0.1:1
panel_node d id-d token-d "${NODE_URL[d]}"
template_tree "$WX_TEST_TMP/template"

phase_of() { rec "$1" "$2" '["phase"]' 2>/dev/null; }
dest_pid() { local p; p=$(rec "$DST/state" "$1" '["pid"]' 2>/dev/null); [ "${p:-0}" -gt 0 ] 2>/dev/null && echo "$p"; }
has_dest_pid() { dest_pid "$1" >/dev/null; }
dest_final() { _final "$(rec "$DST/state" "$1" '["status"]')"; }

# Two baseline transfers: how long the process to be killed lives for one
# transfer (from when its pid is known); the kill window is 1.1 times the
# shorter (the first transfer runs cold and is slower: with its length as
# the window a third of the kills landed after the end).
WINDOW=""
for b in 1 2; do
	U=$(new_uuid)
	start_transfer "$SRC" d "$U" || diag "start: $START_OUT"
	track_worker "$SRC/state" "$U"
	if [ "$KIND" = push ]; then
		wait_for "worker pid" 10 _has_pid "$SRC/state" "$U"
		t0=$(date +%s%N)
		wait_worker "$SRC/state" "$U" 60
	else
		wait_for "receiving pid" 20 has_dest_pid "$U"
		t0=$(date +%s%N)
		wait_for "the destination to finish" 60 dest_final "$U"
	fi
	span=$(( ($(date +%s%N) - t0) / 1000000 ))
	wait_worker "$SRC/state" "$U" 60
	is "$(rec "$SRC/state" "$U" '["status"]')" completed "baseline $b: a transfer completes (${span} ms)"
	settle "$U" "$SRC" "$DST" 10
	invariants "baseline $b" "$U" "$SRC" "$DST"
	rm -rf "${DST:?}/data/$U" "${SRC:?}/data/$U"
	[ -z "$WINDOW" ] || [ $((span * 11 / 10)) -lt "$WINDOW" ] && WINDOW=$((span * 11 / 10))
done
echo "window $WINDOW ms" >> "$RESULTS"
diag "kill window 0..$WINDOW ms after the $KIND process is known"

# Until KILLS kills have hit the live process while its transfer was still
# active (a kill drawn after the end, even of a live process, such as an
# idle FastCGI worker, does not count), at most 3 x KILLS transfers.  A kill
# that lands after the end shrinks the window by a quarter (not below
# 200 ms): on a machine whose speed changes under the test (other work,
# the sanitizer build) the baselines' window can be longer than the
# transfers that follow, and the count must not depend on that.
declare -A LANDED
HIT=0 KILLED=0
for kind in $KIND; do
	for i in $(seq 1 $((KILLS * 3))); do
		[ "$HIT" -ge "$KILLS" ] && break
		U=$(new_uuid)
		delay=$(rand_ms "$WINDOW")
		label="$kind kill $i (seed $FAULT_SEED, +$delay ms)"
		if ! start_transfer "$SRC" d "$U"; then
			ok "$label: the transfer starts" false; diag "$START_OUT"; continue
		fi
		track_worker "$SRC/state" "$U"
		if [ "$kind" = push ]; then
			wait_for "worker pid" 10 _has_pid "$SRC/state" "$U"
			pid=$(rec "$SRC/state" "$U" '["pid"]')
			id=$(pid_id "$pid") || id=""
			sleep_ms "$delay"
			at="$(rec "$SRC/state" "$U" '["status"]')/$(phase_of "$SRC/state" "$U")"
		else
			wait_for "receiving pid" 20 has_dest_pid "$U"
			pid=$(dest_pid "$U")
			id=$(pid_id "$pid") || id=""
			sleep_ms "$delay"
			at="$(rec "$DST/state" "$U" '["status"]')/$(phase_of "$DST/state" "$U")"
		fi
		# By its identity: after the delay the process may have ended and
		# its pid gone to another test's process.
		if [ -n "$id" ] && signal_id KILL "$id"; then
			LANDED[$at]=$(( ${LANDED[$at]:-0} + 1 ))
			KILLED=$((KILLED + 1))
			case "$at" in pending/*|processing/*|cancelling/*) HIT=$((HIT + 1)) ;; esac
		else
			at="no process ($at)"
			LANDED[$at]=$(( ${LANDED[$at]:-0} + 1 ))
		fi
		echo "$kind $i delay=$delay pid=$pid at=$at" >> "$RESULTS"
		case "$at" in
		pending/*|processing/*|cancelling/*) ;;
		*)	WINDOW=$((WINDOW * 3 / 4)); [ "$WINDOW" -ge 200 ] || WINDOW=200
			echo "window $WINDOW ms (the kill landed after the end)" >> "$RESULTS" ;;
		esac
		settle "$U" "$SRC" "$DST" 40
		invariants "$label at $at" "$U" "$SRC" "$DST"
		# Keep the disk small: the destination's copy and the source's.
		rm -rf "${DST:?}/data/$U" "${SRC:?}/data/$U"
	done
done
for at in "${!LANDED[@]}"; do
	diag "kills landing in $at: ${LANDED[$at]}"
	echo "landed $at ${LANDED[$at]}" >> "$RESULTS"
done
echo "kills $KILLED (of a live process), $HIT of them mid-transfer" >> "$RESULTS"
echo "success redelivered after a kill while delivering it (the panel answered 409) $REDELIVERED" >> "$RESULTS"
echo "installed copies the panel refused (set aside or kept by the watchdog) $SET_ASIDE" >> "$RESULTS"
ok "$HIT kill -9 of the $KIND process mid-transfer (at least $KILLS; $KILLED kills in all)" test "$HIT" -ge "$KILLS"
ok "the destination's FastCGI workers are all there (3)" \
	wait_for "destination workers back" 10 bash -c "[ \$(pgrep -P $(cat "$DST/run/destination.pid") | wc -l) = 3 ]"
# After all that, a transfer still goes through.
U=$(new_uuid)
start_transfer "$SRC" d "$U"
track_worker "$SRC/state" "$U"
wait_worker "$SRC/state" "$U" 60
settle "$U" "$SRC" "$DST" 10
is "$(rec "$SRC/state" "$U" '["status"]')" completed "after $KILLS kills a transfer completes"
invariants "after the kills" "$U" "$SRC" "$DST"
node_stop d
panel_stop
echo "elapsed ${SECONDS} s" >> "$RESULTS"
done_testing
