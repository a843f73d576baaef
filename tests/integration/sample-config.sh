#!/bin/bash
# www-config/config.yml.example: valid, and documents every key wingxfer reads.
. "$top_srcdir/tests/lib/tap.sh"
wx_tmpdir
SAMPLE="$top_srcdir/www-config/config.yml.example"
echo secret > "$WX_TEST_TMP/node-token"
sed "s|file:///etc/wingxfer/node-token|file://$WX_TEST_TMP/node-token|; s|enabled: true|enabled: false|" \
	"$SAMPLE" > "$WX_TEST_TMP/config.yml"
out=$("$WX_BIN/wingxfer-source" --config "$WX_TEST_TMP/config.yml" --check-config 2>&1); rc=$?
is "$rc" 0 "the sample config loads"
# Every key of the effective config appears in the sample (commented or not).
documented=$(python3 - "$SAMPLE" <<'PY'
import re, sys
stack = []
for line in open(sys.argv[1]):
    m = re.match(r'^(\s*)(#\s?)?([a-z_]+):', line)
    if not m:
        continue
    indent = len(m.group(1)) + (len(m.group(2)) - 2 if m.group(2) and len(m.group(2)) > 2 else 0)
    while stack and stack[-1][0] >= indent:
        stack.pop()
    stack.append((indent, m.group(3)))
    print('.'.join(k for _, k in stack))
PY
)
keys=$(printf '%s\n' "$out" | grep -c '^[a-z_.]*: ')
ok "--check-config lists the keys ($keys)" test "$keys" -gt 40
missing=""
for key in $(printf '%s\n' "$out" | sed -n 's/^\([a-z_.]*\): .*/\1/p'); do
	printf '%s\n' "$documented" | grep -qx "$key" || missing="$missing $key"
done
is "$missing" "" "every key wingxfer reads is documented in config.yml.example"
done_testing
