#!/bin/bash
# The archive codec, negotiated through the real web servers: a wingxfer
# destination (Apache, lighttpd) answers OPTIONS with X-Wingxfer-Capabilities
# and gets tar.zst; a Go Wings stand-in (the recording receiver, OPTIONS 204
# without the header) gets tar.gz, also when zstd is configured (with a
# warning), extracted as Pterodactyl Wings does: every regular file arrives
# whole (hard links too), symlinks are left out with a warning (issue 22);
# compression gzip, level 0 and compression_threads are honoured;
# the checksum is always that of the exact bytes sent (the archive's, or
# with body-checksum between wingxfer nodes, the whole chunked body's).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
webstack_init
PANEL_TLS=1 panel_start || { echo "not ok 1 - panel emulator"; echo 1..1; exit 1; }
PANEL_TLS=1
TREES="$top_srcdir/tests/lib/trees.py"

# presync off: this is about the archive's codec (presync.sh covers the rounds' data).
node_setup a "    log_level: debug
    presync: off"; node_start a apache
node_setup b; node_start b apache
node_setup l; node_start l lighttpd
for n in a b l; do panel_node "$n" "id-$n" "token-$n" "${NODE_URL[$n]}"; done

# The destination's OPTIONS answer, through each web server.
for n in b l; do
	h=$(https_curl -s -D - -o /dev/null -X OPTIONS "${NODE_URL[$n]}/api/transfers")
	like "$h" '^HTTP/[0-9.]+ 204' "${NODE_WEB[$n]}: OPTIONS /api/transfers answers 204"
	like "$h" '[Xx]-[Ww]ingxfer-[Cc]apabilities: zstd, gzip' "${NODE_WEB[$n]}: ... with X-Wingxfer-Capabilities: zstd, gzip"
done

set_source() { # KEY VALUE: sets system.transfers.KEY on node a (read by each new worker)
	transfers_key "$WX_TEST_TMP/a/config.yml" "$1" "$2"
}
src_rec() { cat "$WX_TEST_TMP/a/state/transfers/$1.json"; }
worker_log() { cat "$WX_TEST_TMP/a/state/transfers/$1.log" 2>/dev/null; }
done_on() { # NODE UUID: the source record is final
	case "$(json_get "$(src_rec "$2")" '["status"]' 2>/dev/null)" in completed|failed|cancelled) return 0 ;; esac
	return 1
}
N=0
# move TO [URL]: a fresh server from a to TO (or to URL); sets U
move() {
	local to=$1 url=${2:-}
	N=$((N + 1))
	U=$(printf '55555555-0000-4000-8000-%012d' $N)
	python3 "$TREES" make "$WX_TEST_TMP/a/data/$U" --files 200 --big-mib 3 --seed $N
	panel_server "$U" 0
	panel_api POST /_emulator/transfers \
		"{\"server\":\"$U\",\"source\":\"a\",\"destination\":\"$to\"${url:+,\"url\":\"$url\"}}" >/dev/null
	wait_for "transfer $U" 120 done_on a "$U"
}
codec_of() { json_get "$(src_rec "$1")" '["extra"]["codec"]' 2>/dev/null; }
# sent_sum UUID: "Archive SUM" (extra.archive_sha256), else "Body SUM"
# (extra.body_sha256: the chunked body's digest stood for the checksum)
sent_sum() {
	local a b
	a=$(json_get "$(src_rec "$1")" '["extra"]["archive_sha256"]' 2>/dev/null)
	b=$(json_get "$(src_rec "$1")" '["extra"]["body_sha256"]' 2>/dev/null)
	if [ -n "$a" ]; then echo "Archive $a"; elif [ -n "$b" ]; then echo "Body $b"; else echo "none"; fi
}
same_tree() { # FROM-NODE TO-NODE UUID
	cmp -s <(python3 "$TREES" manifest "$WX_TEST_TMP/$1/data/$3") \
		<(python3 "$TREES" manifest "$WX_TEST_TMP/$2/data/$3" 2>/dev/null)
}
dest_verified() { # NODE UUID "KIND SUM": the destination verified exactly what was sent
	local kind=${3%% *} sum=${3#* }
	case $kind in Archive|Body) ;; *) return 1 ;; esac
	grep -q "$kind checksum verified (SHA-256 $sum" "$WX_TEST_TMP/$1/state/transfers/$2.events"
}

# --- auto (the default) to wingxfer destinations: zstd ---
for to in b l; do
	move $to
	label="auto -> ${NODE_WEB[$to]} destination"
	is "$(json_get "$(src_rec "$U")" '["status"]')" completed "$label: completed"
	is "$(codec_of "$U")" zstd "$label: zstd negotiated"
	like "$(node_log $to)" "the archive is zstd-compressed tar" "$label: the destination read a zstd archive"
	ok "$label: the tree arrives identical" same_tree a $to "$U"
	ok "$label: the destination verified the SHA-256 of the exact bytes sent" dest_verified $to "$U" "$(sent_sum "$U")"
