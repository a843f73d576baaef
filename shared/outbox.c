#include "autoconf.h"

#include "outbox.h"
#include "json_get.h"
#include "json_text.h"
#include "backoff.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "state.h"
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
#include <unistd.h>

#define MAX_ENTRY_BYTES (64 * 1024)
#define MAX_REASON 1000
#define MAX_ANSWER 4096

bool
wx_outbox_valid_transfer_id(const char *tid)
{
	size_t n = tid ? strlen(tid) : 0;
	if (n == 0 || n > 64 || tid[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = tid[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

char *
wx_outbox_name(const char *uuid, const char *tid)
{
	return xasprintf("%s.%s.json", uuid, tid);
}

static char *
sent_dir(const struct wx_state *st)
{
	return wx_path_join(st->outbox, "sent");
}

/* The outbox-wide lock (blocking; held only around file operations). */
static int
outbox_lock(const struct wx_state *st)
{
	char *path = wx_path_join(st->outbox, ".lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	int saved = errno;
	free(path);
	if (fd < 0) {
		errno = saved;
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			saved = errno;
			close(fd);
			errno = saved;
			return -1;
		}
	}
	return fd;
}

static void
outbox_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* --- entry <-> JSON ------------------------------------------------------ */

static json_object *
entry_to_json(const struct wx_outbox_entry *e)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "server", json_object_new_string(e->server));
	json_object_object_add(j, "transfer_id", json_object_new_string(e->transfer_id));
	json_object_object_add(j, "kind", json_object_new_string(wx_callback_kind_name(e->kind)));
	json_object_object_add(j, "reason", e->reason ? json_object_new_string(e->reason) : NULL);
	json_object_object_add(j, "created_at", json_object_new_int64(e->created_at));
	json_object_object_add(j, "attempts", json_object_new_int64(e->attempts));
	json_object_object_add(j, "redeliveries", json_object_new_int64(e->redeliveries));
	json_object_object_add(j, "last_attempt_at", json_object_new_int64(e->last_attempt_at));
	json_object_object_add(j, "next_attempt_at", json_object_new_int64(e->next_attempt_at));
	json_object_object_add(j, "last_status", json_object_new_int64(e->last_status));
	json_object_object_add(j, "in_flight_at", json_object_new_int64(e->in_flight_at));
	json_object_object_add(j, "unanswered", json_object_new_int64(e->unanswered));
	json_object_object_add(j, "last_error",
	    e->last_error ? json_object_new_string(e->last_error) : NULL);
	return j;
}

static int
entry_from_text(const char *text, struct wx_outbox_entry *e, const char **why)
{
	int fd = e->fd;
	memset(e, 0, sizeof *e);
	e->fd = fd;
	json_object *j = json_tokener_parse(text);
	if (j == NULL || !json_object_is_type(j, json_type_object)) {
		*why = "not a JSON object";
		goto fail;
	}
	char kind[16];
	int64_t status = 0;
	if (wx_json_req_fixed(j, "server", e->server, sizeof e->server) < 0 ||
	    !wx_uuid_valid(e->server)) {
		*why = "bad server uuid";
		goto fail;
	}
	if (wx_json_req_fixed(j, "transfer_id", e->transfer_id, sizeof e->transfer_id) < 0 ||
	    !wx_outbox_valid_transfer_id(e->transfer_id)) {
		*why = "bad transfer_id";
		goto fail;
	}
	if (wx_json_req_fixed(j, "kind", kind, sizeof kind) < 0) {
		*why = "bad kind";
		goto fail;
	}
	if (wx_callback_kind_parse(kind, &e->kind) < 0) {
		*why = "bad kind";
		goto fail;
	}
	if (wx_json_opt_str(j, "reason", &e->reason) < 0 || wx_json_opt_str(j, "last_error", &e->last_error) < 0 ||
	    wx_json_opt_i64(j, "created_at", &e->created_at) < 0 || wx_json_opt_i64(j, "attempts", &e->attempts) < 0 ||
	    wx_json_opt_i64(j, "redeliveries", &e->redeliveries) < 0 ||
	    wx_json_opt_i64(j, "last_attempt_at", &e->last_attempt_at) < 0 ||
	    wx_json_opt_i64(j, "next_attempt_at", &e->next_attempt_at) < 0 ||
	    wx_json_opt_i64(j, "last_status", &status) < 0 ||
	    wx_json_opt_i64(j, "in_flight_at", &e->in_flight_at) < 0 ||
	    wx_json_opt_i64(j, "unanswered", &e->unanswered) < 0) {
		*why = "a field has the wrong type";
		goto fail;
	}
	e->last_status = (long)status;
	json_object_put(j);
	return 0;
fail:
	if (j)
		json_object_put(j);
	free(e->reason);
	free(e->last_error);
	e->reason = e->last_error = NULL;
	errno = EINVAL;
	return -1;
}

static char *
read_fd_text(int fd)
{
	if (lseek(fd, 0, SEEK_SET) < 0)
		return NULL;
	char *buf = xmalloc(MAX_ENTRY_BYTES + 1);
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + len, MAX_ENTRY_BYTES - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return NULL;
		}
		if (r == 0 || (len += (size_t)r) == MAX_ENTRY_BYTES)
			break;
	}
	buf[len] = '\0';
	return buf;
}

