# Two network namespaces joined by a veth pair, for a link that can be cut
# (sourced after tap.sh, webstack.sh and panel.sh; root only).  The layout of
# tests/faults/netcut.sh: the source node and the panel emulator in NSA
# ($NETPAIR_A), the destination in NSB ($NETPAIR_B); every program and web
# server is started with ip netns exec (NODE_NS in webstack.sh).
#
#   netpair_init NET           creates the namespaces and the pair, addresses
#                              10.NET.0.1 (A) and 10.NET.0.2 (B); sets NSA NSB
#                              VA VB ADDR_A ADDR_B; 1 when it cannot
#   netpair_cleanup            removes them (for the caller's EXIT trap)
#   netpair_cert               the destination's certificate for ADDR_B, signed
#                              by the test CA: $WX_TEST_TMP/ca/b.pem and b.key
#   netpair_panel              the panel emulator (plain HTTP; it trusts the test
#                              CA when it calls a node) in NSA on every address
#                              there; sets PANEL_URL (for NSA) and
#                              NETPAIR_PANEL_B (the same panel seen from NSB)
#   netpair_down / netpair_up  the link cut / back (A's end down / up)
#   netpair_tx_bytes           bytes A's end has sent so far (everything on the
#                              wire: TCP/IP and TLS included)

netpair_init() {
	local net=$1
	NSA="wxpa$$" NSB="wxpb$$" VA="wxva$$" VB="wxvb$$"
	ADDR_A=10.$net.0.1 ADDR_B=10.$net.0.2
	ip netns add "$NSA" && ip netns add "$NSB" || return 1
	ip -n "$NSA" link set lo up && ip -n "$NSB" link set lo up &&
	ip link add "$VA" type veth peer name "$VB" &&
	ip link set "$VA" netns "$NSA" && ip link set "$VB" netns "$NSB" &&
	ip -n "$NSA" addr add "$ADDR_A/30" dev "$VA" && ip -n "$NSB" addr add "$ADDR_B/30" dev "$VB" &&
	ip -n "$NSA" link set "$VA" up && ip -n "$NSB" link set "$VB" up
}

netpair_cleanup() {
	[ -n "${NSA:-}" ] || return 0
	ip -n "$NSA" link del "$VA" 2>/dev/null
	ip link del "$VA" 2>/dev/null
	ip netns del "$NSA" 2>/dev/null
	ip netns del "$NSB" 2>/dev/null
	return 0
}

netpair_cert() {
	local d="$WX_TEST_TMP/ca"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$ADDR_B" -keyout "$d/b.key" -out "$d/b.csr" >/dev/null 2>&1 &&
	printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\n' "$ADDR_B" > "$d/b.cnf" &&
	openssl x509 -req -in "$d/b.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
		-extfile "$d/b.cnf" -out "$d/b.pem" >/dev/null 2>&1 && chmod 644 "$d/b.pem"
}

netpair_panel() {
	PANEL_PORT=$(free_port)
	mkdir -p "$WX_TEST_TMP/panel"
	ip netns exec "$NSA" "$PANEL_EMULATOR" --listen "0.0.0.0:$PANEL_PORT" \
		--state "$WX_TEST_TMP/panel/state.json" --ca "$WX_TEST_TMP/ca/ca.pem" 2>>"$WX_TEST_TMP/panel/log" &
	PANEL_PID=$!
	track_pid "$PANEL_PID"
	PANEL_URL="http://127.0.0.1:$PANEL_PORT"
	NETPAIR_PANEL_B="http://$ADDR_A:$PANEL_PORT"
	PANEL_TLS=0
	# Every call to the panel from NSA, bounded in time.
	_panel_curl() { ip netns exec "$NSA" curl -sS --max-time 30 "$@"; }
	wait_for "panel emulator" 20 _panel_curl -o /dev/null "$PANEL_URL/_emulator/state" 2>/dev/null
}
netpair_down() { ip -n "$NSA" link set "$VA" down; }
netpair_up() { ip -n "$NSA" link set "$VA" up; }
netpair_tx_bytes() { ip netns exec "$NSA" cat "/sys/class/net/$VA/statistics/tx_bytes"; }
