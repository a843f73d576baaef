#!/bin/bash
# wingxfer-destination behind real Apache (mod_proxy_fcgi) and lighttpd
# (mod_fastcgi) with TLS, curl as the source: -F archive=@... -F checksum=...
# with Content-Length and chunked; a tree with symlinks, empty directories,
# odd modes and names arrives byte-identical; every refusal of the token and
# preconditions with its exact status and before the body; cancel
# mid-stream; the server's disk limit; hostile archives.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
webstack_init
panel_start

make_tree "$WX_TEST_TMP/src" --files 200
tar -C "$WX_TEST_TMP/src" -czf "$WX_TEST_TMP/tree.tgz" .
SUM=$(sha256sum "$WX_TEST_TMP/tree.tgz" | cut -d' ' -f1)
head -c 8000000 /dev/urandom > "$WX_TEST_TMP/big.bin"
echo small > "$WX_TEST_TMP/small.txt"
tar -C "$WX_TEST_TMP" -czf "$WX_TEST_TMP/tree-small.tgz" small.txt
tar -C "$WX_TEST_TMP" -czf "$WX_TEST_TMP/big.tgz" big.bin
OUTSIDE="$WX_TEST_TMP/outside"
mkdir -p "$OUTSIDE"
echo original > "$OUTSIDE/victim"

# up TOKEN ARCHIVE [CURL-ARGS...]: POST like a source; sets CODE and RESP.
# HTTP/1.1 unless told otherwise: curl 7.88 reports an early answer over
# HTTP/2 (lighttpd resets the stream after it) as "stream error 92".
# lighttpd 1.4.69 sometimes resets the connection after an answer sent
# before the body was read (about 1 in 8 here); the client then sees no
# final status (000, or the 100 Continue).  Such an attempt is repeated (at
# most 3 times, said in a diagnostic); a wrong status is never retried.
up() {
	local token=$1 archive=$2 try; shift 2
	for try in 1 2 3; do
		rm -f "$WX_TEST_TMP/resp"
		CODE=$(https_curl ${H2:---http1.1} -o "$WX_TEST_TMP/resp" -w '%{http_code}' \
			${token:+-H "Authorization: Bearer $token"} \
			-F "archive=@$archive;filename=archive.tar.gz" \
			-F "checksum=$(sha256sum "$archive" | cut -d' ' -f1)" "$@" "$URL/api/transfers" 2>/dev/null)
		RESP=$(cat "$WX_TEST_TMP/resp" 2>/dev/null)
		case $CODE in 000|100) diag "$web: no final status (curl: $CODE), attempt $try" ;; *) return ;; esac
	done
}

