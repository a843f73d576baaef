/*
 * GET handler shared by both status endpoints: answers the status JSON of
 * the record of req->param in the given role, or 404.
 */
#ifndef WX_STATUS_HANDLER_H
#define WX_STATUS_HANDLER_H

#include "record.h"

struct wx_request;

void wx_handle_status(struct wx_request *req, enum wx_role role);

#endif
