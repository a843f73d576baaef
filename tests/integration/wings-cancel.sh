#!/bin/bash
# FeatherPanel's cancel on the destination, DELETE /api/servers/<uuid> (Wings'
# route), through real Apache and lighttpd with TLS from the shipped
# templates.  Standalone, wingxfer-destination serves it as the cancel of the
# incoming transfer (same answers as DELETE /api/transfers/<uuid>); beside
# Wings (beside-wings template) it reaches Wings, and cutting the upload off
# (what the panel's cancel on the source does) still ends the transfer.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
webstack_init
panel_start
head -c 8000000 /dev/urandom > "$WX_TEST_TMP/big.bin"
tar -C "$WX_TEST_TMP" -czf "$WX_TEST_TMP/big.tgz" big.bin

# slow_upload UUID: POSTs big.tgz at 400 KiB/s in the background (POSTER);
# returns once the destination's record counts bytes read.
slow_upload() {
	local u=$1 token
	token=$(token_for "$u")
	# curl itself in the background (POSTER is its pid: stopping it cuts the upload).
	curl -sS --cacert "$WX_CA" --http1.1 -o "$WX_TEST_TMP/slow.out" -w '%{http_code}' \
		-H "Authorization: Bearer $token" --limit-rate 400k -F "archive=@$WX_TEST_TMP/big.tgz" \
		"$URL/api/transfers" > "$WX_TEST_TMP/slow.code" 2>/dev/null &
	POSTER=$!
	track_pid $POSTER
	wait_for "$web: bytes arriving" 60 bash -c "python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r[\"bytes_read\"]>0 else 1)' '$DEST_DIR/state/transfers/$u.json' 2>/dev/null"
}

# failure_told UUID: the panel recorded a failure callback for UUID.
failure_told() { [ "$(callbacks "$1" failure)" -ge 1 ]; }

# del PATH [TOKEN]: DELETE through the web server; sets CODE and RESP.
del() {
	CODE=$(https_curl -o "$WX_TEST_TMP/del.out" -w '%{http_code}' -X DELETE \
		${2:+-H "Authorization: Bearer $2"} "$URL$1")
	RESP=$(cat "$WX_TEST_TMP/del.out")
}

