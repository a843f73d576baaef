#include "autoconf.h"

#include "multipart.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Spaces/tabs allowed between a delimiter and its CRLF (transport padding). */
#define MAX_PADDING 64

enum mp_state {
	ST_PREAMBLE,   /* before the first delimiter */
	ST_HEADERS,    /* after a delimiter line, before the part's header block */
	ST_BODY,       /* inside a part's content */
	ST_EPILOGUE,   /* after the closing delimiter, before EOF */
	ST_DONE,       /* closing delimiter seen and input at EOF */
	ST_ERROR,
};

struct wx_multipart {
	wx_mp_read_fn read_fn;
	void *ctx;
	enum mp_state state;
	char delim[4 + WX_MP_MAX_BOUNDARY + 1]; /* "\r\n--" boundary */
	size_t dlen;
	unsigned char *buf;
	size_t cap, pos, len;
	bool eof;
	uint64_t bytes_in;
	uint64_t skipped;       /* preamble or epilogue bytes discarded */
	int parts;
	enum wx_mp_error err;
	char errmsg[256];
};

static int
fail(struct wx_multipart *mp, enum wx_mp_error code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(struct wx_multipart *mp, enum wx_mp_error code, const char *fmt, ...)
{
	if (mp->state == ST_ERROR)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(mp->errmsg, sizeof mp->errmsg, fmt, ap);
	va_end(ap);
	mp->err = code;
	mp->state = ST_ERROR;
	return -1;
}

/* --- boundary and parameter syntax --- */

static bool
is_bchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c != '\0' && strchr("'()+_,-./:=? ", c) != NULL);
}

const char *
wx_mp_boundary_check(const char *b)
{
	size_t len = strlen(b);
	if (len == 0)
		return "the multipart boundary is empty";
	if (len > WX_MP_MAX_BOUNDARY)
		return "the multipart boundary is longer than 70 characters (RFC 2046)";
	for (size_t i = 0; i < len; i++)
		if (!is_bchar((unsigned char)b[i]))
			return "the multipart boundary contains a character RFC 2046 does not allow";
	if (b[len - 1] == ' ')
		return "the multipart boundary ends in a space (RFC 2046 does not allow it)";
	return NULL;
}

static bool
is_tchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

static const char *
skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * Parses the next ";name=value" parameter of a header value at *p (after the
 * media type or disposition type).  The value is a token or a quoted string
 * (backslash escapes).  Returns 1 with name (lowercased) and value, 0 at the
 * end, -1 when malformed.  A name or value that does not fit is consumed
 * whole, stored cut short, and *too_long is set.
 */
