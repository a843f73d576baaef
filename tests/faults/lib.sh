# Shared by the fault-injection tests (sourced after tap.sh, webstack.sh,
# panel.sh and push.sh, with the panel emulator running and WX_CA set).
#
# A transfer here is a real one: wingxfer-source (as CGI on the source node,
# or through its web server) starts a detached wingxfer-push, which streams
# to wingxfer-destination behind a web server with TLS; the panel emulator
# mints the token and records the callbacks.
#
#   fault_seed                   RANDOM seeded from $FAULT_SEED (or the clock); prints it
#   rand_ms MAX                  a seeded random delay, 0..MAX-1 ms
#   sleep_ms MS
#   src_node DIR NAME [YAML]     a source node config (CGI only), its path in SRC_CFG
#   template_tree DIR            the tree every transfer copies; its manifest in TEMPLATE_MANIFEST
#   start_transfer SRCDIR DEST-NAME UUID   copies the template, opens the panel's
#                                transfer, POSTs it to wingxfer-source (CGI); 202 or not
#   ns_transfer UUID             the panel's transfer of $SRC/data/UUID to node d,
#                                POSTed to node s's Apache from its namespace
#                                ($NSA, tests/lib/netpair.sh); 202 or not
#   settle UUID SRCDIR DESTDIR [SECS]   runs both watchdogs until nothing is
#                                active: records final, locks free, no staging
#   invariants LABEL UUID SRCDIR DESTDIR   the TAP checks after a fault (3 lines)

# Every call to the panel emulator is bounded in time.
_panel_curl() { curl -sS --max-time 30 "$@"; }

fault_seed() {
	FAULT_SEED=${FAULT_SEED:-$(( $(date +%s%N) % 1000000 ))}
	RANDOM=$FAULT_SEED
	diag "fault seed $FAULT_SEED (FAULT_SEED=$FAULT_SEED reproduces this run's kill points)"
}
rand_ms() { echo $(( (RANDOM * 32768 + RANDOM) % $1 )); }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

