/*
 * pgzip: round trips through zlib and libarchive over sizes around the block
 * boundaries, levels, thread counts and write patterns; the gzip header and
 * CRC-32/ISIZE trailer; member-per-block framing; ratio close to one-thread
 * gzip; failing sinks and misuse stop cleanly (run under ASan and valgrind).
 */
#include "autoconf.h"

#include "compress_testlib.h"
#include "pgzip.h"
#include "tap.h"

#include <stdio.h>

#define SMALL_BLOCK ((size_t)4096)

enum pattern { ONE_WRITE, BYTE_WRITES, ODD_WRITES };

/* Compresses in[0..n) with opts written in the given pattern; 0 or -1. */
static int
run(const struct wx_pgzip_opts *o, const unsigned char *in, size_t n, enum pattern pat,
    struct tsink *sink, char *err, size_t errsize)
{
	struct wx_pgzip *z = wx_pgzip_new(o, tsink_write, sink, err, errsize);
	if (z == NULL)
		return -1;
	int rc = 0;
	size_t off = 0, step = 1;
	while (rc == 0 && off < n) {
		size_t k = pat == ONE_WRITE ? n : pat == BYTE_WRITES ? 1 : step;
		if (k > n - off)
			k = n - off;
		rc = wx_pgzip_write(z, in + off, k);
		off += k;
		step = step * 7 % 10007 + 1;	/* 1..10007 bytes, uneven */
	}
	if (rc == 0)
		rc = wx_pgzip_finish(z);
	uint64_t sin, sout;
	wx_pgzip_stats(z, &sin, &sout);
	if (rc == 0 && (sin != n || sout != sink->out.len))
		rc = -2;
	if (rc != 0)
		snprintf(err, errsize, "%s", rc == -2 ? "stats disagree" : wx_pgzip_error(z));
	wx_pgzip_free(z);
	return rc;
}

static uint32_t
le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* gzip of in[0..n) by one-thread zlib (the reference encoder); new buffer. */
static struct tbuf
zlib_gzip(const unsigned char *in, size_t n, int level)
{
	struct tbuf b = { 0 };
	uLong bound = compressBound((uLong)n) + 64;
	b.p = xmalloc(bound);
	b.cap = bound;
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return b;
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)n;
	zs.next_out = b.p;
	zs.avail_out = (uInt)bound;
	if (deflate(&zs, Z_FINISH) == Z_STREAM_END)
		b.len = zs.total_out;
	deflateEnd(&zs);
	return b;
}

/*
 * Checks one compressed output: header, trailer (one member), zlib and
 * libarchive decode back to the input, member count.  Emits 4 test lines.
 */
static void
check_output(const char *what, const struct tbuf *gz, const unsigned char *in, size_t n,
    int want_members)
{
	bool hdr = gz->len >= 18 && gz->p[0] == 0x1f && gz->p[1] == 0x8b && gz->p[2] == 8 &&
	    gz->p[3] == 0;
	uLong crc = crc32_z(crc32(0, NULL, 0), in, n);
	bool trailer = hdr && le32(gz->p + gz->len - 8) == (uint32_t)crc &&
	    le32(gz->p + gz->len - 4) == (uint32_t)n;
	if (want_members == 1)
		ok(hdr && trailer, "%s: gzip header, CRC-32 and ISIZE trailer", what);
	else	/* each member's trailer is checked by zlib below */
		ok(hdr, "%s: gzip header", what);

	struct tbuf dec = { 0 };
	int members = t_gunzip(gz->p, gz->len, &dec);
	ok(members >= 1 && dec.len == n && (n == 0 || memcmp(dec.p, in, n) == 0),
	    "%s: zlib inflate gives the input back (%zu bytes)", what, n);
	is_int(members, want_members, "%s: %d gzip member(s)", what, want_members);
	tbuf_free(&dec);

	const char *filter = NULL;
	int rc = t_libarchive(gz->p, gz->len, &dec, &filter);
	if (n == 0) {
		/* libarchive's raw format needs one byte to bid on: it refuses
		 * an empty stream, gzip(1)'s and zlib's alike.  Same answer. */
		struct tbuf ref = zlib_gzip(in, 0, 6);
		struct tbuf dec2 = { 0 };
		int refrc = t_libarchive(ref.p, ref.len, &dec2, NULL);
		ok(ref.len > 0 && rc == refrc && dec.len == 0,
		    "%s: libarchive treats it as zlib's empty gzip (%d, %d)", what, rc, refrc);
		tbuf_free(&ref);
		tbuf_free(&dec2);
	} else {
		ok(rc == 0 && filter && strcmp(filter, "gzip") == 0 && dec.len == n &&
		    memcmp(dec.p, in, n) == 0,
		    "%s: libarchive (gzip filter, raw format) gives the input back", what);
	}
	tbuf_free(&dec);
}

