#!/bin/bash
# The destination's side of a live pre-sync body (docs/presync.md §7) takes
# what a sender chose as hostile input.  wingxfer-destination run as CGI
# against the panel emulator; the bodies are built here from a round the
# engine made (tests/helpers/wx-presync-round), then spoiled one way each:
# archive and pre-sync parts mixed, a round skipped, parts out of order,
# no final round, data cut short, longer than its op list, not compressed,
# damaged gzip, a manifest that does not match what was applied, an op list
# naming ../, a wrong checksum (of the data, from a first-version source;
# of the texts, with checksum=texts), rounds naming different checksums, an
# op list over the disk limit.  Each
# gets its status and a JSON error that says what was wrong, installs
# nothing, leaves no staging, and the panel hears of the failure once; the
# unspoiled body installs the tree byte-identical, mtimes in ns included
# (and, with perform_checksum_checks, a wrong data checksum is refused).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
wx_tmpdir
panel_start
dest_node
STAGING="$DATA/.wingxfer-staging"
ROUND="$top_builddir/tests/helpers/wx-presync-round"
TREES="$top_srcdir/tests/lib/trees.py"

make_tree "$WX_TEST_TMP/src" --files 60
head -c 2000000 /dev/urandom > "$WX_TEST_TMP/src/world/region/r.0.0.mca"
mkdir -p "$WX_TEST_TMP/r1"
ok "the engine makes round 1 of the tree" "$ROUND" "$WX_TEST_TMP/src" "$WX_TEST_TMP/r1"

# spoil NAME PYTHON: builds body NAME from round 1's ops, data (gzip) and
# manifest; PYTHON may change ops, data (bytes, compressed), manifest,
# parts (the list of (name, bytes) before the closing boundary) first.
spoil() {
	python3 - "$WX_TEST_TMP/r1" "$WX_TEST_TMP/$1.body" "$BOUNDARY" "$2" <<'PY'
import gzip, hashlib, sys
src, out, boundary, code = sys.argv[1:5]
ops = open(src + "/ops", "rb").read()
raw = open(src + "/data", "rb").read()
manifest = open(src + "/manifest", "rb").read()
data = gzip.compress(raw, 1)
header = b"round=1 final=1"
def build():
    return [("presync", header), ("presync_ops", ops), ("presync_data", data),
            ("presync_manifest", manifest)]
parts = None
checksum = None
def sum_of(names):
    return hashlib.sha256(b"".join(v for n, v in parts if n in names)).hexdigest().encode()
exec(code)
if parts is None:
    parts = build()
if checksum is None:
    texts = header.endswith(b" checksum=texts")
    checksum = sum_of(("presync_ops", "presync_manifest") if texts else ("presync_data",))
parts.append(("checksum_archive", checksum))
b = boundary.encode()
with open(out, "wb") as f:
    for i, (name, value) in enumerate(parts):
        f.write((b"\r\n" if i else b"") + b"--" + b + b"\r\n")
        f.write(b'Content-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n')
        f.write(value)
    f.write(b"\r\n--" + b + b"--\r\n")
PY
}
# refused NAME STATUS WORDS: the body NAME is refused with STATUS and an
# error matching WORDS; nothing installed or left; one failure callback.
refused() {
	local u
	u=$(new_server)
	dest_post "$(token_for "$u")" "$WX_TEST_TMP/$1.body"
	is "$(status_of "$OUT")" "$2" "$1: HTTP $2"
	like "$(json_get "$(body_of "$OUT")" '["error"]' 2>/dev/null)" "$3" "$1: the error says so"
	ok "$1: nothing installed, no staging left" test ! -e "$DATA/$u" -a ! -e "$STAGING/$u" -a \
		! -e "$STAGING/$u.parts"
	is "$(callbacks "$u" failure):$(callbacks "$u" success)" 1:0 "$1: one failure callback"
}

