# TAP helpers for the shell integration tests (sourced).
# Every check prints one "ok N - ..." / "not ok N - ..." line; done_testing
# prints the plan.  Temporary files live under one directory removed at exit,
# and every process a test starts is registered with track_pid and stopped
# (by pid) at exit.

set -u
# The helpers are Python 3 standard-library scripts, run by Debian's python3
# (tools/debian-packages.txt): /usr/bin goes first in PATH, because a version
# manager's shim ahead of it (pyenv's costs 0.3 s per start, the suite starts
# python3 thousands of times) adds many minutes to the suite.
case ":$PATH:" in :/usr/bin:*) ;; *) PATH="/usr/bin:$PATH"; export PATH ;; esac
TAP_N=0
TAP_FAILED=0
TRACKED_PIDS=""
WX_TEST_TMP=""

: "${top_builddir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
export top_builddir top_srcdir
WX_BIN="$top_builddir/handlers"

_tap_line() {
	TAP_N=$((TAP_N + 1))
	if [ "$1" = 0 ]; then
		printf 'ok %d - %s\n' "$TAP_N" "$2"
	else
		printf 'not ok %d - %s\n' "$TAP_N" "$2"
		TAP_FAILED=$((TAP_FAILED + 1))
	fi
}

diag() { printf '# %s\n' "$*"; }

# ok DESCRIPTION COMMAND...: passes when the command exits 0.
ok() {
	local desc=$1; shift
	if "$@"; then _tap_line 0 "$desc"; else _tap_line 1 "$desc"; fi
}

# is GOT WANT DESCRIPTION
is() {
	if [ "$1" = "$2" ]; then _tap_line 0 "$3"; else
		_tap_line 1 "$3"; diag "got:  '$1'"; diag "want: '$2'"; fi
}

# like GOT EXTENDED-REGEX DESCRIPTION
like() {
	if printf '%s' "$1" | grep -Eq -- "$2"; then _tap_line 0 "$3"; else
		_tap_line 1 "$3"; diag "got:  '$(printf '%s' "$1" | head -c 600)'"; diag "want match: $2"; fi
}

# unlike GOT EXTENDED-REGEX DESCRIPTION
unlike() {
	if printf '%s' "$1" | grep -Eq -- "$2"; then
		_tap_line 1 "$3"; diag "got:  '$(printf '%s' "$1" | head -c 600)'"; diag "must not match: $2"
	else _tap_line 0 "$3"; fi
}

skip_all() { printf '1..0 # SKIP %s\n' "$*"; exit 0; }
# skip DESCRIPTION REASON: one skipped check, said in the TAP output.
skip() { TAP_N=$((TAP_N + 1)); printf 'ok %d - %s # SKIP %s\n' "$TAP_N" "$1" "$2"; }

done_testing() {
	printf '1..%d\n' "$TAP_N"
	[ "$TAP_FAILED" = 0 ]
}

# A pid names a process only while that process lives: pids are handed out
# in turn up to pid_max (32768), and with four tests forking in parallel the
# counter wraps every few minutes (~5 800 pids a minute measured), so a pid
# kept since a test's start may belong to another process by its end (bash
# reaps its background jobs itself).  A signal to a stale pid lands on
# whatever has it now: another test's process, or make's recipe shell,
# which then stops the whole check without a test-suite.log.  So
# every signal here goes to a process IDENTITY, "PID:STARTTIME", the start
# time (clock ticks since boot, /proc/PID/stat field 22) telling the
# process that had the pid from any later one.

