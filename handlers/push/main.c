/*
 * wingxfer-push: streams one outgoing transfer.  Started detached by
 * wingxfer-source (which passes the transfer's lock on --lock-fd and the
 * token on --token-fd), or by hand from a terminal.
 */
#include "autoconf.h"

#include "push.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "panel.h"
#include "program.h"
#include "util.h"
#include "uuid.h"
#include "walk.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define CANCEL_POLL_MS 250
#define MAX_TOKEN (64 * 1024)

enum exit_code { EXIT_COMPLETED = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_CANCELLED = 3 };

static const char help[] =
"NAME\n"
"    wingxfer-push - stream one server to its destination node\n"
"\n"
"SYNOPSIS\n"
"    wingxfer-push [--config FILE] [--url URL] [--backup UUID]... [--token-file FILE] UUID\n"
"    wingxfer-push --check-config | --help | --version\n"
"\n"
"DESCRIPTION\n"
"    The worker of an outgoing transfer.  wingxfer-source starts it detached\n"
"    when the panel POSTs /api/servers/<uuid>/transfer.  It holds the\n"
"    transfer's lock for its whole life, runs the stop hook, walks\n"
"    <system.data>/<uuid> (never following symlinks), archives it as tar.gz\n"
"    and streams it, with the requested backups and the install log, as one\n"
"    chunked multipart POST to the destination.  The destination's answer\n"
"    200 or 202 completes the transfer (the destination tells the panel);\n"
"    anything else, a cancel or a timeout fails it, and the panel is told\n"
"    through the outbox.\n"
"\n"
"    Run by hand it takes the lock itself (refusing when a transfer of the\n"
"    server is running) and prints its progress on the terminal.  Without\n"
"    --url it sends to the destination of the server's last recorded outgoing\n"
"    transfer.  The token is never stored by wingxfer: give it again.\n"
"\n"
"OPTIONS\n"
"    --url URL          the destination's transfer endpoint\n"
"                       (https://node2.example.com:8080/api/transfers)\n"
"    --token-file FILE  file holding the transfer token as the panel sends it\n"
"                       (\"Bearer <jwt>\"); - reads it from standard input\n"
"    --backup UUID      also send this local backup (repeatable); by default the\n"
"                       backups of the recorded transfer\n"
"    --lock-fd N, --token-fd N   used by wingxfer-source\n"
"    --config FILE      the node's config.yml (after $WINGXFER_CONFIG)\n"
"    --check-config     print the effective configuration and exit\n"
"    --help, --version\n"
"\n"
"FILES\n"
"    <state>/transfers/<uuid>.json     the record (GET /api/servers/<uuid>/transfer)\n"
"    <state>/transfers/<uuid>.events   progress in Wings' words\n"
"    <state>/transfers/<uuid>.log      this worker's log when started by\n"
"                                      wingxfer-source (unless syslog is configured)\n"
"\n"
"EXIT STATUS\n"
"    0 the destination accepted the server; 1 the transfer failed (or could not\n"
"    start); 2 usage error; 3 cancelled or stopped by a signal.\n"
"\n"
"EXAMPLES\n"
"    wingxfer-push --url https://node2.example.com:8080/api/transfers \\\n"
"      --token-file /root/jwt.txt 0b2a1c3d-1111-4222-8333-444455556666\n";

struct opts {
	int lock_fd;
	int token_fd;
	const char *token_file;
	const char *url;
	json_object *backups;   /* from --backup, or NULL */
};

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
	struct opts *o = ctx;
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
	if (!wx_cancel_requested(&job->st, job->uuid))
		return false;
	job->stop = JOB_CANCELLED;
	job->rec.status = WX_ST_CANCELLING;
	job_status(job, "cancelling");
	job_save(job);
	return true;
}

static bool
stop_poll(void *ctx)
{
	return job_should_stop(ctx);
}

/* Reads the token from fd (then closes it); NULL with a message on stderr. */
static char *
read_token(int fd, const char *from)
{
	char *buf = xmalloc(MAX_TOKEN + 1);
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, MAX_TOKEN + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			wx_err("cannot read the transfer token from %s: %s", from, strerror(errno));
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > MAX_TOKEN) {
			wx_err("the transfer token from %s is longer than %d bytes", from, MAX_TOKEN);
			free(buf);
			return NULL;
		}
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	bool good = strncmp(buf, "Bearer ", 7) == 0 && len > 7;
	for (size_t i = 0; good && i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			good = false;
	if (!good) {
		wx_err("the transfer token from %s must be one line \"Bearer <jwt>\", as the panel "
		    "sends it", from);
		memset(buf, 0, len);
		free(buf);
		return NULL;
	}
	return buf;
}

