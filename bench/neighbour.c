/*
 * neighbour: a stand-in game server for `make bench` (bench/e2e-bench
 * --only neighbour).  Every INTERVAL ms it wakes up, runs a fixed CPU work
 * unit (the "tick"), appends 4 KiB to FILE and fsyncs it, and records:
 *
 *   wake  how late it woke after its absolute deadline (CPU scheduling
 *         latency: a runnable game server waiting for a core)
 *   tick  wall time of the fixed CPU work unit (CPU share under contention)
 *   io    wall time of write(4 KiB) + fsync (what a world save or a log
 *         flush waits for when the disk is busy)
 *   ioq   the part of io spent runnable but waiting for a core (the
 *         thread's run_delay from /proc/thread-self/schedstat; the kernel
 *         counts it only with task_delayacct or schedstats on, else 0)
 *
 *   neighbour FILE [--samples N] [--interval-ms MS] [--tick-iters K] [--out RAW]
 *
 * It stops after N samples (default 1200, one minute at 50 ms) or, after
 * the sample in progress, on SIGTERM or SIGINT.  FILE is created (truncated)
 * and wraps at 16 MiB so it stays small.  RAW gets one line per sample as it
 * is taken, "phase wake_us tick_us io_us ioq_us": the phase starts at 0 and each
 * SIGUSR1 adds one (the benchmark marks "the transfer ended" with it).  On
 * stdout, over all phases, one line:
 *
 *   samples N overruns O wake P50 P99 MAX tick P50 P99 MAX io P50 P99 MAX
 *       ioq P50 P99 MAX
 *
 * (microseconds, nearest-rank percentiles; an overrun is a sample whose
 * work took longer than the interval: the next deadline is then re-anchored
 * to now + interval instead of being caught up).  A benchmark tool, not a test.
 */
#include "autoconf.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define WRAP ((off_t)16 << 20)
#define MAX_SAMPLES 1000000

static volatile sig_atomic_t stop_asked;
static volatile sig_atomic_t phase;
static volatile uint64_t tick_sink;     /* keeps the tick's work */

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		phase++;
	else
		stop_asked = 1;
}

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
usage_exit(const char *why)
{
	fprintf(stderr, "neighbour: %s\nusage: neighbour FILE [--samples N] [--interval-ms MS] "
	    "[--tick-iters K] [--out RAW]\n", why);
	exit(2);
}

static int64_t
int_arg(const char *name, const char *value, int64_t min, int64_t max)
{
	int64_t v;
	const char *why = value ? wx_parse_i64(value, min, max, &v) : "is missing";
	if (why != NULL) {
		fprintf(stderr, "neighbour: %s %s %s (%lld..%lld)\n", name, value ? value : "", why,
		    (long long)min, (long long)max);
		exit(2);
	}
	return v;
}

