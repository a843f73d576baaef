/*
 * Privilege drop and confinement (confine.h).  Linux only: Landlock through
 * its system calls (the headers of Debian 12 predate the later ABIs, so the
 * flags of ABI 2 to 6 are spelled out here), seccomp through libseccomp.
 */
#include "autoconf.h"

#include "confine.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int
fail(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
	return -1;
}

/* Sets the effective and permitted capability sets to mask (bits 1 << CAP_x,
 * the first 32 in word 0), empties the inheritable and ambient ones. */
static int
set_caps(uint64_t mask, char *err, size_t errsize)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	memset(d, 0, sizeof d);
	d[0].effective = d[0].permitted = (uint32_t)mask;
	d[1].effective = d[1].permitted = (uint32_t)(mask >> 32);
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capset, &h, d) < 0)
		return fail(err, errsize, "capset: %s", strerror(errno));
	return 0;
}

/* Empties every capability set (a process that stays uid 0 keeps none of
 * root's powers). */
static int
drop_caps(char *err, size_t errsize)
{
	return set_caps(0, err, errsize);
}

/* The bounding set is left as it is: it only limits what an execve gains,
 * and the confinement's seccomp filter kills execve. */
int
wx_keep_caps(uint64_t mask, char *err, size_t errsize)
{
	if (geteuid() != 0)
		return 0;
	return set_caps(mask, err, errsize);
}

int
wx_drop_to(int64_t uid, int64_t gid, char *err, size_t errsize)
{
	if (geteuid() != 0)
		return 0;
	if (uid < 0 || gid < 0)
		return drop_caps(err, errsize);
	gid_t g = (gid_t)gid;
	uid_t u = (uid_t)uid;
	if (setgroups(1, &g) < 0)
		return fail(err, errsize, "setgroups(%lld): %s", (long long)gid, strerror(errno));
	if (setresgid(g, g, g) < 0)
		return fail(err, errsize, "setresgid(%lld): %s", (long long)gid, strerror(errno));
	if (setresuid(u, u, u) < 0)
		return fail(err, errsize, "setresuid(%lld): %s", (long long)uid, strerror(errno));
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    ru != u || eu != u || su != u || rg != g || eg != g || sg != g)
		return fail(err, errsize, "the uid/gid did not change to %lld/%lld",
		    (long long)uid, (long long)gid);
	if (u != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return fail(err, errsize, "root could be regained after dropping to uid %lld",
		    (long long)uid);
	return u == 0 ? drop_caps(err, errsize) : 0;
}

/* ---- resource limits ---- */

static int
set_limit(int resource, rlim_t value, const char *name, char *err, size_t errsize)
{
	struct rlimit cur;
	if (getrlimit(resource, &cur) < 0)
		return fail(err, errsize, "getrlimit(%s): %s", name, strerror(errno));
	struct rlimit rl = { value, value };
	if (cur.rlim_max != RLIM_INFINITY && cur.rlim_max < value)
		rl.rlim_cur = rl.rlim_max = cur.rlim_max;   /* already lower: keep */
	if (setrlimit(resource, &rl) < 0)
		return fail(err, errsize, "setrlimit(%s, %llu): %s", name,
		    (unsigned long long)value, strerror(errno));
	return 0;
}

