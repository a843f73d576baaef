#!/bin/bash
# The preflight (issue 19): before its stop hook runs, the source checks the
# destination.  Node a (Apache, TLS) is the source with a stop hook that
# records each run; node b (lighttpd, TLS: its mod_magnet gate also sees
# POST /api/transfers/preflight) is a wingxfer destination; node w (Apache)
# has a certificate from a CA the source does not trust.  For each reason the
# destination would refuse (unreachable, TLS, token, room, data in the way, a
# transfer running): the transfer fails with the reason, the stop hook never
# ran, the panel got exactly one failure callback saying why, and the same
# token then moves the server once the obstacle is gone (the preflight did
# not spend it).  A Go Wings stand-in (no capabilities) is only probed and
# still gets the server; system.transfers.preflight: false stops first.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
webstack_init
PANEL_TLS=1 panel_start || { echo "not ok 1 - panel emulator"; echo 1..1; exit 1; }
PANEL_TLS=1
TREES="$top_srcdir/tests/lib/trees.py"

STOPPED="$WX_TEST_TMP/stopped"
: > "$STOPPED"
HOOKS="$WX_TEST_TMP/hooks"
mkdir -p "$HOOKS"
printf '#!/bin/sh\necho "$SERVER_UUID" >> "%s"\n' "$STOPPED" > "$HOOKS/stop-record"
chmod 755 "$HOOKS/stop-record"

node_setup a "    connect_timeout: 5
    hooks:
      stop: [$HOOKS/stop-record]"
node_start a apache
node_setup b; node_start b lighttpd
d="$WX_TEST_TMP/ca"
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/w.key" -out "$d/w.csr" >/dev/null 2>&1
openssl x509 -req -in "$d/w.csr" -CA "$d/other-ca.pem" -CAkey "$d/other-ca.key" -CAcreateserial \
	-days 2 -extfile "$d/ext.cnf" -out "$d/w.pem" >/dev/null 2>&1
node_setup w
sed -i "s|cert: .*node.pem|cert: $d/w.pem|; s|key: .*node.key|key: $d/w.key|" "$WX_TEST_TMP/w/config.yml"
NODE_CA[w]="$d/other-ca.pem"
node_start w apache
for n in a b w; do panel_node "$n" "id-$n" "token-$n" "${NODE_URL[$n]}"; done
A_STATE="$WX_TEST_TMP/a/state"

src_status() { https_curl -H "Authorization: Bearer token-a" "${NODE_URL[a]}/api/servers/$1/transfer"; }
state_of() { json_get "$(src_status "$1")" '["state"]' 2>/dev/null; }
finished() { case "$(state_of "$1")" in completed|failed|cancelled) return 0 ;; esac; return 1; }
nfailures() { callbacks "$1" | grep -c '^failure '; }
has_failure() { [ "$(nfailures "$1")" -ge 1 ]; }
stop_runs() { grep -c "^$1\$" "$STOPPED"; }
mint() { # mint UUID [JSON]: a transfer token for node b, "Bearer <jwt>"
	echo "Bearer $(json_get "$(panel_api POST /_emulator/tokens \
		"{\"server\":\"$1\",\"node\":\"b\"${2:+,$2}}")" '["token"]')"
}
new_server() { # a server on a with a few files, known to the panel
	local u
	u=$(new_uuid)
	python3 "$TREES" make "$WX_TEST_TMP/a/data/$u" --files 20 --seed 5 >/dev/null
	panel_server "$u" 0
	echo "$u"
}
start() { # start UUID TOKEN [URL]: the panel asks a to move UUID (to b by default)
	panel_api POST /_emulator/transfers "{\"server\":\"$1\",\"source\":\"a\",\"destination\":\"b\",\"token\":\"$2\"${3:+,\"url\":\"$3\"}}" >/dev/null
	wait_for "transfer $1 ends" 120 finished "$1"
	wait_worker "$A_STATE" "$1" 60
}

