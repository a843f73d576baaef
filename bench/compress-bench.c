/*
 * compress-bench: speed, CPU and ratio of the stream compressors on one
 * deterministic input, against single-thread zlib (what the Go Wings peers
 * do: pgzip with one 1 MiB block in flight) and pigz as the reference.
 * A micro-benchmark, not a test: numbers depend on the machine and its load.
 *
 *   compress-bench [--size BYTES] [--runs N] [--dir DIR] [--only SUBSTRING] [--keep]
 *
 * The input (default 1 GiB) is written once to DIR/compress-bench.data:
 * alternating 4 MiB runs of incompressible bytes (xorshift, fixed seed) and
 * of text-like bytes (words, numbers, newlines from a fixed seed), half and
 * half.  Every variant runs in a child process that reads the file (page
 * cache) in 128 KiB reads and writes the compressed stream into a pipe the
 * parent counts; pigz/gzip read the same file the same way.  Reported per
 * variant: median wall time of the runs, MiB/s of input, CPU seconds
 * (user+sys of the child, all threads), output/input ratio, peak RSS.
 */
#include "autoconf.h"

#include "pgzip.h"
#include "datagen.h"
#include "util.h"
#include "zstd_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define SEGMENT ((size_t)4 * 1024 * 1024)
#define READ_SIZE ((size_t)128 * 1024)
#define MAX_RUNS 9

enum kind { K_ZLIB, K_PGZIP, K_ZSTD, K_EXEC };

struct variant {
	char name[64];
	enum kind kind;
	int level, threads;
	size_t block;
	enum wx_pgzip_framing framing;
	int max_blocks;
	const char *argv[6];	/* K_EXEC */
	/* results */
	int nruns;
	double wall[MAX_RUNS], cpu[MAX_RUNS], load[MAX_RUNS];
	long rss_kib;
	uint64_t out;
	bool failed;
};

static int
generate(const char *path, uint64_t size)
{
	struct stat st;
	if (stat(path, &st) == 0 && (uint64_t)st.st_size == size) {
		fprintf(stderr, "using existing %s\n", path);
		return 0;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "compress-bench: cannot create %s: %s\n", path, strerror(errno));
		return -1;
	}
	unsigned char *buf = xmalloc(SEGMENT);
	uint64_t rs = 0x9e3779b97f4a7c15ULL, ts = 0x2545f4914f6cdd1dULL;
	uint64_t done = 0;
	for (uint64_t seg = 0; done < size; seg++) {
		size_t n = size - done < SEGMENT ? (size_t)(size - done) : SEGMENT;
		if (seg % 2 == 0)
			wx_bench_fill_random(buf, n, &rs);
		else
			wx_bench_fill_text(buf, n, &ts);
		if (wx_write_all(fd, buf, n) < 0) {
			fprintf(stderr, "compress-bench: writing %s: %s\n", path, strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		done += n;
	}
	free(buf);
	return close(fd);
}

static int
sink_fd(void *ctx, const void *buf, size_t len)
{
	return wx_write_all(*(int *)ctx, buf, len);
}

/* Single-thread zlib gzip, the Go peers' way (one deflate stream, one core). */
static int
run_zlib(int in, int out, int level)
{
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	unsigned char *ibuf = xmalloc(READ_SIZE), *obuf = xmalloc(READ_SIZE);
	int rc = 0, flush = Z_NO_FLUSH;
	while (rc == 0 && flush != Z_FINISH) {
		ssize_t n = read(in, ibuf, READ_SIZE);
		if (n < 0) {
			rc = -1;
			break;
		}
		flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
		zs.next_in = ibuf;
		zs.avail_in = (uInt)n;
		do {
			zs.next_out = obuf;
			zs.avail_out = (uInt)READ_SIZE;
			if (deflate(&zs, flush) == Z_STREAM_ERROR ||
			    wx_write_all(out, obuf, READ_SIZE - zs.avail_out) < 0) {
				rc = -1;
				break;
			}
		} while (zs.avail_out == 0);
	}
	deflateEnd(&zs);
	free(ibuf);
	free(obuf);
	return rc;
}

static int
run_lib(const struct variant *v, int in, int out)
{
	char err[200];
	struct wx_pgzip *gz = NULL;
	struct wx_zstd *zs = NULL;
	if (v->kind == K_PGZIP) {
		struct wx_pgzip_opts o = { .level = v->level, .threads = v->threads,
			.block_size = v->block, .framing = v->framing, .max_blocks = v->max_blocks };
		gz = wx_pgzip_new(&o, sink_fd, &out, err, sizeof err);
	} else {
		struct wx_zstd_opts o = { .level = v->level, .threads = v->threads };
		zs = wx_zstd_new(&o, sink_fd, &out, err, sizeof err);
	}
	if (gz == NULL && zs == NULL) {
		fprintf(stderr, "%s: %s\n", v->name, err);
		return -1;
	}
	unsigned char *buf = xmalloc(READ_SIZE);
	int rc = 0;
	for (;;) {
		ssize_t n = read(in, buf, READ_SIZE);
		if (n <= 0) {
			rc = n < 0 ? -1 : 0;
			break;
		}
		if ((gz ? wx_pgzip_write(gz, buf, (size_t)n) : wx_zstd_write(zs, buf, (size_t)n)) < 0) {
			rc = -1;
			break;
		}
	}
	if (rc == 0)
		rc = gz ? wx_pgzip_finish(gz) : wx_zstd_finish(zs);
	if (rc != 0)
		fprintf(stderr, "%s: %s\n", v->name, gz ? wx_pgzip_error(gz) : wx_zstd_error(zs));
	wx_pgzip_free(gz);
	wx_zstd_free(zs);
	free(buf);
	return rc;
}

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
loadavg1(void)
{
	char buf[64] = "";
	int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		buf[n > 0 ? n : 0] = '\0';
		close(fd);
	}
	return strtod(buf, NULL);
}

