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

struct wx_compressor *
wx_compressor_new(enum wx_compress_format format, int level, int threads,
    wx_compress_sink sink, void *ctx, char *err, size_t errsize)
{
	struct wx_compressor *c = xcalloc(1, sizeof *c);
	c->format = format;
	switch (format) {
	case WX_COMPRESS_GZIP: {
		struct wx_pgzip_opts o = { .level = level, .threads = threads };
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
