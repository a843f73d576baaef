#!/bin/bash
# The programs behind real Apache (mod_proxy_fcgi) and lighttpd (mod_fastcgi)
# with TLS, configured from the shipped www-config templates.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
webstack_init
UUID=0b2a1c3d-1111-4222-8333-444455556666

for web in apache lighttpd; do
	node_setup "n-$web"
	node_start "n-$web" "$web"
	ok "$web: node starts from the generated config" _web_up "n-$web"
	url=${NODE_URL[n-$web]}
	code=$(https_curl -o "$WX_TEST_TMP/out" -w '%{http_code}' "$url/api/transfers/$UUID")
	is "$code" 401 "$web: GET status over TLS without a token: 401"
	like "$(cat "$WX_TEST_TMP/out")" '"error"' "$web: the JSON error comes from the program"
	code=$(https_curl -o "$WX_TEST_TMP/out" -w '%{http_code}' -H "Authorization: Bearer token-n-$web" \
		"$url/api/transfers/$UUID")
	is "$code" 404 "$web: Authorization reaches the program (404: no such transfer)"
	code=$(https_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer token-n-$web" \
		"$url/api/servers/$UUID/transfer")
	is "$code" 404 "$web: the source route reaches wingxfer-source"
	hdr=$(https_curl -D - -o /dev/null -H "Authorization: Bearer token-n-$web" "$url/api/servers/$UUID/transfer")
	like "$hdr" '[Xx]-[Rr]equest-[Ii]d: [0-9a-f-]{36}' "$web: X-Request-Id passes through"
	code=$(https_curl -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer token-n-$web" \
		"$url/api/transfers/$UUID")
	is "$code" 405 "$web: wrong method: 405 from the program"
	code=$(https_curl -o /dev/null -w '%{http_code}' "$url/api/other")
	is "$code" 404 "$web: other paths are not routed to the programs"
	code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$WX_TEST_TMP/ca/other-ca.pem" \
		"$url/api/transfers/$UUID" 2>/dev/null)
	is "$code" 000 "$web: a client trusting another CA refuses the node"
	code=$(curl -sS -o "$WX_TEST_TMP/out" -w '%{http_code}' -H "Authorization: Bearer token-n-$web" \
		"http://127.0.0.1:${NODE_PLAIN_PORT[n-$web]}/api/transfers/$UUID")
	is "$code" 403 "$web: a request without TLS is refused (api.ssl.enabled)"
	like "$(cat "$WX_TEST_TMP/out")" 'only accepts requests over HTTPS' "$web: ... saying why"
	node_stop "n-$web"
done
# Beside a Wings daemon: our endpoints to our programs, the rest to Wings.
WINGS_PORT=$(free_port)
python3 - "$WINGS_PORT" >"$WX_TEST_TMP/wings.log" 2>&1 <<'PY' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"fake_wings": self.path, "auth": self.headers.get("Authorization")}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
track_pid $!
wait_for "fake Wings" 10 curl -s -o /dev/null "http://127.0.0.1:$WINGS_PORT/"
node_setup n-beside
WINGS_URL="http://127.0.0.1:$WINGS_PORT" node_start n-beside beside-wings
url=${NODE_URL[n-beside]}
out=$(https_curl -H "Authorization: Bearer wings-token" "$url/api/servers/$UUID/power")
is "$(json_get "$out" '["fake_wings"]')" "/api/servers/$UUID/power" "beside-wings: other paths reach Wings"
is "$(json_get "$out" '["auth"]')" "Bearer wings-token" "beside-wings: with their Authorization header"
code=$(https_curl -o "$WX_TEST_TMP/out" -w '%{http_code}' -H "Authorization: Bearer token-n-beside" \
	"$url/api/transfers/$UUID")
is "$code" 404 "beside-wings: /api/transfers/<uuid> reaches wingxfer-destination"
like "$(cat "$WX_TEST_TMP/out")" 'No incoming transfer' "beside-wings: ... with wingxfer's answer"
code=$(https_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer token-n-beside" \
	"$url/api/servers/$UUID/transfer")
is "$code" 404 "beside-wings: /api/servers/<uuid>/transfer reaches wingxfer-source"
node_stop n-beside

done_testing
