#!/bin/bash
# The compressors' output read by independent decoders: gzip(1), pigz,
# python3's gzip module, libarchive (bsdcat, bsdtar), zstd(1), GNU tar.
# Both gzip framings are checked, so the claim "readers accept concatenated
# members" is tested, not assumed; one-member output must be one member.
. "$top_srcdir/tests/lib/tap.sh"
wx_tmpdir
CAT="$top_builddir/tests/unit/compress_cat"
[ -x "$CAT" ] || skip_all "compress_cat not built (make check builds it)"
for tool in gzip python3 bsdcat bsdtar zstd tar cmp; do
	command -v "$tool" >/dev/null || skip_all "$tool not installed"
done
T=$WX_TEST_TMP

# 3 MiB: random and text runs, deterministic.
python3 - "$T/in" <<'PY'
import random, sys
r = random.Random(42)
words = [b"server", b"world", b"player", b"chunk", b"level", b"\n", b" ", b"=", b"true", b"0.5"]
out = bytearray()
while len(out) < 3 * 1024 * 1024:
    out += r.randbytes(100000)
    out += b"".join(r.choice(words) for _ in range(30000))
open(sys.argv[1], "wb").write(out[:3 * 1024 * 1024 + 17])
PY

# members FILE: number of gzip members (python zlib, one member at a time).
members() {
	python3 - "$1" <<'PY'
import sys, zlib
data = open(sys.argv[1], "rb").read()
n = 0
while data:
    d = zlib.decompressobj(31)
    d.decompress(data)
    if not d.eof:
        print("truncated"); sys.exit(1)
    data = d.unused_data
    n += 1
print(n)
PY
}

# stored_members FILE: members whose first deflate block is stored (BTYPE 00;
# our encoder writes 10-byte headers, no optional fields).
stored_members() {
	python3 - "$1" <<'PY'
import sys, zlib
data = open(sys.argv[1], "rb").read()
n = 0
while data:
    if len(data) > 10 and (data[10] >> 1) & 3 == 0:
        n += 1
    d = zlib.decompressobj(31)
    d.decompress(data)
    data = d.unused_data
print(n)
PY
}

check_gzip() {	# LABEL ARGS...
	local label=$1; shift
	"$CAT" "$@" < "$T/in" > "$T/out.gz"; local rc=$?
	is "$rc" 0 "$label: compress_cat $*"
	ok "$label: gzip -t" gzip -t "$T/out.gz"
	ok "$label: gzip -dc" cmp -s <(gzip -dc "$T/out.gz") "$T/in"
	if command -v pigz >/dev/null; then
		ok "$label: pigz -dc" cmp -s <(pigz -dc "$T/out.gz") "$T/in"
	fi
	ok "$label: python3 gzip.decompress" cmp -s \
		<(python3 -c 'import gzip, sys; sys.stdout.buffer.write(gzip.decompress(open(sys.argv[1], "rb").read()))' "$T/out.gz") \
		"$T/in"
	ok "$label: libarchive (bsdcat)" cmp -s <(bsdcat "$T/out.gz") "$T/in"
}

