# Helpers for the chunked-upload tests (docs/protocol.md), sourced after
# webstack.sh and destination.sh; $URL is the destination node.
#
#   up_create TOKEN            POST /api/transfers/uploads; sets CODE, RESP, ID, SECRET
#   up_patch ID SECRET OFFSET FILE COMPLETE [REPR [CURL-ARGS...]]
#                              one chunk (COMPLETE 0 or 1; REPR: base64 SHA-256
#                              of the whole body, sent with the last); sets CODE, RESP;
#                              UP_DIGEST set: that Content-Digest instead of the right one;
#                              UP_PREFIX set: X-Wingxfer-Prefix-Digest with it, no Content-Digest
#   up_get ID SECRET           GET the upload; sets CODE, RESP
#   up_state ID SECRET         prints its state; up_final: true when final
#   up_hdr NAME                a header of the last answer
#   b64sha FILE                base64 of the SHA-256 of FILE
#   up_send_all ID SECRET BODY CHUNK-BYTES [FROM]   every chunk from offset
#                              FROM (0) on; SENT_CODES: their statuses;
#                              UP_BY_PREFIX=1: each with X-Wingxfer-Prefix-Digest

b64sha() { openssl dgst -sha256 -binary "$1" | base64; }

up_create() { # TOKEN [CURL-ARGS...]
	local token=$1; shift
	CODE=$(https_curl --http1.1 -X POST -o "$WX_TEST_TMP/up.resp" -D "$WX_TEST_TMP/up.hdr" \
		-w '%{http_code}' -H "Authorization: Bearer $token" -H 'Upload-Complete: ?0' "$@" \
		-H "X-Wingxfer-Body-Type: $CT" -H 'Content-Length: 0' \
		"$URL/api/transfers/uploads" 2>/dev/null)
	RESP=$(cat "$WX_TEST_TMP/up.resp" 2>/dev/null)
	ID=$(json_get "$RESP" '["upload"]' 2>/dev/null)
	SECRET=$(json_get "$RESP" '["secret"]' 2>/dev/null)
}

up_patch() {
	local id=$1 secret=$2 off=$3 file=$4 complete=$5 repr=${6:-}
	shift 5; [ $# -gt 0 ] && shift
	local extra=() digest
	[ "$complete" = 1 ] && [ -n "$repr" ] && extra=(-H "Repr-Digest: sha-256=:$repr:")
	if [ -n "${UP_PREFIX:-}" ]; then
		digest="X-Wingxfer-Prefix-Digest: sha-256=:$UP_PREFIX:"
	else
		digest="Content-Digest: sha-256=:${UP_DIGEST:-$(b64sha "$file")}:"
	fi
	CODE=$(https_curl --http1.1 -X PATCH -o "$WX_TEST_TMP/up.resp" -D "$WX_TEST_TMP/up.hdr" \
		-w '%{http_code}' -H "Authorization: Bearer $secret" -H "Upload-Offset: $off" \
		-H "Upload-Complete: ?$complete" -H 'Content-Type: application/partial-upload' \
		-H "$digest" "${extra[@]}" \
		--data-binary "@$file" "$@" "$URL/api/transfers/uploads/$id" 2>/dev/null)
	RESP=$(cat "$WX_TEST_TMP/up.resp" 2>/dev/null)
}

up_get() {
	CODE=$(https_curl --http1.1 -o "$WX_TEST_TMP/up.resp" -D "$WX_TEST_TMP/up.hdr" -w '%{http_code}' \
		-H "Authorization: Bearer $2" "$URL/api/transfers/uploads/$1" 2>/dev/null)
	RESP=$(cat "$WX_TEST_TMP/up.resp" 2>/dev/null)
}

up_hdr() { sed -n "s/^$1: *\([^\r]*\)\r\{0,1\}$/\1/Ip" "$WX_TEST_TMP/up.hdr" | tail -n 1; }

up_state() { up_get "$1" "$2"; json_get "$RESP" '["state"]' 2>/dev/null; }
up_final() { case $(up_state "$1" "$2") in completed|failed|cancelled) return 0 ;; esac; return 1; }

up_send_all() {
	local id=$1 secret=$2 body=$3 size=$4 from=${5:-0} total off=0 last repr f len
	total=$(stat -c %s "$body")
	repr=$(b64sha "$body")
	SENT_CODES=
	rm -rf "$WX_TEST_TMP/chunks"; mkdir -p "$WX_TEST_TMP/chunks"
	split -b "$size" -d -a 4 "$body" "$WX_TEST_TMP/chunks/c."
	for f in "$WX_TEST_TMP"/chunks/c.*; do
		len=$(stat -c %s "$f")
		if [ "$off" -ge "$from" ]; then
			last=0; [ $((off + len)) -eq "$total" ] && last=1
			if [ "${UP_BY_PREFIX:-0}" = 1 ]; then
				UP_PREFIX=$(head -c $((off + len)) "$body" | openssl dgst -sha256 -binary | base64) \
					up_patch "$id" "$secret" "$off" "$f" "$last" "$repr"
			else
				up_patch "$id" "$secret" "$off" "$f" "$last" "$repr"
			fi
			SENT_CODES="$SENT_CODES $CODE"
		fi
		off=$((off + len))
	done
	SENT_CODES=${SENT_CODES# }
}
