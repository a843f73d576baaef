# Helpers for the tests of the sending side (sourced after tap.sh): a
# recording receiver standing in for the destination, starting transfers
# through wingxfer-source as CGI, and waiting for the detached worker.
#
#   recv_start NAME [RECEIVER-ARGS...]  sets RECV_URL RECV_PID RECV_DIR RECV_RECORD
#   recv_last [EXPR]                    the receiver's last finished request (JSON / field)
#   recv_count                          how many requests it finished
#   post_transfer CFG UUID URL [JSON-TAIL]   POST /api/servers/UUID/transfer as CGI
#   rec STATE UUID EXPR                 a field of the transfer record
#   wait_worker STATE UUID [SECS]       until the record is final and its lock free
#   track_worker STATE UUID             stops the worker at exit if still running
#   source_node [EXTRA-YAML]            node "src" in $WX_TEST_TMP/node, registered with
#                                       the panel; sets NODE CFG STATE DATA
#   make_server DATA UUID               an empty server directory
#   new_source_server DATA              a fresh server UUID: its directory in DATA, known
#                                       to the panel with an open transfer src -> dst

TEST_TOKEN="Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl"

recv_start() {
	local name=$1; shift
	RECV_DIR="$WX_TEST_TMP/recv-$name"
	mkdir -p "$RECV_DIR/save"
	"$top_srcdir/tests/receiver/recording-receiver" --port-file "$RECV_DIR/port" \
		--record "$RECV_DIR/record.jsonl" --save-dir "$RECV_DIR/save" "$@" 2>>"$RECV_DIR/log" &
	RECV_PID=$!
	track_pid "$RECV_PID"
	wait_for "receiver $name" 20 test -s "$RECV_DIR/port" || return 1
	RECV_URL="http://127.0.0.1:$(cat "$RECV_DIR/port")/api/transfers"
	RECV_RECORD="$RECV_DIR/record.jsonl"
}

recv_last() {
	local line
	line=$(grep '"event": "done"' "$RECV_RECORD" 2>/dev/null | tail -n 1)
	if [ -z "${1:-}" ]; then printf '%s\n' "$line"; else json_get "$line" "$1"; fi
}

# recv_parts: the part names of the last finished request, space-separated.
recv_parts() {
	python3 -c 'import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if "\"done\"" in l][-1]
print(" ".join(p["name"] for p in r["parts"]))' "$RECV_RECORD"
}

recv_count() { cat "$RECV_RECORD" 2>/dev/null | grep -c '"event": "done"'; }
recv_seen() { cat "$RECV_RECORD" 2>/dev/null | grep -c '"event": "request"'; }

post_transfer() {
	local cfg=$1 uuid=$2 url=$3 tail=${4:-} token=${TOKEN:-$TEST_TOKEN}
	local body="{\"url\":\"$url\",\"token\":\"$token\"$tail}"
	local node
	node=$(sed -n 's/^token: //p' "$cfg")
	printf '%s' "$body" | cgi wingxfer-source "$cfg" POST "/api/servers/$uuid/transfer" \
		"Bearer $node" CONTENT_LENGTH=${#body} 2>>"$WX_TEST_TMP/handler.err"
}

rec() {
	local f="$1/transfers/$2.json"
	[ -f "$f" ] || { echo "(no record)"; return; }
	json_get "$(cat "$f")" "$3"
}

_worker_done() {
	local state=$1 uuid=$2 st
	st=$(rec "$state" "$uuid" '["status"]')
	case "$st" in completed|failed|cancelled) ;; *) return 1 ;; esac
	flock -n "$state/transfers/$uuid.lock" true
}

wait_worker() { wait_for "worker of $2" "${3:-60}" _worker_done "$1" "$2"; }

# The worker is detached (not our child) and normally ends by itself; at exit
# it is stopped only if that pid is still wingxfer-push for this transfer (the
# pid may belong to another test's process by then).
TRACKED_WORKERS=""
track_worker() {
	local state=$1 uuid=$2 pid=""
	wait_for "worker pid of $uuid" 10 _has_pid "$state" "$uuid" || return 0
	pid=$(rec_int "$state" "$uuid" pid)
	[ -n "$pid" ] && [ "$pid" != 0 ] && TRACKED_WORKERS="$TRACKED_WORKERS $pid:$uuid"
}
_stop_workers() {
	local w pid uuid
	for w in $TRACKED_WORKERS; do
		pid=${w%%:*} uuid=${w#*:}
		tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -q "wingxfer-push.* $uuid" &&
			kill -TERM "$pid" 2>/dev/null
	done
	return 0
}
trap '_stop_workers; _tap_cleanup' EXIT
_has_pid() { [ "$(rec_int "$1" "$2" pid)" -gt 0 ] 2>/dev/null; }

# rec_int STATE UUID FIELD: an integer field of the record, read with sed (no
# python start-up): a poll stays quick on a loaded machine, so the test sees
# a transfer under way long before it can end.
rec_int() { sed -n "s/.*\"$3\": *\([0-9]*\).*/\1/p" "$1/transfers/$2.json" 2>/dev/null | head -n 1; }
counter_above() { [ "$(rec_int "$1" "$2" "$3")" -gt "$4" ] 2>/dev/null; }
phase_is() { [ "$(rec "$1" "$2" '["phase"]')" = "$3" ]; }

make_server() { mkdir -p "$1/$2"; }

# events STATE UUID: the events file as "event: arg" lines.
events() {
	python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l); print("%s: %s" % (e["event"], e["args"][0]))' "$1/transfers/$2.events" 2>/dev/null
}

# callbacks UUID: "kind status" lines of the panel emulator's callbacks for UUID.
callbacks() {
	panel_api GET "/_emulator/callbacks?server=$1" | python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["kind"], c["status"], json.dumps(c["json"]))'
}

source_node() {
	NODE="$WX_TEST_TMP/node"
	panel_test_node src "$NODE" "${1:-}"
	CFG=$NODE_CONFIG
}

new_source_server() {
	local u
	u=$(new_uuid)
	make_server "$1" "$u"
	panel_server "$u"
	panel_api POST /_emulator/transfers \
		"{\"server\":\"$u\",\"source\":\"src\",\"destination\":\"dst\",\"notify\":false}" >/dev/null
	echo "$u"
}
