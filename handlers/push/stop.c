/*
 * Stopping the game server before its files are archived: hooks.stop,
 * bounded by system.transfers.stop_timeout; when it does not finish in
 * time, hooks.kill (bounded by the same timeout) if configured.  A cancel or
 * a stop signal kills a running hook at once.
 */
#include "autoconf.h"

#include "push.h"
#include "config.h"
#include "hook.h"
#include "log.h"

#include <stdio.h>

static int
cancel_poll(void *ctx)
{
	return job_should_stop(ctx);
}

static enum wx_hook_result
run(struct job *job, const struct wx_command *cmd, char *detail, size_t size)
{
	return wx_hook_run(cmd, job->uuid, job->server_dir, job->cfg->transfers.stop_timeout,
	    cancel_poll, job, detail, size);
}

int
stop_server(struct job *job, char *why, size_t whysize)
{
	const struct wx_transfers_config *tc = &job->cfg->transfers;
	if (tc->hook_stop.argv == NULL) {
		job_log(job, "No stop hook is configured (system.transfers.hooks.stop): the "
		    "server's files are archived as they are.");
		return 0;
	}
	job_phase(job, WX_PHASE_STOPPING);
	job_log(job, "Stopping the server (hooks.stop, at most %lld s)...",
	    (long long)tc->stop_timeout);
	char detail[512];
	enum wx_hook_result r = run(job, &tc->hook_stop, detail, sizeof detail);
	if (job->stop != JOB_RUNNING)
		return -1;
	if (r == WX_HOOK_OK) {
		job_log(job, "The server is stopped.");
		return 0;
	}
	if (r == WX_HOOK_TIMEOUT && tc->hook_kill.argv != NULL) {
		job_log(job, "hooks.stop did not finish within %lld s; running hooks.kill.",
		    (long long)tc->stop_timeout);
		char kdetail[512];
		enum wx_hook_result k = run(job, &tc->hook_kill, kdetail, sizeof kdetail);
		if (job->stop != JOB_RUNNING)
			return -1;
		if (k == WX_HOOK_OK) {
			job_log(job, "The server was killed (hooks.kill).");
			return 0;
		}
		snprintf(why, whysize, "The server could not be stopped: hooks.stop: %s; "
		    "hooks.kill: %s.", detail, kdetail);
		return -1;
	}
	if (r == WX_HOOK_ERROR)
		snprintf(why, whysize, "The stop hook could not be run: %s.", detail);
	else
		snprintf(why, whysize, "The server could not be stopped: hooks.stop: %s.", detail);
	return -1;
}
