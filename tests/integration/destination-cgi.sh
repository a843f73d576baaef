#!/bin/bash
# wingxfer-destination run by hand as CGI (body on stdin), against the panel
# emulator: a tree arrives byte-identical with and without CONTENT_LENGTH;
# every refusal of POST /api/transfers happens before a byte of the body is
# read; failures clean up, record why and tell the panel; hostile archives
# leave nothing outside staging; checksums, hook, backups, limits, cancel.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
wx_tmpdir
panel_start
dest_node
STAGING="$DATA/.wingxfer-staging"

# --- a whole server arrives ------------------------------------------------
make_tree "$WX_TEST_TMP/src" --files 150
chmod 4755 "$WX_TEST_TMP/src/config" 2>/dev/null
tar -C "$WX_TEST_TMP/src" -czf "$WX_TEST_TMP/tree.tgz" .
chmod u-s "$WX_TEST_TMP/src/config"
body_for "$WX_TEST_TMP/tree.body" "$WX_TEST_TMP/tree.tgz"

U=$(new_server)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
is "$(status_of "$OUT")" 200 "a tree with CONTENT_LENGTH: 200"
J=$(body_of "$OUT")
ok "it is installed byte-identical (contents, types, modes, link targets, mtimes)" \
	same_tree "$WX_TEST_TMP/src" "$DATA/$U"
is "$(json_get "$J" '["checksum"]')" verified "the summary says the checksum was verified"
is "$(json_get "$J" '["sha256"]')" "$(sha256sum "$WX_TEST_TMP/tree.tgz" | cut -d' ' -f1)" \
	"the summary has the SHA-256 of the archive bytes"
is "$(json_get "$J" '["bytes"]')" "$(stat -c %s "$WX_TEST_TMP/tree.tgz")" "bytes = archive size"
like "$(json_get "$J" '["files"]')" '^[0-9]{3}$' "the summary counts files"
is "$(json_get "$J" '["panel"]')" notified "the summary says the panel was told"
is "$(callbacks "$U" success)" 1 "the panel got exactly one success callback"
is "$(stat -c %a "$DATA/$U/config")" 755 "a setuid bit does not survive (dir 4755 -> 755)"
ok "the empty directories arrived" test -d "$DATA/$U/empty/nested/deeper"
ok "a 200-character path arrived" test -n "$(find "$DATA/$U/deep" -type f -name 'xxxx*')"
is "$(readlink "$DATA/$U/unix_args.txt")" libraries/net/minecraftforge/unix_args.txt \
	"a relative symlink keeps its target"
is "$(readlink "$DATA/$U/config/localtime")" /usr/share/zoneinfo/UTC "an absolute symlink is kept, not followed"
ok "staging is gone" test ! -e "$STAGING/$U"
is "$(record_of "$U" '["status"]')" completed "the record says completed"
is "$(record_of "$U" '["bytes_read"]')" "$(stat -c %s "$WX_TEST_TMP/tree.body")" "the record counts body bytes"
ev="$DEST_DIR/state/transfers/$U.events"
like "$(cat "$ev")" '"event":"transfer status","args":\["success"\]' "events: transfer status success"
like "$(cat "$ev")" '"transfer logs","args":\["Transfer complete' "events: a transfer logs line in words"
out=$(cgi wingxfer-destination "$DEST_DIR/config.yml" GET "/api/transfers/$U" "Bearer token-dest" 2>/dev/null)
is "$(json_get "$(body_of "$out")" '["state"]')" completed "GET /api/transfers/<uuid> shows completed"
is "$(json_get "$(body_of "$out")" '["files"]')" "$(json_get "$J" '["files"]')" "... with the file count"

U=$(new_server)
NOCL=1 dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
is "$(status_of "$OUT")" 200 "the same without CONTENT_LENGTH (read to EOF): 200"
ok "... byte-identical" same_tree "$WX_TEST_TMP/src" "$DATA/$U"

