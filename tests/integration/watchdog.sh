#!/bin/bash
# wingxfer-watchdog against the panel emulator, with fake transfer owners
# (tests/helpers/wx-fake-owner) that are killed, hang, or behave: failure
# reported exactly once, staging removed, source data intact, stalled owners
# cancelled then killed, one run at a time, the outbox redelivered after a
# panel outage, expiry, cleanup, --dry-run and --json.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
wx_tmpdir
WD="$WX_BIN/wingxfer-watchdog"
OWNER="$top_builddir/tests/helpers/wx-fake-owner"
CALL="$top_builddir/tests/helpers/wx-panel-call"
[ -x "$OWNER" ] && [ -x "$CALL" ] || { echo "Bail out! test helpers not built (make check builds them)"; exit 1; }

panel_start
N="$WX_TEST_TMP/node"
CFG=$(make_node_config "$N" dest "    stall_timeout: 30")
panel_node dest id-dest token-dest https://127.0.0.1:1
STATE="$N/state"
STAGING="$N/data/.wingxfer-staging"

wd() { # wd [ARGS...]: runs the watchdog; sets OUT, ERR, RC
	OUT=$("$WD" --config "${WD_CFG:-$CFG}" "$@" 2>"$WX_TEST_TMP/wd.err"); RC=$?
	ERR=$(cat "$WX_TEST_TMP/wd.err")
}
start_owner() { # start_owner UUID ROLE [OPTIONS...]: sets OWNER_PID
	local uuid=$1; shift
	rm -f "$WX_TEST_TMP/ready"
	"$OWNER" "${OWNER_CFG:-$CFG}" "$uuid" "$@" --ready "$WX_TEST_TMP/ready" 2>>"$WX_TEST_TMP/owner.err" &
	OWNER_PID=$!
	track_pid "$OWNER_PID"
	wait_for "fake owner ready" 20 test -s "$WX_TEST_TMP/ready"
}
kill9() { kill -KILL "$1"; wait "$1" 2>/dev/null; }
open_transfer() { panel_api POST /_emulator/transfers "{\"server\":\"$1\",\"notify\":false}" >/dev/null; }
count_cb() { # count_cb UUID KIND
	panel_api GET "/_emulator/callbacks?server=$1" |
		python3 -c "import json,sys; print(sum(1 for c in json.load(sys.stdin) if c['kind']=='$2'))"
}
rec() { json_get "$(cat "$STATE/transfers/$1.json")" "$2"; }
tree_sum() { (cd "$1" && find . -printf '%p %s %m\n' | sort && find . -type f -exec sha256sum {} + | sort) | sha256sum; }

# --- nothing to do ---------------------------------------------------------------
wd
is "$RC $OUT" "0 " "nothing to do: exit 0 and silent"
is "$ERR" "" "and nothing on stderr either"
wd --json
is "$(json_get "$OUT" '["actions"]')" "[]" "--json with nothing to do: an empty action list"
help=$("$WD" --help)
for s in NAME SYNOPSIS DESCRIPTION OPTIONS FILES 'EXIT STATUS' EXAMPLES; do
	like "$help" "^$s\$" "--help has a $s section"
done
"$WD" --bogus >/dev/null 2>&1
is "$?" 2 "an unknown option is a usage error (2)"
WD_CFG=/nonexistent/config.yml wd
is "$RC" 1 "an unreadable config: exit 1"
like "$ERR" '/nonexistent/config.yml' "naming the file"

# --- a destination whose receiving process died -------------------------------------
D1=22222222-0000-4000-8000-000000000001
open_transfer "$D1"
start_owner "$D1" destination --staging
ok "the fake receiver has staging data" test -f "$STAGING/$D1/world/region/r.0.0.mca"
wd
is "$OUT" "" "while the owner lives and progresses, the watchdog is silent"
wd --verbose
like "$OUT" "$D1: destination processing, receiving, last progress .*: fine" "--verbose says why it left it alone"
kill9 "$OWNER_PID"
wd --dry-run
like "$OUT" "^\[dry run\] $D1: destination transfer would be failed: worker died" "--dry-run says what it would do"
ok "--dry-run leaves staging alone" test -d "$STAGING/$D1"
is "$(rec "$D1" '["status"]')" processing "--dry-run leaves the record alone"
is "$(count_cb "$D1" failure)" 0 "--dry-run sends nothing"
wd
is "$RC" 0 "the watchdog run exits 0"
like "$OUT" "^$D1: destination transfer failed: worker died \(pid [0-9]+, during receiving" \
	"one line says the receiver died"
