#include "autoconf.h"

#include "state.h"
#include "fsutil.h"
#include "json_text.h"
#include "log.h"
#include "util.h"
#include "uuid.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int
wx_state_open(struct wx_state *st, const char *dir, char *err, size_t errsize)
{
	memset(st, 0, sizeof *st);
	st->dir = xstrdup(dir);
	st->transfers = wx_path_join(dir, "transfers");
	st->outbox = wx_path_join(dir, "outbox");
	st->rejected = wx_path_join(st->outbox, "rejected");
	st->tokens = wx_path_join(dir, "tokens");
	const char *dirs[] = { st->dir, st->transfers, st->outbox, st->rejected, st->tokens };
	mode_t old = umask(077);
	for (size_t i = 0; i < WX_ARRAY_LEN(dirs); i++) {
		if (wx_mkdirs(dirs[i], 0700) < 0) {
			snprintf(err, errsize,
			    "state directory %s: cannot create %s: %s (system.transfers.state_directory)",
			    dir, dirs[i], strerror(errno));
			umask(old);
			wx_state_close(st);
			return -1;
		}
	}
	umask(old);
	if (access(st->transfers, W_OK) < 0) {
		snprintf(err, errsize, "state directory %s is not writable by uid %d: %s "
		    "(system.transfers.state_directory)", dir, (int)geteuid(), strerror(errno));
		wx_state_close(st);
		return -1;
	}
	return 0;
}

void
wx_state_close(struct wx_state *st)
{
	free(st->dir);
	free(st->transfers);
	free(st->outbox);
	free(st->rejected);
	free(st->tokens);
	memset(st, 0, sizeof *st);
}

char *
wx_state_file(const struct wx_state *st, const char *uuid, const char *suffix)
{
	return xasprintf("%s/%s%s", st->transfers, uuid, suffix);
}

static enum wx_lock_result
lock_path(const char *path, int attempts, int *fdp)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return WX_LOCK_ERROR;
	/*
	 * A probe (lock + unlock) by another process can hold the lock for a
	 * moment; a few short retries keep that from looking like a live owner.
	 */
	for (int busy = 0;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			*fdp = fd;
			return WX_LOCK_ACQUIRED;
		}
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK && ++busy < attempts) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			continue;
		}
		int saved = errno;
		close(fd);
		errno = saved;
		return saved == EWOULDBLOCK ? WX_LOCK_BUSY : WX_LOCK_ERROR;
	}
}

enum wx_lock_result
wx_lock_try_path(const char *path, int *fdp)
{
	return lock_path(path, 5, fdp);
}

static enum wx_lock_result
lock_transfer(const struct wx_state *st, const char *uuid, int attempts, int *fdp)
{
	if (!wx_uuid_valid(uuid)) {
		errno = EINVAL;
		return WX_LOCK_ERROR;
	}
	char *path = wx_state_file(st, uuid, ".lock");
	enum wx_lock_result r = lock_path(path, attempts, fdp);
	int saved = errno;
	free(path);
	errno = saved;
	return r;
}

enum wx_lock_result
wx_lock_try(const struct wx_state *st, const char *uuid, int *fdp)
{
	return lock_transfer(st, uuid, 5, fdp);
}

enum wx_lock_result
wx_lock_try_once(const struct wx_state *st, const char *uuid, int *fdp)
{
	return lock_transfer(st, uuid, 1, fdp);
}

enum wx_lock_result
wx_lock_probe(const struct wx_state *st, const char *uuid)
{
	int fd = -1;
	enum wx_lock_result r = wx_lock_try(st, uuid, &fd);
	if (r == WX_LOCK_ACQUIRED)
		close(fd);
	return r;
}

int
wx_cancel_request(const struct wx_state *st, const char *uuid, const char *why)
{
	char *path = wx_state_file(st, uuid, ".cancel");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	int saved = errno;
	free(path);
	if (fd < 0) {
		errno = saved;
		return -1;
	}
	size_t len = why ? strnlen(why, WX_CANCEL_WHY_MAX) : 0;
	ssize_t n = len > 0 ? write(fd, why, len) : 0;
	saved = errno;
	close(fd);
	if (n < 0 || (size_t)n != len) {
		errno = n < 0 ? saved : EIO;
		return -1;
	}
	return 0;
}

bool
wx_cancel_requested(const struct wx_state *st, const char *uuid, char *why, size_t whysize)
{
	char *path = wx_state_file(st, uuid, ".cancel");
	bool yes = access(path, F_OK) == 0;
	if (yes && why != NULL && whysize > 0) {
		const char *rwhy = NULL;
		char *text = wx_read_small_file(path, WX_CANCEL_WHY_MAX, &rwhy);
		wx_strlcpy(why, text ? text : "", whysize);
		free(text);
	}
	free(path);
	return yes;
}