static int
param_next(const char **pp, char *name, size_t nsize, char *value, size_t vsize, bool *too_long)
{
	const char *p = skip_ws(*pp);
	*too_long = false;
	if (*p == '\0')
		return 0;
	if (*p != ';')
		return -1;
	p = skip_ws(p + 1);
	if (*p == '\0') { /* a trailing ';' is tolerated, as Go does */
		*pp = p;
		return 0;
	}
	size_t n = 0;
	while (is_tchar((unsigned char)*p)) {
		char c = *p++;
		if (n + 1 < nsize)
			name[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		else
			*too_long = true;
	}
	name[n] = '\0';
	if (n == 0)
		return -1;
	p = skip_ws(p);
	if (*p != '=')
		return -1;
	p = skip_ws(p + 1);
	size_t v = 0;
	if (*p == '"') {
		p++;
		for (;;) {
			char c = *p++;
			if (c == '\0')
				return -1; /* unterminated */
			if (c == '"')
				break;
			if (c == '\\') {
				c = *p++;
				if (c == '\0')
					return -1;
			}
			if ((unsigned char)c < 0x20 || c == 0x7f)
				return -1;
			if (v + 1 < vsize)
				value[v++] = c;
			else
				*too_long = true;
		}
	} else {
		const char *start = p;
		while (is_tchar((unsigned char)*p)) {
			if (v + 1 < vsize)
				value[v++] = *p;
			else
				*too_long = true;
			p++;
		}
		if (p == start)
			return -1;
	}
	value[v] = '\0';
	*pp = p;
	return 1;
}

const char *
wx_mp_boundary_from_content_type(const char *ct, char *out)
{
	static const char type[] = "multipart/form-data";
	if (ct == NULL || *ct == '\0')
		return "the request has no Content-Type; expected multipart/form-data with a boundary";
	const char *p = skip_ws(ct);
	size_t tlen = strlen(type);
	if (strncasecmp(p, type, tlen) != 0 ||
	    (p[tlen] != '\0' && p[tlen] != ';' && p[tlen] != ' ' && p[tlen] != '\t'))
		return "the request's Content-Type is not multipart/form-data";
	p += tlen;
	bool found = false;
	for (;;) {
		char name[64], value[WX_MP_MAX_BOUNDARY + 2];
		bool too_long;
		int r = param_next(&p, name, sizeof name, value, sizeof value, &too_long);
		if (r == 0)
			break;
		if (r < 0)
			return "the request's Content-Type has malformed parameters";
		if (too_long && strcmp(name, "boundary") == 0)
			return "the multipart boundary is longer than 70 characters (RFC 2046)";
		if (strcmp(name, "boundary") == 0) {
			if (found)
				return "the request's Content-Type names the boundary twice";
			const char *why = wx_mp_boundary_check(value);
			if (why != NULL)
				return why;
			memcpy(out, value, strlen(value) + 1);
			found = true;
		}
	}
	if (!found)
		return "the request's Content-Type has no boundary parameter";
	return NULL;
}

/* --- the parser --- */

struct wx_multipart *
wx_mp_new(const char *boundary, size_t bufsize, wx_mp_read_fn read_fn, void *ctx)
{
	if (wx_mp_boundary_check(boundary) != NULL || read_fn == NULL)
		return NULL;
	if (bufsize < 16 * 1024)
		bufsize = 16 * 1024;
	struct wx_multipart *mp = xcalloc(1, sizeof *mp);
	mp->read_fn = read_fn;
	mp->ctx = ctx;
	mp->state = ST_PREAMBLE;
	mp->dlen = (size_t)snprintf(mp->delim, sizeof mp->delim, "\r\n--%s", boundary);
	mp->cap = bufsize + 2 * sizeof mp->delim;
	mp->buf = xmalloc(mp->cap);
	/*
	 * The first delimiter has no CRLF before it when there is no preamble;
	 * starting the buffer with one makes every delimiter look the same.
	 */
	memcpy(mp->buf, "\r\n", 2);
	mp->len = 2;
	return mp;
}

void
wx_mp_free(struct wx_multipart *mp)
{
	if (mp == NULL)
		return;
	free(mp->buf);
	free(mp);
}

enum wx_mp_error
wx_mp_errcode(const struct wx_multipart *mp)
{
	return mp->err;
}

const char *
wx_mp_error(const struct wx_multipart *mp)
{
	return mp->err == WX_MP_OK ? "" : mp->errmsg;
}

/*
 * Moves unread bytes to the front and reads more.  Returns 1 when bytes were
 * added, 0 at EOF, -1 when the input failed.
 */
static int
fill(struct wx_multipart *mp)
{
	if (mp->eof)
		return 0;
	if (mp->pos > 0) {
		memmove(mp->buf, mp->buf + mp->pos, mp->len - mp->pos);
		mp->len -= mp->pos;
		mp->pos = 0;
	}
	if (mp->len >= mp->cap)
		return fail(mp, WX_MP_LIMIT, "internal: multipart buffer full");
	for (;;) {
		ssize_t n = mp->read_fn(mp->ctx, mp->buf + mp->len, mp->cap - mp->len);
		if (n < 0)
			return fail(mp, WX_MP_INPUT, "the request body could not be read to its end");
		if (n == 0) {
			mp->eof = true;
			return 0;
		}
		if ((size_t)n > mp->cap - mp->len)
			return fail(mp, WX_MP_INPUT, "internal: read function overran its buffer");
		mp->len += (size_t)n;
		mp->bytes_in += (uint64_t)n;
		return 1;
	}
}

/* fill(), with EOF turned into a "truncated" error naming where it happened. */
static int
fill_or_truncated(struct wx_multipart *mp, const char *where)
{
	int r = fill(mp);
	if (r == 0)
		return fail(mp, WX_MP_TRUNCATED,
		    "the request body ended %s %d, before the closing multipart boundary; the "
		    "upload was cut off", where, mp->parts);
	return r < 0 ? -1 : 0;
}

enum delim_kind { D_NEED_MORE, D_NOT, D_NEXT, D_CLOSE };

/*
 * Classifies a delimiter candidate at buf[pos]: followed by "--" (the close),
 * by padding and CRLF (another part), by something else (not a delimiter,
 * part content), or more bytes are needed to tell.  *consumed is the length
 * of the delimiter line.
 */
static enum delim_kind
classify(const struct wx_multipart *mp, size_t *consumed)
{
	const unsigned char *p = mp->buf + mp->pos + mp->dlen;
	size_t avail = mp->len - mp->pos - mp->dlen;
	if (avail < 1)
		return D_NEED_MORE;
	if (p[0] == '-') {
		if (avail < 2)
			return D_NEED_MORE;
		if (p[1] != '-')
			return D_NOT;
		*consumed = mp->dlen + 2;
		return D_CLOSE;
	}
	size_t i = 0;
	while (i < avail && (p[i] == ' ' || p[i] == '\t')) {
		if (++i > MAX_PADDING)
			return D_NOT;
	}
	if (i + 2 > avail)
		return D_NEED_MORE;
	if (p[i] != '\r' || p[i + 1] != '\n')
		return D_NOT;
	*consumed = mp->dlen + i + 2;
	return D_NEXT;
}

/* Steps over a delimiter (D_NEXT or D_CLOSE) of consumed bytes into what
 * follows it: the next part's headers, or the epilogue. */
static int
past_delimiter(struct wx_multipart *mp, enum delim_kind d, size_t consumed)
{
	mp->pos += consumed;
	if (d == D_CLOSE) {
		mp->skipped = 0;
		mp->state = ST_EPILOGUE;
	} else {
		mp->state = ST_HEADERS;
	}
	return 0;
}

static const unsigned char *
find(const unsigned char *hay, size_t n, const void *needle, size_t nlen)
{
	return memmem(hay, n, needle, nlen);
}

ssize_t
wx_mp_read_ptr(struct wx_multipart *mp, const void **data, size_t n)
{
	if (mp->state == ST_ERROR)
		return -1;
	if (mp->state != ST_BODY || n == 0)
		return 0;
	for (;;) {
		size_t avail = mp->len - mp->pos;
		const unsigned char *at = mp->buf + mp->pos;
		const unsigned char *hit = avail >= mp->dlen ? find(at, avail, mp->delim, mp->dlen) : NULL;
		size_t give = 0;
		if (hit != NULL && hit > at) {
			give = (size_t)(hit - at);
		} else if (hit != NULL) {
			size_t consumed = 0;
			enum delim_kind d = classify(mp, &consumed);
			switch (d) {
			case D_NOT:
				give = 1; /* a lookalike: its first byte is content */
				break;
			case D_NEED_MORE:
				if (fill_or_truncated(mp, "inside part") < 0)
					return -1;
				continue;
			case D_CLOSE:
			case D_NEXT:
				return past_delimiter(mp, d, consumed);
			}
		} else {
			/* The last dlen-1 bytes may begin a delimiter: keep them. */
			give = avail >= mp->dlen ? avail - (mp->dlen - 1) : 0;
			if (give == 0) {
				if (fill_or_truncated(mp, "inside part") < 0)
					return -1;
				continue;
			}
		}
		if (give > n)
			give = n;
		*data = at;
		mp->pos += give;
		return (ssize_t)give;
	}
}

ssize_t
wx_mp_read(struct wx_multipart *mp, void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		const void *p;
		ssize_t r = wx_mp_read_ptr(mp, &p, n - done);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		memcpy((char *)buf + done, p, (size_t)r);
		done += (size_t)r;
		/* Return what is buffered rather than block for more. */
		if (mp->len - mp->pos < mp->dlen)
			break;
	}
	return (ssize_t)done;
}

