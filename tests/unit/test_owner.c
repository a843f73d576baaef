/*
 * wx_transfer_owner: only a live process holding the lock file open (and
 * running the named program) is an owner; a recorded pid that does not hold
 * it (a reused pid) is not; never this process; the /proc search answers
 * only when exactly one process qualifies.
 */
#include "autoconf.h"

#include "owner.h"
#include "tap.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[] = "/tmp/wx-test-owner.XXXXXX";

/* A child that holds path open (path NULL: holds nothing) until killed; -1 on error. */
static pid_t
holder(const char *path)
{
	int ready[2];
	if (pipe(ready) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(ready[0]);
		close(ready[1]);
		return -1;
	}
	if (pid == 0) {
		close(ready[0]);
		if (path != NULL && open(path, O_RDONLY) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	char c;
	ssize_t n = read(ready[0], &c, 1);
	close(ready[0]);
	if (n != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static void
end(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

/* The name wx_transfer_owner compares with program: the last component of /proc/<pid>/exe. */
static const char *
exe_name(pid_t pid, char *buf, size_t size)
{
	char link[64];
	snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(link, buf, size - 1);
	if (n <= 0)
		return "";
	buf[n] = '\0';
	const char *slash = strrchr(buf, '/');
	return slash != NULL ? slash + 1 : buf;
}

int
main(void)
{
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	char lock[sizeof root + 16], other[sizeof root + 16];
	snprintf(lock, sizeof lock, "%s/t.lock", root);
	snprintf(other, sizeof other, "%s/u.lock", root);
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int ofd = open(other, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || ofd < 0) {
		perror("open");
		return 1;
	}
	close(fd);
	close(ofd);

	pid_t owner = holder(lock), stranger = holder(NULL), elsewhere = holder(other);
	ok(owner > 0 && stranger > 0 && elsewhere > 0, "three children started");

	is_int(wx_transfer_owner(lock, owner, NULL, WX_OWNER_RECORDED), owner,
	    "the recorded pid holds the lock file open: it is the owner");
	is_int(wx_transfer_owner(lock, stranger, NULL, WX_OWNER_RECORDED), 0,
	    "a recorded pid that does not hold it (a reused pid) is not");
	is_int(wx_transfer_owner(lock, elsewhere, NULL, WX_OWNER_RECORDED), 0,
	    "nor one holding another transfer's lock");
	is_int(wx_transfer_owner(lock, 0, NULL, WX_OWNER_RECORDED), 0,
	    "no recorded pid, no search: nobody");
	is_int(wx_transfer_owner(lock, 1, NULL, WX_OWNER_RECORDED), 0, "pid 1 is never an owner");
	is_int(wx_transfer_owner(lock, (int64_t)INT_MAX + 1, NULL, WX_OWNER_RECORDED), 0,
	    "a recorded pid out of range is nobody");
	is_int(wx_transfer_owner(lock, 0, NULL, WX_OWNER_ANY), owner,
	    "no recorded pid: the only process holding the file is found in /proc");
	is_int(wx_transfer_owner(lock, stranger, NULL, WX_OWNER_ANY), owner,
	    "a wrong recorded pid: likewise");

	char buf[PATH_MAX];
	const char *name = exe_name(owner, buf, sizeof buf);
	ok(name[0] != '\0', "the child's executable is readable (%s)", name);
	is_int(wx_transfer_owner(lock, owner, name, WX_OWNER_RECORDED), owner,
	    "it runs the program asked for: the owner");
	is_int(wx_transfer_owner(lock, owner, "wingxfer-nothing", WX_OWNER_RECORDED), 0,
	    "another program asked for: not the owner");
	is_int(wx_transfer_owner(lock, 0, "wingxfer-nothing", WX_OWNER_ANY), 0,
	    "nor found by the search");

	fd = open(lock, O_RDONLY | O_CLOEXEC);
	ok(fd >= 0, "this process opens the lock file too");
	is_int(wx_transfer_owner(lock, getpid(), NULL, WX_OWNER_RECORDED), 0,
	    "this process is never the owner, even recorded");
	is_int(wx_transfer_owner(lock, getpid(), NULL, WX_OWNER_ANY), owner,
	    "nor counted by the search");
	if (fd >= 0)
		close(fd);

	pid_t second = holder(lock);
	ok(second > 0, "a second child holds the lock file");
	is_int(wx_transfer_owner(lock, 0, NULL, WX_OWNER_ANY), 0,
	    "two holders and no recorded pid: cannot tell");
	is_int(wx_transfer_owner(lock, second, NULL, WX_OWNER_ANY), second,
	    "two holders, one recorded: that one");
	end(second);

	end(owner);
	is_int(wx_transfer_owner(lock, owner, NULL, WX_OWNER_ANY), 0,
	    "the owner is gone: nobody");
	char missing[sizeof root + 16];
	snprintf(missing, sizeof missing, "%s/none.lock", root);
	is_int(wx_transfer_owner(missing, elsewhere, NULL, WX_OWNER_ANY), 0,
	    "no lock file: nobody");

	end(stranger);
	end(elsewhere);
	unlink(lock);
	unlink(other);
	rmdir(root);
	return tap_done();
}
