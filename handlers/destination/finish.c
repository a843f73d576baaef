/*
 * The end of an incoming transfer.
 *
 * Success: the checksum rule, the create-environment hook, staging renamed
 * to <system.data>/<uuid> (from here on the transfer cannot fail any more),
 * backups and install log put in place, the record completed, the panel's
 * success callback (through the outbox), then 200 with a summary.
 *
 * Failure: staging and partial files removed, the record failed (or
 * cancelled) with the reason, the panel's failure callback, and the error
 * answer with the status of rx_fail:
 *   400 the upload itself (not multipart, cut off, no archive part, ...)
 *   409 cancelled on this node
 *   413 larger than the server's disk limit (build.disk_space)
 *   422 the archive (unreadable, damaged, unsafe entry, checksum mismatch)
 *   500 this node (I/O, hook), 502 the panel, 507 this node's free space
 */
#include "autoconf.h"

#include "destination.h"
#include "config.h"
#include "fsutil.h"
#include "hook.h"
#include "log.h"
#include "panel.h"
#include "request.h"
#include "state.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int
hook_cancel(void *ctx)
{
	return rx_cancel_check(ctx, false);
}

/* The archive checksum rule; sets *verified.  0 or -1. */
static int
checksum_rule(struct receiver *rx, const char **verdict)
{
	bool enforce = rx->cfg->transfers.perform_checksum_checks;
	if (rx->body_checksum) {
		/* The upload's assembler saw the last chunk acknowledged, after its
		 * Repr-Digest matched the body (upload_patch.c). */
		if (!wx_is_sha256_hex(rx->body_sha256))
			return rx_fail(rx, 500, "The upload's body digest is missing; nothing was "
			    "installed.");
		wx_strlcpy(rx->archive_sha256, rx->body_sha256, sizeof rx->archive_sha256);
		*verdict = "verified";
		rx_log(rx, "Body checksum verified (SHA-256 %s of the whole upload, Repr-Digest); it "
		    "stands for the archive checksum (X-Wingxfer-Checksum: body).", rx->body_sha256);
		return 0;
	}
	if (rx->nchecksums == 0) {
		*verdict = "absent";
		if (enforce)
			return rx_fail(rx, 422, "The upload has no archive checksum (a checksum or "
			    "checksum_archive part), and this node requires one "
			    "(system.transfers.perform_checksum_checks: true); nothing was installed.");
		rx_log(rx, "The sender sent no archive checksum (not required on this node).");
		return 0;
	}
	for (int i = 0; i < rx->nchecksums; i++) {
		if (wx_is_sha256_hex(rx->checksums[i]) &&
		    strcasecmp(rx->checksums[i], rx->archive_sha256) == 0)
			continue;
		*verdict = "mismatch";
		rx_detail(rx, "archive sha256 %s, sender's checksum %.70s", rx->archive_sha256,
		    rx->checksums[i]);
		if (enforce)
			return rx_fail(rx, 422, "The archive does not match the checksum the sender "
			    "computed: it was changed or damaged on the way; nothing was installed.");
		wx_record_set_warning(&rx->rec, "the archive does not match the sender's checksum "
		    "(installed anyway: system.transfers.perform_checksum_checks is false)");
		rx_log(rx, "Warning: the archive does not match the sender's checksum; installed "
		    "anyway because perform_checksum_checks is false.");
		return 0;
	}
	*verdict = "verified";
	rx_log(rx, "Archive checksum verified (SHA-256 %s).", rx->archive_sha256);
	return 0;
}

static int
run_hook(struct receiver *rx)
{
	const struct wx_command *cmd = &rx->cfg->transfers.hook_create_environment;
	if (cmd->argv == NULL)
		return 0;
	rx_log(rx, "Running the create-environment hook (%s).", cmd->argv[0]);
	char detail[1024];
	enum wx_hook_result r = wx_hook_run(cmd, rx->uuid, rx->server_dir,
	    rx->cfg->transfers.hook_timeout, hook_cancel, rx, detail, sizeof detail);
	if (r == WX_HOOK_OK)
		return 0;
	if (rx_cancel_check(rx, true))
		return -1;
	rx_detail(rx, "hooks.create_environment: %s", detail);
	return rx_fail(rx, 500, "The create-environment hook (system.transfers.hooks."
	    "create_environment) failed: %s; nothing was installed.", detail);
}

