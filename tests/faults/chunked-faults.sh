#!/bin/bash
# Issue 15, item 7: a chunked, resumable transfer (docs/protocol.md) survives
# each interruption and ends in success.  Two nodes in their own network
# namespaces joined by a veth pair, as in tests/faults/netcut.sh (the source
# node, its push worker and the panel emulator in one, the destination's
# Apache and wingxfer-destination in the other).  Each transfer moves a
# server of 160 MiB of incompressible data in chunks of 8 MiB
# (system.transfers.chunk_size), at 8 MiB/s (the destination's download_limit
# and the source's upload_limit), so a transfer lasts ~20 s and every interruption is
# placed on the acknowledged offset (extra.chunked.acked in the source's
# record passing a seeded random point), never on a timer.
#
#   linkcut        the link taken down 5 times, each time until the source
#                  has noticed (its extra.chunked.interruptions grows), then up
#   kill9-push     kill -9 of the push worker (its supervisor starts it again)
#   kill9-both     kill -9 of the push worker and its supervisor (the lock's
#                  holder) at once: wingxfer-watchdog, run as cron would,
#                  starts wingxfer-push --resume, which goes on; the new
#                  worker (as in kill9-push) makes the body again from the
#                  record's last acknowledged mark, not from the start
#                  (extra.chunked.remade_bytes <= one file + 2 chunks)
#   kill9-badmark  kill9-both with the record's mark changed to name another
#                  entry: the new worker says so, makes the body from the
#                  start, and the transfer still completes
#   kill9-dest     kill -9 of the destination's FastCGI process serving a PATCH
#   apache-restart the destination's Apache restarted mid-transfer
#   node-restart   the destination's assembler killed -9, then its Apache and
#                  all its FastCGI programs stopped and started again: the
#                  new assembler extracts the chunks already received from
#                  the node's own spool, so the source re-sends at most the
#                  chunk in flight
#
# Each ends with: both records completed, the tree byte-identical, exactly
# one success callback and no failure (the invariants of tests/faults/lib.sh),
# and the re-sent bytes (the source record's extra.chunked.resent_bytes)
# printed and at most (interruptions caused) x chunk_size.
# CHUNKED_FAULTS="linkcut kill9-push kill9-both kill9-badmark kill9-dest apache-restart
# node-restart" picks the
# scenarios; FAULT_SEED=N reproduces a run's interruption points.
#
# Needs the chunked protocol on both sides (issue 15): in a build where
# neither wingxfer-push nor wingxfer-destination knows it, skipped, saying so.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
. "$top_srcdir/tests/lib/incompressible.sh"
. "$top_srcdir/tests/faults/lib.sh"
. "$top_srcdir/tests/lib/netpair.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root for network namespaces and Apache"
command -v ip >/dev/null || skip_all "needs ip (iproute2) for network namespaces"
SCENARIOS=${CHUNKED_FAULTS:-linkcut kill9-push kill9-both kill9-badmark kill9-dest apache-restart node-restart}
CHUNK=8388608          # system.transfers.chunk_size below, in bytes
BIG_FILES=5 BIG_MIB=32 # the incompressible part of the server: 160 MiB
SIZE=$((BIG_FILES * BIG_MIB * 1048576))

wx_tmpdir
trap '_stop_workers; _tap_cleanup; netpair_cleanup' EXIT
netpair_init 232 || skip_all "cannot create network namespaces and a veth pair here"

RESULTS="${FAULT_RESULTS:-$top_builddir/tests/faults/results-chunked.txt}"
mkdir -p "$(dirname "$RESULTS")"
fault_seed
echo "seed $FAULT_SEED" > "$RESULTS"
webstack_ca || { echo "not ok - test CA"; echo 1..1; exit 1; }
# The destination's certificate names its address in the namespace; the
# panel emulator lives in the source's namespace.
netpair_cert || { echo "not ok - the destination's certificate"; echo 1..1; exit 1; }
netpair_panel || { echo "not ok - panel emulator"; echo 1..1; exit 1; }

