#!/bin/bash
# The Debian package, end to end: build it from the release tree
# (make distdir) with dpkg-buildpackage, lintian finds no error or warning,
# install it, check it puts every file where Debian expects it, move a
# server between two nodes run only from the installed files (programs
# started by the installed wingxfer-spawn, Apache and lighttpd sites from
# the installed wingxfer-webconfig and templates, the panel emulator), then
# purge it and check nothing of it is left.
# Takes 5-8 minutes (most of it the package build and lintian).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root to install a package"
# The package is built from the release tree with its own flags, never from
# this build directory: on the sanitizer build this test would repeat the
# normal build's run exactly (5-8 minutes of CI) and prove nothing more.
grep -q -- '--enable-sanitizers' "$top_builddir/config.status" &&
	skip_all "the package does not use the sanitizer build; the normal build's run covers it"
for t in dpkg-buildpackage dh lintian apt-get; do
	command -v "$t" >/dev/null || skip_all "$t not installed (apt-get install debhelper dpkg-dev lintian)"
done
# A wingxfer installed or configured on this machine is not ours to purge.
if dpkg-query -W -f '${Status}' wingxfer 2>/dev/null | grep -q 'installed\|config-files'; then
	skip_all "the wingxfer package is already on this machine; not touching it"
fi
for d in /etc/wingxfer /var/lib/wingxfer /var/log/wingxfer /usr/share/wingxfer; do
	[ -e "$d" ] && skip_all "$d exists; not touching a wingxfer installed by other means"
done
wx_tmpdir
APT="apt-get -y -q -o DPkg::Lock::Timeout=600"
version=$(sed -n 's/^VERSION = //p' "$top_builddir/Makefile")
src="$WX_TEST_TMP/pkg/wingxfer-$version"

# --- build --------------------------------------------------------------
mkdir -p "$WX_TEST_TMP/pkg"
make -s -C "$top_builddir" distdir distdir="$src" top_distdir="$src" >"$WX_TEST_TMP/distdir.log" 2>&1
is "$?" 0 "make distdir: the release tree"
start=$(date +%s)
(cd "$src" && DEB_BUILD_OPTIONS="nocheck noautodbgsym" dpkg-buildpackage -us -uc -b) >"$WX_TEST_TMP/build.log" 2>&1
rc=$?
is "$rc" 0 "dpkg-buildpackage -us -uc -b succeeds ($(( $(date +%s) - start )) s)"
[ "$rc" = 0 ] || tail -n 30 "$WX_TEST_TMP/build.log" | sed 's/^/# /'
arch=$(dpkg --print-architecture)
deb="$WX_TEST_TMP/pkg/wingxfer_${version}_$arch.deb"
ok "wingxfer_${version}_$arch.deb built" test -f "$deb"
[ -f "$deb" ] || { done_testing; exit; }

lint=$(lintian --pedantic "$WX_TEST_TMP/pkg/wingxfer_${version}_$arch.changes" 2>&1 | grep '^[EW]: ')
is "$lint" "" "lintian: no error and no warning on the package"

# Build-Depends and tools/debian-packages.txt name the same build tools.
control_deps=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$top_srcdir/debian/control" | sed 's/^Build-Depends://' |
	tr ',' '\n' | sed 's/(.*//; s/^ *//; s/ *$//' | grep -v '^$\|^Standards-Version\|^debhelper-compat' | sort)
list_deps=$(sed -n '/^# build$/,/^# /p' "$top_srcdir/tools/debian-packages.txt" | grep -v '^#\|^build-essential$' | sort)
is "$control_deps" "$list_deps" "debian/control Build-Depends = the build section of tools/debian-packages.txt"
for p in debhelper dpkg-dev lintian; do
	ok "tools/debian-packages.txt lists $p (to build the package)" grep -qx "$p" "$top_srcdir/tools/debian-packages.txt"
done

# --- install ------------------------------------------------------------
$APT --no-install-recommends install "$deb" >"$WX_TEST_TMP/install.log" 2>&1
rc=$?
is "$rc" 0 "apt-get install ./wingxfer_${version}_$arch.deb"
[ "$rc" = 0 ] || { tail -n 20 "$WX_TEST_TMP/install.log" | sed 's/^/# /'; done_testing; exit; }
purged=0
purge() { [ "$purged" = 1 ] || $APT purge wingxfer >"$WX_TEST_TMP/purge.log" 2>&1; purged=1; }
trap 'purge; _tap_cleanup' EXIT
dpkg-query -L wingxfer | sort >"$WX_TEST_TMP/files"

for p in wingxfer-source wingxfer-destination wingxfer-push wingxfer-watchdog wingxfer-webconfig wingxfer-spawn wingxfer-events; do
	ok "/usr/sbin/$p" test -x "/usr/sbin/$p"
	ok "man page $p(8)" test -f "/usr/share/man/man8/$p.8.gz"
done
ok "man page wingxfer.conf(5)" test -f /usr/share/man/man5/wingxfer.conf.5.gz
# (mandoc.db, when a makewhatis run left one, does not know the new pages:
# mandoc says so, which is not about the pages.)
for f in /usr/share/man/man8/wingxfer-*.8.gz /usr/share/man/man5/wingxfer.conf.5.gz; do
	lint=$(zcat "$f" | mandoc -Tlint 2>&1 | grep -v 'outdated mandoc.db lacks wingxfer')
	is "$lint" "" "installed ${f##*/} is clean under mandoc -Tlint (cross references resolve)"
