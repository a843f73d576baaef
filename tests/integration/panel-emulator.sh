#!/bin/bash
# Self-test of tests/panel/panel-emulator, the panel the other tests talk to:
# remote API with Wings credentials, callbacks, faults, tokens, transfers
# started against a (fake) source node over TLS, and state across a restart.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
wx_tmpdir
EMU="$top_srcdir/tests/panel/panel-emulator"
webstack_ca || { echo "Bail out! cannot make a test CA"; exit 1; }
CA="$WX_TEST_TMP/ca"

. "$top_srcdir/tests/lib/panel.sh"
NODE_PORT=$(free_port)
SRV=11111111-2222-4333-8444-555555555555
pcurl() { curl -sS --cacert "$CA/ca.pem" "$@"; }

PANEL_TLS=1
start_panel() {
	panel_start --pid-file "$WX_TEST_TMP/panel.pid" \
		--node "src=id-src:token-src:https://127.0.0.1:$NODE_PORT" \
		--node "dst=id-dst:token-dst:https://127.0.0.1:$NODE_PORT" "$@"
	PANEL=$PANEL_URL
}

# A fake node (source and destination) over TLS, up before anything else so
# no other test can take its port.
cat > "$WX_TEST_TMP/fake-node.py" <<'PY'
import http.server, json, ssl, sys
port, cert, key, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        with open(log, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "body": body,
                                "auth": self.headers.get("Authorization")}) + "\n")
        self.send_response(202); self.send_header("Content-Length", "0"); self.end_headers()
    do_POST = do_DELETE = answer
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
PY
python3 "$WX_TEST_TMP/fake-node.py" "$NODE_PORT" "$CA/node.pem" "$CA/node.key" "$WX_TEST_TMP/node.log" &
track_pid $!
wait_for "fake node up" 20 curl -s -o /dev/null --cacert "$CA/ca.pem" -XPOST "https://127.0.0.1:$NODE_PORT/ping"
ok "the emulator starts with TLS" start_panel
ok "it writes its pid file" test "$(cat "$WX_TEST_TMP/panel.pid")" = "$PANEL_PID"

# --- remote API -------------------------------------------------------------
pcurl -o /dev/null -XPOST "$PANEL/_emulator/servers" \
	-d "{\"uuid\":\"$SRV\",\"disk_space\":64,\"egg\":{\"file_denylist\":[\"*.bak\"]}}"
out=$(pcurl -w '\n%{http_code}' -H 'Authorization: Bearer id-src.token-src' \
	"$PANEL/api/remote/servers/$SRV")
is "${out##*$'\n'}" 200 "GET server config with the node's credentials: 200"
body=${out%$'\n'*}
is "$(json_get "$body" '["settings"]["uuid"]')" "$SRV" "settings.uuid"
is "$(json_get "$body" '["settings"]["build"]["disk_space"]')" 64 "build.disk_space in MiB"
is "$(json_get "$body" '["settings"]["egg"]["file_denylist"]')" '["*.bak"]' "overrides are merged"
is "$(json_get "$body" '["process_configuration"]["stop"]["type"]')" command "process_configuration"

code() { pcurl -o /dev/null -w '%{http_code}' "$@"; }
is "$(code -H 'Authorization: Bearer id-src.token-src' "$PANEL/api/remote/servers/00000000-0000-4000-8000-000000000000")" \
	404 "unknown server: 404"
is "$(code "$PANEL/api/remote/servers/$SRV")" 401 "no Authorization: 401"
is "$(code -H 'Authorization: Bearer token-src' "$PANEL/api/remote/servers/$SRV")" 401 \
	"Authorization without token id: 401"
is "$(code -H 'Authorization: Bearer id-src.wrong' "$PANEL/api/remote/servers/$SRV")" 403 \
	"wrong secret: 403"
is "$(code -H 'Authorization: Bearer id-nobody.token-src' "$PANEL/api/remote/servers/$SRV")" 403 \
	"unknown token id: 403"

