#!/bin/bash
# make install DESTDIR=... puts programs, scripts, templates, cron, logrotate
# and the sample config where admins expect them, and the installed
# generator works from the installed templates.
. "$top_srcdir/tests/lib/tap.sh"
wx_tmpdir
dest="$WX_TEST_TMP/root"
make -C "$top_builddir" install DESTDIR="$dest" >"$WX_TEST_TMP/install.log" 2>&1
is "$?" 0 "make install DESTDIR= succeeds"
prefix=$(sed -n "s/^prefix = //p" "$top_builddir/Makefile")
sysconfdir=$(sed -n "s/^sysconfdir = //p" "$top_builddir/Makefile" | sed "s|\${prefix}|$prefix|")
for p in wingxfer-source wingxfer-destination wingxfer-push wingxfer-watchdog wingxfer-status wingxfer-webconfig wingxfer-spawn wingxfer-events; do
	ok "sbin/$p installed and executable" test -x "$dest$prefix/sbin/$p"
done
mandir="$prefix/share/man"
for p in wingxfer-source wingxfer-destination wingxfer-push wingxfer-watchdog wingxfer-webconfig wingxfer-spawn wingxfer-events; do
	ok "man page $p(8) installed" test -s "$dest$mandir/man8/$p.8"
done
ok "man page wingxfer.conf(5) installed" test -s "$dest$mandir/man5/wingxfer.conf.5"
ok "cron.d/wingxfer installed" test -f "$dest$sysconfdir/cron.d/wingxfer"
ok "logrotate.d/wingxfer installed" test -f "$dest$sysconfdir/logrotate.d/wingxfer"
ok "wingxfer/config.yml.example installed" test -f "$dest$sysconfdir/wingxfer/config.yml.example"
tmpl="$dest$prefix/share/wingxfer/www-config"
ok "apache template installed" test -f "$tmpl/apache/wingxfer.conf.in"
ok "lighttpd template installed" test -f "$tmpl/lighttpd/50-wingxfer.conf.in"
ok "systemd units installed with the sbin path" grep -q "^ExecStart=$prefix/sbin/wingxfer-destination --workers 4$" "$tmpl/systemd/wingxfer-destination.service"
ok "... wingxfer-events' too" grep -q "^ExecStart=$prefix/sbin/wingxfer-events --workers 8$" "$tmpl/systemd/wingxfer-events.service"
ok "... with its socket" grep -q "^ListenStream=/run/wingxfer/events.sock$" "$tmpl/systemd/wingxfer-events.socket"
CFG=$(make_node_config "$WX_TEST_TMP/node" inst)
out=$(WINGXFER_SBINDIR="$dest$prefix/sbin" "$dest$prefix/sbin/wingxfer-webconfig" --config "$CFG" \
	--templates "$tmpl" --server-name node.example apache 2>/dev/null)
like "$out" 'ProxyPassMatch +"\^/api/transfers\$" "unix:/run/wingxfer/destination.sock\|fcgi://localhost/api/transfers"' \
	"the installed generator writes the Apache routes"
like "$out" 'ProxyPassMatch +"\^/api/transfers/\(\[\^/\]\+\)/events\$" "unix:/run/wingxfer/events.sock\|fcgi://wingxfer-events/api/transfers/\$1/events" flushpackets=on' \
	"... and the events route, to its own socket, flushed"
like "$out" '# api.ssl.enabled is false:     SSLEngine on' "TLS lines are commented out when api.ssl.enabled is false"
grep -q @ <<<"$out" && ok "no placeholder left" false || ok "no placeholder left" true
done_testing
