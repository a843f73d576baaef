/*
 * The streaming multipart/form-data parser: every split position of a small
 * body, lookalike delimiters, limits, truncation at every byte, input errors
 * and malformed headers.
 */
#include "autoconf.h"

#include "multipart.h"
#include "tap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define B "X-wingxfer-7f3a"

/* A reader over a byte buffer: reads return at most `chunk` bytes, and the
 * first read stops at `split` (so a boundary can be cut anywhere). */
struct src {
	const char *data;
	size_t len, off, split, chunk;
	size_t fail_at;          /* return -1 once off reaches this (SIZE_MAX: never) */
};

static ssize_t
src_read(void *ctx, void *buf, size_t n)
{
	struct src *s = ctx;
	if (s->off >= s->fail_at)
		return -1;
	size_t left = s->len - s->off;
	if (left == 0)
		return 0;
	if (n > left)
		n = left;
	if (s->chunk && n > s->chunk)
		n = s->chunk;
	if (s->off < s->split && s->off + n > s->split)
		n = s->split - s->off;
	if (s->off + n > s->fail_at)
		n = s->fail_at - s->off;
	memcpy(buf, s->data + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

struct got_part {
	char name[WX_MP_NAME_MAX];
	char filename[WX_MP_NAME_MAX];
	char *body;
	size_t len;
};

struct result {
	int rc;                 /* last wx_mp_next_part result: 0 = clean end */
	enum wx_mp_error err;
	char msg[256];
	int nparts;
	struct got_part parts[8];
};

static void
result_free(struct result *r)
{
	for (int i = 0; i < r->nparts && i < 8; i++)
		free(r->parts[i].body);
}

/* The parser's buffer in parse_all (the destination uses 256 KiB). */
static size_t parse_bufsize = 16 * 1024;

/* Parses the whole body; use_ptr picks the zero-copy read. */
static void
parse_all(struct src *s, const char *boundary, bool use_ptr, size_t readsize, struct result *r)
{
	memset(r, 0, sizeof *r);
	struct wx_multipart *mp = wx_mp_new(boundary, parse_bufsize, src_read, s);
	if (mp == NULL) {
		r->rc = -2;
		return;
	}
	struct wx_mp_part part;
	int rc;
	while ((rc = wx_mp_next_part(mp, &part)) == 1) {
		struct got_part *g = r->nparts < 8 ? &r->parts[r->nparts] : NULL;
		r->nparts++;
		if (g) {
			memcpy(g->name, part.name, sizeof g->name);
			memcpy(g->filename, part.filename, sizeof g->filename);
		}
		for (;;) {
			char tmp[4096];
			const void *p = tmp;
			ssize_t n = use_ptr ? wx_mp_read_ptr(mp, &p, readsize)
			    : wx_mp_read(mp, tmp, readsize < sizeof tmp ? readsize : sizeof tmp);
			if (n <= 0) {
				if (n < 0) {
					rc = -1;
					goto out;
				}
				break;
			}
			if (g) {
				g->body = xrealloc(g->body, g->len + (size_t)n + 1);
				memcpy(g->body + g->len, p, (size_t)n);
				g->len += (size_t)n;
				g->body[g->len] = '\0';
			}
		}
	}
out:
	r->rc = rc;
	r->err = wx_mp_errcode(mp);
	wx_strlcpy(r->msg, wx_mp_error(mp), sizeof r->msg);
	wx_mp_free(mp);
}

static char *
sample_body(size_t *len)
{
	/* Lookalikes in the content: the boundary followed by neither "--" nor
	 * CRLF, a prefix of it, bare dashes, CR and LF alone, NUL bytes. */
	static const char head[] =
	    "preamble to be ignored\r\n"
	    "--" B "\r\n"
	    "Content-Disposition: form-data; name=\"archive\"; filename=\"archive.tar.gz\"\r\n"
	    "Content-Type: application/octet-stream\r\n"
	    "\r\n";
	static const char content[] =
	    "\x1f\x8b\x08\x00" "binary\r\n--" B "Z not a delimiter\r\n--" B "-x nor this\r\n"
	    "\r\n-\r\n--\r\n--X-wingxfer\r\n\0\xff\r\r\n\n end";
	static const char tail[] =
	    "\r\n--" B "  \t\r\n"
	    "content-disposition: FORM-DATA; name=checksum\r\n"
	    "\r\n"
	    "0123abcd\r\n"
	    "--" B "\r\n"
	    "Content-Disposition: form-data;\r\n name=\"odd \\\"quoted\\\" name\"\r\n"
	    "\r\n"
	    "\r\n"
	    "--" B "--\r\n"
	    "epilogue\r\n";
	size_t hl = sizeof head - 1, cl = sizeof content - 1, tl = sizeof tail - 1;
	char *b = xmalloc(hl + cl + tl);
	memcpy(b, head, hl);
	memcpy(b + hl, content, cl);
	memcpy(b + hl + cl, tail, tl);
	*len = hl + cl + tl;
	return b;
}

static bool
result_matches_sample(const struct result *r)
{
	static const char content[] =
	    "\x1f\x8b\x08\x00" "binary\r\n--" B "Z not a delimiter\r\n--" B "-x nor this\r\n"
	    "\r\n-\r\n--\r\n--X-wingxfer\r\n\0\xff\r\r\n\n end";
	if (r->rc != 0 || r->nparts != 3)
		return false;
	if (strcmp(r->parts[0].name, "archive") != 0 ||
	    strcmp(r->parts[0].filename, "archive.tar.gz") != 0 ||
	    r->parts[0].len != sizeof content - 1 ||
	    memcmp(r->parts[0].body, content, sizeof content - 1) != 0)
		return false;
	if (strcmp(r->parts[1].name, "checksum") != 0 || r->parts[1].len != 8 ||
	    memcmp(r->parts[1].body, "0123abcd", 8) != 0)
		return false;
	if (strcmp(r->parts[2].name, "odd \"quoted\" name") != 0 || r->parts[2].len != 0)
		return false;
	return true;
}

static void
test_splits(void)
{
	size_t len;
	char *body = sample_body(&len);
	struct result r;
	struct src s = { body, len, 0, SIZE_MAX, 0, SIZE_MAX };
	parse_all(&s, B, false, 65536, &r);
	ok(result_matches_sample(&r), "the sample body parses into its three parts (rc %d: %s)",
	    r.rc, r.msg);
	result_free(&r);

	size_t bad = SIZE_MAX;
	for (size_t split = 0; split <= len && bad == SIZE_MAX; split++) {
		for (int ptr = 0; ptr < 2; ptr++) {
			struct src s2 = { body, len, 0, split, 0, SIZE_MAX };
			parse_all(&s2, B, ptr, 65536, &r);
			if (!result_matches_sample(&r))
				bad = split;
			result_free(&r);
		}
	}
	ok(bad == SIZE_MAX, "every one of the %zu split positions parses the same (first bad: %zd)",
	    len + 1, bad == SIZE_MAX ? (ssize_t)-1 : (ssize_t)bad);

	static const size_t chunks[] = { 1, 2, 3, 5, 7, 13, 64, 77 };
	for (size_t i = 0; i < WX_ARRAY_LEN(chunks); i++) {
		bool good = true;
		for (size_t rs = 1; rs <= 9 && good; rs += 4) {
			struct src s3 = { body, len, 0, SIZE_MAX, chunks[i], SIZE_MAX };
			parse_all(&s3, B, rs % 2, rs, &r);
			good = result_matches_sample(&r);
			result_free(&r);
		}
		ok(good, "reads of %zu bytes from the source and small part reads parse the same",
		    chunks[i]);
	}
	free(body);
}

static void
test_truncation(void)
{
	size_t len;
	char *body = sample_body(&len);
	static const char closing[] = "\r\n--" B "--";
	const char *close = memmem(body, len, closing, sizeof closing - 1);
	size_t close_end = (size_t)(close - body) + sizeof closing - 1;
	size_t wrong = SIZE_MAX;
	int truncated = 0;
	for (size_t cut = 0; cut < close_end; cut++) {
		struct result r;
		struct src s = { body, cut, 0, SIZE_MAX, 0, SIZE_MAX };
		parse_all(&s, B, cut % 2, 4096, &r);
		if (r.rc == 0 || r.err == WX_MP_OK)
			wrong = wrong == SIZE_MAX ? cut : wrong;
		if (r.err == WX_MP_TRUNCATED)
			truncated++;
		result_free(&r);
	}
	ok(wrong == SIZE_MAX, "a body cut at any of the %zu bytes before the end of the closing "
	    "boundary is an error, never a success (first wrong: %zd)", close_end,
	    wrong == SIZE_MAX ? (ssize_t)-1 : (ssize_t)wrong);
	ok(truncated > (int)close_end - 60, "... reported as truncated (%d of %zu)", truncated,
	    close_end);
	bool fine = true;
	for (size_t cut = close_end; cut <= len; cut++) {
		struct result r;
		struct src s = { body, cut, 0, SIZE_MAX, 0, SIZE_MAX };
		parse_all(&s, B, false, 4096, &r);
		fine = fine && result_matches_sample(&r);
		result_free(&r);
	}
	ok(fine, "a body cut inside the epilogue is complete");

	struct result r;
	struct src s = { body, len, 0, SIZE_MAX, 0, 200 };
	parse_all(&s, B, false, 4096, &r);
	is_int(r.err, WX_MP_INPUT, "a failing read (aborted body) is an input error");
	ok(r.rc < 0, "... and next_part/read return -1");
	has_str(r.msg, "could not be read", "... with a message");
	result_free(&r);

	struct src empty = { "", 0, 0, SIZE_MAX, 0, SIZE_MAX };
	parse_all(&empty, B, false, 4096, &r);
	is_int(r.err, WX_MP_TRUNCATED, "an empty body is an error");
	has_str(r.msg, "empty", "... saying it is empty");
	result_free(&r);
	free(body);
}

static void
expect(const char *body, enum wx_mp_error err, const char *needle, const char *what)
{
	struct result r;
	struct src s = { body, strlen(body), 0, SIZE_MAX, 0, SIZE_MAX };
	parse_all(&s, B, false, 4096, &r);
	is_int(r.err, err, "%s: error code", what);
	has_str(r.msg, needle, "%s: message", what);
	result_free(&r);
}

static void
test_malformed(void)
{
	expect("--" B "\r\nContent-Type: text/plain\r\n\r\nx\r\n--" B "--\r\n",
	    WX_MP_MALFORMED, "no Content-Disposition", "a part without Content-Disposition");
	expect("--" B "\r\nContent-Disposition: form-data\r\n\r\nx\r\n--" B "--\r\n",
	    WX_MP_MALFORMED, "has no name", "a part without a name");
	expect("--" B "\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--" B "--\r\n",
	    WX_MP_MALFORMED, "not form-data", "a disposition other than form-data");
	expect("--" B "\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nx\r\n--" B "--\r\n",
	    WX_MP_MALFORMED, "two names", "two names");
	expect("--" B "\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--" B "--\r\n",
	    WX_MP_MALFORMED, "malformed", "an unterminated quoted name");
	expect("--" B "\r\nno colon here\r\n\r\nx\r\n--" B "--\r\n",
	    WX_MP_MALFORMED, "malformed header line", "a header line without a colon");
	expect("--" B "\r\n\r\nx\r\n--" B "--\r\n", WX_MP_MALFORMED, "no Content-Disposition",
	    "a part with no headers");
	expect("no boundary anywhere in this body", WX_MP_MALFORMED, "does not contain the multipart",
	    "a body without the boundary");
	expect("--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\nxyz", WX_MP_TRUNCATED,
	    "before the closing multipart boundary", "a body without a closing boundary");

	/* Accepted variants. */
	struct result r;
	const char *b1 = "--" B "\r\nContent-Disposition: form-data; name=a\r\n"
	    "X-Other: 1\r\n\r\n\r\n--" B "--";
	struct src s = { b1, strlen(b1), 0, SIZE_MAX, 0, SIZE_MAX };
	parse_all(&s, B, false, 4096, &r);
	ok(r.rc == 0 && r.nparts == 1 && r.parts[0].len == 0,
	    "an empty part and a close without CRLF or epilogue parse");
	result_free(&r);
	const char *b2 = "--" B "--\r\n";
	struct src s2 = { b2, strlen(b2), 0, SIZE_MAX, 0, SIZE_MAX };
	parse_all(&s2, B, false, 4096, &r);
	ok(r.rc == 0 && r.nparts == 0, "a body with only the closing boundary has no parts");
	result_free(&r);
}

static void
test_limits(void)
{
	/* Header block just under and just over 8 KiB. */
	for (int over = 0; over < 2; over++) {
		size_t pad = WX_MP_MAX_HEADER_BLOCK - 60 + (size_t)over * 100;
		char *body = xmalloc(pad + 512);
		int n = snprintf(body, 512, "--" B "\r\nContent-Disposition: form-data; name=a\r\nX-Pad: ");
		memset(body + n, 'p', pad);
		snprintf(body + n + pad, 256, "\r\n\r\nv\r\n--" B "--\r\n");
		struct result r;
		struct src s = { body, strlen(body), 0, SIZE_MAX, 0, SIZE_MAX };
		parse_all(&s, B, false, 4096, &r);
		if (over) {
			is_int(r.err, WX_MP_LIMIT, "a part header block over 8 KiB is refused");
			has_str(r.msg, "headers are longer than 8192 bytes", "... saying so");
		} else {
			ok(r.rc == 0 && r.nparts == 1, "a header block just under 8 KiB is fine (%s)",
			    r.msg);
		}
		result_free(&r);
		free(body);
	}

	/* Part count. */
	size_t per = strlen("--" B "\r\nContent-Disposition: form-data; name=p\r\n\r\nv\r\n");
	size_t count = WX_MP_MAX_PARTS + 1;
	char *body = xmalloc(per * count + 64);
	size_t off = 0;
	for (size_t i = 0; i < count; i++)
		off += (size_t)snprintf(body + off, per + 1,
		    "--" B "\r\nContent-Disposition: form-data; name=p\r\n\r\nv\r\n");
	snprintf(body + off, 64, "--" B "--\r\n");
	struct result r;
	struct src s = { body, strlen(body), 0, SIZE_MAX, 0, SIZE_MAX };
	parse_all(&s, B, false, 4096, &r);
	is_int(r.err, WX_MP_LIMIT, "more than %d parts are refused", WX_MP_MAX_PARTS);
	has_str(r.msg, "more than 1000 parts", "... saying so");
	result_free(&r);
	free(body);

	/* Preamble and epilogue bounds. */
	size_t big = 70 * 1024;
	body = xmalloc(big + 256);
	memset(body, 'a', big);
	snprintf(body + big, 256, "\r\n--" B "--\r\n");
	struct src s2 = { body, strlen(body), 0, SIZE_MAX, 0, SIZE_MAX };
	parse_all(&s2, B, false, 4096, &r);
	is_int(r.err, WX_MP_MALFORMED, "a preamble over 64 KiB is refused");
	result_free(&r);
	/* Regression (hostile corpus, mp-preamble-over-64k): with a buffer larger
	 * than the preamble, the delimiter was found in the first fill and the
	 * limit was never checked. */
	parse_bufsize = 256 * 1024;
	struct src s2b = { body, strlen(body), 0, SIZE_MAX, 0, SIZE_MAX };
	parse_all(&s2b, B, false, 4096, &r);
	is_int(r.err, WX_MP_MALFORMED, "a preamble over 64 KiB is refused when it arrives in one read");
	result_free(&r);
	parse_bufsize = 16 * 1024;
	int n = snprintf(body, 256, "--" B "--\r\n");
	memset(body + n, 'e', big);
	body[n + big] = '\0';
	struct src s3 = { body, strlen(body), 0, SIZE_MAX, 0, SIZE_MAX };
	parse_all(&s3, B, false, 4096, &r);
	is_int(r.err, WX_MP_LIMIT, "an epilogue over 64 KiB is refused");
	result_free(&r);
	free(body);

	/* Long parameters the parser does not use are skipped, whole. */
	char longparam[700];
	memset(longparam, 'q', 600);
	longparam[600] = '\0';
	char *lp = xasprintf("--" B "\r\nContent-Disposition: form-data; name=a; filename*=UTF-8''%s; "
	    "%s=1; filename=\"f\"\r\n\r\nv\r\n--" B "--\r\n", longparam, longparam);
	struct src s5 = { lp, strlen(lp), 0, SIZE_MAX, 0, SIZE_MAX };
	parse_all(&s5, B, false, 4096, &r);
	ok(r.rc == 0 && r.nparts == 1 && strcmp(r.parts[0].filename, "f") == 0,
	    "a 600-byte filename* value and a 600-byte parameter name are skipped (%s)", r.msg);
	result_free(&r);
	free(lp);
	char *ct = xasprintf("multipart/form-data; %s=x; boundary=ok", longparam);
	char bnd[WX_MP_MAX_BOUNDARY + 1];
	ok(wx_mp_boundary_from_content_type(ct, bnd) == NULL && strcmp(bnd, "ok") == 0,
	    "a long unknown Content-Type parameter is skipped");
	free(ct);

	/* A name over 255 bytes. */
	char longname[400];
	memset(longname, 'n', 300);
	longname[300] = '\0';
	char *b = xasprintf("--" B "\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\nv\r\n--"
	    B "--\r\n", longname);
	struct src s4 = { b, strlen(b), 0, SIZE_MAX, 0, SIZE_MAX };
	parse_all(&s4, B, false, 4096, &r);
	is_int(r.err, WX_MP_LIMIT, "a part name over 255 bytes is refused");
	result_free(&r);
	free(b);
}

static void
test_content_type(void)
{
	char out[WX_MP_MAX_BOUNDARY + 1];
	const char *why;
	why = wx_mp_boundary_from_content_type("multipart/form-data; boundary=abc123", out);
	ok(why == NULL && strcmp(out, "abc123") == 0, "plain boundary parameter");
	why = wx_mp_boundary_from_content_type("Multipart/Form-Data;BOUNDARY=\"a b'()+_,-./:=?\"",
	    out);
	ok(why == NULL && strcmp(out, "a b'()+_,-./:=?") == 0,
	    "case-insensitive type and name, quoted boundary with every bchar (%s)", why ? why : "");
	why = wx_mp_boundary_from_content_type("multipart/form-data; charset=utf-8; boundary=x;", out);
	ok(why == NULL && strcmp(out, "x") == 0, "other parameters and a trailing ';'");
	why = wx_mp_boundary_from_content_type(NULL, out);
	has_str(why, "no Content-Type", "no Content-Type");
	why = wx_mp_boundary_from_content_type("application/json", out);
	has_str(why, "not multipart/form-data", "another media type");
	why = wx_mp_boundary_from_content_type("multipart/form-dataX; boundary=a", out);
	has_str(why, "not multipart/form-data", "a longer media type");
	why = wx_mp_boundary_from_content_type("multipart/form-data", out);
	has_str(why, "no boundary", "no boundary");
	why = wx_mp_boundary_from_content_type("multipart/form-data; boundary=a; boundary=b", out);
	has_str(why, "twice", "two boundaries");
	char seventy[80], seventyone[90];
	memset(seventy, 'b', 70);
	seventy[70] = '\0';
	memset(seventyone, 'b', 71);
	seventyone[71] = '\0';
	char *ct = xasprintf("multipart/form-data; boundary=%s", seventy);
	why = wx_mp_boundary_from_content_type(ct, out);
	ok(why == NULL && strlen(out) == 70, "a 70-character boundary is accepted");
	free(ct);
	ct = xasprintf("multipart/form-data; boundary=%s", seventyone);
	why = wx_mp_boundary_from_content_type(ct, out);
	has_str(why, "longer than 70", "a 71-character boundary is refused");
	free(ct);
	why = wx_mp_boundary_from_content_type("multipart/form-data; boundary=\"a\\\"b\"", out);
	has_str(why, "does not allow", "a boundary with a quote is refused");
	why = wx_mp_boundary_from_content_type("multipart/form-data; boundary=\"ab \"", out);
	has_str(why, "ends in a space", "a boundary ending in a space is refused");
	why = wx_mp_boundary_from_content_type("multipart/form-data; boundary=\"\"", out);
	has_str(why, "empty", "an empty boundary is refused");
	ok(wx_mp_new("bad\"boundary", 0, src_read, NULL) == NULL, "wx_mp_new refuses a bad boundary");
}

int
main(void)
{
	test_splits();
	test_truncation();
	test_malformed();
	test_limits();
	test_content_type();
	return tap_done();
}
