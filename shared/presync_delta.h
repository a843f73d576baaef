/*
 * Live pre-sync (docs/presync.md): the delta between two manifests of one
 * tree, as a list of operations the destination applies to its staged copy
 * (presync_apply.h), and its text form.  The sender builds it in three
 * steps: wx_ps_compare (metadata only), wx_ps_delta_plan (reads the changed
 * files: unchanged content, tail, changed blocks or whole), then
 * wx_ps_delta_send (the data, in op order, hashes re-checked as sent).
 */
#ifndef WX_PRESYNC_DELTA_H
#define WX_PRESYNC_DELTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "presync_blocks.h"
#include "presync_manifest.h"

enum wx_ps_op_kind {
	WX_PS_OP_RENAME,   /* path <- from: moves a non-directory (same inode on the source) */
	WX_PS_OP_DELETE,   /* path and everything under it */
	WX_PS_OP_MKDIR,    /* path as a directory (kept if one is there) */
	WX_PS_OP_FILE,     /* path <- size bytes of data, replacing what is there */
	WX_PS_OP_PATCH,    /* path, in place: truncated/extended to size, ranges <- data */
	WX_PS_OP_SYMLINK,  /* path <- a symlink to from, replacing what is there */
	WX_PS_OP_LINK,     /* path <- a hard link to from (a path earlier in the list) */
	WX_PS_OP_META,     /* path's mode (not for symlinks) and mtime */
};

struct wx_ps_op {
	enum wx_ps_op_kind kind;
	char *path;
	char *from;                 /* RENAME, LINK: a path; SYMLINK: the target */
	int64_t size;               /* FILE: data bytes; PATCH: the new file size */
	struct wx_ps_range *ranges; /* PATCH, ascending, not overlapping */
	size_t nranges;
	uint32_t mode;              /* META */
	struct timespec mtime;      /* META */
	/* sender only: the new manifest entry, and the old one its content
	 * is compared with (-1: none; the destination's copy at path, or the
	 * rename source) */
	ptrdiff_t entry, base;
	struct wx_ps_plan plan;     /* sender only, after wx_ps_delta_plan */
};

struct wx_ps_delta {
	struct wx_ps_op *op;
	size_t n, cap;
};

/* Upper bounds a parsed delta may reach. */
#define WX_PS_MAX_OPS 40000000
#define WX_PS_MAX_RANGES (1 << 20)

void wx_ps_delta_free(struct wx_ps_delta *d);

/* Appends an op of that kind for path (copied; NULL: none yet), entry and
 * base -1, everything else zero. */
struct wx_ps_op *wx_ps_delta_add(struct wx_ps_delta *d, enum wx_ps_op_kind kind,
    const char *path);

/*
 * The operations that turn a tree matching old into one matching new
 * (both sorted, as scanned or parsed).  Phase order: RENAMEs, DELETEs, then
 * the creations (MKDIR, RENAME targets, FILE, SYMLINK, LINK) in path order,
 * then METAs in path order (applied in reverse).  A changed regular file
 * gets a FILE op with a base when the destination's copy can be patched;
 * wx_ps_delta_plan decides.  An old entry counts as changed when its size,
 * mtime, ctime, inode or link count differ, when it was racy, or when its
 * SHA-256 is unknown.  Entries of new that are unchanged take over the old
 * entry's SHA-256 and block list (moved out of old).
 */
void wx_ps_compare(struct wx_ps_manifest *old, struct wx_ps_manifest *new,
    struct wx_ps_delta *d);

/*
 * For every FILE op with a base: reads the file under rootfd
 * (wx_ps_plan_file) and makes the op a PATCH (tail or changed blocks),
 * keeps it FILE (whole), or drops its data (same content: only its META
 * remains).  A FILE op without a base (a new file) is the whole file as its
 * size is now, read and hashed only by wx_ps_delta_send (wx_ps_plan_whole).
 * 0, or -1 with err naming the path.
 */
int wx_ps_delta_plan(int rootfd, const struct wx_ps_manifest *old,
    struct wx_ps_manifest *new, struct wx_ps_delta *d, char *err, size_t errsize);

/* Bytes of data the delta carries (FILE sizes and PATCH ranges). */
int64_t wx_ps_delta_data_bytes(const struct wx_ps_delta *d);

/*
 * Hands the data of every FILE and PATCH op to emit, in op order, and
 * records in new what was sent: SHA-256 and block list per file, or
 * racy with the SHA-256 unknown when the file changed while being sent.
 * 0, or -1 with err naming the path.
 */
int wx_ps_delta_send(int rootfd, struct wx_ps_manifest *new, struct wx_ps_delta *d,
    wx_ps_emit_fn emit, void *ctx, char *err, size_t errsize);

/*
 * The ops' text form:
 *   wingxfer-presync-ops 1 <ops> <data bytes>
 *   rename <path> <from> | delete <path> | mkdir <path> | file <path> <size>
 *   patch <path> <size> <ranges>, then one "<off> <len>" line per range
 *   symlink <path> <target>
 *   link <path> <from> | meta <path> <mode octal> <mtime sec.nsec>
 * Paths %XX-escaped.  A new buffer of *len bytes.
 */
char *wx_ps_delta_format(const struct wx_ps_delta *d, size_t *len);

/*
 * Parses the text form into d (zeroed first), refusing with err naming the
 * line: a wrong header or counts, an unknown op, a path that is not
 * canonical (wx_ps_path_problem), "." as anything but a META or MKDIR path,
 * a bad size, ranges that are empty, unsorted, overlapping or beyond size,
 * a data total that does not match, an empty or overlong symlink target.
 * 0, or -1 with d empty.
 */
int wx_ps_delta_parse(const char *text, size_t len, struct wx_ps_delta *d,
    char *err, size_t errsize);

#endif