/* staging -> <data>/<uuid>; after this the transfer is committed. */
static int
install(struct receiver *rx)
{
	/* The files' data reach the disk before the rename commits them: after
	 * the success callback the panel deletes the source's copy, so a power
	 * cut must not find renamed but empty files.  syncfs: the extractor's
	 * files are not ours to fsync one by one, and one flush is cheaper. */
	if (rx->staging_fd >= 0) {
		int64_t t0 = wx_now_ms();
		if (syncfs(rx->staging_fd) < 0) {
			int e = errno;
			rx_detail(rx, "syncfs %s: %s", rx->staging, strerror(e));
			return rx_fail(rx, 500, "This node could not write the received server to "
			    "disk (%s); nothing was installed.", strerror(e));
		}
		wx_info("received files written to disk (syncfs: %lld ms)",
		    (long long)(wx_now_ms() - t0));
		close(rx->staging_fd);
		rx->staging_fd = -1;
	}
	if (rename(rx->staging, rx->server_dir) < 0) {
		int e = errno;
		rx_detail(rx, "rename %s -> %s: %s", rx->staging, rx->server_dir, strerror(e));
		if (e == ENOTEMPTY || e == EEXIST || e == ENOTDIR)
			return rx_fail(rx, 409, "Data for this server appeared on this node while the "
			    "transfer ran; nothing was installed.");
		return rx_fail(rx, 500, "This node could not move the received server into place "
		    "(%s); nothing was installed.", strerror(e));
	}
	free(rx->staging);
	rx->staging = NULL; /* nothing left to clean up */
	if (wx_fsync_dir(rx->cfg->data_directory) < 0)
		wx_warn("fsync %s: %s", rx->cfg->data_directory, strerror(errno));
	if (rx_parts_install(rx) < 0)
		wx_record_set_warning(&rx->rec, "a backup or the install log could not be put in "
		    "place; see the node's log");
	return 0;
}

/* Queues the callback before the record says final: a crash cannot lose it. */
static void
queue_callback(struct receiver *rx, enum wx_callback_kind kind, const char *reason)
{
	char tid[64], err[256];
	if (wx_panel_queue(rx->st, rx->uuid, wx_panel_transfer_id(&rx->rec, tid, sizeof tid), kind,
	    reason, err, sizeof err) < 0 && errno != EEXIST)
		wx_err("cannot queue the %s report for the panel: %s",
		    wx_callback_kind_name(kind), err);
}

static const char *
report(struct receiver *rx, enum wx_callback_kind kind, const char *reason)
{
	struct wx_panel_answer ans;
	memset(&ans, 0, sizeof ans);
	char tid[64];
	int r = wx_panel_report(rx->cfg, rx->st, rx->uuid,
	    wx_panel_transfer_id(&rx->rec, tid, sizeof tid), kind, reason, &ans);
	const char *what = wx_callback_kind_name(kind);
	if (r == WX_PANEL_OK) {
		rx_log(rx, "The panel was told of the %s.", what);
		return "notified";
	}
	if (r == WX_PANEL_UNAVAILABLE) {
		rx_log(rx, "The panel could not be reached (%s); the %s report stays queued and the "
		    "watchdog delivers it.", ans.detail, what);
		return "queued";
	}
	if (r == WX_PANEL_REJECTED) {
		char *w = xasprintf("the panel refused the %s report (HTTP %ld: %s)", what,
		    ans.status, ans.detail);
		wx_record_set_warning(&rx->rec, w);
		rx_log(rx, "Warning: %s.", w);
		free(w);
		return "rejected";
	}
	wx_err("cannot queue the %s report for the panel: %s", what, strerror(errno));
	wx_record_set_warning(&rx->rec, "the panel report could not be queued; see the node's log");
	return "failed";
}

static void
answer_success(struct receiver *rx, const char *checksum, const char *panel)
{
	double seconds = (double)(wx_mono_ms() - rx->started_ms) / 1000.0;
	json_object *j = json_object_new_object();
	json_object_object_add(j, "uuid", json_object_new_string(rx->uuid));
	json_object_object_add(j, "status", json_object_new_string("completed"));
	json_object_object_add(j, "bytes", json_object_new_int64((int64_t)rx->archive_bytes));
	json_object_object_add(j, "body_bytes", json_object_new_int64(rx->rec.bytes_read));
	json_object_object_add(j, "bytes_extracted", json_object_new_int64(rx->rec.bytes_sent));
	json_object_object_add(j, "files", json_object_new_int64(rx->rec.files));
	json_object_object_add(j, "skipped", json_object_new_int64(rx->skipped));
	json_object_object_add(j, "seconds", json_object_new_double((double)(int64_t)(seconds * 1000) / 1000));
	json_object_object_add(j, "sha256", json_object_new_string(rx->archive_sha256));
	json_object_object_add(j, "checksum", json_object_new_string(checksum));
	json_object_object_add(j, "backups", json_object_new_int(rx->nbackups));
	json_object_object_add(j, "panel", json_object_new_string(panel));
	json_object_object_add(j, "warning",
	    rx->rec.warning ? json_object_new_string(rx->rec.warning) : NULL);
	if (rx->req != NULL)
		wx_req_json(rx->req, 200, j);
	else
		rx->result = j;
}

