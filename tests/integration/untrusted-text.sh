#!/bin/bash
# Untrusted text in what the programs write (issue 12, items 6, 7 and 8),
# the programs run by hand as CGI, the worker detached as in production:
#   - entry names that are not UTF-8: the answer, the record, the events,
#     the outbox and GET /api/transfers/<uuid> are valid UTF-8 JSON (json-c
#     copies string bytes as they are);
#   - 1000 FIFOs in an archive: a handful of log lines and events, not two
#     per entry, and one line with the count; the same on the sending side
#     for 1000 FIFOs in a server directory;
#   - https://user:password@host/ as the destination URL: the password is in
#     no record, event, log line or status answer, and is still used for the
#     request (the destination sees the credentials).
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/destination.sh"
. "$top_srcdir/tests/lib/push.sh"
wx_tmpdir
panel_start
dest_node

# valid_utf8_json FILE...: every file is valid UTF-8 and each is JSON (or JSON lines).
valid_utf8_json() {
	python3 - "$@" <<'PY'
import json, sys
bad = 0
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        print("# %s: not UTF-8: %s" % (path, e)); bad += 1; continue
    try:
        json.loads(text)
    except ValueError:
        try:
            [json.loads(l) for l in text.splitlines() if l.strip()]
        except ValueError as e:
            print("# %s: not JSON: %s" % (path, e)); bad += 1
sys.exit(1 if bad else 0)
PY
}

# --- item 7: names that are not UTF-8 -------------------------------------------
python3 - "$WX_TEST_TMP/latin1.tgz" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz", format=tarfile.GNU_FORMAT, encoding="utf-8",
                  errors="surrogateescape") as t:
    for name, kind in (("ok.txt", tarfile.REGTYPE), ("fifo-caf\udce9-\udcff", tarfile.FIFOTYPE),
                       ("/abs-\udcfe\udcff/x", tarfile.REGTYPE)):
        i = tarfile.TarInfo(name); i.type = kind; i.size = 0
        t.addfile(i, io.BytesIO(b""))
PY
body_for "$WX_TEST_TMP/latin1.body" "$WX_TEST_TMP/latin1.tgz"
U=$(new_server)
dest_post "$(token_for "$U")" "$WX_TEST_TMP/latin1.body"
is "$(status_of "$OUT")" 422 "an absolute entry name with bytes that are not UTF-8: 422"
body_of "$OUT" > "$WX_TEST_TMP/answer.json"
ok "the answer is valid UTF-8 JSON" valid_utf8_json "$WX_TEST_TMP/answer.json"
like "$(json_get "$(cat "$WX_TEST_TMP/answer.json")" '["error"]')" 'Entry 3 .* path is absolute' \
	"... naming the entry"
ok "the record is valid UTF-8 JSON" valid_utf8_json "$STATE/transfers/$U.json"
ok "the events are valid UTF-8 JSON lines" valid_utf8_json "$STATE/transfers/$U.events"
like "$(cat "$STATE/transfers/$U.events")" 'fifo-caf�-�' "... they name the skipped FIFO, U+FFFD for each bad byte"
out=$(cgi wingxfer-destination "$DEST_DIR/config.yml" GET "/api/transfers/$U" "Bearer token-dest" 2>/dev/null)
body_of "$out" > "$WX_TEST_TMP/status.json"
is "$(status_of "$out")" 200 "GET /api/transfers/<uuid>: 200"
ok "... valid UTF-8 JSON" valid_utf8_json "$WX_TEST_TMP/status.json"
outbox=$(find "$STATE/outbox" -type f -name '*.json' 2>/dev/null)
if [ -n "$outbox" ]; then
	ok "the outbox files are valid UTF-8 JSON" valid_utf8_json $outbox
else
	ok "the failure callback was delivered (no outbox file left)" test "$(callbacks "$U" failure)" = 1
fi