SRC="$WX_TEST_TMP/s" DST="$WX_TEST_TMP/d"
NODE_NS[s]=$NSA NODE_NS[d]=$NSB
# The source notices a dead link after stall_timeout (10 s: short, yet
# longer than a destination may legitimately hold a PATCH for its assembler
# at this rate); resume_attempts high enough for 5 cuts.  presync off: these
# scenarios resume the archive body (a new worker makes it again from a
# mark), which a live pre-sync cannot (tests/faults/presync-faults.sh).
node_setup s "    presync: off
    stall_timeout: 10
    response_timeout: 120
    connect_timeout: 3
    chunked: auto
    chunk_size: 8MiB
    upload_limit: 8
    resume_attempts: 100"
PANEL_URL=$NETPAIR_PANEL_B NODE_HOST=$ADDR_B node_setup d "    download_limit: 8"
sed -i "s|cert: .*node.pem|cert: $WX_TEST_TMP/ca/b.pem|; s|key: .*node.key|key: $WX_TEST_TMP/ca/b.key|" "$DST/config.yml"
node_start s apache && node_start d apache || { echo "not ok - Apache does not start"; echo 1..1; exit 1; }
panel_node s id-s token-s "${NODE_URL[s]}"
panel_node d id-d token-d "${NODE_URL[d]}"
WATCHDOG_NS_SRC="ip netns exec $NSA" WATCHDOG_NS_DEST="ip netns exec $NSB"
SRC_NAME=s DEST_NAME=d

# The template every transfer copies: a small tree and 160 MiB that does not compress.
TEMPLATE="$WX_TEST_TMP/template"
incompressible_tree "$TEMPLATE" "$BIG_FILES" "$BIG_MIB" 5 || { echo "not ok - the template tree"; echo 1..1; exit 1; }
TEMPLATE_MANIFEST="$WX_TEST_TMP/template.manifest"
python3 "$top_srcdir/tests/lib/trees.py" manifest "$TEMPLATE" > "$TEMPLATE_MANIFEST"

reach() { ip netns exec "$NSA" curl -s -o /dev/null --max-time 2 --cacert "$WX_CA" "${NODE_URL[d]}/"; }
unreachable() { ! reach; }
ok "two namespaces joined by a veth pair: the destination ($ADDR_B) answers the source's side" reach
like "$(ip netns exec "$NSA" curl -s -D - -o /dev/null --max-time 10 --cacert "$WX_CA" -X OPTIONS \
	"${NODE_URL[d]}/api/transfers" | tr -d '\r' | grep -i '^X-Wingxfer-Capabilities:')" '(^|[ ,:])chunked(,|$| )' \
	"the destination names chunked in X-Wingxfer-Capabilities"

