/*
 * The request body as the multipart parser sees it: reads of at most
 * RX_READ_CHUNK, paced by system.transfers.download_limit (node-wide), with
 * a cancel check between reads and the record kept current (at most once a
 * second).
 */
#include "autoconf.h"

#include "destination.h"
#include "config.h"
#include "log.h"
#include "program.h"
#include "request.h"
#include "state.h"
#include "status.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int
rx_fail(struct receiver *rx, int status, const char *fmt, ...)
{
	if (rx->status != 0)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rx->error, sizeof rx->error, fmt, ap);
	va_end(ap);
	rx->status = status;
	return -1;
}

void
rx_detail(struct receiver *rx, const char *fmt, ...)
{
	if (rx->detail[0] != '\0')
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rx->detail, sizeof rx->detail, fmt, ap);
	va_end(ap);
}

void
rx_log(struct receiver *rx, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (rx->in_sandbox) {
		rx_sandbox_log(rx, msg);
		return;
	}
	wx_info("%s", msg);
	if (wx_events_append(rx->st, rx->uuid, "transfer logs", msg) < 0)
		wx_warn("cannot append to the events file of %s", rx->uuid);
}

bool
rx_cancel_check(struct receiver *rx, bool now)
{
	if (rx->cancelled || rx->in_sandbox)
		return rx->cancelled; /* the parent watches for cancels and kills the child */
	int64_t t = wx_mono_ms();
	if (!now && !wx_interrupted && t - rx->last_cancel_ms < 100)
		return false;
	rx->last_cancel_ms = t;
	wx_interrupted = 0;
	char why[WX_CANCEL_WHY_MAX + 1];
	if (!wx_cancel_requested(rx->st, rx->uuid, why, sizeof why))
		return false;
	rx->cancelled = true;
	rx->stopped_by_watchdog = why[0] != '\0';
	if (why[0] != '\0')
		rx_fail(rx, 503, "Stopped on the destination node by %s; nothing was installed.", why);
	else
		rx_fail(rx, 409, "The transfer was cancelled on the destination node "
		    "(DELETE /api/transfers/%s); nothing was installed.", rx->uuid);
	return true;
}

void
rx_progress(struct receiver *rx, bool force)
{
	if (rx->in_sandbox) {
		rx_sandbox_progress(rx, force);
		return;
	}
	int64_t t = wx_mono_ms();
	if (!force && t - rx->last_save_ms < 1000)
		return;
	if (rx->last_save_ms > 0 && t > rx->last_save_ms) {
		double inst = (double)(rx->rec.bytes_read - rx->rate_bytes) * 1000.0 /
		    (double)(t - rx->last_save_ms);
		rx->rec.rate = rx->rec.rate > 0 ? 0.7 * rx->rec.rate + 0.3 * inst : inst;
	}
	rx->rate_bytes = rx->rec.bytes_read;
	rx->last_save_ms = t;
	if (wx_record_save(rx->st, &rx->rec) < 0)
		wx_warn("cannot save the transfer record of %s", rx->uuid);
	if (strcmp(rx->rec.phase, WX_PHASE_RECEIVING) == 0 && t - rx->last_log_ms >= 5000) {
		char got[32], ext[32], rate[32];
		wx_format_bytes(rx->rec.bytes_read, got, sizeof got);
		wx_format_bytes(rx->rec.bytes_sent, ext, sizeof ext);
		wx_format_bytes((int64_t)rx->rec.rate, rate, sizeof rate);
		if (rx->rec.bytes_total > 0) {
			char total[32], counted[32], bar[26];
			int64_t done = wx_status_done(&rx->rec);
			wx_format_bytes(rx->rec.bytes_total, total, sizeof total);
			wx_format_bytes(done, counted, sizeof counted);
			int ticks = (int)(25.0 * (double)done / (double)rx->rec.bytes_total);
			for (int i = 0; i < 25; i++)
				bar[i] = i < ticks ? '=' : ' ';
			bar[25] = '\0';
			if (done == rx->rec.bytes_read)
				rx_log(rx, "Receiving [%s] %s / %s (%s/s, %lld files, %s extracted)", bar,
				    got, total, rate, (long long)rx->rec.files, ext);
			else
				rx_log(rx, "Receiving [%s] %s / %s extracted (%s/s, %lld files, %s "
				    "received)", bar, counted, total, rate, (long long)rx->rec.files, got);
		} else {
			rx_log(rx, "Receiving %s (%s/s, %lld files, %s extracted)", got, rate,
			    (long long)rx->rec.files, ext);
		}
		rx->last_log_ms = t;
	}
}

static bool
pace_stop(void *ctx)
{
	return rx_cancel_check(ctx, false);
}

ssize_t
rx_body_read(void *ctx, void *buf, size_t n)
{
	struct receiver *rx = ctx;
	if (rx->status != 0)
		return -1;
	if (rx_cancel_check(rx, false))
		return -1;
	if (n > RX_READ_CHUNK)
		n = RX_READ_CHUNK;
	/* download_limit: the node's bucket pays for n bytes before the read
	 * (waiting in slices of at most 100 ms, a cancel seen after each);
	 * what the read did not return goes back. */
	if (wx_ratelimit_take(&rx->rl, (int64_t)n, pace_stop, rx) < 0)
		return -1;
	ssize_t r = rx->source != NULL ? rx->source(rx, buf, n) : wx_req_read(rx->req, buf, n);
	wx_ratelimit_give(&rx->rl, r > 0 ? (int64_t)n - r : (int64_t)n);
	if (r < 0 && rx->source != NULL)
		return -1;
	if (r < 0) {
		/* A SIGUSR2 from DELETE breaks a blocked read: is that what this is? */
		if (rx_cancel_check(rx, true))
			return -1;
		char got[32];
		wx_format_bytes(rx->rec.bytes_read, got, sizeof got);
		rx->body_failed = true;
		rx_fail(rx, 400, "The upload was cut off after %s, before its end (the sending "
		    "node or the web server aborted it); nothing was installed.", got);
		return -1;
	}
	if (r > 0) {
		rx->rec.bytes_read += r;
		rx->rec.progress_at = wx_now();
	}
	rx_progress(rx, false);
	return r;
}