# --- callbacks --------------------------------------------------------------
cb() { # cb KIND BODY -> status
	pcurl -o "$WX_TEST_TMP/cb.out" -w '%{http_code}' -XPOST -H 'Content-Type: application/json' \
		-H 'Authorization: Bearer id-dst.token-dst' -A 'FeatherPanel Wings/v1 (id:id-dst)' \
		-d "$2" "$PANEL/api/remote/servers/$SRV/transfer/$1"
}
is "$(cb success null)" 409 "success without an open transfer: 409"
like "$(cat "$WX_TEST_TMP/cb.out")" '"code": "ConflictHttpException".*Server is not being transferred' \
	"the 409 body is the panel's"
pcurl -o /dev/null -XPOST "$PANEL/_emulator/transfers" -d "{\"server\":\"$SRV\",\"notify\":false}"
is "$(json_get "$(pcurl "$PANEL/_emulator/transfers/$SRV")" '["state"]')" in_progress \
	"a transfer opened without notifying a node is in_progress"
is "$(cb success null)" 204 "success on an open transfer: 204"
is "$(cb failure '{"error":"late"}')" 409 "failure after success: 409"
is "$(json_get "$(pcurl "$PANEL/_emulator/transfers/$SRV")" '["state"]')" completed \
	"the transfer is completed"
cbs=$(pcurl "$PANEL/_emulator/callbacks?server=$SRV")
is "$(json_get "$cbs" '.__len__()')" 3 "three callbacks recorded"
is "$(json_get "$cbs" '[1]["node"]')" dst "the caller's node name is recorded"
is "$(json_get "$cbs" '[1]["body"]')" null "the body is recorded verbatim"
is "$(json_get "$cbs" '[1]["headers"]["User-Agent"]')" 'FeatherPanel Wings/v1 (id:id-dst)' \
	"the User-Agent is recorded"
is "$(json_get "$cbs" '[2]["json"]["error"]')" late "a failure reason is parsed"
is "$(json_get "$(pcurl "$PANEL/_emulator/callbacks?server=nope")" '.__len__()')" 0 \
	"callbacks filter by server"

# --- faults -----------------------------------------------------------------
pcurl -o /dev/null -XPOST "$PANEL/_emulator/transfers" -d "{\"server\":\"$SRV\",\"notify\":false}"
pcurl -o /dev/null -XPOST "$PANEL/_emulator/faults" -d '{"path":"/transfer/failure$","count":2,"status":502}'
s1=$(cb failure '{"error":"x"}'); s2=$(cb failure '{"error":"x"}'); s3=$(cb failure '{"error":"x"}')
is "$s1 $s2 $s3" "502 502 204" "a fault answers its status N times, then the panel answers"
is "$(json_get "$(pcurl "$PANEL/_emulator/faults")" '.__len__()')" 0 "a used-up fault is gone"
reqs=$(pcurl "$PANEL/_emulator/requests?server=$SRV")
like "$(json_get "$reqs" '[-3:]')" '"status": 502, "node": null, "server": "'$SRV'", "note": "fault"' \
	"faulted requests are in the request log"
pcurl -o /dev/null -XPOST "$PANEL/_emulator/faults" -d '{"path":"^/api/remote/servers/","drop":true}'
pcurl -o /dev/null -H 'Authorization: Bearer id-src.token-src' "$PANEL/api/remote/servers/$SRV" 2>/dev/null
rc=$?
ok "a drop fault closes the connection without an answer (curl $rc)" test "$rc" = 52 -o "$rc" = 56
is "$(code -H 'Authorization: Bearer id-src.token-src' "$PANEL/api/remote/servers/$SRV")" 200 \
	"the next request is answered"
pcurl -o /dev/null -XPOST "$PANEL/_emulator/faults" -d '{"path":"x","method":"GET","count":5}'
pcurl -o /dev/null -XDELETE "$PANEL/_emulator/faults"
is "$(json_get "$(pcurl "$PANEL/_emulator/faults")" '.__len__()')" 0 "DELETE forgets all faults"

