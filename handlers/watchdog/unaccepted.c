/*
 * Phase 3, first step: installed copies the panel did not accept.
 *
 * A destination that installed a server and whose success callback the
 * panel refused (4xx, typically 409 because the source's failure closed the
 * transfer first; see judge() for when a refusal is trusted) or never took
 * within callback_retention holds a copy of
 * a server that the panel says lives on the source node.  That copy goes
 * stale as soon as the server runs there, and it blocks the next transfer
 * to this node ("the server directory already holds data", 409).  So
 * <system.data>/<uuid> is renamed (not deleted) to
 * <system.data>/.wingxfer-unaccepted/<uuid>.<unix time>, under the
 * transfer's lock, and the record says where it went (extra.set_aside and a
 * warning).  The admin removes or restores it; nothing else touches it.
 */
#include "autoconf.h"

#include "watchdog.h"
#include "config.h"
#include "fsutil.h"
#include "outbox.h"
#include "panel.h"
#include "record.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum verdict { LEAVE, SET_ASIDE, AMBIGUOUS };

/*
 * SET_ASIDE: r is a completed destination whose copy is in place and whose
 * success the panel refused at the first POST that reached it, or never
 * took (expired without any answer).  AMBIGUOUS: refused, but an earlier
 * POST may have reached the panel unanswered (transport error, 5xx, a
 * deliverer killed mid-POST): the refusal may be the panel saying "already
 * done", so the copy stays and the admin is told once.
 */
static enum verdict
judge(const struct wd *w, const struct wx_record *r)
{
	if (r->role != WX_ROLE_DESTINATION || r->status != WX_ST_COMPLETED)
		return LEAVE;
	if (r->extra != NULL && json_object_object_get_ex(r->extra, "set_aside", NULL))
		return LEAVE;
	char tid[80];
	wx_panel_transfer_id(r, tid, sizeof tid);
	struct wx_outbox_entry e;
	enum wx_outbox_where where = wx_outbox_lookup_entry(w->st, r->uuid, tid, &e);
	bool refused = where == WX_OUTBOX_REJECTED && e.kind == WX_CALLBACK_SUCCESS;
	bool never_answered = e.last_status == 0 || e.last_status >= 500;
	bool ambiguous = e.unanswered > 0 && !never_answered;
	wx_outbox_release(&e);
	if (!refused)
		return LEAVE;
	char *dir = wx_path_join(w->cfg->data_directory, r->uuid);
	struct stat sb;
	bool present = lstat(dir, &sb) == 0 && S_ISDIR(sb.st_mode);
	free(dir);
	if (!present)
		return LEAVE;
	return ambiguous ? AMBIGUOUS : SET_ASIDE;
}

/* Marks the record so that later runs leave it alone; says so once. */
static void
keep_ambiguous(struct wd *w, struct wx_record *r)
{
	if (w->dry_run) {
		wd_action(w, "kept", r->uuid, "would keep %s/%s: the panel refused the success "
		    "callback, but an earlier attempt may have reached it", w->cfg->data_directory,
		    r->uuid);
		return;
	}
	if (r->extra == NULL)
		r->extra = json_object_new_object();
	json_object_object_add(r->extra, "set_aside", json_object_new_string("kept"));
	wx_record_set_warning(r, "the panel refused the success callback, but an earlier "
	    "attempt may have reached it unanswered; the copy stays: check in the panel "
	    "which node the server is on");
	if (wx_record_save(w->st, r) < 0)
		wd_error(w, r->uuid, "cannot update the record: %s", strerror(errno));
	wd_action(w, "kept", r->uuid, "kept %s/%s: the panel refused the success callback, but "
	    "an earlier attempt may have reached it unanswered; check in the panel which node "
	    "the server is on, and remove this copy if it is not this one",
	    w->cfg->data_directory, r->uuid);
}

static void
set_aside(struct wd *w, const char *uuid)
{
	struct wx_record r;
	if (wx_record_load(w->st, uuid, &r) < 0)
		return;	/* unreadable records are cleanup's business */
	enum verdict v = judge(w, &r);
	wx_record_clear(&r);
	if (v == LEAVE)
		return;

	int fd = wd_lock_idle(w, uuid, "unaccepted copy, but a process holds the transfer lock; "
	    "left for now");
	if (fd < 0)
		return;
	/* Under the lock: a new transfer may have started since we looked. */
	if (wx_record_load(w->st, uuid, &r) < 0) {
		close(fd);
		return;
	}
	v = judge(w, &r);
	if (v != SET_ASIDE) {
		if (v == AMBIGUOUS)
			keep_ambiguous(w, &r);
		wx_record_clear(&r);
		close(fd);
		return;
	}
	char *from = wx_path_join(w->cfg->data_directory, uuid);
	char *base = wx_path_join(w->cfg->data_directory, ".wingxfer-unaccepted");
	char *to = xasprintf("%s/%s.%lld", base, uuid, (long long)w->now);
	if (w->dry_run) {
		wd_action(w, "set-aside", uuid, "would move %s to %s: the panel did not accept "
		    "this node's success callback, so the server stays on the source node", from, to);
	} else if (wx_mkdirs(base, 0700) < 0 || rename(from, to) < 0) {
		wd_error(w, uuid, "cannot move the unaccepted copy %s to %s: %s", from, to,
		    strerror(errno));
	} else {
		if (wx_fsync_dir(w->cfg->data_directory) < 0 || wx_fsync_dir(base) < 0)
			wd_error(w, uuid, "cannot sync %s: %s", base, strerror(errno));
		if (r.extra == NULL)
			r.extra = json_object_new_object();
		json_object_object_add(r.extra, "set_aside", json_object_new_string(to));
		char *why = xasprintf("the panel did not accept the success callback; the "
		    "received copy was moved to %s", to);
		wx_record_set_warning(&r, why);
		free(why);
		if (wx_record_save(w->st, &r) < 0)
			wd_error(w, uuid, "moved the copy to %s but cannot update the record: %s", to,
			    strerror(errno));
		wd_action(w, "set-aside", uuid, "moved %s to %s: the panel did not accept this "
		    "node's success callback (see outbox/rejected/), so the server stays on the "
		    "source node; remove the copy or restore it by hand", from, to);
	}
	free(to);
	free(base);
	free(from);
	wx_record_clear(&r);
	close(fd);
}

void
wd_set_aside_unaccepted(struct wd *w)
{
	size_t n;
	char **uuids = wd_record_uuids(w, &n);
	for (size_t i = 0; i < n; i++) {
		set_aside(w, uuids[i]);
		free(uuids[i]);
	}
	free(uuids);
}