spoil good ""
U=$(new_server)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/good.body"
is "$(status_of "$OUT")" 200 "an unspoiled pre-sync body (one final round): 200"
python3 "$TREES" manifest "$WX_TEST_TMP/src" --exact > "$WX_TEST_TMP/want.m"
python3 "$TREES" manifest "$DATA/$U" --exact > "$WX_TEST_TMP/got.m" 2>/dev/null
ok "... installed byte-identical (mtimes in ns, hard links)" cmp -s "$WX_TEST_TMP/want.m" "$WX_TEST_TMP/got.m"
is "$(json_get "$(body_of "$OUT")" '["checksum"]')" verified "... the data checksum verified"
is "$(callbacks "$U" success)" 1 "... one success callback"
spoil good-texts 'header = b"round=1 final=1 checksum=texts"'
U=$(new_server)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/good-texts.body"
is "$(status_of "$OUT")" 200 "with checksum=texts (the checksum of the op lists and manifests): 200"
python3 "$TREES" manifest "$DATA/$U" --exact > "$WX_TEST_TMP/got.m" 2>/dev/null
ok "... installed byte-identical" cmp -s "$WX_TEST_TMP/want.m" "$WX_TEST_TMP/got.m"
is "$(json_get "$(body_of "$OUT")" '["checksum"]')" verified "... that checksum verified"

spoil mixed 'parts = build() + [("archive", b"x" * 100)]'
refused mixed 400 'both pre-sync parts and an archive part'
spoil skipped 'header = b"round=2 final=1"'
refused skipped 400 'round header is not "round=1 final=0\|1 checksum=texts"'
spoil bad-header 'header = b"round=1 final=1 extra"'
refused bad-header 400 'round header'
spoil ops-first 'parts = build()[1:]'
refused ops-first 400 'do not begin with a round header'
spoil out-of-order 'p = build(); parts = [p[0], p[2], p[1], p[3]]'
refused out-of-order 400 'out of order'
spoil no-final 'header = b"round=1 final=0"'
refused no-final 400 'ended before its final round'
spoil data-short 'data = gzip.compress(raw[:-100], 1)'
refused data-short 422 'pre-sync data of round 1 is damaged'
spoil data-long 'data = gzip.compress(raw + b"more", 1)'
refused data-long 422 'more than its op list names'
spoil data-raw 'data = raw'
refused data-raw 422 'neither gzip nor zstd'
spoil data-damaged 'data = data[:-8] + bytes(8)'
refused data-damaged 422 'damaged'
spoil manifest-wrong 'manifest = manifest.replace(b"\nf 644 ", b"\nf 600 ", 1)'
refused manifest-wrong 422 'does not match the source.s manifest after pre-sync round 1'
spoil ops-dotdot 'ops = ops.replace(b"mkdir config\n", b"mkdir ../config\n", 1)'
refused ops-dotdot 400 'op list of round 1 is not valid'
spoil checksum-wrong 'checksum = b"0" * 64'
sed -i 's/^    disk_reserve: 0$/    disk_reserve: 0\n    perform_checksum_checks: true/' "$DEST_DIR/config.yml"
refused checksum-wrong 422 'does not match the checksum'
spoil texts-data-sum 'header = b"round=1 final=1 checksum=texts"; parts = build(); checksum = sum_of(("presync_data",))'
refused texts-data-sum 422 'does not match the checksum'
spoil sums-differ 'header = b"round=1 final=0 checksum=texts"; parts = build() + [("presync", b"round=2 final=1"),
    ("presync_ops", b""), ("presync_data", gzip.compress(b"", 1)), ("presync_manifest", manifest)]'
refused sums-differ 400 'round 2 names a different checksum from round 1'
ok "nothing was written outside the data directory's servers" test ! -e "$DATA/../config"

# Over the server's disk limit (1 MiB; the round holds more): 413 before a byte is applied.
spoil over-limit ''
U=$(new_server 1)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/over-limit.body"
is "$(status_of "$OUT")" 413 "a round larger than the server's disk limit: 413"
like "$(json_get "$(body_of "$OUT")" '["error"]')" 'disk limit' "... the error names the disk limit"
ok "... nothing installed, no staging left" test ! -e "$DATA/$U" -a ! -e "$STAGING/$U"
done_testing
