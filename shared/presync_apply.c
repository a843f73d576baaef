#include "autoconf.h"

#include "presync_apply.h"

#include "tree_rules.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TMP_NAME "t"
#define JOURNAL "journal"
#define PHASE_DONE 5
#define IO_CHUNK (64 * 1024)
#define ID_LEN (2 * WX_PS_SHA_LEN)

struct apply {
	int rootfd, workfd;
	char *err;
	size_t errsize;
	unsigned char *buf;
	char id[ID_LEN + 1];        /* the delta's, for the journal */
	bool durable;               /* syncfs before every phase, not only the last */
	struct wx_ps_written *written;  /* NULL, or the FILE ops' data hashes */
	const struct wx_ps_write_watch *watch;  /* NULL, or told of the writes */
};

static void
watch_begin(struct apply *a, int fd)
{
	if (a->watch != NULL && a->watch->begin != NULL)
		a->watch->begin(a->watch->ctx, fd);
}

static void
watch_end(struct apply *a)
{
	if (a->watch != NULL && a->watch->end != NULL)
		a->watch->end(a->watch->ctx);
}

static int
fail(struct apply *a, const char *path, const char *what, int errnum)
{
	if (errnum)
		snprintf(a->err, a->errsize, "%s: %s: %s", path, what, strerror(errnum));
	else
		snprintf(a->err, a->errsize, "%s: %s", path, what);
	return -1;
}

/* --- journal ------------------------------------------------------------- */

/* The journal: "round <k> phase <p> <SHA-256 of the op list>\n". */
static int
journal_write(int workfd, int64_t round, int phase, const char *id)
{
	char text[128];
	int n = snprintf(text, sizeof text, "round %lld phase %d %s\n", (long long)round, phase, id);
	int fd = openat(workfd, JOURNAL ".tmp", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (wx_write_all(fd, text, (size_t)n) < 0 || fsync(fd) < 0) {
		close(fd);
		return -1;
	}
	if (close(fd) < 0 || renameat(workfd, JOURNAL ".tmp", workfd, JOURNAL) < 0 ||
	    fsync(workfd) < 0)
		return -1;
	return 0;
}

static int
journal_load(int workfd, int64_t *round, int *phase, char *id)
{
	*round = 0;
	*phase = 0;
	id[0] = '\0';
	int fd = openat(workfd, JOURNAL, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	char text[128];
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	const char *tok[5];
	size_t lens[5], pos = 0;
	int64_t r, p;
	if (wx_ps_next_line(text, (size_t)n, &pos, sizeof text, tok, lens, 5) != 5 ||
	    lens[0] != 5 || memcmp(tok[0], "round", 5) != 0 || lens[2] != 5 ||
	    memcmp(tok[2], "phase", 5) != 0 || lens[4] != ID_LEN ||
	    wx_ps_token_i64(tok[1], lens[1], 1, INT64_MAX, &r) < 0 ||
	    wx_ps_token_i64(tok[3], lens[3], 1, PHASE_DONE, &p) < 0) {
		errno = EINVAL;
		return -1;
	}
	*round = r;
	*phase = (int)p;
	memcpy(id, tok[4], ID_LEN);
	id[ID_LEN] = '\0';
	return 0;
}

int
wx_ps_journal_read(int workfd, int64_t *round, int *phase)
{
	char id[ID_LEN + 1];
	return journal_load(workfd, round, phase, id);
}

/* The SHA-256 of d's text form, in hex: which delta the journal speaks of. */
static int
delta_id(const struct wx_ps_delta *d, char *id)
{
	size_t len;
	char *text = wx_ps_delta_format(d, &len);
	unsigned char md[WX_PS_SHA_LEN];
	unsigned int mdlen;
	int rc = EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL) == 1 ? 0 : -1;
	free(text);
	if (rc == 0)
		wx_hex(md, WX_PS_SHA_LEN, id);
	return rc;
}

/* Durability of everything so far, then the journal's next phase. */
static int
advance(struct apply *a, int64_t round, int phase)
{
	if (((a->durable || phase == PHASE_DONE) && syncfs(a->rootfd) < 0) ||
	    journal_write(a->workfd, round, phase, a->id) < 0)
		return fail(a, "journal", "cannot record the apply's progress", errno);
	return 0;
}

/* --- helpers ------------------------------------------------------------- */

/* The parent directory of path, made writable for its owner (the META of
 * that directory, which the delta carries, restores its mode). */
static int
parent_of(struct apply *a, const char *path, const char **leaf, bool writable)
{
	int fd = wx_ps_open_parent(a->rootfd, path, leaf);
	if (fd < 0)
		return fail(a, path, "cannot open its directory (a symlink or file on the way?)", errno);
	struct stat st;
	if (writable && fstat(fd, &st) == 0 && (st.st_mode & 0300) != 0300 &&
	    fchmod(fd, (st.st_mode & 07777) | 0300) < 0) {
		int e = errno;
		close(fd);
		return fail(a, path, "cannot make its directory writable", e);
	}
	return fd;
}

static void
slot_name(size_t k, char *buf, size_t size)
{
	snprintf(buf, size, "r%zu", k);
}

/* Removes name in dfd and everything under it, never following a symlink. */
static int
remove_at(int dfd, const char *name, size_t depth)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -1 : 0;
	if (depth > WX_TREE_MAX_DEPTH + 1) {
		errno = ELOOP;
		return -1;
	}
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if ((st.st_mode & 0700) != 0700 && fchmod(fd, (st.st_mode & 07777) | 0700) < 0) {
		close(fd);
		return -1;
	}
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rc = remove_at(dirfd(d), de->d_name, depth + 1);
	}
	if (rc == 0 && errno != 0)
		rc = -1;
	closedir(d);
	if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