/* Reads an entry file without locking it (files are replaced whole). */
static int
read_entry_path(const char *path, struct wx_outbox_entry *e, const char **why)
{
	const char *rwhy = NULL;
	char *text = wx_read_small_file(path, MAX_ENTRY_BYTES, &rwhy);
	if (text == NULL) {
		*why = rwhy;
		return -1;
	}
	e->fd = -1;
	int rc = entry_from_text(text, e, why);
	free(text);
	return rc;
}

/* --- locking and writing entries ------------------------------------------ */

/*
 * Locks the file at path without blocking and checks that path still names
 * it.  1 locked (*fdp), 0 busy, -1 absent (ENOENT) or error.
 */
static int
lock_entry(const char *path, int *fdp)
{
	for (int tries = 0; tries < 3; tries++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return -1;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int saved = errno;
			close(fd);
			if (saved == EWOULDBLOCK)
				return 0;
			errno = saved;
			return -1;
		}
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev) {
			*fdp = fd;
			return 1;
		}
		close(fd); /* replaced or removed while we were locking: look again */
	}
	errno = ENOENT;
	return -1;
}

/*
 * Writes e to dir/name atomically and returns (in e->fd) a lock on the new
 * file, taken before it replaces the old one; the old lock is released.
 */
static int
write_locked(const char *dir, const char *name, struct wx_outbox_entry *e)
{
	json_object *j = entry_to_json(e);
	size_t len = 0;
	char *text = wx_json_text(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char *tmp = xasprintf("%s/.%s.XXXXXX", dir, name);
	char *dst = wx_path_join(dir, name);
	int rc = -1, saved = 0;
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		goto out;
	if (fchmod(fd, 0600) < 0 || wx_write_all(fd, text, len) < 0 ||
	    wx_write_all(fd, "\n", 1) < 0 || fsync(fd) < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0 ||
	    rename(tmp, dst) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		goto out;
	}
	(void)wx_fsync_dir(dir);
	if (e->fd >= 0)
		close(e->fd);
	e->fd = fd;
	rc = 0;
out:
	saved = errno;
	free(text);
	free(tmp);
	free(dst);
	json_object_put(j);
	errno = saved;
	return rc;
}

/* --- public --------------------------------------------------------------- */

static int
kind_conflict(const struct wx_outbox_entry *have, enum wx_callback_kind want, const char *where,
    char *detail, size_t detailsize)
{
	if (have->kind == want)
		return 0;
	snprintf(detail, detailsize, "a %s callback for this transfer is already %s; "
	    "not sending %s as well", wx_callback_kind_name(have->kind), where,
	    wx_callback_kind_name(want));
	errno = EEXIST;
	return -1;
}

/* e was just taken under its lock: a POST its previous holder began and never
 * saw answered may have reached the panel. */
static void
adopt(struct wx_outbox_entry *e)
{
	if (e->in_flight_at != 0) {
		e->unanswered++;
		e->in_flight_at = 0;
	}
}

int
wx_outbox_queue(const struct wx_state *st, const char *uuid, const char *tid,
    enum wx_callback_kind kind, const char *reason, struct wx_outbox_entry *e,
    char *detail, size_t detailsize)
{
	memset(e, 0, sizeof *e);
	e->fd = -1;
	detail[0] = '\0';
	if (!wx_uuid_valid(uuid) || !wx_outbox_valid_transfer_id(tid)) {
		errno = EINVAL;
		snprintf(detail, detailsize, "invalid server uuid or transfer id");
		return -1;
	}
	char *sdir = sent_dir(st);
	if (wx_mkdirs(sdir, 0700) < 0 || wx_mkdirs(st->rejected, 0700) < 0) {
		int saved = errno;
		snprintf(detail, detailsize, "cannot create %s: %s", sdir, strerror(saved));
		free(sdir);
		errno = saved;
		return -1;
	}
	char *name = wx_outbox_name(uuid, tid);
	char *paths[3] = { wx_path_join(sdir, name), wx_path_join(st->rejected, name),
	    wx_path_join(st->outbox, name) };
	int rc = -1, saved = 0;
	int glock = outbox_lock(st);
	if (glock < 0) {
		saved = errno;
		snprintf(detail, detailsize, "cannot lock the outbox %s: %s", st->outbox,
		    strerror(saved));
		goto out;
	}
	struct wx_outbox_entry old;
	const char *why = NULL;
	static const char *const where[] = { "delivered", "rejected by the panel" };
	for (int i = 0; i < 2; i++) {
		if (read_entry_path(paths[i], &old, &why) < 0) {
			if (errno == ENOENT)
				continue;
			saved = errno;
			snprintf(detail, detailsize, "%s is unreadable (%s); not sending a second "
			    "callback", paths[i], why);
			saved = EEXIST;
			goto out;
		}
		int conflict = kind_conflict(&old, kind, where[i], detail, detailsize);
		free(old.reason);
		free(old.last_error);
		saved = errno;
		if (conflict == 0)
			rc = i == 0 ? WX_OUTBOX_Q_SENT : WX_OUTBOX_Q_REJECTED;
		goto out;
	}
	int fd = -1;
	int lr = lock_entry(paths[2], &fd);
	if (lr == 1) {
		char *text = read_fd_text(fd);
		e->fd = fd;
		if (text == NULL || entry_from_text(text, e, &why) < 0) {
			free(text);
			saved = EEXIST;
			snprintf(detail, detailsize, "%s is unreadable; not sending a second callback",
			    paths[2]);
			wx_outbox_release(e);
			goto out;
		}
		free(text);
		adopt(e);
		if (kind_conflict(e, kind, "queued", detail, detailsize) < 0) {
			saved = errno;
			wx_outbox_release(e);
			goto out;
		}
		rc = WX_OUTBOX_Q_EXISTING;
		goto out;
	}
	if (lr == 0) {
		if (read_entry_path(paths[2], &old, &why) == 0) {
			int conflict = kind_conflict(&old, kind, "queued", detail, detailsize);
			free(old.reason);
			free(old.last_error);
			saved = errno;
			if (conflict < 0)
				goto out;
		}
		rc = WX_OUTBOX_Q_BUSY;
		goto out;
	}
	if (errno != ENOENT) {
		saved = errno;
		snprintf(detail, detailsize, "cannot open %s: %s", paths[2], strerror(saved));
		goto out;
	}
	wx_strlcpy(e->server, uuid, sizeof e->server);
	wx_strlcpy(e->transfer_id, tid, sizeof e->transfer_id);
	e->kind = kind;
	if (kind == WX_CALLBACK_FAILURE)
		e->reason = xstrndup(reason && *reason ? reason : "transfer failed", MAX_REASON);
	e->created_at = wx_now();
	e->next_attempt_at = e->created_at;
	if (write_locked(st->outbox, name, e) < 0) {
		saved = errno;
		snprintf(detail, detailsize, "cannot write %s: %s", paths[2], strerror(saved));
		wx_outbox_release(e);
		goto out;
	}
	rc = WX_OUTBOX_Q_NEW;
out:
	outbox_unlock(glock);
	for (int i = 0; i < 3; i++)
		free(paths[i]);
	free(name);
	free(sdir);
	if (rc < 0)
		errno = saved ? saved : EIO;
	return rc;
}

int
wx_outbox_save(const struct wx_state *st, struct wx_outbox_entry *e)
{
	char *name = wx_outbox_name(e->server, e->transfer_id);
	int rc = write_locked(st->outbox, name, e);
	int saved = errno;
	free(name);
	errno = saved;
	return rc;
}

int
wx_outbox_finish(const struct wx_state *st, struct wx_outbox_entry *e, bool delivered,
    long status, const char *answer, const char *why)
{
	char *name = wx_outbox_name(e->server, e->transfer_id);
	char *sdir = sent_dir(st);
	const char *dir = delivered ? sdir : st->rejected;
	char *queued = wx_path_join(st->outbox, name);
	json_object *j = entry_to_json(e);
	int64_t now = wx_now();
	json_object_object_add(j, delivered ? "delivered_at" : "rejected_at",
	    json_object_new_int64(now));
	json_object_object_add(j, "status", json_object_new_int64(status));
	if (answer)
		json_object_object_add(j, "answer", json_object_new_string_len(answer,
		    (int)strnlen(answer, MAX_ANSWER)));
	if (why)
		json_object_object_add(j, "why", json_object_new_string(why));
	size_t len = 0;
	char *text = wx_json_text(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char *data = xasprintf("%s\n", text);
	free(text);
	int rc = -1, saved = 0;
	int glock = outbox_lock(st);
	if (glock < 0 || wx_mkdirs(dir, 0700) < 0 ||
	    wx_atomic_write(dir, name, data, len + 1) < 0) {
		saved = errno;
		goto out;
	}
	/* The tombstone is durable; now the queued file may go. */
	if (unlink(queued) < 0 && errno != ENOENT) {
		saved = errno;
		goto out;
	}
	(void)wx_fsync_dir(st->outbox);
	rc = 0;
out:
	outbox_unlock(glock);
	wx_outbox_release(e);
	json_object_put(j);
	free(data);
	free(queued);
	free(sdir);
	free(name);
	errno = saved;
	return rc;
}

void
wx_outbox_release(struct wx_outbox_entry *e)
{
	if (e->fd >= 0)
		close(e->fd);
	e->fd = -1;
	free(e->reason);
	free(e->last_error);
	e->reason = e->last_error = NULL;
}

char *
wx_outbox_body(const struct wx_outbox_entry *e)
{
	if (e->kind == WX_CALLBACK_SUCCESS)
		return xstrdup("null");
	json_object *j = json_object_new_object();
	json_object_object_add(j, "error",
	    json_object_new_string(e->reason ? e->reason : "transfer failed"));
	char *s = wx_json_text(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, NULL);
	json_object_put(j);
	return s;
}

int
wx_outbox_take(const struct wx_state *st, const char *name, struct wx_outbox_entry *e,
    const char **why)
{
	memset(e, 0, sizeof *e);
	e->fd = -1;
	char *path = wx_path_join(st->outbox, name);
	int fd = -1;
	int lr = lock_entry(path, &fd);
	free(path);
	if (lr <= 0) {
		if (lr < 0 && errno == ENOENT)
			return 0;
		if (lr < 0)
			*why = strerror(errno);
		return lr;
	}
	char *text = read_fd_text(fd);
	e->fd = fd;
	if (text == NULL) {
		*why = strerror(errno);
		wx_outbox_release(e);
		return -1;
	}
	int rc = entry_from_text(text, e, why);
	free(text);
	if (rc < 0) {
		wx_outbox_release(e);
		errno = EINVAL;
		return -1;
	}
	adopt(e);
	return 1;
}

enum wx_outbox_where
wx_outbox_lookup(const struct wx_state *st, const char *uuid, const char *tid,
    enum wx_callback_kind *kind)
{
	struct wx_outbox_entry e;
	enum wx_outbox_where found = wx_outbox_lookup_entry(st, uuid, tid, &e);
	if (found != WX_OUTBOX_NONE && kind)
		*kind = e.kind;
	wx_outbox_release(&e);
	return found;
}

enum wx_outbox_where
wx_outbox_lookup_entry(const struct wx_state *st, const char *uuid, const char *tid,
    struct wx_outbox_entry *out)
{
	memset(out, 0, sizeof *out);
	out->fd = -1;
	if (!wx_uuid_valid(uuid) || !wx_outbox_valid_transfer_id(tid))
		return WX_OUTBOX_NONE;
	char *name = wx_outbox_name(uuid, tid);
	char *sdir = sent_dir(st);
	const char *dirs[] = { sdir, st->rejected, st->outbox };
	static const enum wx_outbox_where where[] = { WX_OUTBOX_SENT, WX_OUTBOX_REJECTED,
	    WX_OUTBOX_QUEUED };
	enum wx_outbox_where found = WX_OUTBOX_NONE;
	for (size_t i = 0; i < WX_ARRAY_LEN(dirs) && found == WX_OUTBOX_NONE; i++) {
		char *path = wx_path_join(dirs[i], name);
		struct wx_outbox_entry e;
		const char *why = NULL;
		if (read_entry_path(path, &e, &why) == 0) {
			found = where[i];
			*out = e;
		}
		free(path);
	}
	free(sdir);
	free(name);
	return found;
}

/* --- the watchdog's side ----------------------------------------------------- */

static bool
is_entry_name(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".json") == 0;
}

const char *
wx_outbox_act_name(enum wx_outbox_act act)
{
	switch (act) {
	case WX_OA_DELIVERED: return "delivered";
	case WX_OA_UNAVAILABLE: return "unavailable";
	case WX_OA_REJECTED: return "rejected";
	case WX_OA_EXPIRED: return "expired";
	case WX_OA_DROPPED: return "dropped";
	case WX_OA_WOULD_DELIVER: return "would-deliver";
	case WX_OA_BUSY: return "busy";
	case WX_OA_NOT_DUE: return "not-due";
	}
	return "?";
}

static void
report(const struct wx_outbox_opts *o, enum wx_outbox_act act, const struct wx_outbox_entry *e,
    long status, int64_t next, const char *detail)
{
	if (o->on_action == NULL)
		return;
	struct wx_outbox_action a = {
		.act = act, .action = wx_outbox_act_name(act), .server = e->server, .transfer_id = e->transfer_id,
		.kind = wx_callback_kind_name(e->kind), .status = status, .next_attempt = next,
		.detail = detail ? detail : "",
	};
	o->on_action(&a, o->ctx);
}

static int
redeliver_one(const struct wx_config *cfg, const struct wx_state *st, const char *name,
    const struct wx_outbox_opts *o)
{
	struct wx_outbox_entry e;
	const char *why = NULL;
	int took = wx_outbox_take(st, name, &e, &why);
	if (took < 0) {
		wx_err("outbox: %s/%s is unreadable (%s); leaving it for an admin", st->outbox,
		    name, why ? why : "unknown error");
		return 0;
	}
	if (took == 0) {
		struct wx_outbox_entry busy;
		char *path = wx_path_join(st->outbox, name);
		if (read_entry_path(path, &busy, &why) == 0) {
			report(o, WX_OA_BUSY, &busy, 0, 0, "another process is delivering it");
			free(busy.reason);
			free(busy.last_error);
		}
		free(path);
		return 0;
	}
	int64_t now = wx_now();
	enum wx_outbox_where where = wx_outbox_lookup(st, e.server, e.transfer_id, NULL);
	if (where == WX_OUTBOX_SENT || where == WX_OUTBOX_REJECTED) {
		/* A crash after the tombstone was written: the callback was handled. */
		report(o, WX_OA_DROPPED, &e, 0, 0, where == WX_OUTBOX_SENT ? "already delivered" :
		    "already rejected");
		if (!o->dry_run) {
			char *path = wx_path_join(st->outbox, name);
			(void)unlink(path);
			free(path);
		}
		wx_outbox_release(&e);
		return 1;
	}
	if (wx_sub_sat(now, e.created_at) >= cfg->transfers.callback_retention) {
		char why_buf[256];
		snprintf(why_buf, sizeof why_buf, "undelivered for %lld s "
		    "(system.transfers.callback_retention), last answer: %ld %s",
		    (long long)(wx_sub_sat(now, e.created_at)), e.last_status,
		    e.last_error ? e.last_error : "");
		report(o, WX_OA_EXPIRED, &e, e.last_status, 0, why_buf);
		if (o->dry_run) {
			wx_outbox_release(&e);
			return 1;
		}
		wx_err("panel callback %s for server %s (transfer %s) expired: %s; moved to %s",
		    wx_callback_kind_name(e.kind), e.server, e.transfer_id, why_buf, st->rejected);
		if (wx_outbox_finish(st, &e, false, e.last_status, NULL, why_buf) < 0)
			wx_err("outbox: cannot move %s to %s: %s", name, st->rejected,
			    strerror(errno));
		return 1;
	}
	if (!o->retry_now && now < e.next_attempt_at) {
		report(o, WX_OA_NOT_DUE, &e, e.last_status, e.next_attempt_at, e.last_error);
		wx_outbox_release(&e);
		return 0;
	}
	if (o->dry_run) {
		report(o, WX_OA_WOULD_DELIVER, &e, e.last_status, 0, e.last_error);
		wx_outbox_release(&e);
		return 1;
	}
	struct wx_outbox_entry copy = e;
	copy.reason = copy.last_error = NULL;
	copy.fd = -1;
	struct wx_panel_answer ans;
	enum wx_panel_result r = wx_outbox_deliver(cfg, st, &e, 1, true, &ans);
	enum wx_outbox_act action = r == WX_PANEL_OK ? WX_OA_DELIVERED :
	    r == WX_PANEL_REJECTED ? WX_OA_REJECTED : WX_OA_UNAVAILABLE;
	int64_t next = r == WX_PANEL_UNAVAILABLE ?
	    wx_now() + wx_outbox_retry_delay(copy.redeliveries + 1) : 0;
	report(o, action, &copy, ans.status, next, ans.detail);
	return 1;
}

int
wx_outbox_redeliver(const struct wx_config *cfg, const struct wx_state *st,
    const struct wx_outbox_opts *opts)
{
	DIR *d = opendir(st->outbox);
	if (d == NULL)
		return -1;
	/* Names first: delivering renames files in this directory. */
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!is_entry_name(de->d_name))
			continue;
		names = xrealloc(names, (n + 1) * sizeof *names);
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	int acted = 0;
	for (size_t i = 0; i < n; i++) {
		acted += redeliver_one(cfg, st, names[i], opts);
		free(names[i]);
	}
	free(names);
	return acted;
}

static int
prune_dir(const char *dir, int64_t max_age, bool dry_run, bool temps_only)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	int64_t now = wx_now();
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		bool temp = de->d_name[0] == '.' && strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0 && strcmp(de->d_name, ".lock") != 0;
		if (temps_only ? !temp : !(temp || is_entry_name(de->d_name)))
			continue;
		struct stat sb;
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode) || wx_sub_sat(now, (int64_t)sb.st_mtime) < max_age)
			continue;
		if (dry_run || unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int
wx_outbox_prune_sent(const struct wx_state *st, int64_t max_age, bool dry_run)
{
	char *sdir = sent_dir(st);
	int n = prune_dir(sdir, max_age, dry_run, false);
	free(sdir);
	/* Temp files a crash left behind in the outbox itself (never entries). */
	n += prune_dir(st->outbox, 3600, dry_run, true);
	return n;
}
