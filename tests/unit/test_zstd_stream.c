/*
 * zstd_stream and the compress.h facade: round trips through libzstd and
 * libarchive over sizes, levels, thread counts and write patterns; the
 * frame carries a content checksum; failing sinks and misuse stop cleanly.
 */
#include "autoconf.h"

#include "compress.h"
#include "compress_testlib.h"
#include "tap.h"
#include "pgzip.h"
#include "zstd_stream.h"

#include <stdio.h>

/* Compresses in[0..n) in writes of at most chunk bytes; 0 or -1. */
static int
run(const struct wx_zstd_opts *o, const unsigned char *in, size_t n, size_t chunk,
    struct tsink *sink, char *err, size_t errsize)
{
	struct wx_zstd *z = wx_zstd_new(o, tsink_write, sink, err, errsize);
	if (z == NULL)
		return -1;
	int rc = 0;
	for (size_t off = 0; rc == 0 && off < n; off += chunk)
		rc = wx_zstd_write(z, in + off, n - off < chunk ? n - off : chunk);
	if (rc == 0)
		rc = wx_zstd_finish(z);
	uint64_t sin, sout;
	wx_zstd_stats(z, &sin, &sout);
	if (rc == 0 && (sin != n || sout != sink->out.len))
		rc = -2;
	if (rc != 0)
		snprintf(err, errsize, "%s", rc == -2 ? "stats disagree" : wx_zstd_error(z));
	wx_zstd_free(z);
	return rc;
}

/* libzstd and libarchive give the input back; the frame has a checksum. */
static void
check_output(const char *what, const struct tbuf *zs, const unsigned char *in, size_t n)
{
	/* RFC 8878 3.1.1: magic 28 B5 2F FD, then the frame header descriptor
	 * whose bit 2 is Content_Checksum_flag. */
	static const unsigned char magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
	ok(zs->len >= 5 && memcmp(zs->p, magic, 4) == 0 && (zs->p[4] & 4) &&
	    ZSTD_findFrameCompressedSize(zs->p, zs->len) == zs->len,
	    "%s: exactly one zstd frame, with content checksum", what);

	struct tbuf dec = { 0 };
	int rc = t_unzstd(zs->p, zs->len, &dec);
	ok(rc == 0 && dec.len == n && (n == 0 || memcmp(dec.p, in, n) == 0),
	    "%s: libzstd gives the input back (%zu bytes)", what, n);
	tbuf_free(&dec);

	const char *filter = NULL;
	rc = t_libarchive(zs->p, zs->len, &dec, &filter);
	if (n == 0) {
		/* libarchive's raw format needs one byte to bid on: it refuses
		 * an empty stream, whoever made it.  Same answer as zstd's own. */
		unsigned char ref[64];
		size_t reflen = ZSTD_compress(ref, sizeof ref, "", 0, 3);
		struct tbuf dec2 = { 0 };
		int refrc = ZSTD_isError(reflen) ? 99 : t_libarchive(ref, reflen, &dec2, NULL);
		ok(rc == refrc && dec.len == 0,
		    "%s: libarchive treats it as libzstd's empty frame (%d, %d)", what, rc, refrc);
		tbuf_free(&dec2);
	} else {
		ok(rc == 0 && filter && strcmp(filter, "zstd") == 0 && dec.len == n &&
		    memcmp(dec.p, in, n) == 0,
		    "%s: libarchive (zstd filter, raw format) gives the input back", what);
	}
	tbuf_free(&dec);
}