static void
test_matrix(void)
{
	static const int levels[] = { 0, 1, 6, 9 };
	static const int threads[] = { 1, 2, 8 };
	const size_t sizes[] = { 0, 1, SMALL_BLOCK, SMALL_BLOCK + 1, 37 * SMALL_BLOCK + 123 };
	unsigned char *rnd = t_random(sizes[4], 1);
	unsigned char *txt = t_text(sizes[4], 2);

	for (size_t li = 0; li < WX_ARRAY_LEN(levels); li++)
		for (size_t ti = 0; ti < WX_ARRAY_LEN(threads); ti++)
			for (size_t si = 0; si < WX_ARRAY_LEN(sizes); si++)
				for (int kind = 0; kind < 2; kind++) {
					size_t n = sizes[si];
					if (kind == 1 && n < SMALL_BLOCK)
						continue;	/* 0 and 1 byte: one kind is enough */
					const unsigned char *in = kind ? txt : rnd;
					struct wx_pgzip_opts o = { .level = levels[li],
						.threads = threads[ti], .block_size = SMALL_BLOCK };
					struct tsink s = { 0 };
					char err[200] = "", what[120];
					snprintf(what, sizeof what, "level %d, %d threads, %zu %s bytes",
					    o.level, o.threads, n, kind ? "text" : "random");
					enum pattern pat = (si + li) % 3 == 0 ? BYTE_WRITES :
					    (si + li) % 3 == 1 ? ODD_WRITES : ONE_WRITE;
					int rc = run(&o, in, n, pat, &s, err, sizeof err);
					is_int(rc, 0, "%s: compresses (%s)", what, err);
					check_output(what, &s.out, in, n, 1);
					tbuf_free(&s.out);
				}
	free(rnd);
	free(txt);
}

