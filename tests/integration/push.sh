#!/bin/bash
# wingxfer-push against a recording receiver (the destination's stand-in) and
# the panel emulator: the multipart shape, the archive's fidelity, backups and
# install logs, every kind of failing destination (exactly one failure
# callback each), cancel mid-stream, stop hooks, files changing under the
# archiver, and the worker run by hand.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
wx_tmpdir
panel_start
source_node "    stall_timeout: 3
    response_timeout: 5
    connect_timeout: 3"
TREES="$top_srcdir/tests/lib/trees.py"

new_server() { new_source_server "$DATA"; }
ncallbacks() { callbacks "$1" | grep -c . || true; }

# --- a realistic tree, end to end -------------------------------------------
U=$(new_server)
python3 "$TREES" make "$DATA/$U" --files 120 --big-mib 3 >/dev/null
mkfifo "$DATA/$U/console.fifo"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$DATA/$U/rcon.sock"
recv_start tree --capabilities gzip  # a wingxfer destination: links are sent as links
out=$(post_transfer "$CFG" "$U" "$RECV_URL")
is "$(status_of "$out")" 202 "tree: 202"
ok "tree: the worker finishes" wait_worker "$STATE" "$U"
is "$(rec "$STATE" "$U" '["status"]')" completed "tree: completed"
is "$(recv_last '["errors"]')" "[]" "tree: the multipart shape, part order, headers and checksums are right"
is "$(recv_last '["complete"]')" true "tree: the whole body arrived"
is "$(recv_last '["chunked"]')" true "tree: chunked transfer encoding"
like "$(recv_last '["chunks"]')" '^[1-9]' "tree: ... in chunks"
is "$(recv_last '["headers"]["authorization"]')" "$TEST_TOKEN" "tree: Authorization is the token verbatim"
like "$(recv_last '["headers"]["content-type"]')" '^multipart/form-data; boundary=[0-9a-f]{60}$' \
	"tree: a random 60-hex-digit boundary"
is "$(recv_parts)" "archive checksum checksum_archive" \
	"tree: parts archive, checksum, checksum_archive (no backups, no install log)"
ARCHIVE="$RECV_DIR/save/0-archive"
sum=$(sha256sum "$ARCHIVE" | cut -d' ' -f1)
is "$(rec "$STATE" "$U" '["extra"]["archive_sha256"]')" "$sum" "tree: the recorded checksum is the SHA-256 of the bytes received"
mkdir "$WX_TEST_TMP/x-tree"
ok "tree: the archive is a valid tar.gz" bsdtar -xpf "$ARCHIVE" -C "$WX_TEST_TMP/x-tree"
rm -f "$DATA/$U/console.fifo" "$DATA/$U/rcon.sock"
is "$(python3 "$TREES" manifest "$WX_TEST_TMP/x-tree")" "$(python3 "$TREES" manifest "$DATA/$U")" \
	"tree: extracted, it is identical (types, modes, sizes, contents, link targets, mtimes, UTF-8 and long names)"
tarinfo=$(python3 - "$ARCHIVE" <<'PY'
import sys, tarfile
t = tarfile.open(sys.argv[1])
ms = t.getmembers()
print("owners", sorted({(m.uid, m.gid, m.uname, m.gname) for m in ms}))
print("abs", [m.name for m in ms if m.name.startswith("/") or m.name.startswith("./") or ".." in m.name.split("/")])
print("dirs", sorted(m.name for m in ms if m.isdir() and m.name in ("empty-dir", "empty/nested/deeper")))
print("links", sum(1 for m in ms if m.issym()), "hard", sum(1 for m in ms if m.islnk()))
print("special", [m.name for m in ms if not (m.isdir() or m.isreg() or m.issym() or m.islnk())])
PY
)
like "$tarinfo" "owners \[\(0, 0, '', ''\)\]" "tree: uid/gid 0 and empty user/group names, as Wings"
like "$tarinfo" 'abs \[\]' "tree: names relative, no leading / or ./, no .."
like "$tarinfo" "dirs \['empty-dir', 'empty/nested/deeper'\]" "tree: empty directories are entries"
like "$tarinfo" 'links 4 hard 1' "tree: symlinks as links, the hard link's data once"
like "$tarinfo" 'special \[\]' "tree: the FIFO and the socket are left out"
like "$(cat "$STATE/transfers/$U.log")" 'skipped FIFO console.fifo' "tree: the skipped FIFO is logged"
like "$(cat "$STATE/transfers/$U.log")" 'skipped socket rcon.sock' "tree: the skipped socket is logged"
ev=$(events "$STATE" "$U")
is "$(printf '%s\n' "$ev" | grep -E '^transfer status' | tr '\n' '|')" \
	"transfer status: processing|transfer status: completed|" "tree: status events processing, completed"