/* Copies n bytes of delta data to fd at off (or the current position if
 * off < 0). */
static int
copy_data(struct apply *a, wx_ps_read_fn read_fn, void *ctx, int fd, int64_t off,
    int64_t n, const char *path, struct wx_ps_fhash *fh)
{
	/* where the sequential writes (off < 0) are: the file is new and empty */
	int64_t pos = off < 0 ? 0 : off;
	while (n > 0) {
		size_t chunk = n < IO_CHUNK ? (size_t)n : IO_CHUNK;
		if (read_fn(ctx, a->buf, chunk) < 0)
			return fail(a, path, "the delta's data ended early", 0);
		if (fh != NULL)
			wx_ps_fhash_update(fh, a->buf, chunk);
		if (off < 0) {
			if (wx_write_all(fd, a->buf, chunk) < 0)
				return fail(a, path, "write", errno);
			if (a->watch != NULL && a->watch->wrote != NULL)
				a->watch->wrote(a->watch->ctx, pos, (int64_t)chunk);
			pos += (int64_t)chunk;
		} else {
			size_t done = 0;
			while (done < chunk) {
				ssize_t w = pwrite(fd, a->buf + done, chunk - done, (off_t)off);
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0)
					return fail(a, path, "write", errno);
				done += (size_t)w;
				off += w;
			}
			if (a->watch != NULL && a->watch->wrote != NULL)
				a->watch->wrote(a->watch->ctx, off - (int64_t)chunk, (int64_t)chunk);
		}
		n -= (int64_t)chunk;
	}
	return 0;
}

/* Moves the work directory's temporary entry to path (replacing a
 * non-directory there). */
static int
install_tmp(struct apply *a, const char *path)
{
	const char *leaf;
	int pfd = parent_of(a, path, &leaf, true);
	if (pfd < 0)
		return -1;
	struct stat st;
	if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
		close(pfd);
		return fail(a, path, "a directory is in the way", 0);
	}
	int rc = renameat(a->workfd, TMP_NAME, pfd, leaf);
	int e = errno;
	/* renaming a hard link onto the same inode does nothing */
	unlinkat(a->workfd, TMP_NAME, 0);
	close(pfd);
	return rc < 0 ? fail(a, path, "cannot move into place", e) : 0;
}

/* --- phases -------------------------------------------------------------- */