static void
test_matrix(void)
{
	static const int levels[] = { -1, 1, 3, 19 };
	static const int threads[] = { 1, 2, 8 };
	const size_t sizes[] = { 0, 1, 100000, (size_t)3 * 1024 * 1024 + 7 };
	unsigned char *rnd = t_random(sizes[3], 11);
	unsigned char *txt = t_text(sizes[3], 12);

	for (size_t li = 0; li < WX_ARRAY_LEN(levels); li++)
		for (size_t ti = 0; ti < WX_ARRAY_LEN(threads); ti++)
			for (size_t si = 0; si < WX_ARRAY_LEN(sizes); si++) {
				size_t n = sizes[si];
				if (levels[li] == 19 && n > 200000)
					continue;	/* slow, nothing new */
				const unsigned char *in = (si + ti) % 2 ? txt : rnd;
				struct wx_zstd_opts o = { .level = levels[li], .threads = threads[ti] };
				struct tsink s = { 0 };
				char err[200] = "", what[120];
				size_t chunk = si == 2 ? 1 : (si + li) % 2 ? 10007 : n + 1;
				snprintf(what, sizeof what, "level %d, %d threads, %zu bytes in %s writes",
				    o.level, o.threads, n, n == 0 ? "no" : chunk == 1 ? "1-byte" :
				    chunk > n ? "one" : "10007-byte");
				is_int(run(&o, in, n, chunk, &s, err, sizeof err), 0, "%s: compresses (%s)",
				    what, err);
				check_output(what, &s.out, in, n);
				tbuf_free(&s.out);
			}
	free(rnd);
	free(txt);
}

static void
test_large_and_threads(void)
{
	size_t n = (size_t)24 * 1024 * 1024;
	unsigned char *in = t_text(n, 13);
	struct wx_zstd_opts o = { .level = 1, .threads = 2 };
	struct tsink s = { 0 };
	char err[200] = "";
	is_int(run(&o, in, n, n, &s, err, sizeof err), 0, "24 MiB text in one write (%s)", err);
	check_output("24 MiB text", &s.out, in, n);
	ok(s.out.len < n / 2, "text compresses (%zu -> %zu)", n, s.out.len);
	tbuf_free(&s.out);

	struct tsink s2 = { 0 };
	struct wx_zstd *z = wx_zstd_new(&o, tsink_write, &s2, err, sizeof err);
	ok(z != NULL && (wx_zstd_threads(z) == 2 || wx_zstd_threads(z) == 0),
	    "2 workers (or 0 if libzstd has no threads): %d", z ? wx_zstd_threads(z) : -1);
	wx_zstd_free(z);
	o.threads = 0;
	z = wx_zstd_new(&o, tsink_write, &s2, err, sizeof err);
	ok(z != NULL && (wx_zstd_threads(z) == wx_compress_cpus() || wx_zstd_threads(z) == 0),
	    "threads 0 = CPUs available");
	wx_zstd_free(z);
	free(in);
}

static void
test_failing_sink(void)
{
	size_t n = (size_t)6 * 1024 * 1024;
	unsigned char *in = t_random(n, 14);
	const int fail_at[] = { 1, 3, 20 };
	for (size_t i = 0; i < WX_ARRAY_LEN(fail_at); i++) {
		struct wx_zstd_opts o = { .level = 1, .threads = 4 };
		struct tsink s = { .fail_at = fail_at[i] };
		char err[200] = "";
		struct wx_zstd *z = wx_zstd_new(&o, tsink_write, &s, err, sizeof err);
		int rc = 0;
		for (size_t off = 0; rc == 0 && off < n; off += 65536)
			rc = wx_zstd_write(z, in + off, 65536);
		if (rc == 0)
			rc = wx_zstd_finish(z);
		is_int(rc, -1, "sink failing at call %d: the stream fails", fail_at[i]);
		is_str(wx_zstd_error(z), "write callback failed", "sink failing at call %d: error says why",
		    fail_at[i]);
		is_int(s.calls, fail_at[i], "sink failing at call %d: not called again", fail_at[i]);
		ok(wx_zstd_write(z, in, 10) == -1 && wx_zstd_finish(z) == -1,
		    "sink failing at call %d: later calls fail too", fail_at[i]);
		wx_zstd_free(z);
		tbuf_free(&s.out);
	}
	struct wx_zstd_opts o = { .level = 3, .threads = 4 };
	struct tsink s = { 0 };
	char err[200] = "";
	struct wx_zstd *z = wx_zstd_new(&o, tsink_write, &s, err, sizeof err);
	is_int(wx_zstd_write(z, in, n), 0, "write, then free without finish");
	wx_zstd_free(z);
	is_int(tthreads(), 1, "free with jobs in flight returns, its threads joined");
	tbuf_free(&s.out);
	free(in);
}

