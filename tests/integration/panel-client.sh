#!/bin/bash
# The panel client against the panel emulator: headers, GET server, callbacks
# with bodies, Wings' retry policy (500s, dropped connections, slow answers),
# 4xx final and logged, 409 to a failure, one callback per transfer, TLS.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
wx_tmpdir
CALL="$top_builddir/tests/helpers/wx-panel-call"
[ -x "$CALL" ] || { echo "Bail out! $CALL not built (make check builds it)"; exit 1; }

panel_start
CFG=$(make_node_config "$WX_TEST_TMP/node" dest "    panel_product: FeatherPanel")
sed -i 's/^  timeout: 5$/  timeout: 2/' "$CFG"
panel_node dest id-dest token-dest https://127.0.0.1:1
STATE="$WX_TEST_TMP/node/state"
SRV=11111111-2222-4333-8444-000000000001
panel_server "$SRV" 512

# --- GET server ---------------------------------------------------------------
out=$("$CALL" "$CFG" get "$SRV" 2>"$WX_TEST_TMP/err")
is "$?" 0 "GET server: ok"
is "$(json_get "$out" '["settings"]["build"]["disk_space"]')" 512 "the configuration is returned"
req=$(panel_api GET "/_emulator/requests?server=$SRV")
is "$(json_get "$req" '[-1]["user_agent"]')" "FeatherPanel Wings/v$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"/\1/p' "$top_builddir/autoconf.h") (id:id-dest)" \
	"User-Agent: <product> Wings/v<version> (id:<token_id>)"
is "$(json_get "$req" '[-1]["node"]')" dest "Authorization: Bearer <token_id>.<token> is accepted"

out=$("$CALL" "$CFG" get 11111111-2222-4333-8444-00000000dead 2>/dev/null)
is "$?" 1 "unknown server: rejected (4xx is final)"
like "$out" 'status=404 attempts=1 ' "one attempt, status 404"

panel_api POST /_emulator/faults '{"path":"^/api/remote/servers/[^/]+$","count":2,"status":500}' >/dev/null
out=$("$CALL" "$CFG" get "$SRV" 2>/dev/null)
is "$?" 0 "GET server after two 500s: ok"
n=$(json_get "$(panel_api GET "/_emulator/requests?server=$SRV")" '.__len__()')
is "$n" 4 "2 failed + 1 good attempt reached the panel (after the first GET)"

# --- callbacks: retries, exactly once ---------------------------------------------
open_transfer() { panel_api POST /_emulator/transfers "{\"server\":\"$1\",\"notify\":false}" >/dev/null; }
callbacks() { panel_api GET "/_emulator/callbacks?server=$1"; }
S1=11111111-2222-4333-8444-000000000011
open_transfer "$S1"
panel_api POST /_emulator/faults '{"path":"/transfer/success$","count":3,"status":500}' >/dev/null
out=$("$CALL" "$CFG" report "$S1" tr1 success 2>"$WX_TEST_TMP/err")
is "$?" 0 "success after three 500s: delivered"
like "$out" '^ok status=204 attempts=4 ' "on the 4th attempt"
cbs=$(callbacks "$S1")
is "$(json_get "$cbs" '.__len__()')" 1 "the panel saw the callback exactly once"
is "$(json_get "$cbs" '[0]["body"]')" null "success body: null"
is "$(json_get "$cbs" '[0]["headers"]["Content-Type"]')" application/json "Content-Type: application/json"
is "$(json_get "$cbs" '[0]["headers"]["Accept"]')" application/json "Accept: application/json"
ok "nothing is left in the outbox" test -z "$(ls "$STATE/outbox" | grep -v -e rejected -e sent)"
ok "a tombstone is in outbox/sent" test -f "$STATE/outbox/sent/$S1.tr1.json"

# Lower bounds only (jitter is random; a busy machine only makes gaps longer).
times=$(panel_api GET "/_emulator/requests?server=$S1" |
	python3 -c 'import json,sys; print(json.dumps([r["time"] for r in json.load(sys.stdin)]))')