# refused LABEL UUID PATTERN: the transfer failed before the stop, saying PATTERN.
refused() {
	local label=$1 u=$2 want=$3 j
	j=$(src_status "$u")
	is "$(json_get "$j" '["state"]')" failed "$label: the transfer fails"
	diag "$label: $(json_get "$j" '["error"]')"
	like "$(json_get "$j" '["error"]')" "$want" "$label: the status says why"
	like "$(json_get "$j" '["error"]')" 'before stopping the server, which was not stopped' \
		"$label: ... and that the server was not stopped"
	is "$(stop_runs "$u")" 0 "$label: the stop hook did not run"
	wait_for "failure callback of $u" 60 has_failure "$u"
	is "$(nfailures "$u")" 1 "$label: exactly one failure callback"
	is "$(callbacks "$u" | grep -c '^success ')" 0 "$label: no success callback"
	like "$(callbacks "$u" | grep '^failure ')" "$want" "$label: the panel is told why"
	ok "$label: nothing arrived on b" test ! -e "$WX_TEST_TMP/b/data/.wingxfer-staging/$u"
}
# moves LABEL UUID TOKEN: with the obstacle gone, the same token moves the server.
moves() {
	local label=$1 u=$2 tok=$3
	python3 "$TREES" manifest "$WX_TEST_TMP/a/data/$u" > "$WX_TEST_TMP/$u.before"
	start "$u" "$tok"
	is "$(state_of "$u")" completed "$label: then the same token moves the server (not spent by the preflight)"
	is "$(stop_runs "$u")" 1 "$label: ... the stop hook ran once, for that transfer"
	python3 "$TREES" manifest "$WX_TEST_TMP/b/data/$u" > "$WX_TEST_TMP/$u.after" 2>/dev/null
	ok "$label: ... and the tree arrived identical" cmp -s "$WX_TEST_TMP/$u.before" "$WX_TEST_TMP/$u.after"
}

# --- the destination's answers, directly (through lighttpd) ---
u=$(new_server)
tok=$(mint "$u")
pf() { # pf TOKEN [QUERY]: POST /api/transfers/preflight on b; "status body"
	https_curl -s -o "$WX_TEST_TMP/pf.out" -w '%{http_code}' -d '' -H "Authorization: $1" \
		"${NODE_URL[b]}/api/transfers/preflight${2:+?$2}"
	printf ' %s' "$(cat "$WX_TEST_TMP/pf.out")"
}
like "$(https_curl -s -D - -o /dev/null -X OPTIONS "${NODE_URL[b]}/api/transfers")" \
	'[Xx]-[Ww]ingxfer-[Cc]apabilities: [^\r]*preflight' "OPTIONS names the preflight capability"
out=$(pf "$tok" size=12345)
like "$out" '^200 ' "POST /api/transfers/preflight: 200 for a good token"
like "$out" '"size": ?12345' "... the JSON repeats the size asked for"
like "$out" '"disk_reserve": ?0' "... and the reserve"
is "$(ls "$WX_TEST_TMP/b/state/tokens" | wc -l)" 0 "... and no token was recorded as used"
ok "... no lock, record or staging was left" test ! -e "$WX_TEST_TMP/b/state/transfers/$u.json"
like "$(pf "$tok" size=12x)" '^400 .*size' "a malformed size: 400 naming it"
like "$(pf "Bearer not.a.jwt")" '^401 ' "a bad token: 401"

# --- 1. unreachable ---
u=$(new_server); tok=$(mint "$u")
start "$u" "$tok" "https://127.0.0.1:$(free_port)/api/transfers"
refused "unreachable" "$u" 'could not be reached.*(Couldn.t connect|Could not connect|Failed to connect)'
like "$(cat "$A_STATE/transfers/$u.log")" "preflight attempt 2 of 3 failed" \
	"unreachable: retried with backoff, 3 attempts"
moves "unreachable" "$u" "$tok"
like "$(node_log b)" "preflight of $u: the token is accepted, nothing is in the way, [0-9]+ bytes fit" \
	"a normal transfer: b answered the preflight"
like "$(events "$A_STATE" "$u")" \
	'accepts the token, has room' "a normal transfer: the preflight's yes is in the transfer's log"

# --- 2. TLS: w's certificate comes from a CA a does not trust ---
u=$(new_server); tok=$(mint "$u")
start "$u" "$tok" "${NODE_URL[w]}/api/transfers"
refused "untrusted certificate" "$u" 'could not be reached.*([Cc]ertificate|SSL|TLS)'
moves "untrusted certificate" "$u" "$tok"

