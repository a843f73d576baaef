/* Retry timing: Wings' backoff (jitter bounds, 12 s cap, 30 s window) and the
 * watchdog's redelivery schedule. */
#include "autoconf.h"

#include "backoff.h"
#include "tap.h"

#include <math.h>

static void
test_sequence(void)
{
	/* r = 0.5 is the middle of the jitter range: the interval + 0.5 ms
	 * (cenkalti: min + r * (max - min + 1)), rounded down. */
	static const int64_t want[] = { 500, 750, 1125, 1688, 2531, 3797, 5695, 8543 };
	struct wx_backoff b;
	wx_backoff_init(&b, 1000);
	int64_t now = 1000;
	int i;
	for (i = 0; i < (int)(sizeof want / sizeof want[0]); i++) {
		int64_t w = wx_backoff_next(&b, now, 0.5);
		is_int(w, want[i], "wait %d at r=0.5 is the interval (x1.5 from 0.5 s)", i + 1);
		now += w;
	}
	is_int(b.interval_ms, 12000, "the interval stops growing at 12 s");
	/* 24.6 s have passed; 12 s more would pass 30 s. */
	is_int(wx_backoff_next(&b, now, 0.5), -1, "no attempt that would start after 30 s");
	is_int(i + 1, 9, "9 attempts in the window with instant answers (Wings: ~9-10)");
}

static void
test_jitter_bounds(void)
{
	int inside = 1, capped = 1, spread_lo = 0, spread_hi = 0;
	for (int run = 0; run < 2000; run++) {
		struct wx_backoff b;
		wx_backoff_init(&b, 0);
		double interval = 500;
		for (int k = 0; k < 12; k++) {
			double r = wx_backoff_random();
			int64_t w = wx_backoff_next(&b, 0, r);
			double lo = floor(interval * 0.5), hi = interval * 1.5 + 1;
			if (w < (int64_t)lo || (double)w > hi)
				inside = 0;
			if (w > 12000)
				capped = 0;
			if (k == 0 && w < 300)
				spread_lo = 1;
			if (k == 0 && w > 700)
				spread_hi = 1;
			interval = interval * 1.5 >= 12000 ? 12000 : interval * 1.5;
		}
	}
	ok(inside, "every wait is within the interval +-50 %%");
	ok(capped, "no wait is above 12 s, even with jitter on a 12 s interval");
	ok(spread_lo && spread_hi, "the jitter uses the whole range (random, not fixed)");

	struct wx_backoff b;
	wx_backoff_init(&b, 0);
	is_int(wx_backoff_next(&b, 0, 0.0), 250, "r = 0 gives the lower bound 0.25 s");
	wx_backoff_init(&b, 0);
	is_int(wx_backoff_next(&b, 0, 0.999999), 750, "r -> 1 gives the upper bound 0.75 s");
	wx_backoff_init(&b, 0);
	is_int(wx_backoff_next(&b, 0, 7.0), 250, "an out-of-range r is treated as 0");
	b.interval_ms = 12000;
	is_int(wx_backoff_next(&b, 0, 0.99), 12000, "a jittered 17.9 s wait is cut to 12 s");
	b.interval_ms = 12000;
	is_int(wx_backoff_next(&b, 0, 0.0), 6000, "a 12 s interval may wait 6 s");
}

static void
test_window(void)
{
	struct wx_backoff b;
	/* Time inside attempts counts: one slow attempt uses up the window. */
	wx_backoff_init(&b, 0);
	is_int(wx_backoff_next(&b, 29500, 0.5), 500, "a wait ending exactly at 30 s is allowed");
	wx_backoff_init(&b, 0);
	is_int(wx_backoff_next(&b, 29501, 0.5), -1, "one ending after 30 s is not");
	wx_backoff_init(&b, 0);
	is_int(wx_backoff_next(&b, 30000, 0.0), -1, "a 30 s attempt (remote_query.timeout) ends it");
	int worst_ok = 1;
	for (int run = 0; run < 500; run++) {
		wx_backoff_init(&b, 0);
		int64_t now = 0, total = 0;
		int attempts = 1;
		for (;;) {
			int64_t w = wx_backoff_next(&b, now, wx_backoff_random());
			if (w < 0)
				break;
			now += w;
			total += w;
			attempts++;
		}
		if (total > 30000 || attempts < 5 || attempts > 14)
			worst_ok = 0;
	}
	ok(worst_ok, "random runs: waits add up to <= 30 s, 5-14 attempts");
	wx_backoff_init(&b, 5000);
	is_int(wx_backoff_next(&b, 1000, 0.5), 500, "a clock going backwards counts as no time");
}

static void
test_random(void)
{
	int in_range = 1;
	double min = 1, max = 0;
	for (int i = 0; i < 1000; i++) {
		double r = wx_backoff_random();
		if (r < 0.0 || r >= 1.0)
			in_range = 0;
		min = r < min ? r : min;
		max = r > max ? r : max;
	}
	ok(in_range, "wx_backoff_random is in [0, 1)");
	ok(min < 0.1 && max > 0.9, "and spread over it");
}

static void
test_outbox_schedule(void)
{
	static const int64_t want[] = { 60, 120, 240, 480, 960, 1920, 3600, 3600 };
	for (int i = 0; i < 8; i++)
		is_int(wx_outbox_retry_delay(i), want[i], "redelivery %d waits %lld s", i,
		    (long long)want[i]);
	is_int(wx_outbox_retry_delay(1000000000), 3600, "a huge count stays at 1 h (no overflow)");
	int64_t sum = 0;
	int n = 0;
	while (sum < 86400) {
		sum += wx_outbox_retry_delay(n);
		n++;
	}
	ok(n > 20 && n < 40, "about %d redeliveries in the default 24 h retention", n);
}

int
main(void)
{
	test_sequence();
	test_jitter_bounds();
	test_window();
	test_random();
	test_outbox_schedule();
	return tap_done();
}