/* Many MiB in one write and in 1-byte writes, default block size. */
static void
test_large(void)
{
	size_t n = (size_t)24 * 1024 * 1024;
	unsigned char *in = xmalloc(n);
	unsigned char *r = t_random(n / 2, 3), *t = t_text(n / 2, 4);
	for (size_t i = 0; i < n; i += 2 * 1048576) {	/* alternate 1 MiB runs */
		memcpy(in + i, r + i / 2, 1048576);
		memcpy(in + i + 1048576, t + i / 2, 1048576);
	}
	free(r);
	free(t);

	struct wx_pgzip_opts o = { .level = 1, .threads = 2 };
	struct tsink s = { 0 };
	char err[200] = "";
	is_int(run(&o, in, n, ONE_WRITE, &s, err, sizeof err), 0,
	    "24 MiB mixed in one write, level 1, 2 threads (%s)", err);
	check_output("24 MiB mixed, one write", &s.out, in, n, 1);
	ok(s.out.len < n * 3 / 4, "mixed data compresses (%zu -> %zu)", n, s.out.len);
	struct tbuf first = s.out;

	struct tsink s2 = { 0 };
	size_t m = (size_t)3 * 1024 * 1024 + 5;
	is_int(run(&o, in, m, BYTE_WRITES, &s2, err, sizeof err), 0,
	    "3 MiB in 1-byte writes (%s)", err);
	check_output("3 MiB in 1-byte writes", &s2.out, in, m, 1);
	tbuf_free(&s2.out);

	/* Same input, same options: identical bytes (deterministic output). */
	struct tsink s3 = { 0 };
	o.threads = 8;
	is_int(run(&o, in, n, ODD_WRITES, &s3, err, sizeof err), 0,
	    "24 MiB in uneven writes, 8 threads (%s)", err);
	ok(s3.out.len == first.len && memcmp(s3.out.p, first.p, first.len) == 0,
	    "output does not depend on thread count or write pattern");
	tbuf_free(&s3.out);

	/* The smallest pipeline: 2 blocks, 3 threads (more workers than blocks). */
	struct tsink s4 = { 0 };
	o.threads = 3;
	o.max_blocks = 2;
	is_int(run(&o, in, n, ODD_WRITES, &s4, err, sizeof err), 0,
	    "24 MiB with max_blocks 2, 3 threads (%s)", err);
	ok(s4.out.len == first.len && memcmp(s4.out.p, first.p, first.len) == 0,
	    "same output with the smallest pipeline");
	tbuf_free(&s4.out);
	tbuf_free(&first);
	free(in);
}

/* Ratio close to one-thread gzip thanks to the dictionary; framings compared. */
static void
test_ratio_and_framing(void)
{
	size_t n = (size_t)4 * 1024 * 1024;
	unsigned char *in = t_text(n, 5);

	/* Reference: one zlib deflate over everything, gzip wrapper, level 6. */
	struct tbuf ref = zlib_gzip(in, n, 6);
	size_t reflen = ref.len;
	ok(reflen > 0, "reference zlib gzip of 4 MiB text (%zu bytes)", reflen);

	size_t block = 64 * 1024;
	struct wx_pgzip_opts one = { .level = 6, .threads = 2, .block_size = block };
	struct wx_pgzip_opts many = one;
	many.framing = WX_PGZIP_MEMBER_PER_BLOCK;
	struct tsink s1 = { 0 }, s2 = { 0 };
	char err[200] = "";
	is_int(run(&one, in, n, ODD_WRITES, &s1, err, sizeof err), 0, "one member, 64 KiB blocks (%s)", err);
	is_int(run(&many, in, n, ODD_WRITES, &s2, err, sizeof err), 0, "member per block (%s)", err);
	/* With the 32 KiB dictionary the loss is only the flush markers. */
	ok(s1.out.len <= reflen + reflen / 200,
	    "one member within 0.5%% of one-thread gzip (%zu vs %zu)", s1.out.len, reflen);
	ok(s2.out.len > s1.out.len,
	    "member per block (no dictionary) is larger (%zu vs %zu)", s2.out.len, s1.out.len);
	check_output("member per block", &s2.out, in, n, (int)(n / block));

	/* A single-member reader stops after the first member of that framing. */
	struct tbuf dec = { 0 };
	z_stream is;
	memset(&is, 0, sizeof is);
	inflateInit2(&is, 15 + 16);
	unsigned char *buf = xmalloc(n);
	is.next_in = s2.out.p;
	is.avail_in = (uInt)s2.out.len;
	is.next_out = buf;
	is.avail_out = (uInt)n;
	int iret = inflate(&is, Z_FINISH);
	ok(iret == Z_STREAM_END && is.total_out == block,
	    "a one-member reader sees only the first block of member-per-block output");
	inflateEnd(&is);
	free(buf);
	tbuf_free(&dec);

	tbuf_free(&s1.out);
	tbuf_free(&s2.out);
	tbuf_free(&ref);
	free(in);
}

