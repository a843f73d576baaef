#include "autoconf.h"

#include "presync_delta.h"

#include "tree_rules.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes of the next file read ahead while one is sent. */
#define READ_AHEAD (8 << 20)


void
wx_ps_delta_free(struct wx_ps_delta *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->op[i].path);
		free(d->op[i].from);
		free(d->op[i].ranges);
		wx_ps_plan_free(&d->op[i].plan);
	}
	free(d->op);
	memset(d, 0, sizeof *d);
}

struct wx_ps_op *
wx_ps_delta_add(struct wx_ps_delta *d, enum wx_ps_op_kind kind, const char *path)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 64;
		d->op = xrealloc(d->op, d->cap * sizeof *d->op);
	}
	struct wx_ps_op *op = &d->op[d->n++];
	memset(op, 0, sizeof *op);
	op->kind = kind;
	op->path = path ? xstrdup(path) : NULL;
	op->entry = -1;
	op->base = -1;
	return op;
}

static bool
ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

struct ino_idx {
	uint64_t ino;
	size_t idx;
};

static int
ino_cmp(const void *a, const void *b)
{
	const struct ino_idx *x = a, *y = b;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Regular files of m (with nlink == 1 when single, > 1 otherwise), sorted
 * by inode then path index. */
static struct ino_idx *
files_by_ino(const struct wx_ps_manifest *m, bool single, size_t *count)
{
	struct ino_idx *v = xmalloc((m->n ? m->n : 1) * sizeof *v);
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++)
		if (m->e[i].type == WX_PS_FILE && (single ? m->e[i].nlink == 1 : m->e[i].nlink > 1))
			v[k++] = (struct ino_idx){ m->e[i].ino, i };
	qsort(v, k, sizeof *v, ino_cmp);
	*count = k;
	return v;
}

/* The single index with that inode, or -1 (none, or several). */
static ptrdiff_t
unique_ino(const struct ino_idx *v, size_t n, uint64_t ino)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= n || v[lo].ino != ino || (lo + 1 < n && v[lo + 1].ino == ino))
		return -1;
	return (ptrdiff_t)v[lo].idx;
}

/* Whether the destination's copy of old entry o may be out of date for new
 * entry e at the same path. */
static bool
file_changed(const struct wx_ps_entry *o, const struct wx_ps_entry *e)
{
	return o == NULL || o->type != e->type || o->ino != e->ino || o->size != e->size ||
	    !ts_eq(&o->mtime, &e->mtime) || !ts_eq(&o->ctime, &e->ctime) ||
	    o->nlink != e->nlink || o->racy || !o->has_sha || o->sha_size != o->size;
}

static void
mark_parent(const struct wx_ps_manifest *new, const char *path, bool *meta)
{
	char parent[WX_ENTRY_PATH_MAX + 1];
	if (wx_ps_parent(path, parent, sizeof parent) < 0)
		return;
	ptrdiff_t p = wx_ps_find(new, parent);
	if (p >= 0 && new->e[p].type == WX_PS_DIR)
		meta[p] = true;
}