/* Skips the preamble up to the first delimiter line. */
static int
skip_preamble(struct wx_multipart *mp)
{
	for (;;) {
		size_t avail = mp->len - mp->pos;
		const unsigned char *at = mp->buf + mp->pos;
		const unsigned char *hit = avail >= mp->dlen ? find(at, avail, mp->delim, mp->dlen) : NULL;
		if (hit != NULL) {
			mp->skipped += (uint64_t)(hit - at);
			mp->pos += (size_t)(hit - at);
			/* Also when the whole preamble arrived in one buffer. */
			if (mp->skipped > WX_MP_MAX_PREAMBLE)
				return fail(mp, WX_MP_MALFORMED, "the request body does not start with "
				    "the multipart boundary named in its Content-Type");
			size_t consumed = 0;
			enum delim_kind d = classify(mp, &consumed);
			switch (d) {
			case D_NOT:
				mp->pos++;
				mp->skipped++;
				continue;
			case D_NEED_MORE:
				break;
			case D_CLOSE:
			case D_NEXT:
				return past_delimiter(mp, d, consumed);
			}
		} else if (avail >= mp->dlen) {
			mp->skipped += avail - (mp->dlen - 1);
			mp->pos += avail - (mp->dlen - 1);
		}
		if (mp->skipped > WX_MP_MAX_PREAMBLE)
			return fail(mp, WX_MP_MALFORMED,
			    "the request body does not start with the multipart boundary named in its "
			    "Content-Type");
		int r = fill(mp);
		if (r < 0)
			return -1;
		if (r == 0) {
			if (mp->bytes_in == 0)
				return fail(mp, WX_MP_TRUNCATED, "the request body is empty");
			if (hit != NULL)
				return fail(mp, WX_MP_TRUNCATED,
				    "the request body ended right after its first multipart boundary");
			return fail(mp, WX_MP_MALFORMED,
			    "the request body does not contain the multipart boundary named in its "
			    "Content-Type");
		}
	}
}

