# A "Cloudflare free plan" in front of a test node (sourced after tap.sh and
# webstack.sh, with webstack_ca run): a private nginx (Debian nginx-light) as
# a TLS reverse proxy limited like Cloudflare's free plan:
#
#   client_max_body_size 100m   a request body over 100 MB is refused with 413
#   proxy_request_buffering on  the whole body is read before the origin sees it
#   proxy_read_timeout 100s     an origin that does not answer in 100 s: 504
#                               (Cloudflare says 524; nginx's own code is kept)
#   proxy_http_version 1.1
#
# It listens on 127.0.0.1 on a free port with its own certificate (signed by
# the test CA, so a node's system.transfers.ca_file trusts it) and checks the
# origin's certificate against the test CA.  Everything it writes (pid file,
# logs, body buffers) is under $WX_TEST_TMP/cfproxy-NAME: no global nginx
# configuration, log or service is touched (-p, -c and -e on our own files).
#
#   cfproxy_start NAME ORIGIN-URL [EXTRA-SERVER-DIRECTIVES]
#                          starts proxy NAME in front of ORIGIN-URL (e.g.
#                          ${NODE_URL[d]}); sets CFPROXY_URL[NAME] (https://
#                          127.0.0.1:PORT) and CFPROXY_PID[NAME]
#   cfproxy_stop NAME      stops it (by pid)
#   cfproxy_log NAME       its access log: one JSON object a request with
#                          method, uri, status (what the client got),
#                          upstream_status ("" when nginx answered itself),
#                          request_length (bytes read from the client:
#                          request line, headers and body, also of a request
#                          cut short), content_length, bytes_sent, request_time,
#                          content_digest and prefix_digest (the request's
#                          Content-Digest and X-Wingxfer-Prefix-Digest, "" when absent)
#   cfproxy_count NAME METHOD URI-REGEX STATUS
#                          how many METHOD requests whose URI matches
#                          URI-REGEX got STATUS (STATUS "" = any)
#   cfproxy_body_bytes NAME METHOD URI-REGEX
#                          the sum of request_length over those requests: the
#                          bytes the proxy read from the client for them

declare -A CFPROXY_URL CFPROXY_PID CFPROXY_PORT
CFPROXY_NGINX=${CFPROXY_NGINX:-/usr/sbin/nginx}

# cfproxy_cert DIR: DIR/proxy.pem and DIR/proxy.key, a certificate for
# 127.0.0.1 of its own (not the nodes'), signed by the test CA.
cfproxy_cert() {
	local d=$1 ca="$WX_TEST_TMP/ca"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$d/proxy.key" -out "$d/proxy.csr" >/dev/null 2>&1 || return 1
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > "$d/proxy.cnf"
	openssl x509 -req -in "$d/proxy.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial \
		-days 2 -extfile "$d/proxy.cnf" -out "$d/proxy.pem" >/dev/null 2>&1 || return 1
	chmod 600 "$d/proxy.key"
}

_cfproxy_up() { curl -s -o /dev/null --max-time 2 --cacert "$WX_CA" "${CFPROXY_URL[$1]}/"; }