static int
detach(struct apply *a, size_t k, const struct wx_ps_op *op)
{
	char slot[32];
	slot_name(k, slot, sizeof slot);
	struct stat st;
	const char *leaf;
	int pfd = parent_of(a, op->from, &leaf, true);
	if (pfd >= 0 && fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode)) {
			close(pfd);
			return fail(a, op->from, "rename source is a directory", 0);
		}
		int rc = renameat(pfd, leaf, a->workfd, slot);
		int e = errno;
		close(pfd);
		return rc < 0 ? fail(a, op->from, "cannot move aside", e) : 0;
	}
	if (pfd >= 0)
		close(pfd);
	/* gone: fine if an earlier, interrupted run moved it aside */
	if (fstatat(a->workfd, slot, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	return fail(a, op->from, "rename source missing", 0);
}

static int
delete_op(struct apply *a, const struct wx_ps_op *op)
{
	const char *leaf;
	int pfd = wx_ps_open_parent(a->rootfd, op->path, &leaf);
	if (pfd < 0 && errno == ENOENT)
		return 0;
	if (pfd < 0)
		return fail(a, op->path, "cannot open its directory (a symlink or file on the way?)", errno);
	struct stat st;
	if (fstat(pfd, &st) == 0 && (st.st_mode & 0300) != 0300)
		(void)fchmod(pfd, (st.st_mode & 07777) | 0300);
	int rc = remove_at(pfd, leaf, 0);
	int e = errno;
	close(pfd);
	return rc < 0 ? fail(a, op->path, "cannot delete", e) : 0;
}

static int
create_op(struct apply *a, size_t k, const struct wx_ps_op *op, wx_ps_read_fn read_fn,
    void *ctx)
{
	const char *leaf;
	struct stat st;
	int pfd, fd, rc;
	switch (op->kind) {
	case WX_PS_OP_MKDIR:
		if (strcmp(op->path, ".") == 0)
			return 0;
		if ((pfd = parent_of(a, op->path, &leaf, true)) < 0)
			return -1;
		rc = mkdirat(pfd, leaf, 0700);
		if (rc < 0 && errno == EEXIST && fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode))
			rc = 0;
		close(pfd);
		return rc < 0 ? fail(a, op->path, "cannot create the directory", errno) : 0;
	case WX_PS_OP_RENAME: {
		char slot[32];
		slot_name(k, slot, sizeof slot);
		if ((pfd = parent_of(a, op->path, &leaf, true)) < 0)
			return -1;
		if (fstatat(a->workfd, slot, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			/* attached by an interrupted run */
			rc = fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) ? 0 : -1;
			close(pfd);
			return rc < 0 ? fail(a, op->path, "the moved file is missing", 0) : 0;
		}
		if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
			close(pfd);
			return fail(a, op->path, "a directory is in the way", 0);
		}
		rc = renameat(a->workfd, slot, pfd, leaf);
		int e = errno;
		close(pfd);
		return rc < 0 ? fail(a, op->path, "cannot move into place", e) : 0;
	}
	case WX_PS_OP_FILE: {
		/* A new path is created where it belongs (its inode beside its
		 * directory's; a rerun after a crash finds it there and replaces
		 * it); an existing one is replaced through the temporary file,
		 * never written through (it may be a hard link). */
		if ((pfd = parent_of(a, op->path, &leaf, true)) < 0)
			return -1;
		fd = openat(pfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		int e = errno;
		close(pfd);
		bool in_place = fd >= 0;
		if (!in_place && e != EEXIST)
			return fail(a, op->path, "cannot create the file", e);
		if (!in_place) {
			if (unlinkat(a->workfd, TMP_NAME, 0) < 0 && errno != ENOENT)
				return fail(a, op->path, "cannot clear the temporary file", errno);
			fd = openat(a->workfd, TMP_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
			    O_CLOEXEC, 0600);
			if (fd < 0)
				return fail(a, op->path, "cannot create the temporary file", errno);
		}
		struct wx_ps_fhash fh = { NULL, NULL, 0, false };
		bool hashing = a->written != NULL && wx_ps_fhash_init(&fh) == 0;
		watch_begin(a, fd);
		rc = copy_data(a, read_fn, ctx, fd, -1, op->size, op->path, hashing ? &fh : NULL);
		watch_end(a);
		if (close(fd) < 0 && rc == 0)
			rc = fail(a, op->path, "write", errno);
		if (rc == 0 && !in_place)
			rc = install_tmp(a, op->path);
		if (rc == 0 && hashing && wx_ps_fhash_final(&fh, a->written->sha[k]) == 0)
			a->written->valid[k] = true;
		wx_ps_fhash_free(&fh);
		return rc;
	}
	case WX_PS_OP_PATCH:
		if ((pfd = parent_of(a, op->path, &leaf, false)) < 0)
			return -1;
		fd = openat(pfd, leaf, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 && errno == EACCES && fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode) && fchmodat(pfd, leaf, (st.st_mode & 07777) | 0200, 0) == 0)
			fd = openat(pfd, leaf, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		int e = errno;
		close(pfd);
		if (fd < 0)
			return fail(a, op->path, "cannot open the file to patch", e);
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return fail(a, op->path, "not a regular file", 0);
		}
		rc = ftruncate(fd, (off_t)op->size) < 0 ? fail(a, op->path, "truncate", errno) : 0;
		watch_begin(a, fd);
		for (size_t r = 0; rc == 0 && r < op->nranges; r++)
			rc = copy_data(a, read_fn, ctx, fd, op->ranges[r].off, op->ranges[r].len, op->path,
			    NULL);
		watch_end(a);
		if (close(fd) < 0 && rc == 0)
			rc = fail(a, op->path, "write", errno);
		return rc;
	case WX_PS_OP_SYMLINK:
		if (unlinkat(a->workfd, TMP_NAME, 0) < 0 && errno != ENOENT)
			return fail(a, op->path, "cannot clear the temporary file", errno);
		if (symlinkat(op->from, a->workfd, TMP_NAME) < 0)
			return fail(a, op->path, "cannot create the symlink", errno);
		return install_tmp(a, op->path);
	case WX_PS_OP_LINK: {
		const char *fleaf;
		int fpfd = parent_of(a, op->from, &fleaf, false);
		if (fpfd < 0)
			return -1;
		if (unlinkat(a->workfd, TMP_NAME, 0) < 0 && errno != ENOENT) {
			close(fpfd);
			return fail(a, op->path, "cannot clear the temporary file", errno);
		}
		rc = fstatat(fpfd, fleaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) ?
		    linkat(fpfd, fleaf, a->workfd, TMP_NAME, 0) : (errno = EINVAL, -1);
		int le = errno;
		close(fpfd);
		if (rc < 0)
			return fail(a, op->path, "cannot link to its group's first file", le);
		return install_tmp(a, op->path);
	}
	case WX_PS_OP_DELETE:
	case WX_PS_OP_META:
		break;
	}
	return 0;
}