go() { # go UUID: a copy of the template, its transfer started through the source's Apache
	cp -a "$TEMPLATE" "$SRC/data/$1" && ns_transfer "$1"
}
# Fields of extra.chunked (docs/protocol.md §4) of the source's record, read
# with sed: a poll every 0.1 s stays cheap.  The names are unique in a record.
# acked there is the offset the destination acknowledged to the source (its
# 204), saved after each chunk.
acked_src() { rec_int "$SRC/state" "$1" acked; }
interruptions_src() { rec_int "$SRC/state" "$1" interruptions; }
upload_id() { sed -n 's/.*"upload": *"\([0-9a-f]\{32\}\)".*/\1/p' "$SRC/state/transfers/$1.json" 2>/dev/null | head -n 1; }
acked_past() { [ "$(acked_src "$1")" -ge "$2" ] 2>/dev/null; }
interrupted_more() { [ "$(interruptions_src "$1")" -gt "$2" ] 2>/dev/null; }
# points N: sets POINTS to N seeded offsets between 10 % and 85 % of the
# body, ascending, at least 2 chunks apart (each waits for new
# acknowledgements).  No $(...) around RANDOM: bash reseeds it in a subshell.
points() {
	local n=$1 lo=$((SIZE / 10)) steps i k=0 raw=()
	steps=$(( (SIZE * 3 / 4 - 2 * CHUNK * (n - 1)) / 4096 ))
	for i in $(seq 1 "$n"); do raw+=($((lo + ((RANDOM * 32768 + RANDOM) % steps) * 4096))); done
	POINTS=()
	for i in $(printf '%s\n' "${raw[@]}" | sort -n); do
		POINTS+=($((i + 2 * CHUNK * k))); k=$((k + 1))
	done
}
# finish LABEL UUID CAUSED [LANDED]: settles both nodes (their watchdogs, as
# cron would run them), then the checks every scenario ends with: re-sent
# bytes <= CAUSED x chunk_size, at least LANDED (default CAUSED)
# interruptions counted by the source.
finish() {
	local label=$1 u=$2 caused=$3 landed=${4:-$3} resent interruptions resumes
	wait_for "$label: the source finished" 600 _worker_done "$SRC/state" "$u"
	settle "$u" "$SRC" "$DST" 120
	is "$(rec "$SRC/state" "$u" '["status"]'):$(rec "$DST/state" "$u" '["status"]')" completed:completed \
		"$label: both records completed"
	[ "$(rec "$SRC/state" "$u" '["status"]')" = completed ] || diag "source: $(rec "$SRC/state" "$u" '["error"]')"
	[ "$(rec "$DST/state" "$u" '["status"]')" = completed ] || diag "destination: $(rec "$DST/state" "$u" '["error"]')"
	invariants "$label" "$u" "$SRC" "$DST"
	is "$(callbacks_by_node "$u" | grep -c '^d success$')" 1 "$label: exactly one success callback (the destination's)"
	is "$(callbacks_by_node "$u" | grep -c ' failure$')" 0 "$label: no failure callback"
	resent=$(rec "$SRC/state" "$u" '["extra"]["chunked"]["resent_bytes"]')
	interruptions=$(rec "$SRC/state" "$u" '["extra"]["chunked"]["interruptions"]')
	resumes=$(rec "$SRC/state" "$u" '["extra"]["chunked"]["resumes"]')
	diag "$label: re-sent $resent bytes for $caused interruption(s) caused (the source counted $interruptions interruptions, $resumes resumes; bound $((caused * CHUNK)))"
	echo "$label resent_bytes=$resent caused=$caused interruptions=$interruptions resumes=$resumes bound=$((caused * CHUNK))" >> "$RESULTS"
	ok "$label: re-sent bytes $resent <= $caused x chunk_size ($((caused * CHUNK)))" \
		test "${resent:-x}" -ge 0 -a "${resent:-x}" -le $((caused * CHUNK)) 2>/dev/null
	ok "$label: the source counted at least $landed interruption(s)" test "${interruptions:-0}" -ge "$landed" 2>/dev/null
	rm -rf "${DST:?}/data/$u" "${SRC:?}/data/$u"
}

# remade LABEL UUID: a new push worker made the body again from the last
# acknowledged mark (a new compressed stream about every chunk_size of tar,
# between two files), not from the start: at most one file (BIG_MIB) and
# two chunks of it.
remade() {
	local label=$1 u=$2 remade bound=$((BIG_MIB * 1048576 + 2 * CHUNK))
	remade=$(rec "$SRC/state" "$u" '["extra"]["chunked"]["remade_bytes"]')
	diag "$label: the new worker made $remade body bytes again to resume"
	echo "$label remade_bytes=$remade bound=$bound" >> "$RESULTS"
	ok "$label: the body was made again from a mark, not from the start: $remade bytes <= $bound" \
		test "${remade:-x}" -ge 0 -a "${remade:-x}" -le "$bound" 2>/dev/null
}

# === linkcut: the link down and up again, 5 times ===========================
if [[ " $SCENARIOS " == *" linkcut "* ]]; then
	U=$(new_uuid)
	ok "linkcut: the transfer starts" go "$U"
	n=0
	points 5
	for at in "${POINTS[@]}"; do
		n=$((n + 1))
		wait_for "linkcut $n: acked past $at" 300 acked_past "$U" "$at" ||
			{ ok "linkcut $n: the transfer reaches offset $at" false; break; }
		before=$(interruptions_src "$U")
		netpair_down
		ok "linkcut $n at $(acked_src "$U") acknowledged bytes: the destination is out of reach" unreachable
		ok "linkcut $n: the source notices the interruption (extra.chunked.interruptions > ${before:-0})" \
			wait_for "the source to notice cut $n" 120 interrupted_more "$U" "${before:-0}"
		netpair_up
		ok "linkcut $n: the link is back" wait_for "link" 30 reach
		echo "linkcut $n at=$at acked=$(acked_src "$U")" >> "$RESULTS"
	done
	finish "linkcut (5 cuts)" "$U" 5