/* One run of v in a child; fills in the run's wall, CPU, RSS and out size. */
static int
run_variant(struct variant *v, const char *data)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	double load = loadavg1();
	double t0 = now_s();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		int in = open(data, O_RDONLY | O_CLOEXEC);
		if (in < 0)
			_exit(3);
		if (v->kind == K_EXEC) {
			if (dup2(in, 0) < 0 || dup2(p[1], 1) < 0)
				_exit(3);
			execvp(v->argv[0], (char *const *)v->argv);
			_exit(127);
		}
		int rc = v->kind == K_ZLIB ? run_zlib(in, p[1], v->level) : run_lib(v, in, p[1]);
		_exit(rc == 0 ? 0 : 1);
	}
	close(p[1]);
	unsigned char *buf = xmalloc(1 << 20);
	uint64_t out = 0;
	ssize_t n;
	while ((n = read(p[0], buf, 1 << 20)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		out += (uint64_t)n;
	}
	free(buf);
	close(p[0]);
	int status;
	struct rusage ru;
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR)
			return -1;
	double t1 = now_s();
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s: child failed (status %d)\n", v->name, status);
		v->failed = true;
		return -1;
	}
	int r = v->nruns++;
	v->wall[r] = t1 - t0;
	v->cpu[r] = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	v->load[r] = load;
	if (ru.ru_maxrss > v->rss_kib)
		v->rss_kib = ru.ru_maxrss;
	v->out = out;
	return 0;
}

