/* The compressor interface and its gzip implementation: round trips, errors. */
#include "autoconf.h"

#include "compress.h"
#include "tap.h"
#include "util.h"

#include <stdlib.h>
#include <zlib.h>

struct collect {
	unsigned char *data;
	size_t len, cap;
	int calls;
	int fail_after;   /* fail on this call number (0 = never) */
};

static int
collect_sink(void *ctx, const void *buf, size_t len)
{
	struct collect *c = ctx;
	if (c->fail_after && ++c->calls >= c->fail_after)
		return -1;
	if (!c->fail_after)
		c->calls++;
	if (c->len + len > c->cap) {
		c->cap = (c->len + len) * 2;
		c->data = xrealloc(c->data, c->cap);
	}
	memcpy(c->data + c->len, buf, len);
	c->len += len;
	return 0;
}

/* gunzip of in; NULL when it is not one valid gzip member. */
static unsigned char *
gunzip(const unsigned char *in, size_t len, size_t *outlen)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 15 + 16) != Z_OK)
		return NULL;
	size_t cap = len * 4 + 1024, olen = 0;
	unsigned char *out = xmalloc(cap);
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)len;
	int rc;
	do {
		if (cap - olen < 65536)
			out = xrealloc(out, cap *= 2);
		z.next_out = out + olen;
		z.avail_out = (uInt)(cap - olen);
		rc = inflate(&z, Z_NO_FLUSH);
		olen = cap - z.avail_out;
	} while (rc == Z_OK);
	bool good = rc == Z_STREAM_END && z.avail_in == 0;
	inflateEnd(&z);
	if (!good) {
		free(out);
		return NULL;
	}
	*outlen = olen;
	return out;
}

static void
round_trip(int level, size_t size)
{
	unsigned char *in = xmalloc(size ? size : 1);
	srand(level * 7 + 1);
	for (size_t i = 0; i < size; i++)  /* half random, half zeros */
		in[i] = i % 65536 < 32768 ? (unsigned char)rand() : 0;
	struct collect c = { 0 };
	char err[256];
	struct wx_compressor *z = wx_compressor_new(WX_CODEC_GZIP, level, 0, collect_sink, &c, err,
	    sizeof err);
	ok(z != NULL, "level %d: created (%s)", level, z ? "" : err);
	if (z == NULL)
		return;
	/* Odd-sized writes, as libarchive makes them. */
	size_t off = 0, step = 1;
	int rc = 0;
	while (off < size && rc == 0) {
		size_t n = step < size - off ? step : size - off;
		rc = wx_compressor_write(z, in + off, n);
		off += n;
		step = step * 3 + 511;
	}
	ok(rc == 0 && wx_compressor_finish(z) == 0, "level %d, %zu bytes: written and finished",
	    level, size);
	is_int((long long)z->bytes_in, (long long)size, "level %d: bytes_in counts the input", level);
	is_int((long long)z->bytes_out, (long long)c.len, "level %d: bytes_out counts the output",
	    level);
	ok(c.len >= 2 && c.data[0] == 0x1f && c.data[1] == 0x8b, "level %d: gzip magic", level);
	size_t olen = 0;
	unsigned char *back = gunzip(c.data, c.len, &olen);
	ok(back != NULL && olen == size && memcmp(back, in, size) == 0,
	    "level %d: one gzip member that inflates to the input", level);
	if (size > 1024 * 1024 && level == 0)
		ok(c.len > size, "level 0 stores (output larger than input)");
	if (size > 1024 * 1024 && level == 1)
		ok(c.len < size * 3 / 4, "level 1 compresses the zero half");
	wx_compressor_free(z);
	free(back);
	free(c.data);
	free(in);
}

int
main(void)
{
	round_trip(1, 0);
	round_trip(0, 3 * 1024 * 1024 + 17);
	round_trip(1, 3 * 1024 * 1024 + 17);
	round_trip(9, 300 * 1000);

	char err[256] = "";
	ok(wx_compressor_new(WX_CODEC_GZIP, 10, 0, collect_sink, NULL, err, sizeof err) == NULL,
	    "level 10 is refused");
	has_str(err, "0..9", "... saying the range");
	ok(wx_compressor_new((enum wx_codec)42, 1, 0, collect_sink, NULL, err, sizeof err) == NULL,
	    "an unknown codec is refused");
	is_str(wx_codec_name(WX_CODEC_GZIP), "gzip", "codec name");

	/* A sink that stops: the error reaches the writer and sticks. */
	struct collect c = { .fail_after = 1 };
	struct wx_compressor *z = wx_compressor_new(WX_CODEC_GZIP, 0, 0, collect_sink, &c, err,
	    sizeof err);
	unsigned char *big = xcalloc(1, 4 * 1024 * 1024);
	is_int(wx_compressor_write(z, big, 4 * 1024 * 1024), -1, "a failing sink fails the write");
	has_str(wx_compressor_error(z), "stopped", "... with a reason");
	is_int(wx_compressor_write(z, big, 10), -1, "later writes fail too");
	is_int(wx_compressor_finish(z), -1, "and finish fails");
	wx_compressor_free(z);
	wx_compressor_free(NULL);
	free(big);
	free(c.data);
	return tap_done();
}
