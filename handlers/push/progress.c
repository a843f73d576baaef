/*
 * What the outside sees of a running push: the record (saved at most once
 * a second while bytes move, progress_at refreshed whenever they do, which
 * is what the watchdog's stall detection reads), the events file in Wings'
 * words, and the terminal when run by hand.
 */
#include "autoconf.h"

#include "push.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SAVE_INTERVAL_MS 1000
#define TICK_INTERVAL_MS 5000
#define BAR_CELLS 25

static void
job_vlog(struct job *job, bool warn, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (wx_events_append(&job->st, job->uuid, "transfer logs", msg) < 0)
		wx_warn("cannot append to the events file: %s", strerror(errno));
	if (job->tty) {
		fprintf(stderr, "%s\n", msg);
		fflush(stderr);
	} else if (warn) {
		wx_warn("%s", msg);
	} else {
		wx_info("%s", msg);
	}
}

void
job_log(struct job *job, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	job_vlog(job, false, fmt, ap);
	va_end(ap);
}

void
job_warn(struct job *job, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	job_vlog(job, true, fmt, ap);
	va_end(ap);
}

void
job_status(struct job *job, const char *status)
{
	if (wx_events_append(&job->st, job->uuid, "transfer status", status) < 0)
		wx_warn("cannot append to the events file: %s", strerror(errno));
	wx_debug("transfer status %s", status);
}

static void
set_extra_int(struct job *job, const char *key, int64_t v)
{
	if (job->rec.extra == NULL)
		job->rec.extra = json_object_new_object();
	json_object_object_add(job->rec.extra, key, json_object_new_int64(v));
}

void
job_save(struct job *job)
{
	static bool warned;
	struct progress *p = &job->progress;
	job->rec.bytes_total = p->bytes_total;
	job->rec.bytes_read = p->bytes_read;
	job->rec.bytes_sent = p->bytes_sent;
	job->rec.files = p->files;
	set_extra_int(job, "files_total", p->files_total);
	set_extra_int(job, "archive_bytes", p->archive_bytes);
	set_extra_int(job, "skipped", job->skipped);
	if (wx_record_save(&job->st, &job->rec) < 0) {
		if (!warned)
			wx_warn("cannot save the transfer record: %s", strerror(errno));
		warned = true;
		return;
	}
	warned = false;
	p->last_save_ms = wx_mono_ms();
}

void
job_phase(struct job *job, const char *phase)
{
	wx_strlcpy(job->rec.phase, phase, sizeof job->rec.phase);
	job_save(job);
}

void
progress_bar(int64_t done, int64_t total, char *out, size_t size)
{
	/* Wings: ticks = int((written/total*100) / (100/width)), clamped to 0..width. */
	int ticks = 0;
	if (total > 0) {
		double pct = (double)done / (double)total * 100.0;
		double t = pct / (100.0 / BAR_CELLS);
		ticks = t >= BAR_CELLS ? BAR_CELLS : t <= 0 ? 0 : (int)t;
	}
	char bar[BAR_CELLS + 1];
	memset(bar, '=', (size_t)ticks);
	memset(bar + ticks, ' ', (size_t)(BAR_CELLS - ticks));
	bar[BAR_CELLS] = '\0';
	char a[32], b[32];
	wx_format_bytes(done, a, sizeof a);
	wx_format_bytes(total, b, sizeof b);
	snprintf(out, size, "Uploading [%s] %s / %s", bar, a, b);
}

void
progress_start_streaming(struct job *job)
{
	struct progress *p = &job->progress;
	int64_t now = wx_mono_ms();
	p->streaming = true;
	p->next_tick_ms = now + TICK_INTERVAL_MS;
	p->rate_ms = now;
	p->rate_bytes = p->bytes_read;
}

static void
tick(struct job *job)
{
	struct progress *p = &job->progress;
	char line[256];
	progress_bar(p->bytes_read, p->bytes_total, line, sizeof line);
	if (wx_events_append(&job->st, job->uuid, "transfer logs", line) < 0)
		wx_warn("cannot append to the events file: %s", strerror(errno));
	if (!job->tty) {
		wx_info("%s", line);
		return;
	}
	char rate[32], eta[32] = "";
	wx_format_bytes((int64_t)job->rec.rate, rate, sizeof rate);
	if (p->bytes_total > 0 && job->rec.rate >= 1.0) {
		long long left = (long long)((double)(p->bytes_total - p->bytes_read) / job->rec.rate);
		if (left < 0)
			left = 0;
		snprintf(eta, sizeof eta, ", ETA %lldm%02llds", left / 60, left % 60);
	}
	fprintf(stderr, "%s  (%s/s%s, %lld files)\n", line, rate, eta, (long long)p->files);
	fflush(stderr);
}

void
progress_update(struct job *job, bool force)
{
	struct progress *p = &job->progress;
	int64_t now = wx_mono_ms();
	int64_t moved = p->bytes_read + p->bytes_sent;
	if (moved != p->moved) {
		p->moved = moved;
		job->rec.progress_at = wx_now();
	}
	if (p->streaming && now - p->rate_ms >= 1000) {
		double inst = (double)(p->bytes_read - p->rate_bytes) * 1000.0 /
		    (double)(now - p->rate_ms);
		job->rec.rate = job->rec.rate <= 0 ? inst : 0.7 * job->rec.rate + 0.3 * inst;
		p->rate_ms = now;
		p->rate_bytes = p->bytes_read;
	}
	if (p->streaming && now >= p->next_tick_ms) {
		tick(job);
		p->next_tick_ms = now + TICK_INTERVAL_MS;
	}
	if (force || now - p->last_save_ms >= SAVE_INTERVAL_MS)
		job_save(job);
}
