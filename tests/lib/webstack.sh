# Web-server harness for the integration tests (sourced after tap.sh).
#
# A test node NAME lives in $WX_TEST_TMP/NAME: config.yml (TLS on, a free
# port on 127.0.0.1, the test CA as system.transfers.ca_file), data/, state/,
# run/ (FastCGI sockets, started by the shipped wingxfer-spawn; NODE_WORKERS
# processes each for source and destination, NODE_EVENTS_WORKERS for events) and web/ (a
# private Apache or lighttpd instance whose site configuration is generated
# from www-config/ by the shipped wingxfer-webconfig: templated only for
# ports and paths).  Each node also gets a plain-HTTP port (NODE_PLAIN_PORT)
# served by the same templates with TLS off, to test the TLS contract.
#
#   webstack_ca                       test CA + node certificate (in $WX_TEST_TMP/ca)
#   webstack_init [SERVERS]           a test's start: skip unless root (SERVERS run as
#                                     www-data; default Apache/lighttpd), wx_tmpdir,
#                                     webstack_ca or a failed check and exit
#   node_setup NAME [EXTRA-YAML]      config for node NAME (panel: $PANEL_URL)
#   node_start NAME apache|lighttpd|beside-wings
#                                     programs + web server; sets NODE_URL[NAME]
#                                     (beside-wings: the rest goes to $WINGS_URL)
#   node_stop NAME                    stops them (by pid)
#   node_restart_web NAME             restarts only the web server
#   https_curl ARGS...                curl trusting the test CA
#
# NODE_HOST (at node_setup) listens on another address than 127.0.0.1 (its
# certificate must name it); NODE_NS[NAME] (before node_start) runs the
# node's programs and web server in that network namespace (ip netns exec).

declare -A NODE_URL NODE_PORT NODE_PLAIN_PORT NODE_WEB NODE_WEB_PID NODE_CA NODE_NS
WX_TOOLS="$top_builddir/tools"
WX_TEMPLATES="$top_srcdir/www-config"

webstack_init() {
	[ "$(id -u)" = 0 ] || skip_all "needs root to run ${1:-Apache/lighttpd} as www-data"
	wx_tmpdir
	webstack_ca || { echo "not ok 1 - test CA"; echo 1..1; exit 1; }
}

webstack_ca() {
	local d="$WX_TEST_TMP/ca"
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=wingxfer test CA" \
		-keyout "$d/ca.key" -out "$d/ca.pem" >/dev/null 2>&1 || return 1
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$d/node.key" -out "$d/node.csr" >/dev/null 2>&1 || return 1
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > "$d/ext.cnf"
	openssl x509 -req -in "$d/node.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/ext.cnf" -out "$d/node.pem" >/dev/null 2>&1 || return 1
	# A second, unrelated CA for "wrong CA" tests.
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=some other CA" \
		-keyout "$d/other-ca.key" -out "$d/other-ca.pem" >/dev/null 2>&1 || return 1
	chmod 644 "$d"/*.pem
	WX_CA="$d/ca.pem"
}

https_curl() { curl -sS --cacert "$WX_CA" "$@"; }

node_setup() {
	local name=$1 extra=${2:-} dir="$WX_TEST_TMP/$1"
	local port plain host=${NODE_HOST:-127.0.0.1}
	port=$(free_port); plain=$(free_port)
	NODE_PORT[$name]=$port
	NODE_PLAIN_PORT[$name]=$plain
	NODE_URL[$name]="https://$host:$port"
	make_node_config "$dir" "$name" "$extra" >/dev/null
	# TLS on and the node's own address, for the programs and the generator.
	cat >> "$dir/config.yml" <<YAML
api:
  host: $host
  port: $port
  ssl:
    enabled: true
    cert: $WX_TEST_TMP/ca/node.pem
    key: $WX_TEST_TMP/ca/node.key
YAML
	sed -i "s|^    disk_reserve: 0$|    disk_reserve: 0\n    ca_file: $WX_TEST_TMP/ca/ca.pem|" "$dir/config.yml"
	mkdir -p "$dir/run" "$dir/log" "$dir/web/htdocs"
}

# The same templates with TLS off and the plain port, for the TLS contract.
_plain_config() {
	local name=$1 dir="$WX_TEST_TMP/$1"
	sed -e "s/^    enabled: true$/    enabled: false/" -e "s/^  port: .*/  port: ${NODE_PLAIN_PORT[$name]}/" \
		"$dir/config.yml" > "$dir/web/plain-config.yml"
}

# _start_apache NAME [apache|beside-wings]; beside-wings proxies the rest to $WINGS_URL.
_start_apache() {
	local name=$1 kind=${2:-apache} dir="$WX_TEST_TMP/$1" web="$WX_TEST_TMP/$1/web"
	WINGXFER_SBINDIR="$WX_BIN" "$WX_TOOLS/wingxfer-webconfig" --config "$dir/config.yml" \
		--rundir "$dir/run" --server-name 127.0.0.1 --templates "$WX_TEMPLATES" \
		--wings-url "${WINGS_URL:-http://127.0.0.1:8080}" "$kind" > "$web/site.conf" || return 1
	WINGXFER_SBINDIR="$WX_BIN" "$WX_TOOLS/wingxfer-webconfig" --config "$web/plain-config.yml" \
		--rundir "$dir/run" --server-name 127.0.0.1 --templates "$WX_TEMPLATES" apache \
		> "$web/plain-site.conf" 2>/dev/null || return 1
	sed -e "s|@DIR@|$web|g" -e "s|@SITE@|$web/site.conf|" -e "s|@PLAIN_SITE@|$web/plain-site.conf|" \
		"$top_srcdir/tests/lib/apache-main.conf.in" > "$web/apache.conf"
	$(_ns "$name") /usr/sbin/apache2 -f "$web/apache.conf" -DFOREGROUND >>"$web/stdout.log" 2>&1 &
	NODE_WEB_PID[$name]=$!
	track_pid "${NODE_WEB_PID[$name]}"
}

