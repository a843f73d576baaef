#!/bin/bash
# The destination's extractor is not root and is confined (issue 17,
# docs/security.md).
#  1. wx-confine-probe enters the confinement with the function the
#     receiving child uses (rx_sandbox_enter) and tries, from inside: writing
#     outside staging (to a file everyone may write, so only the
#     confinement can refuse), creating in /tmp, reading /etc/passwd, fork,
#     signalling its parent, setuid(0) — each refused — and execve, sockets,
#     ptrace — each killed by SIGSYS; writing inside staging works.  Dropped
#     to nobody, without a drop, and started as nobody (not root).
#  2. A real transfer through Apache with TLS to a node whose system.user is
#     nobody: while the upload is held after 640 KiB (the test feeds curl
#     through a pipe), the process extracting into staging (its cwd) runs as
#     nobody with no capabilities, NoNewPrivs 1 and Seccomp 2, and its
#     parent is the root FastCGI worker; then the transfer completes and the
#     files belong to nobody.
#  3. The extractor killed mid-transfer: 500 with a clear error, nothing
#     installed, no staging left, the record failed.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
. "$top_srcdir/tests/lib/proc.sh"
webstack_init "the privilege drop"
panel_start
NOBODY=$(id -u nobody)
NOGROUP=$(id -g nobody)
PROBE="$top_builddir/tests/helpers/wx-confine-probe"

# probe_run NAME UID GID: a fresh staging/parts pair and the probe's TAP,
# renumbered into this test's.
probe_run() {
	local d="$WX_TEST_TMP/probe-$1" line
	mkdir -p "$d/stage" "$d/stage.parts" "$d/open"
	chmod 777 "$d/open"
	: > "$d/open/victim"
	chmod 666 "$d/open/victim"
	[ "$2" = -1 ] || chown "$2:$3" "$d/stage" "$d/stage.parts"
	${AS:-} "$PROBE" "$d/stage" "$d/open/victim" "$2" "$3" > "$d/tap" 2> "$d/err"
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "$1: ${line#ok [0-9]* - }" true ;;
		"not ok "*) ok "$1: ${line#not ok [0-9]* - }" false ;;
		esac
	done < "$d/tap"
	is "$(grep -c '^ok ' "$d/tap")" 18 "$1: all 18 probes ran and held"
	is "$(cat "$d/open/victim")" "" "$1: the file outside staging is untouched"
	ok "$1: nothing was created in /tmp" test ! -e /tmp/wx-confine-probe-escape
	[ -s "$d/err" ] && sed 's/^/# /' "$d/err"
}
rm -f /tmp/wx-confine-probe-escape      # the probe's own name, only ever made by a failure
probe_run "dropped to nobody" "$NOBODY" "$NOGROUP"
probe_run "no drop (uid -1)" -1 -1
# Started as an ordinary user (as the tests that do not need root run the
# programs): the drop is a no-op, the confinement the same.
AS="setpriv --reuid=$NOBODY --regid=$NOGROUP --clear-groups" probe_run "not root" "$NOBODY" "$NOGROUP"

# --- a real transfer, held half-sent -------------------------------------
node_setup c-apache
DEST_DIR="$WX_TEST_TMP/c-apache"
DATA="$DEST_DIR/data"
sed -i "s/^    uid: .*/    uid: $NOBODY/; s/^    gid: .*/    gid: $NOGROUP/" "$DEST_DIR/config.yml"
NODE_TOKEN=$(random_token)     # to look for in the extractor's memory
sed -i "s/^token: .*/token: $NODE_TOKEN/" "$DEST_DIR/config.yml"
node_start c-apache apache || { echo "not ok - apache does not start"; done_testing; exit 1; }
URL=${NODE_URL[c-apache]}
panel_node dest id-c-apache "$NODE_TOKEN" "$URL"

mkdir -p "$WX_TEST_TMP/src/dir"
head -c 3000000 /dev/urandom > "$WX_TEST_TMP/src/blob.bin"
echo hello > "$WX_TEST_TMP/src/dir/a.txt"
tar -C "$WX_TEST_TMP/src" -czf "$WX_TEST_TMP/t.tgz" .
body_for "$WX_TEST_TMP/t.body" "$WX_TEST_TMP/t.tgz"
# Held after 640 KiB: the handler reads 256 KiB at a time, so the
# extractor has its first read and is in staging, and little is left in
# the pipeline (Apache's RequestReadTimeout ends a body that stays held
# for long; the checks below take well under a second).
HALF=$((640 * 1024))