# --- refused before the body ------------------------------------------------
U=$(new_server)
refused() { # refused STATUS PATTERN DESCRIPTION  (uses OUT, BODY_READ)
	is "$(status_of "$OUT")" "$1" "$3: $1"
	like "$(json_get "$(body_of "$OUT")" '["error"]')" "$2" "$3: says why"
	is "$BODY_READ" 0 "$3: no byte of the body was read"
}
dest_post "" "$WX_TEST_TMP/tree.body"
refused 401 'no Authorization header' "no Authorization"
is "$(header_of "$OUT" WWW-Authenticate)" Bearer "... with WWW-Authenticate: Bearer"
dest_post "x y" "$WX_TEST_TMP/tree.body"
refused 401 'whitespace' "a malformed Authorization"
TOKEN=$(token_for "$U")
dest_post "${TOKEN}x" "$WX_TEST_TMP/tree.body"
refused 401 'signature' "a token with a bad signature"
like "$(header_of "$OUT" WWW-Authenticate)" 'invalid_token' "... WWW-Authenticate says invalid_token"
unlike "$OUT" "${TOKEN:0:40}" "... the answer does not echo the token"
unlike "$(cat "$WX_TEST_TMP/dest.err")" "${TOKEN:0:40}" "... nor does the log"
dest_post "$(token_for "$U" '"key":"another-node"')" "$WX_TEST_TMP/tree.body"
refused 401 'not signed with this node' "a token signed with another node's token"
dest_post "$(token_for "$U" '"alg":"none"')" "$WX_TEST_TMP/tree.body"
refused 401 'alg none' "an unsigned (alg none) token"
dest_post "$(token_for "$U" '"alg":"HS512"')" "$WX_TEST_TMP/tree.body"
refused 401 'HS512' "an HS512 token"
dest_post "$(token_for "$U" '"exp_offset":-5')" "$WX_TEST_TMP/tree.body"
refused 401 'expired' "an expired token"
dest_post "$(token_for "$U" '"claims":{"exp":null}')" "$WX_TEST_TMP/tree.body"
refused 401 'no exp' "a token without exp"
dest_post "$(token_for "$U" '"claims":{"exp":4102444800.5}')" "$WX_TEST_TMP/tree.body"
refused 401 'exp claim is not an integer' "a float exp"
dest_post "$(token_for "$U" '"claims":{"nbf":4102444800}')" "$WX_TEST_TMP/tree.body"
refused 401 'not valid before' "an nbf in the future"
dest_post "$(token_for "$U" '"claims":{"sub":null}')" "$WX_TEST_TMP/tree.body"
refused 401 'no sub' "a token without sub"
dest_post "$(token_for "$U" '"claims":{"sub":"srv-1"}')" "$WX_TEST_TMP/tree.body"
refused 401 'not a server UUID' "a sub that is not a UUID"
dest_post "$(token_for "$U" '"scope":null')" "$WX_TEST_TMP/tree.body"
refused 403 'no scope claim' "a token without scope"
dest_post "$(token_for "$U" '"scope":"websocket"')" "$WX_TEST_TMP/tree.body"
refused 403 "does not include 'transfer'" "a websocket token"
exec 3<"$WX_TEST_TMP/tree.body"
OUT=$(cgi wingxfer-destination "$DEST_DIR/config.yml" POST /api/transfers "Bearer $(token_for "$U")" \
	CONTENT_TYPE=application/json CONTENT_LENGTH=10 <&3 2>/dev/null)
BODY_READ=$(awk '/^pos:/{print $2}' /proc/$$/fdinfo/3); exec 3<&-
refused 415 'not multipart/form-data' "a body that is not multipart"
exec 3<"$WX_TEST_TMP/tree.body"
OUT=$(cgi wingxfer-destination "$DEST_DIR/config.yml" POST /api/transfers "Bearer $(token_for "$U")" \
	CONTENT_TYPE="multipart/form-data; boundary=$(printf 'b%.0s' $(seq 71))" CONTENT_LENGTH=10 <&3 2>/dev/null)