static void
test_level0_stored(void)
{
	size_t n = 100000;
	unsigned char *in = t_text(n, 6);
	struct wx_pgzip_opts o = { .level = 0, .threads = 2, .block_size = SMALL_BLOCK };
	struct tsink s = { 0 };
	char err[200] = "";
	is_int(run(&o, in, n, ONE_WRITE, &s, err, sizeof err), 0, "level 0 (%s)", err);
	ok(s.out.len > n && s.out.len < n + n / 50,
	    "level 0 stores: output slightly larger than input (%zu vs %zu)", s.out.len, n);
	check_output("level 0 text", &s.out, in, n, 1);
	tbuf_free(&s.out);
	free(in);
}

/*
 * libdeflate framing: one complete member per block, readable by zlib
 * (member after member) and libarchive at every level, the same bytes
 * whatever the threads and the write pattern, smaller than zlib's at level 1.
 */
static void
test_libdeflate_members(void)
{
	static const int levels[] = { 0, 1, 6, 9 };
	const size_t n = 37 * SMALL_BLOCK + 123;
	unsigned char *txt = t_text(n, 4);
	unsigned char *rnd = t_random(n, 5);
	for (size_t li = 0; li < WX_ARRAY_LEN(levels); li++)
		for (int kind = 0; kind < 2; kind++) {
			const unsigned char *in = kind ? txt : rnd;
			struct wx_pgzip_opts o = { .level = levels[li], .threads = 3,
				.block_size = SMALL_BLOCK, .framing = WX_PGZIP_LIBDEFLATE_MEMBERS };
			struct tsink a = { 0 }, b = { 0 };
			char err[200] = "", what[120];
			snprintf(what, sizeof what, "libdeflate level %d, %s", o.level,
			    kind ? "text" : "random");
			is_int(run(&o, in, n, ODD_WRITES, &a, err, sizeof err), 0, "%s: compresses (%s)",
			    what, err);
			check_output(what, &a.out, in, n, 38);
			o.threads = 1;
			is_int(run(&o, in, n, BYTE_WRITES, &b, err, sizeof err), 0,
			    "%s: 1 thread, byte writes (%s)", what, err);
			ok(a.out.len == b.out.len && memcmp(a.out.p, b.out.p, a.out.len) == 0,
			    "%s: the same bytes with 3 threads and 1, any write pattern", what);
			if (levels[li] == 0)
				ok(a.out.len > n, "%s: level 0 stores (%zu > %zu)", what, a.out.len, n);
			tbuf_free(&a.out);
			tbuf_free(&b.out);
		}
	/* Empty input: one empty member, a valid gzip file. */
	struct wx_pgzip_opts o = { .level = 1, .threads = 2, .framing = WX_PGZIP_LIBDEFLATE_MEMBERS };
	struct tsink e = { 0 };
	char err[200] = "";
	is_int(run(&o, txt, 0, ONE_WRITE, &e, err, sizeof err), 0, "libdeflate empty input (%s)", err);
	check_output("libdeflate empty", &e.out, txt, 0, 1);
	tbuf_free(&e.out);
	/* Default block size on text: smaller than zlib's one member at level 1. */
	size_t big = 4 << 20;
	unsigned char *t2 = t_text(big, 9);
	struct wx_pgzip_opts zo = { .level = 1, .threads = 2 };
	struct tsink zs = { 0 }, ls = { 0 };
	run(&zo, t2, big, ONE_WRITE, &zs, err, sizeof err);
	run(&o, t2, big, ONE_WRITE, &ls, err, sizeof err);
	ok(ls.out.len > 0 && ls.out.len <= zs.out.len + zs.out.len / 100,
	    "libdeflate level 1 output within 1 %% of zlib's one member (%zu vs %zu)", ls.out.len,
	    zs.out.len);
	tbuf_free(&zs.out);
	tbuf_free(&ls.out);
	free(t2);
	free(txt);
	free(rnd);
}

/* A sink that records the largest single burst between two marks. */
struct burst {
	struct tbuf out;
	size_t since_mark, max_burst;
};

