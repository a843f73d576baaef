/*
 * The push worker's confinement (issue 17, docs/security.md): the process
 * that reads the customer's tree and parses what the destination and the
 * panel answer keeps only what that needs.
 *
 * - resource limits: no core dumps, open files and address space bounded;
 * - uid 0 stays (the state directory and its records belong to root), but
 *   of root's capabilities only CAP_DAC_READ_SEARCH (read the customer's
 *   files whatever their modes);
 * - Landlock: read only the server's directory, its backups and install
 *   log, /usr, the TLS and name-service files of /etc and the configured
 *   CA files; write only beneath the state directory; no TCP bind;
 * - seccomp, the client profile (confine.h): no execve, ptrace, module,
 *   mount, namespace or key calls, only unix/inet/inet6/netlink sockets.
 *
 * Hooks are never run from here: the supervisor runs hooks.stop for the
 * worker (stop.c).  A supervised worker also wipes the node token: the
 * supervisor delivers its failure report to the panel (outcome.c).  Must
 * be called while the process has one thread (Landlock, capabilities and
 * seccomp apply to the calling thread and the threads it starts after).
 */
#include "autoconf.h"

#include "push.h"
#include "config.h"
#include "confine.h"
#include "freed_fill.h"
#include "log.h"
#include "util.h"
#include "walk.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Read by libc, OpenSSL and libcurl after the worker is confined. */
static const char *const system_reads[] = {
	"/usr",                         /* libraries, CA certificates, zone info */
	"/etc/ssl",                     /* openssl.cnf, the CA store */
	"/etc/ca-certificates",
	"/etc/pki",
	"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf",
	"/etc/gai.conf", "/etc/services", "/etc/protocols", "/etc/ld.so.cache",
	"/etc/localtime",
	"/sys/devices/system/cpu",      /* the number of CPUs (compression threads) */
#ifdef WX_SANITIZERS
	"/proc/self",                   /* ASan reads its maps to report */
#endif
};

#define SYSTEM_READS (sizeof system_reads / sizeof *system_reads)
#define JOB_READS 4                    /* tree, backups, install log, transfers.ca_file */
/* Open files: one directory per level of the deepest tree the walk takes,
 * and room for sockets, the spool, logs and the file being read. */
#define WORKER_NOFILE (WALK_MAX_DEPTH + 512)
/* Address space: each of glibc's thread arenas reserves 128 MiB and each
 * thread stack 8 MiB; the worker uses tens of MiB.  No bound under ASan,
 * whose shadow reserves terabytes. */
#ifdef WX_SANITIZERS
#define WORKER_AS 0
#else
#define WORKER_AS (8LL << 30)
#endif

/* The number of threads of this process, or -1. */
static int
threads(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (f == NULL)
		return -1;
	char line[256];
	int n = -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "Threads:", 8) == 0) {
			int64_t v;
			line[strcspn(line, "\n")] = '\0';
			if (wx_parse_i64(line + 8 + strspn(line + 8, " \t"), 1, 1 << 20, &v) == NULL)
				n = (int)v;
		}
	fclose(f);
	return n;
}

int
push_sandbox_enter(struct job *job, char *err, size_t errsize)
{
	const struct wx_config *cfg = job->cfg;
	int n = threads();
	if (n != 1) {
		snprintf(err, errsize, "the worker must be confined while it has one thread "
		    "(it has %d)", n);
		return -1;
	}
	tzset();                        /* /etc/localtime read now, not on the first log */
	int nconn = cfg->transfers.connect_to.count;
	size_t nreads = SYSTEM_READS + JOB_READS + (size_t)nconn + 1;
	const char **reads = xcalloc(nreads, sizeof *reads);
	/* Where body.c looks for them (config.c always sets both directories). */
	char *backups = xasprintf("%s/%s", cfg->backup_directory, job->uuid);
	char *install_log = xasprintf("%s/install/%s.log", cfg->log_directory, job->uuid);
	size_t i = 0;
	reads[i++] = job->server_dir;
	reads[i++] = backups;
	reads[i++] = install_log;
	if (cfg->transfers.ca_file != NULL && cfg->transfers.ca_file[0] != '\0')
		reads[i++] = cfg->transfers.ca_file;
	for (int k = 0; k < nconn; k++)
		if (cfg->transfers.connect_to.items[k].ca_file != NULL)
			reads[i++] = cfg->transfers.connect_to.items[k].ca_file;
	for (size_t k = 0; k < SYSTEM_READS; k++)
		reads[i++] = system_reads[k];
	reads[i] = NULL;

	int rc = -1;
	int state_fd = open(job->st.dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (state_fd < 0) {
		snprintf(err, errsize, "state directory %s: %s", job->st.dir, strerror(errno));
		goto out;
	}
	if (wx_keep_caps(1ULL << CAP_DAC_READ_SEARCH, err, errsize) < 0)
		goto out;
	struct wx_confine_policy pol = {
		.write_fds = &state_fd,
		.nwrite_fds = 1,
		.read_dirs = reads,
		.nofile = WORKER_NOFILE,
		.address_space = WORKER_AS,
		.seccomp = WX_SECCOMP_CLIENT,
		.tcp_connect = true,
	};
	struct wx_confine_report rep;
	if (wx_confine(&pol, &rep, err, errsize) < 0)
		goto out;
	wx_debug("push worker confined: uid %d, Landlock ABI %d, seccomp %s", (int)geteuid(),
	    rep.landlock_abi, rep.seccomp ? "on" : "off");
	rc = 0;
out:
	if (state_fd >= 0)
		close(state_fd);
	free(install_log);
	free(backups);
	free(reads);
	return rc;
}

int
push_confine(struct job *job, char *why, size_t whysize)
{
	char err[600];
	if (push_sandbox_enter(job, err, sizeof err) == 0) {
		/* The panel's key to this node: the supervisor reports to the
		 * panel.  main.c read the config with freed memory overwritten;
		 * wx_scrub_freed clears what glibc kept unfilled. */
		if (job->broker_fd >= 0) {
			wx_config_wipe_token(job->cfg);
			wx_scrub_freed();
		}
		return 0;
	}
	wx_err("confinement: %s", err);
	snprintf(why, whysize, "This node could not confine its push worker (%s); nothing was "
	    "sent.", err);
	return -1;
}