done
conffiles=$(dpkg-query -W -f '${Conffiles}\n' wingxfer | awk 'NF {print $1}' | sort | tr '\n' ' ')
is "$conffiles" "/etc/cron.d/wingxfer /etc/logrotate.d/wingxfer /etc/wingxfer/config.yml.example " \
	"conffiles: the cron job, logrotate and the example config"
ok "cron job runs the watchdog as root every minute" grep -q '^\* \* \* \* \* root .*wingxfer-watchdog' /etc/cron.d/wingxfer
for u in wingxfer-source.socket wingxfer-destination.socket wingxfer-watchdog.timer wingxfer-events.socket; do
	ok "systemd unit $u installed" test -f "/lib/systemd/system/$u"
	case $u in *.socket) wants=sockets.target.wants ;; *) wants=timers.target.wants ;; esac
	ok "$u enabled (dh_installsystemd: $wants)" test "$(readlink "/etc/systemd/system/$wants/$u")" = "/lib/systemd/system/$u"
done
ok "the unit runs the installed program" grep -q '^ExecStart=/usr/sbin/wingxfer-destination ' /lib/systemd/system/wingxfer-destination.service
ok "the templates of the generator" test -f /usr/share/wingxfer/www-config/apache/wingxfer.conf.in

# --- a transfer from the installed files ---------------------------------
WX_BIN=/usr/sbin
WX_TOOLS=/usr/sbin
WX_TEMPLATES=/usr/share/wingxfer/www-config
webstack_ca || { ok "test CA" false; done_testing; exit; }
PANEL_TLS=1 panel_start || { ok "panel emulator" false; done_testing; exit; }
PANEL_TLS=1
node_setup s1; node_start s1 apache || ok "node s1 (Apache) starts" false
node_setup d1; node_start d1 lighttpd || ok "node d1 (lighttpd) starts" false
ok "node s1's programs are the installed ones" grep -q '/usr/sbin/wingxfer-source' "/proc/$(cat "$WX_TEST_TMP/s1/run/source.pid")/cmdline"
for n in s1 d1; do panel_node "$n" "id-$n" "token-$n" "${NODE_URL[$n]}"; done
uuid=33333333-0000-4000-8000-000000000001
TREES="$top_srcdir/tests/lib/trees.py"
python3 "$TREES" make "$WX_TEST_TMP/s1/data/$uuid" --files 500 --seed 5
python3 "$TREES" manifest "$WX_TEST_TMP/s1/data/$uuid" >"$WX_TEST_TMP/before"
panel_server "$uuid" 0
answer=$(panel_api POST /_emulator/transfers "{\"server\":\"$uuid\",\"source\":\"s1\",\"destination\":\"d1\"}")
like "$answer" '"source_status": ?202' "the installed source accepts the transfer (202)"
src_state() {
	https_curl -H "Authorization: Bearer token-s1" "${NODE_URL[s1]}/api/servers/$uuid/transfer" |
		python3 -c 'import json,sys; print(json.load(sys.stdin).get("state"))' 2>/dev/null
}
finished() { case "$(src_state)" in completed|failed|cancelled) return 0 ;; esac; return 1; }
wait_for "transfer $uuid" 300 finished
is "$(src_state)" completed "Apache -> lighttpd with the installed programs: the transfer completes"
python3 "$TREES" manifest "$WX_TEST_TMP/d1/data/$uuid" >"$WX_TEST_TMP/after" 2>/dev/null
ok "$(wc -l <"$WX_TEST_TMP/before") entries arrive byte-identical" cmp -s "$WX_TEST_TMP/before" "$WX_TEST_TMP/after"
state=$(panel_api GET "/_emulator/transfers/$uuid" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("state"))')
is "$state" completed "the panel's transfer is completed"
out=$(/usr/sbin/wingxfer-watchdog --config "$WX_TEST_TMP/s1/config.yml" --dry-run 2>&1)
is "$?" 0 "the installed watchdog runs"
node_stop s1; node_stop d1

# --- purge ----------------------------------------------------------------
# What the programs leave at run time under the default paths (a node using
# the defaults), which purge must take away too.
mkdir -p /var/lib/wingxfer/transfers /var/log/wingxfer
echo '{}' >/var/lib/wingxfer/transfers/$uuid.json
echo log >/var/log/wingxfer/wingxfer-source.log
purge
is "$(dpkg-query -W -f '${Status}' wingxfer 2>/dev/null)" "" "purged: dpkg knows no wingxfer"
left=""
while read -r f; do
	[ -d "$f" ] && continue  # directories are checked below (/usr, /lib, /etc are shared)
	[ -e "$f" ] || [ -L "$f" ] && left="$left $f"
done <"$WX_TEST_TMP/files"
is "$left" "" "no file of the package is left"
for d in /etc/wingxfer /usr/share/wingxfer /usr/share/doc/wingxfer /var/lib/wingxfer /var/log/wingxfer /run/wingxfer; do
	ok "$d is gone" test ! -e "$d"
done
links=$(find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled -name '*wingxfer*' 2>/dev/null)
is "$links" "" "no systemd enablement left"
ok "the server data on the nodes is untouched" test -d "$WX_TEST_TMP/d1/data/$uuid"
done_testing
