/*
 * The body of POST /api/transfers is parsed by a child process that is not
 * root and is confined (docs/security.md):
 *
 *   parent (this handler, root)          child (system.user, confined)
 *   token, locks, record, staging   fork
 *   reads the body (download_limit,  -- body pipe -->  multipart, gzip/zstd,
 *   cancels, progress in the record)                   tar into staging,
 *   events, record  <-- message pipe --                 backups/install log
 *   verifies, hook, rename, panel                       into the parts dir
 *
 * The child holds only the two pipes, the staging directory and the parts
 * directory (<staging_root>/<uuid>.parts), and cannot execute, open
 * sockets, trace or write anywhere else.  It dies with the parent
 * (PR_SET_PDEATHSIG).  A cancel is seen by the parent, which kills it.
 *
 * Messages, child to parent: one JSON object per line, at most
 * MSG_MAX bytes:  {"log": text}  {"p": [files, bytes extracted]}  and last
 * {"result": {...}} with what finish.c needs.  The parent trusts none of
 * it beyond what the child could do anyway (write inside staging): numbers
 * are range-checked, names re-sanitised, paths made by the parent.
 */
#include "autoconf.h"

#include "destination.h"
#include "archive_paths.h"
#include "confine.h"
#include "config.h"
#include "freed_fill.h"
#include "fsutil.h"
#include "json_get.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX (16 * 1024)
#define MAX_BACKUPS 256
#define CHILD_NOFILE 64
/* The extractor's memory is a few MiB; 2 GiB is a bound no parse reaches.
 * ASan reserves terabytes of shadow address space: no bound there. */
#ifdef WX_SANITIZERS
#define CHILD_AS 0
#else
#define CHILD_AS (2LL << 30)
#endif

/* ---- child ---- */

static void
send_msg(struct receiver *rx, json_object *j)
{
	const char *s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN);
	size_t n = strlen(s);
	if (n + 1 <= MSG_MAX) {
		char *line = xasprintf("%s\n", s);
		(void)wx_write_all(rx->sandbox_fd, line, n + 1);
		free(line);
	}
	json_object_put(j);
}

void
rx_sandbox_log(struct receiver *rx, const char *msg)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "log", json_object_new_string(msg));
	send_msg(rx, j);
}

void
rx_sandbox_progress(struct receiver *rx, bool force)
{
	int64_t t = wx_mono_ms();
	if (!force && t - rx->sandbox_sent_ms < 200)
		return;
	rx->sandbox_sent_ms = t;
	json_object *p = json_object_new_array();
	json_object_array_add(p, json_object_new_int64(rx->rec.files));
	json_object_array_add(p, json_object_new_int64(rx->rec.bytes_sent));
	json_object *j = json_object_new_object();
	json_object_object_add(j, "p", p);
	send_msg(rx, j);
}

static void
send_result(struct receiver *rx)
{
	json_object *r = json_object_new_object();
	json_object_object_add(r, "status", json_object_new_int(rx->status));
	json_object_object_add(r, "error", json_object_new_string(rx->error));
	json_object_object_add(r, "detail", json_object_new_string(rx->detail));
	json_object_object_add(r, "have_archive", json_object_new_boolean(rx->have_archive));
	json_object_object_add(r, "archive_bytes", json_object_new_int64((int64_t)rx->archive_bytes));
	json_object_object_add(r, "archive_sha256", json_object_new_string(rx->archive_sha256));
	json_object *cs = json_object_new_array();
	for (int i = 0; i < rx->nchecksums; i++)
		json_object_array_add(cs, json_object_new_string(rx->checksums[i]));
	json_object_object_add(r, "checksums", cs);
	json_object_object_add(r, "files", json_object_new_int64(rx->rec.files));
	json_object_object_add(r, "bytes_sent", json_object_new_int64(rx->rec.bytes_sent));
	json_object_object_add(r, "skipped", json_object_new_int64(rx->skipped));
	json_object_object_add(r, "warnings", json_object_new_int64(rx->warnings));
	json_object_object_add(r, "presync_rounds", json_object_new_int64(rx->presync_rounds));
	json_object *bs = json_object_new_array();
	for (int i = 0; i < rx->nbackups; i++) {
		struct rx_backup *b = &rx->backups[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(b->name));
		json_object_object_add(o, "sha256", json_object_new_string(b->sha256));
		json_object_object_add(o, "expected", json_object_new_string(b->expected));
		json_object_object_add(o, "has_expected", json_object_new_boolean(b->has_expected));
		json_object_object_add(o, "received", json_object_new_boolean(b->received));
		json_object_array_add(bs, o);
	}
	json_object_object_add(r, "backups", bs);
	json_object_object_add(r, "install_log", json_object_new_boolean(rx->install_log_tmp != NULL));
	json_object *j = json_object_new_object();
	json_object_object_add(j, "result", r);
	send_msg(rx, j);
}

