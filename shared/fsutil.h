/*
 * Filesystem helpers with the durability and safety rules of the state
 * directory: every fd O_CLOEXEC, whole-file atomic replacement, symlinks never
 * followed when deleting.
 */
#ifndef WX_FSUTIL_H
#define WX_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* mkdir -p with mode for every created component; existing dirs are kept.
 * 0, or -1 with errno. */
int wx_mkdirs(const char *path, mode_t mode);

/*
 * Replaces dir/name with data, atomically and durably: a temp file in the same
 * directory, fsync, rename over name, fsync of the directory.  Mode 0600.
 * On failure nothing half-written remains; returns -1 with errno.
 */
int wx_atomic_write(const char *dir, const char *name, const void *data, size_t len);

/*
 * Moves the regular file from to the path to (replacing it), durably: a
 * rename when both are on one file system; otherwise (EXDEV: the backup or
 * log directory on another disk) a copy beside to (mode, owner and mtime
 * kept, fsynced), renamed over to, its directory fsynced, and only then
 * from unlinked.  On failure no partial copy remains and from is removed
 * only if to is complete and durable; returns -1 with errno.
 */
int wx_move_file(const char *from, const char *to);

/* fsync(2) of a directory; 0 or -1. */
int wx_fsync_dir(const char *dir);

/*
 * Removes path and everything under it, never following symlinks (a link is
 * removed, not its target).  Directories without write permission are made
 * writable first.  A fixed handful of descriptors is open at any time, whatever
 * the depth (a tree deeper than the open-file limit is removed too).  A
 * missing path is success.  A large regular file without other links is
 * truncated in steps of WX_SHRINK_STEP before its unlink, so that its blocks
 * are freed (and discarded) a step at a time, not all at once; after a step
 * that took d (at least WX_SHRINK_PACE_MIN_NS: it waited for a discard) the
 * next waits WX_SHRINK_SPACING times d, at most WX_SHRINK_PAUSE_MAX_NS.  So
 * a large file goes up to five times slower where discards are slow, and as
 * fast as before where they are not.  0 or -1 with errno.
 */
#define WX_SHRINK_STEP ((off_t)512 * 1024)
#define WX_SHRINK_SPACING 4
#define WX_SHRINK_PACE_MIN_NS ((int64_t)100 * 1000)
#define WX_SHRINK_PAUSE_MAX_NS ((int64_t)50 * 1000 * 1000)
int wx_remove_tree(const char *path);

/* Free bytes available to unprivileged users on the filesystem of path; -1. */
int64_t wx_free_space(const char *path);

/* Joins dir and name with one '/'; new string. */
char *wx_path_join(const char *dir, const char *name);

#endif
