#!/bin/bash
# The shipped systemd units start the programs, and the programs work inside
# the units' confinement: a container (systemd-nspawn booting this machine's
# /usr with a private /etc) runs systemd with the installed
# wingxfer-{source,destination,events}.socket/.service and wingxfer-watchdog.service
# exactly as `make install` writes them; the host's Apache (shipped
# templates, TLS) proxies to their sockets.  A panel (emulator) moves a
# server from a host node into the container and back, so the destination
# service, the source service and the push worker it starts all do their
# real work under ProtectSystem=strict, the capability bounding set and the
# system-call filter.  Each service is rated "OK" or better by
# systemd-analyze security.
#
# The container's node uses the default paths (/var/lib/pterodactyl/volumes,
# /var/lib/wingxfer, /var/log/pterodactyl), bind-mounted from the test's
# directory so the host can look at them.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
webstack_init
for t in systemd-nspawn nsenter systemd-analyze; do
	command -v "$t" >/dev/null || { echo "not ok 1 - $t is installed (tools/install-deps)"; echo 1..1; exit 1; }
done
PANEL_TLS=1 panel_start || { echo "not ok 1 - panel emulator"; echo 1..1; exit 1; }
PANEL_TLS=1
TREES="$top_srcdir/tests/lib/trees.py"
UNITS="wingxfer-source.service wingxfer-destination.service wingxfer-events.service wingxfer-watchdog.service"

