#include "autoconf.h"

#include "compress.h"
#include "pgzip.h"
#include "util.h"
#include "zstd_stream.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct wx_compressor {
	enum wx_compress_format format;
	struct wx_pgzip *gz;
	struct wx_zstd *zs;
	int threads;
};

int
wx_compress_cpus(void)
{
	long n = 0;
#ifdef CPU_COUNT
	cpu_set_t set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof set, &set) == 0)
		n = CPU_COUNT(&set);
#endif
	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > WX_COMPRESS_THREADS_MAX)
		n = WX_COMPRESS_THREADS_MAX;
	return (int)n;
}

int
wx_compress_threads(enum wx_compress_format format, int level, int requested)
{
	int cpus = wx_compress_cpus();
	int t = requested;
	if (t <= 0) {
		t = cpus / 2;
		if (t < 2)
			t = 2;
		if (t > WX_COMPRESS_THREADS_DEFAULT_MAX)
			t = WX_COMPRESS_THREADS_DEFAULT_MAX;
		if (t > cpus)
			t = cpus;
	}
	if (t > WX_COMPRESS_THREADS_MAX)
		t = WX_COMPRESS_THREADS_MAX;
	size_t fixed, per;
	if (format == WX_COMPRESS_ZSTD) {
		/* Measured peak RSS of the compressor with 512 KiB jobs
		 * (bench/RESULTS.md): under 4 MiB of buffers plus 0.75 MiB per
		 * worker at level 1, 1.2 MiB at level 3; rounded up. */
		fixed = (size_t)4 << 20;
		per = (size_t)(level >= 3 ? 3 : 2) << 19;
	} else {
		fixed = 0;
		per = WX_PGZIP_THREAD_STATE + 2 * WX_PGZIP_BLOCK_MEMORY(WX_PGZIP_BLOCK_DEFAULT);
	}
	int fit = (int)((WX_COMPRESS_MEMORY_BUDGET - fixed) / per);
	if (t > fit)
		t = fit;
	return t < 1 ? 1 : t;
}

struct wx_compressor *
wx_compressor_new(enum wx_compress_format format, int level, int threads,
    wx_compress_sink sink, void *ctx, char *err, size_t errsize)
{
	if (threads < 0) {
		snprintf(err, errsize, "thread count %d is negative", threads);
		return NULL;
	}
	threads = wx_compress_threads(format, level, threads);
	struct wx_compressor *c = xcalloc(1, sizeof *c);
	c->format = format;
	c->threads = threads;
	switch (format) {
	case WX_COMPRESS_GZIP: {
		/* libdeflate, a member per block: half of zlib's CPU (pgzip.h). */
		struct wx_pgzip_opts o = { .level = level, .threads = threads,
			.framing = WX_PGZIP_LIBDEFLATE_MEMBERS };
		c->gz = wx_pgzip_new(&o, sink, ctx, err, errsize);
		if (c->gz != NULL)
			return c;
		break;
	}
	case WX_COMPRESS_ZSTD: {
		struct wx_zstd_opts o = { .level = level, .threads = threads };
		c->zs = wx_zstd_new(&o, sink, ctx, err, errsize);
		if (c->zs != NULL)
			return c;
		break;
	}
	default:
		snprintf(err, errsize, "unknown compression format %d", (int)format);
		break;
	}
	free(c);
	return NULL;
}

int
wx_compressor_write(struct wx_compressor *c, const void *data, size_t len)
{
	return c->gz ? wx_pgzip_write(c->gz, data, len) : wx_zstd_write(c->zs, data, len);
}

int
wx_compressor_finish(struct wx_compressor *c)
{
	return c->gz ? wx_pgzip_finish(c->gz) : wx_zstd_finish(c->zs);
}

int
wx_compressor_finish_some(struct wx_compressor *c)
{
	return c->gz ? wx_pgzip_finish_some(c->gz) : wx_zstd_finish_some(c->zs);
}

const char *
wx_compressor_error(const struct wx_compressor *c)
{
	return c->gz ? wx_pgzip_error(c->gz) : wx_zstd_error(c->zs);
}

void
wx_compressor_stats(const struct wx_compressor *c, uint64_t *in, uint64_t *out)
{
	if (c->gz)
		wx_pgzip_stats(c->gz, in, out);
	else
		wx_zstd_stats(c->zs, in, out);
}

int
wx_compressor_threads(const struct wx_compressor *c)
{
	return c->threads;
}

void
wx_compressor_free(struct wx_compressor *c)
{
	if (c == NULL)
		return;
	wx_pgzip_free(c->gz);
	wx_zstd_free(c->zs);
	free(c);
}

const char *
wx_compress_format_name(enum wx_compress_format format)
{
	switch (format) {
	case WX_COMPRESS_GZIP:
		return "gzip";
	case WX_COMPRESS_ZSTD:
		return "zstd";
	}
	return "unknown";
}
