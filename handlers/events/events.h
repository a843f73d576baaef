/*
 * wingxfer-events: a transfer's progress as Server-Sent Events.
 */
#ifndef WX_EVENTS_H
#define WX_EVENTS_H

#include "record.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

struct wx_request;
struct wx_state;

/*
 * Answers req with the event stream of the transfer of req->param in role
 * (404 when there is none): "progress" events while it runs, "warning" when
 * its warning changes, then one "end" event with the final state; heartbeat
 * comments in between.  Returns when the transfer ended, the client went
 * away, system.transfers.events_max_duration passed or the program is asked
 * to stop.
 */
void events_stream(struct wx_request *req, enum wx_role role);

/*
 * Where a stream is in the transfer's log (<uuid>.events, the "transfer
 * logs" lines the status endpoints show).  Zeroed before the first poll.
 */
struct log_cursor {
	bool started;      /* the first poll happened */
	dev_t dev;
	ino_t ino;         /* the file read: a trim replaces it */
	off_t off;         /* bytes of it already handled */
	char *last_line;   /* the last line handled, to find the place after a trim */
};

/*
 * Calls send with each log message ({time, message}; send takes it) added
 * since the last poll; the first poll, with the last 20 there are.  Returns
 * 0, or the first non-zero value send returned (the rest is not sent).
 */
int log_cursor_poll(struct log_cursor *c, const struct wx_state *st, const char *uuid,
    int (*send)(void *ctx, json_object *msg), void *ctx);
void log_cursor_clear(struct log_cursor *c);

#endif