for web in apache lighttpd; do
	node_setup "d-$web"
	DEST_DIR="$WX_TEST_TMP/d-$web"
	DATA="$DEST_DIR/data"
	node_start "d-$web" "$web" || { echo "not ok - $web does not start"; continue; }
	URL=${NODE_URL[d-$web]}
	panel_node dest "id-d-$web" "token-d-$web" "$URL"

	U=$(new_server)
	H2=--http2 up "$(token_for "$U")" "$WX_TEST_TMP/tree.tgz"
	is "$CODE" 200 "$web: curl -F archive=@... -F checksum=... (Content-Length, h2 if offered): 200"
	ok "$web: the tree arrived byte-identical" same_tree "$WX_TEST_TMP/src" "$DATA/$U"
	is "$(json_get "$RESP" '["checksum"]')" verified "$web: the checksum was verified"
	is "$(callbacks "$U" success)" 1 "$web: the panel got one success callback"
	U=$(new_server)
	up "$(token_for "$U")" "$WX_TEST_TMP/tree.tgz" -H 'Transfer-Encoding: chunked'
	is "$CODE" 200 "$web: the same upload chunked: 200"
	ok "$web: chunked: byte-identical" same_tree "$WX_TEST_TMP/src" "$DATA/$U"

	# Refusals, each with its status, before the body (no record is made).
	# Through Apache with an 8 MB body: the answer comes before the upload.
	# lighttpd 1.4.69 resets the connection when a backend answers while
	# request body is still unread (no lingering close; the client then sees
	# no status at all, often): through it the refusals are checked with a
	# small body that lighttpd has whole before the program answers.  That
	# no body byte is read is proven for every refusal in destination-cgi.sh.
	REFUSE="$WX_TEST_TMP/big.tgz"
	[ "$web" = lighttpd ] && REFUSE="$WX_TEST_TMP/tree-small.tgz"
	U=$(new_server)
	refused() { # refused STATUS PATTERN DESCRIPTION
		is "$CODE" "$1" "$web: $3: $1"
		like "$(json_get "$RESP" '["error"]')" "$2" "$web: $3: says why"
	}
	up "" "$REFUSE"
	refused 401 'no Authorization header' "no Authorization"
	up "$(token_for "$U")x" "$REFUSE"
	refused 401 'signature' "a bad signature"
	up "$(token_for "$U" '"alg":"none"')" "$REFUSE"
	refused 401 'alg none' "alg none"
	up "$(token_for "$U" '"exp_offset":-60')" "$REFUSE"
	refused 401 'expired' "an expired token"
	up "$(token_for "$U" '"claims":{"exp":4102444800.5}')" "$REFUSE"
	refused 401 'not an integer' "a float exp"
	up "$(token_for "$U" '"claims":{"nbf":4102444800}')" "$REFUSE"
	refused 401 'not valid before' "nbf in the future"
	up "$(token_for "$U" '"claims":{"sub":"not-a-uuid"}')" "$REFUSE"
	refused 401 'not a server UUID' "sub not a UUID"
	up "$(token_for "$U" '"scope":null')" "$REFUSE"
	refused 403 'no scope' "no scope"
	up "$(token_for "$U" '"scope":"websocket"')" "$REFUSE"
	refused 403 "does not include 'transfer'" "a websocket-scoped token"
	python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "a"); fcntl.flock(f, fcntl.LOCK_EX); time.sleep(3600)' "$DEST_DIR/state/transfers/$U.lock" &
	LOCKER=$!
	track_pid $LOCKER
	wait_for "lock held" 5 bash -c "! flock -n '$DEST_DIR/state/transfers/$U.lock' true"
	up "$(token_for "$U")" "$REFUSE"
	refused 409 'already in progress' "a transfer in progress"
	stop_pid $LOCKER
	mkdir -p "$DATA/$U" && touch "$DATA/$U/world.dat"
	up "$(token_for "$U")" "$REFUSE"
	refused 409 'already has data' "a server directory with data"
	ok "$web: none of these made a record" test ! -e "$DEST_DIR/state/transfers/$U.json"
	rm -rf "$DATA/$U"
	TOKEN=$(token_for "$U")
	up "$TOKEN" "$WX_TEST_TMP/tree.tgz"
	is "$CODE" 200 "$web: then the transfer goes through"
	rm -rf "$DATA/$U"
	up "$TOKEN" "$WX_TEST_TMP/tree.tgz"
	refused 409 'already used' "the same token again"

	# The server's disk limit.
	U=$(new_server 3)
	up "$(token_for "$U")" "$WX_TEST_TMP/big.tgz"
	refused 413 'disk limit' "more than build.disk_space"
	ok "$web: ... nothing installed, no staging" test ! -e "$DATA/$U" -a ! -e "$DATA/.wingxfer-staging/$U"
	is "$(callbacks "$U" failure)" 1 "$web: ... the panel got one failure callback"

	# Cancel mid-stream: a slow upload, DELETE through the web server.
	U=$(new_server)
	TOKEN=$(token_for "$U")
	( https_curl --http1.1 -o "$WX_TEST_TMP/slow.out" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
		--limit-rate 400k -F "archive=@$WX_TEST_TMP/big.tgz" "$URL/api/transfers" \
		> "$WX_TEST_TMP/slow.code" 2>/dev/null ) &
	POSTER=$!
	track_pid $POSTER
	wait_for "$web: bytes arriving" 30 bash -c "python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r[\"bytes_read\"]>0 else 1)' '$DEST_DIR/state/transfers/$U.json' 2>/dev/null"
	code=$(https_curl -o "$WX_TEST_TMP/get.out" -w '%{http_code}' -H "Authorization: Bearer token-d-$web" \
		"$URL/api/transfers/$U")
	is "$code" 200 "$web: GET status during the upload: 200"
	is "$(json_get "$(cat "$WX_TEST_TMP/get.out")" '["state"]')" processing "$web: ... processing"
	code=$(https_curl -o /dev/null -w '%{http_code}' -X DELETE -H "Authorization: Bearer token-d-$web" \
		"$URL/api/transfers/$U")
	is "$code" 202 "$web: DELETE /api/transfers/<uuid> mid-stream: 202"
	wait_for "$web: the upload to end" 30 bash -c "! kill -0 $POSTER 2>/dev/null"
	got=$(cat "$WX_TEST_TMP/slow.code")
	if [ "$web" = lighttpd ] && [ "$got" = 000 -o "$got" = 100 ]; then
		diag "lighttpd reset the connection after the early answer; checking its access log"
		got=$(grep -o '"POST /api/transfers HTTP/1.1" [0-9]*' "$DEST_DIR/web/access.log" | tail -n 1 | cut -d' ' -f4)
	fi
	is "$got" 409 "$web: the uploader is answered 409 (cancelled), at once"
	ok "$web: staging removed, nothing installed" test ! -e "$DATA/$U" -a ! -e "$DATA/.wingxfer-staging/$U"
	is "$(record_of "$U" '["status"]')" cancelled "$web: the record says cancelled"

	# Hostile archives through the web server.
	for kind in dotdot absolute symlink-through hardlink-outside hardlink-symlink; do
		python3 "$top_srcdir/tests/lib/hostile.py" "$kind" "$WX_TEST_TMP/h.tgz" "$OUTSIDE"
		U=$(new_server)
		up "$(token_for "$U")" "$WX_TEST_TMP/h.tgz"
		is "$CODE" 422 "$web: hostile archive $kind: 422"
		ok "$web: $kind: no server directory, no staging" \
			test ! -e "$DATA/$U" -a ! -e "$DATA/.wingxfer-staging/$U"
		is "$(ls -A "$OUTSIDE"):$(cat "$OUTSIDE/victim")" "victim:original" \
			"$web: $kind: nothing written outside"
	done
	python3 "$top_srcdir/tests/lib/hostile.py" device "$WX_TEST_TMP/h.tgz" "$OUTSIDE"
	U=$(new_server)
	up "$(token_for "$U")" "$WX_TEST_TMP/h.tgz"
	is "$CODE:$(find "$DATA/$U" \( -type c -o -type b -o -type p \) | wc -l)" "200:0" \
		"$web: a device node and a FIFO are skipped (200, none created)"
	node_stop "d-$web"
done
done_testing
