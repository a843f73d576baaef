/* The node-wide bandwidth bucket: its arithmetic, resets of nonsense, the
 * private fallback, and two processes sharing one limit (an upper bound on
 * the bytes taken over the elapsed time: a slow machine only makes it
 * looser). */
#include "autoconf.h"

#include "ratelimit.h"
#include "util.h"
#include "tap.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB 1048576.0

static char dir[] = "/tmp/wx-ratelimit-XXXXXX";

static void
test_arithmetic(void)
{
	double rate = 2 * MIB;
	struct wx_bucket b = { 0, 0 };
	wx_bucket_refill(&b, 5000, rate);
	ok(b.stamp_ms == 5000 && b.tokens == rate, "a bucket never used starts full (one second)");
	is_int(wx_bucket_wait_ms(&b, rate), 0, "a full bucket: no wait");
	b.tokens = -rate / 2;
	is_int(wx_bucket_wait_ms(&b, rate), 500, "half a second of debt: 500 ms to wait");
	wx_bucket_refill(&b, 5250, rate);
	ok(fabs(b.tokens + rate / 4) < 1e-6, "250 ms later a quarter second of debt is left");
	is_int(wx_bucket_wait_ms(&b, rate), 250, "... 250 ms to wait");
	b.tokens = -0.001;
	is_int(wx_bucket_wait_ms(&b, rate), 1, "a tiny debt waits at least 1 ms");
	wx_bucket_refill(&b, 9000000, rate);
	ok(b.tokens == rate, "a long pause refills to one second, no more");
	b.stamp_ms = 9000100;
	b.tokens = -rate;
	wx_bucket_refill(&b, 9000000, rate);
	ok(b.tokens == rate && b.stamp_ms == 9000000, "a stamp from the future (another boot): full");
	b.tokens = NAN;
	wx_bucket_refill(&b, 9000001, rate);
	ok(b.tokens == rate, "tokens that are not a number: full");
	b.tokens = -1e30;
	wx_bucket_refill(&b, 9000002, rate);
	ok(b.tokens == rate, "an absurd debt: full");
}

static int stops;

static bool
stop_now(void *ctx)
{
	(void)ctx;
	stops++;
	return true;
}

static void
test_private(void)
{
	struct wx_ratelimit rl;
	wx_ratelimit_open(&rl, "/nonexistent/wx-ratelimit", "upload", 1, "test.limit");
	ok(rl.fd < 0 && rl.rate == MIB, "a bucket file that cannot be made: a private bucket");
	/* No check here depends on the machine's speed: a wait would ask stop
	 * (counted), and the debt is a minute's worth, which no slow machine
	 * (valgrind) pays off between two calls. */
	stops = 0;
	ok(wx_ratelimit_take(&rl, (int64_t)MIB, stop_now, NULL) == 0, "one second's worth at once");
	ok(wx_ratelimit_take(&rl, 60 * (int64_t)MIB, stop_now, NULL) == 0,
	    "the bucket is empty, not in debt: a take may start, even a large one");
	is_int(stops, 0, "... neither waited");
	ok(wx_ratelimit_take(&rl, 4096, stop_now, NULL) == -1, "in debt: the take waits and the "
	    "stop callback ends it");
	is_int(stops, 1, "... after one slice");
	wx_ratelimit_give(&rl, 60 * (int64_t)MIB + 8192);
	ok(wx_ratelimit_take(&rl, 4096, stop_now, NULL) == 0, "what was given back pays the debt");
	wx_ratelimit_close(&rl);

	wx_ratelimit_open(&rl, dir, "download", 0, "test.limit");
	ok(rl.rate == 0 && rl.fd < 0, "0 = no limit: no bucket file");
	ok(wx_ratelimit_take(&rl, INT64_MAX / 2, stop_now, NULL) == 0, "... and any take passes");
	wx_ratelimit_close(&rl);
}

static void
test_garbage_file(void)
{
	char *path = xasprintf("%s/bandwidth-upload", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "not a bucket at all, 24b", 24) != 24)
		abort();
	close(fd);
	struct wx_ratelimit rl;
	wx_ratelimit_open(&rl, dir, "upload", 1, "test.limit");
	ok(rl.fd >= 0, "the bucket file opens");
	stops = 0;
	ok(wx_ratelimit_take(&rl, 1000, stop_now, NULL) == 0 && stops == 0,
	    "a file holding nonsense counts as a full bucket");
	/* A minute of debt: however slow the machine (valgrind), the next take
	 * still has to wait. */
	ok(wx_ratelimit_take(&rl, 60 * (int64_t)MIB, stop_now, NULL) == 0,
	    "... so a take may start, even a large one");
	ok(wx_ratelimit_take(&rl, 1, stop_now, NULL) == -1, "... and then it is in debt");
	wx_ratelimit_close(&rl);
	unlink(path);
	free(path);
}

#define CHUNK (64 * 1024)
#define PER_CHILD (768 * 1024)

/* Two processes take CHUNK at a time until each has PER_CHILD, under 1 MiB/s
 * together.  Each alone, with its own full bucket, would finish at once. */
static void
test_shared(void)
{
	int64_t t0 = wx_mono_ms();
	pid_t kids[2];
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			abort();
		if (kids[i] == 0) {
			struct wx_ratelimit rl;
			wx_ratelimit_open(&rl, dir, "download", 1, "test.limit");
			if (rl.fd < 0)
				_exit(2);
			for (int64_t got = 0; got < PER_CHILD; got += CHUNK)
				if (wx_ratelimit_take(&rl, CHUNK, NULL, NULL) < 0)
					_exit(3);
			wx_ratelimit_close(&rl);
			_exit(0);
		}
	}
	int done = 0;
	for (int i = 0; i < 2; i++) {
		int status;
		if (waitpid(kids[i], &status, 0) == kids[i] && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			done++;
	}
	int64_t ms = wx_mono_ms() - t0;
	is_int(done, 2, "both processes took all they wanted");
	/* bytes <= rate * t + one second (the full bucket) + one take */
	double bound = MIB * (double)ms / 1000.0 + MIB + CHUNK;
	ok(2.0 * PER_CHILD <= bound, "together they stayed under the shared limit: %d bytes in "
	    "%lld ms, at most %.0f allowed", 2 * PER_CHILD, (long long)ms, bound);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	test_arithmetic();
	test_private();
	test_garbage_file();
	test_shared();
	char *p = xasprintf("%s/bandwidth-download", dir);
	unlink(p);
	free(p);
	rmdir(dir);
	return tap_done();
}
