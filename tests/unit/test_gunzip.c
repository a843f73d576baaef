/*
 * The destination's gunzip layer (handlers/destination/gunzip.c): good
 * streams at every input chunking, several members, zero padding, and the
 * damage libarchive's gzip filter lets through: a wrong CRC-32 or length,
 * a cut at every byte, data after the end.  Input that is not gzip passes
 * through unchanged.
 */
#include "autoconf.h"

#include "gunzip.h"
#include "tap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct src {
	const unsigned char *data;
	size_t len, off, chunk;
	size_t fail_at;          /* pull returns -1 at this offset (SIZE_MAX: never) */
};

static ssize_t
pull(void *ctx, const void **buf)
{
	struct src *s = ctx;
	if (s->off >= s->fail_at)
		return -1;
	size_t n = s->len - s->off;
	if (n > s->chunk)
		n = s->chunk;
	*buf = s->data + s->off;
	s->off += n;
	return (ssize_t)n;
}

/* gzip of data[0..len) into a new buffer; *outlen its size. */
static unsigned char *
gzip_of(const unsigned char *data, size_t len, size_t *outlen)
{
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	size_t cap = deflateBound(&zs, (uLong)len) + 64;
	unsigned char *out = xmalloc(cap);
	zs.next_in = (unsigned char *)(uintptr_t)data;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
		abort();
	*outlen = cap - zs.avail_out;
	deflateEnd(&zs);
	return out;
}

struct outcome {
	ssize_t rc;              /* the last read: 0 clean end, -1 error */
	char error[160];
	unsigned char *data;
	size_t len;
};

static void
decode(const unsigned char *in, size_t len, size_t chunk, size_t fail_at, struct outcome *o)
{
	struct src s = { in, len, 0, chunk, fail_at };
	struct rx_gunzip g;
	rx_gunzip_init(&g, pull, &s);
	memset(o, 0, sizeof *o);
	size_t cap = 0;
	for (int guard = 0; guard < 1000000; guard++) {
		const void *p;
		ssize_t n = rx_gunzip_read(&g, &p);
		if (n <= 0) {
			o->rc = n;
			break;
		}
		if (o->len + (size_t)n + 1 > cap) {
			/* Doubling: a realloc per 1-byte read is quadratic under ASan. */
			while (o->len + (size_t)n + 1 > cap)
				cap = cap ? 2 * cap : 65536;
			o->data = xrealloc(o->data, cap);
		}
		memcpy(o->data + o->len, p, (size_t)n);
		o->len += (size_t)n;
	}
	memcpy(o->error, g.error, sizeof o->error);
	rx_gunzip_free(&g);
}

static bool
same(const struct outcome *o, const unsigned char *want, size_t len)
{
	return o->rc == 0 && o->len == len && (len == 0 || memcmp(o->data, want, len) == 0);
}

int
main(void)
{
	size_t plain_len = 300000;
	unsigned char *plain = xmalloc(plain_len);
	uint32_t x = 12345;
	for (size_t i = 0; i < plain_len; i++) {
		x = x * 1103515245u + 12345u;
		plain[i] = i % 3 ? (unsigned char)(x >> 16) : 'a';
	}
	size_t gzlen;
	unsigned char *gz = gzip_of(plain, plain_len, &gzlen);
	struct outcome o;

	static const size_t chunks[] = { 1, 2, 7, 4096, 1 << 20 };
	for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
		decode(gz, gzlen, chunks[i], SIZE_MAX, &o);
		ok(same(&o, plain, plain_len), "a good gzip stream decodes whole in %zu-byte reads",
		    chunks[i]);
		free(o.data);
	}

	/* Two members and zero padding, as gzip(1) reads them. */
	size_t twolen = 2 * gzlen + 1024;
	unsigned char *two = xcalloc(1, twolen);
	memcpy(two, gz, gzlen);
	memcpy(two + gzlen, gz, gzlen);
	unsigned char *both = xmalloc(2 * plain_len);
	memcpy(both, plain, plain_len);
	memcpy(both + plain_len, plain, plain_len);
	decode(two, twolen, 4096, SIZE_MAX, &o);
	ok(same(&o, both, 2 * plain_len), "two members and zero padding decode whole");
	free(o.data);
	two[twolen - 1] = 'x';
	decode(two, twolen, 4096, SIZE_MAX, &o);
	is_int((int)o.rc, -1, "data after the zero padding is an error");
	has_str(o.error, "zero padding", "... saying so");
	free(o.data);

	/* What libarchive's gzip filter accepts. */
	unsigned char *bad = xmalloc(gzlen + 16);
	memcpy(bad, gz, gzlen);
	bad[gzlen - 8] ^= 0x01;
	decode(bad, gzlen, 4096, SIZE_MAX, &o);
	is_int((int)o.rc, -1, "a wrong CRC-32 is an error");
	has_str(o.error, "incorrect data check", "... zlib's words for it");
	free(o.data);
	memcpy(bad, gz, gzlen);
	bad[gzlen - 1] ^= 0x01;
	decode(bad, gzlen, 4096, SIZE_MAX, &o);
	is_int((int)o.rc, -1, "a wrong length (ISIZE) is an error");
	has_str(o.error, "incorrect length check", "... zlib's words for it");
	free(o.data);
	memcpy(bad, gz, gzlen);
	memcpy(bad + gzlen, "garbage!", 8);
	decode(bad, gzlen + 8, 4096, SIZE_MAX, &o);
	is_int((int)o.rc, -1, "non-gzip data after the stream is an error");
	has_str(o.error, "damaged", "... the gzip data is damaged");
	free(o.data);

	/* A cut anywhere is never a clean end. */
	int clean_cuts = 0;
	for (size_t cut = 1; cut < gzlen; cut += cut < 64 ? 1 : 997) {
		decode(gz, cut, 4096, SIZE_MAX, &o);
		if (o.rc == 0 || o.error[0] == '\0')
			clean_cuts++;
		free(o.data);
	}
	decode(gz, gzlen - 1, 4096, SIZE_MAX, &o);
	if (o.rc == 0)
		clean_cuts++;
	free(o.data);
	is_int(clean_cuts, 0, "a stream cut at any byte ends in an error");
	decode(gz, gzlen / 2, 4096, SIZE_MAX, &o);
	has_str(o.error, "cut short", "... 'cut short' when it ends inside the deflate data");
	free(o.data);

	/* Not gzip: passed through unchanged; nothing in, nothing out. */
	static const unsigned char zstd_magic[] = { 0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3 };
	decode(zstd_magic, sizeof zstd_magic, 3, SIZE_MAX, &o);
	ok(same(&o, zstd_magic, sizeof zstd_magic), "input that is not gzip passes through");
	free(o.data);
	decode(gz, 0, 4096, SIZE_MAX, &o);
	ok(o.rc == 0 && o.len == 0, "empty input: a clean, empty end");
	free(o.data);

	/* The input failing is reported as such, not as damage. */
	decode(gz, gzlen, 4096, 8192, &o);
	ok(o.rc == -1 && o.error[0] == '\0', "a failed pull is -1 with no gzip error");
	free(o.data);

	free(bad);
	free(both);
	free(two);
	free(gz);
	free(plain);
	return tap_done();
}
