#!/bin/bash
# wingxfer-source: POST/DELETE/GET /api/servers/:uuid/transfer as plain CGI
# and over a FastCGI socket (--listen + cgi-fcgi): validation, 404/409,
# the detached start of wingxfer-push and what it inherits.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/push.sh"
wx_tmpdir
CFG=$(make_node_config "$WX_TEST_TMP/node" src "    stall_timeout: 5")
STATE="$WX_TEST_TMP/node/state"
DATA="$WX_TEST_TMP/node/data"
AUTH="Bearer token-src"
UUID=0b2a1c3d-1111-4222-8333-444455556666
make_server "$DATA" "$UUID"
echo "level-name=world" > "$DATA/$UUID/server.properties"
recv_start ok

req() { # req METHOD UUID [BODY]: a CGI request with the node token
	local body=${3-}
	if [ -n "$body" ]; then
		printf '%s' "$body" | cgi wingxfer-source "$CFG" "$1" "/api/servers/$2/transfer" "$AUTH" \
			CONTENT_LENGTH=${#body} 2>>"$WX_TEST_TMP/handler.err"
	else
		cgi wingxfer-source "$CFG" "$1" "/api/servers/$2/transfer" "$AUTH" </dev/null \
			2>>"$WX_TEST_TMP/handler.err"
	fi
}
err_of() { json_get "$(body_of "$1")" '["error"]'; }

# --- authentication (node token, as Wings) ---
out=$(cgi wingxfer-source "$CFG" POST /api/servers/$UUID/transfer "" </dev/null 2>/dev/null)
is "$(status_of "$out")" 401 "POST without Authorization: 401"
out=$(cgi wingxfer-source "$CFG" POST /api/servers/$UUID/transfer "Bearer nope" </dev/null 2>/dev/null)
is "$(status_of "$out")" 403 "POST with a wrong node token: 403"

# --- unknown server ---
out=$(req POST 11111111-2222-4333-8444-555555555555 "{\"url\":\"$RECV_URL\",\"token\":\"$TEST_TOKEN\"}")
is "$(status_of "$out")" 404 "a server without a data directory: 404"
is "$(err_of "$out")" "The requested resource does not exist on this instance." "... in Wings' words"
out=$(req POST not-a-uuid "{}")
is "$(status_of "$out")" 404 "a path segment that is not a UUID: 404"
out=$(req DELETE 11111111-2222-4333-8444-555555555555)
is "$(status_of "$out")" 404 "DELETE of an unknown server: 404"

# --- bodies that are not a JSON object: 400 ---
out=$(req POST $UUID)
is "$(status_of "$out")" 400 "an empty body: 400"
out=$(req POST $UUID "url=x&token=y")
is "$(status_of "$out")" 400 "a body that is not JSON: 400"
like "$(err_of "$out")" 'not valid JSON' "... saying so"
out=$(req POST $UUID '["a"]')
is "$(status_of "$out")" 400 "a JSON array: 400"
big=$(python3 -c 'import json; print(json.dumps({"url":"http://x/","token":"Bearer y","pad":"a"*70000}))')
out=$(req POST $UUID "$big")
is "$(status_of "$out")" 400 "a body over 64 KiB: 400"
like "$(err_of "$out")" 'larger than 65536 bytes' "... saying the limit"

# --- fields: 422 naming the field, never echoing it ---
out=$(req POST $UUID "{\"token\":\"$TEST_TOKEN\"}")
is "$(status_of "$out")" 422 "no url: 422"
like "$(err_of "$out")" '^The field url ' "... naming url"
# http:/// and http:/x: libcurl reads the first path segment as the host (found by
# the hostile corpus, src-url-no-host: a transfer to "http://api/transfers" started)
for bad in "ftp://dest/api/transfers" "/api/transfers" "dest:8080/api/transfers" "https://" \
	"http://dest/a b" "javascript:alert(1)" "http:///api/transfers" "http:/dest/api/transfers"; do
	out=$(req POST $UUID "{\"url\":\"$bad\",\"token\":\"$TEST_TOKEN\"}")
	is "$(status_of "$out")" 422 "url '$bad': 422"
done
out=$(req POST $UUID "{\"url\":5,\"token\":\"$TEST_TOKEN\"}")
is "$(status_of "$out")" 422 "url not a string: 422"
out=$(req POST $UUID "{\"url\":\"$RECV_URL\",\"token\":\"eyJhbGciOi.secret-part.sig\"}")
is "$(status_of "$out")" 422 "a token without 'Bearer ': 422"
like "$(err_of "$out")" '^The field token .*Bearer ' "... naming token and the expected form"
unlike "$out" 'secret-part' "... without echoing the token"
out=$(req POST $UUID "{\"url\":\"$RECV_URL\",\"token\":\"Bearer a\\r\\nX-Evil: 1\"}")
is "$(status_of "$out")" 422 "a token with a line break: 422"
out=$(req POST $UUID "{\"url\":\"$RECV_URL\",\"token\":\"Bearer \"}")
is "$(status_of "$out")" 422 "'Bearer ' and nothing else: 422"
out=$(req POST $UUID "{\"url\":\"$RECV_URL\",\"token\":\"$TEST_TOKEN\",\"backups\":\"x\"}")
is "$(status_of "$out")" 422 "backups not a list: 422"
like "$(err_of "$out")" 'backups' "... naming backups"
out=$(req POST $UUID "{\"url\":\"$RECV_URL\",\"token\":\"$TEST_TOKEN\",\"backups\":[\"../../etc/passwd\"]}")
is "$(status_of "$out")" 422 "a backup that is not a UUID (a path): 422"
ok "no record was written by refused requests" test ! -e "$STATE/transfers/$UUID.json"

# --- a transfer as Pterodactyl starts it (extra keys ignored) ---
body="{\"server_id\":\"$UUID\",\"url\":\"$RECV_URL\",\"token\":\"$TEST_TOKEN\",\"server\":{\"uuid\":\"$UUID\",\"start_on_completion\":false},\"delete_backups\":true}"
out=$(req POST $UUID "$body")
is "$(status_of "$out")" 202 "a valid request: 202"
is "$(body_of "$out")" "" "... with an empty body, as Wings"
like "$(header_of "$out" X-Request-Id)" '^[0-9a-f-]{36}$' "... and a request id"
ok "the record exists when 202 is answered" test -f "$STATE/transfers/$UUID.json"
is "$(rec "$STATE" $UUID '["role"]')" source "the record is an outgoing transfer"
is "$(rec "$STATE" $UUID '["url"]')" "$RECV_URL" "it keeps the destination url"
is "$(rec "$STATE" $UUID '["request_id"]')" "$(header_of "$out" X-Request-Id)" \
	"its transfer id is the request id"
ok "the worker finishes" wait_worker "$STATE" $UUID
is "$(rec "$STATE" $UUID '["status"]')" completed "the transfer completed"
is "$(recv_count)" 1 "the destination got one upload"
is "$(recv_last '["headers"]["authorization"]')" "$TEST_TOKEN" "with the token verbatim"
if grep -rqF "${TEST_TOKEN#Bearer }" "$STATE"; then ok "the token is not stored in the state directory" false
else ok "the token is not stored in the state directory" true; fi
unlike "$(cat "$WX_TEST_TMP/handler.err")" "${TEST_TOKEN#Bearer }" "the token is not in the handler's log"

# --- GET status ---
out=$(req GET $UUID)
is "$(status_of "$out")" 200 "GET status: 200"
b=$(body_of "$out")
is "$(json_get "$b" '["state"]')" completed "status: state"
is "$(json_get "$b" '["bytes_total"]')" 17 "status: the total from the size walk"
is "$(json_get "$b" '["bytes_read"]')" 17 "status: bytes read"
like "$(json_get "$b" '["bytes_sent"]')" '^[1-9][0-9]*$' "status: bytes sent"
is "$(json_get "$b" '["files"]')" 1 "status: files"
is "$(json_get "$b" '["files_total"]')" 1 "status: files_total from the size walk"
like "$(json_get "$b" '["archive_bytes"]')" '^[1-9][0-9]*$' "status: compressed archive bytes"
like "$(json_get "$b" '["logs"]')" 'Finished streaming archive to destination' "status: the last log lines"

# --- DELETE when nothing runs ---
out=$(req DELETE $UUID)
is "$(status_of "$out")" 409 "DELETE after the transfer ended: 409"
is "$(err_of "$out")" "Server is not currently being transferred." "... in Wings' words"

# --- 409: a live owner holds the lock ---
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(60)' "$STATE/transfers/$UUID.lock" &
HOLDER=$!
track_pid $HOLDER
wait_for "lock holder" 10 bash -c "! flock -n '$STATE/transfers/$UUID.lock' true"
out=$(req POST $UUID "{\"url\":\"$RECV_URL\",\"token\":\"$TEST_TOKEN\"}")
is "$(status_of "$out")" 409 "POST while another process holds the transfer lock: 409"
is "$(err_of "$out")" "A transfer is already in progress for this server." "... in Wings' words"
is "$(rec "$STATE" $UUID '["status"]')" completed "... and the record is untouched"
stop_pid $HOLDER

# --- 409: the record says active but its owner is gone ---
python3 - "$STATE/transfers/$UUID.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r["status"] = "processing"; r["finished_at"] = 0
json.dump(r, open(sys.argv[1], "w"))
PY
out=$(req POST $UUID "{\"url\":\"$RECV_URL\",\"token\":\"$TEST_TOKEN\"}")
is "$(status_of "$out")" 409 "POST while a dead transfer is still recorded active: 409"
like "$(err_of "$out")" 'wingxfer-watchdog' "... explaining that the watchdog cleans it up"
out=$(req DELETE $UUID)
is "$(status_of "$out")" 409 "DELETE with no live worker: 409"
rm -f "$STATE/transfers/$UUID.json"

# --- the worker cannot be started: 500, record failed, lock free ---
mkdir -p "$WX_TEST_TMP/lonely"
cp "$WX_BIN/wingxfer-source" "$WX_TEST_TMP/lonely/"
body="{\"url\":\"$RECV_URL\",\"token\":\"$TEST_TOKEN\"}"
out=$(printf '%s' "$body" | env -i PATH="$PATH" WINGXFER_CONFIG="$CFG" REQUEST_METHOD=POST \
	REQUEST_URI=/api/servers/$UUID/transfer HTTP_AUTHORIZATION="$AUTH" CONTENT_LENGTH=${#body} \
	"$WX_TEST_TMP/lonely/wingxfer-source" 2>"$WX_TEST_TMP/lonely.err")
is "$(status_of "$out")" 500 "no wingxfer-push beside the handler: 500"
like "$(err_of "$out")" 'wingxfer-push.*could not be started' "... saying the worker could not start"
is "$(rec "$STATE" $UUID '["status"]')" failed "... the record says failed"
like "$(rec "$STATE" $UUID '["error"]')" 'lonely/wingxfer-push: No such file' "... with the reason"
ok "... and the lock is free again" flock -n "$STATE/transfers/$UUID.lock" true

# --- over a FastCGI socket: the worker inherits nothing of the handler ---
SOCK="$WX_TEST_TMP/src.sock"
"$WX_BIN/wingxfer-source" --config "$CFG" --listen "$SOCK" 2>"$WX_TEST_TMP/fcgi.err" &
FPID=$!
track_pid $FPID
wait_for "socket $SOCK" 10 test -S "$SOCK"
fcgi_req() { # fcgi_req METHOD UUID [BODY]
	local body=${3-}
	printf '%s' "$body" | env -i REQUEST_METHOD="$1" REQUEST_URI="/api/servers/$2/transfer" \
		QUERY_STRING= CONTENT_LENGTH=${#body} HTTP_AUTHORIZATION="$AUTH" \
		cgi-fcgi -bind -connect "$SOCK" 2>/dev/null
}
# More than the loopback socket buffers hold, read slowly: the upload lasts.
recv_start slow --mode slow --rate 500000
head -c 24000000 /dev/urandom > "$DATA/$UUID/world.dat"
out=$(fcgi_req POST $UUID "{\"url\":\"$RECV_URL\",\"token\":\"$TEST_TOKEN\"}")
is "$(status_of "$out")" 202 "FastCGI: POST answered 202"
track_worker "$STATE" $UUID
wait_for "worker streaming" 20 phase_is "$STATE" $UUID streaming
WPID=$(rec "$STATE" $UUID '["pid"]')
fds=$(ls -l /proc/$WPID/fd 2>/dev/null | awk 'NR>1 {print $NF}' | sort | tr '\n' ' ')
shared=""
for s in $(ls -l /proc/$FPID/fd | grep -o 'socket:\[[0-9]*\]'); do
	case " $fds " in *" $s "*) shared="$shared $s" ;; esac
done
is "$shared" "" "FastCGI: the worker holds none of the handler's sockets (listen socket included)"
ok "FastCGI: the worker holds the transfer lock" bash -c "ls -l /proc/$WPID/fd | grep -q '$UUID.lock'"
ok "FastCGI: fd 0 of the worker is /dev/null" bash -c "[ \"\$(readlink /proc/$WPID/fd/0)\" = /dev/null ]"
ppid=$(awk '{print $4}' /proc/$WPID/stat)
ok "FastCGI: the worker is not a child of the handler" test "$ppid" != "$FPID"
unlike "$(tr '\0' ' ' < /proc/$WPID/cmdline)" "${TEST_TOKEN#Bearer }" "the token is not in the worker's argv"
out=$(fcgi_req GET $UUID)
is "$(json_get "$(body_of "$out")" '["state"]')" processing \
	"FastCGI: the handler keeps serving while the worker runs; GET shows it processing"
out=$(fcgi_req POST $UUID "{\"url\":\"$RECV_URL\",\"token\":\"$TEST_TOKEN\"}")
is "$(status_of "$out")" 409 "FastCGI: a second POST while it runs: 409"
out=$(fcgi_req DELETE $UUID)
is "$(status_of "$out")" 202 "FastCGI: DELETE while it runs: 202"
ok "the worker stops" wait_worker "$STATE" $UUID 20
is "$(rec "$STATE" $UUID '["status"]')" cancelled "the record says cancelled"
is "$(json_get "$(body_of "$(fcgi_req GET $UUID)")" '["state"]')" cancelled "GET shows cancelled"
ok "no zombie children of the FastCGI handler" bash -c "! ps -o stat= --ppid $FPID | grep -q Z"
stop_pid $FPID
done_testing