like "$(printf '%s\n' "$ev" | tr '\n' '|')" \
	'Preparing to stream server data to destination\.\.\..*Streaming archive to destination\.\.\..*Finished streaming archive to destination\.' \
	"tree: Wings' log lines, in order"
is "$(rec "$STATE" "$U" '["bytes_read"]')" "$(rec "$STATE" "$U" '["bytes_total"]')" "tree: bytes read = the size walk's total"
is "$(rec "$STATE" "$U" '["files"]')" "$(rec "$STATE" "$U" '["extra"]["files_total"]')" "tree: files archived = files counted"
is "$(rec "$STATE" "$U" '["extra"]["skipped"]')" 2 "tree: two entries skipped"
is "$(ncallbacks "$U")" 0 "tree: no panel callback on success (the destination reports it)"
ok "tree: the server's data stays in place" test -f "$DATA/$U/server.properties" -o -d "$DATA/$U/world"
ok "tree: no cancel marker left behind" test ! -e "$STATE/transfers/$U.cancel"

# --- backups and the install log (Pelican / FeatherWings parts) -------------
U=$(new_server)
echo "eula=true" > "$DATA/$U/eula.txt"
B1=aaaaaaaa-1111-4222-8333-444444444444
B2=bbbbbbbb-1111-4222-8333-444444444444
mkdir -p "$NODE/backups/$U" "$NODE/logs/install"
head -c 300000 /dev/urandom > "$NODE/backups/$U/$B1.tar.gz"
printf 'installing...\ndone\n' > "$NODE/logs/install/$U.log"
recv_start backups
out=$(post_transfer "$CFG" "$U" "$RECV_URL" ",\"backups\":[\"$B1\",\"$B2\"]")
is "$(status_of "$out")" 202 "backups: 202"
wait_worker "$STATE" "$U"
is "$(rec "$STATE" "$U" '["status"]')" completed "backups: completed"
is "$(recv_last '["errors"]')" "[]" "backups: shape and every checksum right"
is "$(recv_parts)" "archive checksum checksum_archive backup_$B1.tar.gz checksum_backup_$B1.tar.gz install_logs" \
	"backups: the present backup, its checksum, then install_logs"
cmp -s "$RECV_DIR/save/3-backup_$B1.tar.gz" "$NODE/backups/$U/$B1.tar.gz"
ok "backups: the backup arrived byte for byte" test $? = 0
cmp -s "$RECV_DIR/save/5-install_logs" "$NODE/logs/install/$U.log"
ok "backups: the install log arrived byte for byte" test $? = 0
ev=$(events "$STATE" "$U")
like "$ev" "Backup $B2 was requested but is not on this node" "backups: the missing backup is named"
like "$ev" 'Backup 1/1 completed' "backups: progress per backup"
like "$ev" 'Finished streaming the install logs to destination\.' "backups: install logs line"

# --- a server of 0 bytes, and a 202 from the destination (FeatherWings) -----
U=$(new_server)
recv_start empty --status 202
post_transfer "$CFG" "$U" "$RECV_URL" >/dev/null
wait_worker "$STATE" "$U"
is "$(rec "$STATE" "$U" '["status"]')" completed "empty server: 202 from the destination counts as pushed"
is "$(recv_last '["errors"]')" "[]" "empty server: shape and checksum right"
is "$(bsdtar -tzf "$RECV_DIR/save/0-archive" | wc -l)" 0 "empty server: a valid, empty tar.gz"
is "$(rec "$STATE" "$U" '["bytes_total"]')" 0 "empty server: total 0"