# pid_start PID: the start time of the process that has PID now; false
# when there is none.
pid_start() {
	local stat rest
	[ "${1:-0}" -gt 1 ] 2>/dev/null || return 1
	{ read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 1
	rest=${stat##*) }	# the command name may hold spaces and ')'
	set -- $rest		# field 3 (state) is $1, so field 22 is ${20}
	[ -n "${20:-}" ] && echo "${20}"
}

# pid_id PID: the identity "PID:STARTTIME" of the process that has PID now.
pid_id() { local t; t=$(pid_start "$1") && echo "$1:$t"; }

# alive_id ID: the process ID names still lives (a zombie counts).
alive_id() { [ "$(pid_start "${1%%:*}")" = "${1#*:}" ]; }

# signal_id SIGNAL ID: sends SIGNAL to the process ID names, and only to it;
# false when it has ended.  The pid is checked just before the kill; the
# window left (microseconds) is not one a reuse can fall into in practice.
signal_id() { alive_id "$2" && kill -"$1" "${2%%:*}" 2>/dev/null; }

# track_pid PID: PID (alive now) is stopped at exit unless stop_pid stopped
# it first.
track_pid() { local id; id=$(pid_id "$1") && TRACKED_PIDS="$TRACKED_PIDS $id"; }

# Stops one tracked process: TERM, then KILL if it is still there after
# WX_STOP_SECS (default 60: a loaded machine may take seconds to schedule a
# graceful exit, and a web server killed early leaves children on its port).
# It is forgotten, so the cleanup at exit never signals it again.  A PID that
# was not tracked is taken to be alive now.  Nothing is signalled once the
# process that had the pid has ended, whoever has the pid now.
stop_pid() {
	local pid=${1%%:*} id="" t deadline
	for t in $TRACKED_PIDS; do [ "${t%%:*}" = "$pid" ] && id=$t; done
	TRACKED_PIDS=$(printf ' %s ' $TRACKED_PIDS | sed "s/ $pid:[0-9]* / /g")
	[ -n "$id" ] || id=$(pid_id "$pid") || return 0
	signal_id TERM "$id" || return 0
	deadline=$((SECONDS + ${WX_STOP_SECS:-60}))
	while [ "$SECONDS" -lt "$deadline" ]; do
		alive_id "$id" || return 0
		sleep 0.1
	done
	signal_id KILL "$id" || true
}

_tap_cleanup() {
	local id
	for id in $TRACKED_PIDS; do stop_pid "$id"; done
	if [ -n "$WX_TEST_TMP" ] && [ -z "${WX_KEEP_TMP:-}" ]; then
		chmod -R u+rwx "$WX_TEST_TMP" 2>/dev/null || true
		rm -rf "$WX_TEST_TMP"
	fi
}
trap _tap_cleanup EXIT

# A fresh scratch directory for this test script.
wx_tmpdir() {
	WX_TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/wingxfer-test.XXXXXX")
	chmod 755 "$WX_TEST_TMP"
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls until COMMAND succeeds.
# The bound is wall time, and never less than WX_WAIT_MIN seconds (default
# 300): SECONDS says how long the wait should take on an idle machine, but on
# a loaded one (CI beside other work, the sanitizer build) everything may
# take many times longer, and a wait that succeeds costs nothing extra.
# Nothing in the suite waits for a condition expected NOT to happen with
# wait_for: that would need a fixed time, which is not a check.
#
# Pace: polls come every 0.1 s, unless a poll used more than 25 ms of CPU
# (a status over HTTPS parsed with python3 uses ~0.1 s): then the next
# comes 4 times that CPU time later, at most 1 s after.  The suite runs 4
# tests on 2 cores and is CPU-bound; a test polling such a condition back to
# back took the CPU from the transfer it waited for.  CPU time, not wall
# time: on a loaded machine a cheap poll (sed of a record, as the fault
# tests use to place a kill) takes longer but still comes every 0.1 s.
# The CPU time is this shell's and its reaped children's, from
# /proc/BASHPID/stat (clock ticks: 10 ms), read without starting a process.
wait_for() {
	local desc=$1 secs=$2 min=${WX_WAIT_MIN:-300} deadline t0 pause ms; shift 2
	[ "$secs" -ge "$min" ] || secs=$min
	deadline=$((SECONDS + secs))
	while :; do
		_cpu_ticks; t0=$_CPU_TICKS
		if "$@"; then return 0; fi
		[ "$SECONDS" -lt "$deadline" ] || break
		_cpu_ticks; pause=$(( (_CPU_TICKS - t0) * 40 ))        # ms: 4 x 10 ms per tick
		[ "$pause" -ge 100 ] || pause=100
		[ "$pause" -le 1000 ] || pause=1000
		printf -v ms '%03d' $((pause % 1000))
		sleep "$((pause / 1000)).$ms"
	done
	diag "timed out after ${secs}s waiting for: $desc"
	return 1
}
# _cpu_ticks: _CPU_TICKS = user + system time of this shell and its reaped
# children (no subshell: it would read its own).
_cpu_ticks() {
	local f
	read -ra f < "/proc/$BASHPID/stat" && _CPU_TICKS=$(( f[13] + f[14] + f[15] + f[16] )) || _CPU_TICKS=0
}

# A random (version 4) UUID, from the kernel: no process started.
new_uuid() {
	local u
	read -r u < /proc/sys/kernel/random/uuid && printf '%s\n' "$u"
}

# A free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# make_node_config DIR NAME [EXTRA-YAML]: writes DIR/config.yml for a test node
# (data in DIR/data, state in DIR/state) and prints its path.  The node token is
# "token-NAME"; the panel is $PANEL_URL (default http://127.0.0.1:1).
# transfers_key CONFIG KEY [VALUE]: system.transfers.KEY of the node config
# CONFIG (as make_node_config writes it) set to VALUE, or without VALUE
# removed (the default applies).  Programs read it at their next start.
transfers_key() {
	sed -i "/^    $2: /d" "$1"
	[ $# -lt 3 ] || sed -i "s|^    disk_reserve: 0$|    disk_reserve: 0\n    $2: $3|" "$1"
}
make_node_config() {
	local dir=$1 name=$2 extra=${3:-}
	mkdir -p "$dir/data" "$dir/state" "$dir/backups" "$dir/logs"
	cat > "$dir/config.yml" <<YAML
uuid: 00000000-0000-4000-8000-$(printf '%012d' "${#name}")
token_id: id-$name
token: token-$name
remote: ${PANEL_URL:-http://127.0.0.1:1}
remote_query:
  timeout: 5
system:
  root_directory: $dir
  data: $dir/data
  backup_directory: $dir/backups
  log_directory: $dir/logs
  user:
    uid: $(id -u)
    gid: $(id -g)
  transfers:
    state_directory: $dir/state
    disk_reserve: 0
$extra
YAML
	echo "$dir/config.yml"
}

# cgi PROGRAM CONFIG METHOD URI AUTH [VAR=value...]: runs a handler as plain CGI
# (AUTH "" for none).  The body, if any, comes from stdin.  Prints the raw response.
cgi() {
	local prog=$1 config=$2 method=$3 uri=$4 auth=$5
	shift 5
	env -i PATH="$PATH" WINGXFER_CONFIG="$config" REQUEST_METHOD="$method" REQUEST_URI="$uri" \
		${auth:+HTTP_AUTHORIZATION="$auth"} "$@" "$WX_BIN/$prog"
}

# status_of RESPONSE: the numeric status of a CGI response.
status_of() { printf '%s' "$1" | sed -n '1s/^Status: \([0-9]*\).*/\1/p'; }
# body_of RESPONSE: the body of a CGI response.
body_of() { printf '%s' "$1" | sed '1,/^\r\{0,1\}$/d'; }
# header_of RESPONSE NAME
header_of() { printf '%s' "$1" | sed -n "/^\r\{0,1\}$/q; s/^$2: \([^\r]*\)\r\{0,1\}$/\1/Ip"; }
# json_get JSON PYTHON-EXPR (e.g. '["error"]')
json_get() { printf '%s' "$1" | python3 -c "import json,sys; v=json.load(sys.stdin)$2; print(v if not isinstance(v,(dict,list,bool)) and v is not None else json.dumps(v))"; }
