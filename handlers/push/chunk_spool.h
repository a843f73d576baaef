/*
 * The source's spool of a chunked upload (docs/protocol.md §4): the body
 * produced once, in order, from a reader, kept on disk until the
 * destination acknowledged it.  Two slots (unlinked 0600 files in the
 * state directory, so memory does not grow with the chunk size), each of
 * at most one chunk, hold body bytes [chunk_spool_start, produced) back to
 * back: the chunk on the wire in one, the next one produced into the other
 * meanwhile (chunk_spool_step between libcurl's turns), so making the body
 * and sending it overlap.
 *
 * floor: the lowest body offset that may still be sent (the acknowledged
 * offset, or the start of the request in flight); a slot is reused only
 * when all it holds lies below floor.  Producing up to floor + cap always
 * fits.
 */
#ifndef WX_PUSH_CHUNK_SPOOL_H
#define WX_PUSH_CHUNK_SPOOL_H

#include "sha256_state.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CHUNK_SPOOL_IO (256 * 1024)   /* one production step, one hashing read */

/* The reader's "no byte ready now" while a request is in flight (the next step asks again). */
#define CHUNK_SPOOL_LATER (-2)
/* The body: > 0 bytes, 0 at its end, -1 when it cannot go on, or CHUNK_SPOOL_LATER. */
typedef ssize_t (*chunk_spool_reader)(void *ctx, void *buf, size_t n);
/* Why the reader failed. */
typedef const char *(*chunk_spool_reader_error)(void *ctx);
/* Told after each read: the body offset reached and the SHA-256 state there. */
typedef void (*chunk_spool_reached)(void *ctx, int64_t produced, const struct wx_sha256 *whole);

struct chunk_spool_slot {
	int fd;
	int64_t off, len;             /* body bytes [off, off + len) */
	struct wx_sha256 sha;         /* of those bytes, when slot_digests: a chunk that is one
	                               * slot needs no read to hash */
	struct wx_sha256 start;       /* the body's SHA-256 state at off */
};

struct chunk_spool {
	struct chunk_spool_slot slot[2];
	int newest;                   /* the slot produced into; the other one is older */
	int64_t produced;             /* body bytes made so far */
	bool eof;                     /* the reader said its end */
	bool later;                   /* the last step's reader had no byte ready */
	bool failed;                  /* the reader failed: why says why */
	char why[512];
	struct wx_sha256 whole;       /* SHA-256 of body bytes [0, produced) */
	bool slot_digests;            /* keep each slot's own SHA-256 (slot.sha) */
	unsigned char *io;            /* CHUNK_SPOOL_IO bytes */
	chunk_spool_reader read;
	chunk_spool_reader_error error;
	void *ctx;
	chunk_spool_reached reached;  /* NULL, or told after each read */
	void *reached_ctx;
};

/*
 * Makes the two slots in dir (O_TMPFILE, else a name from hint unlinked at
 * once).  0, or -1 with why set.  chunk_spool_close frees what it made,
 * also after a failure.
 */
int chunk_spool_open(struct chunk_spool *s, const char *dir, const char *hint,
    chunk_spool_reader read, chunk_spool_reader_error error, void *ctx,
    char *why, size_t whysize);
void chunk_spool_close(struct chunk_spool *s);
/* A new reader (the same body made again): nothing produced, the digest and both slots empty. */
void chunk_spool_restart(struct chunk_spool *s, void *ctx);
/*
 * A new reader that starts at body offset `at`, where the body's SHA-256
 * state was *whole (a mark: chunked.c): the slots empty at `at`.
 */
void chunk_spool_restart_at(struct chunk_spool *s, void *ctx, int64_t at,
    const struct wx_sha256 *whole);
/*
 * Produces body bytes [produced, upto) without keeping them (hashed only):
 * the slots then start at upto.  0; -1 when the reader failed (s->why) or
 * ended first (s->eof).
 */
int chunk_spool_skip(struct chunk_spool *s, int64_t upto);
/* The lowest body offset the slots hold (== produced when they are empty). */
int64_t chunk_spool_start(const struct chunk_spool *s);
/*
 * One production step of at most CHUNK_SPOOL_IO bytes, slots of cap bytes:
 * 1 when bytes were produced, 0 when there is nothing to do (the end, or
 * no slot free above floor), -1 when the reader failed (now or before;
 * s->why) or the spool could not be written (s->why).
 */
int chunk_spool_step(struct chunk_spool *s, int64_t floor, int64_t cap);
/* Steps until produced >= upto or the end, or the reader said CHUNK_SPOOL_LATER
 * (then produced may be short of upto).  0, or -1 (s->why). */
int chunk_spool_fill(struct chunk_spool *s, int64_t upto, int64_t floor, int64_t cap);
/* n body bytes at off, which the slots must hold, into buf.  0 or -1. */
int chunk_spool_read(struct chunk_spool *s, void *buf, size_t n, int64_t off);
/* SHA-256 of the body bytes [off, off + len) the slots hold: a slot's own
 * digest when the range is exactly that slot and slot_digests is set (the
 * usual chunk), else read back and hashed.  0 or -1. */
int chunk_spool_range_sha256(struct chunk_spool *s, int64_t off, int64_t len,
    unsigned char md[32]);
/* SHA-256 of body bytes [0, produced).  0 or -1. */
int chunk_spool_whole_sha256(const struct chunk_spool *s, unsigned char md[32]);
/* SHA-256 of body bytes [0, end), end in [the slots' start, produced]: no
 * read when end is produced or where a slot starts (the slots lie back to
 * back, so every slot's end is one of them: the usual chunk), else the
 * slot's bytes up to end read back and hashed.  0, or -1 (errno). */
int chunk_spool_prefix_sha256(struct chunk_spool *s, int64_t end, unsigned char md[32]);

#endif
