/*
 * Retry timing for panel requests, as pure functions (no clock, no random
 * source of their own) so they can be tested exactly.
 *
 * wx_backoff_* is Wings' policy (cenkalti/backoff v4 NewExponentialBackOff):
 * the interval starts at 0.5 s and grows x1.5 per attempt up to 12 s; each
 * wait is the interval +-50 % (uniform), and never more than 12 s; no new
 * attempt is started when the time since the first attempt plus the next
 * wait would pass 30 s.  Time spent inside attempts counts toward the 30 s.
 *
 * wx_outbox_retry_delay is the watchdog's schedule for callbacks left after
 * that window: 1 min, 2 min, 4 min, ... at most 1 h between attempts.
 */
#ifndef WX_BACKOFF_H
#define WX_BACKOFF_H

#include <stdint.h>

#define WX_BACKOFF_INITIAL_MS 500
#define WX_BACKOFF_MULTIPLIER 1.5
#define WX_BACKOFF_JITTER 0.5
#define WX_BACKOFF_MAX_WAIT_MS 12000
#define WX_BACKOFF_MAX_ELAPSED_MS 30000

struct wx_backoff {
	int64_t start_ms;      /* monotonic time of the first attempt */
	double interval_ms;    /* current interval before jitter */
};

/* Starts a retry window at now_ms (a monotonic clock). */
void wx_backoff_init(struct wx_backoff *b, int64_t now_ms);

/*
 * The wait before the next attempt, in ms, given the time now (after the
 * attempt that just failed) and r, a uniform random number in [0, 1).
 * Returns -1 when the window is over: make no further attempt.
 */
int64_t wx_backoff_next(struct wx_backoff *b, int64_t now_ms, double r);

/* A uniform random number in [0, 1) from the kernel CSPRNG. */
double wx_backoff_random(void);

#define WX_OUTBOX_FIRST_DELAY 60
#define WX_OUTBOX_MAX_DELAY 3600

/* Seconds until the watchdog retries a callback after `redeliveries` failed
 * redeliveries (0 for the first after the reporter's window). */
int64_t wx_outbox_retry_delay(int64_t redeliveries);

#endif
