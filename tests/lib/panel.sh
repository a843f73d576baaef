# The panel emulator in shell tests (sourced after tap.sh; see
# tests/panel/panel-emulator for the API).
#
#   panel_start [EMULATOR-ARGS...]   starts it (or restarts it on the same port
#                                    with the same state); sets PANEL_URL, PANEL_PID
#   panel_stop                       stops it (by pid): "the panel is down"
#   panel_api METHOD PATH [JSON]     calls the control API, prints the answer body
#   panel_node NAME TOKEN_ID TOKEN URL   tells the panel about a node
#   panel_test_node NAME DIR [EXTRA-YAML]   DIR made node NAME (make_node_config),
#                                    known to the panel (id-NAME, token-NAME); sets
#                                    NODE_CONFIG (its config.yml), DATA and STATE
#   panel_server UUID [DISK_MIB]     defines a server
#
# Set PANEL_TLS=1 before panel_start for HTTPS with the webstack test CA
# (webstack_ca must have run).  The emulator logs to $WX_TEST_TMP/panel/log.

PANEL_EMULATOR="$top_srcdir/tests/panel/panel-emulator"
PANEL_PORT=""
PANEL_PID=""
PANEL_URL=""

_panel_curl() {
	if [ "${PANEL_TLS:-0}" = 1 ]; then curl -sS --cacert "$WX_TEST_TMP/ca/ca.pem" "$@"
	else curl -sS "$@"; fi
}

panel_start() {
	local dir="$WX_TEST_TMP/panel" tls=()
	mkdir -p "$dir"
	[ -n "$PANEL_PORT" ] || PANEL_PORT=$(free_port)
	if [ "${PANEL_TLS:-0}" = 1 ]; then
		tls=(--tls-cert "$WX_TEST_TMP/ca/node.pem" --tls-key "$WX_TEST_TMP/ca/node.key"
			--ca "$WX_TEST_TMP/ca/ca.pem")
		PANEL_URL="https://127.0.0.1:$PANEL_PORT"
	else
		PANEL_URL="http://127.0.0.1:$PANEL_PORT"
	fi
	"$PANEL_EMULATOR" --listen "127.0.0.1:$PANEL_PORT" --state "$dir/state.json" \
		"${tls[@]}" "$@" 2>>"$dir/log" &
	PANEL_PID=$!
	track_pid "$PANEL_PID"
	export PANEL_URL
	wait_for "panel emulator up" 20 _panel_curl -o /dev/null "$PANEL_URL/_emulator/state" 2>/dev/null
}

panel_stop() {
	[ -n "$PANEL_PID" ] && stop_pid "$PANEL_PID"
	PANEL_PID=""
}

panel_api() {
	local method=$1 path=$2 json=${3:-}
	_panel_curl -X "$method" ${json:+-H 'Content-Type: application/json' -d "$json"} \
		"$PANEL_URL$path"
}

panel_test_node() {
	panel_node "$1" "id-$1" "token-$1" http://127.0.0.1:1
	NODE_CONFIG=$(make_node_config "$2" "$1" "${3:-}")
	DATA="$2/data"
	STATE="$2/state"
}

panel_node() {
	panel_api POST /_emulator/nodes \
		"{\"name\":\"$1\",\"token_id\":\"$2\",\"token\":\"$3\",\"url\":\"$4\"}" >/dev/null
}

panel_server() {
	panel_api POST /_emulator/servers "{\"uuid\":\"$1\",\"disk_space\":${2:-0}}" >/dev/null
}
