/*
 * wx-push-probe STATE TREE OUTSIDE: the push worker's confinement, probed
 * from inside (tests/integration/confine-push.sh).
 *
 * Each probe forks a child that enters the confinement exactly as the push
 * worker does (push_sandbox_enter, handlers/push/sandbox.c) for a server
 * whose directory is TREE, with STATE as the state directory, then tries
 * one thing and exits: 0 when the outcome was the expected one, 1 when the
 * forbidden thing worked, 2 for another error.  Probes that seccomp must
 * kill are expected to die of SIGSYS.  TREE holds "secret" (0600, not the
 * prober's: only CAP_DAC_READ_SEARCH reads it as root) and "open" (0666);
 * OUTSIDE is a file everyone may write.  TAP on stdout.
 */
#include "autoconf.h"

#include "config.h"
#include "confine.h"
#include "push.h"
#include "util.h"
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *state, *tree, *outside;
static struct wx_config cfg;
static struct job job;
static int listener = -1;
static struct sockaddr_in listen_addr;

static void
enter(void)
{
	char err[600];
	if (push_sandbox_enter(&job, err, sizeof err) < 0) {
		fprintf(stderr, "confine: %s\n", err);
		_exit(2);
	}
}

static char *
in(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static int
p_state_write(void)
{
	char *a = in(state, "probe.tmp"), *b = in(state, "probe.json");
	int fd = open(a, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, "{}", 2) != 2 || close(fd) < 0 || rename(a, b) < 0)
		return 2;
	fd = open(state, O_RDWR | O_TMPFILE, 0600);    /* the chunk spool's way */
	return fd >= 0 && close(fd) == 0 ? 0 : 2;
}

static int
p_tree_read(void)
{
	char buf[16];
	int fd = open(in(tree, "secret"), O_RDONLY);
	return fd >= 0 && read(fd, buf, sizeof buf) > 0 ? 0 : 2;
}

static int p_tree_write(void) { return refused(open(in(tree, "open"), O_WRONLY), EACCES); }
static int p_tree_create(void) { return refused(open(in(tree, "new"), O_WRONLY | O_CREAT, 0666), EACCES); }
static int p_outside(void) { return refused(open(outside, O_WRONLY | O_TRUNC), EACCES); }
static int p_create_tmp(void) { return refused(open("/tmp/wx-push-probe-escape", O_WRONLY | O_CREAT, 0666), EACCES); }
static int p_read_etc(void) { return refused(open("/etc/passwd", O_RDONLY), EACCES); }
static int p_mount(void) { return refused(mount("none", state, "tmpfs", 0, NULL), EPERM); }
static int p_packet(void) { return refused(socket(AF_PACKET, SOCK_RAW, 0), EAFNOSUPPORT); }

static int
p_chown(void)
{
	char *p = in(state, "probe.json");
	return refused(chown(p, 12345, 12345), EPERM);
}

static int
p_setuid(void)
{
	return refused(setuid(geteuid() == 0 ? 12345 : 0), EPERM);
}

/* A TCP connection to the listener the prober opened: the worker's job. */
static int
p_connect(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 2;
	return connect(s, (struct sockaddr *)&listen_addr, sizeof listen_addr) == 0 ? 0 : 1;
}

/* Name resolution as libcurl asks for it (files, then DNS; AI_ADDRCONFIG
 * asks the kernel over netlink which address families are configured). */
static int
p_resolve(void)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_ADDRCONFIG }, *res = NULL;
	int rc = getaddrinfo("localhost", "443", &hints, &res);
	if (res != NULL)
		freeaddrinfo(res);
	return rc == 0 ? 0 : 1;
}

static int
p_bind(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 2;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(0) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return refused(bind(s, (struct sockaddr *)&a, sizeof a), EACCES);
}

static int p_kill_parent(void) { return refused(kill(getppid(), SIGCONT), EPERM); }

static int
p_execve(void)
{
	char *argv[] = { "/bin/true", NULL };
	execve("/bin/true", argv, (char *[]){ NULL });
	return 2;
}

static int p_ptrace_me(void) { (void)ptrace(PTRACE_TRACEME, 0, NULL, NULL); return 1; }

static int
p_vm_read(void)
{
	char buf[8];
	struct iovec local = { buf, sizeof buf }, remote = { buf, sizeof buf };
	(void)process_vm_readv(getppid(), &local, 1, &remote, 1, 0);
	return 1;
}

