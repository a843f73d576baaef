#!/bin/bash
# download_limit is node-wide: two transfers received at the same time by two
# wingxfer-destination processes (CGI) share it.  Checked as an upper bound
# on the bytes read over the elapsed time, which a slow machine only makes
# looser: bytes <= limit * elapsed + one second of the limit (the full
# bucket) + one read (256 KiB).  Per-process buckets would let each
# transfer have the whole limit and break the bound.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
wx_tmpdir
panel_start
DEST_DIR="$WX_TEST_TMP/dest"
make_node_config "$DEST_DIR" dest "    download_limit: 1" >/dev/null
panel_node dest id-dest token-dest http://127.0.0.1:1
MIB=1048576

# Incompressible, so the archive is as big on the wire as on disk.
for i in 1 2; do
	mkdir -p "$WX_TEST_TMP/src$i"
	head -c 3000000 /dev/urandom > "$WX_TEST_TMP/src$i/blob.bin"
	tar -C "$WX_TEST_TMP/src$i" -cf "$WX_TEST_TMP/t$i.tar" .
	body_for "$WX_TEST_TMP/b$i.body" "$WX_TEST_TMP/t$i.tar"
	U[$i]=$(new_server)
	T[$i]=$(token_for "${U[$i]}")
done

# post_bg N: POST body N as CGI in the background (the process is the
# program itself, so its pid is what is tracked), the response in rN.
post_bg() {
	exec env -i PATH="$PATH" WINGXFER_CONFIG="$DEST_DIR/config.yml" REQUEST_METHOD=POST \
		REQUEST_URI=/api/transfers HTTP_AUTHORIZATION="Bearer ${T[$1]}" CONTENT_TYPE="$CT" \
		CONTENT_LENGTH="$(stat -c %s "$WX_TEST_TMP/b$1.body")" "$WX_BIN/wingxfer-destination" \
		< "$WX_TEST_TMP/b$1.body" > "$WX_TEST_TMP/r$1" 2>>"$WX_TEST_TMP/dest.err"
}
# reap PID: waits for a tracked child; the exit cleanup forgets it.
reap() { wait "$1"; TRACKED_PIDS=$(printf ' %s ' $TRACKED_PIDS | sed "s/ $1 / /g"); }

t0=$(date +%s%N)
post_bg 1 & P1=$!
track_pid "$P1"
post_bg 2 & P2=$!
track_pid "$P2"
reap "$P1"; reap "$P2"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))

total=0
for i in 1 2; do
	out=$(cat "$WX_TEST_TMP/r$i")
	is "$(status_of "$out")" 200 "transfer $i under download_limit 1 MiB/s: 200"
	size=$(stat -c %s "$WX_TEST_TMP/b$i.body")
	is "$(record_of "${U[$i]}" '["bytes_read"]')" "$size" "transfer $i: the whole body was read"
	ok "transfer $i: installed" cmp -s "$WX_TEST_TMP/src$i/blob.bin" "$DEST_DIR/data/${U[$i]}/blob.bin"
	total=$((total + size))
done
bound=$(( MIB * ms / 1000 + MIB + 256 * 1024 ))
ok "together $total bytes in $ms ms: at most 1 MiB/s over the run plus one bucket and one read ($bound)" \
	test "$total" -le "$bound"
ok "the node's bucket is a file in the state directory" test -f "$DEST_DIR/state/bandwidth-download"
is "$(stat -c %a "$DEST_DIR/state/bandwidth-download")" 600 "... mode 0600"
done_testing
