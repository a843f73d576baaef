/*
 * Live pre-sync (docs/presync.md): the manifest of a server tree.  One entry
 * per directory, regular file and symlink, the root included as ".", sorted
 * by wx_ps_path_cmp (a parent always before its children).  Scanning never
 * follows a symlink; paths are canonical ("a/b": no empty, "." or ".."
 * component, nothing absolute) and within the tree rules (tree_rules.h).
 * The text form is parsed as hostile input: it comes from the other node.
 */
#ifndef WX_PRESYNC_MANIFEST_H
#define WX_PRESYNC_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "presync_text.h"

#define WX_PS_SHA_LEN 32

enum wx_ps_type {
	WX_PS_DIR = 'd',
	WX_PS_FILE = 'f',
	WX_PS_LINK = 'l',
};

struct wx_ps_blocks;   /* presync_blocks.h */

struct wx_ps_entry {
	char *path;                 /* "." for the root, else canonical relative */
	char type;                  /* enum wx_ps_type */
	uint32_t mode;              /* permission bits (07777); 0 for symlinks */
	int64_t size;               /* files: bytes; symlinks: target length; dirs: 0 */
	struct timespec mtime;
	struct timespec ctime;
	uint64_t ino;
	uint64_t nlink;
	char *target;               /* symlinks: the target; else NULL */
	/* mtime or ctime not strictly older than the scan start: the content
	 * may have changed within the timestamp granularity, so the next
	 * round re-checks it whatever its metadata say. */
	bool racy;
	/* sha: SHA-256 of the content the destination holds for this path
	 * (what was sent, hashed as it was sent).  Unset: unknown, the next
	 * round re-checks the content. */
	bool has_sha;
	unsigned char sha[WX_PS_SHA_LEN];
	int64_t sha_size;           /* bytes sha (and blocks) describe; sender only, = size when parsed */
	struct wx_ps_blocks *blocks; /* sender only, never serialized; NULL */
};

struct wx_ps_manifest {
	struct wx_ps_entry *e;
	size_t n, cap;
	struct timespec start;      /* scan start (CLOCK_REALTIME_COARSE) */
	size_t skipped;             /* devices, FIFOs, sockets left out */
};

/* Upper bound on entries a parsed manifest may hold. */
#define WX_PS_MAX_ENTRIES 20000000

/*
 * Scans the tree under rootfd (an open directory) into m (zeroed first).
 * start: the scan start for the racy rule; NULL takes the coarse real-time
 * clock now (the clock file timestamps come from).  Devices, FIFOs and
 * sockets are counted in m->skipped and left out.  0, or -1 with err filled
 * (naming the path) and m empty.
 */
int wx_ps_scan(int rootfd, const struct timespec *start, struct wx_ps_manifest *m,
    char *err, size_t errsize);

/* Appends a zeroed entry to m (for the scan and the parser). */
struct wx_ps_entry *wx_ps_manifest_add(struct wx_ps_manifest *m);

/* Frees what m holds (blocks included) and zeroes it; NULL is fine. */
void wx_ps_manifest_free(struct wx_ps_manifest *m);

/* "." first, then strcmp order: a directory sorts before everything under it. */
int wx_ps_path_cmp(const char *a, const char *b);

/* The index of path in m, or -1. */
ptrdiff_t wx_ps_find(const struct wx_ps_manifest *m, const char *path);

/*
 * Whether path is canonical and within the tree rules: "." or components
 * separated by single '/', none empty, "." or "..", no NUL (the caller's
 * string ends at the first), wx_entry_path_problem() happy, depth within
 * WX_TREE_MAX_DEPTH.  NULL when fine, else a static phrase.
 */
const char *wx_ps_path_problem(const char *path);

/* The parent of a canonical path into out ("." for a top-level name);
 * 0, or -1 if it does not fit or path is ".". */
int wx_ps_parent(const char *path, char *out, size_t size);

/*
 * Opens the directory holding path (canonical, not ".") under rootfd, one
 * component at a time with O_NOFOLLOW: a symlink or non-directory on the
 * way fails (ELOOP/ENOTDIR).  *leaf points at the last component.  A new
 * fd, or -1 with errno.
 */
int wx_ps_open_parent(int rootfd, const char *path, const char **leaf);

/*
 * The text form:
 *   wingxfer-presync-manifest 1 <start sec.nsec> <entries>
 *   <type> <mode octal> <size> <mtime> <ctime> <ino> <nlink> <flags> <sha|-> <path> [<target>]
 *   ...
 * flags: "r" racy, "-" none.  Paths and targets %XX-escaped.  Returns a new
 * buffer (not NUL-terminated) of *len bytes.
 */
char *wx_ps_manifest_format(const struct wx_ps_manifest *m, size_t *len);

/*
 * Parses the text form into m (zeroed first).  Refuses, with err naming the
 * line: a wrong header, a count that does not match, more than max_entries,
 * a bad field, a path that is not canonical (wx_ps_path_problem), entries
 * not strictly sorted, an entry whose parent is not a directory entry, a
 * missing or misplaced root, a symlink without a target or with an empty,
 * NUL-containing or overlong one.  0, or -1 with m empty.
 */
int wx_ps_manifest_parse(const char *text, size_t len, size_t max_entries,
    struct wx_ps_manifest *m, char *err, size_t errsize);

#endif
