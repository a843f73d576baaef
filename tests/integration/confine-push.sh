#!/bin/bash
# The source side's push worker keeps only what it needs (issue 17,
# docs/security.md), and its stop hook runs outside that confinement.
#  1. wx-push-probe enters the confinement with the function the worker
#     uses (push_sandbox_enter) and tries, from inside: writing in the state
#     directory and reading a 0600 file of another user in the tree (both
#     work), writing or creating in the tree, writing outside, creating in
#     /tmp, reading /etc/passwd, chown, setuid, mount, a packet socket,
#     binding a TCP port, signalling its parent (each refused), execve,
#     process_vm_readv, ptrace (each killed by SIGSYS); a TCP connection
#     and resolving localhost work.  As root, and started as nobody.
#  2. A real transfer between two Apache nodes with TLS, held by
#     upload_limit: while the body streams, the worker has uid 0 with only
#     CAP_DAC_READ_SEARCH, NoNewPrivs 1 and Seccomp 2, and no copy of the
#     node token in its memory; its parent (the
#     supervisor holding the lock) is not confined, and the stop hook it ran
#     had all of root's capabilities.  Then a cancel ends it (each node
#     reports the failure at most once).  A worker stopped by SIGTERM while
#     its supervisor runs the stop hook has the hook killed.  And a
#     second server, with a file only its owner may read, moves
#     byte-identical with one success callback.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
. "$top_srcdir/tests/lib/proc.sh"
webstack_init "the push worker's confinement"
PANEL_TLS=1 panel_start || { echo "not ok 1 - panel emulator"; echo 1..1; exit 1; }
PANEL_TLS=1
NOBODY=$(id -u nobody)
NOGROUP=$(id -g nobody)
PROBE="$top_builddir/tests/helpers/wx-push-probe"
TREES="$top_srcdir/tests/lib/trees.py"
SANITIZERS=0
grep -q '^#define WX_SANITIZERS 1' "$top_builddir/autoconf.h" && SANITIZERS=1

# probe_run NAME OWNER: a fresh state directory (owned by OWNER) and tree,
# and the probe's TAP renumbered into this test's.
probe_run() {
	local d="$WX_TEST_TMP/probe-$1" line
	mkdir -p "$d/state" "$d/tree" "$d/open"
	chmod 700 "$d/state"
	chown "$2" "$d/state"
	echo secret > "$d/tree/secret"
	: > "$d/tree/open"
	chmod 600 "$d/tree/secret"
	chmod 666 "$d/tree/open"
	chown -R 12345:12345 "$d/tree"
	[ "$2" = root ] || chown -R "$2" "$d/tree"      # the prober's own files
	chmod 777 "$d/open"
	: > "$d/open/victim"
	chmod 666 "$d/open/victim"
	${AS:-} "$PROBE" "$d/state" "$d/tree" "$d/open/victim" > "$d/tap" 2> "$d/err"
	while IFS= read -r line; do
		case $line in
		"ok "*"# SKIP"*) diag "$1: ${line#ok [0-9]* - }" ;;
		"ok "*) ok "$1: ${line#ok [0-9]* - }" true ;;
		"not ok "*) ok "$1: ${line#not ok [0-9]* - }" false ;;
		"# status "*) diag "$1: ${line#\# status }" ;;
		"# limit "*) diag "$1: ${line#\# limit }" ;;
		esac
	done < "$d/tap"
	local abi skips want=0
	abi=$(sed -n 's/^# Landlock ABI //p' "$d/tap")
	skips=$(grep -c '# SKIP' "$d/tap")
	[ "$SANITIZERS" = 1 ] && want=1
	if [ "${abi:-0}" -ge 6 ]; then
		is "$skips" "$want" "$1: nothing skipped on this kernel (Landlock ABI $abi)"
	fi
	is "$(grep -c '^ok ' "$d/tap")" 19 "$1: all 19 probes ran and held"
	is "$(cat "$d/open/victim")" "" "$1: the file outside is untouched"
	is "$(cat "$d/tree/open")" "" "$1: the tree is untouched"
	ok "$1: nothing was created in /tmp" test ! -e /tmp/wx-push-probe-escape
	STATUS_OF_PROBE=$(sed -n 's/^# status //p' "$d/tap")
	LIMITS_OF_PROBE=$(sed -n 's/^# limit //p' "$d/tap")
	[ -s "$d/err" ] && sed 's/^/# /' "$d/err"
}
status_field() { printf '%s\n' "$STATUS_OF_PROBE" | sed -n "s/^$1:[[:space:]]*//p"; }
rm -f /tmp/wx-push-probe-escape
probe_run "as root" root
is "$(status_field Uid)" "0	0	0	0" "as root: the worker keeps uid 0 (the state directory is root's)"
is "$(status_field CapEff)" 0000000000000004 "as root: ... with CAP_DAC_READ_SEARCH only (effective)"
is "$(status_field CapPrm)" 0000000000000004 "as root: ... and permitted"
is "$(status_field NoNewPrivs)" 1 "as root: NoNewPrivs 1"
is "$(status_field Seccomp)" 2 "as root: Seccomp 2 (filter)"
limit() { printf '%s\n' "$LIMITS_OF_PROBE" | sed -n "s/^Max $1 *\([0-9a-z]*\) *\([0-9a-z]*\).*/\1 \2/p"; }
is "$(limit 'core file size')" "0 0" "as root: no core dumps"
is "$(limit 'open files')" "1024 1024" "as root: at most 1024 open files"
if [ "$SANITIZERS" = 1 ]; then
	diag "as root: address space: no bound in sanitizer builds ($(limit 'address space'))"
