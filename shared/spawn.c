#include "autoconf.h"

#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * The children report over a close-on-exec pipe: the intermediate child
 * sends the grandchild's pid; the grandchild sends an error only if it
 * could not exec.  EOF after the pid means the exec succeeded.
 */
struct report {
	char kind;      /* 'P' pid, 'E' error */
	char stage;     /* for 'E': 'f' fork, 'n' /dev/null, 'd' dup, 'x' exec */
	int value;      /* pid or errno */
};

static void
send_report(int fd, char kind, char stage, int value)
{
	struct report r;
	memset(&r, 0, sizeof r);
	r.kind = kind;
	r.stage = stage;
	r.value = value;
	ssize_t n;
	do
		n = write(fd, &r, sizeof r);
	while (n < 0 && errno == EINTR);
}

static void
close_from(int first)
{
#ifdef HAVE_CLOSE_RANGE
	if (close_range((unsigned)first, ~0U, 0) == 0)
		return;
#endif
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = first; fd < max; fd++)
		(void)close(fd);
}

/* In the grandchild: only async-signal-safe calls from here to execv. */
static void
grandchild(const char *path, char *const argv[], const int *keep, size_t nkeep, int rfd)
{
	int base = WX_SPAWN_FIRST_FD + (int)nkeep + 1;
	int copies[WX_SPAWN_MAX_KEEP];
	/* Fresh copies above every target first, so no dup2 below clobbers one. */
	for (size_t i = 0; i < nkeep; i++) {
		copies[i] = fcntl(keep[i], F_DUPFD_CLOEXEC, base);
		if (copies[i] < 0) {
			send_report(rfd, 'E', 'd', errno);
			_exit(127);
		}
	}
	int rcopy = fcntl(rfd, F_DUPFD_CLOEXEC, base);
	if (rcopy < 0) {
		send_report(rfd, 'E', 'd', errno);
		_exit(127);
	}
	rfd = rcopy;
	for (size_t i = 0; i < nkeep; i++) {
		if (dup2(copies[i], WX_SPAWN_FIRST_FD + (int)i) < 0) {
			send_report(rfd, 'E', 'd', errno);
			_exit(127);
		}
	}
	int report_fd = WX_SPAWN_FIRST_FD + (int)nkeep;
	if (dup3(rfd, report_fd, O_CLOEXEC) < 0) {
		send_report(rfd, 'E', 'd', errno);
		_exit(127);
	}
	rfd = report_fd;
	int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul < 0) {
		send_report(rfd, 'E', 'n', errno);
		_exit(127);
	}
	for (int fd = 0; fd <= 2; fd++) {
		if (nul != fd && dup2(nul, fd) < 0) {
			send_report(rfd, 'E', 'd', errno);
			_exit(127);
		}
	}
	/* dup2 cleared close-on-exec on 0-2 (fd == nul keeps it: clear it too). */
	if (nul <= 2)
		(void)fcntl(nul, F_SETFD, 0);
	close_from(rfd + 1);

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			(void)sigaction(s, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	if (chdir("/") < 0) {
		send_report(rfd, 'E', 'x', errno);
		_exit(127);
	}
	umask(027);
	execv(path, argv);
	send_report(rfd, 'E', 'x', errno);
	_exit(127);
}

static const char *
stage_name(char stage)
{
	switch (stage) {
	case 'f': return "cannot fork";
	case 'n': return "cannot open /dev/null";
	case 'd': return "cannot set up file descriptors";
	default: return "cannot run";
	}
}

pid_t
wx_spawn_detached(const char *path, char *const argv[], const int *keep, size_t nkeep,
    char *err, size_t errsize)
{
	if (nkeep > WX_SPAWN_MAX_KEEP) {
		snprintf(err, errsize, "cannot run %s: too many fds to pass", path);
		return -1;
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(err, errsize, "cannot run %s: pipe: %s", path, strerror(errno));
		return -1;
	}
	pid_t mid = fork();
	if (mid < 0) {
		snprintf(err, errsize, "cannot run %s: fork: %s", path, strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (mid == 0) {
		close(pfd[0]);
		if (setsid() < 0) {
			send_report(pfd[1], 'E', 'f', errno);
			_exit(127);
		}
		pid_t pid = fork();
		if (pid < 0) {
			send_report(pfd[1], 'E', 'f', errno);
			_exit(127);
		}
		if (pid == 0)
			grandchild(path, argv, keep, nkeep, pfd[1]);
		send_report(pfd[1], 'P', 0, (int)pid);
		_exit(0);
	}
	close(pfd[1]);
	int status;
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;

	pid_t pid = -1;
	int error = 0;
	char stage = 0;
	struct report r;
	for (;;) {
		ssize_t n = read(pfd[0], &r, sizeof r);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof r)
			break;
		if (r.kind == 'P')
			pid = (pid_t)r.value;
		else if (r.kind == 'E' && error == 0) {
			error = r.value;
			stage = r.stage;
		}
	}
	close(pfd[0]);
	if (error != 0) {
		snprintf(err, errsize, "%s %s: %s", stage_name(stage), path, strerror(error));
		return -1;
	}
	if (pid <= 0) {
		snprintf(err, errsize, "cannot run %s: the starter process died", path);
		return -1;
	}
	return pid;
}
