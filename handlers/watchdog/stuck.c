/*
 * Phase 1: transfers in an active state (pending, processing, cancelling)
 * whose owner died, stalled, or ran past max_duration.
 *
 * Liveness is the transfer's flock: getting it means the owner is gone, and
 * the watchdog keeps holding it while it cleans up, so nobody races it.  An
 * outgoing chunked upload whose worker is gone (its supervisor too: a node
 * restart, kill -9 of both) is not failed but handed, lock and all, to a
 * new `wingxfer-push --resume` while its last progress is less than
 * resume_window ago, at most WD_RESUMES times per transfer.  A
 * live owner is asked to stop (cancel marker, then SIGUSR2), and killed if it
 * still holds the lock after WD_GRACE_SECONDS.  Cleanup order is chosen so a
 * crash of the watchdog itself loses nothing: staging removed, failure
 * queued in the outbox, and only then the record marked failed (a record
 * still active is simply handled again by the next run; the outbox never
 * sends a callback twice).
 */
#include "autoconf.h"

#include "watchdog.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "owner.h"
#include "panel.h"
#include "program.h"
#include "record.h"
#include "spawn.h"
#include "state.h"
#include "util.h"
#include "uuid.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WD_RESUMES 3

struct stuck {
	struct wx_record rec;
	char reason[600];
	pid_t pid;               /* the owner we signalled, 0 if none */
	int fd;                  /* the transfer's lock once we hold it */
	bool killed;
};

char *
wd_staging_path(const struct wd *w, const char *uuid)
{
	char *base = wx_path_join(w->cfg->data_directory, ".wingxfer-staging");
	if (uuid == NULL)
		return base;
	char *p = wx_path_join(base, uuid);
	free(base);
	return p;
}

/* Extra time a phase may legitimately pass without moving bytes. */
static int64_t
phase_allowance(const struct wd *w, const char *phase)
{
	const struct wx_transfers_config *t = &w->cfg->transfers;
	if (strcmp(phase, WX_PHASE_STOPPING) == 0)
		return 2 * t->stop_timeout;        /* hooks.stop, then hooks.kill */
	if (strcmp(phase, WX_PHASE_INSTALLING) == 0)
		return t->hook_timeout;            /* hooks.create_environment */
	if (strcmp(phase, WX_PHASE_WAITING) == 0)
		return t->response_timeout;        /* the destination's answer */
	if (strcmp(phase, WX_PHASE_RESUMING) == 0)
		return t->resume_window;           /* a chunked upload resumes (its own bound) */
	return 0;
}

static int64_t
last_progress(const struct wx_record *r)
{
	if (r->progress_at > 0)
		return r->progress_at;
	return r->updated_at > 0 ? r->updated_at : r->created_at;
}

/* Why a live transfer must end, into why; false if it may go on. */
static bool
must_end(const struct wd *w, const struct wx_record *r, char *why, size_t size)
{
	const struct wx_transfers_config *t = &w->cfg->transfers;
	char d[32], lim[32];
	int64_t idle = wx_sub_sat(w->now, last_progress(r));
	int64_t limit = t->stall_timeout + phase_allowance(w, r->phase);
	if (idle > limit) {
		wd_duration(idle, d, sizeof d);
		wd_duration(limit, lim, sizeof lim);
		snprintf(why, size, "stalled: no progress for %s during %s "
		    "(system.transfers.stall_timeout allows %s)", d,
		    r->phase[0] ? r->phase : "the transfer", lim);
		return true;
	}
	if (t->max_duration > 0 && wx_sub_sat(w->now, r->created_at) > t->max_duration) {
		wd_duration(wx_sub_sat(w->now, r->created_at), d, sizeof d);
		wd_duration(t->max_duration, lim, sizeof lim);
		snprintf(why, size, "running for %s, longer than system.transfers.max_duration (%s)",
		    d, lim);
		return true;
	}
	return false;
}

static void
add_event(const struct wd *w, const char *uuid, const char *event, const char *arg)
{
	if (wx_events_append(w->st, uuid, event, arg) < 0)
		wx_warn("%s: cannot append to the events file: %s", uuid, strerror(errno));
}