for web in apache lighttpd; do
	node_setup "d-$web"
	DEST_DIR="$WX_TEST_TMP/d-$web"
	DATA="$DEST_DIR/data"
	node_start "d-$web" "$web" || { echo "not ok - $web does not start"; continue; }
	URL=${NODE_URL[d-$web]}
	TOKEN="token-d-$web"
	panel_node dest "id-d-$web" "$TOKEN" "$URL"

	U=$(new_server)
	del "/api/servers/$U"
	is "$CODE" 401 "$web: DELETE /api/servers/<uuid> without the node token: 401"
	like "$(json_get "$RESP" '["error"]')" 'Authorization' "$web: ... from wingxfer, saying why"
	del "/api/servers/$U" wrong-token
	is "$CODE" 403 "$web: ... with a wrong token: 403"
	del "/api/servers/$U" "$TOKEN"
	is "$CODE" 409 "$web: ... with nothing incoming: 409, as DELETE /api/transfers/<uuid>"
	like "$(json_get "$RESP" '["error"]')" 'not currently being transferred' "$web: ... saying so"
	del "/api/servers/not-a-uuid" "$TOKEN"
	is "$CODE" 404 "$web: ... a path that is not a server UUID: 404"
	code=$(https_curl -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$URL/api/servers/$U")
	is "$code" 405 "$web: GET /api/servers/<uuid>: 405 (only DELETE is served there)"

	slow_upload "$U"
	del "/api/servers/$U" "$TOKEN"
	is "$CODE" 202 "$web: DELETE /api/servers/<uuid> mid-upload: 202"
	is "$(json_get "$RESP" '["state"]')" cancelling "$web: ... cancelling"
	wait_for "$web: the upload to end" 60 bash -c "! kill -0 $POSTER 2>/dev/null"
	got=$(cat "$WX_TEST_TMP/slow.code")
	if [ "$web" = lighttpd ] && [ "$got" = 000 -o "$got" = 100 ]; then
		diag "lighttpd reset the connection after the early answer; checking its access log"
		got=$(grep -o '"POST /api/transfers HTTP/1.1" [0-9]*' "$DEST_DIR/web/access.log" | tail -n 1 | cut -d' ' -f4)
	fi
	is "$got" 409 "$web: the uploader is answered 409 (cancelled)"
	ok "$web: staging removed, nothing installed" test ! -e "$DATA/$U" -a ! -e "$DATA/.wingxfer-staging/$U"
	is "$(record_of "$U" '["status"]')" cancelled "$web: the record says cancelled"
	wait_for "$web: the failure callback" 30 failure_told "$U"
	is "$(callbacks "$U" failure)" 1 "$web: the panel got one failure callback"
	del "/api/servers/$U" "$TOKEN"
	is "$CODE" 409 "$web: a second DELETE: 409"
	node_stop "d-$web"
done

# Beside Wings: a stand-in Wings records the requests it gets.
WINGS_PORT=$(free_port)
python3 - "$WINGS_PORT" "$WX_TEST_TMP/wings.requests" >"$WX_TEST_TMP/wings.log" 2>&1 <<'PY' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        with open(sys.argv[2], "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, self.headers.get("Authorization")))
        code = 204 if self.command == "DELETE" else 200
        self.send_response(code)
        if code == 200:
            body = json.dumps({"fake_wings": self.path}).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
        else:
            self.end_headers()
    do_GET = do_DELETE = answer
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
track_pid $!
wait_for "stand-in Wings" 10 curl -s -o /dev/null "http://127.0.0.1:$WINGS_PORT/"
web=beside-wings
node_setup d-beside
DEST_DIR="$WX_TEST_TMP/d-beside"
DATA="$DEST_DIR/data"
WINGS_URL="http://127.0.0.1:$WINGS_PORT" node_start d-beside beside-wings
URL=${NODE_URL[d-beside]}
panel_node dest id-d-beside token-d-beside "$URL"
U=$(new_server)
slow_upload "$U"
: > "$WX_TEST_TMP/wings.requests"
del "/api/servers/$U" wings-token
is "$CODE" 204 "beside-wings: DELETE /api/servers/<uuid> answered by Wings (204)"
is "$(cat "$WX_TEST_TMP/wings.requests")" "DELETE /api/servers/$U Bearer wings-token" \
	"beside-wings: ... Wings got the DELETE with its Authorization"
is "$(record_of "$U" '["status"]')" processing "beside-wings: ... the incoming transfer goes on"
ok "beside-wings: ... the uploader is still sending" kill -0 "$POSTER"
# The panel's cancel on the source stops the upload: the connection is cut.
stop_pid "$POSTER"
wait_for "beside-wings: the receiving side to give up" 120 bash -c \
	"python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r[\"status\"] in (\"failed\",\"cancelled\") else 1)' '$DEST_DIR/state/transfers/$U.json' 2>/dev/null"
is "$(record_of "$U" '["status"]')" failed "beside-wings: a cut-off upload fails the transfer"
ok "beside-wings: ... staging removed, nothing installed" \
	test ! -e "$DATA/$U" -a ! -e "$DATA/.wingxfer-staging/$U"
wait_for "beside-wings: the failure callback" 30 failure_told "$U"
is "$(callbacks "$U" failure)" 1 "beside-wings: ... the panel got one failure callback"
del "/api/transfers/$U" token-d-beside
is "$CODE" 409 "beside-wings: DELETE /api/transfers/<uuid> still reaches wingxfer (409: nothing runs)"
node_stop d-beside
done_testing
