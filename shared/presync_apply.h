/*
 * Live pre-sync (docs/presync.md), destination side: applies a delta to the
 * staged tree and verifies the result against the source's manifest.
 *
 * Every path is resolved under the staged tree's directory fd one
 * component at a time with O_NOFOLLOW: a symlink is never followed, a path
 * through one is refused, nothing outside the tree is touched.  The staged
 * tree must be private to the caller (nobody else changes it meanwhile).
 *
 * Crash safety: the work directory (same file system, private) holds the
 * journal, the rename slots and the one temporary file (a FILE op that
 * replaces an existing path writes there first; one for a new path writes
 * in place).  The apply runs in four phases (detach rename sources,
 * delete, create/write in path order, set modes and mtimes children
 * first); the journal records the phase in
 * progress, made durable (syncfs) before it advances.  Each phase's ops
 * are idempotent, so after a crash the same delta (kept spooled by the
 * transport) is applied again: wx_ps_apply resumes at the recorded phase.
 */
#ifndef WX_PRESYNC_APPLY_H
#define WX_PRESYNC_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "presync_delta.h"
#include "presync_manifest.h"

/* Fills buf with exactly n bytes of the delta's data; 0, or -1. */
typedef int (*wx_ps_read_fn)(void *ctx, void *buf, size_t n);

/*
 * Applies round `round` (>= 1) of d to the tree under rootfd, reading the
 * data of FILE and PATCH ops, in op order, through read.  The journal
 * names the round, its phase and the SHA-256 of d's text form.  Resumes
 * at the journal's phase when it says this round is in progress with this
 * delta; returns 0 at once when it says this round is applied; refuses a
 * later round than the one in progress, an older round, and this round
 * with another delta.  0, or -1 with err naming
 * the op's path (the journal then still says "in progress": apply the same
 * delta again, or discard the staged tree).
 */
int wx_ps_apply(int rootfd, int workfd, int64_t round, const struct wx_ps_delta *d,
    wx_ps_read_fn read, void *ctx, char *err, size_t errsize);

/*
 * What wx_ps_apply_ex tells of the FILE ops it wrote, by op index (arrays
 * of the delta's op count): valid[k] when op k's data went whole into its
 * file, sha[k] that data's hash as the manifest has it (wx_ps_fhash).  A caller that checks it against
 * the manifest need not read the file back (presync_verify.h).
 */
struct wx_ps_written {
	unsigned char (*sha)[WX_PS_SHA_LEN];
	bool *valid;
};

/*
 * Told of the data the apply writes, for write-behind: begin with the file's
 * descriptor before a FILE or PATCH op's data, wrote after each write, end
 * after its last.  Any member may be NULL.
 */
struct wx_ps_write_watch {
	void (*begin)(void *ctx, int fd);
	void (*wrote)(void *ctx, int64_t off, int64_t len);
	void (*end)(void *ctx);
	void *ctx;
};

/*
 * wx_ps_apply, and: durable false makes only the last phase durable
 * (syncfs once, for a caller that discards the staged tree after a crash
 * instead of resuming the apply); written, when not NULL, is filled;
 * watch, when not NULL, is told of the writes.
 */
int wx_ps_apply_ex(int rootfd, int workfd, int64_t round, const struct wx_ps_delta *d,
    wx_ps_read_fn read, void *ctx, bool durable, struct wx_ps_written *written,
    const struct wx_ps_write_watch *watch, char *err, size_t errsize);

/*
 * The journal in workfd: the last round, and its phase (1..4 in progress,
 * 5 applied).  0 with *round = 0 when there is none; -1 when it is
 * unreadable or malformed.
 */
int wx_ps_journal_read(int workfd, int64_t *round, int *phase);

#endif
