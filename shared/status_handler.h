/*
 * GET handler shared by both status endpoints: answers the status JSON of
 * the record of req->param in the given role, or 404.
 */
#ifndef WX_STATUS_HANDLER_H
#define WX_STATUS_HANDLER_H

#include "record.h"

struct wx_request;

void wx_handle_status(struct wx_request *req, enum wx_role role);

/*
 * The record of req->param in the given role: 0 with uuid (37 bytes) and *r
 * filled (wx_record_clear it), or -1 when req was answered (404 unknown UUID
 * or not a transfer in that role, 500 unreadable).
 */
int wx_status_record(struct wx_request *req, enum wx_role role, char *uuid, struct wx_record *r);

#endif
