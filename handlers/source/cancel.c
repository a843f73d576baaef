/*
 * DELETE /api/servers/:uuid/transfer.
 *
 * The handler is not the owner of the transfer: it never writes the record
 * or the events.  It leaves the cancel marker for the worker (which polls it
 * at least once a second) and wakes it with SIGUSR2.
 */
#include "autoconf.h"

#include "source.h"
#include "log.h"
#include "owner.h"
#include "record.h"
#include "request.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOT_TRANSFERRING "Server is not currently being transferred."

void
source_cancel(struct wx_request *req)
{
	char uuid[37];
	char *server_dir = source_server_dir(req, uuid);
	if (server_dir == NULL)
		return;
	free(server_dir);
	const struct wx_state *st = wx_req_state(req);
	if (st == NULL)
		return;
	enum wx_lock_result live = wx_lock_probe(st, uuid);
	if (live == WX_LOCK_ERROR) {
		wx_err("cannot probe the transfer lock: %s", strerror(errno));
		wx_req_internal_error(req, "transfer lock");
		return;
	}
	struct wx_record r;
	bool have = wx_record_load(st, uuid, &r) == 0;
	if (live != WX_LOCK_BUSY || !have || r.role != WX_ROLE_SOURCE ||
	    !wx_status_active(r.status)) {
		if (have && r.role == WX_ROLE_DESTINATION && live == WX_LOCK_BUSY)
			wx_req_error(req, 409, NOT_TRANSFERRING " It is being received by this node; "
			    "DELETE /api/transfers/%s cancels that.", uuid);
		else
			wx_req_error(req, 409, NOT_TRANSFERRING);
		if (have)
			wx_record_clear(&r);
		return;
	}
	if (wx_cancel_request(st, uuid, NULL) < 0) {
		wx_err("cannot write the cancel request: %s", strerror(errno));
		wx_req_internal_error(req, "cancel request");
		wx_record_clear(&r);
		return;
	}
	/* The worker records its pid once it handles SIGUSR2; until then it sees the marker. */
	char *lock = wx_state_file(st, uuid, ".lock");
	pid_t worker = wx_transfer_owner(lock, r.pid, "wingxfer-push", WX_OWNER_RECORDED);
	free(lock);
	if (worker > 0 && kill(worker, SIGUSR2) < 0)
		wx_warn("cannot signal worker %lld: %s", (long long)worker, strerror(errno));
	wx_info("cancel requested (worker pid %lld)", (long long)r.pid);
	wx_record_clear(&r);
	wx_req_send(req, 202, NULL, "", 0);
}
