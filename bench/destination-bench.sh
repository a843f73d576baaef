#!/bin/bash
# destination-bench.sh [GIB] [DIR]: how fast wingxfer-destination installs a
# server from a tar.gz, and how much memory it needs, against the standard
# tools on the same archive.  A benchmark to run by hand, not a test.
#
#   GIB  approximate size of the compressed archive (default 4)
#   DIR  scratch directory (default /var/tmp/wingxfer-bench); needs about
#        4 x GIB free; removed at the end unless KEEP=1
#
# The tree is game-server-like: big region files (half random, half
# compressible text), many small files.  The archive is tar + gzip -1
# (pigz -1 when installed), as Wings' best_speed sends it.  Measured:
#   baseline   gzip -dc archive | tar -x          (wall time)
#              bsdtar -x (libarchive's gzip reader, as wingxfer uses)
#   gunzip     gzip -dc > /dev/null: decompression alone, the bound
#   wingxfer   the whole POST /api/transfers run as CGI (multipart parsing,
#              SHA-256, libarchive extraction, fsync/rename, panel calls),
#              wall time and peak RSS (/usr/bin/time -v)
# make bench-destination [BENCH_DESTINATION_ARGS="1 /var/tmp/x"] runs it from
# the build tree; by hand, set top_builddir when building out of tree.
# Results: bench/destination-results.md.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir
GIB=${1:-4}
BENCH=${2:-/var/tmp/wingxfer-bench}
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 1; }
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
trap - EXIT
cleanup() {
	panel_stop
	[ "${KEEP:-0}" = 1 ] || rm -rf "$BENCH"
}
trap cleanup EXIT
rm -rf "$BENCH"
mkdir -p "$BENCH"
WX_TEST_TMP=$BENCH
free_gib=$(( $(df -P -k "$BENCH" | awk 'NR==2 {print $4}') / 1048576 ))
[ "$free_gib" -ge $(( GIB * 4 + 2 )) ] || { echo "needs $(( GIB * 4 + 2 )) GiB free in $BENCH, has $free_gib"; exit 1; }

secs() { python3 -c "import sys; print('%.1f' % ((int(sys.argv[2]) - int(sys.argv[1])) / 1e9))" "$1" "$2"; }
mbps() { python3 -c "import sys; print('%.0f' % (int(sys.argv[1]) / 1048576 / float(sys.argv[2])))" "$1" "$2"; }

echo "== making a tree for a ~$GIB GiB archive in $BENCH/src"
src="$BENCH/src"
mkdir -p "$src/world/region" "$src/plugins" "$src/logs"
big=$(( GIB * 1024 * 1000 / 880 / 64 ))   # 64 MiB files; gzip -1 keeps ~88 %
for i in $(seq 1 "$big"); do
	if [ $((i % 2)) = 0 ]; then
		head -c $((64 << 20)) /dev/urandom > "$src/world/region/r.$i.mca"
	else
		head -c $((48 << 20)) /dev/urandom | base64 -w 120 | head -c $((64 << 20)) > "$src/world/region/r.$i.mca"
	fi
done
python3 - "$src/plugins" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(7)
for d in range(200):
    p = os.path.join(root, "p%03d" % d)
    os.makedirs(p)
    for f in range(100):
        with open(os.path.join(p, "f%03d.yml" % f), "wb") as fh:
            fh.write(rnd.randbytes(rnd.randint(200, 8000)))
PY
raw=$(du -sb "$src" | cut -f1)
files=$(find "$src" | wc -l)
echo "   $files entries, $(( raw >> 20 )) MiB"

echo "== archiving (tar | gzip -1)"
gz="gzip -1"; command -v pigz >/dev/null && gz="pigz -1"
tar -C "$src" -cf - . | $gz > "$BENCH/a.tgz"
size=$(stat -c %s "$BENCH/a.tgz")
sum=$(sha256sum "$BENCH/a.tgz" | cut -d' ' -f1)
echo "   archive $(( size >> 20 )) MiB"
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true

