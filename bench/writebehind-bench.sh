#!/bin/bash
# writebehind-bench.sh [MIB] [RUNS]: what system.transfers.write_behind and
# write_behind_flush cost the receiving side.  wingxfer-destination (as CGI,
# as in the tests) receives the same tar (MIB MiB of incompressible data:
# 4 MiB region files and 64 KiB files, as bench-data's game servers) with
# each setting in turn, RUNS times each: "256KiB/256KiB" (write_behind /
# write_behind_flush, the gentlest), "1MiB/1MiB" (the defaults), "8MiB/0"
# (the defaults before) and "0/0" (off), or the pairs in WB_SETTINGS (e.g. "1MiB/1MiB 8MiB/0"); each run
# ends at the 200 (after the commit's
# syncfs), the tree is then deleted and synced.  Prints wall and CPU
# seconds of each run, then the medians.  A benchmark to run by hand.
set -u
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir
MIB=${1:-1024}
RUNS=${2:-3}
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
wx_tmpdir
panel_start
dest_node
src="$WX_TEST_TMP/src"
mkdir -p "$src/region" "$src/small"
for i in $(seq 1 $((MIB / 8))); do head -c $((4 << 20)) /dev/urandom > "$src/region/r.$i.mca"; done
for i in $(seq 1 $((MIB * 8))); do head -c 65536 /dev/urandom > "$src/small/f$i"; done
tar -C "$src" -cf "$WX_TEST_TMP/tree.tar" .
rm -rf "$src"
body_for "$WX_TEST_TMP/tree.body" "$WX_TEST_TMP/tree.tar"
rm -f "$WX_TEST_TMP/tree.tar"
sync
SETTINGS=${WB_SETTINGS:-256KiB/256KiB 1MiB/1MiB 8MiB/0 0/0}
TIMEFORMAT="%R %U %S"
for i in $(seq 1 "$RUNS"); do
	for wb in $SETTINGS; do
		transfers_key "$DEST_DIR/config.yml" write_behind "${wb%/*}"
		transfers_key "$DEST_DIR/config.yml" write_behind_flush "${wb#*/}"
		U=$(new_server)
		tok=$(token_for "$U")
		{ time dest_post "$tok" "$WX_TEST_TMP/tree.body"; } 2> "$WX_TEST_TMP/time"
		t=$(tail -n 1 "$WX_TEST_TMP/time")
		[ "$(status_of "$OUT")" = 200 ] || { echo "run failed: $(body_of "$OUT")" >&2; exit 1; }
		echo "write_behind/flush $wb run $i: wall/user/sys s $t; load $(cut -d' ' -f1 /proc/loadavg)"
		echo "$wb $t" >> "$WX_TEST_TMP/times"
		rm -rf "${DATA:?}/$U"
		sync
	done
done
/usr/bin/python3 - "$WX_TEST_TMP/times" $SETTINGS <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
for wb in sys.argv[2:]:
    r = [list(map(float, x[1:])) for x in rows if x[0] == wb]
    print("write_behind/flush %s: median wall %.2f s, CPU %.2f s (user+sys) over %d runs" % (
        wb, statistics.median(x[0] for x in r), statistics.median(x[1] + x[2] for x in r), len(r)))
PY
panel_stop