like "$OUT" "removed $STAGING/$D1; panel told \(HTTP 204\)" "it removed staging and told the panel"
is "$(printf '%s\n' "$OUT" | wc -l)" 1 "one line for one action"
ok "staging is gone" test ! -e "$STAGING/$D1"
is "$(rec "$D1" '["status"]')" failed "the record is failed"
like "$(rec "$D1" '["error"]')" '^worker died' "with the reason"
is "$(count_cb "$D1" failure)" 1 "the panel got exactly one failure"
like "$(panel_api GET "/_emulator/callbacks?server=$D1")" '"body": "\{\\"error\\": ?\\"worker died' \
	"its body carries the reason"
is "$(json_get "$(panel_api GET "/_emulator/transfers/$D1")" '["state"]')" failed "the panel's transfer is failed"
wd
is "$OUT" "" "the next run is silent"
is "$(count_cb "$D1" failure)" 1 "and sends nothing more"
like "$(tail -2 "$STATE/transfers/$D1.events")" '"transfer status","args":\["failure"\]' \
	"a transfer status event says failure"

# --- a source whose push worker died: the server data is never touched ----------------
S1=33333333-0000-4000-8000-000000000001
mkdir -p "$N/data/$S1/world" && echo level > "$N/data/$S1/world/level.dat" &&
	ln -s world "$N/data/$S1/link" && printf 'x%.0s' $(seq 1 5000) > "$N/data/$S1/big"
before=$(tree_sum "$N/data/$S1")
open_transfer "$S1"
start_owner "$S1" source --record-pid 0
kill9 "$OWNER_PID"
wd
like "$OUT" "^$S1: source transfer failed: worker died \(pid 0, during streaming" "a dead push worker is reported"
is "$(tree_sum "$N/data/$S1")" "$before" "the source data directory is intact, byte for byte"
is "$(rec "$S1" '["status"]')" failed "the record is failed, so the server is no longer transferring"
is "$(count_cb "$S1" failure)" 1 "exactly one failure for the source UUID"

# --- a stalled owner that hangs: cancelled, killed after the grace; one watchdog at a time -----
D2=22222222-0000-4000-8000-000000000002
open_transfer "$D2"
start_owner "$D2" destination --staging --progress-age 1000 --on-cancel ignore --record-pid 0
HUNG=$OWNER_PID
"$WD" --config "$CFG" >"$WX_TEST_TMP/wd1.out" 2>"$WX_TEST_TMP/wd1.err" &
WD1=$!
track_pid "$WD1"
wait_for "the first run asked the owner to stop" 20 test -e "$STATE/transfers/$D2.cancel"
wd
is "$RC" 0 "a second run while one is going on exits 0"
like "$ERR" 'another run is in progress .*watchdog.lock' "saying so"
is "$OUT" "" "and does nothing"
wait "$WD1"
is "$?" 0 "the first run finishes with 0"
out1=$(cat "$WX_TEST_TMP/wd1.out")
like "$out1" "$D2: stalled: no progress for .* during receiving \(system.transfers.stall_timeout allows 30 s\); asked pid $HUNG to stop" \
	"the stalled owner is found through the lock file (record pid 0) and asked to stop"
like "$out1" "$D2: pid $HUNG did not stop within 10 s; killed it" "then killed"
like "$out1" "$D2: destination transfer failed: stalled" "and the transfer failed as stalled"
ok "the hung owner is gone" sh -c "! kill -0 $HUNG 2>/dev/null || grep -q '^State:.*Z' /proc/$HUNG/status"
wait "$HUNG" 2>/dev/null
ok "its staging is gone" test ! -e "$STAGING/$D2"
is "$(count_cb "$D2" failure)" 1 "one failure"
ok "the cancel marker is cleared" test ! -e "$STATE/transfers/$D2.cancel"

