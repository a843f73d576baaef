#!/bin/bash
# The hostile-input corpus (tests/hostile/corpus.py) against one wingxfer
# node behind Apache with TLS (mod_proxy_fcgi, the shipped site config), its
# panel the emulator.  Per case: the HTTP status of each request, then
#   - nothing created or changed outside staging: the node's directory (data,
#     state, backups, logs) and a canary directory compared before and after,
#     except the case's own record, events, lock and spent token; /etc/passwd
#     unchanged and no /etc/wingxfer-hostile-canary;
#   - no server directory appeared (or, for the cases that install, only
#     safe content: no devices, FIFOs, setuid/setgid bits);
#   - the panel got exactly the failure callbacks the case calls for (never
#     more than one) and a success only when the server was installed;
#   - the handler still serves: a follow-up request answers and no worker
#     process of either program died.
# The 1 000 000-empty-files case reports its time and the receiving
# process's peak RSS (VmHWM, reset before the case).
# HOSTILE_ONLY=REGEX runs only the matching cases, HOSTILE_SKIP=REGEX all
# but those (for debugging).
# corpus.py runs as one coprocess (corpus.py serve) for the whole corpus:
# started for each step of each case, python3 was most of its CPU time.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root to run Apache as www-data"
wx_tmpdir
webstack_ca || { echo "not ok 1 - test CA"; echo 1..1; exit 1; }
panel_start || { echo "not ok 1 - panel emulator"; echo 1..1; exit 1; }
CORPUS="$top_srcdir/tests/hostile/corpus.py"
RESULTS="${HOSTILE_RESULTS:-$top_builddir/tests/hostile/results.txt}"
mkdir -p "$(dirname "$RESULTS")"
: > "$RESULTS"

NODE=h
NODE_DIR="$WX_TEST_TMP/$NODE"
node_setup "$NODE" "    perform_checksum_checks: true"
node_start "$NODE" apache || { echo "not ok 1 - Apache does not start"; echo 1..1; exit 1; }
URL=${NODE_URL[$NODE]}
panel_node "$NODE" "id-$NODE" "token-$NODE" "$URL"
DATA="$NODE_DIR/data"
STATE="$NODE_DIR/state"
CANARY="$WX_TEST_TMP/canary"
mkdir -p "$CANARY/sub"
echo original > "$CANARY/victim"
ETC_CANARY=/etc/wingxfer-hostile-canary
ok "no $ETC_CANARY before the corpus" test ! -e "$ETC_CANARY"
PASSWD_BEFORE=$(stat -c '%h %s' /etc/passwd):$(sha256sum < /etc/passwd)

# The source role's server: a real tree that must stay byte-identical.
SRC_UUID=5e4f0000-aaaa-4bbb-8ccc-000000000001
make_tree "$DATA/$SRC_UUID" --files 30
python3 "$top_srcdir/tests/lib/trees.py" manifest "$DATA/$SRC_UUID" > "$WX_TEST_TMP/src.manifest"

MILLION="$WX_TEST_TMP/million.tar.gz"
workers() { # the worker pids of both programs, sorted
	local p
	for p in source destination; do pgrep -P "$(cat "$NODE_DIR/run/$p.pid")"; done | sort -n | tr '\n' ' '
}
WORKERS=$(workers)
is "$(echo $WORKERS | wc -w)" 6 "three workers per program serve"