static int
apply_rlimits(const struct wx_confine_policy *pol, char *err, size_t errsize)
{
	if (set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE", err, errsize) < 0)
		return -1;
	if (pol->nofile > 0 &&
	    set_limit(RLIMIT_NOFILE, (rlim_t)pol->nofile, "RLIMIT_NOFILE", err, errsize) < 0)
		return -1;
	if (pol->address_space > 0 &&
	    set_limit(RLIMIT_AS, (rlim_t)pol->address_space, "RLIMIT_AS", err, errsize) < 0)
		return -1;
	return 0;
}

/* ---- Landlock ---- */

/* Access rights by ABI (linux/landlock.h of later kernels). */
#define LL_FS_ABI1      ((1ULL << 13) - 1)          /* EXECUTE .. MAKE_SYM */
#define LL_FS_REFER     (1ULL << 13)                /* ABI 2 */
#define LL_FS_TRUNCATE  (1ULL << 14)                /* ABI 3 */
#define LL_FS_IOCTL_DEV (1ULL << 15)                /* ABI 5 */
#define LL_NET_BIND     1ULL                        /* ABI 4: BIND_TCP */
#define LL_NET_ALL      3ULL                        /* ABI 4: BIND_TCP, CONNECT_TCP */
#define LL_SCOPE_ALL    3ULL                        /* ABI 6: abstract unix sockets, signals */
#define LL_READ         (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
/* Beneath a write directory: everything but executing and making device
 * nodes, FIFOs and sockets (the extractor skips those entries). */
#define LL_NOT_IN_WRITE (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_MAKE_CHAR | \
	LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SOCK | \
	LANDLOCK_ACCESS_FS_MAKE_FIFO | LL_FS_IOCTL_DEV)

/* struct landlock_ruleset_attr as of ABI 6; the kernel is given the size its
 * ABI knows. */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

int
wx_landlock_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
	    LANDLOCK_CREATE_RULESET_VERSION);
	return abi < 0 ? 0 : (int)abi;
}

static int
add_fd(int ruleset, int fd, uint64_t access, const char *what, char *err, size_t errsize)
{
	struct landlock_path_beneath_attr pb = { .allowed_access = access, .parent_fd = fd };
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
		return fail(err, errsize, "Landlock: rule for %s: %s", what, strerror(errno));
	return 0;
}

/* A read rule for path (a directory: beneath it; a file: that file); a
 * missing path is skipped. */
static int
add_path(int ruleset, const char *path, uint64_t access, char *err, size_t errsize)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : fail(err, errsize, "Landlock: open %s: %s", path,
		    strerror(errno));
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return fail(err, errsize, "Landlock: stat %s: %s", path, strerror(errno));
	}
	if (!S_ISDIR(sb.st_mode))
		access &= LANDLOCK_ACCESS_FS_READ_FILE;
	int rc = add_fd(ruleset, fd, access, path, err, errsize);
	close(fd);
	return rc;
}