# --- a stalled owner that obeys the cancel ------------------------------------------
D3=22222222-0000-4000-8000-000000000003
open_transfer "$D3"
start_owner "$D3" destination --staging --progress-age 1000 --on-cancel finish
wd
like "$OUT" "$D3: stalled: .*asked pid $OWNER_PID to stop" "a stalled owner is asked to stop"
like "$OUT" "$D3: the owner stopped and recorded cancelled: The transfer was cancelled." \
	"it stops by itself and records why"
unlike "$OUT" "killed" "nobody is killed"
wait "$OWNER_PID" 2>/dev/null
is "$(count_cb "$D3" failure)" 1 "the owner's failure is the only one"
is "$(rec "$D3" '["status"]')" cancelled "the record keeps the owner's outcome"
like "$(rec "$D3" '["error"]')" "^The transfer was cancelled.* \(asked to stop by wingxfer-watchdog: stalled: no progress" \
	"... and its error says the watchdog asked, and why (not a DELETE)"

# --- max_duration --------------------------------------------------------------------
D4=22222222-0000-4000-8000-000000000004
sed 's/^    stall_timeout: 30$/    stall_timeout: 30\n    max_duration: 600/' "$CFG" > "$N/max.yml"
open_transfer "$D4"
OWNER_CFG="$N/max.yml" start_owner "$D4" destination --age 5000 --on-cancel finish
WD_CFG="$N/max.yml" wd
like "$OUT" "$D4: running for .*, longer than system.transfers.max_duration \(10 min\)" "max_duration ends a long transfer"
wait "$OWNER_PID" 2>/dev/null
is "$(count_cb "$D4" failure)" 1 "with one failure"

# --- the receiver died after the panel was told success: completed, never failure ------------
D5=22222222-0000-4000-8000-000000000005
open_transfer "$D5"
start_owner "$D5" destination
rid=$(rec "$D5" '["request_id"]')
"$CALL" "$CFG" report "$D5" "$rid" success >/dev/null 2>&1
kill9 "$OWNER_PID"
wd
like "$OUT" "$D5: destination owner gone after the panel was told success; record marked completed" \
	"an owner that died after success is closed as completed"
is "$(count_cb "$D5" failure) $(count_cb "$D5" success)" "0 1" "the panel never gets a failure after success"
is "$(rec "$D5" '["status"]')" completed "the record is completed"

# --- panel down for the whole retry window, back later ------------------------------
P1=44444444-0000-4000-8000-000000000001
open_transfer "$P1"
panel_stop
t0=$(date +%s)
out=$("$CALL" "$CFG" report "$P1" tr-p1 failure "disk full" 2>"$WX_TEST_TMP/err")
rc=$?
t1=$(date +%s)
is "$rc" 2 "panel down: the report ends unavailable"
attempts=$(printf '%s' "$out" | sed -n 's/.*attempts=\([0-9]*\).*/\1/p')
ok "after Wings' window: $attempts attempts in $((t1 - t0)) s (8-11 with instant refusals)" \
	test "$attempts" -ge 8 -a "$attempts" -le 11 -a $((t1 - t0)) -ge 15
like "$(cat "$WX_TEST_TMP/err")" "warn.*queued in $STATE/outbox for the watchdog" "a warning says it stays queued"
ok "the callback is in the outbox" test -f "$STATE/outbox/$P1.tr-p1.json"
wd
is "$OUT" "" "the next run leaves it for its next-attempt time (1 min later)"
wd --retry-now
like "$OUT" "$P1: failure callback not delivered \(.*onnect.*\); next attempt in (2 min|1[12][0-9] s)" \
	"with the panel still down: not delivered, next attempt later"
panel_start
wd --retry-now
like "$OUT" "$P1: failure callback delivered to the panel \(HTTP 204\)" "the panel is back: delivered"
is "$(count_cb "$P1" failure)" 1 "exactly once"
ok "the outbox is empty" test ! -e "$STATE/outbox/$P1.tr-p1.json"
wd --retry-now
is "$OUT" "" "the next run is silent"
is "$(count_cb "$P1" failure)" 1 "and the panel got it once"

