#!/bin/bash
# A network cut between two nodes in their own network namespaces, joined
# by a veth pair (root only).  The source node (Apache, wingxfer-source, the
# push worker) and the panel emulator live in one namespace, the
# destination (Apache, wingxfer-destination) in the other; every program
# and web server is started with ip netns exec.  A transfer is cut
# mid-stream twice: by taking the source's end of the link down, and by
# deleting the veth pair.  The source's worker gives up after its stall
# timeout; the destination's watchdog stops the blocked receiver; its
# failure callback waits in the outbox until the link is back.  Then the
# invariants of tests/faults/lib.sh.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
. "$top_srcdir/tests/faults/lib.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root for network namespaces and Apache"
command -v ip >/dev/null || skip_all "needs ip (iproute2) for network namespaces"
wx_tmpdir
NSA="wxsrc$$" NSB="wxdst$$" VA="wxa$$" VB="wxb$$"
ADDR_A=10.231.0.1 ADDR_B=10.231.0.2
netns_cleanup() {
	ip link del "$VA" 2>/dev/null
	ip -n "$NSA" link del "$VA" 2>/dev/null
	ip netns del "$NSA" 2>/dev/null
	ip netns del "$NSB" 2>/dev/null
	return 0
}
trap '_stop_workers; _tap_cleanup; netns_cleanup' EXIT
ip netns add "$NSA" && ip netns add "$NSB" || skip_all "cannot create network namespaces here"
link_up() {
	ip link add "$VA" type veth peer name "$VB" &&
	ip link set "$VA" netns "$NSA" && ip link set "$VB" netns "$NSB" &&
	ip -n "$NSA" addr add "$ADDR_A/30" dev "$VA" && ip -n "$NSB" addr add "$ADDR_B/30" dev "$VB" &&
	ip -n "$NSA" link set "$VA" up && ip -n "$NSB" link set "$VB" up
}
ip -n "$NSA" link set lo up && ip -n "$NSB" link set lo up && link_up ||
	{ echo "not ok 1 - the veth pair"; echo 1..1; exit 1; }

RESULTS="${FAULT_RESULTS:-$top_builddir/tests/faults/results-netcut.txt}"
mkdir -p "$(dirname "$RESULTS")"
: > "$RESULTS"
CUTS=0
webstack_ca || { echo "not ok - test CA"; echo 1..1; exit 1; }
# The destination's certificate names its address in the namespace.
d="$WX_TEST_TMP/ca"
openssl req -newkey rsa:2048 -nodes -subj "/CN=$ADDR_B" -keyout "$d/b.key" -out "$d/b.csr" >/dev/null 2>&1
printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\n' "$ADDR_B" > "$d/b.cnf"
openssl x509 -req -in "$d/b.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
	-extfile "$d/b.cnf" -out "$d/b.pem" >/dev/null 2>&1 && chmod 644 "$d/b.pem"

# The panel emulator in the source's namespace, on every address there.
PANEL_PORT=$(free_port)
mkdir -p "$WX_TEST_TMP/panel"
ip netns exec "$NSA" "$PANEL_EMULATOR" --listen "0.0.0.0:$PANEL_PORT" --state "$WX_TEST_TMP/panel/state.json" \
	2>>"$WX_TEST_TMP/panel/log" &
PANEL_PID=$!
track_pid "$PANEL_PID"
PANEL_URL="http://127.0.0.1:$PANEL_PORT"
_panel_curl() { ip netns exec "$NSA" curl -sS --max-time 30 "$@"; }
wait_for "panel emulator" 20 _panel_curl -o /dev/null "$PANEL_URL/_emulator/state" 2>/dev/null

SRC="$WX_TEST_TMP/s" DST="$WX_TEST_TMP/d"
NODE_NS[s]=$NSA NODE_NS[d]=$NSB
# The single POST (chunked: off): a cut fails it.  A chunked transfer resumes
# after a cut instead: tests/faults/chunked-faults.sh.
node_setup s "    stall_timeout: 3
    response_timeout: 60
    connect_timeout: 3
    chunked: off"
PANEL_URL="http://$ADDR_A:$PANEL_PORT" NODE_HOST=$ADDR_B node_setup d "    stall_timeout: 3
    download_limit: 4"
sed -i "s|cert: .*node.pem|cert: $d/b.pem|; s|key: .*node.key|key: $d/b.key|" "$DST/config.yml"
node_start s apache && node_start d apache || { echo "not ok - Apache does not start"; echo 1..1; exit 1; }
panel_node s id-s token-s "${NODE_URL[s]}"
panel_node d id-d token-d "${NODE_URL[d]}"
template_tree "$WX_TEST_TMP/template"
# 32 MiB that do not compress: the archive (about 44 MB) outlasts every
# buffer between the nodes (TCP's, Apache's: about 12 MB) by far, so a source
# held as the first bytes cross (hold_mid_stream) is still streaming.
head -c $((32 * 1048576)) /dev/urandom > "$TEMPLATE/world/noise.bin"
python3 "$top_srcdir/tests/lib/trees.py" manifest "$TEMPLATE" > "$TEMPLATE_MANIFEST"
SRC_NAME=s DEST_NAME=d
# reach: the destination's web server answers from the source's namespace.
reach() { ip netns exec "$NSA" curl -s -o /dev/null --max-time 2 --cacert "$WX_CA" "${NODE_URL[d]}/"; }
unreachable() { ! reach; }
ok "two namespaces joined by a veth pair: the destination ($ADDR_B) answers the source's side" reach
WATCHDOG_NS_SRC="ip netns exec $NSA" WATCHDOG_NS_DEST="ip netns exec $NSB"

