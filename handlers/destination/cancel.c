/*
 * DELETE /api/transfers/:uuid, and DELETE /api/transfers with the server in
 * the query (?server=<uuid>) or a JSON body {"server": {"uuid": "..."}}
 * (also {"server_id": "<uuid>"} or {"uuid": "..."}), node-token auth.
 *
 * A transfer is running when its lock is held.  Then the cancel marker is
 * created and the receiving process (record.pid, if it holds the lock and
 * is this program: shared/owner.h) gets
 * SIGUSR2, which breaks a blocked body read; it sees the marker within a
 * second, removes staging, reports failure and answers its POST.  202.
 * Nothing running: 409, saying whether a dead transfer awaits the watchdog.
 */
#include "autoconf.h"

#include "destination.h"
#include "log.h"
#include "owner.h"
#include "record.h"
#include "request.h"
#include "state.h"
#include "util.h"
#include "uuid.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

static const char *
json_uuid(json_object *body)
{
	json_object *server, *v;
	if (json_object_object_get_ex(body, "server", &server) &&
	    json_object_is_type(server, json_type_object) &&
	    json_object_object_get_ex(server, "uuid", &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	if (json_object_object_get_ex(body, "server_id", &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	if (json_object_object_get_ex(body, "uuid", &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

/* Finds the server UUID of the request; answers and returns -1 when none. */
static int
target(struct wx_request *req, char uuid[37])
{
	if (req->param[0] != '\0') {
		if (wx_uuid_normalize(req->param, uuid) < 0) {
			wx_req_error(req, 404, "The requested resource does not exist on this instance.");
			return -1;
		}
		return 0;
	}
	char q[128];
	if (wx_req_query(req, "server", q, sizeof q)) {
		if (wx_uuid_normalize(q, uuid) < 0) {
			wx_req_error(req, 400, "The server query parameter is not a server UUID.");
			return -1;
		}
		return 0;
	}
	json_object *body = wx_req_read_json(req, 16 * 1024);
	if (body == NULL)
		return -1;
	const char *s = json_uuid(body);
	int rc = 0;
	if (s == NULL) {
		wx_req_error(req, 400, "Say which transfer to cancel: DELETE /api/transfers/<uuid>, "
		    "?server=<uuid>, or a JSON body {\"server\": {\"uuid\": \"<uuid>\"}}.");
		rc = -1;
	} else if (wx_uuid_normalize(s, uuid) < 0) {
		wx_req_error(req, 400, "The server UUID in the request body is not a UUID.");
		rc = -1;
	}
	json_object_put(body);
	return rc;
}

void
dest_delete_transfer(struct wx_request *req)
{
	char uuid[37];
	if (target(req, uuid) < 0)
		return;
	wx_log_set_transfer(uuid);
	const struct wx_state *st = wx_req_state(req);
	if (st == NULL)
		return;
	struct wx_record rec;
	bool have = wx_record_load(st, uuid, &rec) == 0;
	enum wx_lock_result lr = wx_lock_probe(st, uuid);
	if (lr == WX_LOCK_ERROR) {
		if (have)
			wx_record_clear(&rec);
		wx_err("cannot probe the transfer lock of %s: %s", uuid, strerror(errno));
		wx_req_internal_error(req, "transfer lock");
		return;
	}
	if (lr != WX_LOCK_BUSY) {
		bool dead = have && wx_status_active(rec.status) && rec.role == WX_ROLE_DESTINATION;
		if (have)
			wx_record_clear(&rec);
		if (dead)
			wx_req_error(req, 409, "No transfer of this server is running on this node: the "
			    "process receiving it is gone. The watchdog (wingxfer-watchdog) marks it "
			    "failed and cleans up.");
		else
			wx_req_error(req, 409, "Server is not currently being transferred.");
		return;
	}
	if (have && rec.role == WX_ROLE_SOURCE && wx_status_active(rec.status)) {
		wx_record_clear(&rec);
		wx_req_error(req, 409, "This node is the source of this server's transfer, not its "
		    "destination; cancel it with DELETE /api/servers/%s/transfer.", uuid);
		return;
	}
	if (wx_cancel_request(st, uuid, NULL) < 0) {
		if (have)
			wx_record_clear(&rec);
		wx_err("cannot create the cancel marker of %s: %s", uuid, strerror(errno));
		wx_req_internal_error(req, "cancel marker");
		return;
	}
	/* Only a record of this transfer names its process; a starting one has none yet. */
	if (have && wx_status_active(rec.status)) {
		char *lock = wx_state_file(st, uuid, ".lock");
		pid_t receiver = wx_transfer_owner(lock, rec.pid, "wingxfer-destination",
		    WX_OWNER_RECORDED);
		free(lock);
		if (receiver > 0 && kill(receiver, SIGUSR2) < 0)
			wx_warn("cannot signal the receiving process %lld: %s", (long long)receiver,
			    strerror(errno));
	}
	if (have)
		wx_record_clear(&rec);
	wx_info("cancel requested for the incoming transfer of %s", uuid);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "uuid", json_object_new_string(uuid));
	json_object_object_add(j, "state", json_object_new_string("cancelling"));
	wx_req_json(req, 202, j);
}