BODY_READ=$(awk '/^pos:/{print $2}' /proc/$$/fdinfo/3); exec 3<&-
refused 400 'longer than 70' "a boundary over 70 characters"
ok "none of these left a record" test ! -e "$DEST_DIR/state/transfers/$U.json"
is "$(callbacks "$U" failure)" 0 "none of these told the panel anything"

# A transfer in progress (its lock held by a live process).
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(3600)' "$DEST_DIR/state/transfers/$U.lock" &
LOCKER=$!
track_pid $LOCKER
wait_for "lock held" 5 bash -c "! flock -n '$DEST_DIR/state/transfers/$U.lock' true"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
refused 409 'already in progress' "a transfer of the server in progress"
stop_pid $LOCKER
# A dead transfer the watchdog has not cleaned up yet.
printf '{"uuid":"%s","role":"destination","status":"processing","phase":"receiving","pid":1}\n' "$U" \
	> "$DEST_DIR/state/transfers/$U.json"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
refused 409 'watchdog' "an unfinished transfer whose process died"
rm -f "$DEST_DIR/state/transfers/$U.json"
# The server directory already holds data; an empty one is fine.
mkdir -p "$DATA/$U" && touch "$DATA/$U/server.properties"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
refused 409 'already has data' "a server directory with data"
rm -f "$DATA/$U/server.properties"
# A token starts one transfer.
TOKEN=$(token_for "$U")
dest_post "$TOKEN" "$WX_TEST_TMP/tree.body"
is "$(status_of "$OUT")" 200 "into an empty server directory: 200"
rm -rf "$DATA/$U"
panel_api POST /_emulator/transfers "{\"server\":\"$U\",\"notify\":false}" >/dev/null
dest_post "$TOKEN" "$WX_TEST_TMP/tree.body"
refused 409 'already used' "the same token a second time"
ok "... and nothing was installed" test ! -e "$DATA/$U"

# Free space below disk_reserve: refused before the body, but the transfer
# had started (token spent): the panel hears of the failure.
cp "$DEST_DIR/config.yml" "$DEST_DIR/config.good"
sed -i 's/^    disk_reserve: 0$/    disk_reserve: 1000000GiB/' "$DEST_DIR/config.yml"
U=$(new_server)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
refused 507 'Not enough disk space on this node' "free space below system.transfers.disk_reserve"
is "$(record_of "$U" '["status"]')" failed "... the record says failed"
is "$(callbacks "$U" failure)" 1 "... the panel got one failure callback"
cp "$DEST_DIR/config.good" "$DEST_DIR/config.yml"
# The installer step: the panel does not know the server.
U=$(new_uuid)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
refused 502 'panel refused to give' "the panel refuses the server's configuration (404)"
like "$(record_of "$U" '["error"]')" 'HTTP 404' "... the record has the panel's answer"

# --- failures while receiving --------------------------------------------
gone() { # gone UUID: no server directory, no staging left
	test ! -e "$DATA/$1" && test ! -e "$STAGING/$1"
}
failed_cleanly() { # failed_cleanly UUID STATUS PATTERN DESCRIPTION
	is "$(status_of "$OUT")" "$2" "$4: $2"
	like "$(json_get "$(body_of "$OUT")" '["error"]')" "$3" "$4: says why"
	ok "$4: no server directory and no staging left" gone "$1"
	is "$(record_of "$1" '["status"]')" failed "$4: the record says failed"
	is "$(callbacks "$1" failure)" 1 "$4: the panel got one failure callback"
}
U=$(new_server)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body" CONTENT_LENGTH=$(( $(stat -c %s "$WX_TEST_TMP/tree.body") + 1000 ))
failed_cleanly "$U" 400 'cut off' "a body shorter than CONTENT_LENGTH"
U=$(new_server)
python3 "$top_srcdir/tests/lib/multipart.py" --boundary "$BOUNDARY" --no-close "$WX_TEST_TMP/open.body" \
	"archive=@$WX_TEST_TMP/tree.tgz"
