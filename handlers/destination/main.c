/*
 * wingxfer-destination: the receiving side of a server transfer.
 *
 *   POST   /api/transfers            transfer JWT; receives, verifies, installs
 *   POST   /api/transfers/preflight  transfer JWT; would it be accepted (spends nothing)
 *   DELETE /api/transfers[/:uuid]    node token; cancels an incoming transfer
 *   GET    /api/transfers/:uuid      node token; progress of an incoming transfer
 *   DELETE /api/servers/:uuid        node token; the same cancel, on Wings' route
 *                                    (FeatherPanel), routed here only standalone
 *   POST   /api/transfers/uploads    transfer JWT; opens a chunked upload (upload.h)
 *   PATCH, GET, HEAD, DELETE /api/transfers/uploads/:id   its secret; append,
 *                                    state, cancel (docs/protocol.md)
 */
#include "autoconf.h"

#include "destination.h"
#include "freed_fill.h"
#include "upload.h"
#include "program.h"
#include "request.h"
#include "status_handler.h"
#include "util.h"

#include <string.h>

static const char help[] =
"NAME\n"
"    wingxfer-destination - receive a game server transferred from another node\n"
"\n"
"SYNOPSIS\n"
"    wingxfer-destination [--config FILE] [--listen SOCKET] [--workers N]\n"
"    wingxfer-destination --routes\n"
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
"        Authorization: Bearer <JWT>: HS256 keyed with the node token, integer\n"
"        exp, sub = server UUID, scope containing 'transfer' (tokens without a\n"
"        scope only with system.transfers.allow_unscoped_tokens).  Each token\n"
"        starts one transfer.  Body: multipart/form-data with the parts\n"
"        archive (tar, gzip/zstd/xz/bzip2/lz4 or plain), checksum or\n"
"        checksum_archive (hex SHA-256 of the archive part), backup_<name>,\n"
"        checksum_backup_<name>, install_logs; other parts are ignored.\n"
"        The archive is extracted into <system.data>/.wingxfer-staging/<uuid>\n"
"        (nothing outside it, symlinks, empty directories, modes and mtimes\n"
"        kept, setuid/setgid cleared, devices/FIFOs/sockets skipped, owner\n"
"        system.user when run as root), checked, handed to\n"
"        hooks.create_environment, renamed to <system.data>/<uuid>; the panel\n"
"        is told, then the answer is 200 with a JSON summary.\n"
"        Refused before the body is read:\n"
"          401  no or malformed Authorization, bad token (signature, alg,\n"
"               exp, nbf, sub, valid for longer than\n"
"               system.transfers.max_token_lifetime); the JSON error says which\n"
"          403  the token's scope lacks 'transfer'\n"
"          415  not multipart/form-data (400: bad boundary)\n"
"          409  a transfer of this server is running, or died and awaits\n"
"               the watchdog; <system.data>/<uuid> holds data; the token\n"
"               was used before\n"
"          507  free space below system.transfers.disk_reserve, and\n"
"          502  the panel refused or did not answer the installer step\n"
"               (these two after the token was spent: the panel is told)\n"
"        Failed while receiving (staging removed, record failed, the panel\n"
"        told of the failure):\n"
"          400  the upload: malformed multipart, cut off, no archive part\n"
"          409  cancelled on this node (DELETE)\n"
"          413  more than the server's disk limit (build.disk_space)\n"
"          422  the archive: unreadable, damaged, an unsafe entry (absolute,\n"
"               '..', through a symlink, hardlink outside), checksum\n"
"               mismatch when system.transfers.perform_checksum_checks is on\n"
"          500  this node (I/O, the create-environment hook)\n"
"          503  stopped on this node by the watchdog (stalled, or past\n"
"               system.transfers.max_duration)\n"
"          507  not enough disk space above system.transfers.disk_reserve\n"
"    POST /api/transfers/preflight?size=<bytes>\n"
"        Authorization: the transfer token, as for the upload.  Asked by a\n"
"        wingxfer source before it stops the game server: would the upload\n"
"        be admitted?  Reads no body, takes no lock, writes nothing, and does\n"
"        not spend the token.  Same refusals as the upload before its body:\n"
"        401/403 the token, 409 a transfer of this server is running or\n"
"        awaits the watchdog, <system.data>/<uuid> holds data, or the token\n"
"        was used; 507 when the free space of system.data is less than\n"
"        size (the server's size in bytes, 0 if absent) plus\n"
"        system.transfers.disk_reserve (the error names the numbers); 400 a\n"
"        malformed size.  200: {\"server\", \"size\", \"free\",\n"
"        \"disk_reserve\", \"token_expires\"}.\n"
"    DELETE /api/transfers/<uuid>, DELETE /api/transfers?server=<uuid>,\n"
"    DELETE /api/transfers with {\"server\": {\"uuid\": \"<uuid>\"}}\n"
"        Node token.  Cancels an incoming transfer: 202 (the receiving\n"
"        process stops within a second), or 409 if none runs.\n"
"    DELETE /api/servers/<uuid>\n"
"        Node token.  The same cancel, with the same answers, on the route\n"
"        FeatherPanel uses to cancel a transfer on its destination (in Wings\n"
"        it deletes the server).  The standalone templates (wingxfer-webconfig\n"
"        apache, lighttpd) route it here; beside-wings leaves it to Wings.\n"
"    GET /api/transfers/<uuid>\n"
"        Node token.  JSON progress: state, phase, bytes received and\n"
"        extracted, files, rate, ETA (when the length is known), times,\n"
"        error, warning, the last log lines.\n"
"    POST /api/transfers/uploads\n"
"        The chunked, resumable upload of docs/protocol.md (between wingxfer\n"
"        nodes): the body of POST /api/transfers in PATCH requests of at most\n"
"        96 MiB that survive cut links and restarts.  Authorization: the\n"
"        transfer token, checked and spent here, with the same refusals as\n"
"        POST /api/transfers before its body (401/403, 409, 507, 502);\n"
"        X-Wingxfer-Body-Type: the multipart/form-data content type of the\n"
"        body; X-Wingxfer-Size: the server's size (optional, 507 when it does\n"
"        not fit); X-Wingxfer-Checksum: body (optional: the body has no\n"
"        checksum parts; its SHA-256, checked against Repr-Digest, stands\n"
"        for the archive checksum); no body.  201 with Location,\n"
"        Upload-Offset: 0 and\n"
"        {\"upload\", \"secret\", \"offset\", \"chunk_max\", \"resume_window\"}:\n"
"        the secret (64 hex digits, stored here only as its SHA-256) is the\n"
"        Bearer credential of the requests below.  A detached assembler\n"
"        (wingxfer-destination --assemble, holding the transfer's lock)\n"
"        extracts the body as chunks arrive, exactly as for the single POST.\n"
"    PATCH /api/transfers/uploads/<id>\n"
"        The upload's secret.  Upload-Offset (the acknowledged offset),\n"
"        Upload-Complete ?0 or ?1 (the last chunk, with Repr-Digest:\n"
"        sha-256=:<base64>: of the whole body), Content-Length (at most\n"
"        X-Wingxfer-Chunk-Max), and X-Wingxfer-Prefix-Digest (the body's\n"
"        SHA-256 from byte 0 to the chunk's end) or Content-Digest (the\n"
"        chunk's own), as sha-256=:<base64>:.  The\n"
"        chunk is on disk (fsync) before 204 (Upload-Offset: new offset) or\n"
"        202 (last chunk; the outcome comes from GET).  Errors, JSON with\n"
"        \"error\" and \"code\", nothing kept: 400 bad_request (a header) or\n"
"        digest_mismatch; 401 bad_secret; 404 unknown_upload; 409\n"
"        offset_mismatch (with Upload-Offset and \"offset\"), completed, or\n"
"        superseded (a newer PATCH of the upload started); 410 cancelled or\n"
"        failed (\"reason\"); 411 length_required; 413 too_large (before the\n"
"        body is read); 422 repr_digest_mismatch (the upload fails); 503 busy\n"
"        (the previous chunk is still being extracted after 50 s; Retry-After).\n"
"    GET, HEAD /api/transfers/uploads/<id>\n"
"        The upload's secret.  GET: 200 {\"upload\", \"server\", \"state\"\n"
"        (receiving, finishing, completed, failed, cancelled), \"offset\",\n"
"        \"prefix_sha256\" (of the acknowledged bytes), \"complete\",\n"
"        \"chunk_max\", \"status\", \"error\", \"result\" (the single POST's 200\n"
"        JSON)}.  HEAD: 204 with Upload-Offset, Upload-Complete and\n"
"        X-Wingxfer-Upload-State.  When the assembler died, a request of the\n"
"        upload starts a new one and the offset goes back to 0.\n"
"    DELETE /api/transfers/uploads/<id>\n"
"        The upload's secret.  Cancels it like DELETE /api/transfers/<uuid>\n"
"        (staging removed, record cancelled, the panel told once): 204 once\n"
"        the upload is final (at most 30 s), 410 when it already was.\n"
"    OPTIONS /api/transfers\n"
"        No authentication.  204 with Allow, X-Wingxfer-Capabilities:\n"
"        zstd, gzip, preflight, chunked, presync, prefix-digest,\n"
"        body-checksum and X-Wingxfer-Chunk-Max: 100663296: a wingxfer\n"
"        source then sends archive.tar.zst (Go Wings\n"
"        answers OPTIONS without that header and is sent gzip), asks\n"
"        POST /api/transfers/preflight before stopping the server, sends\n"
"        the body in chunks of at most that many bytes, and may send the\n"
"        server as pre-sync rounds made while it runs instead of an archive\n"
"        (docs/presync.md): each round is applied to the staging directory\n"
"        and verified against the source's manifest; only a body that ends\n"
"        with its final round is installed.\n"
"\n"
"OPTIONS\n"
"    --config FILE     the node's config.yml (after $WINGXFER_CONFIG)\n"
"    --listen SOCKET   serve FastCGI on this socket: /path or 127.0.0.1:port\n"
"    --workers N       N processes accept on the socket (default 1); a long\n"
"                      transfer then does not block status or cancel requests\n"
"    --check-config    print the effective configuration (secrets redacted)\n"
"                      and exit 0, or print the problem and exit 1\n"
"    --routes          print the routes this program serves, one \"METHOD\n"
"                      PATTERN\" per line (:uuid is a server UUID, :id an\n"
"                      upload id), and exit 0\n"
"    --help, --version\n"
"    --assemble ID --lock-fd N [--log-fd M]\n"
"                      internal: the assembler of chunked upload ID, started\n"
"                      by this program with the transfer's lock on fd N and\n"
"                      its own standard error on fd M (where it logs)\n"
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
"    <system.transfers.state_directory>/uploads/<id>.json   chunked uploads\n"
"                                             (0600; the secret's SHA-256 only)\n"
"    <system.transfers.state_directory>/uploads/<id>.spool/   their chunks\n"
"                                             not yet extracted\n"
"    <system.transfers.state_directory>/tokens/<sha256>   transfer tokens used\n"
"                                             (kept until they expire)\n"
"    <system.transfers.state_directory>/bandwidth-download   the node's\n"
"                                             download_limit bucket\n"
"    <system.backup_directory>/<uuid>/<name>   backups received with a server\n"
"    <system.log_directory>/install/<uuid>.log   its install log\n"
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
get_status(struct wx_request *req)
{
	wx_handle_status(req, WX_ROLE_DESTINATION);
}