static int
apply_landlock(const struct wx_confine_policy *pol, int abi, char *err, size_t errsize)
{
	struct ll_ruleset_attr attr = { .handled_access_fs = LL_FS_ABI1 };
	size_t size = sizeof attr.handled_access_fs;
	if (abi >= 2)
		attr.handled_access_fs |= LL_FS_REFER;
	if (abi >= 3)
		attr.handled_access_fs |= LL_FS_TRUNCATE;
	if (abi >= 4) {
		/* No rule: no TCP bind, and no connect unless left unhandled. */
		attr.handled_access_net = pol->tcp_connect ? LL_NET_BIND : LL_NET_ALL;
		size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 5)
		attr.handled_access_fs |= LL_FS_IOCTL_DEV;
	if (abi >= 6) {
		attr.scoped = LL_SCOPE_ALL;
		size = sizeof attr;
	}
	int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (rs < 0)
		return fail(err, errsize, "Landlock: create ruleset (ABI %d): %s", abi,
		    strerror(errno));
	int rc = -1;
	uint64_t handled = attr.handled_access_fs;
	for (int i = 0; i < pol->nwrite_fds; i++)
		if (add_fd(rs, pol->write_fds[i], handled & ~(uint64_t)LL_NOT_IN_WRITE,
		    "a write directory", err, errsize) < 0)
			goto out;
	for (const char *const *d = pol->read_dirs; d != NULL && *d != NULL; d++)
		if (add_path(rs, *d, LL_READ, err, errsize) < 0)
			goto out;
	if (syscall(SYS_landlock_restrict_self, rs, 0) < 0) {
		fail(err, errsize, "Landlock: restrict_self: %s", strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(rs);
	return rc;
}

/* ---- seccomp ---- */

/* What a parser that reads a pipe and writes files needs; everything else
 * fails with EPERM.  Names unknown on this architecture are skipped. */
static const char *const allowed_syscalls[] = {
	/* I/O on descriptors already open or opened beneath the write dirs */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"lseek", "close", "close_range", "dup", "dup2", "dup3", "fcntl", "ioctl",
	"poll", "ppoll", "select", "pselect6",
	"fsync", "fdatasync", "syncfs", "ftruncate", "truncate", "fallocate",
	/* write-behind of extracted files (handlers/destination/writebehind.h) */
	"sync_file_range", "sync_file_range2", "fadvise64", "fadvise64_64", "arm_fadvise64_64",
	/* files (Landlock decides where) */
	"open", "openat", "stat", "lstat", "fstat", "newfstatat", "statx", "statfs",
	"fstatfs", "access", "faccessat", "faccessat2", "getdents", "getdents64",
	"mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat",
	"renameat2", "symlink", "symlinkat", "link", "linkat", "readlink", "readlinkat",
	"chmod", "fchmod", "fchmodat", "chown", "lchown", "fchown", "fchownat",
	"utime", "utimes", "futimesat", "utimensat", "umask", "chdir", "fchdir", "getcwd",
	"getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr",
	"listxattr", "llistxattr", "flistxattr",
	/* memory */
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
	/* process, time, signals */
	"exit", "exit_group", "rt_sigreturn", "rt_sigprocmask", "rt_sigaction",
	"sigaltstack", "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid",
	"getegid", "getresuid", "getresgid", "getgroups", "clock_gettime", "clock_getres",
	"clock_nanosleep", "nanosleep", "gettimeofday", "time", "futex", "getrandom",
	"sched_yield", "sched_getaffinity", "getrusage", "uname", "sysinfo", "prlimit64",
	"getrlimit", "set_robust_list", "rseq", "restart_syscall",
};

/* Attempts that only an attacker makes: the process is killed (SIGSYS). */
static const char *const killed_syscalls[] = {
	"execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev",
	"socket", "socketpair",
};

/* The client profile: refused with EPERM (system administration, kernel
 * interfaces an unprivileged client never needs, io_uring, which would
 * bypass this filter). */
static const char *const client_refused[] = {
	"mount", "umount2", "pivot_root", "chroot", "swapon", "swapoff", "reboot",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"unshare", "setns", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
	"userfaultfd", "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"sethostname", "setdomainname", "iopl", "ioperm", "open_by_handle_at",
	"name_to_handle_at", "fanotify_init", "quotactl", "syslog", "vhangup", "mknod",
	"mknodat", "io_uring_setup", "io_uring_enter", "io_uring_register",
	"mount_setattr", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
};

/* ... and killed. */
static const char *const client_killed[] = {
	"execve", "execveat", "process_vm_readv", "process_vm_writev",
#ifndef WX_SANITIZERS
	"ptrace",       /* LeakSanitizer stops the threads with it at exit */
#endif
};

static int
add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name, char *err, size_t errsize)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0;
	int r = seccomp_rule_add(ctx, action, nr, 0);
	if (r < 0)
		return fail(err, errsize, "seccomp: rule for %s: %s", name, strerror(-r));
	return 0;
}

static int
add_rules(scmp_filter_ctx ctx, uint32_t action, const char *const *names, size_t n, char *err,
    size_t errsize)
{
	for (size_t i = 0; i < n; i++)
		if (add_rule(ctx, action, names[i], err, errsize) < 0)
			return -1;
	return 0;
}

#define NAMES(a) (a), sizeof (a) / sizeof *(a)

static int
parser_filter(scmp_filter_ctx ctx, char *err, size_t errsize)
{
	if (add_rules(ctx, SCMP_ACT_ALLOW, NAMES(allowed_syscalls), err, errsize) < 0 ||
	    add_rules(ctx, SCMP_ACT_KILL_PROCESS, NAMES(killed_syscalls), err, errsize) < 0)
		return -1;
	/* abort() signals itself; signals to other processes are refused. */
	const struct scmp_arg_cmp self = { .arg = 0, .op = SCMP_CMP_EQ,
		.datum_a = (scmp_datum_t)getpid(), .datum_b = 0 };
	int r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, &self);
	if (r == 0)
		r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, &self);
	if (r < 0)
		return fail(err, errsize, "seccomp: rule for tgkill/kill: %s", strerror(-r));
	return 0;
}