/*
 * The owner is gone and we hold the lock (fd): finish the transfer as
 * failed, or as completed when this node already told the panel success.
 * Closes fd.
 */
static void
end_transfer(struct wd *w, struct wx_record *r, int fd, const char *reason)
{
	const char *uuid = r->uuid;
	bool dest = r->role == WX_ROLE_DESTINATION;
	char tid[80];
	wx_panel_transfer_id(r, tid, sizeof tid);
	enum wx_callback_kind have = WX_CALLBACK_FAILURE;
	enum wx_outbox_where where = wx_outbox_lookup(w->st, uuid, tid, &have);
	bool succeeded = where != WX_OUTBOX_NONE && have == WX_CALLBACK_SUCCESS;

	/* Destination: the received data goes (also after success: it was moved out). */
	char staging_note[300] = "";
	if (dest) {
		char *staging = wd_staging_path(w, uuid);
		struct stat sb;
		/*
		 * The rename of staging into <data>/<uuid> is the commit.  An owner
		 * that died after it but before queueing the success callback left
		 * an installed server and no staging: finish what it started.
		 */
		char *server_dir = wx_path_join(w->cfg->data_directory, uuid);
		if (!succeeded && where == WX_OUTBOX_NONE && strcmp(r->phase, WX_PHASE_INSTALLING) == 0 &&
		    lstat(staging, &sb) < 0 && errno == ENOENT && lstat(server_dir, &sb) == 0 &&
		    S_ISDIR(sb.st_mode)) {
			char qerr[256];
			if (w->dry_run || wx_panel_queue(w->st, uuid, tid, WX_CALLBACK_SUCCESS, NULL, qerr,
			    sizeof qerr) == 0)
				succeeded = true;
			else
				wd_error(w, uuid, "cannot queue the success callback: %s", qerr);
		}
		free(server_dir);
		if (lstat(staging, &sb) == 0) {
			if (w->dry_run)
				snprintf(staging_note, sizeof staging_note, "; would remove %s", staging);
			else if (wx_remove_tree(staging) < 0)
				wd_error(w, uuid, "cannot remove the staging directory %s: %s", staging,
				    strerror(errno));
			else
				snprintf(staging_note, sizeof staging_note, "; removed %s", staging);
		}
		char *parts = xasprintf("%s.parts", staging);
		if (!w->dry_run && lstat(parts, &sb) == 0 && wx_remove_tree(parts) < 0)
			wd_error(w, uuid, "cannot remove %s: %s", parts, strerror(errno));
		free(parts);
		free(staging);
	}

	if (succeeded) {
		if (w->dry_run) {
			wd_action(w, "completed", uuid, "destination owner gone after the panel was "
			    "told success; would mark the record completed%s", staging_note);
			close(fd);
			return;
		}
		r->status = WX_ST_COMPLETED;
		r->finished_at = w->now;
		wx_record_set_warning(r, "the receiving process ended after the panel was told "
		    "success; wingxfer-watchdog closed the record");
		if (wx_record_save(w->st, r) < 0)
			wd_error(w, uuid, "cannot write the transfer record: %s", strerror(errno));
		add_event(w, uuid, "transfer status", "success");
		wx_cancel_clear(w->st, uuid);
		close(fd);
		wd_action(w, "completed", uuid, "destination owner gone after the panel was told "
		    "success; record marked completed%s", staging_note);
		return;
	}

	if (w->dry_run) {
		wd_action(w, "failed", uuid, "%s transfer would be failed: %s%s; the panel would be "
		    "told (failure for %s)", wx_role_name(r->role), reason, staging_note, uuid);
		close(fd);
		return;
	}

	/* Failure callback first: once queued it cannot be lost. */
	struct wx_panel_answer ans;
	char panel_note[700];
	int pr = wx_panel_report_attempts(w->cfg, w->st, uuid, tid, WX_CALLBACK_FAILURE, reason, 1,
	    &ans);
	bool refused = pr < 0 && errno == EEXIST;
	if (pr == WX_PANEL_OK && strcmp(ans.detail, "already delivered") == 0)
		snprintf(panel_note, sizeof panel_note, "the panel had already been told");
	else if (pr == WX_PANEL_OK)
		snprintf(panel_note, sizeof panel_note, "panel told (HTTP %ld)", ans.status);
	else if (pr == WX_PANEL_UNAVAILABLE)
		snprintf(panel_note, sizeof panel_note, "failure queued for the panel (%s)",
		    ans.detail[0] ? ans.detail : "unavailable");
	else if (pr == WX_PANEL_REJECTED)
		snprintf(panel_note, sizeof panel_note, "the panel refused the failure (%s)",
		    ans.detail);
	else if (refused)
		snprintf(panel_note, sizeof panel_note, "no failure sent: %s", ans.detail);
	else {
		snprintf(panel_note, sizeof panel_note, "failure NOT queued: %s", ans.detail);
		wd_error(w, uuid, "cannot queue the failure callback: %s", ans.detail);
	}

	char *old = r->error ? xstrdup(r->error) : NULL;
	if (old && *old)
		wx_record_set_error(r, "%s (the owner had recorded: %s)", reason, old);
	else
		wx_record_set_error(r, "%s", reason);
	free(old);
	r->status = WX_ST_FAILED;
	r->finished_at = w->now;
	if (!refused) {
		free(r->callback);
		r->callback = xstrdup(wx_callback_kind_name(WX_CALLBACK_FAILURE));
	}
	if (wx_record_save(w->st, r) < 0)
		wd_error(w, uuid, "cannot write the transfer record: %s", strerror(errno));
	char msg[800];
	snprintf(msg, sizeof msg, "Transfer failed (wingxfer-watchdog): %s", reason);
	add_event(w, uuid, "transfer logs", msg);
	add_event(w, uuid, "transfer status", "failure");
	wx_cancel_clear(w->st, uuid);
	close(fd);
	wd_action(w, "failed", uuid, "%s transfer failed: %s%s; %s", wx_role_name(r->role), reason,
	    staging_note, panel_note);
}

