/*
 * What wingxfer-push reads from the destination's answers (bytes a remote
 * node chose): the X-Wingxfer-Capabilities header of the OPTIONS answer and
 * the error text of a refused upload.  Pure functions, fuzzed by
 * tests/fuzz/fuzz_push_answer.c.
 */
#ifndef WX_PUSH_ANSWER_H
#define WX_PUSH_ANSWER_H

#include <stdbool.h>
#include <stddef.h>

struct caps {
	bool header;            /* X-Wingxfer-Capabilities was in the answer */
	bool zstd;              /* ... and named zstd */
	bool preflight;         /* ... and named preflight (POST /api/transfers/preflight) */
	bool chunked;           /* ... and named chunked (docs/protocol.md, version 1) */
	bool presync;           /* ... and named presync (docs/presync.md) */
	bool prefix_digest;     /* ... and named prefix-digest (protocol.md §3.2) */
	bool body_checksum;     /* ... and named body-checksum (protocol.md §3.1) */
	long long chunk_max;    /* X-Wingxfer-Chunk-Max in bytes, 0 when absent or malformed */
};

/*
 * One header line of the OPTIONS answer as libcurl hands it over (n bytes,
 * not NUL-terminated, CRLF included).  A status line ("HTTP/...", a new
 * block after a 1xx) forgets what earlier lines said.  X-Wingxfer-Chunk-Max
 * is kept when it is a decimal number of bytes from 1 to 2^40.
 */
void answer_caps_line(struct caps *caps, const char *line, size_t n);

/*
 * "The destination answered HTTP <code>: <text>" into why: text is the
 * "error" string of a JSON object body, else the body's start; control
 * characters become spaces.  body holds len bytes followed by a NUL.
 */
void answer_describe(const char *body, size_t len, long code, char *why, size_t whysize);

#endif
