#!/bin/bash
# Live pre-sync (issue 16, docs/presync.md) between two Apache nodes with
# TLS, the panel emulator recording callbacks, and a stand-in game server
# (tests/lib/game-writer.py) writing region files, a log and configs while
# the transfer runs:
#  1. The server is copied while it runs: rounds are made before the stop
#     hook runs (the writer is still writing), later rounds carry only what
#     changed, then the hook stops the writer, a final round follows, and
#     the installed tree is byte-identical to the source tree as it was when
#     stopped (content, modes, mtimes in ns, symlinks, empty directories,
#     which names share an inode).  One success callback.  The record's
#     extra.presync shows the rounds and the delta trend; the destination's
#     events say each round was applied and verified.  When the stop hook
#     runs, the destination has read (consumed) every byte it acknowledged:
#     the downtime holds only the final round.
#  2. system.transfers.presync: off stops the server before anything is sent.
#  3. A cancel during round 1: the stop hook never runs (the server keeps
#     running), nothing is installed, the failure is reported at most once
#     per node.
#  4. The push worker killed (SIGKILL) during round 1: not restarted (its
#     rounds cannot be made again), the server is never stopped, the
#     transfer fails once the watchdog looks.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
webstack_init "live pre-sync"
PANEL_TLS=1 panel_start || { echo "not ok 1 - panel emulator"; echo 1..1; exit 1; }
PANEL_TLS=1
TREES="$top_srcdir/tests/lib/trees.py"
WRITER="$top_srcdir/tests/lib/game-writer.py"
HOOKS="$WX_TEST_TMP/hooks"
mkdir -p "$HOOKS"
# upload-state RECORD: the destination's GET of the upload the source's
# record names (extra.resume), as JSON; "{}" when there is none yet.
cat > "$HOOKS/upload-state" <<'PY'
#!/usr/bin/python3
import json, ssl, sys, urllib.request
try:
    r = json.load(open(sys.argv[1]))["extra"]["resume"]
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    req = urllib.request.Request(r["url"], headers={"Authorization": "Bearer " + r["secret"]})
    print(urllib.request.urlopen(req, context=ctx, timeout=60).read().decode())
except Exception as e:
    print("{}")
PY
chmod 755 "$HOOKS/upload-state"
# The stop hook notes what the destination had read of the upload, ends the
# server's writer (it finishes its turn), then snapshots the tree as it was
# stopped and notes that it ran.
cat > "$HOOKS/stop" <<EOF
#!/bin/sh
"$HOOKS/upload-state" "$WX_TEST_TMP/a/state/transfers/\$SERVER_UUID.json" "$WX_CA" > "$HOOKS/\$SERVER_UUID.upload" || true
python3 "$WRITER" --stop "$HOOKS/\$SERVER_UUID.pid"
python3 "$TREES" manifest "\$SERVER_DIR" --exact > "$HOOKS/\$SERVER_UUID.stopped"
python3 "$TREES" manifest "\$SERVER_DIR" > "$HOOKS/\$SERVER_UUID.stopped-coarse"
date +%s.%N > "$HOOKS/\$SERVER_UUID.hook"
EOF
chmod 755 "$HOOKS/stop"
node_setup a "    chunk_size: 1MiB
    presync_threshold: 0
    presync_max_rounds: 3
    hooks:
      stop: [$HOOKS/stop]"
node_setup b
panel_node a id-a token-a "${NODE_URL[a]}"
panel_node b id-b token-b "${NODE_URL[b]}"
node_start b apache || { echo "not ok - apache does not start"; done_testing; exit 1; }
node_start a apache || { echo "not ok - apache does not start"; done_testing; exit 1; }
A_STATE="$WX_TEST_TMP/a/state"
B_STATE="$WX_TEST_TMP/b/state"
A_CFG="$WX_TEST_TMP/a/config.yml"