static int
burst_write(void *ctx, const void *buf, size_t len)
{
	struct burst *b = ctx;
	tbuf_add(&b->out, buf, len);
	b->since_mark += len;
	if (b->since_mark > b->max_burst)
		b->max_burst = b->since_mark;
	return 0;
}

/*
 * Output leaves in small pieces: a write emits at most about one block (done
 * blocks wait until their slot is needed), finish_some one block per call;
 * the stream equals what finish() makes.
 */
static void
test_paced_output(void)
{
	size_t n = 40 * SMALL_BLOCK + 123;
	unsigned char *in = t_random(n, 8);
	struct wx_pgzip_opts o = { .level = 1, .threads = 3, .block_size = SMALL_BLOCK };
	struct burst b = { 0 };
	char err[200] = "";
	struct wx_pgzip *z = wx_pgzip_new(&o, burst_write, &b, err, sizeof err);
	ok(z != NULL, "paced: created (%s)", err);
	bool wrote = true;
	for (size_t off = 0; off < n && wrote; off += SMALL_BLOCK / 2) {
		size_t k = n - off < SMALL_BLOCK / 2 ? n - off : SMALL_BLOCK / 2;
		b.since_mark = 0;
		wrote = wx_pgzip_write(z, in + off, k) == 0;
	}
	ok(wrote, "paced: every write succeeds");
	/* Incompressible blocks deflate to a little more than their size. */
	ok(b.max_burst <= SMALL_BLOCK + SMALL_BLOCK / 8 + 64,
	    "paced: a write emits at most one block (largest burst %zu, block %zu)", b.max_burst,
	    (size_t)SMALL_BLOCK);
	int calls = 0, r;
	b.max_burst = 0;
	do {
		b.since_mark = 0;
		r = wx_pgzip_finish_some(z);
		calls++;
	} while (r > 0 && calls < 1000);
	is_int(r, 0, "paced: finish_some completes the stream");
	ok(calls > 2, "paced: ... over several calls (%d)", calls);
	ok(b.max_burst <= SMALL_BLOCK + SMALL_BLOCK / 8 + 64,
	    "paced: each finish_some emits at most one block (largest %zu)", b.max_burst);
	is_int(wx_pgzip_finish_some(z), 0, "paced: finish_some after the end returns 0");
	is_int(wx_pgzip_write(z, in, 1), -1, "paced: write after finish_some fails");
	wx_pgzip_free(z);
	check_output("paced", &b.out, in, n, 1);

	struct tsink s = { 0 };
	is_int(run(&o, in, n, ONE_WRITE, &s, err, sizeof err), 0, "paced: reference run");
	ok(s.out.len == b.out.len && memcmp(s.out.p, b.out.p, s.out.len) == 0,
	    "paced: the same bytes as finish()");
	tbuf_free(&s.out);
	tbuf_free(&b.out);
	free(in);
}