# A callback the panel refuses (4xx) while redelivering: rejected and logged.
P2=44444444-0000-4000-8000-000000000002
panel_api POST /_emulator/faults '{"path":"/transfer/success$","count":1,"status":503}' >/dev/null
"$CALL" "$CFG" report "$P2" tr-p2 success "" 1 >/dev/null 2>&1
wd --retry-now
like "$OUT" "$P2: success callback rejected by the panel \(HTTP 409 ConflictHttpException: Server is not being transferred.\)" \
	"a 409 to a success on redelivery is rejected"
like "$ERR" "error.*panel rejected the transfer success callback for server $P2" "and logged at error level"
ok "it is in rejected/" test -f "$STATE/outbox/rejected/$P2.tr-p2.json"

# Expiry after callback_retention.
P3=44444444-0000-4000-8000-000000000003
panel_api POST /_emulator/faults '{"path":"/transfer/failure$","count":1,"status":500}' >/dev/null
"$CALL" "$CFG" report "$P3" tr-p3 failure "x" 1 >/dev/null 2>&1
python3 - "$STATE/outbox/$P3.tr-p3.json" <<'PY'
import json, sys
p = sys.argv[1]; e = json.load(open(p)); e["created_at"] -= 2 * 86400
open(p, "w").write(json.dumps(e))
PY
wd
like "$OUT" "$P3: failure callback expired: undelivered for .*callback_retention.*; moved to $STATE/outbox/rejected" \
	"a callback older than callback_retention expires"
like "$ERR" "error.*expired" "with an error log line"
is "$(count_cb "$P3" failure)" 0 "and is not sent"

# --- cleanup --------------------------------------------------------------------------
OLD=55555555-0000-4000-8000-000000000001
NEW=55555555-0000-4000-8000-000000000002
ORPH=55555555-0000-4000-8000-000000000003
week_ago=$(( $(date +%s) - 8 * 86400 ))
for u in $OLD $NEW; do
	printf '{"uuid":"%s","role":"source","status":"completed","created_at":%d,"finished_at":%d}\n' \
		"$u" "$week_ago" "$([ $u = $OLD ] && echo $week_ago || date +%s)" > "$STATE/transfers/$u.json"
	echo '{}' > "$STATE/transfers/$u.events"; : > "$STATE/transfers/$u.cancel"
done
mkdir -p "$STAGING/$ORPH/a" && touch -d '2 hours ago' "$STAGING/$ORPH"
: > "$STATE/tokens/0123abcd" && touch -d '2 days ago' "$STATE/tokens/0123abcd"
: > "$STATE/tokens/fresh"
touch -d '9 days ago' "$STATE/outbox/sent/$S1."*.json
wd --dry-run
like "$OUT" "would remove the record of a source transfer \(completed 8 days ago\)" "--dry-run lists old records"
ok "and removes nothing" test -e "$STATE/transfers/$OLD.json" -a -d "$STAGING/$ORPH"
wd
like "$OUT" "$OLD: removed the record of a source transfer \(completed 8 days ago\)" "an old finished record is removed"
ok "with its events, cancel marker and lock" \
	test ! -e "$STATE/transfers/$OLD.json" -a ! -e "$STATE/transfers/$OLD.events" -a ! -e "$STATE/transfers/$OLD.cancel" -a ! -e "$STATE/transfers/$OLD.lock"
ok "a recent one stays" test -e "$STATE/transfers/$NEW.json"
like "$OUT" "$ORPH: removed the orphaned staging directory" "an orphaned staging directory is removed"
ok "it is gone" test ! -e "$STAGING/$ORPH" -a ! -e "$STATE/transfers/$ORPH.lock"
like "$OUT" "removed 1 used-token record of expired tokens" "old used-token records are removed"
ok "a fresh one stays" test -e "$STATE/tokens/fresh" -a ! -e "$STATE/tokens/0123abcd"
like "$OUT" "removed 1 outbox file" "old delivered-callback tombstones are removed"
wd --json
is "$(json_get "$OUT" '["actions"]')" "[]" "afterwards there is nothing left to do"

# --- a staging tree deeper than the open-file limit ------------------------------------
# Removal must not hold one open directory per level: 3000 levels, removed by
# a watchdog limited to 64 open files (the tree is made with openat chains,
# never more than two directories open).
DEEP=55555555-0000-4000-8000-000000000004
python3 - "$STAGING/$DEEP" <<'PY'
import os, sys
os.makedirs(sys.argv[1])
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
for i in range(3000):
    os.mkdir("d", 0o755, dir_fd=fd)
    if i % 500 == 0:
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
        os.symlink("/etc", "l", dir_fd=fd)
    nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
