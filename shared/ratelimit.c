#include "autoconf.h"

#include "ratelimit.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define SLICE_MS 100
#define MAGIC 0x3174656b63756257ULL   /* "Wbucket1" */

/* The file's contents (no padding: three 8-byte fields). */
struct stored {
	uint64_t magic;
	int64_t stamp_ms;
	double tokens;
};

void
wx_bucket_refill(struct wx_bucket *b, int64_t now_ms, double rate)
{
	if (b->stamp_ms <= 0 || b->stamp_ms > now_ms || !isfinite(b->tokens) ||
	    b->tokens < -3600.0 * rate) {
		b->stamp_ms = now_ms;
		b->tokens = rate;
		return;
	}
	b->tokens += (double)(now_ms - b->stamp_ms) * rate / 1000.0;
	if (b->tokens > rate)
		b->tokens = rate;
	b->stamp_ms = now_ms;
}

int64_t
wx_bucket_wait_ms(const struct wx_bucket *b, double rate)
{
	if (b->tokens >= 0)
		return 0;
	double ms = ceil(-b->tokens * 1000.0 / rate);
	return ms < 1 ? 1 : ms > 3600000.0 ? 3600000 : (int64_t)ms;
}

/* Refills, adds give, then takes take when not in debt: 0, or the ms to wait. */
static int64_t
step(struct wx_bucket *b, double rate, int64_t take, int64_t give)
{
	wx_bucket_refill(b, wx_mono_ms(), rate);
	b->tokens += (double)give;
	if (b->tokens > rate)
		b->tokens = rate;
	if (take <= 0)
		return 0;
	int64_t w = wx_bucket_wait_ms(b, rate);
	if (w == 0)
		b->tokens -= (double)take;
	return w;
}

/* From now on the private bucket, full. */
static void
go_private(struct wx_ratelimit *rl, const char *what)
{
	wx_warn("%s: cannot %s the node's bucket %s (%s): the limit now holds for this "
	    "process only", rl->key, what, rl->path, strerror(errno));
	close(rl->fd);
	rl->fd = -1;
	rl->own.stamp_ms = 0;
}

static int
lock_fd(int fd, int op)
{
	int rc;
	while ((rc = flock(fd, op)) < 0 && errno == EINTR)
		;
	return rc;
}

static int64_t
shared_step(struct wx_ratelimit *rl, int64_t take, int64_t give)
{
	if (lock_fd(rl->fd, LOCK_EX) < 0) {
		go_private(rl, "lock");
		return step(&rl->own, rl->rate, take, give);
	}
	struct stored s;
	memset(&s, 0, sizeof s);
	ssize_t r = pread(rl->fd, &s, sizeof s, 0);
	if (r < 0) {
		int e = errno;
		lock_fd(rl->fd, LOCK_UN);
		errno = e;
		go_private(rl, "read");
		return step(&rl->own, rl->rate, take, give);
	}
	struct wx_bucket b = { 0, 0 };
	if (r == (ssize_t)sizeof s && s.magic == MAGIC) {
		b.stamp_ms = s.stamp_ms;
		b.tokens = s.tokens;
	}
	int64_t w = step(&b, rl->rate, take, give);
	s.magic = MAGIC;
	s.stamp_ms = b.stamp_ms;
	s.tokens = b.tokens;
	ssize_t wr = pwrite(rl->fd, &s, sizeof s, 0);
	int e = errno;
	lock_fd(rl->fd, LOCK_UN);
	if (wr != (ssize_t)sizeof s) {
		errno = wr < 0 ? e : EIO;
		go_private(rl, "write");
		rl->own = b;
	}
	return w;
}

void
wx_ratelimit_open(struct wx_ratelimit *rl, const char *state_dir, const char *direction,
    int64_t mib_per_s, const char *key)
{
	memset(rl, 0, sizeof *rl);
	rl->fd = -1;
	if (mib_per_s <= 0)
		return;
	rl->rate = (double)mib_per_s * 1048576.0;
	rl->key = key;
	rl->path = xasprintf("%s/bandwidth-%s", state_dir, direction);
	rl->fd = open(rl->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (rl->fd < 0)
		wx_warn("%s: cannot open the node's bucket %s (%s): the limit holds for this "
		    "process only", key, rl->path, strerror(errno));
}

int
wx_ratelimit_take(struct wx_ratelimit *rl, int64_t n, bool (*stop)(void *ctx), void *ctx)
{
	if (rl->rate <= 0)
		return 0;
	for (;;) {
		int64_t w = rl->fd >= 0 ? shared_step(rl, n, 0) : step(&rl->own, rl->rate, n, 0);
		if (w == 0)
			return 0;
		if (w > SLICE_MS)
			w = SLICE_MS;
		struct timespec ts = { 0, (long)w * 1000000L };
		nanosleep(&ts, NULL);
		if (stop != NULL && stop(ctx))
			return -1;
	}
}

void
wx_ratelimit_give(struct wx_ratelimit *rl, int64_t n)
{
	if (rl->rate <= 0 || n <= 0)
		return;
	if (rl->fd >= 0)
		shared_step(rl, 0, n);
	else
		step(&rl->own, rl->rate, 0, n);
}

void
wx_ratelimit_close(struct wx_ratelimit *rl)
{
	if (rl->fd >= 0)
		close(rl->fd);
	rl->fd = -1;
	free(rl->path);
	rl->path = NULL;
}