void
wx_cancel_clear(const struct wx_state *st, const char *uuid)
{
	char *path = wx_state_file(st, uuid, ".cancel");
	(void)unlink(path);
	free(path);
}

/* Keeps the newest half of an over-long events file (whole lines only). */
static void
events_trim(const struct wx_state *st, const char *uuid, const char *path)
{
	const char *why;
	char *text = wx_read_small_file(path, 4 * WX_EVENTS_MAX_BYTES, &why);
	if (text == NULL)
		return;
	size_t len = strlen(text);
	const char *keep = text + (len > WX_EVENTS_MAX_BYTES / 2 ? len - WX_EVENTS_MAX_BYTES / 2 : 0);
	if (keep > text) {
		const char *nl = strchr(keep, '\n');
		keep = nl ? nl + 1 : text + len;
	}
	char *name = xasprintf("%s.events", uuid);
	(void)wx_atomic_write(st->transfers, name, keep, strlen(keep));
	free(name);
	free(text);
}

int
wx_events_append(const struct wx_state *st, const char *uuid, const char *event, const char *arg)
{
	json_object *j = json_object_new_object();
	char ts[32];
	wx_format_time(wx_now(), ts, sizeof ts);
	json_object_object_add(j, "time", json_object_new_string(ts));
	json_object_object_add(j, "event", json_object_new_string(event));
	json_object *args = json_object_new_array();
	json_object_array_add(args, json_object_new_string(arg));
	json_object_object_add(j, "args", args);
	size_t len;
	char *s = wx_json_text(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char *line = xasprintf("%s\n", s);
	free(s);
	json_object_put(j);

	char *path = wx_state_file(st, uuid, ".events");
	int rc = -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		rc = wx_write_all(fd, line, len + 1);
		struct stat sb;
		bool big = fstat(fd, &sb) == 0 && sb.st_size > WX_EVENTS_MAX_BYTES;
		close(fd);
		if (big)
			events_trim(st, uuid, path);
	}
	free(path);
	free(line);
	return rc;
}

json_object *
wx_events_tail(const struct wx_state *st, const char *uuid, int n)
{
	json_object *out = json_object_new_array();
	char *path = wx_state_file(st, uuid, ".events");
	const char *why;
	char *text = wx_read_small_file(path, 4 * WX_EVENTS_MAX_BYTES, &why);
	free(path);
	if (text == NULL)
		return out;
	/* Collect all "transfer logs" lines, keep the last n. */
	json_object *all = json_object_new_array();
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_object *j = json_tokener_parse(line);
		json_object *ev, *args, *a0;
		if (j && json_object_object_get_ex(j, "event", &ev) &&
		    strcmp(json_object_get_string(ev), "transfer logs") == 0 &&
		    json_object_object_get_ex(j, "args", &args) &&
		    json_object_is_type(args, json_type_array) &&
		    (a0 = json_object_array_get_idx(args, 0)) != NULL)
			json_object_array_add(all, json_object_get(a0));
		if (j)
			json_object_put(j);
	}
	size_t total = json_object_array_length(all);
	size_t from = total > (size_t)n ? total - (size_t)n : 0;
	for (size_t i = from; i < total; i++)
		json_object_array_add(out, json_object_get(json_object_array_get_idx(all, i)));
	json_object_put(all);
	free(text);
	return out;
}

int
wx_state_record_uuids(const struct wx_state *st, char ***uuidsp, size_t *count)
{
	*uuidsp = NULL;
	*count = 0;
	DIR *d = opendir(st->transfers);
	if (d == NULL)
		return -1;
	char **uuids = NULL;
	size_t n = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) == 36 + 5 && strcmp(de->d_name + 36, ".json") == 0) {
			char uuid[37];
			memcpy(uuid, de->d_name, 36);
			uuid[36] = '\0';
			if (wx_uuid_valid(uuid)) {
				uuids = xrealloc(uuids, (n + 1) * sizeof *uuids);
				uuids[n++] = xstrdup(uuid);
			}
		}
		errno = 0;
	}
	int saved = errno;
	closedir(d);
	if (saved != 0) {
		for (size_t i = 0; i < n; i++)
			free(uuids[i]);
		free(uuids);
		errno = saved;
		return -1;
	}
	*uuidsp = uuids;
	*count = n;
	return 0;
}

int
wx_lock_adopt(const struct wx_state *st, const char *uuid, int fd)
{
	char *path = wx_state_file(st, uuid, ".lock");
	struct stat a, b;
	int rc = -1;
	if (fstat(fd, &a) < 0)
		wx_err("--lock-fd %d is not open: %s", fd, strerror(errno));
	else if (stat(path, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		wx_err("--lock-fd %d is not the lock file %s", fd, path);
	else if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		wx_err("--lock-fd %d does not hold the lock of %s: %s", fd, path, strerror(errno));
	else if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		wx_err("--lock-fd %d: %s", fd, strerror(errno));
	else
		rc = 0;
	free(path);
	return rc;
}