src_status() { https_curl -H "Authorization: Bearer token-a" "${NODE_URL[a]}/api/servers/$1/transfer"; }
state_of() { json_get "$(src_status "$1")" '["state"]' 2>/dev/null; }
finished() { case "$(state_of "$1")" in completed|failed|cancelled) return 0 ;; esac; return 1; }
n_callbacks() { callbacks "$1" | grep -c "^$2 "; }
has_success() { [ "$(n_callbacks "$1" success)" -ge 1 ]; }
has_failure() { [ "$(n_callbacks "$1" failure)" -ge 1 ]; }
# alive PID|ID: the process lives (an ID, from pid_id, names it exactly).
alive() { case $1 in *:*) alive_id "$1" ;; *) kill -0 "$1" 2>/dev/null ;; esac; }
not() { ! "$@" 2>/dev/null; }
has_event() { events "$1" "$2" | grep -q "$3"; }
no_rounds() { ! events "$A_STATE" "$1" | grep -q "Pre-sync round"; }
new_server() {
	local u d
	u=$(new_uuid)
	d="$WX_TEST_TMP/a/data/$u"
	python3 "$TREES" make "$d" --files 120 --seed 16 >/dev/null
	# Region files of random bytes: they do not compress.
	for i in 0 1 2; do head -c $((4 * 1048576)) /dev/urandom > "$d/world/region/r.$i.0.mca"; done
	panel_server "$u" 0
	echo "$u"
}
# writer_start U: the stand-in game server of U, running until its stop hook.
writer_start() {
	python3 "$WRITER" "$WX_TEST_TMP/a/data/$1" --pid-file "$HOOKS/$1.pid" --interval 0.05 \
		--count-file "$HOOKS/$1.turns" --max-seconds 1200 &
	track_pid $!
	WPID=$(pid_id $!) # an identity: the writer may end long before it is checked
	wait_for "the writer of $1 starts" 60 test -s "$HOOKS/$1.turns"
}
start() { panel_api POST /_emulator/transfers "{\"server\":\"$1\",\"source\":\"a\",\"destination\":\"b\"}" >/dev/null; }
line_of() { events "$A_STATE" "$1" | grep -n -m1 "$2" | cut -d: -f1; }

# --- 1. a running server, copied live ------------------------------------------
U=$(new_server)
writer_start "$U"
start "$U"
wait_for "transfer $U ends" 600 finished "$U"
is "$(state_of "$U")" completed "a server copied while it runs: completed"
ok "... the writer was stopped by the stop hook" wait_for "the writer exits" 120 not alive "$WPID"
python3 "$TREES" manifest "$WX_TEST_TMP/b/data/$U" --exact > "$HOOKS/$U.installed" 2>/dev/null
ok "... the installed tree is byte-identical to the source tree when it was stopped (content, modes, ns mtimes, symlinks, empty dirs, hard links)" \
	cmp -s "$HOOKS/$U.stopped" "$HOOKS/$U.installed"
