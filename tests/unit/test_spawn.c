/* Detached start of a program: session, fds, signals, exec errors, no zombies. */
#include "autoconf.h"

#include "spawn.h"
#include "tap.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* "0 1 2 3 " : the fds open in process pid, in order. */
static char *
fd_list(pid_t pid)
{
	char dir[64], out[256] = "";
	size_t off = 0;
	for (int fd = 0; fd < 64; fd++) {
		snprintf(dir, sizeof dir, "/proc/%d/fd/%d", (int)pid, fd);
		if (access(dir, F_OK) == 0 && off + 8 < sizeof out)
			off += (size_t)snprintf(out + off, sizeof out - off, "%d ", fd);
	}
	return xstrdup(out);
}

static char *
link_of(pid_t pid, const char *what)
{
	char path[96], buf[256];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
	ssize_t n = readlink(path, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	return xstrdup(buf);
}

static unsigned long long
status_mask(pid_t pid, const char *key)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	const char *why;
	char *text = wx_read_small_file(path, 65536, &why);
	const char *p = text ? strstr(text, key) : NULL;
	unsigned long long v = p ? strtoull(p + strlen(key), NULL, 16) : ~0ull;
	free(text);
	return v;
}

/* Whether pid is blocked in a sleep system call (it has finished starting). */
static int
is_sleeping(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
	const char *why;
	char *text = wx_read_small_file(path, 4096, &why);
	long nr = text ? strtol(text, NULL, 10) : -1;
	free(text);
	return nr == SYS_clock_nanosleep || nr == SYS_nanosleep;
}

/* Fields 4 (ppid) and 6 (session) of /proc/pid/stat. */
static void
stat_fields(pid_t pid, long *ppid, long *sid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	const char *why;
	char *text = wx_read_small_file(path, 4096, &why);
	*ppid = *sid = -1;
	const char *p = text ? strrchr(text, ')') : NULL;  /* after "(comm)" */
	if (p != NULL) {
		char *end;
		*ppid = strtol(p + 4, &end, 10);  /* ") S 123 ..." */
		(void)strtol(end, &end, 10);      /* process group */
		*sid = strtol(end, &end, 10);
	}
	free(text);
}

static void
test_detached(void)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		abort();
	/* An fd without close-on-exec that must not reach the program. */
	int stray = open("/dev/null", O_RDONLY);
	signal(SIGUSR1, SIG_IGN);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, NULL);

	char *argv[] = { "/bin/sleep", "30", NULL };
	char err[256] = "";
	int keep[] = { pfd[1] };
	pid_t pid = wx_spawn_detached("/bin/sleep", argv, keep, 1, err, sizeof err);
	ok(pid > 0, "spawn returns the program's pid once it runs (%s)", err);
	errno = 0;
	ok(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD,
	    "no child left behind (the intermediate was reaped, the program is not ours)");
	/*
	 * The dynamic loader of the new program opens its libraries as fd 4
	 * and up for a moment after exec; a leaked fd stays.  So wait (up to
	 * 60 s, for a busy machine) until the program is asleep in
	 * clock_nanosleep, then look.
	 */
	char *fds = NULL;
	for (int i = 0; i < 6000; i++) {
		free(fds);
		fds = fd_list(pid);
		if (strcmp(fds, "0 1 2 3 ") == 0)
			break;
		if (is_sleeping(pid)) {
			free(fds);
			fds = fd_list(pid);
			break;
		}
		usleep(10000);
	}
	is_str(fds, "0 1 2 3 ", "only fds 0-2 and the kept fd (as 3) are open");
	free(fds);
	char *l0 = link_of(pid, "fd/0"), *l2 = link_of(pid, "fd/2"), *l3 = link_of(pid, "fd/3");
	char mine[64];
	snprintf(mine, sizeof mine, "fd/%d", pfd[1]);
	char *lp = link_of(getpid(), mine);
	is_str(l0, "/dev/null", "stdin is /dev/null");
	is_str(l2, "/dev/null", "stderr is /dev/null");
	is_str(l3, lp, "fd 3 is the kept fd");
	free(l0);
	free(l2);
	free(l3);
	free(lp);
	char *exe = link_of(pid, "exe"), *cwd = link_of(pid, "cwd");
	has_str(exe, "sleep", "the pid is the program itself");
	is_str(cwd, "/", "the working directory is /");
	free(exe);
	free(cwd);
	long ppid, sid;
	stat_fields(pid, &ppid, &sid);
	ok(ppid != (long)getpid(), "the program is not a child of the caller");
	ok(sid > 0 && sid != (long)getsid(0), "the program runs in another session");
	ok(sid != (long)pid, "... without leading it (it cannot acquire a controlling terminal)");
	is_int(status_mask(pid, "SigBlk:"), 0, "no signal is blocked");
	/* Standard signals only: glibc reserves 32 and 33, which sigaction cannot reset. */
	is_int(status_mask(pid, "SigIgn:") & 0x7fffffffull, 0, "no standard signal is ignored");
	kill(pid, SIGKILL);
	close(pfd[0]);
	close(pfd[1]);
	close(stray);
	signal(SIGUSR1, SIG_DFL);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
}

static void
test_two_fds(void)
{
	int a[2], b[2];
	if (pipe2(a, O_CLOEXEC) < 0 || pipe2(b, O_CLOEXEC) < 0)
		abort();
	/* The program copies fd 3 (what we wrote into b) to fd 4 (a). */
	(void)!write(b[1], "token-xyz", 9);
	close(b[1]);
	char *argv_sh[] = { "/bin/sh", "-c", "exec cat <&3 >&4", NULL };
	char err[256] = "";
	int keep[] = { b[0], a[1] };
	pid_t pid = wx_spawn_detached("/bin/sh", argv_sh, keep, 2, err, sizeof err);
	close(a[1]);
	close(b[0]);
	ok(pid > 0, "two kept fds: started (%s)", err);
	char buf[64] = "";
	ssize_t n = read(a[0], buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(a[0]);
	is_str(buf, "token-xyz", "the fds arrive as 3 and 4, in the order given");
}

static void
test_exec_failure(void)
{
	char *argv[] = { "/nonexistent/wingxfer-push", NULL };
	char err[256] = "";
	pid_t pid = wx_spawn_detached("/nonexistent/wingxfer-push", argv, NULL, 0, err, sizeof err);
	is_int(pid, -1, "a missing program is reported, not silently lost");
	has_str(err, "/nonexistent/wingxfer-push", "the error names the program");
	has_str(err, "No such file or directory", "... and the reason");
	errno = 0;
	ok(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "no zombie after a failed start");

	char plain[] = "/tmp/wx-test-spawn.XXXXXX";
	int fd = mkstemp(plain);
	close(fd);
	chmod(plain, 0644);
	char *argv2[] = { plain, NULL };
	pid = wx_spawn_detached(plain, argv2, NULL, 0, err, sizeof err);
	unlink(plain);
	is_int(pid, -1, "a file that is not executable is reported");
	has_str(err, "Permission denied", "... with the reason");
}

int
main(void)
{
	test_detached();
	test_two_fds();
	test_exec_failure();
	return tap_done();
}
