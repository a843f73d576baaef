#!/bin/bash
# Transfer tokens (issue 12, items 4 and 10), wingxfer-destination and
# wingxfer-watchdog run by hand as CGI/cron against the panel emulator:
#   - exp = -2^63 is refused with a sane "s ago" (no signed overflow: the
#     sanitizer build aborts on it), nbf = 2^63-1 likewise;
#   - a token valid for longer than system.transfers.max_token_lifetime (exp
#     far ahead, or exp - iat too long) is refused 401 naming the key;
#   - a used token is remembered until it expires: the watchdog keeps its
#     record past a day while exp is ahead, so the token cannot start a
#     second transfer two days later.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
wx_tmpdir
panel_start
dest_node
echo small > "$WX_TEST_TMP/small.txt"
tar -C "$WX_TEST_TMP" -czf "$WX_TEST_TMP/small.tgz" small.txt
body_for "$WX_TEST_TMP/small.body" "$WX_TEST_TMP/small.tgz"

err_of() { json_get "$(body_of "$OUT")" '["error"]'; }

# --- item 10: extreme exp and nbf -------------------------------------------
U=$(new_server)
dest_post "$(token_for "$U" '"claims":{"exp":-9223372036854775808}')" "$WX_TEST_TMP/small.body"
is "$(status_of "$OUT")" 401 "exp = -2^63: 401"
like "$(err_of)" 'expired at .* \(9223372036854775807 s ago\)' \
	"exp = -2^63: the age saturates instead of overflowing"
unlike "$(cat "$WX_TEST_TMP/dest.err" 2>/dev/null)" 'runtime error' "no undefined behaviour reported"
dest_post "$(token_for "$U" '"claims":{"nbf":9223372036854775807}')" "$WX_TEST_TMP/small.body"
is "$(status_of "$OUT")" 401 "nbf = 2^63-1: 401"
like "$(err_of)" 'not valid before' "nbf = 2^63-1: says not valid before"
dest_post "$(token_for "$U" '"claims":{"exp":9223372036854775807,"iat":-9223372036854775808}')" \
	"$WX_TEST_TMP/small.body"
is "$(status_of "$OUT")" 401 "exp = 2^63-1, iat = -2^63: 401"
unlike "$(cat "$WX_TEST_TMP/dest.err" 2>/dev/null)" 'runtime error' "still no undefined behaviour"

# --- item 4: lifetime bound ---------------------------------------------------
dest_post "$(token_for "$U" '"exp_offset":2592000')" "$WX_TEST_TMP/small.body"
is "$(status_of "$OUT")" 401 "a token valid for 30 days: 401"
like "$(err_of)" 'system.transfers.max_token_lifetime \(7200 s\)' "... naming the key and its value"
now=$(date +%s)
dest_post "$(token_for "$U" "\"claims\":{\"iat\":$((now - 86400)),\"exp\":$((now + 600))}")" \
	"$WX_TEST_TMP/small.body"
is "$(status_of "$OUT")" 401 "exp - iat of a day (exp 10 min ahead): 401"
like "$(err_of)" 'issued for 87000 s \(exp - iat\)' "... saying for how long it was issued"
dest_post "$(token_for "$U" '"exp_offset":3600')" "$WX_TEST_TMP/small.body"
is "$(status_of "$OUT")" 200 "a one-hour token (FeatherPanel) is accepted"
ok "nothing was installed by the refused tokens before it" test -f "$DATA/$U/small.txt"

# --- item 4: used tokens are remembered until they expire ---------------------
sed -i 's/^    disk_reserve: 0$/    disk_reserve: 0\n    max_token_lifetime: 30d/' "$DEST_DIR/config.yml"
U=$(new_server)
TOKEN=$(token_for "$U" '"exp_offset":2505600')     # 29 days
dest_post "$TOKEN" "$WX_TEST_TMP/small.body"
is "$(status_of "$OUT")" 200 "with max_token_lifetime: 30d a 29-day token is accepted"
rm -rf "$DATA/$U"
touch -d '2 days ago' "$DEST_DIR/state/tokens/"*
"$WX_BIN/wingxfer-watchdog" --config "$DEST_DIR/config.yml" >"$WX_TEST_TMP/wd.out" 2>&1
is "$(ls "$DEST_DIR/state/tokens" | wc -l)" 2 "the watchdog keeps used-token records two days old whose token has not expired"
dest_post "$TOKEN" "$WX_TEST_TMP/small.body"
is "$(status_of "$OUT")" 409 "replaying the token two days later: 409"
like "$(err_of)" 'already used' "... already used"
ok "... and nothing was installed" test ! -e "$DATA/$U"
# A record whose token expired long ago goes.
python3 -c 'import json,sys; print(json.dumps({"sub":"x","exp":1000}))' > "$DEST_DIR/state/tokens/old"
touch -d '2 days ago' "$DEST_DIR/state/tokens/old"
"$WX_BIN/wingxfer-watchdog" --config "$DEST_DIR/config.yml" >"$WX_TEST_TMP/wd.out" 2>&1
ok "a record of an expired token older than a day is removed" test ! -e "$DEST_DIR/state/tokens/old"
is "$(ls "$DEST_DIR/state/tokens" | wc -l)" 2 "the unexpired ones stay"
done_testing