/* A failing sink at several points: -1, sticky error, no hang, no leak. */
static void
test_failing_sink(void)
{
	size_t n = 200 * SMALL_BLOCK;
	unsigned char *in = t_random(n, 7);
	const int fail_at[] = { 1, 2, 5, 50, 202 };	/* 202: the trailer */
	for (size_t i = 0; i < WX_ARRAY_LEN(fail_at); i++) {
		struct wx_pgzip_opts o = { .level = 1, .threads = 8, .block_size = SMALL_BLOCK };
		struct tsink s = { .fail_at = fail_at[i] };
		char err[200] = "";
		struct wx_pgzip *z = wx_pgzip_new(&o, tsink_write, &s, err, sizeof err);
		int rc = 0;
		for (size_t off = 0; rc == 0 && off < n; off += 1000)
			rc = wx_pgzip_write(z, in + off, n - off < 1000 ? n - off : 1000);
		if (rc == 0)
			rc = wx_pgzip_finish(z);
		is_int(rc, -1, "sink failing at call %d: the stream fails", fail_at[i]);
		is_str(wx_pgzip_error(z), "write callback failed", "sink failing at call %d: error says why",
		    fail_at[i]);
		is_int(s.calls, fail_at[i], "sink failing at call %d: not called again", fail_at[i]);
		ok(wx_pgzip_write(z, in, 10) == -1 && wx_pgzip_finish(z) == -1,
		    "sink failing at call %d: later calls fail too", fail_at[i]);
		wx_pgzip_free(z);
		tbuf_free(&s.out);
	}

	/* Freed in the middle, with blocks queued and nothing finished. */
	struct wx_pgzip_opts o = { .level = 9, .threads = 4, .block_size = SMALL_BLOCK };
	struct tsink s = { 0 };
	char err[200] = "";
	struct wx_pgzip *z = wx_pgzip_new(&o, tsink_write, &s, err, sizeof err);
	is_int(wx_pgzip_write(z, in, 7 * SMALL_BLOCK + 5), 0, "write, then free without finish");
	ok(tthreads() > 1, "blocks are in flight on worker threads");
	wx_pgzip_free(z);
	is_int(tthreads(), 1, "free with blocks in flight returns, its threads joined");
	tbuf_free(&s.out);
	free(in);
}

static void
test_misuse(void)
{
	char err[200] = "";
	struct tsink s = { 0 };
	struct wx_pgzip_opts bad[] = {
		{ .level = 10 }, { .level = -1 }, { .level = 1, .threads = -1 },
		{ .level = 1, .threads = WX_COMPRESS_THREADS_MAX + 1 },
		{ .level = 1, .block_size = WX_PGZIP_BLOCK_MIN - 1 },
		{ .level = 1, .block_size = WX_PGZIP_BLOCK_MAX + 1 },
		{ .level = 1, .framing = (enum wx_pgzip_framing)7 },
		{ .level = 1, .max_blocks = 1 }, { .level = 1, .max_blocks = -1 },
	};
	const char *why[] = { "level", "level", "thread", "thread", "block size", "block size",
		"framing", "max_blocks", "max_blocks" };
	for (size_t i = 0; i < WX_ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		struct wx_pgzip *z = wx_pgzip_new(&bad[i], tsink_write, &s, err, sizeof err);
		ok(z == NULL, "bad option %zu refused", i);
		has_str(err, why[i], "bad option %zu: message names the %s", i, why[i]);
		wx_pgzip_free(z);
	}

	struct wx_pgzip_opts o = { .level = 1 };
	struct wx_pgzip *z = wx_pgzip_new(&o, tsink_write, &s, err, sizeof err);
	is_int(wx_pgzip_threads(z), wx_compress_cpus(), "threads 0 = CPUs available (%d)",
	    wx_compress_cpus());
	ok(wx_pgzip_write(z, "abc", 3) == 0 && wx_pgzip_finish(z) == 0, "small stream");
	is_int(wx_pgzip_write(z, "d", 1), -1, "write after finish fails");
	is_str(wx_pgzip_error(z), "write after finish", "and says so");
	is_int(wx_pgzip_finish(z), -1, "finish after a failed call fails");
	wx_pgzip_free(z);
	wx_pgzip_free(NULL);
	tbuf_free(&s.out);

	struct tsink s2 = { 0 };
	z = wx_pgzip_new(&o, tsink_write, &s2, err, sizeof err);
	is_int(s2.calls, 0, "the sink is not called before data or finish");
	ok(wx_pgzip_finish(z) == 0 && wx_pgzip_finish(z) == -1, "finish twice fails");
	is_str(wx_pgzip_error(z), "finish called twice", "and says so");
	wx_pgzip_free(z);
	tbuf_free(&s2.out);
}

int
main(void)
{
	test_matrix();
	test_large();
	test_ratio_and_framing();
	test_level0_stored();
	test_paced_output();
	test_libdeflate_members();
	test_failing_sink();
	test_misuse();
	return tap_done();
}
