/*
 * gzip through one zlib deflate stream on the calling thread.  Output is
 * collected in a 256 KiB buffer and handed to the sink when it is full and
 * at the end, so the sink sees few, large calls.
 */
#include "autoconf.h"

#include "compress.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#define GZ_OUT_SIZE (256 * 1024)

struct gzip {
	struct wx_compressor base;   /* first: the generic calls cast to it */
	z_stream z;
	bool z_live;
	unsigned char out[GZ_OUT_SIZE];
};

static int
flush_out(struct gzip *g)
{
	size_t n = GZ_OUT_SIZE - g->z.avail_out;
	if (n > 0) {
		if (g->base.sink(g->base.sink_ctx, g->out, n) < 0) {
			snprintf(g->base.error, sizeof g->base.error, "the receiver of the "
			    "compressed stream stopped");
			return -1;
		}
		g->base.bytes_out += n;
	}
	g->z.next_out = g->out;
	g->z.avail_out = GZ_OUT_SIZE;
	return 0;
}

/* Runs deflate with flush until the input is consumed (and, for Z_FINISH, the end). */
static int
run(struct gzip *g, int flush)
{
	for (;;) {
		int rc = deflate(&g->z, flush);
		if (rc == Z_STREAM_ERROR) {
			snprintf(g->base.error, sizeof g->base.error, "zlib deflate failed: %s",
			    g->z.msg ? g->z.msg : "stream error");
			return -1;
		}
		if (g->z.avail_out == 0) {
			if (flush_out(g) < 0)
				return -1;
			continue;
		}
		if (flush == Z_FINISH ? rc == Z_STREAM_END : g->z.avail_in == 0)
			return 0;
		if (rc == Z_BUF_ERROR && g->z.avail_in == 0 && flush != Z_FINISH)
			return 0;
	}
}

static int
gzip_write(struct wx_compressor *c, const void *buf, size_t len)
{
	struct gzip *g = (struct gzip *)c;
	const unsigned char *p = buf;
	while (len > 0) {
		uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;
		g->z.next_in = (Bytef *)p;  /* zlib does not write through next_in */
		g->z.avail_in = n;
		if (run(g, Z_NO_FLUSH) < 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

static int
gzip_finish(struct wx_compressor *c)
{
	struct gzip *g = (struct gzip *)c;
	g->z.next_in = NULL;
	g->z.avail_in = 0;
	if (run(g, Z_FINISH) < 0)
		return -1;
	return flush_out(g);
}

static void
gzip_destroy(struct wx_compressor *c)
{
	struct gzip *g = (struct gzip *)c;
	if (g->z_live)
		deflateEnd(&g->z);
	free(g);
}

static const struct wx_compressor_ops gzip_ops = {
	.write = gzip_write,
	.finish = gzip_finish,
	.destroy = gzip_destroy,
};

struct wx_compressor *
wx_gzip_new(int level, char *err, size_t errsize)
{
	if (level < 0 || level > 9) {
		snprintf(err, errsize, "gzip level %d is out of range 0..9", level);
		return NULL;
	}
	struct gzip *g = xcalloc(1, sizeof *g);
	g->base.ops = &gzip_ops;
	/* windowBits 15 + 16: a gzip wrapper (RFC 1952), not zlib's own. */
	int rc = deflateInit2(&g->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
	if (rc != Z_OK) {
		snprintf(err, errsize, "zlib deflateInit2 failed (%d)", rc);
		free(g);
		return NULL;
	}
	g->z_live = true;
	g->z.next_out = g->out;
	g->z.avail_out = GZ_OUT_SIZE;
	return &g->base;
}