static const struct wx_route routes[] = {
	{ "POST", "/api/transfers", WX_AUTH_NONE, dest_post_transfer },
	{ "POST", "/api/transfers/preflight", WX_AUTH_NONE, dest_preflight },
	{ "DELETE", "/api/transfers", WX_AUTH_NODE_TOKEN, dest_delete_transfer },
	{ "DELETE", "/api/transfers/:uuid", WX_AUTH_NODE_TOKEN, dest_delete_transfer },
	{ "GET", "/api/transfers/:uuid", WX_AUTH_NODE_TOKEN, get_status },
	{ "DELETE", "/api/servers/:uuid", WX_AUTH_NODE_TOKEN, dest_delete_transfer },
	{ "POST", "/api/transfers/uploads", WX_AUTH_NONE, dest_upload_create },
	{ "PATCH", "/api/transfers/uploads/:id", WX_AUTH_NONE, dest_upload_patch },
	{ "GET", "/api/transfers/uploads/:id", WX_AUTH_NONE, dest_upload_get },
	{ "HEAD", "/api/transfers/uploads/:id", WX_AUTH_NONE, dest_upload_get },
	{ "DELETE", "/api/transfers/uploads/:id", WX_AUTH_NONE, dest_upload_delete },
};

int
main(int argc, char **argv)
{
	static const struct wx_program prog = {
		.name = "wingxfer-destination",
		.help = help,
		.routes = routes,
		.nroutes = WX_ARRAY_LEN(routes),
		/* A wingxfer source sends zstd only to a destination that says so,
		 * and asks POST /api/transfers/preflight only where it is named. */
		.capabilities = "zstd, gzip, preflight, chunked, presync, prefix-digest, body-checksum",
		.chunk_max = UP_CHUNK_MAX,
	};
	/* For the process's life: the extractor it forks inherits no freed copy
	 * of the node token (read again every 10 s), of other transfers' tokens
	 * or of the panel's answers about other servers. */
	wx_fill_freed(true);
	/* The chunked upload's assembler, started by this program itself. */
	if (argc > 1 && strcmp(argv[1], "--assemble") == 0)
		return dest_assemble_main(argc, argv);
	return wx_fcgi_main(&prog, argc, argv);
}