gaps_ok=$(printf '%s' "$times" | python3 -c '
import json, sys
t = json.loads(sys.stdin.read())
iv, ok = 500.0, True
for a, b in zip(t, t[1:]):
    if (b - a) * 1000 < iv * 0.5 - 5: ok = False
    iv = min(iv * 1.5, 12000)
print(ok and len(t) == 4)')
is "$gaps_ok" True "the waits between attempts respect the backoff (>= 0.25 s, 0.375 s, 0.56 s)"

out=$("$CALL" "$CFG" report "$S1" tr1 success 2>/dev/null)
is "$?" 0 "reporting the same callback again: ok"
like "$out" 'already delivered' "it says already delivered"
is "$(json_get "$(callbacks "$S1")" '.__len__()')" 1 "and the panel is not called again"
out=$("$CALL" "$CFG" report "$S1" tr1 failure "late" 2>"$WX_TEST_TMP/err")
is "$?" 3 "a failure for a transfer that got success from this node is refused"
like "$(cat "$WX_TEST_TMP/err")" 'warn.*not reporting transfer failure' "and logged"
is "$(json_get "$(callbacks "$S1")" '.__len__()')" 1 "the panel never sees both"

# Failure body, transport errors, slow answers.
S2=11111111-2222-4333-8444-000000000012
open_transfer "$S2"
panel_api POST /_emulator/faults '{"path":"/transfer/failure$","count":1,"drop":true}' >/dev/null
panel_api POST /_emulator/faults '{"path":"/transfer/failure$","count":1,"delay":4}' >/dev/null
out=$("$CALL" "$CFG" report "$S2" tr2 failure 'checksum "mismatch"' 2>/dev/null)
is "$?" 0 "failure delivered after a dropped connection and a timed-out attempt"
like "$out" 'attempts=3 ' "three attempts (remote_query.timeout bounds each)"
cbs=$(callbacks "$S2")
is "$(json_get "$cbs" '[-1]["body"]')" '{"error":"checksum \"mismatch\""}' "failure body: {\"error\": reason}"
is "$(json_get "$cbs" '[-1]["status"]')" 204 "the panel closed the transfer"

# 409 to a failure: the panel already closed the transfer -> delivered.
S3=11111111-2222-4333-8444-000000000013
out=$("$CALL" "$CFG" report "$S3" tr3 failure "worker died" 2>/dev/null)
is "$?" 0 "409 to a failure counts as delivered"
ok "it is in sent/" test -f "$STATE/outbox/sent/$S3.tr3.json"
like "$(cat "$STATE/outbox/sent/$S3.tr3.json")" '"status":409' "with the 409 recorded"

# 409 to a success: rejected, with the panel's answer, logged at error level.
S4=11111111-2222-4333-8444-000000000014
out=$("$CALL" "$CFG" report "$S4" tr4 success 2>"$WX_TEST_TMP/err")
is "$?" 1 "409 to a success is rejected"
like "$out" '^rejected status=409 attempts=1 ' "after one attempt (4xx is final)"
ok "moved to outbox/rejected" test -f "$STATE/outbox/rejected/$S4.tr4.json"
like "$(cat "$STATE/outbox/rejected/$S4.tr4.json")" 'Server is not being transferred' \
	"the rejected file keeps the panel's answer"
like "$(cat "$WX_TEST_TMP/err")" 'error.*panel rejected the transfer success callback for server '"$S4" \
	"an error line names the server"
ok "nothing stays queued" test ! -e "$STATE/outbox/$S4.tr4.json"

# Wrong credentials: 403, rejected; the token is never logged.
S5=11111111-2222-4333-8444-000000000015
open_transfer "$S5"
sed 's/^token: token-dest$/token: not-the-token/' "$CFG" > "$WX_TEST_TMP/bad.yml"
out=$("$CALL" "$WX_TEST_TMP/bad.yml" report "$S5" tr5 success 2>"$WX_TEST_TMP/err")
is "$?" 1 "wrong node token: rejected"
like "$out" 'status=403' "403"
unlike "$(cat "$WX_TEST_TMP/err" "$STATE/outbox/rejected/$S5.tr5.json")" 'not-the-token' \
	"the token is not in the log or the rejected file"

# Pelican product name.
sed 's/panel_product: FeatherPanel/panel_product: Pelican/' "$CFG" > "$WX_TEST_TMP/pel.yml"
"$CALL" "$WX_TEST_TMP/pel.yml" get "$SRV" >/dev/null 2>&1
like "$(json_get "$(panel_api GET "/_emulator/requests?server=$SRV")" '[-1]["user_agent"]')" \
	'^Pelican Wings/v' "system.transfers.panel_product sets the User-Agent product"

# --- TLS ---------------------------------------------------------------------------
panel_stop
webstack_ca >/dev/null
PANEL_TLS=1 panel_start
TLS_URL=$PANEL_URL
sed "s|^remote: .*|remote: $TLS_URL|" "$CFG" > "$WX_TEST_TMP/tls.yml"
out=$("$CALL" "$WX_TEST_TMP/tls.yml" get "$SRV" 2>/dev/null)
is "$?" 2 "a panel whose certificate is not trusted: not reached (verification is on)"
like "$out" 'status=0 .*(certificate|SSL)' "the detail says it is the certificate"
sed "s|^    disk_reserve: 0$|    disk_reserve: 0\n    ca_file: $WX_TEST_TMP/ca/ca.pem|" "$WX_TEST_TMP/tls.yml" > "$WX_TEST_TMP/tls-ca.yml"
"$CALL" "$WX_TEST_TMP/tls-ca.yml" get "$SRV" >/dev/null 2>&1
is "$?" 0 "with system.transfers.ca_file: verified and reached"
printf 'api:\n  ignore_certificate_errors: true\n' >> "$WX_TEST_TMP/tls.yml"
"$CALL" "$WX_TEST_TMP/tls.yml" get "$SRV" >/dev/null 2>&1
is "$?" 0 "api.ignore_certificate_errors: true opts out"

done_testing