void
wx_ps_compare(struct wx_ps_manifest *old, struct wx_ps_manifest *new, struct wx_ps_delta *d)
{
	memset(d, 0, sizeof *d);
	size_t no = old->n, nn = new->n;
	ptrdiff_t *o_at = xmalloc((nn ? nn : 1) * sizeof *o_at);  /* new j -> old at its path */
	ptrdiff_t *n_at = xmalloc((no ? no : 1) * sizeof *n_at);  /* old i -> new at its path */
	bool *deleted = xcalloc(no ? no : 1, 1);
	bool *meta = xcalloc(nn ? nn : 1, 1);
	bool *changed = xcalloc(nn ? nn : 1, 1);
	size_t *leader = xmalloc((nn ? nn : 1) * sizeof *leader);

	size_t i = 0, j = 0;
	for (size_t k = 0; k < nn; k++)
		o_at[k] = -1;
	for (size_t k = 0; k < no; k++)
		n_at[k] = -1;
	while (i < no && j < nn) {
		int c = wx_ps_path_cmp(old->e[i].path, new->e[j].path);
		if (c == 0) {
			o_at[j] = (ptrdiff_t)i;
			n_at[i] = (ptrdiff_t)j;
			i++, j++;
		} else if (c < 0) {
			i++;
		} else {
			j++;
		}
	}

	/* Hard-link groups in new: the first path is the leader. */
	size_t ngroup;
	struct ino_idx *grp = files_by_ino(new, false, &ngroup);
	for (size_t k = 0; k < nn; k++)
		leader[k] = k;
	for (size_t k = 0; k < ngroup; k++)
		if (k > 0 && grp[k].ino == grp[k - 1].ino)
			leader[grp[k].idx] = leader[grp[k - 1].idx];
	free(grp);

	/*
	 * Renames: a single-link file at a path new to its inode, whose inode
	 * was a single-link file in old at a path that no longer holds it.
	 * The destination moves that copy instead of receiving the data.
	 */
	size_t nsingle;
	struct ino_idx *single = files_by_ino(old, true, &nsingle);
	ptrdiff_t *rename_of = xmalloc((nn ? nn : 1) * sizeof *rename_of);
	bool *claimed = xcalloc(no ? no : 1, 1);
	for (j = 0; j < nn; j++) {
		const struct wx_ps_entry *e = &new->e[j];
		rename_of[j] = -1;
		if (e->type != WX_PS_FILE || e->nlink != 1)
			continue;
		if (o_at[j] >= 0 && old->e[o_at[j]].type == WX_PS_FILE &&
		    old->e[o_at[j]].ino == e->ino)
			continue;
		ptrdiff_t r = unique_ino(single, nsingle, e->ino);
		if (r < 0 || claimed[r])
			continue;
		ptrdiff_t at = n_at[r];
		if (at >= 0 && new->e[at].type == WX_PS_FILE && new->e[at].ino == e->ino)
			continue;
		rename_of[j] = r;
		claimed[r] = true;
	}
	free(single);

	/* Deletions: gone, or another type now; not under a deleted directory. */
	for (i = 0; i < no; i++) {
		const struct wx_ps_entry *o = &old->e[i];
		if (n_at[i] >= 0 && new->e[n_at[i]].type == o->type)
			continue;
		deleted[i] = true;
		char parent[WX_ENTRY_PATH_MAX + 1];
		ptrdiff_t p = wx_ps_parent(o->path, parent, sizeof parent) == 0 ?
		    wx_ps_find(old, parent) : -1;
		if ((p >= 0 && deleted[p]) || (claimed[i] && n_at[i] < 0)) {
			mark_parent(new, o->path, meta);
			continue;
		}
		wx_ps_delta_add(d, WX_PS_OP_DELETE, o->path);
		mark_parent(new, o->path, meta);
	}

	for (j = 0; j < nn; j++) {
		struct wx_ps_entry *e = &new->e[j];
		struct wx_ps_entry *o = o_at[j] >= 0 && old->e[o_at[j]].type == e->type ?
		    &old->e[o_at[j]] : NULL;
		struct wx_ps_op *op;
		switch (e->type) {
		case WX_PS_DIR:
			if (o == NULL) {
				wx_ps_delta_add(d, WX_PS_OP_MKDIR, e->path)->entry = (ptrdiff_t)j;
				mark_parent(new, e->path, meta);
				meta[j] = true;
			} else if (o->mode != e->mode || !ts_eq(&o->mtime, &e->mtime)) {
				meta[j] = true;
			}
			break;
		case WX_PS_LINK:
			if (o == NULL || strcmp(o->target, e->target) != 0) {
				op = wx_ps_delta_add(d, WX_PS_OP_SYMLINK, e->path);
				op->from = xstrdup(e->target);
				op->entry = (ptrdiff_t)j;
				mark_parent(new, e->path, meta);
				meta[j] = true;
			} else if (!ts_eq(&o->mtime, &e->mtime)) {
				meta[j] = true;
			}
			break;
		case WX_PS_FILE:
			changed[j] = file_changed(o, e);
			if (leader[j] != j) {
				if (changed[j] || changed[leader[j]]) {
					op = wx_ps_delta_add(d, WX_PS_OP_LINK, e->path);
					op->from = xstrdup(new->e[leader[j]].path);
					op->entry = (ptrdiff_t)j;
					mark_parent(new, e->path, meta);
				} else {
					e->has_sha = o->has_sha;
					e->sha_size = o->sha_size;
					memcpy(e->sha, o->sha, WX_PS_SHA_LEN);
				}
				break;
			}
			if (!changed[j]) {
				e->has_sha = o->has_sha;
				e->sha_size = o->sha_size;
				memcpy(e->sha, o->sha, WX_PS_SHA_LEN);
				e->blocks = o->blocks;
				o->blocks = NULL;
				break;
			}
			ptrdiff_t base = -1;
			if (rename_of[j] >= 0) {
				op = wx_ps_delta_add(d, WX_PS_OP_RENAME, e->path);
				op->from = xstrdup(old->e[rename_of[j]].path);
				op->entry = (ptrdiff_t)j;
				mark_parent(new, op->from, meta);
				base = rename_of[j];
			} else if (o && !claimed[o - old->e] && (o->ino == e->ino || o->nlink == 1)) {
				base = o - old->e;
			}
			op = wx_ps_delta_add(d, WX_PS_OP_FILE, e->path);
			op->entry = (ptrdiff_t)j;
			op->base = base;
			mark_parent(new, e->path, meta);
			meta[j] = true;
			break;
		}
	}
	free(rename_of);
	free(claimed);
	for (j = 0; j < nn; j++) {
		if (!meta[j])
			continue;
		struct wx_ps_op *op = wx_ps_delta_add(d, WX_PS_OP_META, new->e[j].path);
		op->entry = (ptrdiff_t)j;
		op->mode = new->e[j].mode;
		op->mtime = new->e[j].mtime;
	}
	free(o_at);
	free(n_at);
	free(deleted);
	free(meta);
	free(changed);
	free(leader);
}