echo "== baseline: gzip -dc | tar -x"
mkdir -p "$BENCH/base"
t0=$(date +%s%N)
/usr/bin/time -v -o "$BENCH/tar.time" tar -x -C "$BENCH/base" -f <(gzip -dc "$BENCH/a.tgz")
t1=$(date +%s%N)
base_s=$(secs "$t0" "$t1")
tar_rss=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$BENCH/tar.time")
rm -rf "$BENCH/base"
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true

bsd_s="-"
if command -v bsdtar >/dev/null; then
	echo "== baseline: bsdtar -x (libarchive, the same decompressor as wingxfer)"
	mkdir -p "$BENCH/base"
	t0=$(date +%s%N)
	bsdtar -x -C "$BENCH/base" -f "$BENCH/a.tgz"
	t1=$(date +%s%N)
	bsd_s=$(secs "$t0" "$t1")
	rm -rf "$BENCH/base"
	sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
fi
echo "== decompression alone: gzip -dc > /dev/null"
t0=$(date +%s%N)
gzip -dc "$BENCH/a.tgz" > /dev/null
t1=$(date +%s%N)
dec_s=$(secs "$t0" "$t1")

echo "== wingxfer-destination (CGI, Content-Length, panel emulator)"
panel_start
DEST_DIR="$BENCH/dest"
make_node_config "$DEST_DIR" dest >/dev/null
panel_node dest id-dest token-dest http://127.0.0.1:1
U=$(new_server)
printf -- '--%s\r\nContent-Disposition: form-data; name="archive"; filename="archive.tar.gz"\r\nContent-Type: application/octet-stream\r\n\r\n' \
	"$BOUNDARY" > "$BENCH/head"
printf -- '\r\n--%s\r\nContent-Disposition: form-data; name="checksum"\r\n\r\n%s\r\n--%s--\r\n' \
	"$BOUNDARY" "$sum" "$BOUNDARY" > "$BENCH/tail"
cl=$(( $(stat -c %s "$BENCH/head") + size + $(stat -c %s "$BENCH/tail") ))
t0=$(date +%s%N)
cat "$BENCH/head" "$BENCH/a.tgz" "$BENCH/tail" |
	/usr/bin/time -v -o "$BENCH/wx.time" env -i PATH="$PATH" WINGXFER_CONFIG="$DEST_DIR/config.yml" \
	REQUEST_METHOD=POST REQUEST_URI=/api/transfers HTTP_AUTHORIZATION="Bearer $(token_for "$U")" \
	CONTENT_TYPE="$CT" CONTENT_LENGTH="$cl" "$top_builddir/handlers/wingxfer-destination" \
	> "$BENCH/wx.out" 2> "$BENCH/wx.err"
t1=$(date +%s%N)
wx_s=$(secs "$t0" "$t1")
wx_rss=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$BENCH/wx.time")
wx_cpu=$(awk -F: '/User time/ {u=$2} /System time/ {s=$2} END {printf "user%s s, system%s s", u, s}' "$BENCH/wx.time")
status=$(sed -n '1s/^Status: \([0-9]*\).*/\1/p' "$BENCH/wx.out")
same=no
[ "$status" = 200 ] && same_tree "$src" "$DEST_DIR/data/$U" >/dev/null && same=yes

echo
echo "archive:   $(( size >> 20 )) MiB compressed, $(( raw >> 20 )) MiB in $files entries"
echo "baseline:  gzip -dc | tar -x   ${base_s} s   $(mbps "$size" "$base_s") MiB/s of archive   tar peak RSS ${tar_rss} KiB"
[ "$bsd_s" = - ] || echo "baseline:  bsdtar -x            ${bsd_s} s   $(mbps "$size" "$bsd_s") MiB/s of archive"
echo "gunzip:    gzip -dc >/dev/null  ${dec_s} s   $(mbps "$size" "$dec_s") MiB/s of archive (decompression alone)"
echo "wingxfer:  POST /api/transfers ${wx_s} s   $(mbps "$size" "$wx_s") MiB/s of archive   peak RSS ${wx_rss} KiB"
echo "           CPU $wx_cpu; status $status, tree identical: $same"
echo "           ratio wingxfer/baseline: $(python3 -c "print('%.2f' % ($wx_s / $base_s))")"
