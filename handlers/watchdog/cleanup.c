/*
 * Phase 3: files nobody needs any more.
 *   - finished records (and their events, cancel marker, lock) older than
 *     system.transfers.record_retention, and leftovers without a record;
 *   - staging directories with no live owner and no active record (older
 *     than stall_timeout, so one being set up is never touched);
 *   - outbox/sent/ tombstones older than record_retention;
 *   - used-token files older than a day whose token has expired (exp, as the
 *     file records it, plus a leeway).
 * Anything with a live owner (its lock busy) is left alone; the watchdog
 * holds a transfer's lock while it removes that transfer's files.
 */
#include "autoconf.h"

#include "watchdog.h"
#include "config.h"
#include "fsutil.h"
#include "panel.h"
#include "record.h"
#include "state.h"
#include "util.h"
#include "uuid.h"

#include <dirent.h>
#include <json-c/json.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const suffixes[] = { ".json", ".events", ".cancel", ".lock" };

/* Newest mtime of the transfer's files; 0 if none. */
static int64_t
newest_mtime(const struct wd *w, const char *uuid)
{
	int64_t newest = 0;
	for (size_t i = 0; i < WX_ARRAY_LEN(suffixes); i++) {
		char *p = wx_state_file(w->st, uuid, suffixes[i]);
		struct stat sb;
		if (lstat(p, &sb) == 0 && (int64_t)sb.st_mtime > newest)
			newest = (int64_t)sb.st_mtime;
		free(p);
	}
	return newest;
}

/* Removes the transfer's files; .lock last (we hold it).  Returns how many. */
static int
remove_files(struct wd *w, const char *uuid)
{
	int n = 0;
	for (size_t i = 0; i < WX_ARRAY_LEN(suffixes); i++) {
		char *p = wx_state_file(w->st, uuid, suffixes[i]);
		if (unlink(p) == 0)
			n++;
		else if (errno != ENOENT)
			wd_error(w, uuid, "cannot remove %s: %s", p, strerror(errno));
		free(p);
	}
	return n;
}

static void
clean_transfer(struct wd *w, const char *uuid)
{
	int64_t retention = w->cfg->transfers.record_retention;
	struct wx_record r;
	char what[200];
	int64_t age;
	if (wx_record_load(w->st, uuid, &r) == 0) {
		bool active = wx_status_active(r.status);
		int64_t end = r.finished_at > 0 ? r.finished_at : r.updated_at;
		age = wx_sub_sat(w->now, end);
		char ago[32];
		wd_duration(age, ago, sizeof ago);
		snprintf(what, sizeof what, "the record of a %s transfer (%s %s ago)",
		    wx_role_name(r.role), wx_status_name(r.status), ago);
		wx_record_clear(&r);
		if (active)
			return;
	} else if (errno == ENOENT) {
		age = wx_sub_sat(w->now, newest_mtime(w, uuid));
		snprintf(what, sizeof what, "leftover state files without a record");
	} else {
		char *p = wx_state_file(w->st, uuid, ".json");
		struct stat sb;
		age = lstat(p, &sb) == 0 ? wx_sub_sat(w->now, (int64_t)sb.st_mtime) : 0;
		free(p);
		snprintf(what, sizeof what, "an unreadable record");
	}
	if (age <= retention)
		return;
	int fd = wd_lock_idle(w, uuid, "old state files, but a process holds the lock; kept");
	if (fd < 0)
		return;
	/* Under the lock: a new transfer may have started since we looked. */
	if (wx_record_load(w->st, uuid, &r) == 0) {
		bool active = wx_status_active(r.status);
		wx_record_clear(&r);
		if (active) {
			close(fd);
			return;
		}
	}
	if (w->dry_run) {
		close(fd);
		wd_action(w, "removed", uuid, "would remove %s", what);
		return;
	}
	remove_files(w, uuid);
	close(fd);
	wd_action(w, "removed", uuid, "removed %s", what);
}

static void
clean_transfers(struct wd *w)
{
	DIR *d = opendir(w->st->transfers);
	if (d == NULL) {
		wd_error(w, NULL, "cannot read %s: %s", w->st->transfers, strerror(errno));
		return;
	}
	char **uuids = NULL;
	size_t n = 0;
	int temps = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		if (name[0] == '.') {
			/* A temp file of an interrupted atomic write, if old. */
			struct stat sb;
			if (strlen(name) > 37 && fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISREG(sb.st_mode) && wx_sub_sat(w->now, (int64_t)sb.st_mtime) > 3600 &&
			    (w->dry_run || unlinkat(dirfd(d), name, 0) == 0))
				temps++;
			continue;
		}
		if (strlen(name) < 37)
			continue;
		char uuid[37];
		memcpy(uuid, name, 36);
		uuid[36] = '\0';
		bool known = false;
		for (size_t i = 0; i < WX_ARRAY_LEN(suffixes); i++)
			known |= strcmp(name + 36, suffixes[i]) == 0;
		if (!known || !wx_uuid_valid(uuid))
			continue;
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = strcmp(uuids[i], uuid) == 0;
		if (dup)
			continue;
		uuids = xrealloc(uuids, (n + 1) * sizeof *uuids);
		uuids[n++] = xstrdup(uuid);
	}
	closedir(d);
	for (size_t i = 0; i < n; i++) {
		clean_transfer(w, uuids[i]);
		free(uuids[i]);
	}
	free(uuids);
	if (temps > 0)
		wd_action(w, "removed", NULL, "%s %d interrupted temp file%s in %s",
		    w->dry_run ? "would remove" : "removed", temps, temps == 1 ? "" : "s",
		    w->st->transfers);
}