# --- tokens -----------------------------------------------------------------
cat > "$WX_TEST_TMP/jwt.py" <<'PY'
import base64, hashlib, hmac, json, sys
tok, key = sys.argv[1], sys.argv[2].encode()
h, p, s = tok.split(".")
d = lambda x: base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
good = hmac.compare_digest(d(s), hmac.new(key, (h + "." + p).encode(), hashlib.sha256).digest())
print(json.dumps({"header": json.loads(d(h)), "claims": json.loads(d(p)), "valid": good}))
PY
minted_after=$(date +%s)
jwt=$(json_get "$(pcurl -XPOST "$PANEL/_emulator/tokens" -d "{\"server\":\"$SRV\",\"node\":\"dst\"}")" '["token"]')
minted_before=$(date +%s)
dec=$(python3 "$WX_TEST_TMP/jwt.py" "$jwt" token-dst)
is "$(json_get "$dec" '["valid"]')" true "the token is HS256-signed with the destination's token"
is "$(json_get "$dec" '["header"]')" '{"typ": "JWT", "alg": "HS256"}' "PHP-style header"
is "$(json_get "$dec" '["claims"]["sub"]') $(json_get "$dec" '["claims"]["scope"]')" "$SRV transfer" \
	"sub and scope"
# Against the minting time, not the clock now: a loaded machine may take
# minutes to get here.
is "$(json_get "$dec" "[\"claims\"][\"exp\"] - 900 in range($minted_after, $minted_before + 1)")" true \
	"exp 15 min after the token was minted"
nbf_ok=$(printf '%s' "$dec" | python3 -c 'import json,sys; c=json.load(sys.stdin)["claims"]; print(isinstance(c["iat"], int) and c["nbf"] == c["iat"] - 300)')
is "$nbf_ok" True "iat is an integer, nbf = iat - 300"
is "$(json_get "$dec" '["claims"]["aud"]')" "[\"https://127.0.0.1:$NODE_PORT\"]" "aud is [node url]"
jwt=$(json_get "$(pcurl -XPOST "$PANEL/_emulator/tokens" \
	-d "{\"server\":\"$SRV\",\"node\":\"dst\",\"scope\":null,\"exp_offset\":-60,\"claims\":{\"x\":1}}")" '["token"]')
dec=$(python3 "$WX_TEST_TMP/jwt.py" "$jwt" token-dst)
is "$(json_get "$dec" '["claims"].get("scope", "absent")')" absent "scope null omits the claim"
is "$(json_get "$dec" '["claims"]["exp"] < __import__("time").time()')" true "exp_offset may be negative"
is "$(json_get "$dec" '["claims"]["x"]')" 1 "extra claims are added"

# --- transfers against the fake source node (started at the top) -------------
SRV2=22222222-2222-4333-8444-555555555555
out=$(pcurl -w '\n%{http_code}' -XPOST "$PANEL/_emulator/transfers" \
	-d "{\"server\":\"$SRV2\",\"source\":\"src\",\"destination\":\"dst\"}")
is "${out##*$'\n'}" 202 "starting a transfer answers with the source's status"
is "$(json_get "${out%$'\n'*}" '["transfer"]["state"]')" in_progress "state in_progress after 202"
req=$(grep "/api/servers/$SRV2/transfer" "$WX_TEST_TMP/node.log" | head -1)
is "$(json_get "$req" '["method"]') $(json_get "$req" '["auth"]')" "POST Bearer token-src" \
	"POST to the source with the source's node token"
sent=$(json_get "$req" '["body"]')
is "$(json_get "$sent" '["url"]')" "https://127.0.0.1:$NODE_PORT/api/transfers" "url = dest /api/transfers"
tok=$(json_get "$sent" '["token"]')
like "$tok" '^Bearer ey' "token = Bearer <jwt>"
dec=$(python3 "$WX_TEST_TMP/jwt.py" "${tok#Bearer }" token-dst)
is "$(json_get "$dec" '["valid"]') $(json_get "$dec" '["claims"]["sub"]')" "true $SRV2" \
	"the transfer JWT is for the destination and the server"
out=$(pcurl -XPOST "$PANEL/_emulator/transfers/$SRV2/cancel")
is "$(json_get "$out" '["transfer"]["state"]')" cancelled "cancel: state cancelled"
[ "$(json_get "$out" '["transfer"]["state"]')" = cancelled ] || diag "cancel answered: $out"
is "$(grep -c '"method": "DELETE"' "$WX_TEST_TMP/node.log")" 2 "cancel sends two DELETEs"
like "$(grep DELETE "$WX_TEST_TMP/node.log")" "/api/servers/$SRV2/transfer.*Bearer token-src" \
	"DELETE on the source with its token"
like "$(grep DELETE "$WX_TEST_TMP/node.log")" "/api/transfers/$SRV2.*Bearer token-dst" \
	"DELETE on the destination with its token"

# A source that is down: the transfer fails at once, as the panels revert.
SRV3=33333333-2222-4333-8444-555555555555
pcurl -o /dev/null -XPOST "$PANEL/_emulator/nodes" \
	-d "{\"name\":\"gone\",\"token_id\":\"i\",\"token\":\"t\",\"url\":\"https://127.0.0.1:1\"}"
out=$(pcurl -w '\n%{http_code}' -XPOST "$PANEL/_emulator/transfers" \
	-d "{\"server\":\"$SRV3\",\"source\":\"gone\",\"destination\":\"dst\"}")
is "${out##*$'\n'}" 502 "an unreachable source: 502"
is "$(json_get "${out%$'\n'*}" '["transfer"]["state"]')" failed "and the transfer is failed"

# --- restart with the same state ----------------------------------------------
pcurl -o /dev/null -XPOST "$PANEL/_emulator/faults" -d '{"path":"/transfer/success$","count":1}'
panel_stop
ok "the panel is down" sh -c "! curl -s --cacert '$CA/ca.pem' -o /dev/null '$PANEL/_emulator/state'"
ok "restarted on the same port" start_panel
is "$(code -H 'Authorization: Bearer id-src.token-src' "$PANEL/api/remote/servers/$SRV")" 200 \
	"servers survive a restart"
is "$(json_get "$(pcurl "$PANEL/_emulator/callbacks?server=$SRV")" '.__len__()')" 4 \
	"recorded callbacks survive a restart"
is "$(json_get "$(pcurl "$PANEL/_emulator/transfers/$SRV2")" '["state"]')" cancelled \
	"transfers survive a restart"
is "$(json_get "$(pcurl "$PANEL/_emulator/faults")" '[0]["path"]')" '/transfer/success$' \
	"pending faults survive a restart"
grep -q 'loaded state' "$WX_TEST_TMP/panel/log"
ok "the log says the state was loaded" test $? = 0

# The panel's own watchdog: no callback within --transfer-timeout.  Only this
# last run of the emulator has one (1 s): with it set earlier, a loaded
# machine could time out the transfers the checks above cancel.
panel_stop
ok "restarted with --transfer-timeout 1" start_panel --transfer-timeout 1
SRV4=44444444-2222-4333-8444-555555555555
pcurl -o /dev/null -XPOST "$PANEL/_emulator/transfers" -d "{\"server\":\"$SRV4\",\"notify\":false}"
timed_out() { [ "$(json_get "$(pcurl "$PANEL/_emulator/transfers/$SRV4")" '["state"]')" = timed_out ]; }
ok "an open transfer without callback becomes timed_out" wait_for "timed_out" 20 timed_out
like "$(json_get "$(pcurl "$PANEL/_emulator/transfers/$SRV4")" '["error"]')" 'no callback within 1 s' \
	"the timed-out transfer says why"

done_testing
