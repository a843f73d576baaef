/*
 * wingxfer-status output: a few lines per transfer for people, or the
 * status endpoints' JSON for scripts.
 */
#include "autoconf.h"

#include "status_cmd.h"
#include "state.h"
#include "status.h"
#include "util.h"

#include <string.h>

#define BAR_CELLS 20

void
st_bar(int64_t done, int64_t total, int width, char *buf, size_t size)
{
	if (size < (size_t)width + 3) {
		if (size > 0)
			buf[0] = '\0';
		return;
	}
	buf[0] = '[';
	if (total <= 0) {
		memset(buf + 1, ' ', (size_t)width);
		buf[1 + width / 2] = '?';
	} else {
		if (done < 0)
			done = 0;
		if (done > total)
			done = total;
		int full = (int)((double)done / (double)total * width);
		memset(buf + 1, '#', (size_t)full);
		memset(buf + 1 + full, '-', (size_t)(width - full));
	}
	buf[1 + width] = ']';
	buf[2 + width] = '\0';
}

static const char *
direction(const struct wx_record *r)
{
	return r->role == WX_ROLE_SOURCE ? "outgoing" : "incoming";
}

/* The progress line: bar, percent, bytes, rate, ETA (or how long it took). */
static void
progress_line(FILE *f, const struct st_item *it)
{
	const struct wx_record *r = &it->rec;
	bool active = wx_status_active(r->status);
	int64_t total = r->bytes_total;
	if (r->status == WX_ST_COMPLETED && total <= 0)
		total = r->bytes_read > 0 ? r->bytes_read : 1;
	char bar[BAR_CELLS + 3], done[32], of[32], rate[48], tail[64];
	int64_t counted = wx_status_done(r);
	st_bar(r->status == WX_ST_COMPLETED ? total : counted, total, BAR_CELLS, bar,
	    sizeof bar);
	wx_format_bytes(counted, done, sizeof done);
	fprintf(f, "    %s", bar);
	if (r->bytes_total > 0) {
		double pct = 100.0 * (double)counted / (double)r->bytes_total;
		wx_format_bytes(r->bytes_total, of, sizeof of);
		fprintf(f, " %5.1f%%  %s of %s", pct > 100.0 ? 100.0 : pct, done, of);
	} else {
		fprintf(f, "  %s%s", done, active ? " (total unknown)" : "");
	}
	if (active) {
		wx_format_bytes((int64_t)r->rate, rate, sizeof rate);
		long long eta = wx_status_eta(r);
		if (eta >= 0)
			wx_format_duration(eta, tail, sizeof tail);
		fprintf(f, "  %s/s  ETA %s", rate, eta >= 0 ? tail : "?");
	} else if (r->finished_at > 0 && r->created_at > 0 && r->finished_at >= r->created_at) {
		int64_t took = r->finished_at - r->created_at;
		wx_format_duration(took, tail, sizeof tail);
		wx_format_bytes(took > 0 ? r->bytes_read / took : r->bytes_read, rate, sizeof rate);
		fprintf(f, "  %s/s on average  took %s", rate, tail);
	}
	fputc('\n', f);
}

static int64_t
chunked_count(json_object *ch, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(ch, key, &v) && json_object_is_type(v, json_type_int) ?
	    json_object_get_int64(v) : 0;
}

/* "    chunked: upload <id>, 12.0 MiB acknowledged, chunks of 2.0 MiB, ..." */
static void
chunked_line(FILE *f, const struct wx_record *r)
{
	json_object *ch, *id;
	if (r->extra == NULL || !json_object_object_get_ex(r->extra, "chunked", &ch) ||
	    !json_object_is_type(ch, json_type_object))
		return;
	char acked[32], size[32], resent[32];
	wx_format_bytes(chunked_count(ch, "acked"), acked, sizeof acked);
	wx_format_bytes(chunked_count(ch, "chunk_size"), size, sizeof size);
	wx_format_bytes(chunked_count(ch, "resent_bytes"), resent, sizeof resent);
	fprintf(f, "    chunked: upload %s, %s acknowledged, chunks of %s, %lld interruptions, "
	    "%lld resumes, %s sent again\n",
	    json_object_object_get_ex(ch, "upload", &id) && json_object_is_type(id, json_type_string) ?
	    json_object_get_string(id) : "?", acked, size,
	    (long long)chunked_count(ch, "interruptions"), (long long)chunked_count(ch, "resumes"),
	    resent);
}

static double
presync_number(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && (json_object_is_type(v, json_type_int) ||
	    json_object_is_type(v, json_type_double)) ? json_object_get_double(v) : 0;
}