NOCL=1 dest_post "$(token_for "$U")" "$WX_TEST_TMP/open.body"
failed_cleanly "$U" 400 'incomplete' "a body without its closing boundary"
U=$(new_server)
python3 "$top_srcdir/tests/lib/multipart.py" --boundary "$BOUNDARY" "$WX_TEST_TMP/short.body" \
	"archive=@$WX_TEST_TMP/tree.tgz:cut=$(( $(stat -c %s "$WX_TEST_TMP/tree.tgz") - 20 ))"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/short.body"
failed_cleanly "$U" 422 'damaged or cut short' "a short gzip inside a complete body"
U=$(new_server)
python3 "$top_srcdir/tests/lib/multipart.py" --boundary "$BOUNDARY" "$WX_TEST_TMP/noarch.body" \
	"checksum=00"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/noarch.body"
failed_cleanly "$U" 400 'no archive part' "a body without an archive part"
U=$(new_server)
# Noise after a fixed first byte: a first byte 0x1f (1 time in 256) would make
# it a damaged gzip stream instead, a different refusal.
{ printf 'noise '; head -c 100000 /dev/urandom; } > "$WX_TEST_TMP/noise.bin"
body_for "$WX_TEST_TMP/noise.body" "$WX_TEST_TMP/noise.bin"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/noise.body"
failed_cleanly "$U" 422 'not a tar archive' "an archive part that is not an archive"
# The server's disk limit (build.disk_space, MiB) from the installer step.
head -c 3000000 /dev/urandom > "$WX_TEST_TMP/big.bin"
tar -C "$WX_TEST_TMP" -czf "$WX_TEST_TMP/big.tgz" big.bin
body_for "$WX_TEST_TMP/big.body" "$WX_TEST_TMP/big.tgz"
U=$(new_server 2)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/big.body"
failed_cleanly "$U" 413 'disk limit \(build.disk_space = 2 MiB' "more than the server's disk limit"

# The node's own free space while extracting: system.data on a 24 MiB tmpfs,
# 4 MiB kept free by disk_reserve, an archive of 8 files of 4 MB.
SMALL="$WX_TEST_TMP/small-data"
mkdir -p "$SMALL"
if mount -t tmpfs -o size=24m tmpfs "$SMALL" 2>/dev/null; then
	trap 'umount "$SMALL" 2>/dev/null; _tap_cleanup' EXIT
	mkdir -p "$WX_TEST_TMP/fill"
	for i in 1 2 3 4 5 6 7 8; do head -c 4000000 /dev/urandom > "$WX_TEST_TMP/fill/f$i"; done
	tar -C "$WX_TEST_TMP" -cf "$WX_TEST_TMP/fill.tar" fill
	body_for "$WX_TEST_TMP/fill.body" "$WX_TEST_TMP/fill.tar"
	sed -e "s|^  data: .*|  data: $SMALL|" -e 's/^    disk_reserve: 0$/    disk_reserve: 4MiB/' \
		"$DEST_DIR/config.good" > "$DEST_DIR/config.yml"
	U=$(new_server)
	dest_post "$(token_for "$U")" "$WX_TEST_TMP/fill.body"
	is "$(status_of "$OUT")" 507 "the filesystem of system.data too small while extracting: 507"
	like "$(json_get "$(body_of "$OUT")" '["error"]')" 'Not enough disk space on this node.*disk_reserve' \
		"... says there is not enough disk space, above the reserve"
	unlike "$(cat "$WX_TEST_TMP/dest.err")" 'disk filled up' "... stopped before the filesystem filled"
	ok "... no server directory and no staging left" test ! -e "$SMALL/$U" -a ! -e "$SMALL/.wingxfer-staging/$U"
	ok "... the space is free again" test "$(df -P -k "$SMALL" | awk 'NR==2 {print $3}')" -lt 1024
	is "$(callbacks "$U" failure)" 1 "... the panel got one failure callback"
	cp "$DEST_DIR/config.good" "$DEST_DIR/config.yml"
	umount "$SMALL"
	trap _tap_cleanup EXIT
