/*
 * wingxfer-destination: the receiving side of a server transfer.
 *
 *   POST   /api/transfers            transfer JWT; receives, verifies, installs
 *   DELETE /api/transfers[/:uuid]    node token; cancels an incoming transfer
 *   GET    /api/transfers/:uuid      node token; progress of an incoming transfer
 */
#include "autoconf.h"

#include "program.h"
#include "request.h"
#include "status_handler.h"
#include "util.h"

static const char help[] =
"NAME\n"
"    wingxfer-destination - receive a game server transferred from another node\n"
"\n"
"SYNOPSIS\n"
"    wingxfer-destination [--config FILE] [--listen SOCKET] [--workers N]\n"
"    wingxfer-destination --check-config | --help | --version\n"
"\n"
"DESCRIPTION\n"
"    A FastCGI program for Apache (mod_proxy_fcgi) or lighttpd (mod_fastcgi).\n"
"    It accepts the multipart upload a source node (wingxfer, FeatherWings,\n"
"    Pelican Wings or Pterodactyl Wings) sends, verifies it, extracts it into a\n"
"    private staging directory, and installs it as <system.data>/<uuid>, then\n"
"    tells the panel the transfer succeeded.\n"
"\n"
"    It serves FastCGI on fd 0 when started by spawn-fcgi, lighttpd or a\n"
"    systemd socket, or on --listen SOCKET.  Started from a shell with\n"
"    REQUEST_METHOD in the environment, it answers one request as plain CGI\n"
"    on standard output, which is the way to see why a request fails.\n"
"\n"
"ENDPOINTS\n"
"    POST /api/transfers\n"
"        Authorization: Bearer <JWT> (HS256 keyed with the node token, scope\n"
"        'transfer', sub = server UUID).  Body: multipart/form-data with the\n"
"        parts archive, checksum / checksum_archive, backup_<name>,\n"
"        checksum_backup_<name>, install_logs.  Answers 200 when the server is\n"
"        installed and the panel was told.\n"
"    DELETE /api/transfers/<uuid>, DELETE /api/transfers?server=<uuid>\n"
"        Node token.  Cancels an incoming transfer: 202, or 409 if none runs.\n"
"    GET /api/transfers/<uuid>\n"
"        Node token.  JSON progress: state, bytes, files, rate, ETA, error.\n"
"\n"
"OPTIONS\n"
"    --config FILE     the node's config.yml (after $WINGXFER_CONFIG)\n"
"    --listen SOCKET   serve FastCGI on this socket: /path or 127.0.0.1:port\n"
"    --workers N       N processes accept on the socket (default 1); a long\n"
"                      transfer then does not block status or cancel requests\n"
"    --check-config    print the effective configuration (secrets redacted)\n"
"                      and exit 0, or print the problem and exit 1\n"
"    --help, --version\n"
"\n"
"ENVIRONMENT\n"
"    WINGXFER_CONFIG   config file; wins over --config\n"
"    REQUEST_METHOD, REQUEST_URI, CONTENT_LENGTH, CONTENT_TYPE,\n"
"    HTTP_AUTHORIZATION, HTTPS   CGI variables when run by hand\n"
"\n"
"FILES\n"
"    " WX_SYSCONFDIR "/wingxfer/config.yml   default configuration\n"
"    <system.transfers.state_directory>/transfers/<uuid>.json   transfer records\n"
"    <system.data>/.wingxfer-staging/<uuid>   data being received\n"
"\n"
"EXIT STATUS\n"
"    0 when serving ended normally or a CGI request was answered below 500;\n"
"    1 on a configuration or internal error; 2 on a usage error.\n"
"\n"
"EXAMPLES\n"
"    REQUEST_METHOD=GET REQUEST_URI=/api/transfers/<uuid> \\\n"
"      HTTP_AUTHORIZATION='Bearer <node token>' wingxfer-destination\n"
"    spawn-fcgi -s /run/wingxfer/destination.sock -M 0660 -U www-data -- \\\n"
"      /usr/sbin/wingxfer-destination\n";

static void
not_yet(struct wx_request *req)
{
	wx_req_error(req, 501, "This endpoint is not implemented yet on this node.");
}

static void
get_status(struct wx_request *req)
{
	wx_handle_status(req, WX_ROLE_DESTINATION);
}

static const struct wx_route routes[] = {
	{ "POST", "/api/transfers", WX_AUTH_NONE, not_yet },
	{ "DELETE", "/api/transfers", WX_AUTH_NODE_TOKEN, not_yet },
	{ "DELETE", "/api/transfers/:uuid", WX_AUTH_NODE_TOKEN, not_yet },
	{ "GET", "/api/transfers/:uuid", WX_AUTH_NODE_TOKEN, get_status },
};

int
main(int argc, char **argv)
{
	static const struct wx_program prog = {
		.name = "wingxfer-destination",
		.help = help,
		.routes = routes,
		.nroutes = WX_ARRAY_LEN(routes),
	};
	return wx_fcgi_main(&prog, argc, argv);
}