/* "    pre-sync: round 3 (server running), data per round 4.0 GiB, 5.3 MiB; downtime ~0.8 s" */
static void
presync_line(FILE *f, const struct wx_record *r)
{
	json_object *p, *rounds, *v;
	if (r->extra == NULL || !json_object_object_get_ex(r->extra, "presync", &p) ||
	    !json_object_is_type(p, json_type_object))
		return;
	bool stopped = json_object_object_get_ex(p, "server_stopped", &v) &&
	    json_object_get_boolean(v);
	fprintf(f, "    pre-sync: round %.0f (%s)", presync_number(p, "round"),
	    stopped ? "final, server stopped" : "server running");
	if (json_object_object_get_ex(p, "rounds", &rounds) &&
	    json_object_is_type(rounds, json_type_array) && json_object_array_length(rounds) > 0) {
		fputs(", data per round", f);
		for (size_t i = 0; i < json_object_array_length(rounds) && i < 16; i++) {
			char b[32];
			wx_format_bytes((int64_t)presync_number(json_object_array_get_idx(rounds, i),
			    "data_bytes"), b, sizeof b);
			fprintf(f, "%s %s", i ? "," : "", b);
		}
	}
	if (!stopped && json_object_object_get_ex(p, "estimated_downtime_seconds", &v))
		fprintf(f, "; expected downtime ~%.1f s", presync_number(p,
		    "estimated_downtime_seconds"));
	fputc('\n', f);
}

static void
show_one(FILE *f, const struct st_item *it, int64_t now)
{
	const struct wx_record *r = &it->rec;
	bool active = wx_status_active(r->status);
	enum wx_status shown = it->cancelling ? WX_ST_CANCELLING : r->status;
	fprintf(f, "%s  %s  %s", r->uuid, direction(r), wx_status_name(shown));
	if (active && r->phase[0] != '\0')
		fprintf(f, " (%s)", r->phase);
	if (active && !it->live)
		fputs("  -- its process is gone; wingxfer-watchdog will end it", f);
	fputc('\n', f);
	progress_line(f, it);

	char t[32], ago[32];
	wx_format_time(r->created_at, t, sizeof t);
	wx_format_duration(now - r->created_at, ago, sizeof ago);
	fprintf(f, "    started %s (%s ago)", t, ago);
	if (r->finished_at > 0) {
		wx_format_time(r->finished_at, t, sizeof t);
		fprintf(f, ", ended %s", t);
	} else if (r->updated_at > 0) {
		wx_format_duration(now - r->updated_at, ago, sizeof ago);
		fprintf(f, ", updated %s ago", ago);
	}
	fprintf(f, ", %lld files", (long long)r->files);
	if (r->role == WX_ROLE_SOURCE && r->url != NULL)
		fprintf(f, ", to %s", r->url);
	fputc('\n', f);
	chunked_line(f, r);
	presync_line(f, r);
	if (r->error != NULL)
		fprintf(f, "    error: %s\n", r->error);
	if (r->warning != NULL)
		fprintf(f, "    warning: %s\n", r->warning);
}

void
st_show_text(FILE *f, const struct st_list *l, const struct wx_state *st, int64_t now)
{
	if (l->n == 0) {
		fprintf(f, "No transfers on this node (%s).\n", st->transfers);
		return;
	}
	fprintf(f, "%zu transfer%s, %zu active (%s)\n", l->n, l->n == 1 ? "" : "s", l->active,
	    st->transfers);
	for (size_t i = 0; i < l->n; i++) {
		fputc('\n', f);
		show_one(f, &l->items[i], now);
	}
}

json_object *
st_show_json(const struct st_list *l, const struct wx_state *st, int64_t now)
{
	char t[32];
	wx_format_time(now, t, sizeof t);
	json_object *doc = json_object_new_object();
	json_object_object_add(doc, "time", json_object_new_string(t));
	json_object_object_add(doc, "state_directory", json_object_new_string(st->dir));
	json_object_object_add(doc, "active", json_object_new_int64((int64_t)l->active));
	json_object *arr = json_object_new_array();
	for (size_t i = 0; i < l->n; i++) {
		const struct st_item *it = &l->items[i];
		json_object *j = wx_status_json(st, &it->rec, it->live);
		json_object_object_add(j, "direction", json_object_new_string(direction(&it->rec)));
		if (it->rec.role == WX_ROLE_SOURCE)
			json_object_object_add(j, "destination_url",
			    it->rec.url ? json_object_new_string(it->rec.url) : NULL);
		json_object_array_add(arr, j);
	}
	json_object_object_add(doc, "transfers", arr);
	return doc;
}
