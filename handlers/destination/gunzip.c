#include "autoconf.h"

#include "gunzip.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
rx_gunzip_init(struct rx_gunzip *g, rx_pull_fn pull, void *ctx)
{
	memset(g, 0, sizeof *g);
	g->pull = pull;
	g->ctx = ctx;
	g->mode = RX_GZ_UNDECIDED;
}

void
rx_gunzip_free(struct rx_gunzip *g)
{
	if (g->zs_ready)
		inflateEnd(&g->zs);
	g->zs_ready = false;
	free(g->out);
	g->out = NULL;
}

static ssize_t
damaged(struct rx_gunzip *g, const char *what)
{
	snprintf(g->error, sizeof g->error, "%s", what);
	return -1;
}

/* Refills g->in when it is empty; 0, or -1 when pull failed. */
static int
refill(struct rx_gunzip *g)
{
	if (g->inlen > 0 || g->eof)
		return 0;
	const void *p;
	ssize_t n = g->pull(g->ctx, &p);
	if (n < 0)
		return -1;
	if (n == 0)
		g->eof = true;
	g->in = p;
	g->inlen = (size_t)n;
	return 0;
}

/* Between members: skips zero padding; true when a new member begins. */
static bool
next_member_begins(struct rx_gunzip *g)
{
	while (g->inlen > 0 && g->in[0] == 0) {
		g->in++;
		g->inlen--;
		g->padding = true;
	}
	return g->inlen > 0;
}

static ssize_t
inflate_read(struct rx_gunzip *g, const void **buf)
{
	for (;;) {
		if (refill(g) < 0)
			return -1;
		if (!g->in_member) {
			if (!next_member_begins(g)) {
				if (g->eof)
					return 0;
				continue;
			}
			if (g->padding)
				return damaged(g, "data follows the zero padding after the gzip stream");
			if (inflateReset(&g->zs) != Z_OK)
				return damaged(g, "the gzip decoder could not be reset");
			g->in_member = true;
		}
		g->zs.next_in = (unsigned char *)(uintptr_t)g->in;
		g->zs.avail_in = (uInt)(g->inlen > UINT32_MAX ? UINT32_MAX : g->inlen);
		g->zs.next_out = g->out;
		g->zs.avail_out = RX_GUNZIP_OUT;
		int r = inflate(&g->zs, Z_NO_FLUSH);
		size_t used = (size_t)(g->zs.next_in - g->in);
		g->in += used;
		g->inlen -= used;
		size_t made = RX_GUNZIP_OUT - g->zs.avail_out;
		if (r == Z_STREAM_END) {
			g->in_member = false; /* CRC-32 and length checked by zlib */
			g->members++;
		} else if (r == Z_DATA_ERROR) {
			char why[128];
			snprintf(why, sizeof why, "the gzip data is damaged (%s)",
			    g->zs.msg ? g->zs.msg : "invalid data");
			return damaged(g, why);
		} else if (r == Z_MEM_ERROR) {
			return damaged(g, "out of memory in the gzip decoder");
		} else if (r != Z_OK && r != Z_BUF_ERROR) {
			return damaged(g, "the gzip decoder failed");
		}
		if (made > 0) {
			*buf = g->out;
			return (ssize_t)made;
		}
		if (g->in_member && g->inlen == 0 && g->eof)
			return damaged(g, "the gzip stream is cut short");
	}
}

ssize_t
rx_gunzip_read(struct rx_gunzip *g, const void **buf)
{
	if (g->error[0] != '\0')
		return -1;
	if (g->mode == RX_GZ_UNDECIDED) {
		if (refill(g) < 0)
			return -1;
		if (g->inlen > 0 && g->in[0] == 0x1f) {
			g->out = xmalloc(RX_GUNZIP_OUT);
			/* 16 + MAX_WBITS: gzip only, the trailer checked. */
			if (inflateInit2(&g->zs, 16 + MAX_WBITS) != Z_OK)
				return damaged(g, "the gzip decoder could not be set up");
			g->zs_ready = true;
			g->mode = RX_GZ_INFLATE;
		} else {
			g->mode = RX_GZ_PASS;
		}
	}
	if (g->mode == RX_GZ_INFLATE)
		return inflate_read(g, buf);
	if (refill(g) < 0)
		return -1;
	ssize_t n = (ssize_t)g->inlen;
	*buf = g->in;
	g->inlen = 0;
	return n;
}