go() { # go UUID: a copy of the template, its transfer started through the source's Apache
	cp -a "$TEMPLATE" "$SRC/data/$1" && ns_transfer "$1"
}
receiving() { [ "$(rec_int "$DST/state" "$1" bytes_read)" -gt "$2" ] 2>/dev/null; }
# hold_mid_stream UUID: once a megabyte has crossed, SIGSTOPs the push worker
# and the receiving process (their identities in HELD_PUSH, HELD_RECV), so
# that the transfer can neither end nor stall before the cut however loaded
# the machine is; true when the source is still streaming (the cut must come
# while it has bytes to send: after that they may all be in the buffers).
# Once continued, both see the time they were held as a stall.
hold_mid_stream() {
	local p r
	HELD_PUSH="" HELD_RECV=""
	wait_for "a megabyte across" 30 receiving "$1" 1000000 || return 1
	p=$(rec_int "$SRC/state" "$1" pid) r=$(rec_int "$DST/state" "$1" pid)
	HELD_PUSH=$(pid_id "$p") && signal_id STOP "$HELD_PUSH" || { diag "no push worker to hold ($p)"; return 1; }
	HELD_RECV=$(pid_id "$r") && signal_id STOP "$HELD_RECV" || { diag "no receiver to hold ($r)"; return 1; }
	local phase; phase=$(rec "$SRC/state" "$1" '["phase"]')
	[ "$phase" = streaming ] || { diag "the source's phase when held: $phase"; return 1; }
}
release() { local id; for id in $HELD_PUSH $HELD_RECV; do signal_id CONT "$id"; done; return 0; }
statuses() { echo "$(rec "$SRC/state" "$1" '["status"]'):$(rec "$DST/state" "$1" '["status"]')"; }
retry_now() {
	ip netns exec "$NSA" "$WX_BIN/wingxfer-watchdog" --config "$SRC/config.yml" --retry-now >>"$WX_TEST_TMP/watchdog.out" 2>&1
	ip netns exec "$NSB" "$WX_BIN/wingxfer-watchdog" --config "$DST/config.yml" --retry-now >>"$WX_TEST_TMP/watchdog.out" 2>&1
}

U=$(new_uuid)
ok "across the link: the transfer starts" go "$U"
wait_worker "$SRC/state" "$U" 60
settle "$U" "$SRC" "$DST" 10
is "$(statuses "$U")" completed:completed "across the link: the transfer completes"
invariants "across the link" "$U" "$SRC" "$DST"

for cut in down delete; do
	U=$(new_uuid)
	go "$U"
	ok "cut ($cut): bytes are crossing, the source is still streaming (both ends held)" \
		hold_mid_stream "$U"
	if [ $cut = down ]; then ip -n "$NSA" link set "$VA" down; else ip -n "$NSA" link del "$VA"; fi
	CUTS=$((CUTS + 1))
	release
	ok "cut ($cut): the destination is out of reach" unreachable
	settle "$U" "$SRC" "$DST" 90
	is "$(statuses "$U")" failed:failed \
		"cut ($cut): both nodes failed the transfer (by the stall timeout or their watchdog), neither reads as cancelled"
	unlike "$(rec "$DST/state" "$U" '["error"]')" 'DELETE' \
		"cut ($cut): the destination's error does not claim a DELETE nobody sent"
	like "$(rec "$SRC/state" "$U" '["error"]')" 'stall|no progress|[0-9]+ s' \
		"cut ($cut): the source's record says it stalled"
	like "$(rec "$DST/state" "$U" '["error"]')" 'stall|no progress|[0-9]+ s' \
		"cut ($cut): so does the destination's"
	queued=$(ls "$DST/state/outbox"/*.json 2>/dev/null | wc -l)
	is "$queued" 1 "cut ($cut): the destination's failure callback waits in its outbox"
	if [ $cut = down ]; then ip -n "$NSA" link set "$VA" up; else link_up; fi
	ok "cut ($cut): the link is back" wait_for "link" 10 reach
	retry_now
	is "$(ls "$DST/state/outbox"/*.json 2>/dev/null | wc -l)" 0 "cut ($cut): delivered once the link is back"
	invariants "cut ($cut)" "$U" "$SRC" "$DST"
	echo "cut-$cut $(statuses "$U"): source: $(rec "$SRC/state" "$U" '["error"]'); destination: $(rec "$DST/state" "$U" '["error"]')" >> "$RESULTS"
done

U=$(new_uuid)
go "$U"
wait_worker "$SRC/state" "$U" 60
settle "$U" "$SRC" "$DST" 10
is "$(statuses "$U")" completed:completed "after the cuts a transfer completes"
invariants "after the cuts" "$U" "$SRC" "$DST"
node_stop s
node_stop d
echo "cuts $CUTS" >> "$RESULTS"
echo "elapsed ${SECONDS} s" >> "$RESULTS"
done_testing