# --- 3. the token: a bad signature (lighttpd's gate), expired, no scope (the program) ---
for c in 'signature|"key":"not-the-node-token"|signature' 'expired|"exp_offset":-60|expired' \
	'no scope|"scope":null|scope'; do
	IFS='|' read -r label opts want <<<"$c"
	u=$(new_server); tok=$(mint "$u" "$opts")
	spent=$(ls "$WX_TEST_TMP/b/state/tokens" | wc -l)
	start "$u" "$tok"
	refused "token refused ($label)" "$u" "The destination answered HTTP 40[13]: .*$want"
	is "$(ls "$WX_TEST_TMP/b/state/tokens" | wc -l)" "$spent" "token refused ($label): b recorded no token"
done
moves "token refused, then a good token" "$u" "$(mint "$u")"

# --- 4. no room: b keeps a reserve larger than its disk ---
cfg_b="$WX_TEST_TMP/b/config.yml"
sed -i 's/^    disk_reserve: 0$/    disk_reserve: 1000000GiB/' "$cfg_b"
u=$(new_server); tok=$(mint "$u")
start "$u" "$tok"
refused "no room" "$u" 'HTTP 507: Not enough disk space on this node for this server: it needs .* \([0-9]+ bytes\), system.transfers.disk_reserve keeps .* free, and .* \([0-9]+ bytes\) is free'
sed -i 's/^    disk_reserve: 1000000GiB$/    disk_reserve: 0/' "$cfg_b"
moves "no room" "$u" "$tok"

# --- 5. data in the way: b already has data for the server ---
u=$(new_server); tok=$(mint "$u")
mkdir -p "$WX_TEST_TMP/b/data/$u" && echo old > "$WX_TEST_TMP/b/data/$u/old.txt"
start "$u" "$tok"
refused "data in the way" "$u" 'HTTP 409: This node already has data for this server'
is "$(cat "$WX_TEST_TMP/b/data/$u/old.txt")" old "data in the way: b's data is untouched"
rm -rf "${WX_TEST_TMP:?}/b/data/$u"
moves "data in the way" "$u" "$tok"

# --- 6. a transfer of the server already running on b (its lock is held) ---
u=$(new_server); tok=$(mint "$u")
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); open(sys.argv[2], "w").close()
time.sleep(3600)' "$WX_TEST_TMP/b/state/transfers/$u.lock" "$WX_TEST_TMP/held" &
holder=$!
track_pid "$holder"
wait_for "the lock is held" 30 test -e "$WX_TEST_TMP/held"
start "$u" "$tok"
refused "transfer running" "$u" 'HTTP 409: A transfer is already in progress for this server'
stop_pid "$holder"
moves "transfer running" "$u" "$tok"

# --- a Go Wings stand-in (no X-Wingxfer-Capabilities): probed, not asked ---
recv_start gowings --extract "$WX_TEST_TMP/x-gowings" --flavour pterodactyl
u=$(new_server)
start "$u" "$(mint "$u")" "$RECV_URL"
is "$(state_of "$u")" completed "Go Wings stand-in: the transfer completes"
is "$(stop_runs "$u")" 1 "Go Wings stand-in: the stop hook ran once"
is "$(grep -c '"event": "options"' "$RECV_RECORD")" 1 "Go Wings stand-in: one OPTIONS (the preflight's, reused by the upload)"
is "$(recv_seen)" 1 "Go Wings stand-in: one POST, the upload (no preflight request)"
like "$(events "$A_STATE" "$u")" 'not a wingxfer node, so room and token are not checked' \
	"Go Wings stand-in: the log says what was checked"

# --- system.transfers.preflight: false: the stop hook runs first, as in Wings ---
sed -i 's/^    connect_timeout: 5$/    connect_timeout: 5\n    preflight: false/' "$WX_TEST_TMP/a/config.yml"
u=$(new_server)
start "$u" "$(mint "$u")" "https://127.0.0.1:$(free_port)/api/transfers"
is "$(state_of "$u")" failed "preflight: false, unreachable: the transfer fails"
is "$(stop_runs "$u")" 1 "preflight: false: the stop hook ran (no check before it)"
unlike "$(json_get "$(src_status "$u")" '["error"]')" 'before stopping' "preflight: false: the error is the upload's"

for n in a b w; do node_stop "$n"; done
panel_stop
done_testing
