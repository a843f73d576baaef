/*
 * incompressible + pgzip stored slices: the test tells random bytes from
 * text, padding and short input; the libdeflate gzip encoder stores what
 * does not compress and deflates the rest, as ordinary gzip members
 * (stored deflate blocks) that zlib and libarchive read back byte for byte;
 * no_store deflates everything.
 */
#include "autoconf.h"

#include "compress_testlib.h"
#include "incompressible.h"
#include "pgzip.h"
#include "tap.h"

#include <stdio.h>

static void
test_detector(void)
{
	size_t n = 16 * 1024;
	unsigned char *r = t_random(n, 3), *t = t_text(n, 4);
	ok(wx_incompressible(r, n), "16 KiB of random bytes: incompressible");
	ok(!wx_incompressible(t, n), "16 KiB of text: not incompressible");
	ok(!wx_incompressible(r, WX_INCOMPRESSIBLE_MIN - 1), "random, under the minimum: not");
	ok(wx_incompressible(r, WX_INCOMPRESSIBLE_MIN), "random, at the minimum: incompressible");
	unsigned char *pad = xmalloc(n);
	memcpy(pad, r, n);
	memset(pad + n - 500, 0, 500);	/* 3 % zero padding, as a region-file chunk */
	ok(!wx_incompressible(pad, n), "random with 500 zero bytes of padding: not");
	memset(pad, 0, n);
	ok(!wx_incompressible(pad, n), "zeros: not");
	for (size_t i = 0; i < n; i++)
		pad[i] = (unsigned char)(r[i] & 0x7f);	/* 7 bits of entropy a byte */
	ok(!wx_incompressible(pad, n), "random 7-bit bytes: not (Huffman saves 12 %%)");
	free(pad);
	free(r);
	free(t);
}

/* Counts the members of a gzip stream by the type of their first deflate
 * block (libdeflate writes 10-byte headers); -1 if zlib rejects a member. */
static int
member_kinds(const unsigned char *in, size_t len, int *stored, int *deflated)
{
	*stored = *deflated = 0;
	size_t off = 0;
	while (off < len) {
		if (len - off < 18 || in[off] != 0x1f || in[off + 1] != 0x8b || in[off + 3] != 0)
			return -1;
		if (((in[off + 10] >> 1) & 3) == 0)
			(*stored)++;
		else
			(*deflated)++;
		z_stream zs;
		memset(&zs, 0, sizeof zs);
		if (inflateInit2(&zs, 15 + 16) != Z_OK)
			return -1;
		unsigned char buf[65536];
		zs.next_in = (Bytef *)(in + off);
		zs.avail_in = (uInt)(len - off);
		int ret;
		do {
			zs.next_out = buf;
			zs.avail_out = sizeof buf;
			ret = inflate(&zs, Z_NO_FLUSH);
		} while (ret == Z_OK);
		off = len - zs.avail_in;
		inflateEnd(&zs);
		if (ret != Z_STREAM_END)
			return -1;
	}
	return 0;
}

/* Compresses in[0..n) with LIBDEFLATE_MEMBERS level 1; out collects it. */
static int
encode(const unsigned char *in, size_t n, bool no_store, int threads, struct tsink *out)
{
	struct wx_pgzip_opts o = { .level = 1, .threads = threads,
		.framing = WX_PGZIP_LIBDEFLATE_MEMBERS, .no_store = no_store };
	char err[200] = "";
	struct wx_pgzip *z = wx_pgzip_new(&o, tsink_write, out, err, sizeof err);
	if (z == NULL) {
		fprintf(stderr, "# wx_pgzip_new: %s\n", err);
		return -1;
	}
	int rc = 0;
	for (size_t off = 0; rc == 0 && off < n; off += 10007)
		rc = wx_pgzip_write(z, in + off, n - off < 10007 ? n - off : 10007);
	if (rc == 0)
		rc = wx_pgzip_finish(z);
	if (rc != 0)
		fprintf(stderr, "# pgzip: %s\n", wx_pgzip_error(z));
	wx_pgzip_free(z);
	return rc;
}

