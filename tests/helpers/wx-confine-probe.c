/*
 * wx-confine-probe STAGING OUTSIDE UID GID: the destination's extractor
 * confinement, probed from inside (tests/integration/confine.sh).
 *
 * Each probe forks a child that enters the confinement exactly as the
 * receiving child does (rx_sandbox_enter, sandbox.c), with STAGING as its
 * staging directory and STAGING.parts as its parts directory, then tries
 * one thing and exits: 0 when the outcome was the expected one, 1 when the
 * forbidden thing worked, 2 for another error.  Probes that seccomp must
 * kill are expected to die of SIGSYS.  OUTSIDE is a path the test made
 * writable for everyone (so only the confinement can refuse it).  UID/GID
 * -1: no privilege drop (as when the program is not root).  TAP on stdout.
 */
#include "autoconf.h"

#include "config.h"
#include "destination.h"
#include "util.h"
#include "probe.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *staging, *outside;
static struct wx_config cfg;

/* Enters the confinement the way the receiving child does. */
static void
enter(void)
{
	struct receiver rx;
	memset(&rx, 0, sizeof rx);
	rx.cfg = &cfg;
	rx.staging_fd = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *parts = NULL;
	if (asprintf(&parts, "%s.parts", staging) < 0)
		_exit(2);
	int parts_fd = open(parts, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char err[512];
	if (rx.staging_fd < 0 || parts_fd < 0 || rx_sandbox_enter(&rx, parts_fd, err, sizeof err) < 0) {
		fprintf(stderr, "confine: %s\n", rx.staging_fd < 0 || parts_fd < 0 ? strerror(errno) : err);
		_exit(2);
	}
}

static int
p_write_inside(void)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/inside.txt", staging);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, "x", 1) != 1 || close(fd) < 0)
		return 2;
	char dir[4096], moved[4096];
	snprintf(dir, sizeof dir, "%s/sub", staging);
	snprintf(moved, sizeof moved, "%s/sub/moved.txt", staging);
	if (mkdir(dir, 0700) < 0 || rename(path, moved) < 0 || symlink("moved.txt", path) < 0)
		return 2;
	char parts[4096];
	snprintf(parts, sizeof parts, "%s.parts/.backup.wingxfer-partial", staging);
	fd = open(parts, O_WRONLY | O_CREAT | O_EXCL, 0600);
	return fd >= 0 && close(fd) == 0 ? 0 : 2;
}

static int p_write_outside(void) { return refused(open(outside, O_WRONLY | O_CREAT | O_TRUNC, 0666), EACCES); }
static int p_create_tmp(void) { return refused(open("/tmp/wx-confine-probe-escape", O_WRONLY | O_CREAT, 0666), EACCES); }
static int p_read_etc(void) { return refused(open("/etc/passwd", O_RDONLY), EACCES); }
static int p_fork(void) { pid_t p = fork(); if (p == 0) _exit(0); return refused(p, EPERM); }
static int p_kill_parent(void) { return refused(kill(getppid(), SIGCONT), EPERM); }
static int p_setuid(void) { return refused(setuid(0), EPERM); }

static int
p_execve(void)
{
	char *argv[] = { "/bin/true", NULL };
	execve("/bin/true", argv, (char *[]){ NULL });
	return 2;
}

static int p_socket_inet(void) { (void)socket(AF_INET, SOCK_STREAM, 0); return 1; }
static int p_socket_unix(void) { (void)socket(AF_UNIX, SOCK_STREAM, 0); return 1; }
static int p_ptrace_me(void) { (void)ptrace(PTRACE_TRACEME, 0, NULL, NULL); return 1; }
static int p_ptrace_parent(void) { (void)ptrace(PTRACE_ATTACH, getppid(), NULL, NULL); return 1; }

/* The child's /proc status, read by this (unconfined) process while the
 * child waits inside the confinement. */
static void
check_status(void)
{
	struct held h = hold_confined();
	bool entered = h.entered;
	pid_t pid = h.pid;
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = entered ? fopen(path, "r") : NULL;
	char uid[256] = "?", capeff[256] = "?", nnp[256] = "?", seccomp[256] = "?";
	while (f != NULL && fgets(line, sizeof line, f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "Uid:", 4) == 0)
			wx_strlcpy(uid, line + 5, sizeof uid);
		else if (strncmp(line, "CapEff:", 7) == 0)
			wx_strlcpy(capeff, line + 8, sizeof capeff);
		else if (strncmp(line, "NoNewPrivs:", 11) == 0)
			wx_strlcpy(nnp, line + 12, sizeof nnp);
		else if (strncmp(line, "Seccomp:", 8) == 0)
			wx_strlcpy(seccomp, line + 9, sizeof seccomp);
	}
	if (f != NULL)
		fclose(f);
	snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
	f = entered ? fopen(path, "r") : NULL;
	char core[256] = "?";
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "Max core file size", 18) == 0)
			wx_strlcpy(core, line, sizeof core);
	if (f != NULL)
		fclose(f);
	release(&h);
	tap(entered, "the child entered the confinement");
	char want_uid[64];
	long u = cfg.uid >= 0 && geteuid() == 0 ? (long)cfg.uid : (long)geteuid();
	snprintf(want_uid, sizeof want_uid, "%ld\t%ld\t%ld\t%ld", u, u, u, u);
	tap(strcmp(uid, want_uid) == 0, "Uid is %s (%s)", uid, want_uid);
	tap(strspn(capeff, "0") == strlen(capeff), "CapEff %s is empty", capeff);
	tap(strcmp(nnp, "1") == 0, "NoNewPrivs %s is 1", nnp);
	tap(strcmp(seccomp, "2") == 0, "Seccomp %s is 2 (filter)", seccomp);
	char *sp = strstr(core, " 0 ");
	core[strcspn(core, "\n")] = '\0';
	tap(sp != NULL, "no core dumps: %s", core);
}

int
main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: wx-confine-probe STAGING OUTSIDE UID GID\n");
		return 2;
	}
	staging = argv[1];
	outside = argv[2];
	if (wx_parse_i64(argv[3], -1, INT32_MAX, &cfg.uid) != NULL ||
	    wx_parse_i64(argv[4], -1, INT32_MAX, &cfg.gid) != NULL) {
		fprintf(stderr, "wx-confine-probe: UID and GID are numbers (-1: no drop)\n");
		return 2;
	}
	expect_exit0("writing, renaming, linking inside staging and the parts dir works",
	    p_write_inside);
	expect_exit0("opening a file for writing outside staging: EACCES", p_write_outside);
	expect_exit0("creating a file in /tmp: EACCES", p_create_tmp);
	expect_exit0("reading /etc/passwd: EACCES", p_read_etc);
	expect_exit0("fork: EPERM", p_fork);
	expect_exit0("a signal to the parent: EPERM", p_kill_parent);
	expect_exit0("setuid(0): EPERM", p_setuid);
	expect_sigsys("execve /bin/true", p_execve);
	expect_sigsys("socket(AF_INET)", p_socket_inet);
	expect_sigsys("socket(AF_UNIX)", p_socket_unix);
	expect_sigsys("ptrace(TRACEME)", p_ptrace_me);
	expect_sigsys("ptrace(ATTACH, parent)", p_ptrace_parent);
	check_status();
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
