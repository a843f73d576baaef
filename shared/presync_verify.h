/*
 * Live pre-sync (docs/presync.md §6), destination side: checks the staged
 * tree against the source's manifest after a round.  Paths are resolved
 * as presync_apply.h does (no symlink followed).
 */
#ifndef WX_PRESYNC_VERIFY_H
#define WX_PRESYNC_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "presync_delta.h"
#include "presync_manifest.h"

/*
 * Marks in hash[] (one per entry of want) the regular files d wrote or
 * moved: FILE, PATCH, RENAME and LINK targets.
 */
void wx_ps_delta_mark(const struct wx_ps_delta *d, const struct wx_ps_manifest *want,
    bool *hash);

/*
 * Checks the tree under rootfd against want: the same paths; per entry the
 * type, mode (not for symlinks), size, mtime and symlink target; two files
 * share an inode exactly when want says so; and, for each regular file with
 * hash[i] set (every one when hash is NULL), that its SHA-256 equals want's
 * (which must be known).  Before the final round (final false) a file
 * whose SHA-256 want does not know (it changed while being sent; the next
 * round sends it again) is checked for its type only.  0, or -1 with err
 * naming the first difference.
 */
int wx_ps_verify(int rootfd, const struct wx_ps_manifest *want, const bool *hash,
    bool final, char *err, size_t errsize);

#endif
