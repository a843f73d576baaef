#include "autoconf.h"

#include "fsutil.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

int
wx_mkdirs(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	int rc = 0;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char saved = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			rc = -1;
			break;
		}
		*s = saved;
		if (saved == '\0')
			break;
	}
	if (rc == 0) {
		struct stat st;
		if (stat(path, &st) < 0)
			rc = -1;
		else if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			rc = -1;
		}
	}
	int saved_errno = errno;
	free(p);
	errno = saved_errno;
	return rc;
}

int
wx_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int
wx_atomic_write(const char *dir, const char *name, const void *data, size_t len)
{
	char *tmp = xasprintf("%s/.%s.XXXXXX", dir, name);
	char *dst = wx_path_join(dir, name);
	int fd = mkostemp(tmp, O_CLOEXEC);
	int saved = 0;
	if (fd < 0)
		goto fail_nofd;
	if (fchmod(fd, 0600) < 0 || wx_write_all(fd, data, len) < 0 || fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, dst) < 0)
		goto fail;
	free(tmp);
	free(dst);
	return wx_fsync_dir(dir);
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
fail_nofd:
	saved = errno;
	free(tmp);
	free(dst);
	errno = saved;
	return -1;
}

/* Opens the directory name in dirfd without following a link, and makes it
 * writable (entries of a 0500 directory cannot be removed); fd or -1. */
static int
open_dir_writable(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		(void)fchmod(fd, 0700);
	return fd;
}

/*
 * After a truncation step that took took_ns: a pause of WX_SHRINK_SPACING
 * times that (at most WX_SHRINK_PAUSE_MAX_NS), when it took at least
 * WX_SHRINK_PACE_MIN_NS.  A step that frees blocks without discarding them
 * takes microseconds and is not paced; one that waits for a discard is, so
 * that the discards take at most a fifth of the disk's time.
 */
static void
shrink_pause(int64_t took_ns)
{
	if (took_ns < WX_SHRINK_PACE_MIN_NS)
		return;
	int64_t pause = took_ns > WX_SHRINK_PAUSE_MAX_NS / WX_SHRINK_SPACING ?
	    WX_SHRINK_PAUSE_MAX_NS : took_ns * WX_SHRINK_SPACING;
	struct timespec ts = { .tv_sec = (time_t)(pause / 1000000000),
			       .tv_nsec = (long)(pause % 1000000000) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Before name (in dirfd) is unlinked: when it is a regular file of more than
 * two WX_SHRINK_STEPs with no other link, it is truncated from the end one
 * step at a time, each step paced by shrink_pause.  On a filesystem mounted
 * with discard (and without a journal to batch them) an unlink frees and
 * discards all of a file's blocks at once; a game server's fsync then waits
 * behind gigabytes of discard (13 ms per fsync while a 2 GiB spool went,
 * against 0.5 idle).  In steps it waits for one at most, and with the
 * pauses the disk is free most of the time (1.4 GB of files on this
 * project's test machine, a neighbour's fsync p99 over 10 s: 18 ms in two
 * tries while unpaced steps ran for 1 s; 1.6 and 4.9 ms while paced steps
 * ran for 5 s).  Best effort: any failure leaves the rest to the unlink.
 */
static void
shrink_before_unlink(int dirfd, const char *name)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 1 || st.st_size <= 2 * WX_SHRINK_STEP)
		return;
	int fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat now;
	if (fstat(fd, &now) == 0 && S_ISREG(now.st_mode) && now.st_nlink == 1 &&
	    now.st_ino == st.st_ino && now.st_dev == st.st_dev) {
		for (off_t size = now.st_size; size > 0;) {
			size = size > WX_SHRINK_STEP ? size - WX_SHRINK_STEP : 0;
			int64_t t0 = wx_mono_ns();
			if (ftruncate(fd, size) < 0)
				break;
			shrink_pause(wx_mono_ns() - t0);
		}
	}
	close(fd);
}

/*
 * Unlinks the entries of the directory fd that are not directories.  At the
 * first subdirectory it stops: 1 with *sub open on it and *subname its name
 * (to free).  0 when fd is empty, -1 with errno.
 */
static int
clear_until_subdir(int fd, int *sub, char **subname)
{
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return -1;
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		int saved = errno;
		close(dfd);
		errno = saved;
		return -1;
	}
	rewinddir(d);
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			rc = errno != 0 ? -1 : 0;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type == DT_REG || de->d_type == DT_UNKNOWN)
			shrink_before_unlink(fd, de->d_name);
		if (unlinkat(fd, de->d_name, 0) == 0 || errno == ENOENT)
			continue;
		int e = errno;
		if (e != EISDIR && e != EPERM) {
			rc = -1;
			break;
		}
		int c = open_dir_writable(fd, de->d_name);
		if (c < 0 && errno == ENOENT)
			continue;
		if (c < 0) {
			if (errno == ENOTDIR)
				errno = e;  /* a file we may not unlink: say why */
			rc = -1;
			break;
		}
		*sub = c;
		*subname = xstrdup(de->d_name);
		rc = 1;
		break;
	}
	int saved = errno;
	closedir(d);
	errno = saved;
	return rc;
}

