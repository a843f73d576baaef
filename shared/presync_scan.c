#include "autoconf.h"

#include "presync_manifest.h"

#include "tree_rules.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
entry_cmp(const void *a, const void *b)
{
	return wx_ps_path_cmp(((const struct wx_ps_entry *)a)->path,
	    ((const struct wx_ps_entry *)b)->path);
}

/* Forgets the entry added last (a running server removed it meanwhile). */
static void
drop_last(struct wx_ps_manifest *m)
{
	m->n--;
	free(m->e[m->n].path);
	free(m->e[m->n].target);
}

static bool
not_older(const struct timespec *t, const struct timespec *start)
{
	return t->tv_sec > start->tv_sec ||
	    (t->tv_sec == start->tv_sec && t->tv_nsec >= start->tv_nsec);
}

struct scan {
	struct wx_ps_manifest *m;
	char path[WX_ENTRY_PATH_MAX + 1];
	char *err;
	size_t errsize;
};

static int
scan_fail(struct scan *s, const char *name, const char *what, int errnum)
{
	const char *shown = s->path[0] ? s->path : ".";
	if (errnum)
		snprintf(s->err, s->errsize, "%s%s%s: %s: %s", shown, name ? "/" : "",
		    name ? name : "", what, strerror(errnum));
	else
		snprintf(s->err, s->errsize, "%s%s%s: %s", shown, name ? "/" : "",
		    name ? name : "", what);
	return -1;
}

static void
fill_entry(struct wx_ps_entry *e, const struct stat *st, const struct timespec *start)
{
	e->mode = S_ISLNK(st->st_mode) ? 0 : (uint32_t)(st->st_mode & 07777);
	e->size = S_ISDIR(st->st_mode) ? 0 : (int64_t)st->st_size;
	e->mtime = st->st_mtim;
	e->ctime = st->st_ctim;
	e->ino = (uint64_t)st->st_ino;
	e->nlink = (uint64_t)st->st_nlink;
	e->racy = not_older(&e->mtime, start) || not_older(&e->ctime, start);
}

/* Scans the directory open as fd (closed here), whose path is s->path ("" for
 * the root) at the given depth. */
static int
scan_dir(struct scan *s, int fd, dev_t dev, size_t depth)
{
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		int e = errno;
		close(fd);
		return scan_fail(s, NULL, "cannot read the directory", e);
	}
	size_t plen = strlen(s->path);
	int rc = -1;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno) {
				scan_fail(s, NULL, "cannot read the directory", errno);
				goto out;
			}
			break;
		}
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;   /* deleted since readdir: the next round sees it gone */
			scan_fail(s, name, "cannot stat", errno);
			goto out;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
			s->m->skipped++;
			continue;
		}
		size_t nlen = strlen(name);
		if (plen + (plen ? 1 : 0) + nlen > WX_ENTRY_PATH_MAX) {
			scan_fail(s, name, "path longer than 4095 bytes", 0);
			goto out;
		}
		if (depth + 1 > WX_TREE_MAX_DEPTH) {
			scan_fail(s, name, "deeper than the tree rules allow", 0);
			goto out;
		}
		if (plen)
			s->path[plen] = '/';
		memcpy(s->path + plen + (plen ? 1 : 0), name, nlen + 1);
		struct wx_ps_entry *e = wx_ps_manifest_add(s->m);
		e->path = xstrdup(s->path);
		fill_entry(e, &st, &s->m->start);
		if (S_ISREG(st.st_mode)) {
			e->type = WX_PS_FILE;
		} else if (S_ISLNK(st.st_mode)) {
			e->type = WX_PS_LINK;
			char target[WX_ENTRY_PATH_MAX + 1];
			ssize_t n = readlinkat(dirfd(d), name, target, sizeof target);
			s->path[plen] = '\0';
			if (n < 0 && (errno == ENOENT || errno == EINVAL)) {
				drop_last(s->m);   /* gone or replaced since the stat */
				continue;
			}
			if (n < 0) {
				scan_fail(s, name, "cannot read the symlink", errno);
				goto out;
			}
			if ((size_t)n >= sizeof target || n == 0) {
				scan_fail(s, name, "symlink target empty or longer than 4095 bytes", 0);
				goto out;
			}
			target[n] = '\0';
			e->target = xstrdup(target);
			e->size = n;
		} else {
			e->type = WX_PS_DIR;
			if (st.st_dev != dev) {
				s->path[plen] = '\0';
				scan_fail(s, name, "is a mount point (another file system)", 0);
				goto out;
			}
			int sub = openat(dirfd(d), name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)) {
				s->path[plen] = '\0';
				drop_last(s->m);   /* gone or replaced since the stat */
				continue;
			}
			if (sub < 0) {
				int err = errno;
				s->path[plen] = '\0';
				scan_fail(s, name, "cannot open the directory", err);
				goto out;
			}
			if (scan_dir(s, sub, dev, depth + 1) < 0)
				goto out;
		}
		s->path[plen] = '\0';
	}
	rc = 0;
out:
	s->path[plen] = '\0';
	closedir(d);
	return rc;
}

int
wx_ps_scan(int rootfd, const struct timespec *start, struct wx_ps_manifest *m,
    char *err, size_t errsize)
{
	memset(m, 0, sizeof *m);
	if (start)
		m->start = *start;
	else if (clock_gettime(CLOCK_REALTIME_COARSE, &m->start) < 0)
		return snprintf(err, errsize, "clock_gettime: %s", strerror(errno)), -1;
	struct scan s = { .m = m, .err = err, .errsize = errsize };
	struct stat st;
	if (fstat(rootfd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errsize, "the tree root is not a directory");
		return -1;
	}
	struct wx_ps_entry *root = wx_ps_manifest_add(m);
	root->path = xstrdup(".");
	root->type = WX_PS_DIR;
	fill_entry(root, &st, &m->start);
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		scan_fail(&s, NULL, "cannot open the tree root", errno);
		wx_ps_manifest_free(m);
		return -1;
	}
	if (scan_dir(&s, fd, st.st_dev, 0) < 0) {
		wx_ps_manifest_free(m);
		return -1;
	}
	qsort(m->e, m->n, sizeof *m->e, entry_cmp);
	/* readdir may return a name twice while the directory changes: keep one */
	size_t keep = m->n ? 1 : 0;
	for (size_t i = 1; i < m->n; i++) {
		if (strcmp(m->e[i].path, m->e[keep - 1].path) == 0) {
			free(m->e[i].path);
			free(m->e[i].target);
			continue;
		}
		m->e[keep++] = m->e[i];
	}
	m->n = keep;
	return 0;
}
