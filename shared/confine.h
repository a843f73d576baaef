/*
 * Least privilege for a process about to parse bytes from another machine
 * (issue 17, docs/security.md): give up root, then confine the process so a
 * memory bug in a parser cannot reach beyond the directories it writes.
 *
 * wx_drop_to() changes the uid/gid (a no-op when not root); wx_confine()
 * applies, in this order, resource limits, PR_SET_NO_NEW_PRIVS, Landlock and
 * a seccomp allow-list.  A piece the kernel does not offer (Landlock not
 * built in or disabled, seccomp not built in) is skipped with one log line
 * naming it; a piece the kernel offers but that fails to apply is an error:
 * the caller must not go on parsing (fail closed).
 */
#ifndef WX_CONFINE_H
#define WX_CONFINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Which system calls the confined process keeps.
 *  WX_SECCOMP_PARSER: an allow-list for a process that reads a pipe and
 *    writes files (the destination's extractor): no sockets, no fork, no
 *    signals to others; everything not listed fails with EPERM.
 *  WX_SECCOMP_CLIENT: a deny-list for a process that reads files and talks
 *    to other machines (the push worker: TLS, DNS, threads): what only an
 *    attacker does is refused (module, mount, namespace, key, BPF, reboot,
 *    clock, swap calls ... EPERM; socket families other than unix, inet,
 *    inet6 and netlink EAFNOSUPPORT), and the rest allowed.
 * Both kill the process (SIGSYS) on execve, execveat, ptrace and
 * process_vm_readv/writev (ptrace is left to ASan's leak checker in
 * WX_SANITIZERS builds of the client profile, which traces itself at exit).
 */
enum wx_seccomp_profile { WX_SECCOMP_PARSER = 0, WX_SECCOMP_CLIENT };

/* What the confined process keeps. */
struct wx_confine_policy {
	const int *write_fds;           /* directories, opened before any drop: read,
	                                 * create, write, remove and rename beneath each */
	int nwrite_fds;
	const char *const *read_dirs;   /* NULL-terminated: read files and list dirs beneath;
	                                 * a regular file named here may be read; a path
	                                 * that does not exist is skipped */
	int nofile;                     /* RLIMIT_NOFILE (and above every fd kept); 0: left */
	int64_t address_space;          /* RLIMIT_AS in bytes; 0: left alone (ASan builds) */
	enum wx_seccomp_profile seccomp;
	bool tcp_connect;               /* Landlock ABI 4+: TCP connect allowed (bind never) */
};

/* What wx_confine() put in place (for the log line and the tests). */
struct wx_confine_report {
	int landlock_abi;               /* 0: Landlock not applied */
	bool seccomp;
	bool no_new_privs;
	bool rlimits;
};

/*
 * Switches to uid/gid for good: setgroups to gid alone, setresgid,
 * setresuid, each checked, then checks that root cannot be regained.  When
 * the process is not root, nothing changes and 0 is returned (the tests run
 * the programs as an ordinary user).  A process that stays uid 0 (uid 0
 * asked for, or uid or gid < 0: system.user unknown) drops every
 * capability instead.  -1 with err filled on failure.
 */
int wx_drop_to(int64_t uid, int64_t gid, char *err, size_t errsize);

/*
 * A root process keeps only the capabilities in mask (bits 1 << CAP_x) in
 * its effective and permitted sets, none inheritable or ambient, and drops
 * the others from its bounding set; its uid stays 0 (it still owns root's
 * files: the confinement decides which it may touch).  A process that is
 * not root is left alone.  0, or -1 with err filled.
 */
int wx_keep_caps(uint64_t mask, char *err, size_t errsize);

/*
 * Confines the calling process for good (see the header comment).  0, or -1
 * with err filled when a piece the kernel offers could not be applied.
 */
int wx_confine(const struct wx_confine_policy *pol, struct wx_confine_report *rep, char *err,
    size_t errsize);

/* The Landlock ABI the kernel offers; 0 when none. */
int wx_landlock_abi(void);

#endif