struct rm_level {
	dev_t dev;      /* the parent directory we came from */
	ino_t ino;
	char *name;     /* this directory's name in it */
};

/*
 * Removes the directory name in pfd and everything under it, depth first,
 * with at most two directories open at any time (however deep the tree):
 * going down closes the parent, going up re-opens ".." and checks that it is
 * the directory we came from (device and inode), else fails with ESTALE.
 */
static int
remove_dir(int pfd, const char *name)
{
	int fd = open_dir_writable(pfd, name);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	struct rm_level *stack = NULL;
	size_t depth = 0, cap = 0;
	int rc = 0;
	for (;;) {
		int sub = -1;
		char *subname = NULL;
		int r = clear_until_subdir(fd, &sub, &subname);
		if (r < 0) {
			rc = -1;
			break;
		}
		if (r == 1) {
			struct stat st;
			if (fstat(fd, &st) < 0) {
				int saved = errno;
				close(sub);
				free(subname);
				errno = saved;
				rc = -1;
				break;
			}
			if (depth == cap) {
				cap = cap ? cap * 2 : 64;
				stack = xrealloc(stack, cap * sizeof *stack);
			}
			stack[depth++] = (struct rm_level){ st.st_dev, st.st_ino, subname };
			close(fd);
			fd = sub;
			continue;
		}
		if (depth == 0)
			break;  /* the top directory is empty */
		struct rm_level *l = &stack[depth - 1];
		int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct stat st;
		if (up < 0 || fstat(up, &st) < 0 || st.st_dev != l->dev || st.st_ino != l->ino) {
			int saved = up < 0 ? errno : ESTALE;
			if (up >= 0)
				close(up);
			errno = saved;
			rc = -1;
			break;
		}
		close(fd);
		fd = up;
		if (unlinkat(fd, l->name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
			rc = -1;
			break;
		}
		free(l->name);
		depth--;
	}
	int saved = errno;
	close(fd);
	while (depth > 0)
		free(stack[--depth].name);
	free(stack);
	if (rc == 0 && unlinkat(pfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -1;
	errno = saved;
	return rc;
}

static int
remove_at(int dirfd, const char *name)
{
	shrink_before_unlink(dirfd, name);
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	return remove_dir(dirfd, name);
}

int
wx_remove_tree(const char *path)
{
	char *copy = xstrdup(path);
	char *slash = strrchr(copy, '/');
	const char *parent = "/";
	const char *base = copy;
	if (slash != NULL) {
		*slash = '\0';
		parent = slash == copy ? "/" : copy;
		base = slash + 1;
	} else {
		parent = ".";
	}
	int rc = -1;
	int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd >= 0) {
		rc = remove_at(pfd, base);
		int saved = errno;
		close(pfd);
		errno = saved;
	} else if (errno == ENOENT) {
		rc = 0;
	}
	int saved = errno;
	free(copy);
	errno = saved;
	return rc;
}

int64_t
wx_free_space(const char *path)
{
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return -1;
	return (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
}

char *
wx_path_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	return xasprintf("%.*s/%s", (int)dl, dir, name);
}

/* Copies in to out from the start; 0 or -1 with errno. */
static int
copy_fd(int in, int out)
{
	char buf[64 * 1024];
	for (;;) {
		ssize_t n = read(in, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return -1;
			off += w;
		}
	}
}

/* The EXDEV half of wx_move_file. */
static int
copy_across(const char *from, const char *to)
{
	int in = open(from, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return -1;
	struct stat st;
	int fe = fstat(in, &st) < 0 ? errno : !S_ISREG(st.st_mode) ? EINVAL : 0;
	if (fe != 0) {
		close(in);
		errno = fe;
		return -1;
	}
	char *dir = xstrdup(to);
	char *slash = strrchr(dir, '/');
	const char *base = slash != NULL ? slash + 1 : to;
	if (slash != NULL)
		*slash = '\0';
	char *tmp = slash != NULL ? xasprintf("%s/.%s.wingxfer-copy", dir, base)
	    : xasprintf(".%s.wingxfer-copy", base);
	int rc = -1, e = 0;
	int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		e = errno;
		goto out;
	}
	const struct timespec times[2] = { st.st_atim, st.st_mtim };
	if (copy_fd(in, out) < 0 || fchown(out, st.st_uid, st.st_gid) < 0 ||
	    fchmod(out, st.st_mode & 07777) < 0 || futimens(out, times) < 0 || fsync(out) < 0) {
		e = errno;
		close(out);
		unlink(tmp);
		goto out;
	}
	if (close(out) < 0 || rename(tmp, to) < 0) {
		e = errno;
		unlink(tmp);
		goto out;
	}
	if (wx_fsync_dir(slash != NULL ? dir : ".") < 0 || unlink(from) < 0) {
		e = errno;  /* to is complete and durable; from stays too */
		goto out;
	}
	rc = 0;
out:
	close(in);
	free(tmp);
	free(dir);
	if (rc < 0)
		errno = e;
	return rc;
}

int
wx_move_file(const char *from, const char *to)
{
	if (rename(from, to) == 0)
		return 0;
	if (errno != EXDEV)
		return -1;
	return copy_across(from, to);
}