os.close(os.open("deepest", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
os.fchmod(fd, 0o500)  # a read-only directory at the bottom, not empty
os.close(fd)
PY
touch -d '2 hours ago' "$STAGING/$DEEP"
OUT=$(ulimit -n 64 && "$WD" --config "$CFG" 2>"$WX_TEST_TMP/wd.err"); ERR=$(cat "$WX_TEST_TMP/wd.err")
like "$OUT" "$DEEP: removed the orphaned staging directory" \
	"a staging tree 3000 levels deep is removed by a watchdog limited to 64 open files"
ok "it is gone" test ! -e "$STAGING/$DEEP"
ok "the symlinks' targets are untouched" test -d /etc -a -f /etc/passwd
unlike "$ERR" "cannot remove" "no removal error"

# --- a destination that died right after installing, before queueing success ----------
# The rename of staging into <data>/<uuid> is the commit: the watchdog finishes it.
D7=22222222-0000-4000-8000-000000000007
open_transfer "$D7"
start_owner "$D7" destination --phase installing
mkdir -p "$N/data/$D7/world" && echo level > "$N/data/$D7/world/level.dat"
kill9 "$OWNER_PID"
wd
like "$OUT" "^$D7: destination owner gone after the panel was told success; record marked completed" \
	"an installed server whose receiver died before reporting is completed, not failed"
is "$(rec "$D7" '["status"]')" completed "the record is completed"
is "$(count_cb "$D7" success)" 1 "the panel gets exactly one success"
is "$(count_cb "$D7" failure)" 0 "and no failure"
ok "the installed server stays" test -f "$N/data/$D7/world/level.dat"

# --- an installed server whose success the panel refuses ------------------------------
# No open transfer in the panel (the source's failure closed it first): the
# success gets 409, and the copy is moved aside so it neither lingers as a
# stale server nor blocks the next transfer to this node.
D8=22222222-0000-4000-8000-000000000008
start_owner "$D8" destination --phase installing
mkdir -p "$N/data/$D8/world" && echo level > "$N/data/$D8/world/level.dat"
kill9 "$OWNER_PID"
wd
like "$OUT" "^$D8: moved $N/data/$D8 to $N/data/.wingxfer-unaccepted/$D8\.[0-9]+: the panel did not accept" \
	"a success the panel refused: the installed copy is moved aside, and the line says where and why"
ok "the server directory is gone from $N/data" test ! -e "$N/data/$D8"
aside=$(rec "$D8" '["extra"]["set_aside"]')
ok "the copy is kept intact where the record says ($aside)" test -f "$aside/world/level.dat"
like "$(rec "$D8" '["warning"]')" "did not accept the success callback" "the record's warning says so"
is "$(count_cb "$D8" failure)" 0 "no failure is sent for it (the node did succeed)"
wd
is "$RC $OUT" "0 " "the next run leaves the set-aside copy alone"
mv "$aside" "$N/data/$D8"
wd
ok "a copy the admin restored by hand is left where it is" test -f "$N/data/$D8/world/level.dat"

# A refusal after an attempt that got no definite answer (here a 503) may be
# the panel saying "already done": the copy stays, and the admin is told once.
D9=22222222-0000-4000-8000-000000000009
panel_api POST /_emulator/faults "{\"path\":\"/servers/$D9/transfer/success\$\",\"count\":1,\"status\":503}" >/dev/null
start_owner "$D9" destination --phase installing
mkdir -p "$N/data/$D9" && echo x > "$N/data/$D9/x"
kill9 "$OWNER_PID"
wd
ok "a success that got 503 is not set aside (still queued)" test -f "$N/data/$D9/x"
wd --retry-now
like "$OUT" "^$D9: kept $N/data/$D9: the panel refused the success callback, but an earlier attempt may have reached it" \
	"refused after an unanswered attempt: kept, and the line tells the admin to check the panel"
ok "the copy stays in place" test -f "$N/data/$D9/x"
wd
is "$RC $OUT" "0 " "said once: the next run is silent"

done_testing