static int
by_wall(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Index of the run with the median wall time. */
static int
median_run(const struct variant *v)
{
	double sorted[MAX_RUNS];
	memcpy(sorted, v->wall, sizeof(double) * (size_t)v->nruns);
	qsort(sorted, (size_t)v->nruns, sizeof(double), by_wall);
	double m = sorted[v->nruns / 2];
	for (int i = 0; i < v->nruns; i++)
		if (v->wall[i] == m)
			return i;
	return 0;
}

static int nvariants;
static struct variant variants[40];

static struct variant *
add(enum kind k, int level, int threads, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static struct variant *
add(enum kind k, int level, int threads, const char *fmt, ...)
{
	struct variant *v = &variants[nvariants++];
	memset(v, 0, sizeof *v);
	v->kind = k;
	v->level = level;
	v->threads = threads;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->name, sizeof v->name, fmt, ap);
	va_end(ap);
	return v;
}

static int
usage(void)
{
	fprintf(stderr, "usage: compress-bench [--size BYTES] [--runs N] [--dir DIR] "
	    "[--only SUBSTRING] [--keep]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	int64_t size = (int64_t)1 << 30, runs = 3;
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", *only = NULL;
	bool keep = false;
	for (int i = 1; i < argc; i++) {
		const char *bad = NULL;
		if (strcmp(argv[i], "--keep") == 0) {
			keep = true;
			continue;
		}
		if (i + 1 >= argc)
			return usage();
		if (strcmp(argv[i], "--size") == 0)
			bad = wx_parse_size(argv[++i], &size);
		else if (strcmp(argv[i], "--runs") == 0)
			bad = wx_parse_i64(argv[++i], 1, MAX_RUNS, &runs);
		else if (strcmp(argv[i], "--dir") == 0)
			dir = argv[++i];
		else if (strcmp(argv[i], "--only") == 0)
			only = argv[++i];
		else
			return usage();
		if (bad) {
			fprintf(stderr, "compress-bench: %s: %s\n", argv[i], bad);
			return 2;
		}
	}
	if (size < 1) {
		fprintf(stderr, "compress-bench: --size must be at least 1 byte\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	int ncpu = wx_compress_cpus();
	static char pflag[16];
	snprintf(pflag, sizeof pflag, "-p%d", ncpu);
	int tl[3] = { 1, 2, ncpu }, ntl = ncpu > 2 ? 3 : ncpu == 2 ? 2 : 1;
	struct variant *v;

	add(K_ZLIB, 1, 1, "zlib gzip -1, 1 thread (Go peers)");
	for (int i = 0; i < ntl; i++)
		add(K_PGZIP, 1, tl[i], "pgzip -1, %d thread%s", tl[i], tl[i] > 1 ? "s" : "");
	add(K_PGZIP, 1, ncpu, "pgzip -1, %d thr, 128 KiB blocks", ncpu)->block = 128 * 1024;
	add(K_PGZIP, 1, ncpu, "pgzip -1, %d thr, 1 MiB blocks", ncpu)->block = 1024 * 1024;
	add(K_PGZIP, 1, ncpu, "pgzip -1, %d thr, %d in flight", ncpu, 2 * ncpu)->max_blocks = 2 * ncpu;
	add(K_PGZIP, 1, ncpu, "pgzip -1, %d thr, member/block", ncpu)->framing =
	    WX_PGZIP_MEMBER_PER_BLOCK;
	for (int i = 0; i < ntl; i++)
		add(K_PGZIP, 1, tl[i], "libdeflate -1 members, %d thread%s", tl[i], tl[i] > 1 ? "s" : "")->framing =
		    WX_PGZIP_LIBDEFLATE_MEMBERS;
	add(K_PGZIP, 6, ncpu, "libdeflate -6 members, %d thr", ncpu)->framing = WX_PGZIP_LIBDEFLATE_MEMBERS;
	add(K_PGZIP, 0, ncpu, "pgzip -0 (stored), %d thr", ncpu);
	add(K_PGZIP, 6, ncpu, "pgzip -6, %d thr", ncpu);
	for (int lv = 1; lv <= 3; lv += 2) {
		add(K_ZSTD, lv, 1, "zstd -%d, 1 worker", lv);
		if (ncpu > 1)
			add(K_ZSTD, lv, ncpu, "zstd -%d, %d workers", lv, ncpu);
	}
	add(K_ZSTD, -1, ncpu, "zstd --fast=1, %d workers", ncpu);
	v = add(K_EXEC, 1, ncpu, "pigz -1 -p%d (reference)", ncpu);
	v->argv[0] = "pigz", v->argv[1] = "-1", v->argv[2] = pflag, v->argv[3] = "-c";
	v = add(K_EXEC, 1, 1, "pigz -1 -p1");
	v->argv[0] = "pigz", v->argv[1] = "-1", v->argv[2] = "-p1", v->argv[3] = "-c";
	v = add(K_EXEC, 1, 1, "gzip -1 (GNU)");
	v->argv[0] = "gzip", v->argv[1] = "-1", v->argv[2] = "-c";
	v = add(K_EXEC, 1, 1, "cat (read+pipe only)");
	v->argv[0] = "cat";

	char *data = xasprintf("%s/compress-bench.data", dir);
	fprintf(stderr, "generating %lld bytes in %s\n", (long long)size, data);
	if (generate(data, (uint64_t)size) < 0)
		return 1;

	char host[256] = "?";
	gethostname(host, sizeof host);
	time_t now = time(NULL);
	char date[32];
	strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
	printf("# compress-bench %s on %s: %d CPUs usable, input %.0f MiB (half incompressible, half text), %lld run(s), median shown\n",
	    date, host, ncpu, (double)size / 1048576.0, (long long)runs);
	printf("# load average (1 min) at start: %.2f\n", loadavg1());

	for (int r = 0; r < runs; r++)
		for (int i = 0; i < nvariants; i++) {
			if (only && strstr(variants[i].name, only) == NULL)
				continue;
			if (variants[i].failed)
				continue;
			fprintf(stderr, "run %d/%lld: %s\n", r + 1, (long long)runs, variants[i].name);
			run_variant(&variants[i], data);
		}

	printf("| variant | wall s | MiB/s | CPU s | CPU/wall | output %% | peak RSS MiB | load |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < nvariants; i++) {
		v = &variants[i];
		if (v->nruns == 0) {
			if (v->failed)
				printf("| %s | failed | | | | | | |\n", v->name);
			continue;
		}
		int m = median_run(v);
		printf("| %s | %.2f | %.0f | %.2f | %.2f | %.2f | %.1f | %.2f |\n", v->name, v->wall[m],
		    (double)size / 1048576.0 / v->wall[m], v->cpu[m], v->cpu[m] / v->wall[m],
		    100.0 * (double)v->out / (double)size, (double)v->rss_kib / 1024.0, v->load[m]);
	}
	printf("# load average (1 min) at end: %.2f\n", loadavg1());
	if (!keep)
		unlink(data);
	free(data);
	return 0;
}