/* Reads and discards the epilogue up to EOF. */
static int
drain_epilogue(struct wx_multipart *mp)
{
	for (;;) {
		mp->skipped += mp->len - mp->pos;
		mp->pos = mp->len;
		if (mp->skipped > WX_MP_MAX_EPILOGUE)
			return fail(mp, WX_MP_LIMIT,
			    "more than %d bytes follow the closing multipart boundary",
			    WX_MP_MAX_EPILOGUE);
		int r = fill(mp);
		if (r < 0)
			return -1;
		if (r == 0) {
			mp->state = ST_DONE;
			return 0;
		}
	}
}

static bool
header_is(const char *line, size_t namelen, const char *name)
{
	return strlen(name) == namelen && strncasecmp(line, name, namelen) == 0;
}

static int
parse_disposition(struct wx_multipart *mp, const char *v, struct wx_mp_part *part, bool *named)
{
	static const char fd[] = "form-data";
	const char *p = skip_ws(v);
	size_t tlen = strlen(fd);
	if (strncasecmp(p, fd, tlen) != 0 ||
	    (p[tlen] != '\0' && p[tlen] != ';' && p[tlen] != ' ' && p[tlen] != '\t'))
		return fail(mp, WX_MP_MALFORMED,
		    "part %d's Content-Disposition is not form-data", part->index + 1);
	p += tlen;
	bool has_name = false;
	for (;;) {
		char pname[32], value[WX_MP_NAME_MAX];
		bool too_long;
		int r = param_next(&p, pname, sizeof pname, value, sizeof value, &too_long);
		if (r == 0)
			break;
		if (r < 0)
			return fail(mp, WX_MP_MALFORMED,
			    "part %d's Content-Disposition is malformed", part->index + 1);
		bool used = strcmp(pname, "name") == 0 || strcmp(pname, "filename") == 0;
		if (too_long && used)
			return fail(mp, WX_MP_LIMIT, "part %d's %s is longer than %d bytes",
			    part->index + 1, pname, WX_MP_NAME_MAX - 1);
		if (too_long)
			continue; /* a long parameter we do not use, e.g. filename* */
		if (strcmp(pname, "name") == 0) {
			if (has_name)
				return fail(mp, WX_MP_MALFORMED,
				    "part %d's Content-Disposition has two names", part->index + 1);
			memcpy(part->name, value, strlen(value) + 1);
			has_name = true;
		} else if (strcmp(pname, "filename") == 0) {
			if (part->has_filename)
				return fail(mp, WX_MP_MALFORMED,
				    "part %d's Content-Disposition has two file names", part->index + 1);
			memcpy(part->filename, value, strlen(value) + 1);
			part->has_filename = true;
		}
	}
	*named = has_name;
	return 0;
}

/* One unfolded header line "Name: value" (NUL-terminated). */
static int
parse_header_line(struct wx_multipart *mp, char *line, struct wx_mp_part *part, bool *seen_cd,
    bool *named)
{
	char *colon = strchr(line, ':');
	if (colon == NULL || colon == line)
		return fail(mp, WX_MP_MALFORMED, "part %d has a malformed header line",
		    part->index + 1);
	size_t nlen = (size_t)(colon - line);
	for (size_t i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)line[i]))
			return fail(mp, WX_MP_MALFORMED, "part %d has a malformed header name",
			    part->index + 1);
	char *value = (char *)skip_ws(colon + 1);
	size_t vlen = strlen(value);
	while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
		value[--vlen] = '\0';
	if (header_is(line, nlen, "Content-Disposition")) {
		if (*seen_cd)
			return fail(mp, WX_MP_MALFORMED, "part %d has two Content-Disposition headers",
			    part->index + 1);
		*seen_cd = true;
		return parse_disposition(mp, value, part, named);
	}
	if (header_is(line, nlen, "Content-Type"))
		wx_strlcpy(part->content_type, value, sizeof part->content_type);
	return 0;
}

