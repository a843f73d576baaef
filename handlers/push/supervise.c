/*
 * The push worker's supervisor (docs/protocol.md §4.7): the process that
 * holds the transfer's lock forks the worker and waits for it.  A worker
 * that exits is done (its exit status is the supervisor's).  A worker that
 * dies by a signal (kill -9, a crash) while its record is active and holds
 * a chunked upload (extra.resume) is started again, at most
 * SUPERVISE_RESTARTS times, and resumes that upload from the destination's
 * offset, unless a cancel or the watchdog asked it to stop; any other
 * death is left as before to wingxfer-watchdog (the
 * record stays active, the lock is released when the supervisor exits).
 * Stop signals and the cancel signal are passed on to the worker.
 *
 * The supervisor is not confined: it runs hooks.stop for its worker, which
 * is (stop.c, sandbox.c), and delivers the failure report its worker queued
 * (the worker has wiped the node token; outcome.c).  Each worker gets a
 * fresh SOCK_SEQPACKET socket to it (job->broker_fd in both).
 */
#include "autoconf.h"

#include "push.h"
#include "log.h"
#include "program.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUPERVISE_RESTARTS 3
#define SUPERVISE_POLL_MS 100

/* Whether the record on disk is active and holds a chunked upload to resume (not a
 * pre-sync's: its rounds were made from a running server and cannot be made again). */
static bool
resumable(struct job *job)
{
	struct wx_record r;
	memset(&r, 0, sizeof r);
	if (wx_record_load(&job->st, job->uuid, &r) < 0)
		return false;
	json_object *v;
	bool ok = wx_status_active(r.status) && r.extra != NULL &&
	    json_object_object_get_ex(r.extra, "resume", &v) &&
	    json_object_is_type(v, json_type_object) &&
	    !json_object_object_get_ex(r.extra, "presync", NULL);
	wx_record_clear(&r);
	return ok;
}

static void
close_broker(struct job *job)
{
	if (job->broker_fd >= 0)
		close(job->broker_fd);
	job->broker_fd = -1;
}

int
supervise(struct job *job, int *exit_code)
{
	for (int restarts = 0;; restarts++) {
		int sv[2] = { -1, -1 };
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
			wx_warn("cannot make the push worker's socket (%s): it runs the stop hook "
			    "itself and is confined after it", strerror(errno));
			sv[0] = sv[1] = -1;
		}
		pid_t pid = fork();
		if (pid < 0) {
			wx_warn("cannot fork the push worker (%s): it runs unsupervised",
			    strerror(errno));
			if (sv[0] >= 0) {
				close(sv[0]);
				close(sv[1]);
			}
			return 0;
		}
		if (pid == 0) {
			if (sv[0] >= 0)
				close(sv[0]);
			job->broker_fd = sv[1];
			return restarts == 0 ? 0 : 1;
		}
		if (sv[1] >= 0)
			close(sv[1]);
		job->broker_fd = sv[0];
		int status = 0;
		bool forwarded_stop = false;
		for (;;) {
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w == pid)
				break;
			if (w < 0 && errno != EINTR) {
				wx_err("cannot wait for the push worker %ld: %s", (long)pid, strerror(errno));
				close_broker(job);
				*exit_code = EXIT_FAILED;
				return -1;
			}
			if (wx_stop_requested && !forwarded_stop) {
				forwarded_stop = true;
				(void)kill(pid, SIGTERM);
			}
			if (wx_interrupted) {
				wx_interrupted = 0;
				(void)kill(pid, SIGUSR2);
			}
			struct pollfd pfd = { .fd = job->broker_fd, .events = POLLIN };
			if (poll(&pfd, job->broker_fd >= 0 ? 1 : 0, SUPERVISE_POLL_MS) > 0 &&
			    !stop_serve(job))
				close_broker(job);      /* the worker closed its end */
		}
		close_broker(job);
		if (WIFEXITED(status)) {
			*exit_code = WEXITSTATUS(status);
			outcome_deliver(job);
			return -1;
		}
		int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
		*exit_code = EXIT_FAILED;
		/* Not after a cancel or the watchdog's stop (its kill after the grace). */
		if (wx_stop_requested || restarts >= SUPERVISE_RESTARTS ||
		    wx_cancel_requested(&job->st, job->uuid, NULL, 0) || !resumable(job)) {
			wx_err("the push worker %ld died by signal %d (%s); wingxfer-watchdog ends the "
			    "transfer", (long)pid, sig, strsignal(sig));
			return -1;
		}
		wx_warn("the push worker %ld died by signal %d (%s): starting it again to resume "
		    "the upload (restart %d of %d)", (long)pid, sig, strsignal(sig), restarts + 1,
		    SUPERVISE_RESTARTS);
	}
}