static void
finish_success(struct receiver *rx)
{
	wx_strlcpy(rx->rec.phase, WX_PHASE_VERIFYING, sizeof rx->rec.phase);
	rx_progress(rx, true);
	if (!rx->have_archive) {
		rx_fail(rx, 400, "The upload has no archive part; nothing was installed.");
		return;
	}
	const char *checksum = "absent";
	if (checksum_rule(rx, &checksum) < 0 || rx_parts_verify(rx) < 0)
		return;
	if (rx_cancel_check(rx, true))
		return;
	wx_strlcpy(rx->rec.phase, WX_PHASE_INSTALLING, sizeof rx->rec.phase);
	rx_progress(rx, true);
	if (run_hook(rx) < 0 || rx_cancel_check(rx, true) || install(rx) < 0)
		return;
	queue_callback(rx, WX_CALLBACK_SUCCESS, NULL);

	char size[32];
	wx_format_bytes(rx->rec.bytes_sent, size, sizeof size);
	rx->rec.status = WX_ST_COMPLETED;
	wx_strlcpy(rx->rec.phase, WX_PHASE_COMPLETED, sizeof rx->rec.phase);
	rx->rec.finished_at = wx_now();
	free(rx->rec.callback);
	rx->rec.callback = xstrdup(wx_callback_kind_name(WX_CALLBACK_SUCCESS));
	rx_progress(rx, true);
	rx_log(rx, "Transfer complete: %lld files, %s, installed as %s.", (long long)rx->rec.files,
	    size, rx->server_dir);
	if (wx_events_append(rx->st, rx->uuid, "transfer status", "success") < 0)
		wx_warn("cannot append to the events file of %s", rx->uuid);
	const char *panel = report(rx, WX_CALLBACK_SUCCESS, NULL);
	wx_strlcpy(rx->panel_outcome, panel, sizeof rx->panel_outcome);
	rx_progress(rx, true);
	answer_success(rx, checksum, panel);
}

static void
finish_failure(struct receiver *rx)
{
	if (rx->staging_fd >= 0) {
		close(rx->staging_fd);
		rx->staging_fd = -1;
	}
	if (rx->staging != NULL && wx_remove_tree(rx->staging) < 0)
		wx_err("cannot remove the staging directory %s: %s (the watchdog retries)",
		    rx->staging, strerror(errno));
	rx_parts_cleanup(rx);
	if (rx->detail[0] != '\0')
		wx_warn("transfer failed: %s (%s)", rx->error, rx->detail);
	if (!rx->started) {
		if (rx->req != NULL)
			wx_req_error(rx->req, rx->status, "%s", rx->error);
		return;
	}
	rx->rec.status = rx->cancelled && !rx->stopped_by_watchdog ? WX_ST_CANCELLED : WX_ST_FAILED;
	rx->rec.finished_at = wx_now();
	if (rx->detail[0] != '\0')
		wx_record_set_error(&rx->rec, "%s (%s)", rx->error, rx->detail);
	else
		wx_record_set_error(&rx->rec, "%s", rx->error);
	free(rx->rec.callback);
	rx->rec.callback = xstrdup(wx_callback_kind_name(WX_CALLBACK_FAILURE));
	queue_callback(rx, WX_CALLBACK_FAILURE, rx->error);
	rx_progress(rx, true);
	rx_log(rx, "Transfer failed: %s", rx->error);
	if (wx_events_append(rx->st, rx->uuid, "transfer status", "failure") < 0)
		wx_warn("cannot append to the events file of %s", rx->uuid);
	const char *panel = report(rx, WX_CALLBACK_FAILURE, rx->error);
	wx_strlcpy(rx->panel_outcome, panel, sizeof rx->panel_outcome);
	rx_progress(rx, true);
	if (rx->req != NULL)
		wx_req_error(rx->req, rx->status, "%s", rx->error);
}

void
rx_finish(struct receiver *rx)
{
	if (rx->status == 0)
		finish_success(rx);
	if (rx->status != 0)
		finish_failure(rx);
	if (rx->started)
		wx_cancel_clear(rx->st, rx->uuid);
}

void
rx_release(struct receiver *rx)
{
	if (rx->staging_fd >= 0)
		close(rx->staging_fd);
	rx->staging_fd = -1;
	wx_mp_free(rx->mp);
	EVP_MD_CTX_free(rx->sha);
	rx_parts_cleanup(rx);
	if (rx->parts_dir != NULL && wx_remove_tree(rx->parts_dir) < 0)
		wx_warn("cannot remove %s: %s", rx->parts_dir, strerror(errno));
	free(rx->parts_dir);
	free(rx->server_dir);
	free(rx->staging_root);
	free(rx->staging);
	wx_record_clear(&rx->rec);
	wx_ratelimit_close(&rx->rl);
	json_object_put(rx->result);
	rx->result = NULL;
}