/* Socket families a client keeps: unix (syslog), inet, inet6, netlink
 * (getaddrinfo's AI_ADDRCONFIG). */
static bool
client_family(int family)
{
	return family == AF_UNIX || family == AF_INET || family == AF_INET6 ||
	    family == AF_NETLINK;
}

#define FAMILY_SCAN 64          /* above AF_MAX of any kernel so far */

static int
client_filter(scmp_filter_ctx ctx, char *err, size_t errsize)
{
	if (add_rules(ctx, SCMP_ACT_ERRNO(EPERM), NAMES(client_refused), err, errsize) < 0 ||
	    add_rules(ctx, SCMP_ACT_KILL_PROCESS, NAMES(client_killed), err, errsize) < 0)
		return -1;
	int r = 0;
	for (int f = 0; f < FAMILY_SCAN && r == 0; f++) {
		if (client_family(f))
			continue;
		const struct scmp_arg_cmp is = { .arg = 0, .op = SCMP_CMP_EQ,
			.datum_a = (scmp_datum_t)f, .datum_b = 0 };
		r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
		    &is);
	}
	if (r == 0) {
		const struct scmp_arg_cmp above = { .arg = 0, .op = SCMP_CMP_GE,
			.datum_a = FAMILY_SCAN, .datum_b = 0 };
		r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
		    &above);
	}
	if (r < 0)
		return fail(err, errsize, "seccomp: rule for socket: %s", strerror(-r));
	return 0;
}

static int
apply_seccomp(enum wx_seccomp_profile profile, char *err, size_t errsize)
{
	scmp_filter_ctx ctx = seccomp_init(profile == WX_SECCOMP_CLIENT ? SCMP_ACT_ALLOW :
	    SCMP_ACT_ERRNO(EPERM));
	if (ctx == NULL)
		return fail(err, errsize, "seccomp: cannot set up a filter");
	int rc = -1;
	if ((profile == WX_SECCOMP_CLIENT ? client_filter : parser_filter)(ctx, err, errsize) < 0)
		goto out;
	int r = seccomp_load(ctx);
	if (r < 0) {
		fail(err, errsize, "seccomp: load: %s", strerror(-r));
		goto out;
	}
	rc = 0;
out:
	seccomp_release(ctx);
	return rc;
}

int
wx_confine(const struct wx_confine_policy *pol, struct wx_confine_report *rep, char *err,
    size_t errsize)
{
	memset(rep, 0, sizeof *rep);
	char missing[256] = "";
	if (apply_rlimits(pol, err, errsize) < 0)
		return -1;
	rep->rlimits = true;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail(err, errsize, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	rep->no_new_privs = true;

	int abi = wx_landlock_abi();
	int abi_errno = errno;
	if (abi > 0) {
		if (apply_landlock(pol, abi, err, errsize) < 0)
			return -1;
		rep->landlock_abi = abi;
	} else {
		snprintf(missing, sizeof missing, "Landlock (%s)", abi_errno == EOPNOTSUPP ?
		    "disabled at boot: add landlock to lsm=" : "not in this kernel");
	}

	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) {
		size_t n = strlen(missing);
		snprintf(missing + n, sizeof missing - n, "%sseccomp (not in this kernel)",
		    n ? ", " : "");
	} else {
		if (apply_seccomp(pol->seccomp, err, errsize) < 0)
			return -1;
		rep->seccomp = true;
	}
	if (missing[0] != '\0')
		wx_warn("confinement: not available, skipped: %s; applied: no_new_privs, rlimits%s",
		    missing, rep->seccomp ? ", seccomp" : rep->landlock_abi ? ", Landlock" : "");
	return 0;
}