else
	for d in "507" "says why" "stopped before full" "cleanup" "space free" "panel"; do
		skip "disk space while extracting: $d" "cannot mount a tmpfs here"
	done
fi

# --- hostile archives --------------------------------------------------------
OUTSIDE="$WX_TEST_TMP/outside"
mkdir -p "$OUTSIDE"
echo original > "$OUTSIDE/victim"
for kind in dotdot absolute symlink-through symlink-relative hardlink-outside hardlink-dotdot \
	hardlink-symlink; do
	python3 "$top_srcdir/tests/lib/hostile.py" "$kind" "$WX_TEST_TMP/h.tgz" "$OUTSIDE"
	body_for "$WX_TEST_TMP/h.body" "$WX_TEST_TMP/h.tgz"
	U=$(new_server)
	dest_post "$(token_for "$U")" "$WX_TEST_TMP/h.body"
	is "$(status_of "$OUT")" 422 "hostile archive $kind: 422"
	ok "hostile archive $kind: no server directory, no staging" gone "$U"
	is "$(ls -A "$OUTSIDE")" victim "hostile archive $kind: nothing appeared outside"
	is "$(cat "$OUTSIDE/victim")" original "hostile archive $kind: the file outside is unchanged"
	is "$(find "$WX_TEST_TMP" \( -name 'escaped' -o -name 'pwned*' \) | wc -l)" 0 \
		"hostile archive $kind: no escaped file anywhere"
	is "$(callbacks "$U" failure)" 1 "hostile archive $kind: the panel hears of the failure"
done
python3 "$top_srcdir/tests/lib/hostile.py" device "$WX_TEST_TMP/h.tgz" "$OUTSIDE"
body_for "$WX_TEST_TMP/h.body" "$WX_TEST_TMP/h.tgz"
U=$(new_server)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/h.body"
is "$(status_of "$OUT")" 200 "devices and FIFOs are skipped, the rest installed: 200"
is "$(find "$DATA/$U" \( -type c -o -type b -o -type p \) | wc -l)" 0 "... no device node or FIFO was created"
ok "... the files after them arrived" test -f "$DATA/$U/after-devices.txt"
is "$(json_get "$(body_of "$OUT")" '["skipped"]')" 3 "... the summary counts 3 skipped entries"
like "$(cat "$WX_TEST_TMP/dest.err")" 'dev/null-char.*skipped' "... each is logged"
python3 "$top_srcdir/tests/lib/hostile.py" setuid "$WX_TEST_TMP/h.tgz" "$OUTSIDE"
body_for "$WX_TEST_TMP/h.body" "$WX_TEST_TMP/h.tgz"
U=$(new_server)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/h.body"
is "$(stat -c %a "$DATA/$U/suid-bin" "$DATA/$U/sgid-dir" "$DATA/$U/sgid-dir/file" | tr '\n' ' ')" \
	"755 775 644 " "setuid and setgid bits are cleared on files and directories"

# --- checksums ----------------------------------------------------------------
U=$(new_server)
python3 "$top_srcdir/tests/lib/multipart.py" --boundary "$BOUNDARY" "$WX_TEST_TMP/bad.body" \
	"archive=@$WX_TEST_TMP/tree.tgz" "checksum_archive=$(printf '0%.0s' $(seq 64))"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/bad.body"
