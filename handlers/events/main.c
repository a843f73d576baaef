/*
 * wingxfer-events: live progress of a transfer as Server-Sent Events, in its
 * own FastCGI program (and process pool) so that open streams can only
 * occupy its workers, never those of wingxfer-source or
 * wingxfer-destination that transfers need.
 *
 *   GET /api/servers/:uuid/transfer/events   node token; an outgoing transfer
 *   GET /api/transfers/:uuid/events          node token; an incoming transfer
 */
#include "autoconf.h"

#include "events.h"
#include "program.h"
#include "request.h"
#include "util.h"

static const char help[] =
"NAME\n"
"    wingxfer-events - watch a server transfer live (Server-Sent Events)\n"
"\n"
"SYNOPSIS\n"
"    wingxfer-events [--config FILE] [--listen SOCKET] [--workers N]\n"
"    wingxfer-events --routes\n"
"    wingxfer-events --check-config | --help | --version\n"
"\n"
"DESCRIPTION\n"
"    A FastCGI program for Apache (mod_proxy_fcgi) or lighttpd (mod_fastcgi)\n"
"    that streams the progress of one transfer as Server-Sent Events\n"
"    (Content-Type: text/event-stream), from the transfer record the\n"
"    transferring process keeps in the state directory.  It only reads.\n"
"\n"
"    Each open stream holds one of its worker processes until it ends, so it\n"
"    runs as its own program on its own socket (<rundir>/events.sock): open\n"
"    streams can occupy only its workers, never those of wingxfer-source and\n"
"    wingxfer-destination that transfers need.  --workers N is the number of\n"
"    streams served at once; further ones wait for a free worker.\n"
"\n"
"    It serves FastCGI on fd 0 when started by spawn-fcgi, lighttpd or a\n"
"    systemd socket, or on --listen SOCKET.  Started from a shell with\n"
"    REQUEST_METHOD in the environment, it streams one request as plain CGI.\n"
"\n"
"ENDPOINTS (all with Authorization: Bearer <node token>)\n"
"    GET /api/servers/<uuid>/transfer/events\n"
"        The outgoing transfer of the server (this node is the source).\n"
"    GET /api/transfers/<uuid>/events\n"
"        The incoming transfer of the server (this node is the destination).\n"
"    401 a missing or wrong node token; 404 no transfer of the server in that\n"
"    direction is known here (both with a JSON error).  Otherwise 200 and a\n"
"    stream of events, each \"event: NAME\" and \"data: JSON\" (one line):\n"
"      progress  while it runs, when something changed (read every 0.5 s):\n"
"                the JSON of GET /api/transfers/<uuid> (or\n"
"                /api/servers/<uuid>/transfer) without logs and updated_at:\n"
"                uuid, role, state, phase, active, owner_alive, bytes_total,\n"
"                bytes_read, bytes_sent or bytes_extracted, files,\n"
"                rate_bytes_per_second, eta_seconds, percent, started_at,\n"
"                finished_at, error, warning\n"
"      warning   {uuid, warning} when the transfer's warning is set or changes\n"
"      log       {time, message}: a line of the transfer's log, in Wings'\n"
"                words (what the panel shows); a new stream first gets the\n"
"                last 20 there are, as GET .../transfer answers in logs\n"
"      end       the same JSON as progress with the final state: completed,\n"
"                failed or cancelled, and its error; then the stream ends.\n"
"                A transfer already over gets only this event.  State\n"
"                \"unknown\" with an error when the record was removed or\n"
"                replaced while watched.\n"
"    Lines starting with \":\" are comments: one when the stream opens, a\n"
"    heartbeat after system.transfers.events_heartbeat without an event, so\n"
"    proxies keep the connection open.  A stream still open after\n"
"    system.transfers.events_max_duration, or when the program is stopped,\n"
"    ends with a comment saying so (reconnect to go on).  A client that went\n"
"    away is noticed at the next write (at most a heartbeat later).  A\n"
"    browser EventSource reconnects after any end: close it on \"end\".\n"
"\n"
"OPTIONS\n"
"    --config FILE     the node's config.yml (after $WINGXFER_CONFIG)\n"
"    --listen SOCKET   serve FastCGI on this socket: /path or 127.0.0.1:port\n"
"    --workers N       N processes accept on the socket (default 1): at most\n"
"                      N streams at once\n"
"    --check-config    print the effective configuration (secrets redacted)\n"
"                      and exit 0, or print the problem and exit 1\n"
"    --routes          print the routes this program serves, one \"METHOD\n"
"                      PATTERN\" per line (:uuid is a server UUID), and exit 0\n"
"    --help, --version\n"
"\n"
"ENVIRONMENT\n"
"    WINGXFER_CONFIG   config file; wins over --config\n"
"\n"
"FILES\n"
"    " WX_SYSCONFDIR "/wingxfer/config.yml   default configuration\n"
"    <system.transfers.state_directory>/transfers/<uuid>.json   transfer records\n"
"\n"
"EXIT STATUS\n"
"    0 when serving ended normally or a CGI request was answered below 500;\n"
"    1 on a configuration or internal error; 2 on a usage error.\n"
"\n"
"EXAMPLES\n"
"    curl -N -H 'Authorization: Bearer <node token>' \\\n"
"      https://node:8080/api/transfers/<uuid>/events\n";

static void
source_events(struct wx_request *req)
{
	events_stream(req, WX_ROLE_SOURCE);
}

static void
destination_events(struct wx_request *req)
{
	events_stream(req, WX_ROLE_DESTINATION);
}

static const struct wx_route routes[] = {
	{ "GET", "/api/servers/:uuid/transfer/events", WX_AUTH_NODE_TOKEN, source_events },
	{ "GET", "/api/transfers/:uuid/events", WX_AUTH_NODE_TOKEN, destination_events },
};

int
main(int argc, char **argv)
{
	static const struct wx_program prog = {
		.name = "wingxfer-events",
		.help = help,
		.routes = routes,
		.nroutes = WX_ARRAY_LEN(routes),
	};
	return wx_fcgi_main(&prog, argc, argv);
}
