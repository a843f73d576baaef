#!/bin/bash
# system.transfers.connect_to through real web servers with TLS: the panel
# gives destination URLs with public names that are not resolved (the
# override supplies the address), and the certificate is still checked for
# the public name.
#
#   s  the source (Apache), with the overrides
#   d  lighttpd; its certificate names node2.example.test (and 127.0.0.1)
#   w  Apache; its certificate comes from another CA and names only
#      127.0.0.1 and localhost
#
# 1. https://node2.example.test/ -> d: completes with d's certificate.
# 2. https://localhost/ -> w, with the entry's own ca_file: completes.
# 3. https://node9.example.test/ -> w: refused (w's certificate does not
#    name node9.example.test), a TLS error in the record; the failure
#    callback reaches the panel although an entry matches the panel's
#    host:port (overrides are never applied to the panel).
# 4. https://127.0.0.1:<d's port>/: entries for the same host with another
#    port and for another host with the same port both point at w; neither
#    applies, the transfer reaches d directly.
# 5. Invalid entries: every program refuses the config with file:line:key.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/webstack.sh"
. "$top_srcdir/tests/lib/panel.sh"
webstack_init
PANEL_TLS=1 panel_start || { echo "not ok 1 - panel emulator"; echo 1..1; exit 1; }
PANEL_TLS=1
TREES="$top_srcdir/tests/lib/trees.py"
ca="$WX_TEST_TMP/ca"

# d: a certificate for the public name (and 127.0.0.1, for the harness).
printf 'subjectAltName=DNS:node2.example.test,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$ca/public.cnf"
openssl req -newkey rsa:2048 -nodes -subj "/CN=node2.example.test" -keyout "$ca/public.key" \
	-out "$ca/public.csr" >/dev/null 2>&1
openssl x509 -req -in "$ca/public.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial \
	-days 2 -extfile "$ca/public.cnf" -out "$ca/public.pem" >/dev/null 2>&1
# w: from the other CA, for 127.0.0.1 and localhost only.
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$ca/w.key" -out "$ca/w.csr" >/dev/null 2>&1
openssl x509 -req -in "$ca/w.csr" -CA "$ca/other-ca.pem" -CAkey "$ca/other-ca.key" -CAcreateserial \
	-days 2 -extfile "$ca/ext.cnf" -out "$ca/w.pem" >/dev/null 2>&1