# --- destinations that fail: the answer is recorded, the panel told once ----
fail_case() { # fail_case NAME EXPECTED-ERROR-REGEX RECEIVER-ARGS...  (or URL=...)
	local name=$1 want=$2; shift 2
	local u url
	u=$(new_server)
	head -c "${SIZE:-4000000}" /dev/urandom > "$DATA/$u/world.dat"
	if [ "${1:-}" = refuse ]; then
		url="http://127.0.0.1:$(free_port)/api/transfers"
	else
		recv_start "$name" "$@"
		url=$RECV_URL
	fi
	out=$(post_transfer "$CFG" "$u" "$url")
	is "$(status_of "$out")" 202 "$name: 202 (the failure comes later)"
	ok "$name: the worker ends" wait_worker "$STATE" "$u" 60
	is "$(rec "$STATE" "$u" '["status"]')" failed "$name: the transfer failed"
	like "$(rec "$STATE" "$u" '["error"]')" "$want" "$name: the record says why"
	like "$(events "$STATE" "$u")" 'transfer status: failure' "$name: a failure status event"
	is "$(callbacks "$u" | cut -d' ' -f1-2 | tr '\n' '|')" "failure 204|" "$name: exactly one failure callback, accepted"
	like "$(callbacks "$u")" "$want" "$name: the callback carries the reason"
	is "$(rec "$STATE" "$u" '["callback"]')" failure "$name: the record says the panel was told"
	ok "$name: the server's data stays in place" test -f "$DATA/$u/world.dat"
}
fail_case reject401 'HTTP 401: The required authorization headers were not present' \
	--mode reject --status 401 --error "The required authorization headers were not present in the request."
fail_case reject409 'HTTP 409: A server with this identifier already exists' \
	--mode reject --status 409 --error "A server with this identifier already exists on this instance."
fail_case late500 'HTTP 500: checksums do not match' --mode late --status 500 --error "checksums do not match"
fail_case refused 'before stopping the server, which was not stopped: The destination could not be reached: OPTIONS failed: (Couldn.t connect|Could not connect)' refuse
SIZE=24000000 fail_case stall 'No data could be sent to the destination for 3 s' --mode stall --after 65536
fail_case dropped 'could not be sent to the destination' --mode close --after 65536
fail_case mute 'did not answer within 5 s after the upload' --mode mute

# --- cancel mid-stream -------------------------------------------------------
U=$(new_server)
head -c 30000000 /dev/urandom > "$DATA/$U/region.mca"
recv_start cancel --mode slow --rate 1000000
post_transfer "$CFG" "$U" "$RECV_URL" >/dev/null
track_worker "$STATE" "$U"
wait_for "bytes on the wire" 30 counter_above "$STATE" "$U" bytes_sent 0
out=$(cgi wingxfer-source "$CFG" DELETE "/api/servers/$U/transfer" "Bearer token-src" </dev/null 2>/dev/null)
is "$(status_of "$out")" 202 "cancel: DELETE mid-stream: 202"
ok "cancel: the worker stops" wait_worker "$STATE" "$U" 20
is "$(rec "$STATE" "$U" '["status"]')" cancelled "cancel: the record says cancelled"
like "$(rec "$STATE" "$U" '["error"]')" 'cancelled' "cancel: ... and why"
is "$(events "$STATE" "$U" | grep '^transfer status' | tr '\n' '|')" \
	"transfer status: processing|transfer status: cancelling|transfer status: failure|" \
	"cancel: status events processing, cancelling, failure (as Wings)"
is "$(callbacks "$U" | cut -d' ' -f1 | tr '\n' '|')" "failure|" "cancel: exactly one failure callback"
wait_for "receiver saw the end" 20 bash -c "grep -q '\"event\": \"done\"' '$RECV_RECORD'"
is "$(recv_last '["complete"]')" false "cancel: the destination never got a complete body (no torn archive accepted)"
is "$(recv_last '["closed"]')" false "cancel: ... and no closing boundary"

# --- cancel while the capability probe waits -----------------------------------
# A destination that accepts the connection and never answers OPTIONS: the
# probe would wait connect_timeout + 15 s (75 s here); DELETE must end the
# worker within about a second, before any body byte is sent.
CFG_PROBE="$WX_TEST_TMP/probe.yml"
sed 's/^    connect_timeout: 3$/    connect_timeout: 60/' "$CFG" > "$CFG_PROBE"
U=$(new_server)
echo data > "$DATA/$U/file.txt"
recv_start deaf --mode deaf
post_transfer "$CFG_PROBE" "$U" "$RECV_URL" >/dev/null
track_worker "$STATE" "$U"
probe_cancel() { # LABEL NOTE: DELETE now; the worker of $U is cancelled within 30 s
	local t0 took out
	t0=$(date +%s)
	out=$(cgi wingxfer-source "$CFG_PROBE" DELETE "/api/servers/$U/transfer" "Bearer token-src" </dev/null 2>/dev/null)
	is "$(status_of "$out")" 202 "$1: DELETE: 202"
	ok "$1: the worker ends" wait_worker "$STATE" "$U" 120
	is "$(rec "$STATE" "$U" '["status"]')" cancelled "$1: the record says cancelled"
	took=$(( $(rec "$STATE" "$U" '["finished_at"]') - t0 ))
	ok "$1: it ended within 30 s of DELETE (${took} s; $2)" test "$took" -lt 30
}
wait_for "the OPTIONS probe reached the destination" 30 grep -q '"event": "options-held"' "$RECV_RECORD"
probe_cancel "cancel during the probe" "the probe alone would wait 75 s"
is "$(recv_seen)" 0 "cancel during the probe: no POST was made (stopped during the probe)"
is "$(rec "$STATE" "$U" '["bytes_sent"]')" 0 "cancel during the probe: no body byte was sent"
is "$(ncallbacks "$U")" 1 "cancel during the probe: exactly one failure callback"

