/*
 * libFuzzer target: the destination's gzip member/CRC checker
 * (handlers/destination/gunzip.c), which every byte a sending node uploads
 * passes through.
 *
 * Input: byte 0 picks how many bytes each pull returns (0: all at once; at
 * least 64 when the input is over 8 KiB), so member headers, trailers and
 * padding fall at every position; byte 1 bit 0
 * makes the pull fail (-1) instead of ending; the rest is the archive part.
 *
 * Oracle: a whole-buffer reference decoder written here with zlib (gzip(1)'s
 * rules as gunzip.h states them: members one after another, then only zero
 * bytes) must agree with the streaming decoder on the verdict and, on
 * success, on every output byte.  A failing pull must end in -1 with an
 * empty error unless the data was already found damaged.
 */
#include "autoconf.h"

#include "gunzip.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_CAP (4u << 20)     /* inputs that inflate to more are skipped */

struct src {
	const uint8_t *data;
	size_t len, off, chunk;
	bool fail_at_end;
	bool failed;            /* pull returned -1 */
};

static ssize_t
pull(void *ctx, const void **buf)
{
	struct src *s = ctx;
	size_t n = s->len - s->off;
	if (n == 0 && s->fail_at_end) {
		s->failed = true;
		return -1;
	}
	if (s->chunk && n > s->chunk)
		n = s->chunk;
	*buf = s->data + s->off;
	s->off += n;
	return (ssize_t)n;
}

struct buf {
	uint8_t *p;
	size_t len, cap;
};

/* Grows geometrically: 1-byte reads must not make the harness quadratic. */
static bool
append(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > OUT_CAP)
		return false;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *q = realloc(b->p, cap);
		if (q == NULL)
			abort();
		b->p = q;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return true;
}

enum verdict { GOOD, BAD, TOO_BIG };

/* The reference: the whole input at once. */
static enum verdict
reference(const uint8_t *in, size_t len, struct buf *out)
{
	if (len == 0 || in[0] != 0x1f)
		return append(out, in, len) ? GOOD : TOO_BIG;
	size_t off = 0;
	bool padding = false;
	static uint8_t chunk[64 * 1024];
	for (;;) {
		while (off < len && in[off] == 0) {
			off++;
			padding = true;
		}
		if (off == len)
			return GOOD;
		if (padding)
			return BAD;
		z_stream zs;
		memset(&zs, 0, sizeof zs);
		if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
			abort();
		zs.next_in = (unsigned char *)(uintptr_t)(in + off);
		zs.avail_in = (uInt)(len - off);
		int r;
		do {
			zs.next_out = chunk;
			zs.avail_out = sizeof chunk;
			r = inflate(&zs, Z_NO_FLUSH);
			if (!append(out, chunk, sizeof chunk - zs.avail_out)) {
				inflateEnd(&zs);
				return TOO_BIG;
			}
		} while (r == Z_OK);
		off = len - zs.avail_in;
		inflateEnd(&zs);
		if (r != Z_STREAM_END)
			return BAD;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > (256u << 10))
		return 0;
	/* Tiny reads of a big input find nothing tiny reads of a small one miss. */
	size_t chunk = data[0] != 0 && data[0] < 64 && size > 8192 ? 64 : data[0];
	struct src s = { data + 2, size - 2, 0, chunk, (data[1] & 1) != 0, false };
	struct buf want = { NULL, 0, 0 };
	enum verdict v = reference(s.data, s.len, &want);
	if (v == TOO_BIG) {
		free(want.p);
		return 0;
	}

	struct rx_gunzip g;
	rx_gunzip_init(&g, pull, &s);
	struct buf got = { NULL, 0, 0 };
	ssize_t n;
	for (;;) {
		const void *p;
		n = rx_gunzip_read(&g, &p);
		if (n <= 0)
			break;
		if (!append(&got, p, (size_t)n))
			abort(); /* more than the reference made */
	}
	if (n == 0) {
		/* A clean end: the data is good gzip (or not gzip) and the pull never failed. */
		if (v != GOOD || s.failed || got.len != want.len ||
		    (got.len > 0 && memcmp(got.p, want.p, got.len) != 0))
			abort();
		if (s.len > 0 && s.data[0] == 0x1f && g.members == 0)
			abort();
	} else {
		if (n != -1)
			abort();
		if (g.error[0] == '\0') {
			/* Only the pull's own failure may end without a reason. */
			if (!s.failed)
				abort();
		} else if (v == GOOD && !s.failed) {
			abort(); /* refused what gzip(1) reads */
		}
		/* Another read after an error stays an error. */
		const void *p;
		if (rx_gunzip_read(&g, &p) != -1)
			abort();
	}
	/* Good data and a clean pull must decode whole. */
	if (v == GOOD && !s.fail_at_end && n != 0)
		abort();
	rx_gunzip_free(&g);
	free(got.p);
	free(want.p);
	return 0;
}