# held_upload UUID: starts curl reading the body from a pipe that fd 6
# writes, and sends the first HALF bytes; CURL_PID.
held_upload() {
	rm -f "$WX_TEST_TMP/feed" "$WX_TEST_TMP/code"
	mkfifo "$WX_TEST_TMP/feed"
	https_curl --http1.1 -o "$WX_TEST_TMP/resp" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer $(token_for "$1")" -H "Content-Type: $CT" \
		-T - "$URL/api/transfers" < "$WX_TEST_TMP/feed" > "$WX_TEST_TMP/code" 2>/dev/null &
	CURL_PID=$!
	track_pid "$CURL_PID"
	exec 6> "$WX_TEST_TMP/feed"
	head -c "$HALF" "$WX_TEST_TMP/t.body" >&6
}
finish_upload() {
	tail -c +$((HALF + 1)) "$WX_TEST_TMP/t.body" >&6
	exec 6>&-
	wait_for "the upload to end" 60 bash -c "! kill -0 $CURL_PID 2>/dev/null"
	CODE=$(cat "$WX_TEST_TMP/code")
	RESP=$(cat "$WX_TEST_TMP/resp" 2>/dev/null)
}
# extractor_of UUID: the pid of the process whose cwd is the staging
# directory (rx_extract works from there), in EXTRACTOR.  One find for all
# of /proc: a readlink per process costs a fork each, which on a loaded
# machine made one pass outlast the 60 s Apache holds a silent body.
extractor_of() {
	local hit
	hit=$(find /proc/[0-9]*/cwd -maxdepth 0 -lname "$DATA/.wingxfer-staging/$1" 2>/dev/null | head -n 1)
	[ -n "$hit" ] || return 1
	hit=${hit#/proc/}
	EXTRACTOR=${hit%/cwd}
}

# why_not: what the node was doing when a wait timed out.
why_not() {
	ps -eo pid,ppid,user,stat,wchan:24,cmd | grep '[w]ingxfer-dest' | sed 's/^/# /'
	node_log c-apache | tail -n 20 | sed 's/^/# /'
	tail -n 5 "$DEST_DIR/web/error.log" 2>/dev/null | sed 's/^/# /'
}
U=$(new_server)
held_upload "$U"
wait_for "a process extracting into staging" 60 extractor_of "$U" || why_not
PARENT=$(field "$EXTRACTOR" PPid)
is "$(field "$EXTRACTOR" Uid)" "$NOBODY	$NOBODY	$NOBODY	$NOBODY" "the extractor runs as system.user (nobody)"
is "$(field "$EXTRACTOR" Gid)" "$NOGROUP	$NOGROUP	$NOGROUP	$NOGROUP" "... with its group"
is "$(field "$EXTRACTOR" Groups | tr -d " ")" "$NOGROUP" "... and no other groups"
is "$(field "$EXTRACTOR" CapEff)" 0000000000000000 "... with no capabilities"
is "$(field "$EXTRACTOR" NoNewPrivs)" 1 "... NoNewPrivs 1"
is "$(field "$EXTRACTOR" Seccomp)" 2 "... Seccomp 2 (filter)"
is "$(awk '/^Max core file size/ { print $5 }' "/proc/$EXTRACTOR/limits")" 0 "... no core dumps"
is "$(mem_count "$EXTRACTOR" "$NODE_TOKEN")" 0 "... no copy of the node token in its memory"
is "$(field "$PARENT" Name)" wingxfer-destin "its parent is the wingxfer-destination worker"
ok "... whose memory has it (it checks tokens with it; the scan works)" \
	test "$(mem_count "$PARENT" "$NODE_TOKEN")" -ge 1
is "$(field "$PARENT" Uid | cut -f1)" 0 "... which runs as root (it renames into place, calls the panel)"
finish_upload
is "$CODE" 200 "the held transfer completes: 200"
ok "... byte-identical" cmp -s "$WX_TEST_TMP/src/blob.bin" "$DATA/$U/blob.bin"
is "$(stat -c %u:%g "$DATA/$U/blob.bin")" "$NOBODY:$NOGROUP" "... the files belong to system.user"
is "$(stat -c %u "$DATA/$U/dir/a.txt")" "$NOBODY" "... in subdirectories too"
is "$(stat -c %u "$DATA/$U")" "$NOBODY" "... and the server directory"
ok "... no staging or parts directory left" test ! -e "$DATA/.wingxfer-staging/$U" -a \
	! -e "$DATA/.wingxfer-staging/$U.parts"

# --- the extractor dies mid-transfer -------------------------------------
U=$(new_server)
held_upload "$U"
wait_for "a process extracting into staging" 60 extractor_of "$U" || why_not
kill -KILL "$EXTRACTOR"
finish_upload
is "$CODE" 500 "the extractor killed mid-transfer: 500"
like "$(json_get "$RESP" '["error"]')" "extractor process ended unexpectedly" "... saying so"
ok "... nothing installed, no staging left" test ! -e "$DATA/$U" -a \
	! -e "$DATA/.wingxfer-staging/$U" -a ! -e "$DATA/.wingxfer-staging/$U.parts"
is "$(record_of "$U" '["status"]')" failed "... the record says failed"
is "$(callbacks "$U" failure)" 1 "... the panel got one failure callback"
node_stop c-apache
done_testing