src_node() {
	SRC_CFG=$(make_node_config "$1" "$2" "    stall_timeout: 3
    response_timeout: 8
    connect_timeout: 3
    ca_file: $WX_CA${3:+
$3}")
}

template_tree() {
	TEMPLATE=$1
	python3 "$top_srcdir/tests/lib/trees.py" make "$TEMPLATE" --files 60 --big-mib 40 >/dev/null
	TEMPLATE_MANIFEST="$WX_TEST_TMP/template.manifest"
	python3 "$top_srcdir/tests/lib/trees.py" manifest "$TEMPLATE" > "$TEMPLATE_MANIFEST"
}

# start_transfer SRCDIR DEST-NAME UUID: the answer of wingxfer-source in START_OUT.
start_transfer() {
	local src=$1 dest=$2 u=$3 tok
	cp -a "$TEMPLATE" "$src/data/$u"
	panel_server "$u" 0
	panel_api POST /_emulator/transfers "{\"server\":\"$u\",\"notify\":false}" >/dev/null
	tok=$(json_get "$(panel_api POST /_emulator/tokens "{\"server\":\"$u\",\"node\":\"$dest\"}")" '["token"]')
	START_OUT=$(TOKEN="Bearer $tok" post_transfer "$src/config.yml" "$u" "${NODE_URL[$dest]}/api/transfers")
	[ "$(status_of "$START_OUT")" = 202 ]
}

ns_transfer() {
	local u=$1 tok body code
	panel_server "$u" 0
	panel_api POST /_emulator/transfers "{\"server\":\"$u\",\"notify\":false}" >/dev/null
	tok=$(json_get "$(panel_api POST /_emulator/tokens "{\"server\":\"$u\",\"node\":\"d\"}")" '["token"]')
	body="{\"url\":\"${NODE_URL[d]}/api/transfers\",\"token\":\"Bearer $tok\"}"
	code=$(ip netns exec "$NSA" curl -sS --max-time 60 --cacert "$WX_CA" -o /dev/null -w '%{http_code}' -X POST \
		-H "Authorization: Bearer token-s" -H 'Content-Type: application/json' -d "$body" \
		"${NODE_URL[s]}/api/servers/$u/transfer")
	track_worker "$SRC/state" "$u"
	[ "$code" = 202 ] || { diag "the source answered $code"; return 1; }
}

_final() { case "$1" in completed|failed|cancelled|"(no record)") return 0 ;; esac; return 1; }
_quiet() { # STATE UUID: the record is final (or absent) and its lock free
	_final "$(rec "$1" "$2" '["status"]' 2>/dev/null)" || return 1
	[ ! -e "$1/transfers/$2.lock" ] || flock -n "$1/transfers/$2.lock" true
}
# settle UUID SRCDIR DESTDIR [SECS]: watchdogs on both nodes, once a second,
# until both records are final, their locks free and no staging is left;
# bounded in wall time, never less than WX_WAIT_MIN (see wait_for in tap.sh).
# WATCHDOG_NS_SRC / WATCHDOG_NS_DEST: a command prefix (ip netns exec NS).
settle() {
	local u=$1 src=$2 dst=$3 secs=${4:-40} deadline
	[ "$secs" -ge "${WX_WAIT_MIN:-300}" ] || secs=${WX_WAIT_MIN:-300}
	deadline=$((SECONDS + secs))
	while [ "$SECONDS" -lt "$deadline" ]; do
		${WATCHDOG_NS_SRC:-} "$WX_BIN/wingxfer-watchdog" --config "$src/config.yml" >>"$WX_TEST_TMP/watchdog.out" 2>&1
		${WATCHDOG_NS_DEST:-} "$WX_BIN/wingxfer-watchdog" --config "$dst/config.yml" >>"$WX_TEST_TMP/watchdog.out" 2>&1
		if _quiet "$src/state" "$u" && _quiet "$dst/state" "$u" && [ ! -e "$dst/data/.wingxfer-staging/$u" ]; then
			# One more pass: a callback the panel refused after this pass's
			# cleanup phase (e.g. a success answered 409) is handled now,
			# as the next cron run would.
			${WATCHDOG_NS_SRC:-} "$WX_BIN/wingxfer-watchdog" --config "$src/config.yml" >>"$WX_TEST_TMP/watchdog.out" 2>&1
			${WATCHDOG_NS_DEST:-} "$WX_BIN/wingxfer-watchdog" --config "$dst/config.yml" >>"$WX_TEST_TMP/watchdog.out" 2>&1
			return 0
		fi
		sleep 1
	done
	diag "$u did not settle in $secs s: source $(rec "$src/state" "$u" '["status"]'), destination $(rec "$dst/state" "$u" '["status"]')"
	return 1
}

# callbacks_by_node UUID: "node kind" lines of the panel's callbacks for UUID.
callbacks_by_node() {
	panel_api GET "/_emulator/callbacks?server=$1" |
		python3 -c 'import json,sys
for c in json.load(sys.stdin): print(c["node"], c["kind"])'
}

# invariants LABEL UUID SRCDIR DESTDIR: after the watchdogs ran.
#  1. both records final, no staging, the source tree byte-identical to the template;
#  2. each node's callbacks match its record: a failed (or cancelled) record
#     one failure, a completed destination one success, never a success from
#     the source, never two of anything;
#  3. a server directory on the destination exactly when it reported success,
#     and then byte-identical to the source.
REDELIVERED=0 SET_ASIDE=0
invariants() {
	local label=$1 u=$2 src=$3 dst=$4 s_st d_st cbs want got problem=""
	s_st=$(rec "$src/state" "$u" '["status"]')
	d_st=$(rec "$dst/state" "$u" '["status"]')
	_final "$s_st" && _final "$d_st" || problem="records not final (source $s_st, destination $d_st)"
	# Startable: nobody holds the source's transfer lock (a new transfer,
	# or the panel starting the server, is not refused).
	[ ! -e "$src/state/transfers/$u.lock" ] || flock -n "$src/state/transfers/$u.lock" true ||
		problem="$problem; the source's transfer lock is still held"
	[ -e "$dst/data/.wingxfer-staging/$u" ] && problem="$problem; staging left"
	python3 "$top_srcdir/tests/lib/trees.py" manifest "$src/data/$u" > "$WX_TEST_TMP/src-after.manifest"
	cmp -s "$TEMPLATE_MANIFEST" "$WX_TEST_TMP/src-after.manifest" || problem="$problem; the source tree changed"
	ok "$label: records final (source $s_st, destination $d_st), no staging, source tree intact and startable" test -z "$problem"
	[ -z "$problem" ] || diag "$problem"

	# A process killed by kill -9 while it delivered its callback (after the
	# panel took it, before the outbox's tombstone was written) leaves it
	# queued, and the watchdog sends it again: at-least-once delivery cannot
	# do better across a kill.  So, for KILLED_NODE only and for a success
	# only, a second copy is accepted when the panel refused it (409: the
	# transfer was already closed, no effect); counted in REDELIVERED.
	cbs=$(panel_api GET "/_emulator/callbacks?server=$u" | KILLED_NODE=${KILLED_NODE:-} python3 -c 'import json, os, sys
groups = {}
for c in sorted(json.load(sys.stdin), key=lambda c: c["id"]):
    groups.setdefault((c["node"], c["kind"]), []).append(c)
out = []
for (node, kind), cs in groups.items():
    if (len(cs) == 2 and node == os.environ["KILLED_NODE"] and kind == "success"
            and cs[1]["status"] == 409):
        cs = cs[:1]
        print("redelivered", file=sys.stderr)
    out += ["%s %s" % (node, kind)] * len(cs)
print("".join(x + "," for x in sorted(out)))' 2>"$WX_TEST_TMP/redelivered")
	if [ -s "$WX_TEST_TMP/redelivered" ]; then
		REDELIVERED=$((REDELIVERED + 1))
		diag "$label: the killed $KILLED_NODE's success reached the panel twice (the second refused 409): killed while delivering it"
	fi
	want=""
	case "$d_st" in
	completed) want="$want${DEST_NAME} success," ;;
	failed|cancelled) want="$want${DEST_NAME} failure," ;;
	esac
	case "$s_st" in failed|cancelled) want="$want${SRC_NAME} failure," ;; esac
	want=$(printf '%s' "$want" | tr ',' '\n' | sed '/^$/d' | sort | tr '\n' ',')
	is "$cbs" "$want" "$label: the panel got exactly one callback per node that ended it ($want)"

	# A success the panel refused (409: the source's failure closed the
	# transfer first) leaves no server here: the watchdog set the copy aside.
	local accepted aside
	accepted=$(panel_api GET "/_emulator/callbacks?server=$u" | DEST_NAME=$DEST_NAME python3 -c 'import json, os, sys
cs = [c for c in sorted(json.load(sys.stdin), key=lambda c: c["id"])
      if c["node"] == os.environ["DEST_NAME"] and c["kind"] == "success"]
print("yes" if cs and 200 <= cs[0]["status"] < 300 else "no")')
	if [ "$d_st" = completed ] && [ "$accepted" = yes ]; then
		python3 "$top_srcdir/tests/lib/trees.py" manifest "$dst/data/$u" > "$WX_TEST_TMP/dst.manifest" 2>/dev/null
		ok "$label: the success came with a byte-identical tree" cmp -s "$TEMPLATE_MANIFEST" "$WX_TEST_TMP/dst.manifest"
	elif [ "$d_st" = completed ] && [ "$(rec "$dst/state" "$u" '["extra"]["set_aside"]' 2>/dev/null)" = kept ]; then
		# Refused after a POST that may have reached the panel unanswered
		# (the deliverer was killed mid-request): kept, and said once.
		python3 "$top_srcdir/tests/lib/trees.py" manifest "$dst/data/$u" > "$WX_TEST_TMP/dst.manifest" 2>/dev/null
		ok "$label: the panel refused the success after an unanswered attempt: the byte-identical copy kept for the admin" \
			cmp -s "$TEMPLATE_MANIFEST" "$WX_TEST_TMP/dst.manifest"
		SET_ASIDE=$((SET_ASIDE + 1))
	elif [ "$d_st" = completed ]; then
		aside=$(ls -d "$dst/data/.wingxfer-unaccepted/$u".* 2>/dev/null | head -n 1)
		python3 "$top_srcdir/tests/lib/trees.py" manifest "${aside:-/nonexistent}" > "$WX_TEST_TMP/dst.manifest" 2>/dev/null
		ok "$label: the panel refused the success: no server directory, the byte-identical copy set aside" \
			eval 'test ! -e "$dst/data/$u" && cmp -s "$TEMPLATE_MANIFEST" "$WX_TEST_TMP/dst.manifest"'
		SET_ASIDE=$((SET_ASIDE + 1))
	else
		ok "$label: no server directory on the destination (no success)" test ! -e "$dst/data/$u"
	fi
}