is "$(status_of "$OUT")" 200 "a checksum mismatch with perform_checksum_checks false: installed (200)"
like "$(json_get "$(body_of "$OUT")" '["warning"]')" 'does not match' "... with a warning in the answer"
like "$(record_of "$U" '["warning"]')" 'does not match' "... and in the record"
sed -i 's/^    disk_reserve: 0$/    disk_reserve: 0\n    perform_checksum_checks: true/' "$DEST_DIR/config.yml"
U=$(new_server)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/bad.body"
failed_cleanly "$U" 422 'does not match the checksum' "a checksum mismatch with perform_checksum_checks true"
U=$(new_server)
python3 "$top_srcdir/tests/lib/multipart.py" --boundary "$BOUNDARY" "$WX_TEST_TMP/nosum.body" \
	"archive=@$WX_TEST_TMP/tree.tgz"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/nosum.body"
failed_cleanly "$U" 422 'no archive checksum' "no checksum with perform_checksum_checks true"
U=$(new_server)
SUM=$(sha256sum "$WX_TEST_TMP/tree.tgz" | cut -d' ' -f1)
python3 "$top_srcdir/tests/lib/multipart.py" --boundary "$BOUNDARY" "$WX_TEST_TMP/upper.body" \
	"archive=@$WX_TEST_TMP/tree.tgz" "checksum_archive=  ${SUM^^}
"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/upper.body"
is "$(status_of "$OUT")" 200 "an upper-case checksum_archive with blanks matches (case-insensitive, trimmed)"
cp "$DEST_DIR/config.good" "$DEST_DIR/config.yml"

# --- backups and install logs (Pelican, FeatherWings) -----------------------
BK=4bd0c2c6-0d3e-4b53-9a43-2b5c9c1d7a11.tar.gz
head -c 200000 /dev/urandom > "$WX_TEST_TMP/$BK"
printf 'install line 1\ninstall line 2\n' > "$WX_TEST_TMP/install.log"
U=$(new_server)
body_for "$WX_TEST_TMP/extra.body" "$WX_TEST_TMP/tree.tgz" "checksum_archive=$SUM" \
	"backup_$BK=@$WX_TEST_TMP/$BK" "checksum_backup_$BK=$(sha256sum "$WX_TEST_TMP/$BK" | cut -d' ' -f1)" \
	"install_logs=@$WX_TEST_TMP/install.log" "something_else=ignored"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/extra.body"
is "$(status_of "$OUT")" 200 "archive, backup, install log and an unknown part: 200"
ok "the backup is stored as <backup_directory>/<uuid>/<name>" cmp "$WX_TEST_TMP/$BK" "$DEST_DIR/backups/$U/$BK"
ok "the install log is stored as <log_directory>/install/<uuid>.log" \
	cmp "$WX_TEST_TMP/install.log" "$DEST_DIR/logs/install/$U.log"
is "$(ls -A "$DEST_DIR/backups/$U" | grep -c partial)" 0 "no partial files remain"
U=$(new_server)
body_for "$WX_TEST_TMP/evil.body" "$WX_TEST_TMP/tree.tgz" "backup_../../../evil=@$WX_TEST_TMP/$BK"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/evil.body"
is "$(status_of "$OUT")" 200 "a backup name with ../ is accepted ..."
ok "... and sanitised to a plain name in the server's backup directory" test -f "$DEST_DIR/backups/$U/evil"
is "$(find "$WX_TEST_TMP" -name evil | wc -l)" 1 "... nowhere else"

