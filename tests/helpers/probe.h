/*
 * What the confinement probes share (wx-confine-probe, wx-push-probe): TAP
 * output, and running one probe in a child that first calls the helper's
 * enter() — the program's own confinement function — then exits with the
 * probe's verdict: 0 the expected outcome, 1 the forbidden thing worked, 2
 * another error.  Each helper defines enter() before including this file.
 */
#ifndef WX_PROBE_H
#define WX_PROBE_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void enter(void);

static int tap_n, tap_failed;

static void __attribute__((format(printf, 2, 3)))
tap(bool ok, const char *fmt, ...)
{
	printf("%s %d - ", ok ? "ok" : "not ok", ++tap_n);
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!ok)
		tap_failed++;
	fflush(stdout);
}

/* 0 when call failed with errno want, 1 when it worked, 2 otherwise. */
static int
refused(int rc, int want)
{
	if (rc >= 0)
		return 1;
	return errno == want ? 0 : 2;
}

/* Runs probe in a confined child; returns its wait status. */
static int
run(int (*probe)(void))
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		enter();
		_exit(probe());
	}
	int ws;
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			exit(2);
	return ws;
}

static void
expect_exit0(const char *what, int (*probe)(void))
{
	int ws = run(probe);
	tap(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "%s (%s %d)", what,
	    WIFEXITED(ws) ? "exit" : "signal", WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
}

static void
expect_sigsys(const char *what, int (*probe)(void))
{
	int ws = run(probe);
	tap(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSYS, "%s: killed by SIGSYS (%s %d)", what,
	    WIFEXITED(ws) ? "exit" : "signal", WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
}

/* A child waiting inside the confinement, for its /proc files. */
struct held {
	pid_t pid;
	int go;                 /* closing it lets the child exit */
	bool entered;           /* it said it was confined */
};

static struct held
hold_confined(void)
{
	struct held h = { -1, -1, false };
	int go[2], ready[2];
	if (pipe(go) < 0 || pipe(ready) < 0)
		exit(2);
	fflush(stdout);
	h.pid = fork();
	if (h.pid < 0)
		exit(2);
	if (h.pid == 0) {
		close(go[1]);
		close(ready[0]);
		enter();
		char c = 'r';
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0)
			_exit(2);
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	char c;
	h.entered = read(ready[0], &c, 1) == 1;
	close(ready[0]);
	h.go = go[1];
	return h;
}

static void
release(struct held *h)
{
	close(h->go);
	int ws;
	while (waitpid(h->pid, &ws, 0) < 0 && errno == EINTR)
		;
}

#endif