/* Both decoders give back in[0..n). */
static void
round_trip(const char *what, const unsigned char *in, size_t n, const struct tbuf *gz)
{
	struct tbuf a = { 0 }, b = { 0 };
	ok(t_gunzip(gz->p, gz->len, &a) > 0 && a.len == n && memcmp(a.p, in, n) == 0,
	    "%s: zlib (member after member) reads the bytes back", what);
	const char *filter = NULL;
	ok(t_libarchive(gz->p, gz->len, &b, &filter) == 0 && b.len == n && memcmp(b.p, in, n) == 0,
	    "%s: libarchive reads the bytes back", what);
	tbuf_free(&a);
	tbuf_free(&b);
}

static void
test_stored_slices(void)
{
	size_t n = 3 * WX_PGZIP_BLOCK_DEFAULT + 12345;
	unsigned char *r = t_random(n, 11);
	int st, de;

	struct tsink s = { 0 };
	is_int(encode(r, n, false, 2, &s), 0, "random: encoded");
	ok(member_kinds(s.out.p, s.out.len, &st, &de) == 0, "random: valid gzip members");
	ok(st >= 4 && de == 0, "random: every member stored (%d stored, %d deflated)", st, de);
	/* stored: 5 bytes a 64 KiB deflate block, 18 a member */
	ok(s.out.len <= n + n / 65535 * 5 + (size_t)(st * 23), "random: %zu bytes for %zu (stored)",
	    s.out.len, n);
	round_trip("random", r, n, &s.out);
	tbuf_free(&s.out);

	struct tsink d = { 0 };
	is_int(encode(r, n, true, 2, &d), 0, "random, no_store: encoded");
	/* libdeflate then picks stored blocks itself, after its match search:
	 * the same kind of output, for the deflate CPU the test saves. */
	ok(member_kinds(d.out.p, d.out.len, &st, &de) == 0 && st + de == 4,
	    "random, no_store: one member a block (%d stored, %d deflated)", st, de);
	round_trip("random, no_store", r, n, &d.out);
	tbuf_free(&d.out);

	/* 16 KiB slices alternating random and text, and a padded slice. */
	unsigned char *m = xmalloc(n), *t = t_text(n, 12);
	for (size_t off = 0; off < n; off += WX_PGZIP_SLICE) {
		size_t k = n - off < WX_PGZIP_SLICE ? n - off : WX_PGZIP_SLICE;
		memcpy(m + off, (off / WX_PGZIP_SLICE) % 2 ? t + off : r + off, k);
	}
	memset(m + 6 * WX_PGZIP_SLICE, 0, 2000);
	struct tsink x = { 0 };
	is_int(encode(m, n, false, 3, &x), 0, "mixed: encoded");
	ok(member_kinds(x.out.p, x.out.len, &st, &de) == 0 && st >= 10 && de >= 10,
	    "mixed: stored and deflated members (%d stored, %d deflated)", st, de);
	ok(x.out.len < n * 3 / 4, "mixed: the text half is compressed (%zu of %zu bytes)", x.out.len, n);
	round_trip("mixed", m, n, &x.out);
	tbuf_free(&x.out);

	/* Same bytes, any thread count. */
	struct tsink y = { 0 }, w = { 0 };
	ok(encode(m, n, false, 1, &y) == 0 && encode(m, n, false, 4, &w) == 0 &&
	    y.out.len == w.out.len && memcmp(y.out.p, w.out.p, y.out.len) == 0,
	    "mixed: the same stream with 1 and 4 threads");
	tbuf_free(&y.out);
	tbuf_free(&w.out);

	/* Short tails (the empty stream is test_pgzip's). */
	for (size_t len = 1; len < 3 * WX_PGZIP_SLICE; len += WX_PGZIP_SLICE / 3 + 1) {
		struct tsink e = { 0 };
		ok(encode(r, len, false, 2, &e) == 0, "random %zu bytes: encoded", len);
		round_trip("random tail", r, len, &e.out);
		tbuf_free(&e.out);
	}
	free(m);
	free(t);
	free(r);
}

int
main(void)
{
	test_detector();
	test_stored_slices();
	return tap_done();
}
