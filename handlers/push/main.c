/*
 * wingxfer-push: streams one outgoing transfer.  Started detached by
 * wingxfer-source (which passes the transfer's lock on --lock-fd and the
 * token on --token-fd), or by hand from a terminal.
 */
#include "autoconf.h"

#include "push.h"
#include "config.h"
#include "freed_fill.h"
#include "fsutil.h"
#include "log.h"
#include "presync.h"
#include "priority.h"
#include "program.h"
#include "util.h"
#include "uuid.h"
#include "walk.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CANCEL_POLL_MS 250

static const char help[] =
"NAME\n"
"    wingxfer-push - stream one server to its destination node\n"
"\n"
"SYNOPSIS\n"
"    wingxfer-push [--config FILE] [--url URL] [--backup UUID]... [--token-file FILE] UUID\n"
"    wingxfer-push [--config FILE] --resume UUID\n"
"    wingxfer-push --check-config | --help | --version\n"
"\n"
"DESCRIPTION\n"
"    The worker of an outgoing transfer.  wingxfer-source starts it detached\n"
"    when the panel POSTs /api/servers/<uuid>/transfer.  It holds the\n"
"    transfer's lock for its whole life, checks the destination (the\n"
"    preflight, below), runs the stop hook, walks\n"
"    <system.data>/<uuid> (never following symlinks), archives it as tar.gz\n"
"    and streams it, with the requested backups and the install log, as one\n"
"    chunked multipart POST to the destination.  The destination's answer\n"
"    200 or 202 completes the transfer (the destination tells the panel);\n"
"    anything else, a cancel or a timeout fails it, and the panel is told\n"
"    through the outbox.\n"
"\n"
"    To a wingxfer destination that names \"chunked\" in its capabilities\n"
"    (and with system.transfers.chunked auto) the same body goes as a\n"
"    resumable upload (docs/protocol.md): PATCH requests of at most\n"
"    system.transfers.chunk_size, each checked by its SHA-256, resumed from\n"
"    the destination's offset after a cut link, a 5xx or a lost answer\n"
"    (system.transfers.resume_attempts, resume_window); a 413 halves the\n"
"    chunk size.  The process holding the lock supervises the worker: a\n"
"    worker killed by a signal is started again (at most 3 times) and\n"
"    resumes the upload.\n"
"\n"
"    To a wingxfer destination that also names \"presync\" (and with\n"
"    system.transfers.presync auto and the preflight on) the server is copied\n"
"    while it runs (docs/presync.md): round 1 sends the whole tree, each later\n"
"    round only what changed since the one before (new, changed, deleted and\n"
"    renamed entries; changed 64 KiB blocks of big files; the tail of files\n"
"    that grew).  When a round sent less than presync_threshold, did not\n"
"    shrink, or presync_max_rounds were made, the stop hook runs and a final\n"
"    round sends what changed until then.  The destination applies and\n"
"    verifies every round against the source's manifest and installs only\n"
"    after the final one.  A cancel or failure before the stop leaves the\n"
"    server running; a worker that dies is not started again (its rounds\n"
"    cannot be made again) and the transfer fails.\n"
"\n"
"    A destination whose OPTIONS answer has no X-Wingxfer-Capabilities is Go\n"
"    Wings, which would store hard links and symlinks as empty files: it is\n"
"    sent every hard-linked file whole under each name, and no symlinks (a\n"
"    warning names the first few and gives the count).\n"
"\n"
"    The preflight (system.transfers.preflight, on by default), before the\n"
"    stop hook: the destination must answer OPTIONS with TLS verified\n"
"    (connection failures and 502/503/504 are retried twice with backoff),\n"
"    and a wingxfer destination naming \"preflight\" in its capabilities must\n"
"    answer 200 to POST <url>/preflight?size=<bytes> with the token: it\n"
"    checks the token without spending it, room for the server's size above\n"
"    its disk_reserve, and that no data or running transfer of the server is\n"
"    in the way.  On any refusal the server is not stopped, the transfer\n"
"    fails with the reason, and the panel is told once.\n"
"\n"
"    Two processes do the work.  The supervisor, which holds the lock, stays\n"
"    root and runs hooks.stop (and hooks.kill) when the worker asks.  The\n"
"    worker, before it contacts the destination, keeps uid 0 with only\n"
"    CAP_DAC_READ_SEARCH and confines itself: no_new_privs, Landlock (reads\n"
"    only the server's directory, its backups and install log, /usr, TLS and\n"
"    resolver files, the CA files; writes only the state directory) and a\n"
"    seccomp filter (no execve, ptrace, mount, ...).  What the kernel lacks\n"
"    is skipped with a warning; what fails to apply fails the transfer before\n"
"    anything is sent.  The worker also wipes the node token: the supervisor\n"
"    delivers a failure report to the panel once the worker has exited\n"
"    (docs/security.md).\n"
"\n"
"    Run by hand it takes the lock itself (refusing when a transfer of the\n"
"    server is running) and prints its progress on the terminal.  Without\n"
"    --url it sends to the destination of the server's last recorded outgoing\n"
"    transfer.  The token is never stored by wingxfer: give it again.\n"
"\n"
"    --resume goes on with the chunked upload of the server's active outgoing\n"
"    transfer whose worker is gone (the node restarted, the worker and its\n"
"    supervisor were killed): no token is needed (the upload has its own\n"
"    secret, kept in the 0600 record), the server is not stopped again, and\n"
"    the upload continues from the destination's acknowledged offset.\n"
"    wingxfer-watchdog does this by itself for a transfer whose last\n"
"    progress is less than system.transfers.resume_window ago.\n"
"\n"
"OPTIONS\n"
"    --url URL          the destination's transfer endpoint\n"
"                       (https://node2.example.com:8080/api/transfers)\n"
"    --token-file FILE  file holding the transfer token as the panel sends it\n"
"                       (\"Bearer <jwt>\"); - reads it from standard input\n"
"    --backup UUID      also send this local backup (repeatable); by default the\n"
"                       backups of the recorded transfer\n"
"    --resume           go on with the recorded chunked upload (above)\n"
"    --lock-fd N, --token-fd N   used by wingxfer-source (--lock-fd also by\n"
"                       wingxfer-watchdog with --resume)\n"
"    --config FILE      the node's config.yml (after $WINGXFER_CONFIG)\n"
"    --check-config     print the effective configuration and exit\n"
"    --help, --version\n"
"\n"
"FILES\n"
"    <state>/transfers/<uuid>.json     the record (GET /api/servers/<uuid>/transfer)\n"
"    <state>/transfers/<uuid>.events   progress in Wings' words\n"
"    <state>/transfers/<uuid>.log      this worker's log when started by\n"
"                                      wingxfer-source (unless syslog is configured)\n"
"    <state>/bandwidth-upload          the node's upload_limit bucket, shared by\n"
"                                      every worker\n"
"\n"
"EXIT STATUS\n"
"    0 the destination accepted the server; 1 the transfer failed (or could not\n"
"    start); 2 usage error; 3 cancelled or stopped by a signal.\n"
"\n"
"EXAMPLES\n"
"    wingxfer-push --url https://node2.example.com:8080/api/transfers \\\n"
"      --token-file /root/jwt.txt 0b2a1c3d-1111-4222-8333-444455556666\n";

