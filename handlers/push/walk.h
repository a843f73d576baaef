/*
 * Walking a server's data directory without ever following a symlink:
 * every directory is opened with openat(O_NOFOLLOW | O_DIRECTORY) relative
 * to its parent's fd and every entry is examined with
 * fstatat(AT_SYMLINK_NOFOLLOW), so a link planted by the game server cannot
 * lead the walk out of the tree.  Entries come in pre-order (a directory
 * before its contents), in readdir order; memory is proportional to the
 * depth, not to the number of entries.
 */
#ifndef WX_PUSH_WALK_H
#define WX_PUSH_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "tree_rules.h"

/* Deeper trees are refused (each level holds one open fd); the destination
 * refuses the same (tree_rules.h).  Paths over WX_ENTRY_PATH_MAX too. */
#define WALK_MAX_DEPTH WX_TREE_MAX_DEPTH

struct walk;

struct walk_entry {
	const char *path;  /* relative to the root, '/'-separated, no leading "./" */
	const char *name;  /* the last component */
	int dirfd;         /* the directory holding it */
	struct stat st;    /* lstat-like; for directories, fstat of the opened directory */
};

/*
 * Opens root (which may itself be reached through a symlink: it is the
 * admin's path, not the game server's).  NULL with a reason in err.
 */
struct walk *walk_open(const char *root, char *err, size_t errsize);

/*
 * The next entry: 1 with *e filled (valid until the next call), 0 at the
 * end, -1 on an error (walk_error).  Entries that vanish while the walk runs
 * are skipped.
 */
int walk_next(struct walk *w, struct walk_entry *e);
const char *walk_error(const struct walk *w);
void walk_close(struct walk *w);

/*
 * Remembers (dev, ino) pairs of files with more than one link, so each
 * inode is archived once and its other names become hard links.
 */
struct inode_map;
struct inode_map *inode_map_new(void);
/* The path stored for (dev, ino), or NULL after storing path for it. */
const char *inode_map_add(struct inode_map *m, dev_t dev, ino_t ino, const char *path);
void inode_map_free(struct inode_map *m);

/* What the size walk found. */
struct walk_totals {
	int64_t bytes;        /* sizes of the regular files, each inode once */
	int64_t entries;      /* archivable entries (dirs, files, symlinks) */
	int64_t symlinks;     /* ... of which symlinks */
	int64_t link_bytes;   /* sizes of the further names of hard-linked files */
};

/*
 * The quick size walk: sums the sizes of regular files and counts the
 * entries the archive will hold.  stop (may be NULL) is polled every few
 * hundred entries; when it returns true the walk ends with -1 and err
 * "stopped".  0 or -1 with a reason in err.
 */
int walk_measure(const char *root, struct walk_totals *t, bool (*stop)(void *), void *ctx,
    char *err, size_t errsize);

/* True for the entry types the archive carries (dirs, files, symlinks). */
bool walk_archivable(mode_t mode);

#endif