# corpus OUT ERR COMMAND ARG...: corpus.py COMMAND ARG... in the coprocess
# (started at the first call, and again if it ended), its output to the file
# OUT, its errors to ERR (either empty: discarded); its exit status.
corpus() {
	local out=$1 err=$2 rc IFS=$'\t'; shift 2
	if [ -z "${CORPUS_PROC_PID:-}" ] || ! kill -0 "$CORPUS_PROC_PID" 2>/dev/null; then
		coproc CORPUS_PROC { exec python3 "$CORPUS" serve; }
		track_pid "$CORPUS_PROC_PID"
	fi
	printf '%s\n' "$out	$err	$*" >&"${CORPUS_PROC[1]}" || { diag "corpus.py serve: gone"; return 1; }
	read -r -t 1800 rc <&"${CORPUS_PROC[0]}" || { diag "corpus.py serve: no answer to $3"; return 1; }
	return "$rc"
}
idle() { # the case's transfer lock is free (its request is over)
	[ ! -e "$STATE/transfers/$1.lock" ] || flock -n "$STATE/transfers/$1.lock" true
}
snap_skip() { echo "^$NODE_DIR/(web|log|run)(/|$)|^$DATA/$1(/|$)"; }
snap() { corpus "$2" "" snapshot "$NODE_DIR" "$CANARY" --skip "$(snap_skip "$1")"; }
unchanged() { # unchanged UUID: the snapshot since snap, but for the case's own state files
	local allow="^$STATE/transfers/$1\.(json|lock|events)$|^$STATE/tokens/[0-9a-f]{64}$"
	allow="$allow|^$STATE/(transfers|tokens|outbox|outbox/sent|outbox/rejected|outbox/\.lock)$"
	allow="$allow|^$STATE/outbox/sent/[^/]*$|^$DATA/\.wingxfer-staging$"
	corpus "$WX_TEST_TMP/diff.out" "" diff "$WX_TEST_TMP/before.snap" "$NODE_DIR" "$CANARY" \
		--skip "$(snap_skip "$1")" --allow "$allow" && return 0
	sed 's/^/# /' "$WX_TEST_TMP/diff.out" | head -10
	return 1
}
callback_counts() { # UUID N: "failures:successes:all callbacks beyond the first N"
	local line
	corpus "$WX_TEST_TMP/cb.out" "" callbacks "$PANEL_URL" "$1" "$2" && read -r line < "$WX_TEST_TMP/cb.out" &&
		printf '%s\n' "$line"
}
total_callbacks() { local c; c=$(callback_counts - 0) && printf '%s\n' "${c##*:}"; }
followup() { # followup TARGET UUID: a request each program must answer with JSON
	local code path
	if [ "$1" = source ]; then path="/api/servers/$SRC_UUID/transfer"; else path="/api/transfers/$2"; fi
	code=$(https_curl -o "$WX_TEST_TMP/follow.out" -w '%{http_code}' --max-time 30 \
		-H "Authorization: Bearer token-$NODE" "$URL$path" 2>/dev/null)
	case "$code" in 200|404) corpus "" "" is-json "$WX_TEST_TMP/follow.out" ;;
	*) diag "follow-up GET $path: $code"; return 1 ;; esac
}
serving() { [ "$3" = "$WORKERS" ] && followup "$1" "$2"; }
installed_safely() { # DIR ETC-VERDICT STAGING-LEFT: no devices, FIFOs, sockets,
	# setuid/setgid bits; owned by system.user; /etc untouched; no staging left
	[ "$2" = yes ] && [ -z "$3" ] || return 1
	[ -d "$1" ] || { diag "no server directory $1"; return 1; }
	local bad
	bad=$(find "$1" \( -type b -o -type c -o -type p -o -type s -o -perm /6000 \
		-o ! -uid "$(id -u)" \) -print | head -5)
	[ -z "$bad" ] || { diag "unsafe: $bad"; return 1; }
}
peak_rss_reset() { local p; for p in $(pgrep -P "$(cat "$NODE_DIR/run/destination.pid")"); do echo 5 > "/proc/$p/clear_refs"; done; }
vm_hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }

declare -A PER_CATEGORY
declare -A CAT_FAILED
while IFS=$'\t' read -r name category target statuses want_cb outcome disk desc; do
	[ -n "${HOSTILE_ONLY:-}" ] && ! [[ $name =~ $HOSTILE_ONLY ]] && continue
	[ -n "${HOSTILE_SKIP:-}" ] && [[ $name =~ $HOSTILE_SKIP ]] && continue
	PER_CATEGORY[$category]=$(( ${PER_CATEGORY[$category]:-0} + 1 ))
	failed_before=$TAP_FAILED
	U=$(new_server "$disk")
	if [ "$name" = ar-million-empty-files ] && [ ! -f "$MILLION" ]; then
		t0=$(date +%s.%N)
		python3 "$CORPUS" million-files "$MILLION"
		diag "built the 1 000 000-file archive: $(stat -c %s "$MILLION") bytes gzip in $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s"
	fi
	cat > "$WX_TEST_TMP/ctx.json" <<JSON
{"node_url": "$URL", "port": ${NODE_PORT[$NODE]}, "ca": "$WX_CA", "panel_url": "$PANEL_URL",
 "panel_node": "$NODE", "node_token": "token-$NODE", "canary": "$CANARY", "uuid": "$U",
 "source_uuid": "$SRC_UUID", "work_dir": "$WX_TEST_TMP/work", "million_archive": "$MILLION",
 "backups_dir": "$NODE_DIR/backups"}