static int
meta_op(struct apply *a, const struct wx_ps_op *op)
{
	struct timespec t[2] = { { .tv_sec = 0, .tv_nsec = UTIME_OMIT }, op->mtime };
	if (strcmp(op->path, ".") == 0) {
		if (fchmod(a->rootfd, op->mode) < 0 || futimens(a->rootfd, t) < 0)
			return fail(a, ".", "cannot set mode and mtime", errno);
		return 0;
	}
	const char *leaf;
	int pfd = parent_of(a, op->path, &leaf, false);
	if (pfd < 0)
		return -1;
	struct stat st;
	int rc = fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW);
	if (rc == 0 && !S_ISLNK(st.st_mode))
		rc = fchmodat(pfd, leaf, op->mode, 0);
	if (rc == 0)
		rc = utimensat(pfd, leaf, t, AT_SYMLINK_NOFOLLOW);
	int e = errno;
	close(pfd);
	return rc < 0 ? fail(a, op->path, "cannot set mode and mtime", e) : 0;
}

int
wx_ps_apply(int rootfd, int workfd, int64_t round, const struct wx_ps_delta *d,
    wx_ps_read_fn read_fn, void *ctx, char *err, size_t errsize)
{
	return wx_ps_apply_ex(rootfd, workfd, round, d, read_fn, ctx, true, NULL, NULL, err,
	    errsize);
}

int
wx_ps_apply_ex(int rootfd, int workfd, int64_t round, const struct wx_ps_delta *d,
    wx_ps_read_fn read_fn, void *ctx, bool durable, struct wx_ps_written *written,
    const struct wx_ps_write_watch *watch, char *err, size_t errsize)
{
	struct apply a = { .rootfd = rootfd, .workfd = workfd, .err = err, .errsize = errsize,
		.durable = durable, .written = written, .watch = watch };
	int64_t jround;
	int phase;
	char jid[ID_LEN + 1];
	if (round < 1)
		return fail(&a, "journal", "rounds count from 1", 0);
	if (delta_id(d, a.id) < 0)
		return fail(&a, "journal", "SHA-256 failed", 0);
	if (journal_load(workfd, &jround, &phase, jid) < 0)
		return fail(&a, "journal", "unreadable", errno);
	if (jround > round)
		return fail(&a, "journal", "a later round is already applied", 0);
	if (jround == round && strcmp(jid, a.id) != 0)
		return fail(&a, "journal", "this round was begun with a different delta", 0);
	if (jround == round && phase == PHASE_DONE)
		return 0;
	if (jround < round) {
		if (jround > 0 && phase != PHASE_DONE)
			return fail(&a, "journal", "an earlier round was left half-applied", 0);
		phase = 1;
		if (journal_write(workfd, round, phase, a.id) < 0)
			return fail(&a, "journal", "cannot write", errno);
	}
	a.buf = xmalloc(IO_CHUNK);
	if (written != NULL)
		memset(written->valid, 0, d->n);
	int rc = -1;
	if (phase <= 1) {
		for (size_t k = 0; k < d->n; k++)
			if (d->op[k].kind == WX_PS_OP_RENAME && detach(&a, k, &d->op[k]) < 0)
				goto out;
		if (advance(&a, round, 2) < 0)
			goto out;
	}
	if (phase <= 2) {
		for (size_t k = 0; k < d->n; k++)
			if (d->op[k].kind == WX_PS_OP_DELETE && delete_op(&a, &d->op[k]) < 0)
				goto out;
		if (advance(&a, round, 3) < 0)
			goto out;
	}
	if (phase <= 3) {
		for (size_t k = 0; k < d->n; k++)
			if (create_op(&a, k, &d->op[k], read_fn, ctx) < 0)
				goto out;
		if (advance(&a, round, 4) < 0)
			goto out;
	}
	for (size_t k = d->n; k-- > 0;)
		if (d->op[k].kind == WX_PS_OP_META && meta_op(&a, &d->op[k]) < 0)
			goto out;
	if (advance(&a, round, PHASE_DONE) < 0)
		goto out;
	rc = 0;
out:
	free(a.buf);
	return rc;
}