check_gzip "one member, level 1, 2 threads" --format gzip --level 1 --threads 2 --block 65536
is "$(members "$T/out.gz")" 1 "one member, level 1: exactly one gzip member"
check_gzip "one member, level 6, 8 threads" --format gzip --level 6 --threads 8 --block 65536
is "$(members "$T/out.gz")" 1 "one member, level 6: exactly one gzip member"
check_gzip "one member, level 0, 1 thread" --format gzip --level 0 --threads 1
check_gzip "one member, level 9, default block" --format gzip --level 9 --threads 2
check_gzip "member per block" --format gzip-members --level 1 --threads 2 --block 65536
is "$(members "$T/out.gz")" 49 "member per block: 49 members (3 MiB + 17 bytes in 64 KiB blocks)"
# What wingxfer-push sends as gzip: libdeflate, one member per block.
check_gzip "libdeflate members, level 1" --format gzip-libdeflate --level 1 --threads 2
# The input's 100 000-byte random runs are stored, as their own members.
m=$(members "$T/out.gz")
ok "libdeflate members: more than a member a block (got $m): incompressible runs apart" test "$m" -gt 13
s=$(stored_members "$T/out.gz")
ok "libdeflate members: some stored (got $s), some deflated" test "$s" -ge 10 -a "$s" -lt "$m"
check_gzip "libdeflate members, no store" --format gzip-libdeflate-nostore --level 1 --threads 2
is "$(members "$T/out.gz")" 13 "libdeflate members, no store: 13 members (3 MiB + 17 bytes in 256 KiB blocks)"
check_gzip "libdeflate members, level 0" --format gzip-libdeflate --level 0 --threads 2
check_gzip "libdeflate members, level 9, 64 KiB blocks" --format gzip-libdeflate --level 9 --threads 3 --block 65536
mkdir -p "$T/tree/sub" && cp "$T/in" "$T/tree/sub/data" && ln -s sub/data "$T/tree/link"
tar -C "$T/tree" -cf - . | "$CAT" --format gzip-libdeflate --level 1 --threads 2 --block 65536 > "$T/tree.tgz"
mkdir -p "$T/x1" "$T/x2"
ok "libdeflate members: GNU tar -xzf extracts the tar" tar -C "$T/x1" -xzf "$T/tree.tgz"
ok "libdeflate members: bsdtar extracts it" bsdtar -C "$T/x2" -xf "$T/tree.tgz"
ok "libdeflate members: both trees are the original" sh -c "cmp -s '$T/x1/sub/data' '$T/in' && cmp -s '$T/x2/sub/data' '$T/in' && test -L '$T/x2/link'"

for level in 1 3 -1; do
	"$CAT" --format zstd --level "$level" --threads 2 < "$T/in" > "$T/out.zst"; rc=$?
	is "$rc" 0 "zstd level $level: compress_cat"
	ok "zstd level $level: zstd -t" zstd -q -t "$T/out.zst"
	ok "zstd level $level: zstd -dc" cmp -s <(zstd -q -dc "$T/out.zst") "$T/in"
	ok "zstd level $level: libarchive (bsdcat)" cmp -s <(bsdcat "$T/out.zst") "$T/in"
done

# A real tar stream, as the source sends it, extracted by GNU tar and bsdtar.
mkdir -p "$T/tree/a/b" "$T/x1" "$T/x2" "$T/x3"
cp "$T/in" "$T/tree/a/big"
printf 'hello\n' > "$T/tree/a/b/small"
ln -s b/small "$T/tree/a/link"
tar -C "$T/tree" -cf - . | "$CAT" --format gzip --threads 2 > "$T/t.tar.gz"
ok "tar | pgzip | tar -xzf (GNU tar)" tar -C "$T/x1" -xzf "$T/t.tar.gz"
ok "GNU tar: tree identical" diff -r --no-dereference "$T/tree" "$T/x1"
ok "tar | pgzip | bsdtar -xf" bsdtar -C "$T/x2" -xf "$T/t.tar.gz"
ok "bsdtar: tree identical" diff -r --no-dereference "$T/tree" "$T/x2"
tar -C "$T/tree" -cf - . | "$CAT" --format zstd --level 3 --threads 2 > "$T/t.tar.zst"
ok "tar | zstd_stream | bsdtar -xf" bsdtar -C "$T/x3" -xf "$T/t.tar.zst"
ok "bsdtar (zstd): tree identical" diff -r --no-dereference "$T/tree" "$T/x3"

# Bad options exit 2 with a message.
out=$("$CAT" --format gzip --level 12 < /dev/null 2>&1); rc=$?
is "$rc" 2 "gzip level 12 refused"
like "$out" "level 12 is out of range" "and the message names the level"
out=$("$CAT" --format lz4 < /dev/null 2>&1); rc=$?
is "$rc" 2 "unknown format refused"

# A reader closing early (EPIPE, SIGPIPE ignored): the sink fails, the
# compressor stops with exit 1 and says why, no hang.
rc=$( (trap '' PIPE; timeout 60 "$CAT" --format gzip --level 1 --threads 2 --block 65536 \
	< "$T/in" 2> "$T/err" | head -c 100 > /dev/null; echo "${PIPESTATUS[0]}") )
is "$rc" 1 "reader closing early: exit 1, no hang"
like "$(cat "$T/err")" "write callback failed" "and stderr says the write failed"

done_testing
