/*
 * The end of a push.  Pushed: the record says completed and nobody else is
 * told (the destination reports success to the panel).  Failed, cancelled or
 * stopped by a signal: the record says why, then the panel gets the failure
 * callback through the outbox (queued first, so the watchdog redelivers it
 * when the panel is down).  The record is final before the lock is released.
 */
#include "autoconf.h"

#include "push.h"
#include "config.h"
#include "log.h"
#include "panel.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Records the outcome; on failure or cancel tells the panel (via the outbox). */
int
outcome_finish(struct job *job, enum outcome out, const char *why)
{
	struct wx_record *r = &job->rec;
	char reason[1200];
	int code;
	r->finished_at = wx_now();
	if (job->skipped > JOB_NAMED_SKIPS)
		job_log(job, "%lld sockets, FIFOs or devices were left out (the first %d are named "
		    "in the worker log).", (long long)job->skipped, JOB_NAMED_SKIPS);
	else if (job->skipped > 0)
		job_log(job, "%lld sockets, FIFOs or devices were left out (named in the worker "
		    "log).", (long long)job->skipped);
	if (out == OUT_COMPLETED) {
		r->status = WX_ST_COMPLETED;
		wx_strlcpy(r->phase, WX_PHASE_DONE, sizeof r->phase);
		job_log(job, "The destination accepted the server; it tells the panel. The data "
		    "stays on this node until the panel deletes it.");
		job_status(job, "completed");
		progress_update(job, true);
		return EXIT_COMPLETED;
	}
	if (out == OUT_STOPPED && job->stop == JOB_CANCELLED && job->cancel_why[0] != '\0') {
		/* Not the panel's DELETE: the watchdog stopped a stalled or overdue transfer. */
		r->status = WX_ST_FAILED;
		snprintf(reason, sizeof reason, "Stopped by %s.", job->cancel_why);
		code = EXIT_CANCELLED;
	} else if (out == OUT_STOPPED && job->stop == JOB_CANCELLED) {
		r->status = WX_ST_CANCELLED;
		snprintf(reason, sizeof reason, "The transfer was cancelled "
		    "(DELETE /api/servers/%s/transfer).", job->uuid);
		code = EXIT_CANCELLED;
	} else if (out == OUT_STOPPED) {
		r->status = WX_ST_FAILED;
		snprintf(reason, sizeof reason, "wingxfer-push was stopped by signal %d (%s) before "
		    "the transfer finished.", job->stop_signal, strsignal(job->stop_signal));
		code = EXIT_CANCELLED;
	} else {
		r->status = WX_ST_FAILED;
		snprintf(reason, sizeof reason, "%s", why[0] ? why : "The transfer failed.");
		code = EXIT_FAILED;
	}
	/* What was left out for a Go Wings destination, also in the panel's failure text. */
	peer_report(job);
	char *left_out = peer_warning(&job->peer);
	if (left_out != NULL) {
		size_t n = strlen(reason);
		snprintf(reason + n, sizeof reason - n, "%s Also: %s.",
		    n > 0 && reason[n - 1] == '.' ? "" : ".", left_out);
		free(left_out);
	}
	wx_record_set_error(r, "%s", reason);
	free(r->callback);
	r->callback = xstrdup(wx_callback_kind_name(WX_CALLBACK_FAILURE));
	/* Queued before the record is final: a crash from here on cannot lose it. */
	char tid[64], qerr[256];
	if (wx_panel_queue(&job->st, job->uuid, wx_panel_transfer_id(r, tid, sizeof tid),
	    WX_CALLBACK_FAILURE, reason, qerr, sizeof qerr) < 0 && errno != EEXIST)
		wx_err("cannot queue the failure report for the panel: %s", qerr);
	job_log(job, "%s", reason);
	job_status(job, "failure");
	progress_update(job, true);
	/* A supervised worker no longer holds the node token (sandbox.c): its
	 * supervisor delivers the queued report when it has exited. */
	if (job->cfg->token != NULL)
		outcome_tell_panel(job, reason);
	return code;
}

void
outcome_tell_panel(struct job *job, const char *reason)
{
	struct wx_record *r = &job->rec;
	char tid[64];
	struct wx_panel_answer ans;
	memset(&ans, 0, sizeof ans);
	int pr = wx_panel_report(job->cfg, &job->st, job->uuid,
	    wx_panel_transfer_id(r, tid, sizeof tid), WX_CALLBACK_FAILURE, reason, &ans);
	const char *result = pr == WX_PANEL_OK ? "delivered" : pr == WX_PANEL_REJECTED ?
	    "rejected" : pr == WX_PANEL_UNAVAILABLE ? "queued" : "not queued";
	if (pr == WX_PANEL_OK)
		job_log(job, "The panel was told that the transfer failed.");
	else if (pr == WX_PANEL_UNAVAILABLE)
		job_log(job, "The panel could not be reached (%s); the failure report stays queued "
		    "and wingxfer-watchdog keeps delivering it.", ans.detail);
	else if (pr == WX_PANEL_REJECTED)
		job_log(job, "The panel refused the failure report (HTTP %ld: %s).", ans.status,
		    ans.detail);
	else
		wx_err("cannot queue the failure report for the panel: %s", strerror(errno));
	json_object *cb = json_object_new_object();
	json_object_object_add(cb, "result", json_object_new_string(result));
	json_object_object_add(cb, "status", json_object_new_int64(ans.status));
	json_object_object_add(cb, "detail", json_object_new_string(ans.detail));
	if (r->extra == NULL)
		r->extra = json_object_new_object();
	json_object_object_add(r->extra, "callback_result", cb);
	/* Not job_save: in the supervisor the job's counters are not the record's. */
	if (wx_record_save(&job->st, r) < 0)
		wx_warn("cannot save the transfer record: %s", strerror(errno));
}

void
outcome_deliver(struct job *job)
{
	wx_record_clear(&job->rec);
	if (wx_record_load(&job->st, job->uuid, &job->rec) < 0)
		return;
	struct wx_record *r = &job->rec;
	if ((r->status != WX_ST_FAILED && r->status != WX_ST_CANCELLED) || r->callback == NULL ||
	    strcmp(r->callback, wx_callback_kind_name(WX_CALLBACK_FAILURE)) != 0 ||
	    (r->extra != NULL && json_object_object_get_ex(r->extra, "callback_result", NULL)))
		return;
	outcome_tell_panel(job, r->error != NULL ? r->error : "The transfer failed.");
}
