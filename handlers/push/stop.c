/*
 * Stopping the game server before its files are archived: hooks.stop,
 * bounded by system.transfers.stop_timeout; when it does not finish in
 * time, hooks.kill (bounded by the same timeout) if configured.  A cancel or
 * a stop signal kills a running hook at once.
 *
 * The hooks run as root, outside the worker's confinement: a supervised
 * worker (confined from its start, sandbox.c) asks its supervisor, which
 * holds the lock and parses nothing from the network, over a SOCK_SEQPACKET
 * socket: one stop_request, one stop_answer; an abort byte ('X') while the
 * hook runs stops it like a signal.
 */
#include "autoconf.h"

#include "push.h"
#include "config.h"
#include "hook.h"
#include "log.h"
#include "program.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STOP_WAIT_POLL_MS 100
#define STOP_ABORT 'X'

/* Worker -> supervisor: run hooks.stop; the counters to keep in the record. */
struct stop_request {
	char op;                        /* 'S' */
	struct progress progress;
	int64_t skipped;
};

/* Supervisor -> worker. */
struct stop_answer {
	int32_t rc;                     /* stop_server's */
	int32_t stop, stop_signal;      /* the supervisor's job->stop after it */
	char cancel_why[WX_CANCEL_WHY_MAX + 1];
	char why[1200];
};

/* In the supervisor while a hook runs: whether the worker asked to abort. */
static bool
worker_aborted(struct job *job)
{
	char c;
	ssize_t n = recv(job->broker_fd, &c, 1, MSG_DONTWAIT);
	return n == 1 && c == STOP_ABORT;
}

static int
cancel_poll(void *ctx)
{
	struct job *job = ctx;
	if (job->broker_fd >= 0 && job->stop == JOB_RUNNING && worker_aborted(job)) {
		job->stop = JOB_SIGNALLED;
		job->stop_signal = SIGTERM;
		return 1;
	}
	return job_should_stop(job);
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

/* The supervisor's copy of the job takes what the worker saved. */
static int
take_record(struct job *job, const struct stop_request *rq, char *why, size_t whysize)
{
	job->progress = rq->progress;
	job->skipped = rq->skipped >= 0 ? rq->skipped : 0;
	wx_record_clear(&job->rec);
	if (wx_record_load(&job->st, job->uuid, &job->rec) < 0) {
		snprintf(why, whysize, "The transfer record could not be read before stopping the "
		    "server: %s.", strerror(errno));
		return -1;
	}
	job->stop = JOB_RUNNING;
	job->next_cancel_check_ms = 0;
	return 0;
}

bool
stop_serve(struct job *job)
{
	struct stop_request rq;
	ssize_t n = recv(job->broker_fd, &rq, sizeof rq, MSG_DONTWAIT);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	if (n != (ssize_t)sizeof rq || rq.op != 'S')
		return true;            /* a late abort byte, or nonsense: nothing to do */
	struct stop_answer *ans = xcalloc(1, sizeof *ans);
	ans->rc = take_record(job, &rq, ans->why, sizeof ans->why);
	if (ans->rc == 0)
		ans->rc = stop_server(job, ans->why, sizeof ans->why);
	ans->stop = (int32_t)job->stop;
	ans->stop_signal = job->stop_signal;
	wx_strlcpy(ans->cancel_why, job->cancel_why, sizeof ans->cancel_why);
	if (send(job->broker_fd, ans, sizeof *ans, MSG_NOSIGNAL) != (ssize_t)sizeof *ans)
		wx_warn("cannot answer the push worker's stop request: %s", strerror(errno));
	free(ans);
	return true;
}

/* In the worker: the supervisor's answer, asking it to abort on a stop signal. */
static int
await_answer(struct job *job, struct stop_answer *ans, char *why, size_t whysize)
{
	bool aborted = false;
	for (;;) {
		if (wx_stop_requested && !aborted) {
			char c = STOP_ABORT;
			aborted = true;
			(void)send(job->broker_fd, &c, 1, MSG_NOSIGNAL);
		}
		struct pollfd pfd = { .fd = job->broker_fd, .events = POLLIN };
		int r = poll(&pfd, 1, STOP_WAIT_POLL_MS);
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		ssize_t n = recv(job->broker_fd, ans, sizeof *ans, 0);
		if (n == (ssize_t)sizeof *ans)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		errno = n < 0 ? errno : EPIPE;
		break;
	}
	snprintf(why, whysize, "The push worker's supervisor did not answer its request to stop "
	    "the server: %s.", strerror(errno));
	return -1;
}

int
stop_via_supervisor(struct job *job, char *why, size_t whysize)
{
	if (job->broker_fd < 0) {
		if (stop_server(job, why, whysize) < 0)
			return -1;
		return push_confine(job, why, whysize);
	}
	job_save(job);
	struct stop_request rq;
	memset(&rq, 0, sizeof rq);
	rq.op = 'S';
	rq.progress = job->progress;
	rq.skipped = job->skipped;
	if (send(job->broker_fd, &rq, sizeof rq, MSG_NOSIGNAL) != (ssize_t)sizeof rq) {
		snprintf(why, whysize, "The push worker could not ask its supervisor to stop the "
		    "server: %s.", strerror(errno));
		return -1;
	}
	struct stop_answer *ans = xcalloc(1, sizeof *ans);
	int rc = await_answer(job, ans, why, whysize);
	if (rc == 0) {
		wx_record_clear(&job->rec);
		if (wx_record_load(&job->st, job->uuid, &job->rec) < 0) {
			snprintf(why, whysize, "The transfer record could not be read after stopping "
			    "the server: %s.", strerror(errno));
			rc = -1;
		} else if (ans->stop != JOB_RUNNING) {
			job->stop = (enum job_stop)ans->stop;
			job->stop_signal = ans->stop_signal;
			ans->cancel_why[sizeof ans->cancel_why - 1] = '\0';
			wx_strlcpy(job->cancel_why, ans->cancel_why, sizeof job->cancel_why);
			rc = -1;
		} else if (ans->rc < 0) {
			ans->why[sizeof ans->why - 1] = '\0';
			wx_strlcpy(why, ans->why, whysize);
			rc = -1;
		}
	}
	free(ans);
	return rc;
}
