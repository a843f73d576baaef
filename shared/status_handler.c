#include "autoconf.h"

#include "status_handler.h"
#include "log.h"
#include "record.h"
#include "request.h"
#include "state.h"
#include "status.h"
#include "uuid.h"

#include <errno.h>

int
wx_status_record(struct wx_request *req, enum wx_role role, char *uuid, struct wx_record *r)
{
	if (wx_uuid_normalize(req->param, uuid) < 0) {
		wx_req_error(req, 404, "The requested resource does not exist on this instance.");
		return -1;
	}
	wx_log_set_transfer(uuid);
	const struct wx_state *st = wx_req_state(req);
	if (st == NULL)
		return -1;
	if (wx_record_load(st, uuid, r) < 0) {
		if (errno == ENOENT) {
			wx_req_error(req, 404, "No %s transfer of this server is known on this node.",
			    role == WX_ROLE_SOURCE ? "outgoing" : "incoming");
			return -1;
		}
		wx_req_internal_error(req, "transfer record unreadable");
		return -1;
	}
	if (r->role != role) {
		wx_req_error(req, 404, "No %s transfer of this server is known on this node (it was "
		    "the %s of its last transfer).", role == WX_ROLE_SOURCE ? "outgoing" : "incoming",
		    wx_role_name(r->role));
		wx_record_clear(r);
		return -1;
	}
	return 0;
}

void
wx_handle_status(struct wx_request *req, enum wx_role role)
{
	char uuid[37];
	struct wx_record r;
	if (wx_status_record(req, role, uuid, &r) < 0)
		return;
	const struct wx_state *st = wx_req_state(req);
	bool live = wx_lock_probe(st, uuid) == WX_LOCK_BUSY;
	wx_req_json(req, 200, wx_status_json(st, &r, live));
	wx_record_clear(&r);
}
