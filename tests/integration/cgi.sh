#!/bin/bash
# The handlers run by hand as plain CGI, the way an admin debugs them.
. "$top_srcdir/tests/lib/tap.sh"
wx_tmpdir
CFG=$(make_node_config "$WX_TEST_TMP/node" dest)
UUID=0b2a1c3d-1111-4222-8333-444455556666
AUTH="Bearer token-dest"

out=$(cgi wingxfer-destination "$CFG" GET /api/transfers/x "" 2>/dev/null)
is "$(status_of "$out")" 401 "GET without Authorization: 401"
is "$(header_of "$out" WWW-Authenticate)" "Bearer" "401 carries WWW-Authenticate: Bearer"
like "$(header_of "$out" X-Request-Id)" '^[0-9a-f-]{36}$' "every response has X-Request-Id"
like "$(body_of "$out")" '^\{"error":"The required authorization headers' "the body is a JSON error"

out=$(cgi wingxfer-destination "$CFG" GET /api/transfers/$UUID "Bearer wrong" 2>/dev/null)
is "$(status_of "$out")" 403 "a wrong node token: 403"
unlike "$out" 'wrong' "the response does not echo the token"

out=$(cgi wingxfer-destination "$CFG" GET /api/transfers/$UUID "$AUTH" 2>/dev/null)
is "$(status_of "$out")" 404 "no record: 404"
like "$(json_get "$(body_of "$out")" '["error"]')" 'No incoming transfer' "the 404 says what is missing"

# A record written by a (finished) transfer is shown.
mkdir -p "$WX_TEST_TMP/node/state/transfers"
cat > "$WX_TEST_TMP/node/state/transfers/$UUID.json" <<JSON
{"uuid":"$UUID","role":"destination","status":"failed","phase":"receiving","bytes_read":1024,
 "bytes_total":4096,"files":3,"created_at":1700000000,"updated_at":1700000010,"error":"checksums do not match"}
JSON
out=$(cgi wingxfer-destination "$CFG" GET /api/transfers/$UUID "$AUTH" 2>/dev/null)
is "$(status_of "$out")" 200 "GET status of a known transfer: 200"
body=$(body_of "$out")
is "$(json_get "$body" '["state"]')" failed "state comes from the record"
is "$(json_get "$body" '["error"]')" "checksums do not match" "error text comes from the record"
is "$(json_get "$body" '["bytes_read"]')" 1024 "byte counters come from the record"
is "$(json_get "$body" '["owner_alive"]')" false "no live owner"

out=$(cgi wingxfer-source "$CFG" GET /api/servers/$UUID/transfer "$AUTH" 2>/dev/null)
is "$(status_of "$out")" 404 "the source does not show a destination record"

out=$(cgi wingxfer-destination "$CFG" PUT /api/transfers/$UUID "$AUTH" 2>/dev/null)
is "$(status_of "$out")" 405 "a wrong method: 405"
is "$(header_of "$out" Allow)" "DELETE, GET, OPTIONS" "405 lists the allowed methods"

out=$(cgi wingxfer-destination "$CFG" GET /api/nothing "$AUTH" 2>/dev/null)
is "$(status_of "$out")" 404 "an unknown route: 404"

out=$(cgi wingxfer-destination "$CFG" OPTIONS /api/transfers/$UUID "" HTTP_ORIGIN=http://127.0.0.1:1 2>/dev/null)
is "$(status_of "$out")" 204 "OPTIONS preflight: 204 without auth"
is "$(header_of "$out" Access-Control-Allow-Origin)" "http://127.0.0.1:1" "the panel origin is allowed"
like "$(header_of "$out" Access-Control-Allow-Methods)" 'GET' "preflight lists methods"

out=$(cgi wingxfer-destination "$CFG" OPTIONS /api/transfers/$UUID "" HTTP_ORIGIN=https://evil.example 2>/dev/null)
is "$(header_of "$out" Access-Control-Allow-Origin)" "" "another origin is not allowed"

# allowed_origins, and TLS required.
CFG2=$(make_node_config "$WX_TEST_TMP/node2" dest "allowed_origins: [https://admin.example]
api:
  ssl:
    enabled: true
    cert: /etc/ssl/certs/x.pem
    key: /etc/ssl/private/x.key")
out=$(cgi wingxfer-destination "$CFG2" GET /api/transfers/$UUID "$AUTH" HTTP_ORIGIN=https://admin.example 2>/dev/null)
is "$(status_of "$out")" 403 "api.ssl.enabled: a request without HTTPS=on is refused"
like "$(body_of "$out")" 'only accepts requests over HTTPS' "... with a clear message"
out=$(cgi wingxfer-destination "$CFG2" GET /api/transfers/$UUID "$AUTH" HTTPS=on HTTP_ORIGIN=https://admin.example 2>/dev/null)
is "$(status_of "$out")" 404 "with HTTPS=on it is served"
is "$(header_of "$out" Access-Control-Allow-Origin)" "https://admin.example" "an allowed_origins entry gets CORS"

# A broken config: exit non-zero, one line naming file, line and key; JSON 500 on stdout.
BAD="$WX_TEST_TMP/bad.yml"
printf 'token: t\ntoken_id: i\nremote: http://127.0.0.1:1\nsystem:\n  transfers:\n    stall_timeout: soon\n' > "$BAD"
out=$(cgi wingxfer-destination "$BAD" GET /api/transfers/$UUID "$AUTH" 2>"$WX_TEST_TMP/err"); rc=$?
is "$rc" 1 "a bad config: exit status 1"
is "$(status_of "$out")" 500 "a bad config: 500"
is "$(json_get "$(body_of "$out")" '["error"]')" "node misconfigured" "... node misconfigured"
like "$(tail -n 1 "$WX_TEST_TMP/err")" "bad.yml:6: system.transfers.stall_timeout: \"soon\" is not a number" \
	"the last stderr line names file, line, key and value"

out=$("$WX_BIN/wingxfer-destination" --config "$BAD" --check-config 2>&1); rc=$?
is "$rc" 1 "--check-config on a bad file exits 1"
like "$out" 'bad.yml:6: system.transfers.stall_timeout' "--check-config names the problem"
out=$("$WX_BIN/wingxfer-source" --config "$CFG" --check-config 2>&1); rc=$?
is "$rc" 0 "--check-config on a good file exits 0"
like "$out" 'token: "<redacted>"' "--check-config redacts the token"
unlike "$out" 'token-dest' "--check-config never prints the token"

for p in wingxfer-source wingxfer-destination wingxfer-push wingxfer-watchdog; do
	out=$("$WX_BIN/$p" --help); rc=$?
	ok "$p --help exits 0 and has SYNOPSIS" test "$rc" = 0 -a -n "$(printf '%s' "$out" | grep -x 'SYNOPSIS')"
	like "$("$WX_BIN/$p" --version)" "^$p [0-9]+\.[0-9]+\.[0-9]+$" "$p --version"
done
out=$("$WX_BIN/wingxfer-destination" --bogus 2>&1); rc=$?
is "$rc" 2 "an unknown option exits 2"
out=$(env -i "$WX_BIN/wingxfer-destination" </dev/null 2>&1); rc=$?
is "$rc" 2 "run with no socket and no CGI variables: exit 2"
like "$out" 'no FastCGI socket on fd 0 and no REQUEST_METHOD' "... with a hint"

done_testing