# --- the installed units -----------------------------------------------------
inst="$WX_TEST_TMP/inst"
make -C "$top_builddir" install DESTDIR="$inst" >"$WX_TEST_TMP/install.log" 2>&1
is "$?" 0 "make install DESTDIR= succeeds"
prefix=$(sed -n "s/^prefix = //p" "$top_builddir/Makefile")
sysconfdir=$(sed -n "s/^sysconfdir = //p" "$top_builddir/Makefile" | sed "s|\${prefix}|$prefix|")
sbin="$prefix/sbin"
shipped="$inst$prefix/share/wingxfer/www-config/systemd"
for u in $UNITS; do
	rating=$(systemd-analyze security --offline=true "$shipped/$u" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
	like "$rating" '^[0-9.]+ (SAFE|OK)$' "$u: systemd-analyze security rates it OK or better ($rating)"
done

# --- node a: the usual programs on the host ------------------------------------
node_setup a; node_start a apache || { echo "not ok - node a"; exit 1; }

# --- node u: the units in a container ------------------------------------------
node_setup u
dir="$WX_TEST_TMP/u"
root="$WX_TEST_TMP/root"
mkdir -p "$root"/{usr,etc,var,tmp,run,proc,sys,dev,root}
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$root/$l"; done
cp -a /etc/. "$root/etc/" 2>/dev/null
rm -f "$root/etc/os-release" "$root/etc/machine-id"
cp -L /etc/os-release "$root/etc/os-release"
# Only what this test enables starts: none of the host's services.
find "$root/etc/systemd/system" -mindepth 1 -maxdepth 1 -name '*.wants' -exec rm -rf {} +
cp "$shipped"/*.service "$shipped"/*.socket "$root/etc/systemd/system/"
cat > "$root/etc/systemd/system/wingxfer-test.target" <<'EOF'
[Unit]
Description=wingxfer units under test
Wants=wingxfer-source.socket wingxfer-destination.socket wingxfer-events.socket
After=wingxfer-source.socket wingxfer-destination.socket wingxfer-events.socket
EOF
if grep -q -- '--enable-sanitizers' "$top_builddir/config.status"; then
	# LeakSanitizer stops the world with ptrace, which the units' system-call
	# filter refuses (as it should): the sanitizer build checks leaks
	# elsewhere.
	for u in $UNITS; do
		mkdir -p "$root/etc/systemd/system/$u.d"
		printf '[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n' > "$root/etc/systemd/system/$u.d/asan.conf"
	done
fi
# $prefix comes from the install (read-only); the config where the units'
# programs look for it.
mkdir -p "$inst$sysconfdir/wingxfer" "$root$prefix"
sed -e "s|$WX_TEST_TMP/ca|/etc/wingxfer/ca|g" \
	-e "s|^\(  root_directory:\).*|\1 /var/lib/pterodactyl|" \
	-e "s|^\(  data:\).*|\1 /var/lib/pterodactyl/volumes|" \
	-e "s|^\(  backup_directory:\).*|\1 /var/lib/pterodactyl/backups|" \
	-e "s|^\(  log_directory:\).*|\1 /var/log/pterodactyl|" \
	-e "s|^\(    state_directory:\).*|\1 /var/lib/wingxfer|" \
	"$dir/config.yml" > "$inst$sysconfdir/wingxfer/config.yml"
ok "the container's config names only default paths" bash -c "! grep -q '$WX_TEST_TMP' '$inst$sysconfdir/wingxfer/config.yml'"

# nspawn's own system-call filter predates Landlock (ENOSYS inside the
# container): let the units' own filter be what is tested.
systemd-nspawn --quiet --register=no --keep-unit -D "$root" \
	--system-call-filter="landlock_create_ruleset landlock_add_rule landlock_restrict_self" \
	--bind-ro=/usr --bind-ro="$inst$prefix:$prefix" --bind-ro="$WX_TEST_TMP/ca:/etc/wingxfer/ca" \
	--bind="$dir/data:/var/lib/pterodactyl/volumes" --bind="$dir/backups:/var/lib/pterodactyl/backups" \
	--bind="$dir/state:/var/lib/wingxfer" --bind="$dir/logs:/var/log/pterodactyl" \
	--bind="$dir/run:/run/wingxfer" \
	-b -- systemd.unit=wingxfer-test.target >"$WX_TEST_TMP/container.log" 2>&1 &
NSPAWN=$!
track_pid "$NSPAWN"
# The container's systemd: the process named systemd below systemd-nspawn.
_init_pid() {
	local p
	for p in $(pgrep -x systemd); do
		[ "$(ps -o ppid= -p "$p" | tr -d ' ')" = "$NSPAWN" ] && { INIT=$p; return 0; }
		local pp; pp=$(ps -o ppid= -p "$p" | tr -d ' ')
		[ -n "$pp" ] && [ "$(ps -o ppid= -p "$pp" | tr -d ' ')" = "$NSPAWN" ] && { INIT=$p; return 0; }
	done
	return 1
}
in_container() { nsenter -t "$INIT" -m -u -i -p -- "$@"; }
_sockets_up() { [ -S "$dir/run/destination.sock" ] && [ -S "$dir/run/source.sock" ] && [ -S "$dir/run/events.sock" ]; }
wait_for "container's systemd" 120 _init_pid
ok "systemd boots in the container" test -n "${INIT:-}"
wait_for "the units' sockets" 120 _sockets_up
ok "systemd listens on the units' sockets" _sockets_up || {
	tail -40 "$WX_TEST_TMP/container.log" | sed 's/^/# /'; }

# The host's Apache for node u, proxying to those sockets (node_start
# without wingxfer-spawn).
NODE_WEB[u]=apache
_plain_config u
_start_apache u apache
wait_for "apache of node u" 20 _web_up u
for n in a u; do panel_node "$n" "id-$n" "token-$n" "${NODE_URL[$n]}"; done

is "$(https_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer token-u" \
	"${NODE_URL[u]}/api/transfers/99999999-0000-4000-8000-000000000009")" 404 \
	"the socket-activated destination answers through Apache (unknown transfer: 404)"
is "$(https_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer token-u" \
	"${NODE_URL[u]}/api/servers/99999999-0000-4000-8000-000000000009/transfer")" 404 \
	"the socket-activated source answers through Apache (unknown transfer: 404)"
is "$(https_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer token-u" \
	"${NODE_URL[u]}/api/transfers/99999999-0000-4000-8000-000000000009/events")" 404 \
	"the socket-activated events program answers through Apache (unknown transfer: 404)"

callbacks() { # callbacks UUID KIND
	panel_api GET "/_emulator/callbacks?server=$1" | python3 -c '
import json, sys
print(sum(1 for c in json.load(sys.stdin) if c.get("kind") == sys.argv[1]))' "$2"
}
src_state() { json_get "$(https_curl -H "Authorization: Bearer token-$1" "${NODE_URL[$1]}/api/servers/$2/transfer")" '["state"]' 2>/dev/null; }
dst_state() { json_get "$(https_curl -H "Authorization: Bearer token-$1" "${NODE_URL[$1]}/api/transfers/$2")" '["state"]' 2>/dev/null; }
finished() { case "$(src_state "$1" "$2")" in completed|failed|cancelled) return 0 ;; esac; return 1; }

transfer() { # transfer FROM TO UUID
	local from=$1 to=$2 uuid=$3
	python3 "$TREES" make "$WX_TEST_TMP/$from/data/$uuid" --files 300 --seed 17
	python3 "$TREES" manifest "$WX_TEST_TMP/$from/data/$uuid" > "$WX_TEST_TMP/$uuid.before"
	panel_server "$uuid" 0
	local answer
	answer=$(panel_api POST /_emulator/transfers "{\"server\":\"$uuid\",\"source\":\"$from\",\"destination\":\"$to\"}")
	like "$answer" '"source_status": ?202' "$from -> $to: the source accepts the transfer"
	grep -Eq '"source_status": ?202' <<<"$answer" && wait_for "transfer $uuid" 300 finished "$from" "$uuid"
	is "$(src_state "$from" "$uuid")" completed "$from -> $to: source record completed" || {
		https_curl -H "Authorization: Bearer token-$from" "${NODE_URL[$from]}/api/servers/$uuid/transfer" | sed 's/^/# source: /'
		in_container journalctl -b --no-pager -n 30 -u 'wingxfer-*' | sed 's/^/# container: /'; }
	is "$(dst_state "$to" "$uuid")" completed "$from -> $to: destination record completed"
	python3 "$TREES" manifest "$WX_TEST_TMP/$to/data/$uuid" > "$WX_TEST_TMP/$uuid.after" 2>/dev/null
	ok "$from -> $to: the tree arrives byte-identical" cmp -s "$WX_TEST_TMP/$uuid.before" "$WX_TEST_TMP/$uuid.after"
	is "$(callbacks "$uuid" success)" 1 "$from -> $to: exactly one success callback"
}

# A confined program while it runs: its /proc status (host view).
status_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null; }
svc_pid() { pgrep -f "^$sbin/$1 --workers" | head -n 1; }

transfer a u 22222222-0000-4000-8000-000000000001
transfer u a 22222222-0000-4000-8000-000000000002

# The destination's parser child confines itself inside the unit: the
# unit's own filter must let it (Landlock, seccomp), or it says what it
# skipped.
journal=$(in_container journalctl --no-pager -b -u wingxfer-destination.service)
unlike "$journal" 'confinement: not available' "inside the unit the parser child applies its whole confinement (no 'not available' in the journal)"
grep "confinement" <<<"$journal" | head -n 3 | sed "s/^/# /"
unlike "$journal" 'extractor process ended unexpectedly' "no parser child died"

pid=$(svc_pid wingxfer-destination)
ok "the destination service is running (pid ${pid:-none})" test -n "$pid"
is "$(status_field "$pid" NoNewPrivs)" 1 "the destination service runs with NoNewPrivs"
is "$(status_field "$pid" Seccomp)" 2 "the destination service runs under a seccomp filter"
# CAP_CHOWN|DAC_OVERRIDE|DAC_READ_SEARCH|FOWNER|FSETID|SETGID|SETUID = bits 0-4, 6, 7
is "$(status_field "$pid" CapBnd)" 00000000000000df "the destination's capability bounding set is what the unit says"

# Work for the watchdog that shows it ran and could write the state
# directory: an old tombstone of a delivered callback, which it removes.
tomb="$dir/state/outbox/sent/33333333-0000-4000-8000-000000000003.tr-old.json"
mkdir -p "${tomb%/*}" && echo '{}' > "$tomb" && touch -d '9 days ago' "$tomb"
in_container systemctl start wingxfer-watchdog.service
is "$?" 0 "the watchdog service runs to completion"
ok "the watchdog did its work in the state directory (removed an old tombstone)" test ! -e "$tomb"
for u in wingxfer-source.service wingxfer-destination.service wingxfer-events.service; do
	is "$(in_container systemctl show -p Result --value "$u")" success "$u has not failed"
done

# Orderly shutdown: SIGTERM makes nspawn power the container off.
kill -TERM "$NSPAWN" 2>/dev/null
_gone() { ! kill -0 "$NSPAWN" 2>/dev/null; }
wait_for "container shutdown" 120 _gone
ok "the container shuts down" _gone
done_testing