# Backups and the install log on another file system (a separate disk, as
# often): the extractor writes them beside staging, so they must be copied
# across, not lost to EXDEV.
OTHER="$WX_TEST_TMP/otherfs"
mkdir -p "$OTHER"
if mount -t tmpfs -o size=16m wingxfer-test "$OTHER"; then
	cp "$DEST_DIR/config.yml" "$DEST_DIR/config.good"
	sed -i -e "s|^  backup_directory: .*|  backup_directory: $OTHER/backups|" \
		-e "s|^  log_directory: .*|  log_directory: $OTHER/logs|" "$DEST_DIR/config.yml"
	U=$(new_server)
	dest_post "$(token_for "$U")" "$WX_TEST_TMP/extra.body"
	is "$(status_of "$OUT")" 200 "backup and log directories on another file system: 200"
	like "$(tail -n 20 "$WX_TEST_TMP/dest.err")" "transfer=$U: received files written to disk \(syncfs" \
		"the received files are flushed to disk before they are installed"
	ok "the backup is copied across whole" cmp "$WX_TEST_TMP/$BK" "$OTHER/backups/$U/$BK"
	ok "the install log is copied across whole" cmp "$WX_TEST_TMP/install.log" "$OTHER/logs/install/$U.log"
	is "$(record_of "$U" '.get("warning")')" None "no warning in the record"
	is "$(find "$OTHER" "$DATA" -name '*.wingxfer-copy' -o -name '*wingxfer-partial*' | wc -l)" 0 \
		"no copy or partial file left on either side"
	umount "$OTHER"
	cp "$DEST_DIR/config.good" "$DEST_DIR/config.yml"
else
	ok "a tmpfs for the other-file-system case (needs root)" false
fi

# --- the create-environment hook ----------------------------------------------
cat > "$WX_TEST_TMP/hook-ok" <<EOF
#!/bin/sh
echo "\$SERVER_UUID \$SERVER_DIR" > "$WX_TEST_TMP/hook.ran"
EOF
printf '#!/bin/sh\necho "docker: image not found" >&2\nexit 3\n' > "$WX_TEST_TMP/hook-fail"
chmod +x "$WX_TEST_TMP/hook-ok" "$WX_TEST_TMP/hook-fail"
sed -i "s|^    disk_reserve: 0$|    disk_reserve: 0\n    hooks:\n      create_environment: [$WX_TEST_TMP/hook-ok]|" \
	"$DEST_DIR/config.yml"
U=$(new_server)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
is "$(status_of "$OUT")" 200 "with a create-environment hook: 200"
is "$(cat "$WX_TEST_TMP/hook.ran")" "$U $DATA/$U" "the hook ran with SERVER_UUID and SERVER_DIR"
sed -i "s|hook-ok|hook-fail|" "$DEST_DIR/config.yml"
U=$(new_server)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
failed_cleanly "$U" 500 'create-environment hook.*status 3.*image not found' \
	"a failing hook (exit 3, stderr in the error)"
cp "$DEST_DIR/config.good" "$DEST_DIR/config.yml"

# --- download_limit (a lower bound only: a slow machine is never too fast) --
sed -i 's/^    disk_reserve: 0$/    disk_reserve: 0\n    download_limit: 1/' "$DEST_DIR/config.yml"
head -c 3500000 /dev/urandom > "$WX_TEST_TMP/lim.bin"
tar -C "$WX_TEST_TMP" -cf "$WX_TEST_TMP/lim.tar" lim.bin
body_for "$WX_TEST_TMP/lim.body" "$WX_TEST_TMP/lim.tar"
U=$(new_server)
t0=$(date +%s%N)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/lim.body"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$(status_of "$OUT")" 200 "download_limit 1 MiB/s: 200"
ok "download_limit 1 MiB/s: 3.5 MB took at least 2 s (took ${ms} ms)" test "$ms" -ge 2000
cp "$DEST_DIR/config.good" "$DEST_DIR/config.yml"

