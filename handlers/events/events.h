/*
 * wingxfer-events: a transfer's progress as Server-Sent Events.
 */
#ifndef WX_EVENTS_H
#define WX_EVENTS_H

#include "record.h"

struct wx_request;

/*
 * Answers req with the event stream of the transfer of req->param in role
 * (404 when there is none): "progress" events while it runs, "warning" when
 * its warning changes, then one "end" event with the final state; heartbeat
 * comments in between.  Returns when the transfer ended, the client went
 * away, system.transfers.events_max_duration passed or the program is asked
 * to stop.
 */
void events_stream(struct wx_request *req, enum wx_role role);

#endif
