/*
 * The handlers of wingxfer-source (routes in main.c).
 */
#ifndef WX_SOURCE_H
#define WX_SOURCE_H

struct wx_request;

/* Largest accepted POST body. */
#define SOURCE_MAX_BODY (64 * 1024)

/*
 * POST /api/servers/:uuid/transfer: validates {url, token, backups?}, takes
 * the transfer lock, records the transfer "pending", starts wingxfer-push
 * detached with the lock fd and the token on a pipe, answers 202.
 */
void source_start(struct wx_request *req);

/*
 * DELETE /api/servers/:uuid/transfer: asks the live worker to stop (cancel
 * marker + SIGUSR2): 202, or 409 when no outgoing transfer runs.
 */
void source_cancel(struct wx_request *req);

/*
 * The server's data directory <system.data>/<uuid> for the request's
 * :uuid, in canonical form in uuid[37].  Answers 404 (as Wings does for an
 * unknown server) and returns NULL when the segment is not a UUID or the
 * directory does not exist.  New string.
 */
char *source_server_dir(struct wx_request *req, char uuid[37]);

#endif