static int body_fd = -1;

static ssize_t
child_read(void *ctx, void *buf, size_t n)
{
	(void)ctx;
	for (;;) {
		ssize_t r = read(body_fd, buf, n);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

/* Closes every descriptor but keep[0..n-1] and 1, 2; fd 0 (the FastCGI
 * socket) becomes /dev/null.  0 or -1. */
static int
close_other_fds(const int *keep, int n)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0)
		return -1;
	int from = 3;
	for (;;) {
		int next = -1;         /* the lowest kept fd >= from */
		for (int i = 0; i < n; i++)
			if (keep[i] >= from && (next < 0 || keep[i] < next))
				next = keep[i];
		if (next < 0)
			break;
		for (int fd = from; fd < next; fd++)
			(void)close(fd);
		from = next + 1;
	}
#ifdef HAVE_CLOSE_RANGE
	if (close_range((unsigned)from, ~0U, 0) == 0)
		return 0;
#endif
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = from; fd < max; fd++)
		(void)close(fd);
	return 0;
}

/* Loads what the parse would otherwise read from /etc or /usr lazily
 * (OpenSSL's configuration, the time zone), while it still may. */
static void
warm_up(void)
{
	tzset();
	time_t now = time(NULL);
	struct tm tm;
	(void)localtime_r(&now, &tm);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md != NULL)
		(void)EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_MD_CTX_free(md);
}

int
rx_sandbox_enter(struct receiver *rx, int parts_fd, char *err, size_t errsize)
{
	warm_up();
	if (wx_drop_to(rx->cfg->uid, rx->cfg->gid, err, errsize) < 0)
		return -1;
	int write_fds[] = { rx->staging_fd, parts_fd };
	static const char *const read_dirs[] = {
		"/usr",                 /* shared libraries, iconv modules (libarchive) */
#ifdef WX_SANITIZERS
		"/proc/self",           /* ASan reads its maps to report */
#endif
		NULL
	};
	struct wx_confine_policy pol = {
		.write_fds = write_fds,
		.nwrite_fds = parts_fd >= 0 ? 2 : 1,
		.read_dirs = read_dirs,
		.nofile = CHILD_NOFILE,
		.address_space = CHILD_AS,
	};
	struct wx_confine_report rep;
	if (wx_confine(&pol, &rep, err, errsize) < 0)
		return -1;
	wx_debug("extractor confined: uid %d, Landlock ABI %d, seccomp %s", (int)getuid(),
	    rep.landlock_abi, rep.seccomp ? "on" : "off");
	return 0;
}

static void __attribute__((noreturn))
child_main(struct receiver *rx, const char *boundary, pid_t parent, int in, int out, int parts_fd)
{
	rx->in_sandbox = true;
	rx->sandbox_fd = out;
	rx->parts_fd = parts_fd;
	body_fd = in;
	char err[512] = "";
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
		_exit(3);
	wx_log_use_syslog(NULL);        /* syslog(3) would need a socket: stderr */
	/* The node token is in this copy of the parent's memory; the parser
	 * has no use for it, and its error text goes back to the sender.  (No
	 * freed copy: main.c has freed memory overwritten, wx_scrub_freed the
	 * rest.)  The config is the parent's; this is this process's copy. */
	wx_config_wipe_token((struct wx_config *)rx->cfg);
	wx_scrub_freed();
	int keep[] = { in, out, rx->staging_fd, parts_fd };
	if (close_other_fds(keep, 4) < 0) {
		snprintf(err, sizeof err, "descriptors: %s", strerror(errno));
	} else if (rx_sandbox_enter(rx, parts_fd, err, sizeof err) == 0) {
		rx->mp = wx_mp_new(boundary, RX_READ_CHUNK, child_read, rx);
		if (rx->mp == NULL)
			rx_fail(rx, 500, "The multipart parser could not be set up.");
		else
			(void)rx_read_parts(rx);
		send_result(rx);
		_exit(0);
	}
	rx_detail(rx, "confinement: %s", err);
	rx_fail(rx, 500, "This node could not confine its extractor (not root, no access "
	    "beyond staging); nothing was received.");
	send_result(rx);
	_exit(0);
}

/* ---- parent ---- */

