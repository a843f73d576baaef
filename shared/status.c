#include "autoconf.h"

#include "status.h"
#include "record.h"
#include "state.h"
#include "util.h"

#include <math.h>

int64_t
wx_status_done(const struct wx_record *r)
{
	json_object *c;
	if (r->role == WX_ROLE_DESTINATION && r->extra != NULL &&
	    json_object_object_get_ex(r->extra, "chunked", &c) &&
	    json_object_is_type(c, json_type_object))
		return r->bytes_sent;
	return r->bytes_read;
}

long long
wx_status_eta(const struct wx_record *r)
{
	if (!wx_status_active(r->status) || r->bytes_total <= 0 || r->rate < 1.0)
		return -1;
	int64_t done = wx_status_done(r);
	double rate = r->rate;
	if (done != r->bytes_read) {
		/* rate is of body bytes: as many raw bytes per second as the
		 * body so far held per body byte. */
		if (done <= 0 || r->bytes_read <= 0)
			return -1;
		rate *= (double)done / (double)r->bytes_read;
	}
	int64_t left = r->bytes_total - done;
	if (left < 0)
		left = 0;
	return (long long)ceil((double)left / rate);
}

static void
add_time(json_object *j, const char *key, int64_t t)
{
	char buf[32];
	if (t <= 0) {
		json_object_object_add(j, key, NULL);
		return;
	}
	wx_format_time(t, buf, sizeof buf);
	json_object_object_add(j, key, json_object_new_string(buf));
}

json_object *
wx_status_json(const struct wx_state *st, const struct wx_record *r, bool live)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "uuid", json_object_new_string(r->uuid));
	json_object_object_add(j, "role", json_object_new_string(wx_role_name(r->role)));
	enum wx_status shown = r->status;
	if (wx_status_active(shown) && wx_cancel_requested(st, r->uuid, NULL, 0))
		shown = WX_ST_CANCELLING;
	json_object_object_add(j, "state", json_object_new_string(wx_status_name(shown)));
	json_object_object_add(j, "phase", json_object_new_string(r->phase));
	json_object_object_add(j, "active", json_object_new_boolean(wx_status_active(r->status)));
	json_object_object_add(j, "owner_alive", json_object_new_boolean(live));
	json_object_object_add(j, "bytes_total", json_object_new_int64(r->bytes_total));
	json_object_object_add(j, "bytes_read", json_object_new_int64(r->bytes_read));
	json_object_object_add(j, r->role == WX_ROLE_SOURCE ? "bytes_sent" : "bytes_extracted",
	    json_object_new_int64(r->bytes_sent));
	json_object_object_add(j, "files", json_object_new_int64(r->files));
	/* Counters the owner keeps in extra (source: files_total from the size walk,
	 * archive_bytes compressed so far, skipped special files). */
	static const char *const extra_counters[] = { "files_total", "archive_bytes", "skipped" };
	for (size_t i = 0; i < WX_ARRAY_LEN(extra_counters); i++) {
		json_object *v;
		if (r->extra != NULL && json_object_object_get_ex(r->extra, extra_counters[i], &v) &&
		    json_object_is_type(v, json_type_int))
			json_object_object_add(j, extra_counters[i],
			    json_object_new_int64(json_object_get_int64(v)));
	}
	/* Source: the system.transfers.connect_to entry used and where it connected. */
	static const char *const extra_routing[] = { "connect_to", "destination_address" };
	for (size_t i = 0; i < WX_ARRAY_LEN(extra_routing); i++) {
		json_object *v;
		if (r->extra != NULL && json_object_object_get_ex(r->extra, extra_routing[i], &v) &&
		    v != NULL)
			json_object_object_add(j, extra_routing[i], json_object_get(v));
	}
	/* Both sides of a chunked transfer (docs/protocol.md §4): upload id,
	 * acknowledged bytes, chunk size, interruptions, resumes; no secret.
	 * Only these members: the source keeps the upload's secret in its record. */
	static const char *const chunked_shown[] = { "upload", "acked", "chunk_size",
		"interruptions", "resumes", "resent_bytes", "restarts" };
	json_object *chunked;
	if (r->extra != NULL && json_object_object_get_ex(r->extra, "chunked", &chunked) &&
	    json_object_is_type(chunked, json_type_object)) {
		json_object *c = json_object_new_object();
		for (size_t i = 0; i < WX_ARRAY_LEN(chunked_shown); i++) {
			json_object *v;
			if (json_object_object_get_ex(chunked, chunked_shown[i], &v) &&
			    !json_object_is_type(v, json_type_object) &&
			    !json_object_is_type(v, json_type_array))
				json_object_object_add(c, chunked_shown[i], json_object_get(v));
		}
		json_object_object_add(j, "chunked", c);
	}
	/* A live pre-sync (docs/presync.md §8): the round, whether the server
	 * is stopped, the bytes of the round, the data of each round made (the
	 * delta trend) and the expected downtime.  All of it is the source's
	 * own bookkeeping (no secret). */
	json_object *presync;
	if (r->extra != NULL && json_object_object_get_ex(r->extra, "presync", &presync) &&
	    json_object_is_type(presync, json_type_object))
		json_object_object_add(j, "presync", json_object_get(presync));
	json_object_object_add(j, "rate_bytes_per_second",
	    json_object_new_int64((int64_t)r->rate));
	long long eta = wx_status_eta(r);
	json_object_object_add(j, "eta_seconds", eta >= 0 ? json_object_new_int64(eta) : NULL);
	if (r->bytes_total > 0) {
		double pct = 100.0 * (double)wx_status_done(r) / (double)r->bytes_total;
		json_object_object_add(j, "percent",
		    json_object_new_double(pct > 100.0 ? 100.0 : floor(pct * 10) / 10));
	} else {
		json_object_object_add(j, "percent", NULL);
	}
	add_time(j, "started_at", r->created_at);
	add_time(j, "updated_at", r->updated_at);
	add_time(j, "finished_at", r->finished_at);
	json_object_object_add(j, "error", r->error ? json_object_new_string(r->error) : NULL);
	json_object_object_add(j, "warning",
	    r->warning ? json_object_new_string(r->warning) : NULL);
	json_object_object_add(j, "logs", wx_events_tail(st, r->uuid, 20));
	return j;
}