# The same while the probe is still connecting: a listener whose accept queue
# is full drops the SYNs, so connect() waits for connect_timeout (60 s here).
python3 - "$WX_TEST_TMP/full.port" <<'PY' &
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
port = s.getsockname()[1]
fill = []
for _ in range(4):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(("127.0.0.1", port))
    fill.append(c)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(port))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(3600)
PY
FULL_PID=$!
track_pid "$FULL_PID"
wait_for "the full listener" 20 test -s "$WX_TEST_TMP/full.port"
FULL_PORT=$(cat "$WX_TEST_TMP/full.port")
syn_sent() { ss -Htnp state syn-sent "( dport = :$FULL_PORT )" | grep -q wingxfer-push; }
U=$(new_server)
echo data > "$DATA/$U/file.txt"
post_transfer "$CFG_PROBE" "$U" "http://127.0.0.1:$FULL_PORT/api/transfers" >/dev/null
track_worker "$STATE" "$U"
wait_for "the probe's connection attempt" 30 syn_sent
probe_cancel "cancel while the probe connects" "connect_timeout is 60 s"
stop_pid "$FULL_PID"

# --- the tree rules both sides share (docs/archive-rules.md) ---------------------
# What the destination refuses is refused here, before a byte is sent.
deep_tree() { # DIR LEVELS NAME-LENGTH: LEVELS nested directories, a file at the bottom
	python3 - "$@" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
name = "d" * int(sys.argv[3])
for _ in range(int(sys.argv[2])):
    os.mkdir(name, 0o755, dir_fd=fd)
    nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    fd = nfd
with open(os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
    f.write("at the bottom\n")
os.close(fd)
PY
}
rule_case() { # NAME LEVELS NAME-LENGTH STATUS [ERROR-REGEX]
	local name=$1 levels=$2 len=$3 want=$4 err=${5:-}
	U=$(new_server)
	deep_tree "$DATA/$U" "$levels" "$len"
	recv_start "rule-$name"
	post_transfer "$CFG" "$U" "$RECV_URL" >/dev/null
	wait_worker "$STATE" "$U" 120
	is "$(rec "$STATE" "$U" '["status"]')" "$want" "rules: $name: $want"
	if [ -n "$err" ]; then
		like "$(rec "$STATE" "$U" '["error"]')" "$err" "rules: $name: saying why"
		is "$(recv_seen)" 0 "rules: $name: nothing was sent"
	else
		is "$(recv_last '["complete"]')" true "rules: $name: the whole body arrived"
	fi
	rm -rf "${DATA:?}/$U"
}
rule_case "511 directories and a file (512 levels)" 511 1 completed
rule_case "512 directories" 512 1 failed 'nested more than 512 levels deep are not supported'
rule_case "a path of 4 100 bytes (17 levels of 240-byte names)" 17 240 failed \
	'paths longer than 4095 bytes are not supported'

# --- a file that changes size while it is read ---------------------------------
# The receiver holds the body after 1 MB until the file has grown, so the
# worker is still inside the 64 MB file (socket buffers and the compressor
# hold far less) whatever the machine's speed; its stall_timeout outlasts the
# hold on a busy machine.
CFG_GROW="$WX_TEST_TMP/growing.yml"
sed 's/^    stall_timeout: 3$/    stall_timeout: 600/' "$CFG" > "$CFG_GROW"
U=$(new_server)
head -c 64000000 /dev/urandom > "$DATA/$U/latest.log"
RELEASE="$WX_TEST_TMP/growing.release"
rm -f "$RELEASE"
recv_start growing --mode hold --after 1000000 --release "$RELEASE"
post_transfer "$CFG_GROW" "$U" "$RECV_URL" >/dev/null
track_worker "$STATE" "$U"
wait_for "the receiver holds the body" 60 bash -c "grep -q '\"event\": \"held\"' '$RECV_RECORD'"
head -c 1000 /dev/urandom >> "$DATA/$U/latest.log"
touch "$RELEASE"
ok "growing file: the worker ends" wait_worker "$STATE" "$U" 60
is "$(rec "$STATE" "$U" '["status"]')" failed "growing file: the transfer fails"
like "$(rec "$STATE" "$U" '["error"]')" 'latest\.log changed size while it was read' "growing file: naming the file"
wait_for "receiver saw the end" 20 bash -c "grep -q '\"event\": \"done\"' '$RECV_RECORD'"
is "$(recv_last '["closed"]')" false "growing file: the torn archive was never completed"

# --- stop hooks ----------------------------------------------------------------
HOOKS="$WX_TEST_TMP/hooks"
mkdir -p "$HOOKS"
cat > "$HOOKS/stop-ok" <<'SH'
#!/bin/sh
echo "$SERVER_UUID $SERVER_DIR" > "$SERVER_DIR/../stopped-$SERVER_UUID"
SH
printf '#!/bin/sh\necho "container is gone: docker said no" >&2\nexit 3\n' > "$HOOKS/stop-fail"
printf '#!/bin/sh\nexec sleep 637.25\n' > "$HOOKS/stop-hang"
printf '#!/bin/sh\necho killed > "$SERVER_DIR/../killed-$SERVER_UUID"\n' > "$HOOKS/kill-ok"
chmod 755 "$HOOKS"/*
hook_node() { # hook_node NAME STOP [KILL]
	local kill=${3:+"      kill: [$HOOKS/$3]"}
	make_node_config "$WX_TEST_TMP/$1" src "    stop_timeout: 1
    stall_timeout: 3
    hooks:
      stop: [$HOOKS/$2]
$kill"
	sed -i "s|^  data: .*|  data: $DATA|; s|^    state_directory: .*|    state_directory: $STATE|;
		s|^token_id: .*|token_id: id-src|; s|^token: .*|token: token-src|" "$WX_TEST_TMP/$1/config.yml"
}
CFG_OK=$(hook_node hook-ok stop-ok)
U=$(new_server)
recv_start hook-ok
post_transfer "$CFG_OK" "$U" "$RECV_URL" >/dev/null
wait_worker "$STATE" "$U"
is "$(rec "$STATE" "$U" '["status"]')" completed "stop hook ok: completed"
is "$(cat "$DATA/stopped-$U" 2>/dev/null)" "$U $DATA/$U" "stop hook ok: ran with SERVER_UUID and SERVER_DIR"
like "$(events "$STATE" "$U")" 'The server is stopped\.' "stop hook ok: logged"

CFG_FAIL=$(hook_node hook-fail stop-fail)
U=$(new_server)
recv_start hook-fail
post_transfer "$CFG_FAIL" "$U" "$RECV_URL" >/dev/null
wait_worker "$STATE" "$U"
is "$(rec "$STATE" "$U" '["status"]')" failed "stop hook fails: the transfer fails"
like "$(rec "$STATE" "$U" '["error"]')" 'could not be stopped.*exited with status 3: container is gone: docker said no' \
	"stop hook fails: the record has the exit status and the hook's stderr"
is "$(recv_seen)" 0 "stop hook fails: nothing was sent"
is "$(ncallbacks "$U")" 1 "stop hook fails: exactly one failure callback"

CFG_HANG=$(hook_node hook-hang stop-hang)
U=$(new_server)
recv_start hook-hang
post_transfer "$CFG_HANG" "$U" "$RECV_URL" >/dev/null
wait_worker "$STATE" "$U" 30
is "$(rec "$STATE" "$U" '["status"]')" failed "stop hook times out, no kill hook: the transfer fails"
like "$(rec "$STATE" "$U" '["error"]')" 'did not finish within 1 s and was killed' "stop hook times out: saying so"
is "$(recv_seen)" 0 "stop hook times out: nothing was sent"
ok "stop hook times out: the hook's process is gone" bash -c "! pgrep -f '^sleep 637.25$' >/dev/null"
is "$(ncallbacks "$U")" 1 "stop hook times out: exactly one failure callback"

# A cancel while the stop hook runs kills the hook and ends the transfer.
CFG_SLOW=$(hook_node hook-slow stop-hang)
sed -i 's/^    stop_timeout: 1$/    stop_timeout: 120/' "$CFG_SLOW"
U=$(new_server)
recv_start hook-slow
post_transfer "$CFG_SLOW" "$U" "$RECV_URL" >/dev/null
track_worker "$STATE" "$U"
wait_for "the stop hook runs" 20 phase_is "$STATE" "$U" stopping
wait_for "the hook process" 20 pgrep -f '^sleep 637.25$' >/dev/null
out=$(cgi wingxfer-source "$CFG_SLOW" DELETE "/api/servers/$U/transfer" "Bearer token-src" </dev/null 2>/dev/null)
is "$(status_of "$out")" 202 "cancel during the stop hook: 202"
ok "cancel during the stop hook: the worker stops" wait_worker "$STATE" "$U" 20
is "$(rec "$STATE" "$U" '["status"]')" cancelled "cancel during the stop hook: cancelled"
ok "cancel during the stop hook: the hook was killed" bash -c "! pgrep -f '^sleep 637.25$' >/dev/null"
is "$(recv_seen)" 0 "cancel during the stop hook: nothing was sent"
is "$(ncallbacks "$U")" 1 "cancel during the stop hook: exactly one failure callback"

CFG_KILL=$(hook_node hook-kill stop-hang kill-ok)
U=$(new_server)
recv_start hook-kill
post_transfer "$CFG_KILL" "$U" "$RECV_URL" >/dev/null
wait_worker "$STATE" "$U" 30
is "$(rec "$STATE" "$U" '["status"]')" completed "stop hook times out, kill hook works: completed"
ok "kill hook: it ran" test -f "$DATA/killed-$U"
like "$(events "$STATE" "$U")" 'running hooks.kill' "kill hook: logged"

# --- by hand -------------------------------------------------------------------
U=$(new_server)
echo "motd=hand" > "$DATA/$U/server.properties"
recv_start hand
out=$(printf '%s\n' "$TEST_TOKEN" | "$WX_BIN/wingxfer-push" --config "$CFG" --url "$RECV_URL" \
	--token-file - "$U" 2>&1)
is "$?" 0 "by hand: exit status 0 when the destination accepted it"
is "$(rec "$STATE" "$U" '["status"]')" completed "by hand: completed"
like "$(rec "$STATE" "$U" '["extra"]["started_by"]')" hand "by hand: the record says so"
is "$(recv_last '["errors"]')" "[]" "by hand: the same upload"
out=$("$WX_BIN/wingxfer-push" --config "$CFG" "$U" </dev/null 2>&1)
is "$?" 1 "by hand without a token: exit 1"
like "$out" 'no transfer token: pass --token-file' "... saying how to give it"
out=$(printf 'eyJ.no.bearer\n' | "$WX_BIN/wingxfer-push" --config "$CFG" --token-file - "$U" 2>&1)
is "$?" 1 "by hand with a token not starting with Bearer: exit 1"
like "$out" 'must be one line "Bearer <jwt>"' "... saying the expected form"
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(3600)' "$STATE/transfers/$U.lock" &
HOLDER=$!
track_pid $HOLDER
wait_for "lock holder" 10 bash -c "! flock -n '$STATE/transfers/$U.lock' true"
out=$(printf '%s\n' "$TEST_TOKEN" | "$WX_BIN/wingxfer-push" --config "$CFG" --token-file - "$U" 2>&1)
is "$?" 1 "by hand while a transfer runs: exit 1"
like "$out" 'already running on this node' "... saying a transfer runs"
stop_pid $HOLDER
out=$("$WX_BIN/wingxfer-push" --config "$CFG" not-a-uuid 2>&1)
is "$?" 2 "by hand with a bad UUID: usage error 2"
out=$("$WX_BIN/wingxfer-push" --config "$CFG" --lock-fd 3 "$U" 2>&1)
is "$?" 2 "--lock-fd without --token-fd: usage error 2"
# Again, to the recorded destination, on a terminal: progress is shown there.
out=$(printf '%s\n' "$TEST_TOKEN" > "$WX_TEST_TMP/jwt"; script -qec \
	"'$WX_BIN/wingxfer-push' --config '$CFG' --token-file '$WX_TEST_TMP/jwt' $U" /dev/null 2>&1)
like "$out" 'Streaming archive to destination' "by hand on a terminal: progress lines shown"
is "$(rec "$STATE" "$U" '["status"]')" completed "by hand again (the recorded url): completed"
is "$(recv_count)" 2 "by hand again: a second upload"
done_testing