else
	is "$(limit 'address space')" "8589934592 8589934592" "as root: 8 GiB of address space"
fi
AS="setpriv --reuid=$NOBODY --regid=$NOGROUP --clear-groups" probe_run "not root" nobody
is "$(status_field CapEff)" 0000000000000000 "not root: no capabilities"
is "$(status_field Seccomp)" 2 "not root: the same confinement (Seccomp 2)"

# --- a real transfer ------------------------------------------------------------
HOOKS="$WX_TEST_TMP/hooks"
mkdir -p "$HOOKS"
# The stop hook records its own and its parent's credentials.
# With a file "hang" in the server, it then hangs.
cat > "$HOOKS/stop-record" <<EOF
#!/bin/sh
{ echo "ppid \$PPID"; grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' /proc/self/status; } > "$HOOKS/\$SERVER_UUID.status"
[ -e "\$SERVER_DIR/hang" ] && exec sleep 637.31
exit 0
EOF
chmod 755 "$HOOKS/stop-record"
# presync off: the stop hook runs before the body (tests/integration/presync.sh
# checks the worker's confinement while it copies a running server).
node_setup a "    upload_limit: 1
    presync: off
    compression_level: 0
    hooks:
      stop: [$HOOKS/stop-record]"
node_setup b
node_start b apache || { echo "not ok - apache does not start"; done_testing; exit 1; }
# A node token no other string can contain, to look for in memory.
TOKEN_A=$(random_token)
sed -i "s/^token: .*/token: $TOKEN_A/" "$WX_TEST_TMP/a/config.yml"
panel_node a id-a "$TOKEN_A" "${NODE_URL[a]}"
panel_node b id-b token-b "${NODE_URL[b]}"
node_start a apache || { echo "not ok - apache does not start"; done_testing; exit 1; }
A_STATE="$WX_TEST_TMP/a/state"

src_status() { https_curl -H "Authorization: Bearer $TOKEN_A" "${NODE_URL[a]}/api/servers/$1/transfer"; }
state_of() { json_get "$(src_status "$1")" '["state"]' 2>/dev/null; }
finished() { case "$(state_of "$1")" in completed|failed|cancelled) return 0 ;; esac; return 1; }
n_callbacks() { callbacks "$1" | grep -c "^$2 "; }
has_failure() { [ "$(n_callbacks "$1" failure)" -ge 1 ]; }
hook_running() { pgrep -f '^sleep 637.31$' >/dev/null; }
not() { ! "$@" 2>/dev/null; }
has_success() { [ "$(n_callbacks "$1" success)" -ge 1 ]; }
new_server() {
	local u
	u=$(new_uuid)
	mkdir -p "$WX_TEST_TMP/a/data/$u"
	panel_server "$u" 0
	echo "$u"
}
start() { panel_api POST /_emulator/transfers "{\"server\":\"$1\",\"source\":\"a\",\"destination\":\"b\"}" >/dev/null; }

# Held: 256 MiB stored at 1 MiB/s (a sparse file: nothing to read from disk).
U=$(new_server)
truncate -s 256M "$WX_TEST_TMP/a/data/$U/big.bin"
start "$U"
wait_for "bytes on the wire" 300 counter_above "$A_STATE" "$U" bytes_sent 0
W=$(rec_int "$A_STATE" "$U" pid)
SUP=$(field "$W" PPid)
is "$(field "$W" Name)" wingxfer-push "the record's pid is the push worker"
is "$(field "$W" Uid)" "0	0	0	0" "... uid 0 (it writes root's state directory)"
is "$(field "$W" CapEff)" 0000000000000004 "... with CAP_DAC_READ_SEARCH only"
is "$(field "$W" CapPrm)" 0000000000000004 "... (permitted too)"
is "$(field "$W" NoNewPrivs)" 1 "... NoNewPrivs 1"
is "$(field "$W" Seccomp)" 2 "... Seccomp 2 (filter)"
is "$(mem_count "$W" "$TOKEN_A")" 0 "... no copy of the node token in its memory"
is "$(field "$SUP" Name)" wingxfer-push "its parent is the supervisor"
ok "... whose memory has it (it reports to the panel; the scan works)" \
	test "$(mem_count "$SUP" "$TOKEN_A")" -ge 1