/*
 * An outgoing chunked upload whose worker is gone, resumable within
 * resume_window and WD_RESUMES: a new wingxfer-push --resume gets the lock
 * (fd, closed here either way).  false (fd still open) when the transfer is
 * not one to resume.
 */
static bool
resume_worker(struct wd *w, struct wx_record *r, int fd, const char *reason)
{
	json_object *v;
	if (r->role != WX_ROLE_SOURCE || r->extra == NULL ||
	    !json_object_object_get_ex(r->extra, "resume", &v) ||
	    !json_object_is_type(v, json_type_object))
		return false;
	int64_t resumes = 0;
	if (json_object_object_get_ex(r->extra, "watchdog_resumes", &v))
		resumes = json_object_get_int64(v);
	int64_t idle = wx_sub_sat(w->now, last_progress(r));
	if (resumes >= WD_RESUMES || idle >= w->cfg->transfers.resume_window) {
		if (resumes >= WD_RESUMES)
			wd_note(w, r->uuid, "not resumed: the watchdog resumed it %d times already",
			    WD_RESUMES);
		else
			wd_note(w, r->uuid, "not resumed: its last progress is older than "
			    "system.transfers.resume_window");
		return false;
	}
	if (w->dry_run) {
		wd_action(w, "resume", r->uuid, "%s; would start wingxfer-push --resume, which goes "
		    "on with the chunked upload", reason);
		close(fd);
		return true;
	}
	json_object_object_add(r->extra, "watchdog_resumes", json_object_new_int64(resumes + 1));
	if (wx_record_save(w->st, r) < 0) {
		wd_error(w, r->uuid, "cannot write the transfer record: %s", strerror(errno));
		return false;
	}
	char *dir = wx_self_dir();
	char *path = xasprintf("%s/wingxfer-push", dir);
	char lock_arg[16], err[512];
	snprintf(lock_arg, sizeof lock_arg, "%d", WX_SPAWN_FIRST_FD);
	char *argv[] = { path, "--config", (char *)w->cfg->path, "--lock-fd", lock_arg, "--resume",
		r->uuid, NULL };
	int keep[] = { fd };
	pid_t pid = wx_spawn_detached(path, argv, keep, WX_ARRAY_LEN(keep), err, sizeof err);
	free(path);
	free(dir);
	if (pid < 0) {
		wd_error(w, r->uuid, "cannot start wingxfer-push --resume: %s", err);
		return false;
	}
	close(fd);  /* the new worker holds the lock now */
	wd_action(w, "resumed", r->uuid, "%s; wingxfer-push --resume (pid %d) goes on with the "
	    "chunked upload from the destination's offset", reason, (int)pid);
	return true;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Polls the pending transfers' locks until all are ours or seconds pass. */
static void
wait_for_locks(struct wd *w, struct stuck *s, size_t n, int seconds)
{
	int64_t deadline = wx_mono_ms() + (int64_t)seconds * 1000;
	for (;;) {
		size_t pending = 0;
		for (size_t i = 0; i < n; i++) {
			if (s[i].fd >= 0)
				continue;
			int fd = -1;
			if (wx_lock_try(w->st, s[i].rec.uuid, &fd) == WX_LOCK_ACQUIRED)
				s[i].fd = fd;
			else
				pending++;
		}
		if (pending == 0 || wx_mono_ms() >= deadline)
			return;
		sleep_ms(100);
	}
}

static void
signal_owner(struct wd *w, struct stuck *s, int sig)
{
	char *lock = wx_state_file(w->st, s->rec.uuid, ".lock");
	pid_t pid = wx_transfer_owner(lock, s->rec.pid, NULL, WX_OWNER_ANY);
	free(lock);
	if (pid <= 1) {
		wd_error(w, s->rec.uuid, "cannot tell which process holds the transfer lock "
		    "(record pid %lld); not sending %s", (long long)s->rec.pid, strsignal(sig));
		return;
	}
	if (kill(pid, sig) < 0 && errno != ESRCH) {
		wd_error(w, s->rec.uuid, "cannot signal pid %d: %s", (int)pid, strerror(errno));
		return;
	}
	s->pid = pid;
}

/* Cancels live owners that must stop, kills the ones that do not, ends them. */
static void
stop_live(struct wd *w, struct stuck *s, size_t n)
{
	if (n == 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (w->dry_run) {
			wd_action(w, "cancel", s[i].rec.uuid, "%s; would ask the owner to stop, kill "
			    "it after %d s, and fail the transfer", s[i].reason, WD_GRACE_SECONDS);
			continue;
		}
		char *why = xasprintf("wingxfer-watchdog: %s", s[i].reason);
		int crc = wx_cancel_request(w->st, s[i].rec.uuid, why);
		free(why);
		if (crc < 0)
			wd_error(w, s[i].rec.uuid, "cannot create the cancel marker: %s",
			    strerror(errno));
		signal_owner(w, &s[i], SIGUSR2);
		if (s[i].pid > 0)
			wd_action(w, "cancel", s[i].rec.uuid, "%s; asked pid %d to stop", s[i].reason,
			    (int)s[i].pid);
		else
			wd_action(w, "cancel", s[i].rec.uuid, "%s; cancel requested", s[i].reason);
	}
	if (w->dry_run)
		return;
	wait_for_locks(w, s, n, WD_GRACE_SECONDS);
	bool killed_any = false;
	for (size_t i = 0; i < n; i++) {
		if (s[i].fd >= 0)
			continue;
		signal_owner(w, &s[i], SIGKILL);
		if (s[i].pid > 0) {
			s[i].killed = true;
			killed_any = true;
			wd_action(w, "killed", s[i].rec.uuid, "pid %d did not stop within %d s; "
			    "killed it", (int)s[i].pid, WD_GRACE_SECONDS);
		}
	}
	if (killed_any)
		wait_for_locks(w, s, n, WD_KILL_WAIT_SECONDS);
	for (size_t i = 0; i < n; i++) {
		const char *uuid = s[i].rec.uuid;
		if (s[i].fd < 0) {
			wd_error(w, uuid, "the owner (pid %d) still holds the transfer lock; "
			    "will try again on the next run", (int)s[i].pid);
			continue;
		}
		struct wx_record now;
		if (wx_record_load(w->st, uuid, &now) < 0) {
			wd_error(w, uuid, "cannot read the transfer record: %s", strerror(errno));
			close(s[i].fd);
			continue;
		}
		if (!wx_status_active(now.status)) {
			/*
			 * A cancelled owner recorded its cancel message, which names
			 * DELETE: say who asked and why (we hold the lock).
			 */
			if (now.status == WX_ST_CANCELLED) {
				char *owner = now.error ? xstrdup(now.error) : NULL;
				if (owner != NULL)
					wx_record_set_error(&now, "%s (asked to stop by wingxfer-watchdog: "
					    "%s)", owner, s[i].reason);
				else
					wx_record_set_error(&now, "asked to stop by wingxfer-watchdog: %s",
					    s[i].reason);
				free(owner);
				if (wx_record_save(w->st, &now) < 0)
					wd_error(w, uuid, "cannot write the transfer record: %s",
					    strerror(errno));
			}
			wd_action(w, "stopped", uuid, "the owner stopped and recorded %s%s%s",
			    wx_status_name(now.status), now.error ? ": " : "", now.error ? now.error : "");
			wx_cancel_clear(w->st, uuid);
			close(s[i].fd);
		} else {
			end_transfer(w, &now, s[i].fd, s[i].reason);
		}
		wx_record_clear(&now);
	}
}

static void
check_one(struct wd *w, const char *uuid, struct stuck **live, size_t *nlive)
{
	struct wx_record r;
	if (wx_record_load(w->st, uuid, &r) < 0) {
		if (errno != ENOENT)
			wd_note(w, uuid, "record unreadable (%s); skipped", strerror(errno));
		return;
	}
	if (!wx_status_active(r.status)) {
		wx_record_clear(&r);
		return;
	}
	int fd = -1;
	switch (wx_lock_try(w->st, uuid, &fd)) {
	case WX_LOCK_ACQUIRED: {
		/* Read again under the lock: the owner may have finished just before exiting. */
		wx_record_clear(&r);
		if (wx_record_load(w->st, uuid, &r) < 0 || !wx_status_active(r.status)) {
			close(fd);
			wx_record_clear(&r);
			return;
		}
		char reason[600], ago[32];
		wd_duration(wx_sub_sat(w->now, last_progress(&r)), ago, sizeof ago);
		snprintf(reason, sizeof reason, "worker died (pid %lld, during %s, last progress "
		    "%s ago)", (long long)r.pid, r.phase[0] ? r.phase : "the transfer", ago);
		if (!resume_worker(w, &r, fd, reason))
			end_transfer(w, &r, fd, reason);
		break;
	}
	case WX_LOCK_BUSY: {
		char reason[600];
		if (!must_end(w, &r, reason, sizeof reason)) {
			char ago[32];
			wd_duration(wx_sub_sat(w->now, last_progress(&r)), ago, sizeof ago);
			wd_note(w, uuid, "%s %s, %s, last progress %s ago: fine", wx_role_name(r.role),
			    wx_status_name(r.status), r.phase, ago);
			break;
		}
		*live = xrealloc(*live, (*nlive + 1) * sizeof **live);
		struct stuck *s = &(*live)[(*nlive)++];
		memset(s, 0, sizeof *s);
		s->rec = r;
		memset(&r, 0, sizeof r); /* moved */
		s->fd = -1;
		wx_strlcpy(s->reason, reason, sizeof s->reason);
		break;
	}
	default:
		wd_error(w, uuid, "cannot check the transfer lock: %s", strerror(errno));
		break;
	}
	wx_record_clear(&r);
}

void
wd_stuck_transfers(struct wd *w)
{
	size_t n;
	char **uuids = wd_record_uuids(w, &n);
	struct stuck *live = NULL;
	size_t nlive = 0;
	for (size_t i = 0; i < n; i++) {
		check_one(w, uuids[i], &live, &nlive);
		free(uuids[i]);
	}
	free(uuids);
	stop_live(w, live, nlive);
	for (size_t i = 0; i < nlive; i++)
		wx_record_clear(&live[i].rec);
	free(live);
}