static void
test_misuse(void)
{
	char err[200] = "";
	struct tsink s = { 0 };
	struct wx_zstd_opts bad[] = {
		{ .level = 0 }, { .level = 20 }, { .level = -8 },
		{ .level = 1, .threads = -1 }, { .level = 1, .threads = WX_COMPRESS_THREADS_MAX + 1 },
		{ .level = 1, .job_size = ((size_t)1 << 30) + 1 },
	};
	const char *why[] = { "level", "level", "level", "thread", "thread", "job size" };
	for (size_t i = 0; i < WX_ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		struct wx_zstd *z = wx_zstd_new(&bad[i], tsink_write, &s, err, sizeof err);
		ok(z == NULL, "bad option %zu refused", i);
		has_str(err, why[i], "bad option %zu: message names the %s", i, why[i]);
		wx_zstd_free(z);
	}
	struct wx_zstd_opts o = { .level = 1, .threads = 1 };
	struct wx_zstd *z = wx_zstd_new(&o, tsink_write, &s, err, sizeof err);
	ok(wx_zstd_write(z, "abc", 3) == 0 && wx_zstd_finish(z) == 0, "small stream");
	is_int(wx_zstd_write(z, "d", 1), -1, "write after finish fails");
	is_str(wx_zstd_error(z), "write after finish", "and says so");
	wx_zstd_free(z);
	wx_zstd_free(NULL);
	tbuf_free(&s.out);
}

/* The facade picks the codec and passes options and errors through. */
static void
test_facade(void)
{
	unsigned char *in = t_text(300000, 15);
	const enum wx_compress_format fmts[] = { WX_COMPRESS_GZIP, WX_COMPRESS_ZSTD };
	for (size_t i = 0; i < WX_ARRAY_LEN(fmts); i++) {
		const char *name = wx_compress_format_name(fmts[i]);
		struct tsink s = { 0 };
		char err[200] = "";
		struct wx_compressor *c = wx_compressor_new(fmts[i], 1, 2, tsink_write, &s, err, sizeof err);
		ok(c != NULL, "%s: created (%s)", name, err);
		int rc = wx_compressor_write(c, in, 300000);
		if (rc == 0)
			rc = wx_compressor_finish(c);
		is_int(rc, 0, "%s: compresses (%s)", name, wx_compressor_error(c));
		uint64_t sin = 0, sout = 0;
		wx_compressor_stats(c, &sin, &sout);
		ok(sin == 300000 && sout == s.out.len, "%s: stats", name);
		wx_compressor_free(c);

		struct tbuf dec = { 0 };
		const char *filter = NULL;
		ok(t_libarchive(s.out.p, s.out.len, &dec, &filter) == 0 && filter &&
		    strcmp(filter, name) == 0 && dec.len == 300000 && memcmp(dec.p, in, 300000) == 0,
		    "%s: libarchive reads it back", name);
		tbuf_free(&dec);
		tbuf_free(&s.out);

		c = wx_compressor_new(fmts[i], 42, 2, tsink_write, &s, err, sizeof err);
		ok(c == NULL, "%s: level 42 refused", name);
		has_str(err, "level 42", "%s: message names the level", name);
	}
	char err[200] = "";
	struct tsink s = { 0 };
	ok(wx_compressor_new((enum wx_compress_format)9, 1, 1, tsink_write, &s, err, sizeof err) == NULL,
	    "unknown format refused");
	has_str(err, "unknown compression format", "and says so");
	wx_compressor_free(NULL);
	free(in);
}