cfproxy_start() {
	local name=$1 origin=$2 extra=${3:-} d="$WX_TEST_TMP/cfproxy-$1" port user=""
	[ -x "$CFPROXY_NGINX" ] || { diag "cfproxy: $CFPROXY_NGINX missing (apt-get install nginx-light)"; return 1; }
	mkdir -p "$d/body" "$d/proxy" "$d/fastcgi" "$d/uwsgi" "$d/scgi" "$d/logs"
	cfproxy_cert "$d" || { diag "cfproxy: cannot make its certificate"; return 1; }
	port=$(free_port)
	CFPROXY_PORT[$name]=$port
	CFPROXY_URL[$name]="https://127.0.0.1:$port"
	# As root, the workers stay root: they read the key and write the body
	# buffers in this private directory (nobody could not).
	[ "$(id -u)" = 0 ] && user="user root;"
	cat > "$d/nginx.conf" <<NGINX
# cfproxy $name: Cloudflare's free plan in front of $origin (tests/lib/cfproxy.sh)
$user
daemon off;
master_process on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 512; }
http {
	log_format cf escape=json '{"method":"\$request_method","uri":"\$request_uri",'
		'"status":\$status,"upstream_status":"\$upstream_status",'
		'"request_length":\$request_length,"content_length":"\$content_length",'
		'"bytes_sent":\$bytes_sent,"request_time":\$request_time,'
		'"content_digest":"\$http_content_digest",'
		'"prefix_digest":"\$http_x_wingxfer_prefix_digest"}';
	access_log $d/access.log cf;
	client_body_temp_path $d/body;
	proxy_temp_path $d/proxy;
	fastcgi_temp_path $d/fastcgi;
	uwsgi_temp_path $d/uwsgi;
	scgi_temp_path $d/scgi;
	server {
		listen 127.0.0.1:$port ssl;
		server_name 127.0.0.1 localhost;
		ssl_certificate $d/proxy.pem;
		ssl_certificate_key $d/proxy.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		# The free plan's limits.
		client_max_body_size 100m;
		client_body_buffer_size 1m;
		proxy_request_buffering on;
		proxy_read_timeout 100s;
		proxy_send_timeout 100s;
		proxy_connect_timeout 15s;
		proxy_http_version 1.1;
		$extra
		location / {
			proxy_pass $origin;
			proxy_set_header Host \$host;
			proxy_set_header Connection "";
			proxy_set_header X-Forwarded-For \$remote_addr;
			proxy_set_header X-Forwarded-Proto https;
			proxy_ssl_server_name off;
			# nginx checks DNS names only: the node certificate's DNS:localhost.
			proxy_ssl_name localhost;
			proxy_ssl_verify on;
			proxy_ssl_trusted_certificate $WX_CA;
		}
	}
}
NGINX
	# -e: the error log from the first line on (before the configuration is
	# read nginx would open its compiled-in /var/log/nginx/error.log).
	"$CFPROXY_NGINX" -t -q -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" >"$d/check.log" 2>&1 ||
		{ diag "cfproxy: nginx -t refuses $d/nginx.conf:"; sed 's/^/# /' "$d/check.log"; return 1; }
	"$CFPROXY_NGINX" -p "$d/" -e "$d/error.log" -c "$d/nginx.conf" >>"$d/stdout.log" 2>&1 &
	CFPROXY_PID[$name]=$!
	track_pid "${CFPROXY_PID[$name]}"
	wait_for "cfproxy $name on ${CFPROXY_URL[$name]}" 20 _cfproxy_up "$name" ||
		{ sed 's/^/# /' "$d/error.log" "$d/stdout.log" 2>/dev/null; return 1; }
}

cfproxy_stop() {
	[ -n "${CFPROXY_PID[$1]:-}" ] && stop_pid "${CFPROXY_PID[$1]}"
	CFPROXY_PID[$1]=""
}

cfproxy_log() { cat "$WX_TEST_TMP/cfproxy-$1/access.log" 2>/dev/null; }

cfproxy_count() {
	cfproxy_log "$1" | python3 -c '
import json, re, sys
m, rx, st = sys.argv[1], re.compile(sys.argv[2]), sys.argv[3]
print(sum(1 for l in sys.stdin for r in [json.loads(l)]
          if r["method"] == m and rx.search(r["uri"]) and (st == "" or str(r["status"]) == st)))' "$2" "$3" "$4"
}

cfproxy_body_bytes() {
	cfproxy_log "$1" | python3 -c '
import json, re, sys
m, rx = sys.argv[1], re.compile(sys.argv[2])
print(sum(r["request_length"] for l in sys.stdin for r in [json.loads(l)]
          if r["method"] == m and rx.search(r["uri"])))' "$2" "$3"
}
