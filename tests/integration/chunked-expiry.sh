#!/bin/bash
# A chunked upload that stops getting chunks expires (docs/protocol.md §5):
# with system.transfers.resume_window at its least (60 s), an upload that
# got one chunk and then nothing fails by itself, behind real Apache with
# TLS: GET says failed with status 408 and names resume_window, the panel
# got exactly one failure callback and no success, the destination's record
# is failed, and nothing is left (no staging, no spool, nothing installed,
# the transfer's lock free).  Waiting on the outcome, never on a timer: the
# bound is generous (10 minutes), the expiry itself comes after 60 s.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
. "$top_srcdir/tests/lib/chunked.sh"
webstack_init
panel_start

make_tree "$WX_TEST_TMP/src" --files 20
tar -C "$WX_TEST_TMP/src" -czf "$WX_TEST_TMP/tree.tgz" .
body_for "$WX_TEST_TMP/body" "$WX_TEST_TMP/tree.tgz"
head -c 4096 "$WX_TEST_TMP/body" > "$WX_TEST_TMP/first"

node_setup d "    resume_window: 60"
DEST_DIR="$WX_TEST_TMP/d" DATA="$WX_TEST_TMP/d/data" STATE="$WX_TEST_TMP/d/state"
node_start d apache || { echo "not ok - apache does not start"; echo 1..1; exit 1; }
URL=${NODE_URL[d]}
panel_node dest "id-d" "token-d" "$URL"

U=$(new_server)
up_create "$(token_for "$U")"
is "$CODE" 201 "create: 201"
up_patch "$ID" "$SECRET" 0 "$WX_TEST_TMP/first" 0
is "$CODE" 204 "one chunk acknowledged, then nothing"
up_get "$ID" "$SECRET"
is "$(json_get "$RESP" '["state"]')" receiving "... the upload is receiving"

ok "the upload ends by itself once resume_window passed without a chunk" \
	wait_for "the upload to expire" 600 up_final "$ID" "$SECRET"
up_get "$ID" "$SECRET"
is "$(json_get "$RESP" '["state"]') $(json_get "$RESP" '["status"]')" "failed 408" "GET: failed, status 408"
like "$(json_get "$RESP" '["error"]')" 'resume_window' "... the error names system.transfers.resume_window"
has_failure() { [ "$(callbacks "$U" failure)" -ge 1 ]; }
wait_for "the failure callback" 300 has_failure
is "$(callbacks "$U" failure) $(callbacks "$U" success)" "1 0" "the panel got exactly one failure callback, no success"
is "$(record_of "$U" '["status"]')" failed "the destination's record is failed"
lock_free() { flock -n "$STATE/transfers/$U.lock" true; }
ok "the transfer's lock is free (the assembler ended)" wait_for "the lock" 120 lock_free
ok "nothing is left: no staging, no spool, nothing installed" \
	test ! -e "$DATA/.wingxfer-staging/$U" -a ! -e "$STATE/uploads/$ID.spool" -a ! -e "$DATA/$U"
up_patch "$ID" "$SECRET" 4096 "$WX_TEST_TMP/first" 0
is "$CODE" 410 "a chunk after the expiry: 410"

node_stop d
done_testing