/* finish_some: the end of the stream a piece at a time, through the facade too. */
static void
test_finish_some(void)
{
	size_t n = 3 << 20;
	unsigned char *in = t_random(n, 21);
	const enum wx_compress_format fmts[] = { WX_COMPRESS_GZIP, WX_COMPRESS_ZSTD };
	for (size_t i = 0; i < WX_ARRAY_LEN(fmts); i++) {
		const char *name = wx_compress_format_name(fmts[i]);
		struct tsink s = { 0 };
		char err[200] = "";
		struct wx_compressor *c = wx_compressor_new(fmts[i], 1, 2, tsink_write, &s, err,
		    sizeof err);
		ok(c != NULL && wx_compressor_write(c, in, n) == 0, "%s: written (%s)", name, err);
		int r, calls = 0;
		do
			r = wx_compressor_finish_some(c);
		while (r > 0 && ++calls < 100000);
		is_int(r, 0, "%s: finish_some completes (%d calls)", name, calls + 1);
		ok(calls >= 1, "%s: ... in more than one call", name);
		is_int(wx_compressor_finish_some(c), 0, "%s: and stays complete", name);
		wx_compressor_free(c);
		struct tbuf dec = { 0 };
		const char *filter = NULL;
		ok(t_libarchive(s.out.p, s.out.len, &dec, &filter) == 0 && dec.len == n &&
		    memcmp(dec.p, in, n) == 0, "%s: the stream decodes to the input", name);
		tbuf_free(&dec);
		tbuf_free(&s.out);
	}
	free(in);
}

/* Thread counts: the default, and the memory budget's caps. */
static void
test_thread_budget(void)
{
	int cpus = wx_compress_cpus();
	int def = cpus / 2 < 2 ? 2 : cpus / 2;
	if (def > WX_COMPRESS_THREADS_DEFAULT_MAX)
		def = WX_COMPRESS_THREADS_DEFAULT_MAX;
	if (def > cpus)
		def = cpus;
	is_int(wx_compress_threads(WX_COMPRESS_GZIP, 1, 0), def,
	    "threads 0 = half the CPUs, 2..4, at most the CPUs (%d CPUs)", cpus);
	is_int(wx_compress_threads(WX_COMPRESS_GZIP, 1, 1), 1, "threads 1 = 1");
	int g = wx_compress_threads(WX_COMPRESS_GZIP, 1, 256);
	ok(g >= 4 && g <= 9, "gzip: 256 threads capped by the memory budget (%d)", g);
	size_t per = WX_PGZIP_THREAD_STATE + 2 * WX_PGZIP_BLOCK_MEMORY(WX_PGZIP_BLOCK_DEFAULT);
	ok((size_t)g * per <= WX_COMPRESS_MEMORY_BUDGET, "gzip: states + 2 blocks per thread fit");
	is_int(wx_compress_threads(WX_COMPRESS_ZSTD, 1, 16), 8, "zstd level 1: 16 workers capped to 8");
	is_int(wx_compress_threads(WX_COMPRESS_ZSTD, 3, 16), 5, "zstd level 3: capped to 5");
	is_int(wx_compress_threads(WX_COMPRESS_ZSTD, 1, 3), 3, "zstd: 3 workers fit");

	char err[200] = "";
	struct tsink s = { 0 };
	struct wx_compressor *c = wx_compressor_new(WX_COMPRESS_GZIP, 1, 200, tsink_write, &s, err,
	    sizeof err);
	ok(c != NULL && wx_compressor_threads(c) == g, "gzip: 200 threads requested, %d run (%s)",
	    c ? wx_compressor_threads(c) : -1, err);
	unsigned char *in = t_text(100000, 3);
	ok(c != NULL && wx_compressor_write(c, in, 100000) == 0 && wx_compressor_finish(c) == 0,
	    "gzip: the capped compressor works");
	wx_compressor_free(c);
	tbuf_free(&s.out);
	free(in);
	ok(wx_compressor_new(WX_COMPRESS_GZIP, 1, -1, tsink_write, &s, err, sizeof err) == NULL,
	    "negative thread count refused");
}

int
main(void)
{
	test_matrix();
	test_large_and_threads();
	test_failing_sink();
	test_misuse();
	test_facade();
	test_thread_budget();
	test_finish_some();
	return tap_done();
}
