#!/bin/bash
# system.transfers.write_behind: the destination writes received files to
# disk while receiving and drops what it wrote from the page cache.  The
# evidence is the page cache itself: right after the transfer, a 24 MiB
# file received with a 1 MiB window has at most a quarter of its pages cached,
# where without write-behind all of them are (dirty, or clean after the
# commit's syncfs: nothing else evicts them).  No timing is involved.
# write_behind_flush: the log counts the flushes (one per 256 KiB written
# back with 256KiB, one per MiB by default, none with 0; fewer where the
# disk was slow to flush and some were put off, which the log counts too).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
wx_tmpdir
panel_start
dest_node
# cached_kib FILE: KiB of FILE in the page cache (fincore, util-linux)
cached_kib() { fincore --bytes --noheadings --output RES "$1" | awk '{print int($1 / 1024)}'; }

fstype=$(stat -f -c %T "$DATA")
# tmpfs has no writeback: its pages are the data.
[ "$fstype" != tmpfs ] || skip_all "write-behind needs a disk file system under $DATA (tmpfs)"

src="$WX_TEST_TMP/src"
mkdir -p "$src/world/region"
head -c $((24 << 20)) /dev/urandom > "$src/world/region/r.0.0.mca"
for i in 1 2 3 4 5; do head -c 3000 /dev/urandom > "$src/world/small$i.dat"; done
head -c 200000 /dev/urandom > "$src/write-only.bin"
chmod 200 "$src/write-only.bin"   # the extractor (without root's powers) cannot reopen it
tar -C "$src" -cf "$WX_TEST_TMP/tree.tar" .
body_for "$WX_TEST_TMP/tree.body" "$WX_TEST_TMP/tree.tar"

transfers_key "$DEST_DIR/config.yml" write_behind 1MiB
transfers_key "$DEST_DIR/config.yml" write_behind_flush 256KiB
U=$(new_server)
: > "$WX_TEST_TMP/dest.err"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
is "$(status_of "$OUT")" 200 "write_behind 1MiB: the transfer succeeds"
big="$DATA/$U/world/region/r.0.0.mca"
kib=$(cached_kib "$big")
diag "24 MiB file received with write_behind 1MiB: $kib KiB of it cached"
# The bound leaves room for pages the kernel still holds in per-CPU batches
# after the DONTNEED (a few hundred KiB seen); without write-behind: 24 MiB.
ok "its pages are not left in the page cache (<= 6 MiB of 24 MiB cached: $kib KiB)" \
	test "$kib" -le 6144
like "$(cat "$WX_TEST_TMP/dest.err")" 'write-behind: 24 MiB written back while receiving, in [0-9]+ ranges, [0-9]+ flushes \(0 through received files, [0-9]+ put off for pace\); 1 files left' \
	"the log says what was written back, that every flush went through an unnamed file (O_TMPFILE, allowed by the sandbox), and that the unreadable file was left to the kernel"
# write_behind_flush 256KiB: a flush per 256 KiB waited for,
# give or take the piece (256 KiB of the 1 MiB window) that crossed the mark.
# flush_counts: "FLUSHES PUT_OFF" from the log's write-behind line
flush_counts() {
	sed -n 's/.*write-behind: 24 MiB .* ranges, \([0-9]*\) flushes (.*, \([0-9]*\) put off for pace).*/\1 \2/p' \
		"$WX_TEST_TMP/dest.err"
}
# flushed_every MIN MAX: between MIN and MAX flushes; fewer than MIN (not
# none) only when some were put off (the disk slow to flush: wx_flusher_due).
flushed_every() {
	set -- "$1" "$2" $(flush_counts)
	[ -n "${3:-}" ] && [ "$3" -le "$2" ] && { [ "$3" -ge "$1" ] || [ "$3" -ge 1 -a "$4" -gt 0 ]; }
}
ok "the data was flushed to the disk every 256 KiB or so (flushes, times put off: $(flush_counts))" \
	flushed_every 48 96
ok "the tree arrived byte-identical (the write-only file too)" same_tree "$src" "$DATA/$U"

transfers_key "$DEST_DIR/config.yml" write_behind_flush
U=$(new_server)
: > "$WX_TEST_TMP/dest.err"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
is "$(status_of "$OUT")" 200 "write_behind_flush by default (1MiB): the transfer succeeds"
ok "... flushed every MiB or so (flushes, times put off: $(flush_counts))" flushed_every 12 30

transfers_key "$DEST_DIR/config.yml" write_behind_flush 0
U=$(new_server)
: > "$WX_TEST_TMP/dest.err"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
is "$(status_of "$OUT")" 200 "write_behind_flush 0: the transfer succeeds"
like "$(cat "$WX_TEST_TMP/dest.err")" 'write-behind: 24 MiB written back while receiving, in [0-9]+ ranges, 0 flushes ' \
	"... written back, never flushed"

transfers_key "$DEST_DIR/config.yml" write_behind 0
U=$(new_server)
: > "$WX_TEST_TMP/dest.err"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
is "$(status_of "$OUT")" 200 "write_behind 0: the transfer succeeds"
unlike "$(cat "$WX_TEST_TMP/dest.err")" 'write-behind:' "... and nothing is written behind"
done_testing
