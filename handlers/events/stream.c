#include "autoconf.h"

#include "events.h"
#include "config.h"
#include "json_text.h"
#include "log.h"
#include "program.h"
#include "record.h"
#include "request.h"
#include "state.h"
#include "status.h"
#include "status_handler.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often the record is read: the owner saves it about once a second. */
#define POLL_MS 500

struct stream {
	struct wx_request *req;
	int64_t last_write_ms;
	char *last_progress;    /* data of the last progress event sent */
	char *last_warning;     /* the warning last sent ("" none) */
	struct log_cursor logs;
};

/* Sends "event: NAME\ndata: JSON\n\n" (takes j); 0, or -1 when the client is gone. */
static int
send_event(struct stream *s, const char *name, json_object *j)
{
	size_t len;
	char *text = wx_json_text(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	json_object_put(j);
	size_t size = strlen(name) + len + 32;
	char *buf = xmalloc(size);
	int n = snprintf(buf, size, "event: %s\ndata: %s\n\n", name, text);
	free(text);
	int rc = wx_req_stream_write(s->req, buf, (size_t)n);
	free(buf);
	s->last_write_ms = wx_mono_ms();
	return rc;
}

static int
send_comment(struct stream *s, const char *text)
{
	char buf[128];
	int n = snprintf(buf, sizeof buf, ": %s\n\n", text);
	s->last_write_ms = wx_mono_ms();
	return wx_req_stream_write(s->req, buf, (size_t)n);
}

static int
send_log(void *ctx, json_object *msg)
{
	return send_event(ctx, "log", msg);
}

/* The status JSON of r without what changes on every save or is not progress. */
static json_object *
snapshot(const struct wx_state *st, const struct wx_record *r)
{
	bool live = wx_lock_probe(st, r->uuid) == WX_LOCK_BUSY;
	json_object *j = wx_status_json(st, r, live);
	json_object_object_del(j, "logs");
	json_object_object_del(j, "updated_at");
	return j;
}

/* Sends new log lines and what changed in r; 0, or -1 when the client is gone. */
static int
send_changes(struct stream *s, const struct wx_state *st, const struct wx_record *r)
{
	if (log_cursor_poll(&s->logs, st, r->uuid, send_log, s) != 0)
		return -1;
	const char *w = r->warning != NULL ? r->warning : "";
	if (strcmp(w, s->last_warning) != 0) {
		free(s->last_warning);
		s->last_warning = xstrdup(w);
		if (w[0] != '\0') {
			json_object *j = json_object_new_object();
			json_object_object_add(j, "uuid", json_object_new_string(r->uuid));
			json_object_object_add(j, "warning", json_object_new_string(w));
			if (send_event(s, "warning", j) < 0)
				return -1;
		}
	}
	json_object *j = snapshot(st, r);
	char *text = wx_json_text(j, JSON_C_TO_STRING_PLAIN, NULL);
	bool same = s->last_progress != NULL && strcmp(text, s->last_progress) == 0;
	free(s->last_progress);
	s->last_progress = text;
	if (same) {
		json_object_put(j);
		return 0;
	}
	return send_event(s, wx_status_active(r->status) ? "progress" : "end", j);
}

static void
pause_ms(int64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000 };
	(void)nanosleep(&ts, NULL);
}

/* An "end" event for a record that is gone or was replaced: no final state known. */
static int
send_lost(struct stream *s, const char *uuid, const char *why)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "uuid", json_object_new_string(uuid));
	json_object_object_add(j, "state", json_object_new_string("unknown"));
	json_object_object_add(j, "active", json_object_new_boolean(0));
	json_object_object_add(j, "error", json_object_new_string(why));
	return send_event(s, "end", j);
}

void
events_stream(struct wx_request *req, enum wx_role role)
{
	char uuid[37];
	struct wx_record r;
	if (wx_status_record(req, role, uuid, &r) < 0)
		return;
	const struct wx_state *st = wx_req_state(req);
	int64_t heartbeat_ms = req->cfg->transfers.events_heartbeat * 1000;
	int64_t deadline = wx_mono_ms() + req->cfg->transfers.events_max_duration * 1000;
	struct stream s = { .req = req, .last_warning = xstrdup("") };
	int64_t created_at = r.created_at;   /* tells the watched transfer from a later one */
	wx_req_header(req, "Cache-Control", "no-cache");
	/* nginx and other proxies in front of the web server: do not buffer. */
	wx_req_header(req, "X-Accel-Buffering", "no");
	const char *end = "client gone";
	if (wx_req_stream_start(req, 200, "text/event-stream; charset=utf-8") < 0 ||
	    send_comment(&s, "wingxfer transfer events") < 0)
		goto out;
	for (;;) {
		if (send_changes(&s, st, &r) < 0)
			goto out;
		if (!wx_status_active(r.status)) {
			end = "transfer ended";
			break;
		}
		if (wx_stop_requested) {
			end = "program stopping";
			(void)send_comment(&s, "server stopping; reconnect");
			break;
		}
		int64_t now = wx_mono_ms();
		if (now - s.last_write_ms >= heartbeat_ms && send_comment(&s, "heartbeat") < 0)
			goto out;
		if (now >= deadline) {
			end = "events_max_duration reached";
			(void)send_comment(&s, "events_max_duration reached; reconnect");
			break;
		}
		pause_ms(POLL_MS);
		wx_record_clear(&r);
		if (wx_record_load(st, uuid, &r) < 0) {
			bool gone = errno == ENOENT;
			memset(&r, 0, sizeof r);
			end = gone ? "record removed" : "record unreadable";
			(void)send_lost(&s, uuid, gone ?
			    "The transfer record was removed while it was watched." :
			    "The transfer record could not be read.");
			break;
		}
		if (r.role != role || r.created_at != created_at) {
			end = "record replaced";
			(void)send_lost(&s, uuid, "A later transfer of this server replaced the one "
			    "watched before its end was seen.");
			break;
		}
	}
out:
	wx_debug("event stream of %s closed: %s", uuid, end);
	wx_record_clear(&r);
	free(s.last_progress);
	free(s.last_warning);
	log_cursor_clear(&s.logs);
}
