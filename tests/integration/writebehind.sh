#!/bin/bash
# system.transfers.write_behind: the destination writes received files to
# disk while receiving and drops what it wrote from the page cache.  The
# evidence is the page cache itself: right after the transfer, a 24 MiB
# file received with a 1 MiB window has at most a quarter of its pages cached,
# where without write-behind all of them are (dirty, or clean after the
# commit's syncfs: nothing else evicts them).  No timing is involved.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
wx_tmpdir
panel_start
dest_node
set_write_behind() { # VALUE ("" = the default)
	sed -i '/^    write_behind: /d' "$DEST_DIR/config.yml"
	[ -z "$1" ] || sed -i "s|^    disk_reserve: 0$|    disk_reserve: 0\n    write_behind: $1|" \
		"$DEST_DIR/config.yml"
}
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

set_write_behind 1MiB
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
like "$(cat "$WX_TEST_TMP/dest.err")" 'write-behind: 24 MiB written back while receiving, in [0-9]+ ranges; 1 files left' \
	"the log says what was written back, and that the unreadable file was left to the kernel"
ok "the tree arrived byte-identical (the write-only file too)" same_tree "$src" "$DATA/$U"

set_write_behind 0
U=$(new_server)
: > "$WX_TEST_TMP/dest.err"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/tree.body"
is "$(status_of "$OUT")" 200 "write_behind 0: the transfer succeeds"
unlike "$(cat "$WX_TEST_TMP/dest.err")" 'write-behind:' "... and nothing is written behind"
done_testing
