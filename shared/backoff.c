#include "autoconf.h"

#include "backoff.h"
#include "util.h"

#include <stdint.h>
#include <time.h>

void
wx_backoff_init(struct wx_backoff *b, int64_t now_ms)
{
	b->start_ms = now_ms;
	b->interval_ms = WX_BACKOFF_INITIAL_MS;
}

int64_t
wx_backoff_next(struct wx_backoff *b, int64_t now_ms, double r)
{
	if (r < 0.0 || r >= 1.0)
		r = 0.0;
	/* cenkalti: min + r * (max - min + 1), with min/max = interval -+ 50 %. */
	double delta = WX_BACKOFF_JITTER * b->interval_ms;
	double lo = b->interval_ms - delta, hi = b->interval_ms + delta;
	int64_t wait = (int64_t)(lo + r * (hi - lo + 1.0));
	if (wait > WX_BACKOFF_MAX_WAIT_MS)
		wait = WX_BACKOFF_MAX_WAIT_MS;
	if (b->interval_ms >= WX_BACKOFF_MAX_WAIT_MS / WX_BACKOFF_MULTIPLIER)
		b->interval_ms = WX_BACKOFF_MAX_WAIT_MS;
	else
		b->interval_ms *= WX_BACKOFF_MULTIPLIER;
	int64_t elapsed = now_ms - b->start_ms;
	if (elapsed < 0)
		elapsed = 0;
	if (elapsed + wait > WX_BACKOFF_MAX_ELAPSED_MS)
		return -1;
	return wait;
}

double
wx_backoff_random(void)
{
	uint64_t x = 0;
	if (wx_random_bytes(&x, sizeof x) < 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = (uint64_t)ts.tv_nsec * 2654435761u;
	}
	return (double)(x >> 11) / (double)(UINT64_C(1) << 53);
}

int64_t
wx_outbox_retry_delay(int64_t redeliveries)
{
	int64_t d = WX_OUTBOX_FIRST_DELAY;
	for (int64_t i = 0; i < redeliveries && d < WX_OUTBOX_MAX_DELAY; i++)
		d *= 2;
	return d < WX_OUTBOX_MAX_DELAY ? d : WX_OUTBOX_MAX_DELAY;
}