JSON
	corpus "" "$WX_TEST_TMP/setup.err" setup "$name" --ctx "$WX_TEST_TMP/ctx.json" ||
		{ diag "$name: its setup failed:"; sed 's/^/# /' "$WX_TEST_TMP/setup.err" | tail -5; }
	snap "$U" "$WX_TEST_TMP/before.snap"
	cb_before=$(total_callbacks)
	[ "$name" = ar-million-empty-files ] && peak_rss_reset
	t0=${EPOCHREALTIME/[.,]/}
	corpus "$WX_TEST_TMP/run.out" "$WX_TEST_TMP/run.err" run "$name" --ctx "$WX_TEST_TMP/ctx.json"
	secs=$(( (${EPOCHREALTIME/[.,]/} - t0 + 50000) / 100000 )); secs=$((secs / 10)).$((secs % 10))
	wait_for "$name: its request to end" 120 idle "$U"
	got=$(cut -f1 "$WX_TEST_TMP/run.out" | paste -sd, -)
	is "$got" "$statuses" "$name: HTTP $statuses ($desc)"
	[ "$got" = "$statuses" ] || { diag "answers: $(cat "$WX_TEST_TMP/run.out")"; cat "$WX_TEST_TMP/run.err" | sed 's/^/# /' | tail -5; }

	ok "$name: nothing created or changed outside staging" unchanged "$U"
	etc_ok=yes
	[ -e "$ETC_CANARY" ] && { etc_ok="created $ETC_CANARY"; rm -f "$ETC_CANARY"; }
	[ "$(stat -c '%h %s' /etc/passwd):$(sha256sum < /etc/passwd)" = "$PASSWD_BEFORE" ] || etc_ok="/etc/passwd changed"
	staging_left=$(ls -A "$DATA/.wingxfer-staging" 2>/dev/null)
	if [ "$outcome" = installed ]; then
		ok "$name: installed, and only safe content ($etc_ok; staging: ${staging_left:-empty})" \
			installed_safely "$DATA/$U" "$etc_ok" "$staging_left"
		case "$name" in
		control-*|mp-checksum-before-archive)
			is "$(cd "$DATA/$U" && find . -type f | sort | tr '\n' ' ')" "./server.properties ./start.sh ./world/level.dat " \
				"$name: the three files arrived" ;;
		ar-device) is "$(cd "$DATA/$U" && find . | sort | tr '\n' ' ')" ". ./after-devices.txt ./ok.txt " \
			"$name: the devices were skipped, the rest extracted" ;;
		ar-fifo) is "$(ls "$DATA/$U" | tr '\n' ' ')" "after-fifo.txt ok.txt " "$name: the FIFO was skipped" ;;
		ar-setuid) is "$(stat -c '%a %n' "$DATA/$U"/s* | sed "s|$DATA/$U/||" | tr '\n' ' ')" \
			"755 sgid-bin 775 sgid-dir 755 suid-bin " "$name: setuid/setgid bits cleared" ;;
		ar-empty-tar) is "$(ls -A "$DATA/$U" | wc -l)" 0 "$name: an empty server directory" ;;
		ar-hardlink-gnu-tar|ar-hardlink-bsdtar)
			is "$(stat -c '%h %s' "$DATA/$U/world/level.dat" "$DATA/$U/world/level.dat_old" | tr '\n' ' ')" \
				"2 4096 2 4096 " "$name: one file with two names, its data once" ;;
		ar-deep-512) ok "$name: the file 512 levels down arrived" \
			test -f "$DATA/$U/$(printf 'd/%.0s' $(seq 511))f.txt" ;;
		ar-dot-root-mode)
			is "$(stat -c '%a %u' "$DATA/$U")" "700 $(id -u)" "$name: the server root keeps mode 0700 and its owner"
			ok "$name: the rest extracted" test -f "$DATA/$U/after-dot.txt" ;;
		ar-million-empty-files)
			files=$(find "$DATA/$U" -type f | wc -l)
			is "$files" 1000000 "$name: all 1 000 000 files arrived"
			pid=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['pid'])" "$STATE/transfers/$U.json")
			hwm=$(vm_hwm "$pid")
			diag "1 000 000 empty files: ${secs} s for the request, receiving process $pid peak RSS ${hwm} kB"
			printf 'million-files seconds=%s peak_rss_kb=%s archive_bytes=%s\n' "$secs" "$hwm" \
				"$(stat -c %s "$MILLION")" >> "$RESULTS"
			# ASan keeps freed memory in quarantine (256 MiB by default) and
			# maps shadow memory: the 64 MiB bound is the normal build's.
			if grep -q '^#define WX_SANITIZERS 1' "$top_builddir/autoconf.h"; then
				ok "$name: the receiving process's peak RSS stayed under 1 GiB on the ASan build (${hwm} kB; 64 MiB is checked on the normal build)" \
					test "${hwm:-9999999}" -lt 1048576
			else
				ok "$name: the receiving process's peak RSS stayed under 64 MiB (${hwm} kB)" test "${hwm:-999999}" -lt 65536
			fi ;;
		esac
		rm -rf "${DATA:?}/$U"
	else
		ok "$name: no server directory appeared, no staging left ($etc_ok)" \
			test ! -e "$DATA/$U" -a -z "$staging_left" -a "$etc_ok" = yes
	fi
	want_succ=0; [ "$outcome" = installed ] && want_succ=1
	is "$(callback_counts "$U" "$cb_before")" "$want_cb:$want_succ:$((want_cb + want_succ))" \
		"$name: the panel got $want_cb failure and $want_succ success callback(s), nothing else"
	now=$(workers)
	ok "$name: the handler still serves (follow-up answered, no worker died)" \
		serving "$target" "$U" "$now"
	[ "$now" = "$WORKERS" ] || { diag "workers were: $WORKERS, now: $now"; WORKERS=$now; }
	[ "$TAP_FAILED" = "$failed_before" ] || CAT_FAILED[$category]=$(( ${CAT_FAILED[$category]:-0} + 1 ))
	printf 'case %s %s %s %ss %s\n' "$category" "$name" "$got" "$secs" \
		"$(cut -f2 "$WX_TEST_TMP/run.out" | paste -sd'|' -)" >> "$RESULTS"