static volatile sig_atomic_t stop_signal;

static void
on_stop_signal(int sig)
{
	stop_signal = sig;
	wx_stop_requested = 1;
}

static void
on_cancel_signal(int sig)
{
	(void)sig;
	wx_interrupted = 1;
}

static void
install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_stop_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_cancel_signal;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static int
parse_fd(const char *arg, int *out)
{
	int64_t v;
	const char *why = wx_parse_i64(arg, 3, 1 << 20, &v);
	if (why != NULL) {
		fprintf(stderr, "wingxfer-push: fd '%s' %s\n", arg, why);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int
on_opt(int opt, const char *arg, void *ctx)
{
	struct push_opts *o = ctx;
	char canon[37];
	switch (opt) {
	case 'L':
		return parse_fd(arg, &o->lock_fd);
	case 'T':
		return parse_fd(arg, &o->token_fd);
	case 'F':
		o->token_file = arg;
		return 0;
	case 'U':
		o->url = arg;
		return 0;
	case 'R':
		o->resume = true;
		return 0;
	case 'B':
		if (wx_uuid_normalize(arg, canon) < 0) {
			fprintf(stderr, "wingxfer-push: --backup '%s' is not a backup UUID\n", arg);
			return -1;
		}
		if (o->backups == NULL)
			o->backups = json_object_new_array();
		json_object_array_add(o->backups, json_object_new_string(canon));
		return 0;
	}
	return -1;
}

bool
job_should_stop(struct job *job)
{
	if (job->stop != JOB_RUNNING)
		return true;
	if (wx_stop_requested) {
		job->stop = JOB_SIGNALLED;
		job->stop_signal = stop_signal;
		return true;
	}
	int64_t now = wx_mono_ms();
	if (!wx_interrupted && now < job->next_cancel_check_ms)
		return false;
	wx_interrupted = 0;
	job->next_cancel_check_ms = now + CANCEL_POLL_MS;
	if (!wx_cancel_requested(&job->st, job->uuid, job->cancel_why, sizeof job->cancel_why))
		return false;
	job->stop = JOB_CANCELLED;
	job->rec.status = WX_ST_CANCELLING;
	job_status(job, "cancelling");
	job_save(job);
	return true;
}

bool
job_pace_stop(void *ctx)
{
	return job_should_stop(ctx);
}

static bool
stop_poll(void *ctx)
{
	return job_should_stop(ctx);
}

/* The size walk into the job's totals.  0, or -1 with why set (or job->stop). */
static int
measure(struct job *job, char *why, size_t whysize)
{
	job_phase(job, WX_PHASE_SCANNING);
	char err[1024];
	struct walk_totals wt;
	if (walk_measure(job->server_dir, &wt, stop_poll, job, err, sizeof err) < 0) {
		if (job->stop == JOB_RUNNING)
			snprintf(why, whysize, "Failed to get archive for transfer: %s.", err);
		return -1;
	}
	job->progress.bytes_total = wt.bytes;
	job->progress.files_total = wt.entries;
	job->peer.walk_symlinks = wt.symlinks;      /* peer_decide adjusts the totals */
	job->peer.walk_link_bytes = wt.link_bytes;
	return 0;
}

static enum outcome
outcome_of(enum upload_result r)
{
	switch (r) {
	case UPLOAD_PUSHED:
		return OUT_COMPLETED;
	case UPLOAD_STOPPED:
		return OUT_STOPPED;
	default:
		return OUT_FAILED;
	}
}

static enum outcome
run(struct job *job, char *why, size_t whysize)
{
	job->rec.pid = getpid();
	job->rec.status = WX_ST_PROCESSING;
	job->rec.progress_at = wx_now();
	job_phase(job, WX_PHASE_PREPARING);
	job_log(job, "Preparing to stream server data to destination...");
	job_status(job, "processing");
	/* Supervised: confined before it asks anything of the destination (the
	 * supervisor runs the stop hook); otherwise right after the hook. */
	if (job->broker_fd >= 0 && push_confine(job, why, whysize) < 0)
		return OUT_FAILED;
	struct stat sb;
	if (stat(job->server_dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(why, whysize, "The server's data directory %s is gone.", job->server_dir);
		return OUT_FAILED;
	}
	if (job_should_stop(job))
		return OUT_STOPPED;
	/* The preflight asks the destination for room for the size the walk
	 * finds while the server runs; the walk after the stop gives the totals
	 * of what is archived. */
	if (job->cfg->transfers.preflight) {
		if (measure(job, why, whysize) < 0)
			return job->stop != JOB_RUNNING ? OUT_STOPPED : OUT_FAILED;
		switch (preflight_run(job, job->progress.bytes_total, why, whysize)) {
		case PREFLIGHT_OK:
			break;
		case PREFLIGHT_STOPPED:
			return OUT_STOPPED;
		default:
			return OUT_FAILED;
		}
	}
	if (presync_choose(job)) {
		/* extra.presync marks the record: its rounds cannot be made again,
		 * so a worker that dies is not restarted to resume (supervise.c). */
		if (job->rec.extra == NULL)
			job->rec.extra = json_object_new_object();
		json_object_object_add(job->rec.extra, "presync", json_object_new_object());
		job_log(job, "The server keeps running while its files are copied (pre-sync); it is "
		    "stopped only for a short final round of what changed.");
		job_save(job);
		return outcome_of(upload_run(job, why, whysize));
	}
	if (stop_via_supervisor(job, why, whysize) < 0)
		return job->stop != JOB_RUNNING ? OUT_STOPPED : OUT_FAILED;
	if (measure(job, why, whysize) < 0)
		return job->stop != JOB_RUNNING ? OUT_STOPPED : OUT_FAILED;
	return outcome_of(upload_run(job, why, whysize));
}

/* A worker started again by its supervisor: the chunked upload of the record goes on. */
static enum outcome
resume(struct job *job, char *why, size_t whysize)
{
	wx_record_clear(&job->rec);
	if (wx_record_load(&job->st, job->uuid, &job->rec) < 0) {
		snprintf(why, whysize, "The transfer record could not be read again: %s.",
		    strerror(errno));
		return OUT_FAILED;
	}
	job->rec.pid = getpid();
	job_log(job, "The push worker was started again after it died; the upload resumes.");
	if (push_confine(job, why, whysize) < 0)
		return OUT_FAILED;
	if (job_should_stop(job))
		return OUT_STOPPED;
	if (measure(job, why, whysize) < 0)
		return job->stop != JOB_RUNNING ? OUT_STOPPED : OUT_FAILED;
	return outcome_of(upload_resume(job, why, whysize));
}

static void
job_free(struct job *job)
{
	wx_free_secret(job->token);
	wx_free_secret(job->request_url);
	json_object_put(job->backups);
	peer_free(&job->peer);
	presync_free(job->presync);
	wx_record_clear(&job->rec);
	free(job->server_dir);
	wx_state_close(&job->st);
	wx_config_free(job->cfg);
	if (job->broker_fd >= 0)
		close(job->broker_fd);
	curl_slist_free_all(job->connect_to);
}

int
main(int argc, char **argv)
{
	static const struct option extra[] = {
		{ "lock-fd", required_argument, NULL, 'L' },
		{ "token-fd", required_argument, NULL, 'T' },
		{ "token-file", required_argument, NULL, 'F' },
		{ "url", required_argument, NULL, 'U' },
		{ "backup", required_argument, NULL, 'B' },
		{ "resume", no_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct push_opts o = { .lock_fd = -1, .token_fd = -1 };
	wx_log_init("wingxfer-push");
	struct wx_cli cli = { .name = "wingxfer-push", .help = help, .extra_opts = extra,
		.on_opt = on_opt, .ctx = &o };
	int first = wx_cli_parse(&cli, argc, argv);
	if (cli.check_config)
		return wx_check_config(cli.config_arg);
	struct job job;
	memset(&job, 0, sizeof job);
	job.lock_fd = -1;
	job.broker_fd = -1;
	if (argc - first != 1 || wx_uuid_normalize(argv[first], job.uuid) < 0) {
		fprintf(stderr, "wingxfer-push: expected exactly one argument, the server's UUID\n"
		    "Try 'wingxfer-push --help'.\n");
		return EXIT_USAGE;
	}
	if (o.resume && (o.url != NULL || o.token_file != NULL || o.token_fd >= 0 ||
	    o.backups != NULL)) {
		fprintf(stderr, "wingxfer-push: --resume takes no --url, --token-file, --token-fd "
		    "or --backup: the record has them\n");
		json_object_put(o.backups);
		return EXIT_USAGE;
	}
	if (!o.resume && o.lock_fd >= 0 && (o.url != NULL || o.token_file != NULL ||
	    o.token_fd < 0)) {
		fprintf(stderr, "wingxfer-push: --lock-fd goes with --token-fd only (as "
		    "wingxfer-source starts it)\n");
		return EXIT_USAGE;
	}
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		(void)setlocale(LC_CTYPE, "");
	install_signals();
	wx_log_set_transfer(job.uuid);
	job.tty = o.lock_fd < 0 && isatty(2);
	/* Every buffer freed while the config is read is overwritten, so that
	 * the worker, a fork of this process, holds no stale copy of the node
	 * token after it wipes the live one (sandbox.c). */
	wx_fill_freed(true);
	job.cfg = wx_cli_load_config(cli.config_arg);
	wx_fill_freed(false);
	if (job.cfg == NULL)
		return EXIT_FAILED;
	/* Before any thread or hook starts: they inherit it.  Not restored: the
	 * worker exists for this transfer only. */
	struct wx_priority prio;
	wx_priority_lower(job.cfg, &prio);
	int code = EXIT_FAILED;
	char err[1024];
	if (wx_state_open(&job.st, job.cfg->transfers.state_directory, err, sizeof err) < 0) {
		wx_err("%s", err);
		goto out;
	}
	if (setup_lock(&job, &o) < 0)
		goto out;
	if (!o.resume)
		job.token = setup_token(&o, &job.request_url);
	if ((!o.resume && job.token == NULL) || setup_record(&job, &o) < 0)
		goto out;
	job.server_dir = wx_path_join(job.cfg->data_directory, job.uuid);
	job.codec = WX_COMPRESS_GZIP;  /* until the destination says it reads zstd (upload.c) */
	int worker = supervise(&job, &code);
	if (worker < 0)
		goto out;  /* the supervisor: its worker ended */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		wx_err("libcurl failed to initialise");
		goto out;
	}
	char why[1200] = "";
	enum outcome out = worker == 0 && !o.resume ? run(&job, why, sizeof why) :
	    resume(&job, why, sizeof why);
	if (job.curl != NULL)
		curl_easy_cleanup(job.curl);  /* the preflight's, when the upload never took it */
	job.curl = NULL;
	code = outcome_finish(&job, out, why);
	wx_cancel_clear(&job.st, job.uuid);
	curl_global_cleanup();
out:
	if (job.lock_fd >= 0)
		close(job.lock_fd);  /* last: the record is final before the lock is free */
	json_object_put(o.backups);
	job_free(&job);
	return code;
}