chmod 644 "$ca"/*.pem "$ca"/*.key

node_setup d
sed -i "s|cert: .*node.pem|cert: $ca/public.pem|; s|key: .*node.key|key: $ca/public.key|" "$WX_TEST_TMP/d/config.yml"
node_setup w
sed -i "s|cert: .*node.pem|cert: $ca/w.pem|; s|key: .*node.key|key: $ca/w.key|" "$WX_TEST_TMP/w/config.yml"
NODE_CA[w]="$ca/other-ca.pem"
dport=${NODE_PORT[d]} wport=${NODE_PORT[w]}
panel_port=${PANEL_URL##*:}
node_setup s "    connect_to:
      - match: node2.example.test:443
        connect: 127.0.0.1:$dport
      - match: localhost:443
        connect: 127.0.0.1:$wport
        ca_file: $ca/other-ca.pem
      - match: node9.example.test:443
        connect: 127.0.0.1:$wport
        ca_file: $ca/other-ca.pem
      - {match: '127.0.0.1:1', connect: '127.0.0.1:$wport', ca_file: $ca/other-ca.pem}
      - {match: 'node2.example.test:$dport', connect: '127.0.0.1:$wport', ca_file: $ca/other-ca.pem}
      - {match: '127.0.0.1:$panel_port', connect: '127.0.0.1:1'}"
node_start d lighttpd
node_start w apache
node_start s apache
for n in s d w; do panel_node "$n" "id-$n" "token-$n" "${NODE_URL[$n]}"; done

callbacks() { # callbacks UUID KIND
	panel_api GET "/_emulator/callbacks?server=$1" | python3 -c '
import json, sys
print(sum(1 for c in json.load(sys.stdin) if c.get("kind") == sys.argv[1]))' "$2"
}
src_status() { https_curl -H "Authorization: Bearer token-s" "${NODE_URL[s]}/api/servers/$1/transfer"; }
state_of() { json_get "$1" '["state"]' 2>/dev/null; }
finished() { case "$(state_of "$(src_status "$1")")" in completed|failed|cancelled) return 0 ;; esac; return 1; }
worker_log() { cat "$WX_TEST_TMP/s/state/transfers/$1.log" 2>/dev/null; }
has_failure() { [ "$(callbacks "$1" failure)" -ge 1 ]; }
field() { json_get "$1" "$2" 2>/dev/null || echo "(none)"; }

# start UUID TO URL FILES: the panel asks s to send a new server to node TO at URL.
start() {
	local uuid=$1 to=$2 url=$3 files=$4
	python3 "$TREES" make "$WX_TEST_TMP/s/data/$uuid" --files "$files" --seed "${#url}"
	python3 "$TREES" manifest "$WX_TEST_TMP/s/data/$uuid" > "$WX_TEST_TMP/$uuid.before"
	panel_server "$uuid" 0
	local answer
	answer=$(panel_api POST /_emulator/transfers \
		"{\"server\":\"$uuid\",\"source\":\"s\",\"destination\":\"$to\",\"url\":\"$url\"}")
	like "$answer" '"source_status": ?202' "$url: the source accepts the transfer (202)"
	wait_for "transfer $uuid" 300 finished "$uuid"
}
arrived() { # arrived UUID NODE LABEL
	python3 "$TREES" manifest "$WX_TEST_TMP/$2/data/$1" > "$WX_TEST_TMP/$1.after" 2>/dev/null
	ok "$3: the server arrives byte-identical on $2" cmp -s "$WX_TEST_TMP/$1.before" "$WX_TEST_TMP/$1.after"
}

# 1. The public name, resolved by the override, with the certificate for that name.
u1=aaaaaaaa-0000-4000-8000-000000000001
start "$u1" d "https://node2.example.test/api/transfers" 300
j=$(src_status "$u1")
is "$(state_of "$j")" completed "public name -> override: the transfer completes (lighttpd, certificate for node2.example.test)"
arrived "$u1" d "public name -> override"
is "$(field "$j" '["connect_to"]["match"]')" "node2.example.test:443" "the status shows the entry's match"
is "$(field "$j" '["connect_to"]["connect"]')" "127.0.0.1:$dport" "... and its address"
is "$(field "$j" '["destination_address"]')" "127.0.0.1:$dport" "... and the address the requests went to"
is "$(callbacks "$u1" success)" 1 "... one success callback"
like "$(worker_log "$u1")" "connected to the destination at 127.0.0.1:$dport \\(system.transfers.connect_to node2.example.test:443:127.0.0.1:$dport\\)" \
	"the source's log says where it connected and why"
like "$(worker_log "$u1")" "https://node2.example.test/api/transfers: requests to node2.example.test:443 connect to 127.0.0.1:$dport \\(system.transfers.connect_to, line [0-9]+\\)" \
	"... and which entry (with its line) applied"
like "$(worker_log "$u1")" "the destination reads zstd" \
	"the OPTIONS probe went through the override too (it learnt that d reads zstd)"
unlike "$(field "$j" '["logs"]')" "127\\.0\\.0\\.1" \
	"the internal address is not in the transfer's events (server owners see those)"

# 2. An entry's own ca_file (w is signed by the other CA): Apache destination.
u2=bbbbbbbb-0000-4000-8000-000000000002
start "$u2" w "https://localhost/api/transfers" 200
j=$(src_status "$u2")
is "$(state_of "$j")" completed "localhost:443 -> override with its own ca_file: completes (Apache)"
arrived "$u2" w "entry with ca_file"
is "$(field "$j" '["connect_to"]["ca_file"]')" "$ca/other-ca.pem" "the status shows the entry's ca_file"
is "$(field "$j" '["destination_address"]')" "127.0.0.1:$wport" "... and the address used"

# 3. The override leads to a listener whose certificate does not name the URL's host.
u3=cccccccc-0000-4000-8000-000000000003
start "$u3" w "https://node9.example.test/api/transfers" 50
j=$(src_status "$u3")
is "$(state_of "$j")" failed "override to a certificate for another name: the transfer fails"
like "$(field "$j" '["error"]')" "[Cc]ertificate|SSL|TLS" "... with a TLS error in the record"
like "$(field "$j" '["error"]')" "node9.example.test" "... naming the host the certificate was checked for"
is "$(field "$j" '["connect_to"]["connect"]')" "127.0.0.1:$wport" "... the record shows the override that was tried"
ok "... nothing arrived on w" test ! -e "$WX_TEST_TMP/w/data/$u3" -a ! -e "$WX_TEST_TMP/w/data/.wingxfer-staging/$u3"
wait_for "failure callback of $u3" 120 has_failure "$u3"
is "$(callbacks "$u3" failure)" 1 "the source's failure callback reaches the panel (the entry for the panel's address is not applied to it)"

# 4. Entries that do not match the URL change nothing.
u4=dddddddd-0000-4000-8000-000000000004
start "$u4" d "https://127.0.0.1:$dport/api/transfers" 200
j=$(src_status "$u4")
is "$(state_of "$j")" completed "no entry matches 127.0.0.1:$dport: the transfer completes"
arrived "$u4" d "no matching entry"
ok "... not on w" test ! -e "$WX_TEST_TMP/w/data/$u4"
is "$(field "$j" '["connect_to"]')" "(none)" "... the status shows no override"
is "$(field "$j" '["destination_address"]')" "127.0.0.1:$dport" "... and the address it connected to"

# --check-config of every program shows the entries.
for prog in wingxfer-source wingxfer-destination wingxfer-push wingxfer-watchdog; do
	out=$(env -u WINGXFER_CONFIG "$WX_BIN/$prog" --config "$WX_TEST_TMP/s/config.yml" --check-config 2>&1)
	like "$out" "system.transfers.connect_to: \\[\\{match: \"node2.example.test:443\", connect: \"127.0.0.1:$dport\"\\}, \\{match: \"localhost:443\", connect: \"127.0.0.1:$wport\", ca_file: $ca/other-ca.pem\\}" \
		"$prog --check-config shows the overrides"
done

# 5. Invalid entries are refused at load by every program, naming file:line:key and value.
bad="$WX_TEST_TMP/bad.yml"
make_node_config "$WX_TEST_TMP/bad" bad "    connect_to:
      - match: node2.example.test:443
        connect: 10.0.0.2" > /dev/null
mv "$WX_TEST_TMP/bad/config.yml" "$bad"
line=$(grep -n 'connect: 10.0.0.2$' "$bad" | cut -d: -f1)
for prog in wingxfer-source wingxfer-destination wingxfer-push wingxfer-watchdog; do
	out=$(env -u WINGXFER_CONFIG "$WX_BIN/$prog" --config "$bad" --check-config 2>&1); rc=$?
	ok "$prog refuses a connect address without a port (exit $rc)" test "$rc" -ne 0
	like "$out" "$bad:$line: system.transfers.connect_to: connect \"10.0.0.2\" has no port" \
		"... naming file:line:key and the value"
done
sed -i 's/connect: 10.0.0.2$/connect: 10.0.0.2:8443\n        verify: false/' "$bad"
out=$(env -u WINGXFER_CONFIG "$WX_BIN/wingxfer-source" --config "$bad" --check-config 2>&1)
like "$out" "$bad:$((line + 1)): system.transfers.connect_to: unknown field \"verify\"" \
	"an unknown field in an entry is refused (no way to turn verification off per entry)"

for n in s d w; do node_stop "$n"; done
panel_stop
done_testing
