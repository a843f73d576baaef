/*
 * Live pre-sync (docs/presync.md): what changed inside a big file.  A file
 * is cut into fixed WX_PS_BLOCK_SIZE blocks, each hashed with SHA-256; the
 * sender keeps the list for the bytes it sent, and the next round sends
 * only the blocks whose hash differs, or just the tail when the old bytes
 * are an unchanged prefix (append-only files such as logs).
 *
 * Two passes, because a running game server may write the file at any
 * time: the plan reads and hashes the file and decides the ranges; the send
 * reads them again, re-hashing every block it touches.  A block that
 * changed between the passes is marked unknown (sent again next round), so
 * the hashes always describe exactly the bytes the destination holds.
 */
#ifndef WX_PRESYNC_BLOCKS_H
#define WX_PRESYNC_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "presync_manifest.h"

#define WX_PS_BLOCK_SIZE (64 * 1024)
/* Files smaller than this are always sent whole (no block list kept). */
#define WX_PS_BLOCKS_MIN (2 * WX_PS_BLOCK_SIZE)

struct wx_ps_blocks {
	int64_t size;                          /* bytes covered */
	size_t n;                              /* ceil(size / WX_PS_BLOCK_SIZE) */
	unsigned char (*hash)[WX_PS_SHA_LEN];  /* of each block's bytes (the last may be short) */
	unsigned char *valid;                  /* 0: unknown, treat as changed */
};

struct wx_ps_range {
	int64_t off, len;
};

/*
 * A file's SHA-256 in the manifest (its `sha`): the SHA-256 of the SHA-256s
 * of its WX_PS_BLOCK_SIZE blocks in order (the last one may be short; an
 * empty file has none).  As collision-resistant as the SHA-256 of the
 * content, and it costs nothing more once the blocks are hashed, which
 * change detection does anyway: the sender reads and hashes each byte once.
 * Both nodes compute it the same way (presync_verify.c, presync_apply.c).
 */
struct wx_ps_fhash {
	void *outer, *blk;      /* EVP_MD_CTX */
	size_t fill;            /* bytes of the current block hashed into blk */
	bool ok;                /* no OpenSSL failure so far */
};
/* 0, or -1 (OpenSSL). */
int wx_ps_fhash_init(struct wx_ps_fhash *h);
/* Bytes of the file, in order, split anyhow. */
void wx_ps_fhash_update(struct wx_ps_fhash *h, const void *p, size_t n);
/* A whole block's SHA-256, computed by the caller (at a block boundary only). */
void wx_ps_fhash_block(struct wx_ps_fhash *h, const unsigned char sha[WX_PS_SHA_LEN]);
/* The file's hash; 0, or -1 when anything failed.  Frees h. */
int wx_ps_fhash_final(struct wx_ps_fhash *h, unsigned char out[WX_PS_SHA_LEN]);
/* Frees h without a result (after a failure elsewhere); fine after final. */
void wx_ps_fhash_free(struct wx_ps_fhash *h);

struct wx_ps_plan {
	bool unhashed;             /* not read (nothing to compare with): the whole file of
	                            * size bytes; the send hashes what it sends */
	bool same;                 /* content equal to the old: nothing to send */
	bool append;               /* only [old size, size) is new */
	int64_t size;              /* bytes read */
	struct wx_ps_range *ranges;/* to send, ascending, coalesced; whole file without a base */
	size_t nranges;
	unsigned char sha[WX_PS_SHA_LEN];   /* of the bytes read (wx_ps_fhash) */
	struct wx_ps_blocks *blocks;        /* of the bytes read; NULL under WX_PS_BLOCKS_MIN */
};

void wx_ps_blocks_free(struct wx_ps_blocks *b);
/* Frees what p holds (not p) and zeroes it. */
void wx_ps_plan_free(struct wx_ps_plan *p);

/* Sum of the range lengths. */
int64_t wx_ps_plan_bytes(const struct wx_ps_plan *p);

/*
 * Pass 1: reads the regular file fd (from offset 0 to EOF) and compares it
 * with the old content the destination holds, described by old_blocks
 * and/or old_sha over old_size bytes (either may be NULL: then the old
 * content is unknown unless the other says).  Fills plan: same; else
 * append with the one tail range; else the changed blocks (and everything
 * past the old size) when old_blocks is given; else the whole file.
 * 0, or -1 with err filled.
 */
int wx_ps_plan_file(int fd, const struct wx_ps_blocks *old_blocks,
    const unsigned char *old_sha, int64_t old_size, struct wx_ps_plan *plan,
    char *err, size_t errsize);

/* Receives the bytes of a range, in order; 0, or -1 to stop. */
typedef int (*wx_ps_emit_fn)(void *ctx, const void *buf, size_t n);

/*
 * A plan without pass 1, for a file with no old content to compare with:
 * the whole file as it is now (size from fstat), unhashed.  0, or -1 with
 * err filled.
 */
int wx_ps_plan_whole(int fd, struct wx_ps_plan *plan, char *err, size_t errsize);

/*
 * Pass 2: reads plan's ranges from fd and hands exactly wx_ps_plan_bytes()
 * bytes to emit (zeros stand in for bytes the file no longer has).  Every
 * block a range touches is read whole and hashed again; one that differs
 * from the plan gets valid = 0 in plan->blocks, and *stable becomes false
 * (for a file without blocks: when the bytes sent differ from plan->sha).
 * When *stable is false the caller must treat the file's SHA-256 as
 * unknown.  An unhashed plan gets its SHA-256 and block list from the
 * bytes sent (stable unless the file ended early).  0, or -1 with err
 * filled (or emit failed).
 */
int wx_ps_send_file(int fd, struct wx_ps_plan *plan, wx_ps_emit_fn emit, void *ctx,
    bool *stable, char *err, size_t errsize);

#endif
