#include "autoconf.h"

#include "presync_verify.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IO_CHUNK (64 * 1024)

void
wx_ps_delta_mark(const struct wx_ps_delta *d, const struct wx_ps_manifest *want, bool *hash)
{
	for (size_t k = 0; k < d->n; k++) {
		enum wx_ps_op_kind kind = d->op[k].kind;
		if (kind != WX_PS_OP_FILE && kind != WX_PS_OP_PATCH && kind != WX_PS_OP_RENAME &&
		    kind != WX_PS_OP_LINK)
			continue;
		ptrdiff_t i = wx_ps_find(want, d->op[k].path);
		if (i >= 0)
			hash[i] = true;
	}
}

static int
hash_file(int rootfd, const char *path, unsigned char *out)
{
	const char *leaf;
	int pfd = wx_ps_open_parent(rootfd, path, &leaf);
	if (pfd < 0)
		return -1;
	int fd = openat(pfd, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	close(pfd);
	if (fd < 0)
		return -1;
	struct wx_ps_fhash h;
	unsigned char *buf = xmalloc(IO_CHUNK);
	int rc = wx_ps_fhash_init(&h);
	while (rc == 0) {
		ssize_t n = read(fd, buf, IO_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -1 : 0;
			break;
		}
		wx_ps_fhash_update(&h, buf, (size_t)n);
	}
	if (rc == 0 && wx_ps_fhash_final(&h, out) < 0)
		rc = -1;
	wx_ps_fhash_free(&h);
	free(buf);
	close(fd);
	return rc;
}

static bool
same_ts(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

struct ino_pair {
	uint64_t key, other;
	size_t idx;
};

static int
pair_cmp(const void *x, const void *y)
{
	const struct ino_pair *a = x, *b = y;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Whether, grouping the files by one side's inode, the other side's
 * inodes differ within a group (err filled). */
static bool
links_differ(const struct wx_ps_manifest *want, const struct wx_ps_manifest *got,
    bool by_want, char *err, size_t errsize)
{
	struct ino_pair *v = xmalloc((want->n ? want->n : 1) * sizeof *v);
	size_t n = 0;
	for (size_t k = 0; k < want->n; k++) {
		if (want->e[k].type != WX_PS_FILE)
			continue;
		const struct wx_ps_entry *a = by_want ? &want->e[k] : &got->e[k];
		const struct wx_ps_entry *b = by_want ? &got->e[k] : &want->e[k];
		if (a->nlink > 1)
			v[n++] = (struct ino_pair){ a->ino, b->ino, k };
	}
	qsort(v, n, sizeof *v, pair_cmp);
	bool differ = false;
	for (size_t k = 1; k < n && !differ; k++) {
		if (v[k].key == v[k - 1].key && v[k].other != v[k - 1].other) {
			snprintf(err, errsize, "%s and %s: hard links differ",
			    want->e[v[k - 1].idx].path, want->e[v[k].idx].path);
			differ = true;
		}
	}
	free(v);
	return differ;
}

int
wx_ps_verify(int rootfd, const struct wx_ps_manifest *want, const bool *hash,
    bool final, char *err, size_t errsize)
{
	struct wx_ps_manifest got;
	char why[512];
	if (wx_ps_scan(rootfd, NULL, &got, why, sizeof why) < 0) {
		snprintf(err, errsize, "cannot scan the staged tree: %s", why);
		return -1;
	}
	int rc = -1;
	size_t i = 0, j = 0;
	while (i < want->n || j < got.n) {
		int c = i == want->n ? 1 : j == got.n ? -1 :
		    wx_ps_path_cmp(want->e[i].path, got.e[j].path);
		if (c < 0) {
			snprintf(err, errsize, "%s: missing", want->e[i].path);
			goto out;
		}
		if (c > 0) {
			snprintf(err, errsize, "%s: not in the source's manifest", got.e[j].path);
			goto out;
		}
		const struct wx_ps_entry *w = &want->e[i], *g = &got.e[j];
		const char *what = NULL;
		bool unsettled = !final && w->type == WX_PS_FILE && !w->has_sha;
		if (w->type != g->type)
			what = "type differs";
		else if (unsettled)
			what = NULL;
		else if (w->type != WX_PS_LINK && w->mode != g->mode)
			what = "mode differs";
		else if (w->size != g->size)
			what = "size differs";
		else if (!same_ts(&w->mtime, &g->mtime))
			what = "mtime differs";
		else if (w->type == WX_PS_LINK && strcmp(w->target, g->target) != 0)
			what = "symlink target differs";
		if (what) {
			snprintf(err, errsize, "%s: %s", w->path, what);
			goto out;
		}
		if (w->type == WX_PS_FILE && !unsettled && (hash == NULL || hash[i])) {
			unsigned char sha[WX_PS_SHA_LEN];
			if (!w->has_sha) {
				snprintf(err, errsize, "%s: the source's manifest has no SHA-256", w->path);
				goto out;
			}
			if (hash_file(rootfd, w->path, sha) < 0) {
				snprintf(err, errsize, "%s: cannot read: %s", w->path, strerror(errno));
				goto out;
			}
			if (memcmp(sha, w->sha, WX_PS_SHA_LEN) != 0) {
				snprintf(err, errsize, "%s: SHA-256 differs", w->path);
				goto out;
			}
		}
		i++, j++;
	}
	/* Hard links: files share an inode in the tree exactly when they do in
	 * want (same path order on both sides, so index k is one path). */
	if (links_differ(want, &got, true, err, errsize) || links_differ(want, &got, false, err, errsize))
		goto out;
	rc = 0;
out:
	wx_ps_manifest_free(&got);
	return rc;
}
