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

static int
remove_at(int dirfd, const char *name, int depth)
{
	if (depth > 4096) {
		errno = ELOOP;
		return -1;
	}
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	(void)fchmod(fd, 0700); /* entries of a 0500 directory cannot be removed */
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (remove_at(fd, de->d_name, depth + 1) < 0) {
			rc = -1;
			break;
		}
	}
	int saved = errno;
	closedir(d);
	if (rc < 0) {
		errno = saved;
		return -1;
	}
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -1;
	return 0;
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
		rc = remove_at(pfd, base, 0);
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
