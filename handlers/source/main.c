/*
 * wingxfer-source: the sending side of a server transfer.
 *
 *   POST   /api/servers/:uuid/transfer   node token; starts wingxfer-push, 202
 *   DELETE /api/servers/:uuid/transfer   node token; cancels, 202 / 409
 *   GET    /api/servers/:uuid/transfer   node token; progress
 */
#include "autoconf.h"

#include "program.h"
#include "source.h"
#include "request.h"
#include "status_handler.h"
#include "util.h"

static const char help[] =
"NAME\n"
"    wingxfer-source - send a game server to another node when the panel asks\n"
"\n"
"SYNOPSIS\n"
"    wingxfer-source [--config FILE] [--listen SOCKET] [--workers N]\n"
"    wingxfer-source --routes\n"
"    wingxfer-source --check-config | --help | --version\n"
"\n"
"DESCRIPTION\n"
"    A FastCGI program for Apache (mod_proxy_fcgi) or lighttpd (mod_fastcgi).\n"
"    The panel (FeatherPanel, Pelican, Pterodactyl) starts a transfer with\n"
"    POST /api/servers/<uuid>/transfer; this program checks the request,\n"
"    records the transfer, starts wingxfer-push detached and answers 202 at\n"
"    once.  wingxfer-push stops the server, archives it and streams it to the\n"
"    destination node.\n"
"\n"
"    It serves FastCGI on fd 0 when started by spawn-fcgi, lighttpd or a\n"
"    systemd socket, or on --listen SOCKET.  Started from a shell with\n"
"    REQUEST_METHOD in the environment, it answers one request as plain CGI.\n"
"\n"
"ENDPOINTS (all with Authorization: Bearer <node token>)\n"
"    POST /api/servers/<uuid>/transfer\n"
"        JSON {\"url\": \"https://dest:8080/api/transfers\", \"token\": \"Bearer <jwt>\",\n"
"        \"backups\": [\"<backup uuid>\", ...]} (other keys, e.g. server_id, are\n"
"        ignored).  202 once the worker runs; 404 no <system.data>/<uuid>;\n"
"        400 body not a JSON object or over 64 KiB; 422 url not an absolute\n"
"        http(s) URL, token not \"Bearer ...\", backups not a list of UUIDs;\n"
"        409 a transfer of the server runs (or died and awaits the watchdog);\n"
"        500 wingxfer-push could not be started (it must sit beside this program).\n"
"    DELETE /api/servers/<uuid>/transfer\n"
"        Cancels: 202 (the worker stops within a second and tells the panel\n"
"        the transfer failed), or 409 when no outgoing transfer runs.\n"
"    GET /api/servers/<uuid>/transfer\n"
"        JSON progress: state, phase, bytes, files, rate, ETA, error, logs.\n"
"\n"
"OPTIONS\n"
"    --config FILE     the node's config.yml (after $WINGXFER_CONFIG)\n"
"    --listen SOCKET   serve FastCGI on this socket: /path or 127.0.0.1:port\n"
"    --workers N       N processes accept on the socket (default 1); a long\n"
"                      transfer then does not block status or cancel requests\n"
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
"    <system.transfers.state_directory>/transfers/<uuid>.log    the worker's log\n"
"\n"
"EXIT STATUS\n"
"    0 when serving ended normally or a CGI request was answered below 500;\n"
"    1 on a configuration or internal error; 2 on a usage error.\n"
"\n"
"EXAMPLES\n"
"    REQUEST_METHOD=GET REQUEST_URI=/api/servers/<uuid>/transfer \\\n"
"      HTTP_AUTHORIZATION='Bearer <node token>' wingxfer-source\n";

static void
get_status(struct wx_request *req)
{
	wx_handle_status(req, WX_ROLE_SOURCE);
}

static const struct wx_route routes[] = {
	{ "POST", "/api/servers/:uuid/transfer", WX_AUTH_NODE_TOKEN, source_start },
	{ "DELETE", "/api/servers/:uuid/transfer", WX_AUTH_NODE_TOKEN, source_cancel },
	{ "GET", "/api/servers/:uuid/transfer", WX_AUTH_NODE_TOKEN, get_status },
};

int
main(int argc, char **argv)
{
	static const struct wx_program prog = {
		.name = "wingxfer-source",
		.help = help,
		.routes = routes,
		.nroutes = WX_ARRAY_LEN(routes),
	};
	return wx_fcgi_main(&prog, argc, argv);
}