/*
 * Parses a header block of len bytes (lines ending in CRLF, the final empty
 * line excluded).  Folded lines (starting with a space or tab) continue the
 * previous header.
 */
static int
parse_headers(struct wx_multipart *mp, const unsigned char *block, size_t len,
    struct wx_mp_part *part)
{
	char logical[WX_MP_MAX_HEADER_BLOCK + 1];
	size_t llen = 0;
	bool have = false, seen_cd = false, named = false;
	size_t i = 0;
	while (i < len) {
		const unsigned char *eol = find(block + i, len - i, "\r\n", 2);
		size_t end = eol ? (size_t)(eol - block) : len;
		const unsigned char *line = block + i;
		size_t ll = end - i;
		for (size_t k = 0; k < ll; k++)
			if (line[k] == '\0' || line[k] == '\r' || line[k] == '\n')
				return fail(mp, WX_MP_MALFORMED,
				    "part %d's headers contain a control character", part->index + 1);
		bool cont = ll > 0 && (line[0] == ' ' || line[0] == '\t');
		if (cont && !have)
			return fail(mp, WX_MP_MALFORMED, "part %d's headers start with a continuation line",
			    part->index + 1);
		if (!cont && have) {
			logical[llen] = '\0';
			if (parse_header_line(mp, logical, part, &seen_cd, &named) < 0)
				return -1;
			llen = 0;
		}
		memcpy(logical + llen, line, ll); /* len <= WX_MP_MAX_HEADER_BLOCK */
		llen += ll;
		have = true;
		i = end + 2;
	}
	if (have) {
		logical[llen] = '\0';
		if (parse_header_line(mp, logical, part, &seen_cd, &named) < 0)
			return -1;
	}
	if (!seen_cd)
		return fail(mp, WX_MP_MALFORMED, "part %d has no Content-Disposition header",
		    part->index + 1);
	if (!named)
		return fail(mp, WX_MP_MALFORMED, "part %d has no name", part->index + 1);
	return 0;
}

static int
read_headers(struct wx_multipart *mp, struct wx_mp_part *part)
{
	memset(part, 0, sizeof *part);
	part->index = mp->parts;
	if (++mp->parts > WX_MP_MAX_PARTS)
		return fail(mp, WX_MP_LIMIT, "the request body has more than %d parts",
		    WX_MP_MAX_PARTS);
	for (;;) {
		size_t avail = mp->len - mp->pos;
		const unsigned char *at = mp->buf + mp->pos;
		if (avail >= 2 && at[0] == '\r' && at[1] == '\n') {
			mp->pos += 2; /* no headers at all */
			return parse_headers(mp, at, 0, part);
		}
		const unsigned char *end = find(at, avail, "\r\n\r\n", 4);
		if (end != NULL) {
			size_t blen = (size_t)(end - at) + 2;
			if (blen > WX_MP_MAX_HEADER_BLOCK)
				break;
			mp->pos += blen + 2;
			return parse_headers(mp, at, blen - 2, part);
		}
		if (avail > WX_MP_MAX_HEADER_BLOCK)
			break;
		if (fill_or_truncated(mp, "inside the headers of part") < 0)
			return -1;
	}
	return fail(mp, WX_MP_LIMIT, "part %d's headers are longer than %d bytes", part->index + 1,
	    WX_MP_MAX_HEADER_BLOCK);
}

int
wx_mp_next_part(struct wx_multipart *mp, struct wx_mp_part *part)
{
	for (;;) {
		switch (mp->state) {
		case ST_ERROR:
			return -1;
		case ST_DONE:
			return 0;
		case ST_PREAMBLE:
			if (skip_preamble(mp) < 0)
				return -1;
			break;
		case ST_BODY: {
			const void *p;
			ssize_t r;
			while ((r = wx_mp_read_ptr(mp, &p, SIZE_MAX)) > 0)
				;
			if (r < 0)
				return -1;
			break;
		}
		case ST_EPILOGUE:
			if (drain_epilogue(mp) < 0)
				return -1;
			return 0;
		case ST_HEADERS:
			if (read_headers(mp, part) < 0)
				return -1;
			mp->state = ST_BODY;
			return 1;
		}
	}
}