static bool
gone_errno(int e)
{
	return e == ENOENT || e == ENOTDIR || e == ELOOP;
}

/* Opens the regular file at path under rootfd, never through a symlink.
 * -2: it is gone or no longer a regular file (a running server removed or
 * replaced it since the scan); -1: another error, err filled. */
static int
open_file(int rootfd, const char *path, char *err, size_t errsize)
{
	const char *leaf;
	int dfd = wx_ps_open_parent(rootfd, path, &leaf);
	if (dfd < 0) {
		if (gone_errno(errno))
			return -2;
		snprintf(err, errsize, "%s: cannot open its directory: %s", path, strerror(errno));
		return -1;
	}
	int fd = openat(dfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	int e = errno;
	close(dfd);
	if (fd < 0) {
		if (gone_errno(e))
			return -2;
		snprintf(err, errsize, "%s: cannot open the file: %s", path, strerror(e));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -2;
	}
	return fd;
}

/* A file gone since the scan: an empty file now, unknown to the next round
 * (which finds it gone or changed). */
static void
mark_gone(struct wx_ps_entry *e)
{
	e->has_sha = false;
	e->racy = true;
	wx_ps_blocks_free(e->blocks);
	e->blocks = NULL;
}

static void
take_plan_result(struct wx_ps_entry *e, struct wx_ps_plan *plan, bool stable)
{
	e->has_sha = stable;
	e->sha_size = plan->size;
	memcpy(e->sha, plan->sha, WX_PS_SHA_LEN);
	wx_ps_blocks_free(e->blocks);
	e->blocks = plan->blocks;
	plan->blocks = NULL;
	if (!stable || plan->size != e->size)
		e->racy = true;
}

int
wx_ps_delta_plan(int rootfd, const struct wx_ps_manifest *old,
    struct wx_ps_manifest *new, struct wx_ps_delta *d, char *err, size_t errsize)
{
	size_t keep = 0;
	for (size_t k = 0; k < d->n; k++) {
		struct wx_ps_op *op = &d->op[k];
		if (op->kind == WX_PS_OP_FILE) {
			const struct wx_ps_entry *b = op->base >= 0 ? &old->e[op->base] : NULL;
			int fd = open_file(rootfd, op->path, err, errsize);
			if (fd == -1)
				return -1;
			if (fd == -2) {
				/* sent as an empty file, base or not */
				op->size = 0;
				op->base = -1;
				mark_gone(&new->e[op->entry]);
				d->op[keep++] = *op;
				continue;
			}
			char why[256];
			/* Nothing to compare a new file with: the send reads it once. */
			int rc = b == NULL ? wx_ps_plan_whole(fd, &op->plan, why, sizeof why) :
			    wx_ps_plan_file(fd, b->blocks, b->has_sha ? b->sha : NULL,
			    b->blocks ? b->blocks->size : b->sha_size, &op->plan, why, sizeof why);
			close(fd);
			if (rc < 0) {
				snprintf(err, errsize, "%s: %s", op->path, why);
				return -1;
			}
			if (op->plan.same) {
				take_plan_result(&new->e[op->entry], &op->plan, true);
				wx_ps_plan_free(&op->plan);
				free(op->path);
				continue;
			}
			if (b && b->blocks && op->plan.blocks) {
				op->kind = WX_PS_OP_PATCH;
				op->nranges = op->plan.nranges;
				op->ranges = xmalloc((op->nranges ? op->nranges : 1) * sizeof *op->ranges);
				memcpy(op->ranges, op->plan.ranges, op->nranges * sizeof *op->ranges);
			}
			op->size = op->plan.size;
		}
		d->op[keep++] = *op;
	}
	d->n = keep;
	return 0;
}

int64_t
wx_ps_delta_data_bytes(const struct wx_ps_delta *d)
{
	int64_t sum = 0;
	for (size_t k = 0; k < d->n; k++) {
		if (d->op[k].kind == WX_PS_OP_FILE)
			sum += d->op[k].size;
		for (size_t r = 0; d->op[k].kind == WX_PS_OP_PATCH && r < d->op[k].nranges; r++)
			sum += d->op[k].ranges[r].len;
	}
	return sum;
}

/* The next op with data after k, or d->n. */
static size_t
next_data_op(const struct wx_ps_delta *d, size_t k)
{
	while (++k < d->n && d->op[k].kind != WX_PS_OP_FILE && d->op[k].kind != WX_PS_OP_PATCH)
		;
	return k;
}

/* Asks the kernel to read the start of op's data ahead (while the one
 * before it is sent), so that a cold tree is read at the disk's pace. */
static void
read_ahead(int rootfd, const struct wx_ps_op *op)
{
	char err[64];
	int fd = open_file(rootfd, op->path, err, sizeof err);
	if (fd < 0)
		return;
	int64_t off = op->kind == WX_PS_OP_PATCH && op->nranges > 0 ? op->ranges[0].off : 0;
	(void)posix_fadvise(fd, (off_t)off, (off_t)READ_AHEAD, POSIX_FADV_WILLNEED);
	close(fd);
}

int
wx_ps_delta_send(int rootfd, struct wx_ps_manifest *new, struct wx_ps_delta *d,
    wx_ps_emit_fn emit, void *ctx, char *err, size_t errsize)
{
	size_t ahead = next_data_op(d, (size_t)-1);
	if (ahead < d->n)
		read_ahead(rootfd, &d->op[ahead]);
	for (size_t k = 0; k < d->n; k++) {
		struct wx_ps_op *op = &d->op[k];
		if (op->kind != WX_PS_OP_FILE && op->kind != WX_PS_OP_PATCH)
			continue;
		if ((ahead = next_data_op(d, k)) < d->n)
			read_ahead(rootfd, &d->op[ahead]);
		int fd = open_file(rootfd, op->path, err, errsize);
		if (fd == -1)
			return -1;
		if (fd == -2) {
			/* gone since the plan: zeros keep the promised length */
			static const unsigned char zeros[4096];
			for (int64_t left = wx_ps_plan_bytes(&op->plan); left > 0;) {
				size_t n = left < (int64_t)sizeof zeros ? (size_t)left : sizeof zeros;
				if (emit(ctx, zeros, n) < 0) {
					snprintf(err, errsize, "%s: could not pass the data on", op->path);
					return -1;
				}
				left -= (int64_t)n;
			}
			mark_gone(&new->e[op->entry]);
			continue;
		}
		char why[256];
		bool stable;
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		int rc = wx_ps_send_file(fd, &op->plan, emit, ctx, &stable, why, sizeof why);
		/* Sent: its clean pages leave the page cache to the game servers. */
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
		if (rc < 0) {
			snprintf(err, errsize, "%s: %s", op->path, why);
			return -1;
		}
		take_plan_result(&new->e[op->entry], &op->plan, stable);
	}
	/* Hard links share their leader's content. */
	for (size_t k = 0; k < d->n; k++) {
		if (d->op[k].kind != WX_PS_OP_LINK)
			continue;
		ptrdiff_t l = wx_ps_find(new, d->op[k].from);
		struct wx_ps_entry *e = &new->e[d->op[k].entry];
		if (l < 0)
			continue;
		e->has_sha = new->e[l].has_sha;
		e->sha_size = new->e[l].sha_size;
		memcpy(e->sha, new->e[l].sha, WX_PS_SHA_LEN);
		if (new->e[l].racy)
			e->racy = true;
	}
	return 0;
}