# --- item 6: 1000 FIFOs, destination ------------------------------------------
python3 - "$WX_TEST_TMP/fifos.tgz" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz", format=tarfile.PAX_FORMAT) as t:
    i = tarfile.TarInfo("server.properties"); i.size = 3; t.addfile(i, io.BytesIO(b"a=b"))
    for n in range(1000):
        i = tarfile.TarInfo("pipes/fifo-%04d" % n); i.type = tarfile.FIFOTYPE
        t.addfile(i)
PY
body_for "$WX_TEST_TMP/fifos.body" "$WX_TEST_TMP/fifos.tgz"
U=$(new_server)
: > "$WX_TEST_TMP/dest.err"
dest_post "$(token_for "$U")" "$WX_TEST_TMP/fifos.body"
is "$(status_of "$OUT")" 200 "1000 FIFOs in the archive: 200 (skipped)"
n=$(grep -c 'fifo-' "$WX_TEST_TMP/dest.err")
ok "the log names at most 5 of them, in at most 10 lines (lines: $n)" [ "$n" -le 10 ]
like "$(cat "$WX_TEST_TMP/dest.err")" '1000 devices, FIFOs or sockets in the archive were skipped in all' \
	"... and says how many there were in one line"
n=$(grep -c 'fifo-' "$STATE/transfers/$U.events")
ok "the events name at most 5 of them (named: $n)" [ "$n" -le 5 ]
like "$(cat "$STATE/transfers/$U.events")" 'Skipped 1000 devices, FIFOs or sockets' "... and give the count"
is "$(json_get "$(body_of "$OUT")" '["skipped"]')" 1000 "the answer counts 1000 skipped"

# --- items 6 and 8: the sending side ----------------------------------------------
SCFG=$(make_node_config "$WX_TEST_TMP/src" src "    stall_timeout: 5")
SSTATE="$WX_TEST_TMP/src/state"
SUUID=0b2a1c3d-1111-4222-8333-444455556666
make_server "$WX_TEST_TMP/src/data" "$SUUID"
echo "level-name=world" > "$WX_TEST_TMP/src/data/$SUUID/server.properties"
mkdir -p "$WX_TEST_TMP/src/data/$SUUID/pipes"
for n in $(seq -w 1 1000); do mkfifo "$WX_TEST_TMP/src/data/$SUUID/pipes/f$n"; done
recv_start creds
SECRET=hunter2-$$-secret
CRED_URL=$(printf '%s' "$RECV_URL" | sed "s|^http://|http://admin:$SECRET@|")
out=$(post_transfer "$SCFG" "$SUUID" "$CRED_URL")
is "$(status_of "$out")" 202 "a destination URL with user:password: 202"
track_worker "$SSTATE" "$SUUID"
wait_worker "$SSTATE" "$SUUID" 120
is "$(rec "$SSTATE" "$SUUID" '["status"]')" completed "the transfer completes"
is "$(rec "$SSTATE" "$SUUID" '["url"]')" "$(printf '%s' "$RECV_URL" | sed 's|^http://|http://<redacted>@|')" \
	"the record keeps the URL with its userinfo redacted"
hits=$(grep -rl -- "$SECRET" "$SSTATE" "$WX_TEST_TMP/handler.err" 2>/dev/null)
is "$hits" "" "the password is in no file of the state directory (record, events, worker log) nor the handler's log"
st=$(cgi wingxfer-source "$SCFG" GET "/api/servers/$SUUID/transfer" "Bearer token-src" </dev/null 2>/dev/null)
unlike "$st" "$SECRET" "GET /api/servers/<uuid>/transfer does not show it"
auth=$(grep '"event": "options"' "$RECV_RECORD" | tail -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["headers"].get("authorization",""))')
is "$auth" "Basic $(printf 'admin:%s' "$SECRET" | base64 -w0)" "the credentials were used for the request"
log="$SSTATE/transfers/$SUUID.log"
n=$(grep -c 'skipped FIFO' "$log")
ok "the worker log names at most 5 of the 1000 FIFOs (named: $n)" [ "$n" -le 5 ]
like "$(cat "$SSTATE/transfers/$SUUID.events")" '1000 sockets, FIFOs or devices were left out \(the first 5' \
	"... and the events give the count"
done_testing
