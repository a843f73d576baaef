/*
 * Which process owns a transfer: the one holding its lock file open.  The
 * record's pid is only a hint: the source handler writes pid 0 and hands the
 * lock to wingxfer-push, and /proc/locks would name the handler that took
 * the lock, not the worker that holds it now.  So the watchdog looks for
 * processes with the lock file open, and signals only such a process.
 */
#include "autoconf.h"

#include "watchdog.h"
#include "state.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

pid_t
wd_lock_owner(const char *lock_path, int64_t record_pid)
{
	struct stat want;
	if (stat(lock_path, &want) < 0)
		return 0;
	pid_t self = getpid();
	if (record_pid > 1 && record_pid != self && has_open((pid_t)record_pid, &want))
		return (pid_t)record_pid;
	DIR *d = opendir("/proc");
	if (d == NULL)
		return 0;
	pid_t only = 0;
	int count = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		int64_t pid;
		if (wx_parse_i64(de->d_name, 2, 1 << 30, &pid) != NULL || pid == self)
			continue;
		if (has_open((pid_t)pid, &want)) {
			only = (pid_t)pid;
			count++;
		}
	}
	closedir(d);
	return count == 1 ? only : 0;
}

int
wd_lock_idle(struct wd *w, const char *uuid, const char *busy_note)
{
	int fd = -1;
	enum wx_lock_result lr = wx_lock_try(w->st, uuid, &fd);
	if (lr == WX_LOCK_ACQUIRED)
		return fd;
	if (lr == WX_LOCK_BUSY)
		wd_note(w, uuid, "%s", busy_note);
	else
		wd_error(w, uuid, "cannot check the transfer lock: %s", strerror(errno));
	return -1;
}