cmp -s "$HOOKS/$U.stopped" "$HOOKS/$U.installed" || diff "$HOOKS/$U.stopped" "$HOOKS/$U.installed" | head -20 | sed 's/^/# /'
ok "... which the writer had changed while it ran" grep -q 'turn [0-9]*: saved' "$WX_TEST_TMP/b/data/$U/logs/latest.log"
turns=$(cat "$HOOKS/$U.turns")
ok "... in $turns turns" test "$turns" -ge 2
PS=$(json_get "$(src_status "$U")" '["presync"]')
rounds=$(json_get "$PS" '["rounds"]' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
ok "GET /api/servers/:uuid/transfer: presync lists the rounds ($rounds: at least 2 while running and the final one)" test "$rounds" -ge 3
is "$(json_get "$PS" '["rounds"][-1]["final"]')" true "... the last one final"
is "$(json_get "$PS" '["server_stopped"]')" true "... made after the server stopped"
r1=$(json_get "$PS" '["rounds"][0]["data_bytes"]')
r2=$(json_get "$PS" '["rounds"][1]["data_bytes"]')
ok "round 2 sent only what changed ($r2 bytes after $r1)" test "$r2" -lt $((r1 / 2))
diag "rounds: $(json_get "$PS" '["rounds"]')"
first=$(line_of "$U" "Pre-sync round 1 (server running) made")
stopline=$(line_of "$U" "Stopping the server for the final pre-sync round")
ok "round 1 was made before the stop (events lines $first < $stopline)" test -n "$first" -a -n "$stopline" -a "${first:-0}" -lt "${stopline:-0}"
ok "... and the final round after it" has_event "$A_STATE" "$U" "(final, server stopped) made"
at_stop=$(python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
print(j.get("offset", "?"), j.get("consumed", "?"))' "$HOOKS/$U.upload" 2>/dev/null)
set -- $at_stop
ok "when the stop hook ran, the destination had read every byte it acknowledged (offset ${1:-?}, consumed ${2:-?})" \
	test -n "${1:-}" -a "${1:-x}" = "${2:-y}" -a "${1:-0}" != 0 -a "${1:-}" != "?"
ok "the destination applied and verified each round" \
	test "$(events "$B_STATE" "$U" | grep -c 'applied and verified')" -eq "$rounds"
ok "... the final one too" has_event "$B_STATE" "$U" 'round [0-9]* (final) applied and verified'
ok "... writing the rounds' data to disk as it applied them (write-behind)" \
	bash -c "grep 'transfer=$U' '$WX_TEST_TMP'/b/log/*.log | grep -q 'write-behind: [1-9][0-9]* MiB written back'"
wait_for "success callback of $U" 120 has_success "$U"
is "$(n_callbacks "$U" success)" 1 "one success callback"
like "$("$top_builddir/handlers/wingxfer-status" --config "$A_CFG" "$U" 2>&1)" \
	"pre-sync: round $rounds \\(final, server stopped\\), data per round [0-9.]+ MiB," \
	"wingxfer-status shows the rounds and their data"
is "$(n_callbacks "$U" failure)" 0 "no failure callback"

# --- 2. presync: off -----------------------------------------------------------
cp "$A_CFG" "$A_CFG.orig"
sed -i 's/^    presync_threshold: 0$/    presync_threshold: 0\n    presync: off/' "$A_CFG"
U=$(new_server)
writer_start "$U"
start "$U"
wait_for "transfer $U ends" 600 finished "$U"
is "$(state_of "$U")" completed "presync off: completed"
ok "... the server was stopped before anything was streamed" \
	test "$(line_of "$U" "The server is stopped")" -lt "$(line_of "$U" "Streaming archive")"
ok "... no pre-sync round" no_rounds "$U"
# The archive keeps whole-second mtimes and sends hard links as such: compared as before.
python3 "$TREES" manifest "$WX_TEST_TMP/b/data/$U" > "$HOOKS/$U.installed" 2>/dev/null
ok "... byte-identical to the tree when stopped" cmp -s "$HOOKS/$U.stopped-coarse" "$HOOKS/$U.installed"
cp "$A_CFG.orig" "$A_CFG"

# failed_before_stop U: the checks of a transfer that ended before the stop
failed_before_stop() {
	ok "... the stop hook never ran" test ! -e "$HOOKS/$1.hook"
	ok "... the server kept running (its writer still writes)" alive "$WPID"
	wait_for "failure callback of $1" 120 has_failure "$1"
	local nf
	nf=$(n_callbacks "$1" failure)
	ok "... failure reported, at most once per node ($nf)" test "$nf" -ge 1 -a "$nf" -le 2
	is "$(n_callbacks "$1" success)" 0 "... no success callback"
	ok "... nothing installed on b" test ! -e "$WX_TEST_TMP/b/data/$1"
}

# --- 3. a cancel during round 1 ------------------------------------------------
# Held: round 1 at 1 MiB/s.
sed -i 's/^    presync_threshold: 0$/    presync_threshold: 0\n    upload_limit: 1/' "$A_CFG"
U=$(new_server)
writer_start "$U"
start "$U"
wait_for "round 1 on the wire" 300 counter_above "$A_STATE" "$U" bytes_sent 0
out=$(https_curl -X DELETE -w '\n%{http_code}' -H "Authorization: Bearer token-a" "${NODE_URL[a]}/api/servers/$U/transfer")
is "${out##*$'\n'}" 202 "a cancel during round 1: 202"
wait_for "transfer $U ends" 300 finished "$U"
ok "... the worker stops" wait_worker "$A_STATE" "$U" 120
is "$(state_of "$U")" cancelled "... cancelled"
failed_before_stop "$U"
stop_pid "$WPID"

# --- 4. the push worker killed during round 1 -----------------------------------
U=$(new_server)
writer_start "$U"
start "$U"
wait_for "round 1 on the wire" 300 counter_above "$A_STATE" "$U" bytes_sent 0
W=$(rec_int "$A_STATE" "$U" pid)
SUP=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$W/status")
kill -KILL "$W"
ok "the supervisor does not start a killed pre-sync worker again" \
	wait_for "the supervisor ends" 120 not alive "$SUP"
ok "... whose record still names the dead worker" test "$(rec_int "$A_STATE" "$U" pid)" = "$W"
"$top_builddir/handlers/wingxfer-watchdog" --config "$A_CFG" >"$WX_TEST_TMP/watchdog.out" 2>&1
wait_for "transfer $U ends" 300 finished "$U"
is "$(state_of "$U")" failed "... the watchdog ends it: failed"
failed_before_stop "$U"
b_final() { case "$(rec "$B_STATE" "$U" '["status"]')" in failed|cancelled) return 0 ;; esac; return 1; }
ok "... the upload was deleted on b: its transfer ended there" wait_for "b's transfer of $U ends" 120 b_final
stop_pid "$WPID"
node_stop a
node_stop b
done_testing