/* The child's /proc status, read while it waits inside the confinement:
 * one "Key: value" line per field on stdout as "# status Key value". */
static void
print_status(void)
{
	struct held h = hold_confined();
	bool entered = h.entered;
	pid_t pid = h.pid;
	tap(entered, "the child entered the confinement");
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = entered ? fopen(path, "r") : NULL;
	while (f != NULL && fgets(line, sizeof line, f) != NULL) {
		static const char *const keys[] = { "Uid:", "CapEff:", "CapPrm:", "CapInh:",
			"NoNewPrivs:", "Seccomp:" };
		for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
			if (strncmp(line, keys[i], strlen(keys[i])) == 0)
				printf("# status %s", line);
	}
	if (f != NULL)
		fclose(f);
	snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
	f = entered ? fopen(path, "r") : NULL;
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "Max core file size", 18) == 0 ||
		    strncmp(line, "Max open files", 14) == 0 ||
		    strncmp(line, "Max address space", 17) == 0)
			printf("# limit %s", line);
	if (f != NULL)
		fclose(f);
	release(&h);
}

static int
open_listener(void)
{
	listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	listen_addr.sin_family = AF_INET;
	listen_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof listen_addr;
	if (listener < 0 || bind(listener, (struct sockaddr *)&listen_addr, sizeof listen_addr) < 0 ||
	    listen(listener, 8) < 0 ||
	    getsockname(listener, (struct sockaddr *)&listen_addr, &len) < 0) {
		perror("listener");
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: wx-push-probe STATE TREE OUTSIDE\n");
		return 2;
	}
	state = argv[1];
	tree = argv[2];
	outside = argv[3];
	cfg.backup_directory = "/nonexistent/backups";
	cfg.log_directory = "/nonexistent/logs";
	job.cfg = &cfg;
	job.broker_fd = -1;
	wx_strlcpy(job.uuid, "00000000-0000-4000-8000-000000000000", sizeof job.uuid);
	job.server_dir = (char *)tree;
	job.st.dir = (char *)state;
	if (open_listener() < 0)
		return 2;
	int abi = wx_landlock_abi();
	printf("# Landlock ABI %d\n", abi);
	expect_exit0("writing, renaming and an O_TMPFILE in the state directory work",
	    p_state_write);
	expect_exit0("reading a 0600 file of another user in the server's tree works",
	    p_tree_read);
	expect_exit0("opening a 0666 file in the tree for writing: EACCES", p_tree_write);
	expect_exit0("creating a file in the tree: EACCES", p_tree_create);
	expect_exit0("opening a 0666 file outside for writing: EACCES", p_outside);
	expect_exit0("creating a file in /tmp: EACCES", p_create_tmp);
	expect_exit0("reading /etc/passwd: EACCES", p_read_etc);
	expect_exit0("chown of its own state file: EPERM (no CAP_CHOWN)", p_chown);
	expect_exit0("setuid to another user: EPERM", p_setuid);
	expect_exit0("mount: EPERM", p_mount);
	expect_exit0("socket(AF_PACKET): EAFNOSUPPORT", p_packet);
	expect_exit0("a TCP connection to 127.0.0.1 works", p_connect);
	expect_exit0("resolving localhost (getaddrinfo, AI_ADDRCONFIG) works", p_resolve);
	if (abi >= 4)
		expect_exit0("binding a TCP port: EACCES (Landlock ABI 4+)", p_bind);
	else
		tap(true, "# SKIP binding a TCP port: Landlock ABI %d < 4", abi);
	if (abi >= 6)
		expect_exit0("a signal to the parent: EPERM (Landlock ABI 6+ scope)", p_kill_parent);
	else
		tap(true, "# SKIP a signal to the parent: Landlock ABI %d < 6", abi);
	expect_sigsys("execve /bin/true", p_execve);
	expect_sigsys("process_vm_readv of the parent", p_vm_read);
#ifndef WX_SANITIZERS
	expect_sigsys("ptrace(TRACEME)", p_ptrace_me);
#else
	(void)p_ptrace_me;
	tap(true, "# SKIP ptrace: left to LeakSanitizer in sanitizer builds");
#endif
	print_status();
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