static char *
get_token(const struct opts *o)
{
	if (o->token_fd >= 0) {
		char *t = read_token(o->token_fd, "--token-fd");
		close(o->token_fd);
		return t;
	}
	if (o->token_file == NULL) {
		wx_err("no transfer token: pass --token-file FILE (or - for standard input) with "
		    "the \"Bearer <jwt>\" the panel issued; wingxfer never stores it");
		return NULL;
	}
	if (strcmp(o->token_file, "-") == 0)
		return read_token(0, "standard input");
	int fd = open(o->token_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		wx_err("cannot open --token-file %s: %s", o->token_file, strerror(errno));
		return NULL;
	}
	char *t = read_token(fd, o->token_file);
	close(fd);
	return t;
}

/* Confirms that fd is this transfer's lock file and that we hold its lock. */
static int
adopt_lock(struct job *job, int fd)
{
	char *path = wx_state_file(&job->st, job->uuid, ".lock");
	struct stat a, b;
	int rc = -1;
	if (fstat(fd, &a) < 0)
		wx_err("--lock-fd %d is not open: %s", fd, strerror(errno));
	else if (stat(path, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		wx_err("--lock-fd %d is not the lock file %s", fd, path);
	else if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		wx_err("--lock-fd %d does not hold the lock of %s: %s", fd, path, strerror(errno));
	else if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		wx_err("--lock-fd %d: %s", fd, strerror(errno));
	else
		rc = 0;
	free(path);
	return rc;
}

static int
take_lock(struct job *job)
{
	switch (wx_lock_try(&job->st, job->uuid, &job->lock_fd)) {
	case WX_LOCK_ACQUIRED:
		return 0;
	case WX_LOCK_BUSY:
		wx_err("a transfer of server %s is already running on this node (its lock %s/%s.lock "
		    "is held); cancel it with DELETE /api/servers/%s/transfer first", job->uuid,
		    job->st.transfers, job->uuid, job->uuid);
		return -1;
	default:
		wx_err("cannot take the lock of server %s: %s", job->uuid, strerror(errno));
		return -1;
	}
}

/* Started by the handler: stderr (/dev/null) becomes <uuid>.log unless syslog is used. */
static void
log_to_file(struct job *job)
{
	if (job->cfg->transfers.syslog_facility != NULL)
		return;
	char *path = wx_state_file(&job->st, job->uuid, ".log");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
	free(path);
}

static void
remove_state_file(struct job *job, const char *suffix)
{
	char *path = wx_state_file(&job->st, job->uuid, suffix);
	(void)unlink(path);
	free(path);
}

/* The record the spawned worker continues: the handler's "pending" one. */
static int
load_pending(struct job *job)
{
	if (wx_record_load(&job->st, job->uuid, &job->rec) < 0) {
		wx_err("cannot read the transfer record of %s: %s", job->uuid, strerror(errno));
		return -1;
	}
	if (job->rec.role != WX_ROLE_SOURCE || job->rec.status != WX_ST_PENDING ||
	    job->rec.url == NULL) {
		wx_err("the record of %s is not a pending outgoing transfer (it is %s %s)",
		    job->uuid, wx_role_name(job->rec.role), wx_status_name(job->rec.status));
		return -1;
	}
	json_object *b;
	if (job->rec.extra && json_object_object_get_ex(job->rec.extra, "backups", &b) &&
	    json_object_is_type(b, json_type_array))
		job->backups = json_object_get(b);
	return 0;
}

/* By hand: a new record, for --url or the last recorded destination. */
static int
new_record(struct job *job, const struct opts *o)
{
	struct wx_record old;
	bool have = wx_record_load(&job->st, job->uuid, &old) == 0;
	const char *url = o->url;
	json_object *backups = o->backups ? json_object_get(o->backups) : NULL;
	if (url == NULL) {
		if (!have || old.role != WX_ROLE_SOURCE || old.url == NULL) {
			wx_err("no --url given, and no earlier outgoing transfer of %s is recorded to "
			    "take the destination from", job->uuid);
			if (have)
				wx_record_clear(&old);
			json_object_put(backups);
			return -1;
		}
		url = old.url;
		json_object *b;
		if (backups == NULL && old.extra &&
		    json_object_object_get_ex(old.extra, "backups", &b) &&
		    json_object_is_type(b, json_type_array))
			backups = json_object_get(b);
	}
	if (!wx_has_prefix(url, "http://") && !wx_has_prefix(url, "https://")) {
		wx_err("--url must be an http:// or https:// URL");
		if (have)
			wx_record_clear(&old);
		json_object_put(backups);
		return -1;
	}
	if (have && wx_status_active(old.status))
		fprintf(stderr, "wingxfer-push: taking over the interrupted %s transfer of %s\n",
		    wx_status_name(old.status), job->uuid);
	wx_record_init(&job->rec, job->uuid, WX_ROLE_SOURCE);
	job->rec.url = xstrdup(url);
	if (have)
		wx_record_clear(&old);
	wx_uuid_random(job->rec.request_id);
	wx_strlcpy(job->rec.phase, "queued", sizeof job->rec.phase);
	job->backups = backups ? backups : json_object_new_array();
	char fp[32];
	wx_log_fingerprint(job->token, fp, sizeof fp);
	job->rec.extra = json_object_new_object();
	json_object_object_add(job->rec.extra, "backups", json_object_get(job->backups));
	json_object_object_add(job->rec.extra, "token_fingerprint", json_object_new_string(fp));
	json_object_object_add(job->rec.extra, "started_by", json_object_new_string("hand"));
	wx_cancel_clear(&job->st, job->uuid);
	remove_state_file(job, ".events");
	return 0;
}

enum outcome { OUT_COMPLETED, OUT_FAILED, OUT_STOPPED };

static enum outcome
run(struct job *job, char *why, size_t whysize)
{
	job->rec.pid = getpid();
	job->rec.status = WX_ST_PROCESSING;
	job->rec.progress_at = wx_now();
	job_phase(job, "preparing");
	job_log(job, "Preparing to stream server data to destination...");
	job_status(job, "processing");
	struct stat sb;
	if (stat(job->server_dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		snprintf(why, whysize, "The server's data directory %s is gone.", job->server_dir);
		return OUT_FAILED;
	}
	if (job_should_stop(job))
		return OUT_STOPPED;
	if (stop_server(job, why, whysize) < 0)
		return job->stop != JOB_RUNNING ? OUT_STOPPED : OUT_FAILED;

	job_phase(job, "scanning");
	char err[1024];
	struct progress *p = &job->progress;
	if (walk_measure(job->server_dir, &p->bytes_total, &p->files_total, stop_poll, job, err,
	    sizeof err) < 0) {
		if (job->stop != JOB_RUNNING)
			return OUT_STOPPED;
		snprintf(why, whysize, "Failed to get archive for transfer: %s.", err);
		return OUT_FAILED;
	}
	char size[32];
	wx_format_bytes(p->bytes_total, size, sizeof size);
	job_log(job, "Archiving %lld files and directories (%s) as tar.%s, level %lld.",
	    (long long)p->files_total, size, job->codec == WX_COMPRESS_GZIP ? "gz" : "?",
	    (long long)job->cfg->transfers.compression_level);
	switch (upload_run(job, why, whysize)) {
	case UPLOAD_PUSHED:
		return OUT_COMPLETED;
	case UPLOAD_STOPPED:
		return OUT_STOPPED;
	default:
		return OUT_FAILED;
	}
}

/* Records the outcome; on failure or cancel tells the panel (via the outbox). */
static int
finish(struct job *job, enum outcome out, const char *why)
{
	struct wx_record *r = &job->rec;
	char reason[1200];
	int code;
	r->finished_at = wx_now();
	if (job->skipped > 0)
		job_log(job, "%lld sockets, FIFOs or devices were left out (listed in the worker "
		    "log).", (long long)job->skipped);
	if (out == OUT_COMPLETED) {
		r->status = WX_ST_COMPLETED;
		wx_strlcpy(r->phase, "done", sizeof r->phase);
		job_log(job, "The destination accepted the server; it tells the panel. The data "
		    "stays on this node until the panel deletes it.");
		job_status(job, "completed");
		progress_update(job, true);
		return EXIT_COMPLETED;
	}
	if (out == OUT_STOPPED && job->stop == JOB_CANCELLED) {
		r->status = WX_ST_CANCELLED;
		snprintf(reason, sizeof reason, "The transfer was cancelled "
		    "(DELETE /api/servers/%s/transfer).", job->uuid);
		code = EXIT_CANCELLED;
	} else if (out == OUT_STOPPED) {
		r->status = WX_ST_FAILED;
		snprintf(reason, sizeof reason, "wingxfer-push was stopped by signal %d (%s) before "
		    "the transfer finished.", job->stop_signal, strsignal(job->stop_signal));
		code = EXIT_CANCELLED;
	} else {
		r->status = WX_ST_FAILED;
		snprintf(reason, sizeof reason, "%s", why[0] ? why : "The transfer failed.");
		code = EXIT_FAILED;
	}
	wx_record_set_error(r, "%s", reason);
	free(r->callback);
	r->callback = xstrdup("failure");
	job_log(job, "%s", reason);
	job_status(job, "failure");
	progress_update(job, true);

	struct wx_panel_answer ans;
	memset(&ans, 0, sizeof ans);
	char tid[64];
	int pr = wx_panel_report(job->cfg, &job->st, job->uuid,
	    wx_panel_transfer_id(r, tid, sizeof tid), WX_CALLBACK_FAILURE, reason, &ans);
	const char *result = pr == WX_PANEL_OK ? "delivered" : pr == WX_PANEL_REJECTED ?
	    "rejected" : pr == WX_PANEL_UNAVAILABLE ? "queued" : "not queued";
	if (pr == WX_PANEL_OK)
		job_log(job, "The panel was told that the transfer failed.");
	else if (pr == WX_PANEL_UNAVAILABLE)
		job_log(job, "The panel could not be reached (%s); the failure report stays queued "
		    "and wingxfer-watchdog keeps delivering it.", ans.detail);
	else if (pr == WX_PANEL_REJECTED)
		job_log(job, "The panel refused the failure report (HTTP %ld: %s).", ans.status,
		    ans.detail);
	else
		wx_err("cannot queue the failure report for the panel: %s", strerror(errno));
	json_object *cb = json_object_new_object();
	json_object_object_add(cb, "result", json_object_new_string(result));
	json_object_object_add(cb, "status", json_object_new_int64(ans.status));
	json_object_object_add(cb, "detail", json_object_new_string(ans.detail));
	json_object_object_add(r->extra, "callback_result", cb);
	job_save(job);
	return code;
}

static void
job_free(struct job *job)
{
	if (job->token != NULL) {
		memset(job->token, 0, strlen(job->token));
		free(job->token);
	}
	json_object_put(job->backups);
	wx_record_clear(&job->rec);
	free(job->server_dir);
	wx_state_close(&job->st);
	wx_config_free(job->cfg);
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
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .lock_fd = -1, .token_fd = -1 };
	wx_log_init("wingxfer-push");
	struct wx_cli cli = { .name = "wingxfer-push", .help = help, .extra_opts = extra,
		.on_opt = on_opt, .ctx = &o };
	int first = wx_cli_parse(&cli, argc, argv);
	if (cli.check_config)
		return wx_check_config(cli.config_arg);
	struct job job;
	memset(&job, 0, sizeof job);
	job.lock_fd = -1;
	if (argc - first != 1 || wx_uuid_normalize(argv[first], job.uuid) < 0) {
		fprintf(stderr, "wingxfer-push: expected exactly one argument, the server's UUID\n"
		    "Try 'wingxfer-push --help'.\n");
		return EXIT_USAGE;
	}
	if (o.lock_fd >= 0 && (o.url != NULL || o.token_file != NULL || o.token_fd < 0)) {
		fprintf(stderr, "wingxfer-push: --lock-fd goes with --token-fd only (as "
		    "wingxfer-source starts it)\n");
		return EXIT_USAGE;
	}
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		(void)setlocale(LC_CTYPE, "");
	install_signals();
	wx_log_set_transfer(job.uuid);
	job.tty = o.lock_fd < 0 && isatty(2);
	job.cfg = wx_cli_load_config(cli.config_arg);
	if (job.cfg == NULL)
		return EXIT_FAILED;
	int code = EXIT_FAILED;
	char err[1024];
	if (wx_state_open(&job.st, job.cfg->transfers.state_directory, err, sizeof err) < 0) {
		wx_err("%s", err);
		goto out;
	}
	if (o.lock_fd >= 0) {
		job.lock_fd = o.lock_fd;
		if (adopt_lock(&job, o.lock_fd) < 0)
			goto out;
		log_to_file(&job);
	} else if (take_lock(&job) < 0) {
		goto out;
	}
	job.token = get_token(&o);
	if (job.token == NULL)
		goto out;
	if ((o.lock_fd >= 0 ? load_pending(&job) : new_record(&job, &o)) < 0)
		goto out;
	job.server_dir = wx_path_join(job.cfg->data_directory, job.uuid);
	job.codec = WX_COMPRESS_GZIP;
	if (strcmp(job.cfg->transfers.compression, "zstd") == 0)
		wx_warn("system.transfers.compression is zstd, which this version cannot send yet; "
		    "sending gzip, which every destination reads");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		wx_err("libcurl failed to initialise");
		goto out;
	}
	char why[1200] = "";
	enum outcome out = run(&job, why, sizeof why);
	code = finish(&job, out, why);
	wx_cancel_clear(&job.st, job.uuid);
	curl_global_cleanup();
out:
	if (job.lock_fd >= 0)
		close(job.lock_fd);  /* last: the record is final before the lock is free */
	json_object_put(o.backups);
	job_free(&job);
	return code;
}