static void
clean_staging(struct wd *w)
{
	char *base = wd_staging_path(w, NULL);
	DIR *d = opendir(base);
	if (d == NULL) {
		if (errno != ENOENT)
			wd_error(w, NULL, "cannot read %s: %s", base, strerror(errno));
		free(base);
		return;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		/* <uuid> and <uuid>.parts (the destination's backups and install log) */
		char id[37];
		wx_strlcpy(id, de->d_name, sizeof id);
		bool parts = strlen(de->d_name) == 42 && strcmp(de->d_name + 36, ".parts") == 0;
		if (!wx_uuid_valid(parts ? id : de->d_name)) {
			wd_note(w, NULL, "%s/%s is not a transfer's staging directory; left alone", base,
			    de->d_name);
			continue;
		}
		names = xrealloc(names, (n + 1) * sizeof *names);
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	for (size_t i = 0; i < n; i++) {
		char uuid[37];
		wx_strlcpy(uuid, names[i], sizeof uuid);
		char *path = wx_path_join(base, names[i]);
		struct stat sb;
		struct wx_record r;
		bool active = false;
		if (wx_record_load(w->st, uuid, &r) == 0) {
			active = wx_status_active(r.status);
			wx_record_clear(&r);
		}
		int fd = -1;
		char *lock = wx_state_file(w->st, uuid, ".lock");
		bool had_lock = access(lock, F_OK) == 0;
		if (lstat(path, &sb) < 0 || active ||
		    wx_sub_sat(w->now, (int64_t)sb.st_mtime) <= w->cfg->transfers.stall_timeout) {
			wd_note(w, uuid, "staging directory in use or recent; kept");
		} else if (wx_lock_try(w->st, uuid, &fd) != WX_LOCK_ACQUIRED) {
			wd_note(w, uuid, "staging directory has a live owner; kept");
			if (fd >= 0)
				close(fd);
		} else {
			if (w->dry_run)
				wd_action(w, "removed", uuid, "would remove the orphaned staging directory %s",
				    path);
			else if (wx_remove_tree(path) < 0)
				wd_error(w, uuid, "cannot remove %s: %s", path, strerror(errno));
			else
				wd_action(w, "removed", uuid, "removed the orphaned staging directory %s "
				    "(no live transfer)", path);
			/* A lock file we created just now, with no record, is litter. */
			if (!had_lock)
				(void)unlink(lock);
			close(fd);
		}
		free(lock);
		free(path);
		free(names[i]);
	}
	free(names);
	free(base);
}

/*
 * When used-token file name (mtime) may go: its token can no longer be
 * accepted.  The token's exp as the file records it, else (an unreadable
 * file) mtime + max_token_lifetime; never sooner than a day after use.
 */
static int64_t
token_forget_at(const struct wd *w, const char *name, int64_t mtime)
{
	int64_t at = wx_sub_sat(mtime, -w->cfg->transfers.max_token_lifetime);
	char *p = wx_path_join(w->st->tokens, name);
	const char *why;
	char *text = wx_read_small_file(p, 4096, &why);
	free(p);
	json_object *j = text ? json_tokener_parse(text) : NULL, *exp;
	if (j != NULL && json_object_object_get_ex(j, "exp", &exp) &&
	    json_object_is_type(exp, json_type_int))
		at = json_object_get_int64(exp);
	json_object_put(j);
	free(text);
	if (at < wx_sub_sat(mtime, -WD_TOKEN_MAX_AGE))
		at = wx_sub_sat(mtime, -WD_TOKEN_MAX_AGE);
	return wx_sub_sat(at, -WD_TOKEN_LEEWAY);
}

static void
clean_tokens(struct wd *w)
{
	DIR *d = opendir(w->st->tokens);
	if (d == NULL)
		return;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		struct stat sb;
		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode) ||
		    w->now <= token_forget_at(w, de->d_name, (int64_t)sb.st_mtime))
			continue;
		if (w->dry_run || unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
		else
			wd_error(w, NULL, "cannot remove %s/%s: %s", w->st->tokens, de->d_name,
			    strerror(errno));
	}
	closedir(d);
	if (n > 0)
		wd_action(w, "removed", NULL, "%s %d used-token record%s of expired tokens",
		    w->dry_run ? "would remove" : "removed", n, n == 1 ? "" : "s");
}

void
wd_cleanup(struct wd *w)
{
	wd_set_aside_unaccepted(w);
	clean_transfers(w);
	clean_staging(w);
	int n = wx_outbox_prune_sent(w->st, w->cfg->transfers.record_retention, w->dry_run);
	if (n > 0)
		wd_action(w, "removed", NULL, "%s %d outbox file%s (delivered-callback tombstones "
		    "past record_retention, interrupted temp files)",
		    w->dry_run ? "would remove" : "removed", n, n == 1 ? "" : "s");
	clean_tokens(w);
}