fi

# === kill9-push: kill -9 of the push worker ==================================
if [[ " $SCENARIOS " == *" kill9-push "* ]]; then
	U=$(new_uuid)
	ok "kill9-push: the transfer starts" go "$U"
	points 1; at=${POINTS[0]}
	wait_for "kill9-push: acked past $at" 300 acked_past "$U" "$at"
	pid=$(rec_int "$SRC/state" "$U" pid)
	# the pid is the push worker of this transfer (not a reused pid)
	kill_worker() { tr '\0' ' ' < "/proc/$1/cmdline" | grep -q "wingxfer-push.* $2" && kill -KILL "$1"; }
	ok "kill9-push: kill -9 of the push worker (pid $pid) at $(acked_src "$U") acknowledged bytes" \
		kill_worker "$pid" "$U"
	echo "kill9-push at=$at acked=$(acked_src "$U") pid=$pid" >> "$RESULTS"
	new_worker() { local p; p=$(rec_int "$SRC/state" "$U" pid); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$pid" ] && kill -0 "$p" 2>/dev/null; }
	ok "kill9-push: a new push worker resumes the transfer" wait_for "a new worker" 300 new_worker
	track_worker "$SRC/state" "$U"
	finish "kill9-push" "$U" 1
	remade "kill9-push" "$U"
fi

# === kill9-both: kill -9 of the push worker and its supervisor ==============
# kill_both LABEL [TAMPER]: kill -9 of the push worker and its supervisor,
# the lock left for the watchdog, which starts wingxfer-push --resume;
# TAMPER (a function of the uuid) runs on the record in between.  Ends
# with finish.
kill_both() {
	local label=$1 tamper=${2:-} pid sup
	U=$(new_uuid)
	ok "$label: the transfer starts" go "$U"
	points 1; at=${POINTS[0]}
	wait_for "$label: acked past $at" 300 acked_past "$U" "$at"
	[ -z "$tamper" ] || wait_for "$label: a mark in the record" 300 mark_recorded "$U"
	pid=$(rec_int "$SRC/state" "$U" pid)
	sup=$(awk '{ print $4 }' "/proc/$pid/stat" 2>/dev/null)
	both_push() { tr '\0' ' ' < "/proc/$1/cmdline" | grep -q "wingxfer-push.* $U" &&
		tr '\0' ' ' < "/proc/$2/cmdline" | grep -q "wingxfer-push.* $U"; }
	ok "$label: kill -9 of the push worker (pid $pid) and its supervisor (pid $sup) at $(acked_src "$U") acknowledged bytes" \
		bash -c "$(declare -f both_push); U=$U; both_push '$pid' '${sup:-0}' && kill -KILL '$pid' '$sup'"
	KILLED_AT=$(acked_src "$U")
	echo "$label at=$at acked=$KILLED_AT worker=$pid supervisor=$sup" >> "$RESULTS"
	lock_free_src() { flock -n "$SRC/state/transfers/$U.lock" true; }
	wait_for "$label: the lock free" 120 lock_free_src
	[ -z "$tamper" ] || ok "$label: the record's mark changed ($tamper)" "$tamper" "$U"
	# The watchdog, as cron would run it: it starts wingxfer-push --resume.
	watchdog_resumes() {
		ip netns exec "$NSA" "$WX_BIN/wingxfer-watchdog" --config "$SRC/config.yml" >> "$WX_TEST_TMP/wd-$U.out" 2>&1
		grep -q "$U: worker died.*wingxfer-push --resume (pid [0-9]*) goes on" "$WX_TEST_TMP/wd-$U.out"
	}
	ok "$label: wingxfer-watchdog resumes the transfer (wingxfer-push --resume)" \
		wait_for "the watchdog to resume it" 120 watchdog_resumes
	sed 's/^/# /' "$WX_TEST_TMP/wd-$U.out"
	new_worker() { local p; p=$(rec_int "$SRC/state" "$U" pid); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$pid" ] && kill -0 "$p" 2>/dev/null; }
	ok "$label: a new push worker holds the transfer" wait_for "a new worker" 300 new_worker
	track_worker "$SRC/state" "$U"
	finish "$label" "$U" 1
	is "$(rec "$SRC/state" "$U" '["extra"]["watchdog_resumes"]')" 1 "$label: the record counts one resume by the watchdog"
}
mark_recorded() { [ "$(rec "$SRC/state" "$1" '["extra"]["resume"]["mark"]["offset"]')" -gt 0 ] 2>/dev/null; }
# A mark naming another entry (its path's SHA-256) than the tree has there.
wrong_entry() {
	python3 - "$SRC/state/transfers/$1.json" <<'PY'
import json, os, sys
p = sys.argv[1]
r = json.load(open(p))
r["extra"]["resume"]["mark"]["last_sha256"] = "0" * 64
open(p + ".new", "w").write(json.dumps(r))
os.chmod(p + ".new", 0o600)
os.replace(p + ".new", p)
PY
}

# === kill9-both: kill -9 of the push worker and its supervisor ==============
if [[ " $SCENARIOS " == *" kill9-both "* ]]; then
	kill_both kill9-both
	remade "kill9-both" "$U"
fi

# === kill9-badmark: the same, and the record's mark no longer fits the tree ==
if [[ " $SCENARIOS " == *" kill9-badmark "* ]]; then
	kill_both kill9-badmark wrong_entry
	ok "kill9-badmark: the new worker said the mark did not fit and made the body from the start" \
		grep -q "could not be made again from its mark.*it is made from the start" "$SRC/state/transfers/$U.events"
	remade=$(rec "$SRC/state" "$U" '["extra"]["chunked"]["remade_bytes"]')
	ok "kill9-badmark: from the start: $remade body bytes made again >= the $KILLED_AT acknowledged at the kill" \
		test "${remade:-0}" -ge "${KILLED_AT:-1}"
fi

# === kill9-dest: kill -9 of the destination's FastCGI process serving a PATCH ===
# The process serving the PATCH is a FastCGI worker (a child of the
# destination's wingxfer-spawn supervisor) holding a file naming the upload
# id open (its spool file); every such worker is killed at once (another
# one may be finishing an earlier request of the upload); never the
# assembler, which is not a child of the supervisor (node-restart below
# kills that one).
# patch_workers UUID: sets PATCH_PIDS to those workers; 1 when there is none now.
patch_workers() {
	local id p f t assembler
	PATCH_PIDS=""
	id=$(upload_id "$1")
	[ -n "$id" ] || return 1
	assembler=$(rec_int "$DST/state" "$1" pid)
	for p in $(pgrep -P "$(cat "$DST/run/destination.pid")"); do
		[ "$p" != "${assembler:-0}" ] || continue
		for f in /proc/"$p"/fd/*; do
			t=$(readlink "$f" 2>/dev/null)
			case "$t" in *"$id"*) PATCH_PIDS="$PATCH_PIDS $p"; break ;; esac
		done
	done
	[ -n "$PATCH_PIDS" ]
}
# kill_patch_workers UUID: with the push worker frozen (SIGSTOP: the PATCH
# it is sending stays in flight and the transfer cannot end meanwhile,
# however slow this machine), kill -9 of the FastCGI workers serving it,
# then SIGCONT.  Frozen between two PATCHes (none in flight), it is let go
# and frozen again a moment later, at most 100 times.  1 (and no kill) when
# the transfer ended or no PATCH was ever caught.  Never a kill without a pid.
kill_patch_workers() {
	local u=$1 pid i
	for i in $(seq 1 100); do
		_worker_done "$SRC/state" "$u" && return 1
		pid=$(rec_int "$SRC/state" "$u" pid)
		tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "wingxfer-push.* $u" || { sleep 0.2; continue; }
		kill -STOP "$pid" || continue
		if patch_workers "$u"; then
			kill -KILL $PATCH_PIDS
			kill -CONT "$pid"
			return 0
		fi
		kill -CONT "$pid"
		sleep 0.2
	done
	return 1
}
# cut_or_passed UUID INTERRUPTIONS ACKED: the source counted an interruption
# since, or the upload went a chunk past ACKED without one (the PATCH had
# ended just before the kill), or it ended: one of them always comes.
cut_or_passed() { interrupted_more "$1" "$2" || acked_past "$1" $(($3 + CHUNK)) || _worker_done "$SRC/state" "$1"; }
if [[ " $SCENARIOS " == *" kill9-dest "* ]]; then
	U=$(new_uuid)
	ok "kill9-dest: the transfer starts" go "$U"
	# In the first 40 % of the body: room for the kills that follow a miss.
	points 1; at=$((SIZE / 10 + (POINTS[0] - SIZE / 10) * 30 / 75))
	wait_for "kill9-dest: acked past $at" 300 acked_past "$U" "$at"
	# Until a kill lands inside a PATCH (at most 10 kills; a kill that lands
	# as a worker finishes its request cuts no PATCH and re-sends nothing).
	kills=0 landed=0 initial=$(interruptions_src "$U")
	while [ "$kills" -lt 10 ] && [ "$landed" = 0 ]; do
		acked=$(acked_src "$U")
		kill_patch_workers "$U" || break
		kills=$((kills + 1))
		diag "kill9-dest: kill $kills: pid(s)$PATCH_PIDS at $acked acknowledged bytes"
		echo "kill9-dest kill $kills at=$at acked=$acked pids=$PATCH_PIDS" >> "$RESULTS"
		wait_for "kill9-dest: the source interrupted, or the upload past the next chunk" 300 \
			cut_or_passed "$U" "${initial:-0}" "${acked:-0}"
		interrupted_more "$U" "${initial:-0}" && landed=1
	done
	ok "kill9-dest: kill -9 of the FastCGI worker serving a PATCH (not the assembler) cut it ($kills kill(s))" \
		test "$landed" = 1
	finish "kill9-dest" "$U" "$kills" 1
	ok "kill9-dest: the destination's FastCGI workers are all there again (3)" \
		wait_for "destination workers back" 30 bash -c "[ \$(pgrep -P $(cat "$DST/run/destination.pid") | wc -l) = 3 ]"
fi

# === apache-restart: the destination's Apache restarted mid-transfer =========
if [[ " $SCENARIOS " == *" apache-restart "* ]]; then
	U=$(new_uuid)
	ok "apache-restart: the transfer starts" go "$U"
	points 1; at=${POINTS[0]}
	wait_for "apache-restart: acked past $at" 300 acked_past "$U" "$at"
	acked=$(acked_src "$U")
	ok "apache-restart: the destination's Apache restarted at $acked acknowledged bytes" node_restart_web d
	echo "apache-restart at=$at acked=$acked" >> "$RESULTS"
	finish "apache-restart" "$U" 1
fi

# === node-restart: the destination's programs and web server all restarted ===
if [[ " $SCENARIOS " == *" node-restart "* ]]; then
	U=$(new_uuid)
	ok "node-restart: the transfer starts" go "$U"
	points 1; at=${POINTS[0]}
	wait_for "node-restart: acked past $at" 300 acked_past "$U" "$at"
	acked=$(acked_src "$U")
	apid=$(rec_int "$DST/state" "$U" pid)
	is_assembler() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -q -- '--assemble '; }
	ok "node-restart: kill -9 of the destination's assembler (pid $apid) at $acked acknowledged bytes" \
		bash -c "$(declare -f is_assembler); is_assembler '$apid' && kill -KILL '$apid'"
	node_stop d
	ok "node-restart: the destination's Apache and FastCGI programs start again" node_start d apache
	echo "node-restart at=$at acked=$acked assembler=$apid" >> "$RESULTS"
	finish "node-restart" "$U" 1
	restarts=$(rec "$DST/state" "$U" '["extra"]["chunked"]["restarts"]')
	is "$restarts" 1 "node-restart: a new assembler took the upload over (the destination counted one restart)"
fi

node_stop s
node_stop d
echo "elapsed ${SECONDS} s" >> "$RESULTS"
done_testing
