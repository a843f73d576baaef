# Helpers for the wingxfer-destination tests (sourced after tap.sh and
# panel.sh, with the panel emulator started and $DEST_DIR a node made by
# make_node_config, registered with the panel as node "dest": dest_node does that).
#
#   dest_node                   $DEST_DIR ($WX_TEST_TMP/dest unless set) made a node
#                               and registered as "dest"; sets DATA and STATE
#   new_server [DISK_MIB]       a fresh server UUID, known to the panel with an
#                               open transfer (so callbacks are accepted)
#   token_for UUID [JSON]       a transfer JWT minted by the panel for node
#                               dest; JSON adds emulator options, e.g.
#                               '"scope":null' or '"claims":{"exp":1.5}'
#   make_tree DIR [ARGS...]     tests/lib/trees.py make
#   same_tree A B               manifests of A and B are identical
#   body_for OUT ARCHIVE [PART...]   multipart body: archive + checksum + PARTs
#   dest_post UUID-TOKEN BODY [VAR=value...]   POST as CGI, body on stdin with
#                               CONTENT_LENGTH (NOCL=1: without); sets OUT
#                               (response) and BODY_READ (bytes it consumed)
#   callbacks UUID KIND         number of KIND callbacks the panel recorded
#   record_of UUID PY-EXPR      a field of the destination's record
BOUNDARY=$(printf '5f2b%.0s' $(seq 15))
CT="multipart/form-data; boundary=$BOUNDARY"

dest_node() {
	DEST_DIR=${DEST_DIR:-$WX_TEST_TMP/dest}
	panel_test_node dest "$DEST_DIR"
}

new_server() {
	local u
	u=$(new_uuid)
	panel_server "$u" "${1:-0}"
	panel_api POST /_emulator/transfers "{\"server\":\"$u\",\"notify\":false}" >/dev/null
	echo "$u"
}

token_for() {
	local extra=${2:-}
	json_get "$(panel_api POST /_emulator/tokens "{\"server\":\"$1\",\"node\":\"dest\"${extra:+,$extra}}")" \
		'["token"]'
}

make_tree() { local d=$1; shift; python3 "$top_srcdir/tests/lib/trees.py" make "$d" "$@" >/dev/null; }

same_tree() {
	python3 "$top_srcdir/tests/lib/trees.py" manifest "$1" > "$WX_TEST_TMP/m.a" &&
	python3 "$top_srcdir/tests/lib/trees.py" manifest "$2" > "$WX_TEST_TMP/m.b" &&
	if cmp -s "$WX_TEST_TMP/m.a" "$WX_TEST_TMP/m.b"; then return 0; else
		diff "$WX_TEST_TMP/m.a" "$WX_TEST_TMP/m.b" | head -20 | sed 's/^/# /'; return 1; fi
}

body_for() {
	local out=$1 archive=$2; shift 2
	python3 "$top_srcdir/tests/lib/multipart.py" --boundary "$BOUNDARY" "$out" \
		"archive=@$archive" "checksum=$(sha256sum "$archive" | cut -d' ' -f1)" "$@"
}

dest_post() {
	local token=$1 body=$2; shift 2
	local cl=()
	[ -n "${NOCL:-}" ] || cl=(CONTENT_LENGTH="$(stat -c %s "$body")")
	exec 3<"$body"
	OUT=$(cgi wingxfer-destination "$DEST_DIR/config.yml" POST /api/transfers \
		"${token:+Bearer $token}" CONTENT_TYPE="$CT" "${cl[@]}" "$@" <&3 2>>"$WX_TEST_TMP/dest.err")
	BODY_READ=$(awk '/^pos:/{print $2}' /proc/$$/fdinfo/3)
	exec 3<&-
}

callbacks() {
	panel_api GET "/_emulator/callbacks?server=$1" |
		python3 -c "import json,sys; print(sum(1 for c in json.load(sys.stdin) if c['kind']=='$2'))"
}

record_of() {
	python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r$2)" \
		"$DEST_DIR/state/transfers/$1.json" 2>/dev/null
}
