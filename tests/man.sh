#!/bin/bash
# The manual pages: every program has one, each is clean under mandoc -Tlint,
# each section-8 page says what the program's --help says, and the
# section-5 page lists exactly the keys wingxfer reads (--check-config).
. "$top_srcdir/tests/lib/tap.sh"
command -v mandoc >/dev/null || skip_all "mandoc not installed (apt-get install mandoc)"
wx_tmpdir
man="$top_builddir/man"
pages="wingxfer-source.8 wingxfer-destination.8 wingxfer-push.8 wingxfer-watchdog.8
	wingxfer-webconfig.8 wingxfer-spawn.8 wingxfer-status.8 wingxfer.conf.5
	wingxfer-events.8"
for p in $pages; do
	ok "$p built" test -s "$man/$p"
	# Cross references between our own pages are only "not found" because
	# they are not installed yet: the install test lints the installed ones.
	lint=$(mandoc -Tlint "$man/$p" 2>&1 | grep -v ': STYLE: referenced manual not found: Xr wingxfer')
	is "$lint" "" "$p is clean under mandoc -Tlint"
done

# The rendered page has every line of the help text (whitespace aside).
words() { tr -s ' \t\n' '\n\n\n' | grep -v '^$'; }
for prog in handlers/wingxfer-source handlers/wingxfer-destination handlers/wingxfer-push \
    handlers/wingxfer-watchdog tools/wingxfer-webconfig tools/wingxfer-spawn \
    handlers/wingxfer-status handlers/wingxfer-events; do
	name=${prog#*/}
	"$top_builddir/$prog" --help | words >"$WX_TEST_TMP/help"
	mandoc -Tascii "$man/$name.8" | sed 's/.\x08//g' | sed '1d;$d' | sed '/^SEE ALSO/,$d' | words >"$WX_TEST_TMP/page"
	if cmp -s "$WX_TEST_TMP/help" "$WX_TEST_TMP/page"; then
		ok "$name.8 says what $name --help says" true
	else
		ok "$name.8 says what $name --help says" false
		diff "$WX_TEST_TMP/help" "$WX_TEST_TMP/page" | head -20 | sed 's/^/# /'
	fi
done

# Keys: the page's .It Cm entries against what --check-config prints.
CFG=$(make_node_config "$WX_TEST_TMP/node" man)
"$WX_BIN/wingxfer-source" --config "$CFG" --check-config >"$WX_TEST_TMP/check" 2>&1
is "$?" 0 "--check-config accepts the test config"
sed -n 's/^\([a-z_.]*\): .*/\1/p' "$WX_TEST_TMP/check" | sort >"$WX_TEST_TMP/keys-program"
sed -n 's/^\.It Cm \([a-z_.]*\)$/\1/p' "$man/wingxfer.conf.5" | sort >"$WX_TEST_TMP/keys-page"
ok "the program has keys" test -s "$WX_TEST_TMP/keys-program"
if cmp -s "$WX_TEST_TMP/keys-program" "$WX_TEST_TMP/keys-page"; then
	ok "wingxfer.conf.5 lists exactly the keys --check-config prints ($(wc -l <"$WX_TEST_TMP/keys-page"))" true
else
	ok "wingxfer.conf.5 lists exactly the keys --check-config prints" false
	diff "$WX_TEST_TMP/keys-program" "$WX_TEST_TMP/keys-page" | sed 's/^/# /'
fi
done_testing