_start_lighttpd() {
	local name=$1 dir="$WX_TEST_TMP/$1" web="$WX_TEST_TMP/$1/web"
	WINGXFER_SBINDIR="$WX_BIN" "$WX_TOOLS/wingxfer-webconfig" --config "$dir/config.yml" \
		--rundir "$dir/run" --server-name 127.0.0.1 --templates "$WX_TEMPLATES" \
		--auth-lua "$web/wingxfer-auth.lua" lighttpd > "$web/site.conf" || return 1
	WINGXFER_SBINDIR="$WX_BIN" "$WX_TOOLS/wingxfer-webconfig" --config "$dir/config.yml" \
		--templates "$WX_TEMPLATES" lighttpd-auth > "$web/wingxfer-auth.lua" || return 1
	chown root:www-data "$web/wingxfer-auth.lua" && chmod 640 "$web/wingxfer-auth.lua"
	mkdir -p "$dir/data/.wingxfer-uploads"
	chown www-data:www-data "$dir/data/.wingxfer-uploads"
	chmod 700 "$dir/data/.wingxfer-uploads"
	sed -e "s|@DIR@|$web|g" -e "s|@SITE@|$web/site.conf|" \
		-e "s|@PLAIN_PORT@|${NODE_PLAIN_PORT[$name]}|" \
		"$top_srcdir/tests/lib/lighttpd-main.conf.in" > "$web/lighttpd.conf"
	touch "$web/error.log" "$web/access.log"
	chown www-data "$web/error.log" "$web/access.log"
	$(_ns "$name") /usr/sbin/lighttpd -D -f "$web/lighttpd.conf" >>"$web/stdout.log" 2>&1 &
	NODE_WEB_PID[$name]=$!
	track_pid "${NODE_WEB_PID[$name]}"
}

# NODE_CA[NAME] overrides the CA a node's certificate is checked with.
_web_up() { $(_ns "$1") curl -s -o /dev/null --max-time 2 --cacert "${NODE_CA[$1]:-$WX_CA}" "${NODE_URL[$1]}/" ; }
# The command prefix that runs a program in node NAME's network namespace.
_ns() { [ -n "${NODE_NS[$1]:-}" ] && echo "ip netns exec ${NODE_NS[$1]}"; }

node_start() {
	local name=$1 kind=$2 dir="$WX_TEST_TMP/$1"
	NODE_WEB[$name]=$kind
	_plain_config "$name"
	$(_ns "$name") env WINGXFER_SBINDIR="$WX_BIN" "$WX_TOOLS/wingxfer-spawn" --config "$dir/config.yml" \
		--rundir "$dir/run" --logdir "$dir/log" --workers "${NODE_WORKERS:-3}" \
		--events-workers "${NODE_EVENTS_WORKERS:-2}" start >/dev/null || {
		diag "wingxfer-spawn failed for $name"; cat "$dir"/log/*.log >&2; return 1; }
	track_pid "$(cat "$dir/run/source.pid")"
	track_pid "$(cat "$dir/run/destination.pid")"
	track_pid "$(cat "$dir/run/events.pid")"
	case "$kind" in
	apache|beside-wings) _start_apache "$name" "$kind" ;;
	lighttpd) _start_lighttpd "$name" ;;
	*) diag "unknown web server $kind"; return 1 ;;
	esac || return 1
	wait_for "$kind of node $name on ${NODE_URL[$name]}" 20 _web_up "$name" || {
		cat "$dir/web/error.log" "$dir/web/stdout.log" >&2 2>/dev/null; return 1; }
}

node_restart_web() {
	local name=$1
	stop_pid "${NODE_WEB_PID[$name]}"
	case "${NODE_WEB[$name]}" in
	apache|beside-wings) _start_apache "$name" "${NODE_WEB[$name]}" ;;
	lighttpd) _start_lighttpd "$name" ;;
	esac
	wait_for "${NODE_WEB[$name]} of node $name back" 20 _web_up "$name"
}

node_stop() {
	local name=$1 dir="$WX_TEST_TMP/$1"
	[ -n "${NODE_WEB_PID[$name]:-}" ] && stop_pid "${NODE_WEB_PID[$name]}"
	WINGXFER_SBINDIR="$WX_BIN" "$WX_TOOLS/wingxfer-spawn" --rundir "$dir/run" --logdir "$dir/log" \
		stop >/dev/null 2>&1 || true
}

# node_log NAME: the programs' log lines of node NAME.
node_log() { cat "$WX_TEST_TMP/$1"/log/*.log 2>/dev/null; }
