/*
 * A pull-style streaming parser for multipart/form-data (RFC 7578 over
 * RFC 2046), for request bodies of any size in bounded memory.
 *
 * The caller supplies a read function (the request body, or a byte buffer in
 * tests and the fuzzer) and pulls: wx_mp_next_part() -> the part's headers ->
 * wx_mp_read()/wx_mp_read_ptr() until 0 -> wx_mp_next_part() ... until it
 * returns 0 at the closing boundary.  Memory is one buffer of the size given
 * at creation (plus a few hundred bytes); a boundary may be split anywhere
 * across reads.
 *
 * Rules (what the Go peers, curl and browsers send; anything else is an error
 * with a message that says what was wrong):
 *   - lines end in CRLF; the body starts with the first delimiter (a preamble
 *     of at most WX_MP_MAX_PREAMBLE bytes is skipped);
 *   - a delimiter "--boundary" counts only when followed by "--" (the close)
 *     or by optional spaces/tabs and CRLF; otherwise it is part content;
 *   - each part's header block is at most WX_MP_MAX_HEADER_BLOCK bytes;
 *     Content-Disposition must be form-data with a name;
 *   - at most WX_MP_MAX_PARTS parts;
 *   - the body must end with the closing delimiter; data after it (the
 *     epilogue) is read to EOF and discarded, at most WX_MP_MAX_EPILOGUE
 *     bytes; EOF anywhere before the closing delimiter is "truncated".
 */
#ifndef WX_MULTIPART_H
#define WX_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WX_MP_MAX_BOUNDARY 70            /* RFC 2046 */
#define WX_MP_MAX_HEADER_BLOCK 8192      /* per part */
#define WX_MP_MAX_PARTS 1000
#define WX_MP_MAX_PREAMBLE (64 * 1024)
#define WX_MP_MAX_EPILOGUE (64 * 1024)
#define WX_MP_NAME_MAX 256               /* name and filename, bytes incl. NUL */

/*
 * Reads up to n bytes into buf.  Returns > 0 bytes read, 0 at the end of the
 * input, -1 when the input failed (the request body was aborted, cut short,
 * or the transfer was cancelled).
 */
typedef ssize_t (*wx_mp_read_fn)(void *ctx, void *buf, size_t n);

enum wx_mp_error {
	WX_MP_OK = 0,
	WX_MP_MALFORMED,    /* not valid multipart/form-data */
	WX_MP_TRUNCATED,    /* the input ended before the closing delimiter */
	WX_MP_LIMIT,        /* a size or count limit above was passed */
	WX_MP_INPUT,        /* the read function failed */
};

struct wx_mp_part {
	char name[WX_MP_NAME_MAX];          /* form field name */
	char filename[WX_MP_NAME_MAX];      /* "" when none was given */
	char content_type[128];             /* "" when none was given */
	bool has_filename;
	int index;                          /* 0-based position in the body */
};

struct wx_multipart;

/*
 * Validates a boundary: 1..70 characters from RFC 2046's bchars, not ending
 * in a space.  Returns NULL, or a static description of the problem.
 */
const char *wx_mp_boundary_check(const char *boundary);

/*
 * Extracts the boundary from a Content-Type header value
 * ("multipart/form-data; boundary=xyz", the parameter quoted or not, names
 * case-insensitive) into out[WX_MP_MAX_BOUNDARY + 1].  Returns NULL, or a
 * static description of what is wrong (not multipart/form-data, no boundary,
 * invalid boundary).
 */
const char *wx_mp_boundary_from_content_type(const char *content_type, char *out);

/*
 * A parser over read_fn.  bufsize (>= 16 KiB) is the size of the one buffer
 * and of the reads asked of read_fn.  boundary must pass
 * wx_mp_boundary_check (else NULL is returned).  Free with wx_mp_free.
 */
struct wx_multipart *wx_mp_new(const char *boundary, size_t bufsize, wx_mp_read_fn read_fn,
    void *ctx);
void wx_mp_free(struct wx_multipart *mp);

/*
 * Advances to the next part, skipping what is left of the current one.
 * Returns 1 with *part filled, 0 after the closing delimiter (the epilogue
 * has been read to EOF), -1 on error (see wx_mp_errcode / wx_mp_error).
 */
int wx_mp_next_part(struct wx_multipart *mp, struct wx_mp_part *part);

/*
 * Reads part content.  wx_mp_read copies up to n bytes into buf;
 * wx_mp_read_ptr points *data into the parser's buffer at up to n bytes,
 * valid until the next call on mp.  Both return > 0 bytes, 0 at the end of
 * the part (and on every later call until wx_mp_next_part), -1 on error.
 */
ssize_t wx_mp_read(struct wx_multipart *mp, void *buf, size_t n);
ssize_t wx_mp_read_ptr(struct wx_multipart *mp, const void **data, size_t n);

/* The error of the last failed call; WX_MP_OK when none. */
enum wx_mp_error wx_mp_errcode(const struct wx_multipart *mp);
/* A sentence for people describing that error ("" when none). */
const char *wx_mp_error(const struct wx_multipart *mp);

#endif
