/*
 * The owner of a transfer, found through the processes that hold its lock
 * file open (owner.h).
 */
#include "autoconf.h"

#include "owner.h"
#include "util.h"

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DELETED_SUFFIX " (deleted)"

/* Whether pid has the file want open (any of its fds). */
static bool
has_open(pid_t pid, const struct stat *want)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	if (d == NULL)
		return false;
	bool found = false;
	struct dirent *de;
	while (!found && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		struct stat sb;
		if (fstatat(dirfd(d), de->d_name, &sb, 0) == 0 && sb.st_ino == want->st_ino &&
		    sb.st_dev == want->st_dev)
			found = true;
	}
	closedir(d);
	return found;
}

/* Whether pid's executable is named program (NULL: any). */
static bool
runs(pid_t pid, const char *program)
{
	if (program == NULL)
		return true;
	char link[64], exe[PATH_MAX];
	snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(link, exe, sizeof exe - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	size_t len = (size_t)n, dlen = strlen(DELETED_SUFFIX);
	if (len > dlen && strcmp(exe + len - dlen, DELETED_SUFFIX) == 0)
		exe[len - dlen] = '\0';
	const char *base = strrchr(exe, '/');
	return strcmp(base != NULL ? base + 1 : exe, program) == 0;
}

static bool
qualifies(pid_t pid, pid_t self, const struct stat *want, const char *program)
{
	return pid > 1 && pid != self && has_open(pid, want) && runs(pid, program);
}

pid_t
wx_transfer_owner(const char *lock_path, int64_t record_pid, const char *program,
    enum wx_owner_search how)
{
	struct stat want;
	if (stat(lock_path, &want) < 0)
		return 0;
	pid_t self = getpid();
	if (record_pid > 1 && record_pid <= INT_MAX &&
	    qualifies((pid_t)record_pid, self, &want, program))
		return (pid_t)record_pid;
	if (how != WX_OWNER_ANY)
		return 0;
	DIR *d = opendir("/proc");
	if (d == NULL)
		return 0;
	pid_t only = 0;
	int count = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		int64_t pid;
		if (wx_parse_i64(de->d_name, 2, INT_MAX, &pid) != NULL)
			continue;
		if (qualifies((pid_t)pid, self, &want, program)) {
			only = (pid_t)pid;
			count++;
		}
	}
	closedir(d);
	return count == 1 ? only : 0;
}