done
like "$(worker_log "$U")" "compressing with zstd level 1, [0-9]+ threads" "the worker logs codec, level, threads"
like "$(grep -o '"[A-Z]* /api/transfers[^"]*" [0-9]*' "$WX_TEST_TMP/b/web/access.log" | tr '\n' ' ')" \
	'"OPTIONS /api/transfers HTTP/1.1" 204 "POST /api/transfers/preflight\?size=[0-9]+ HTTP/1.1" 200 "POST /api/transfers/uploads HTTP/1.1" 201 ("PATCH /api/transfers/uploads/[0-9a-f]{32} HTTP/1.1" 204 )*"PATCH /api/transfers/uploads/[0-9a-f]{32} HTTP/1.1" 202 ("GET /api/transfers/uploads/[0-9a-f]{32} HTTP/1.1" 200 )+$' \
	"Apache's access log: OPTIONS 204, the preflight 200 (before the stop), then the chunked upload (docs/protocol.md): create 201, PATCHes 204 and the last 202, GETs until the outcome"

# --- compression: gzip ---
options_seen() { grep -c '"OPTIONS /api/transfers' "$WX_TEST_TMP/b/web/access.log"; }
set_source compression gzip
before=$(options_seen)
move b
is "$(codec_of "$U")" gzip "compression gzip: gzip sent to a wingxfer destination"
ok "compression gzip: the tree arrives identical" same_tree a b "$U"
is "$(options_seen)" "$((before + 1))" \
	"compression gzip: the destination is still asked what it is (one OPTIONS in Apache's access log)"

# --- compression_level 0 (store) with zstd configured: stored gzip ---
set_source compression zstd
set_source compression_level 0
move b
is "$(codec_of "$U")" gzip "level 0: stored in gzip framing, not zstd"
like "$(worker_log "$U")" "compressing with gzip level 0" "level 0: deflate stores"
ok "level 0: the tree arrives identical" same_tree a b "$U"
ok "level 0: checksum verified" dest_verified b "$U" "$(sent_sum "$U")"
set_source compression_level 1

# --- compression_threads honoured (and capped by the memory budget) ---
set_source compression_threads 3
move b
like "$(worker_log "$U")" "compressing with zstd level 1, 3 threads" "compression_threads 3: 3 zstd workers"
set_source compression gzip
set_source compression_threads 200
move b
like "$(worker_log "$U")" "compressing with gzip level 1, [4-9] threads" "compression_threads 200: capped by the memory budget"
is "$(json_get "$(src_rec "$U")" '["status"]')" completed "compression_threads 200: completed"
set_source compression_threads 0

# --- a Go Wings stand-in: OPTIONS 204 without the header ---
recv_start gowings --extract "$WX_TEST_TMP/x-gowings" --flavour pterodactyl
# regular_files DIR: size, SHA-256, mtime and path of every regular file.
regular_files() { python3 "$TREES" manifest "$1" | grep '^f ' | cut -d' ' -f3-; }
for mode in auto zstd; do
	set_source compression $mode
	: > "$RECV_RECORD"
	move b "$RECV_URL"
	is "$(json_get "$(src_rec "$U")" '["status"]')" completed "compression $mode -> Go Wings stand-in: completed"
	like "$(cat "$RECV_RECORD")" '"event": "options"' "compression $mode -> Go Wings: the source asked OPTIONS first"
	is "$(codec_of "$U")" gzip "compression $mode -> Go Wings: gzip sent"
	like "$(recv_last '["parts"][0]["filename"]')" '^archive.tar.gz$' "compression $mode -> Go Wings: part archive.tar.gz"
	is "$(recv_last '["errors"]')" "[]" "compression $mode -> Go Wings: shape right, checksum = SHA-256 of the bytes received"
	saved=$(recv_last '["parts"][0]["saved"]')
	is "$(head -c 2 "$saved" | od -An -tx1 | tr -d ' ')" 1f8b "compression $mode -> Go Wings: the archive is gzip"
	unlike "$(json_get "$(cat "$RECV_RECORD" | grep '"event": "options"' | head -1)" '["headers"]')" \
		'[Aa]uthorization' "compression $mode -> Go Wings: OPTIONS carries no credentials"
	X=$(recv_last '["extracted"]')
	is "$(regular_files "$X")" "$(regular_files "$WX_TEST_TMP/a/data/$U")" \
		"compression $mode -> Go Wings: extracted as Pterodactyl Wings does, every regular file is whole (the hard link too)"
	is "$(recv_last '["extract"]["emptied"]')" "[]" "compression $mode -> Go Wings: nothing became an empty file"
	like "$(json_get "$(src_rec "$U")" '["warning"]')" '^4 symlinks were left out' \
		"compression $mode -> Go Wings: the 4 symlinks were left out, with a warning"
done
like "$(worker_log "$U")" "compression is zstd, but the destination does not say it reads zstd" \
	"configured zstd against Go Wings: a warning says gzip was sent instead"
stop_pid "$RECV_PID"

# --- a receiver that advertises zstd gets the exact zstd bytes it hashes ---
recv_start advertising --capabilities "gzip, ZSTD"
set_source compression auto
move b "$RECV_URL"
is "$(codec_of "$U")" zstd "advertised 'gzip, ZSTD': zstd sent"
like "$(recv_last '["parts"][0]["filename"]')" '^archive.tar.zst$' "... as archive.tar.zst"
is "$(recv_last '["errors"]')" "[]" "... checksum = SHA-256 of the zstd bytes received"
saved=$(recv_last '["parts"][0]["saved"]')
is "$(head -c 4 "$saved" | od -An -tx1 | tr -d ' ')" 28b52ffd "... a zstd frame"
ok "... a tar archive that libarchive lists (bsdtar -tf)" sh -c "bsdtar -tf \"$saved\" >/dev/null"
stop_pid "$RECV_PID"

for n in a b l; do node_stop "$n"; done
panel_stop
done_testing