struct feed {
	struct receiver *rx;
	pid_t pid;
	int in, out;                    /* body pipe (write end), message pipe (read end) */
	char *buf;                      /* partial message */
	size_t len;
	bool got_result, broken;
	json_object *result;
};

static bool
valid_status(int s)
{
	return s == 0 || s == 400 || s == 409 || s == 413 || s == 422 || s == 500 || s == 503 ||
	    s == 507;
}

static int
bad_message(struct feed *f, const char *why)
{
	wx_err("the extractor process sent %s; stopping it", why);
	f->broken = true;
	return rx_fail(f->rx, 500, "The extractor process failed on this node; nothing was "
	    "installed.");
}

static int
handle_line(struct feed *f, const char *line)
{
	struct receiver *rx = f->rx;
	json_object *j = json_tokener_parse(line);
	if (j == NULL || !json_object_is_type(j, json_type_object)) {
		json_object_put(j);
		return bad_message(f, "a message that is not a JSON object");
	}
	json_object *v;
	if (json_object_object_get_ex(j, "log", &v) && json_object_is_type(v, json_type_string)) {
		rx_log(rx, "%s", json_object_get_string(v));
	} else if (json_object_object_get_ex(j, "p", &v) && json_object_is_type(v, json_type_array) &&
	    json_object_array_length(v) == 2) {
		int64_t files = json_object_get_int64(json_object_array_get_idx(v, 0));
		int64_t bytes = json_object_get_int64(json_object_array_get_idx(v, 1));
		if (files >= 0 && bytes >= 0) {
			rx->rec.files = files;
			rx->rec.bytes_sent = bytes;
		}
	} else if (json_object_object_get_ex(j, "result", &v) && !f->got_result &&
	    json_object_is_type(v, json_type_object)) {
		f->got_result = true;
		f->result = json_object_get(v);
	} else {
		json_object_put(j);
		return bad_message(f, "an unknown message");
	}
	json_object_put(j);
	return 0;
}