done < <(python3 "$CORPUS" list)

python3 "$top_srcdir/tests/lib/trees.py" manifest "$DATA/$SRC_UUID" > "$WX_TEST_TMP/src.after"
ok "the source role's server tree is byte-identical after the corpus" \
	cmp -s "$WX_TEST_TMP/src.manifest" "$WX_TEST_TMP/src.after"
ok "nothing in the canary directory changed" test "$(ls -A "$CANARY" | tr '\n' ' '):$(cat "$CANARY/victim")" = "sub victim :original"
unlike "$(node_log "$NODE")" 'killed by signal|exited with status|AddressSanitizer|runtime error' \
	"no worker crashed or reported a sanitizer error in the node's log"
n=0
for c in "${!PER_CATEGORY[@]}"; do
	diag "category $c: ${PER_CATEGORY[$c]} cases, ${CAT_FAILED[$c]:-0} with a failed check"
	printf 'category %s cases=%s failed=%s\n' "$c" "${PER_CATEGORY[$c]}" "${CAT_FAILED[$c]:-0}" >> "$RESULTS"
	[ "$c" = control ] || n=$((n + PER_CATEGORY[$c]))
done
diag "$n hostile cases (plus controls); results in $RESULTS"
[ -z "${HOSTILE_ONLY:-}${HOSTILE_SKIP:-}" ] && ok "at least 60 hostile cases ran ($n)" test "$n" -ge 60
node_stop "$NODE"
panel_stop
done_testing