# --- cancel mid-stream ----------------------------------------------------------
slow_body() { # slow_body FILE: 300 kB, then 1 KiB every 0.2 s until the reader goes away (bounded: 10 min, too slow to reach the end)
	python3 - "$1" <<'PY'
import sys, time
data = open(sys.argv[1], "rb").read()
out = sys.stdout.buffer
try:
    out.write(data[:300000]); out.flush()
    end = time.time() + 600
    for i in range(300000, len(data), 1024):
        if time.time() > end:
            break
        time.sleep(0.2)
        out.write(data[i:i + 1024]); out.flush()
except BrokenPipeError:
    pass
PY
}
U=$(new_server)
TOKEN=$(token_for "$U")
( slow_body "$WX_TEST_TMP/big.body" | cgi wingxfer-destination "$DEST_DIR/config.yml" POST /api/transfers \
	"Bearer $TOKEN" CONTENT_TYPE="$CT" CONTENT_LENGTH="$(stat -c %s "$WX_TEST_TMP/big.body")" \
	> "$WX_TEST_TMP/cancel.out" 2>>"$WX_TEST_TMP/dest.err" ) &
POSTER=$!
track_pid $POSTER
wait_for "the transfer to be receiving" 20 bash -c \
	"grep -q '\"phase\":\"receiving\"' '$DEST_DIR/state/transfers/$U.json' 2>/dev/null"
out=$(cgi wingxfer-destination "$DEST_DIR/config.yml" GET "/api/transfers/$U" "Bearer token-dest" 2>/dev/null)
st=$(body_of "$out")
is "$(json_get "$st" '["state"]')" processing "GET while receiving: processing"
is "$(json_get "$st" '["owner_alive"]')" true "... its owner is alive"
is "$(json_get "$st" '["bytes_total"]')" "$(stat -c %s "$WX_TEST_TMP/big.body")" "... the total is CONTENT_LENGTH"
out=$(cgi wingxfer-destination "$DEST_DIR/config.yml" DELETE "/api/transfers/$U" "Bearer token-dest" 2>/dev/null)
is "$(status_of "$out")" 202 "DELETE /api/transfers/<uuid> while receiving: 202"
wait_for "the POST to answer" 10 bash -c "grep -q '^Status' '$WX_TEST_TMP/cancel.out'"
is "$(status_of "$(cat "$WX_TEST_TMP/cancel.out")")" 409 "the POST answers 409 (cancelled)"
like "$(cat "$WX_TEST_TMP/cancel.out")" 'cancelled on the destination' "... saying so"
ok "... staging removed, nothing installed" gone "$U"
is "$(record_of "$U" '["status"]')" cancelled "... the record says cancelled"
is "$(callbacks "$U" failure)" 1 "... the panel got one failure callback"
ok "... the cancel marker is gone" test ! -e "$DEST_DIR/state/transfers/$U.cancel"
out=$(cgi wingxfer-destination "$DEST_DIR/config.yml" DELETE "/api/transfers/$U" "Bearer token-dest" 2>/dev/null)
is "$(status_of "$out")" 409 "DELETE when nothing runs: 409"
like "$(body_of "$out")" 'not currently being transferred' "... in Wings' words"
out=$(cgi wingxfer-destination "$DEST_DIR/config.yml" DELETE "/api/transfers" "Bearer token-dest" \
	QUERY_STRING="server=$U" 2>/dev/null)
is "$(status_of "$out")" 409 "DELETE /api/transfers?server=<uuid> finds the server (409: not running)"
out=$(printf '{"server":{"uuid":"%s"}}' "$U" | cgi wingxfer-destination "$DEST_DIR/config.yml" DELETE \
	/api/transfers "Bearer token-dest" CONTENT_LENGTH=$(( 22 + 36 )) 2>/dev/null)
is "$(status_of "$out")" 409 "DELETE /api/transfers with {\"server\":{\"uuid\"}} finds the server"
out=$(cgi wingxfer-destination "$DEST_DIR/config.yml" DELETE "/api/transfers" "Bearer token-dest" \
	CONTENT_LENGTH=2 < <(printf '{}') 2>/dev/null)
is "$(status_of "$out")" 400 "DELETE /api/transfers without a server: 400"
out=$(cgi wingxfer-destination "$DEST_DIR/config.yml" DELETE "/api/transfers/$U" "" 2>/dev/null)
is "$(status_of "$out")" 401 "DELETE without the node token: 401"
done_testing