/* The fixed CPU work unit (its result goes to tick_sink). */
static uint64_t
tick(int64_t iters)
{
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (int64_t i = 0; i < iters; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

/* The calling thread's run-queue wait so far in ns, or 0 where unknown. */
static int64_t
run_delay_ns(void)
{
	char buf[128];
	int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	unsigned long long on_cpu, delay;
	return sscanf(buf, "%llu %llu", &on_cpu, &delay) == 2 ? (int64_t)delay : 0;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted v[0..n-1], in microseconds. */
static long long
pct_us(const int64_t *v, size_t n, int p)
{
	size_t rank = ((size_t)p * n + 99) / 100;
	if (rank == 0)
		rank = 1;
	return (long long)(v[rank - 1] / 1000);
}

static void
print_stats(const char *name, int64_t *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_i64);
	printf(" %s %lld %lld %lld", name, pct_us(v, n, 50), pct_us(v, n, 99), pct_us(v, n, 100));
}

int
main(int argc, char **argv)
{
	const char *path = NULL, *raw_path = NULL;
	int64_t samples = 1200, interval_ms = 50, tick_iters = 300000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--samples") == 0) {
			samples = int_arg(a, v, 1, MAX_SAMPLES);
			i++;
		} else if (strcmp(a, "--interval-ms") == 0) {
			interval_ms = int_arg(a, v, 1, 60000);
			i++;
		} else if (strcmp(a, "--tick-iters") == 0) {
			tick_iters = int_arg(a, v, 0, INT64_C(1000000000));
			i++;
		} else if (strcmp(a, "--out") == 0) {
			if (v == NULL)
				usage_exit("--out needs a file");
			raw_path = v;
			i++;
		} else if (a[0] == '-') {
			usage_exit("unknown option");
		} else if (path == NULL) {
			path = a;
		} else {
			usage_exit("one FILE only");
		}
	}
	if (path == NULL)
		usage_exit("FILE is missing");

	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		fprintf(stderr, "neighbour: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	FILE *raw = NULL;
	if (raw_path != NULL && ((raw = fopen(raw_path, "w")) == NULL ||
	    setvbuf(raw, NULL, _IOLBF, 0) != 0)) {
		fprintf(stderr, "neighbour: open %s: %s\n", raw_path, strerror(errno));
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGUSR1, &sa, NULL) < 0) {
		fprintf(stderr, "neighbour: sigaction: %s\n", strerror(errno));
		return 1;
	}
	int64_t *wake = calloc((size_t)samples, sizeof *wake);
	int64_t *tk = calloc((size_t)samples, sizeof *tk);
	int64_t *io = calloc((size_t)samples, sizeof *io);
	int64_t *ioq = calloc((size_t)samples, sizeof *ioq);
	int rc = 0;
	if (wake == NULL || tk == NULL || io == NULL || ioq == NULL) {
		fprintf(stderr, "neighbour: out of memory for %lld samples\n", (long long)samples);
		rc = 1;
		samples = 0;
	}

	unsigned char block[BLOCK];
	memset(block, 'w', sizeof block);
	const int64_t interval = interval_ms * 1000000;
	int64_t deadline = now_ns() + interval, overruns = 0;
	off_t off = 0;
	uint64_t sink = 0;
	size_t n = 0;
	while (rc == 0 && n < (size_t)samples && !stop_asked) {
		struct timespec ts = { .tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000 };
		int slept;
		while ((slept = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR &&
		    !stop_asked)
			;
		if (slept == EINTR)
			break;
		int64_t t0 = now_ns();
		sink += tick(tick_iters);
		int64_t q1 = run_delay_ns();
		int64_t t1 = now_ns();
		if (pwrite(fd, block, sizeof block, off) != (ssize_t)sizeof block || fsync(fd) < 0) {
			fprintf(stderr, "neighbour: write/fsync %s: %s\n", path, strerror(errno));
			rc = 1;
			break;
		}
		int64_t t2 = now_ns();
		int64_t q2 = run_delay_ns();
		off = (off + BLOCK) % WRAP;
		wake[n] = t0 - deadline;
		tk[n] = t1 - t0;
		io[n] = t2 - t1;
		ioq[n] = q2 > q1 ? q2 - q1 : 0;
		if (raw != NULL)
			fprintf(raw, "%d %lld %lld %lld %lld\n", (int)phase,
			    (long long)(wake[n] / 1000), (long long)(tk[n] / 1000),
			    (long long)(io[n] / 1000), (long long)(ioq[n] / 1000));
		n++;
		deadline += interval;
		if (deadline < t2) {
			overruns++;
			deadline = t2 + interval;
		}
	}
	close(fd);
	if (raw != NULL && (ferror(raw) | fclose(raw)) != 0) {
		fprintf(stderr, "neighbour: write %s: %s\n", raw_path, strerror(errno));
		rc = 1;
	}
	if (rc == 0 && n == 0) {
		fprintf(stderr, "neighbour: stopped before the first sample\n");
		rc = 1;
	}
	if (rc == 0) {
		printf("samples %zu overruns %lld", n, (long long)overruns);
		print_stats("wake", wake, n);
		print_stats("tick", tk, n);
		print_stats("io", io, n);
		print_stats("ioq", ioq, n);
		printf("\n");
		tick_sink = sink;
		rc = fflush(stdout) == 0 ? 0 : 1;
	}
	free(wake);
	free(tk);
	free(io);
	free(ioq);
	return rc;
}