/* Reads what the child sent; 1 at its end (EOF), 0 more may come, -1 error. */
static int
drain(struct feed *f)
{
	for (;;) {
		if (f->len == MSG_MAX)
			return bad_message(f, "a message longer than 16 KiB");
		ssize_t n = read(f->out, f->buf + f->len, MSG_MAX - f->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return bad_message(f, "nothing readable");
		if (n == 0)
			return 1;
		f->len += (size_t)n;
		char *nl;
		while ((nl = memchr(f->buf, '\n', f->len)) != NULL) {
			*nl = '\0';
			if (handle_line(f, f->buf) < 0)
				return -1;
			size_t used = (size_t)(nl - f->buf) + 1;
			memmove(f->buf, nl + 1, f->len - used);
			f->len -= used;
		}
	}
}

/* Writes n body bytes to the child, reading its messages meanwhile.  0, or
 * -1 when the child stopped reading (it failed or finished early). */
static int
pump(struct feed *f, const char *p, size_t n)
{
	while (n > 0) {
		struct pollfd pf[2] = { { f->in, POLLOUT, 0 }, { f->out, POLLIN, 0 } };
		if (poll(pf, 2, 1000) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (pf[1].revents) {
			int d = drain(f);
			if (d != 0)
				return -1;
		}
		if (pf[0].revents & (POLLERR | POLLHUP))
			return -1;
		if (pf[0].revents & POLLOUT) {
			ssize_t w = write(f->in, p, n);
			if (w < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (w < 0)
				return -1; /* EPIPE: the child is gone */
			p += w;
			n -= (size_t)w;
		}
		if (rx_cancel_check(f->rx, false))
			return -1;
	}
	return 0;
}

/* Reads the child's messages until it closes its end; a cancel or a parent
 * failure kills it. */
static void
collect(struct feed *f)
{
	for (;;) {
		if (f->rx->status != 0 || f->broken) {
			(void)kill(f->pid, SIGKILL);
			return;
		}
		struct pollfd pf = { f->out, POLLIN, 0 };
		int r = poll(&pf, 1, 100);
		if (r < 0 && errno != EINTR)
			return;
		if (r > 0 && drain(f) != 0)
			return;
		(void)rx_cancel_check(f->rx, false);
	}
}

static bool
checked_str(json_object *r, const char *key, char *out, size_t size)
{
	return wx_json_opt_fixed(r, key, out, size) == 0;
}

/* The child's outcome into rx; -1 when it does not hold up. */
static int
apply_result(struct feed *f)
{
	struct receiver *rx = f->rx;
	json_object *r = f->result;
	int64_t status = 0, bytes = 0, files = 0, sent = 0, skipped = 0, warnings = 0, rounds = 0;
	char error[sizeof rx->error] = "", detail[sizeof rx->detail] = "";
	json_object *v;
	if (wx_json_opt_i64(r, "status", &status) < 0 || !valid_status((int)status) ||
	    status > 999 || !checked_str(r, "error", error, sizeof error) ||
	    !checked_str(r, "detail", detail, sizeof detail) ||
	    wx_json_opt_i64(r, "archive_bytes", &bytes) < 0 || bytes < 0 ||
	    wx_json_opt_i64(r, "files", &files) < 0 || files < 0 ||
	    wx_json_opt_i64(r, "bytes_sent", &sent) < 0 || sent < 0 ||
	    wx_json_opt_i64(r, "skipped", &skipped) < 0 || skipped < 0 ||
	    wx_json_opt_i64(r, "warnings", &warnings) < 0 || warnings < 0 ||
	    wx_json_opt_i64(r, "presync_rounds", &rounds) < 0 || rounds < 0 ||
	    !checked_str(r, "archive_sha256", rx->archive_sha256, sizeof rx->archive_sha256))
		return bad_message(f, "an invalid result");
	if (detail[0] != '\0')
		rx_detail(rx, "%s", detail);
	if (status != 0)
		rx_fail(rx, (int)status, "%s", error[0] ? error : "The extractor failed.");
	rx->have_archive = json_object_object_get_ex(r, "have_archive", &v) &&
	    json_object_get_boolean(v);
	if (rx->have_archive && status == 0 && !rx->body_checksum &&
	    !wx_is_sha256_hex(rx->archive_sha256))
		return bad_message(f, "an archive digest that is not SHA-256");
	rx->archive_bytes = (uint64_t)bytes;
	rx->rec.files = files;
	rx->rec.bytes_sent = sent;
	rx->skipped = skipped;
	rx->warnings = warnings;
	rx->presync_rounds = rounds;
	if (json_object_object_get_ex(r, "checksums", &v) && json_object_is_type(v, json_type_array))
		for (size_t i = 0; i < json_object_array_length(v) && rx->nchecksums < RX_MAX_CHECKSUMS;
		    i++) {
			const char *c = json_object_get_string(json_object_array_get_idx(v, i));
			if (c == NULL || strlen(c) > RX_CHECKSUM_MAX)
				return bad_message(f, "an invalid checksum");
			wx_strlcpy(rx->checksums[rx->nchecksums++], c, RX_CHECKSUM_MAX + 1);
		}
	char *bdir = xasprintf("%s/%s", rx->cfg->backup_directory, rx->uuid);
	int rc = 0;
	if (json_object_object_get_ex(r, "backups", &v) && json_object_is_type(v, json_type_array)) {
		size_t n = json_object_array_length(v);
		if (n > MAX_BACKUPS) {
			free(bdir);
			return bad_message(f, "too many backups");
		}
		for (size_t i = 0; i < n && rc == 0; i++) {
			json_object *o = json_object_array_get_idx(v, i);
			char name[WX_MP_NAME_MAX] = "", safe[WX_SAFE_NAME_MAX + 1];
			struct rx_backup b;
			memset(&b, 0, sizeof b);
			json_object *x;
			if (!checked_str(o, "name", name, sizeof name) ||
			    wx_safe_file_name(name, safe, sizeof safe) < 0 || strcmp(safe, name) != 0 ||
			    !checked_str(o, "sha256", b.sha256, sizeof b.sha256) ||
			    !checked_str(o, "expected", b.expected, sizeof b.expected)) {
				rc = bad_message(f, "an invalid backup");
				break;
			}
			wx_strlcpy(b.name, name, sizeof b.name);
			b.has_expected = json_object_object_get_ex(o, "has_expected", &x) &&
			    json_object_get_boolean(x);
			b.received = json_object_object_get_ex(o, "received", &x) &&
			    json_object_get_boolean(x);
			if (b.received) {
				b.tmp_path = xasprintf("%s/.%s.wingxfer-partial", rx->parts_dir, name);
				b.final_path = xasprintf("%s/%s", bdir, name);
			}
			rx->backups = xrealloc(rx->backups, (size_t)(rx->nbackups + 1) *
			    sizeof *rx->backups);
			rx->backups[rx->nbackups++] = b;
		}
	}
	if (rc == 0 && status == 0 && rx->nbackups > 0) {
		struct stat st;
		bool existed = lstat(bdir, &st) == 0;
		if (wx_mkdirs(bdir, 0700) < 0) {
			rx_detail(rx, "mkdir %s: %s", bdir, strerror(errno));
			rc = rx_fail(rx, 500, "This node cannot create its backup directory "
			    "(system.backup_directory).");
		} else if (!existed) {
			rx->backup_dir_made = xstrdup(bdir);
		}
	}
	free(bdir);
	if (rc == 0 && json_object_object_get_ex(r, "install_log", &v) &&
	    json_object_get_boolean(v)) {
		rx->install_log_tmp = xasprintf("%s/.%s.log.wingxfer-partial", rx->parts_dir,
		    rx->uuid);
		char *dir = xasprintf("%s/install", rx->cfg->log_directory);
		rx->install_log_final = xasprintf("%s/%s.log", dir, rx->uuid);
		if (status == 0 && wx_mkdirs(dir, 0750) < 0) {
			wx_warn("cannot create %s for the install log: %s", dir, strerror(errno));
			rx_log(rx, "The install log was not kept: %s cannot be created.", dir);
			(void)unlink(rx->install_log_tmp);
			free(rx->install_log_tmp);
			rx->install_log_tmp = NULL;
		}
		free(dir);
	}
	return rc;
}

/* <staging_root>/<uuid>.parts, empty, owned like staging; its fd or -1. */
static int
make_parts_dir(struct receiver *rx)
{
	rx->parts_dir = xasprintf("%s.parts", rx->staging);
	if (wx_remove_tree(rx->parts_dir) < 0 || mkdir(rx->parts_dir, 0700) < 0) {
		rx_detail(rx, "staging %s: %s", rx->parts_dir, strerror(errno));
		rx_fail(rx, 500, "This node cannot create its staging directory under system.data.");
		return -1;
	}
	int fd = open(rx->parts_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || (geteuid() == 0 && rx->cfg->uid >= 0 && rx->cfg->gid >= 0 &&
	    fchown(fd, (uid_t)rx->cfg->uid, (gid_t)rx->cfg->gid) < 0)) {
		rx_detail(rx, "staging %s: %s", rx->parts_dir, strerror(errno));
		rx_fail(rx, 500, "This node cannot give the staging directory to system.user.");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int
rx_sandbox_run(struct receiver *rx, const char *boundary)
{
	int parts_fd = make_parts_dir(rx);
	if (parts_fd < 0)
		return -1;
	int bp[2] = { -1, -1 }, mp[2] = { -1, -1 };
	if (pipe2(bp, O_CLOEXEC) < 0 || pipe2(mp, O_CLOEXEC) < 0) {
		rx_detail(rx, "pipe: %s", strerror(errno));
		close(parts_fd);
		for (int i = 0; i < 2; i++)
			if (bp[i] >= 0)
				close(bp[i]);
		return rx_fail(rx, 500, "This node cannot start its extractor process.");
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		close(bp[1]);
		close(mp[0]);
		child_main(rx, boundary, parent, bp[0], mp[1], parts_fd);
	}
	close(bp[0]);
	close(mp[1]);
	close(parts_fd);
	struct feed f = { .rx = rx, .pid = pid, .in = bp[1], .out = mp[0] };
	if (pid < 0) {
		close(bp[1]);
		close(mp[0]);
		rx_detail(rx, "fork: %s", strerror(errno));
		return rx_fail(rx, 500, "This node cannot start its extractor process.");
	}
	f.buf = xmalloc(MSG_MAX);
	(void)fcntl(f.in, F_SETFL, O_NONBLOCK);
	(void)fcntl(f.out, F_SETFL, O_NONBLOCK);
	char *chunk = xmalloc(RX_READ_CHUNK);
	for (;;) {
		ssize_t n = rx_body_read(rx, chunk, RX_READ_CHUNK);
		if (n <= 0 || pump(&f, chunk, (size_t)n) < 0)
			break;
	}
	free(chunk);
	close(f.in);    /* the end of the body, or the child's cue to stop */
	collect(&f);
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	close(f.out);
	free(f.buf);
	if (f.result != NULL && !f.broken)
		(void)apply_result(&f);
	json_object_put(f.result);
	if (!f.got_result && rx->status == 0) {
		if (WIFSIGNALED(ws))
			rx_detail(rx, "the extractor process was killed by signal %d%s",
			    WTERMSIG(ws), WTERMSIG(ws) == SIGSYS ? " (a forbidden system call)" : "");
		else
			rx_detail(rx, "the extractor process exited with status %d",
			    WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
		rx_fail(rx, 500, "The extractor process ended unexpectedly on this node; nothing "
		    "was installed.");
	}
	return rx->status != 0 ? -1 : 0;
}