isnt_caps=$(field "$SUP" CapEff)
ok "... which keeps root's capabilities ($isnt_caps)" test "$isnt_caps" != 0000000000000004 -a "$isnt_caps" != 0000000000000000
is "$(field "$SUP" Seccomp)" 0 "... and is not confined"
HOOK="$HOOKS/$U.status"
is "$(sed -n 's/^ppid //p' "$HOOK")" "$SUP" "the stop hook was run by the supervisor"
is "$(sed -n 's/^CapEff:[[:space:]]*//p' "$HOOK")" "$isnt_caps" "... with root's capabilities"
is "$(sed -n 's/^NoNewPrivs:[[:space:]]*//p' "$HOOK")" 0 "... NoNewPrivs 0"
is "$(sed -n 's/^Seccomp:[[:space:]]*//p' "$HOOK")" 0 "... and no seccomp filter"
out=$(https_curl -X DELETE -w '\n%{http_code}' -H "Authorization: Bearer $TOKEN_A" "${NODE_URL[a]}/api/servers/$U/transfer")
is "${out##*$'\n'}" 202 "a cancel of the held transfer: 202"
wait_for "transfer $U ends" 300 finished "$U"
ok "... the worker stops" wait_worker "$A_STATE" "$U" 120
is "$(state_of "$U")" cancelled "... cancelled"
wait_for "failure callback of $U" 120 has_failure "$U"
nf=$(n_callbacks "$U" failure)
ok "... failure reported, at most once per node ($nf)" test "$nf" -ge 1 -a "$nf" -le 2
is "$(n_callbacks "$U" success)" 0 "... no success callback"
ok "... nothing installed on b" test ! -e "$WX_TEST_TMP/b/data/$U/big.bin"

# The worker stopped by a signal while the supervisor runs its stop hook:
# it asks the supervisor to abort, the hook is killed, the transfer fails once.
U=$(new_server)
: > "$WX_TEST_TMP/a/data/$U/hang"
start "$U"
wait_for "the stop hook runs" 300 hook_running
W=$(rec_int "$A_STATE" "$U" pid)
SUP=$(field "$W" PPid)
is "$(field "$W" Seccomp)" 2 "a worker waiting for its stop hook is already confined"
kill -TERM "$W"
wait_for "transfer $U ends" 300 finished "$U"
is "$(state_of "$U")" failed "the worker stopped by SIGTERM during the hook: failed"
like "$(json_get "$(src_status "$U")" '["error"]')" 'stopped by signal 15' "... saying so"
ok "... the hook was killed" wait_for "the hook to end" 120 not hook_running
wait_for "failure callback of $U" 120 has_failure "$U"
is "$(n_callbacks "$U" failure)" 1 "... one failure callback"
ok "... the worker is gone" wait_worker "$A_STATE" "$U" 120
ok "... and its supervisor" wait_for "the supervisor to exit" 120 not kill -0 "$SUP"

# A server with a file and a directory only their owner may read.
U=$(new_server)
python3 "$TREES" make "$WX_TEST_TMP/a/data/$U" --files 40 --seed 7 >/dev/null
mkdir -p "$WX_TEST_TMP/a/data/$U/private"
echo "owner only" > "$WX_TEST_TMP/a/data/$U/private/secret.txt"
chmod 600 "$WX_TEST_TMP/a/data/$U/private/secret.txt"
chmod 700 "$WX_TEST_TMP/a/data/$U/private"
chown -R "$NOBODY:$NOGROUP" "$WX_TEST_TMP/a/data/$U/private"
python3 "$TREES" manifest "$WX_TEST_TMP/a/data/$U" > "$WX_TEST_TMP/$U.before"
start "$U"
wait_for "transfer $U ends" 300 finished "$U"
is "$(state_of "$U")" completed "a confined worker moves a server"
python3 "$TREES" manifest "$WX_TEST_TMP/b/data/$U" > "$WX_TEST_TMP/$U.after" 2>/dev/null
ok "... byte-identical, with the file only its owner may read" \
	cmp -s "$WX_TEST_TMP/$U.before" "$WX_TEST_TMP/$U.after"
is "$(cat "$WX_TEST_TMP/b/data/$U/private/secret.txt" 2>/dev/null)" "owner only" "... whose content arrived"
wait_for "success callback of $U" 120 has_success "$U"
is "$(n_callbacks "$U" success)" 1 "... one success callback"
is "$(n_callbacks "$U" failure)" 0 "... no failure callback"
ok "... the worker is gone" wait_worker "$A_STATE" "$U" 120
node_stop a
node_stop b
done_testing
