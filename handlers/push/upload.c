/*
 * The upload: one chunked multipart/form-data POST to the destination, in
 * the part order FeatherWings sends (wings-protocol.md §2.3):
 *
 *   archive          filename archive.tar.gz, application/octet-stream
 *   checksum         lowercase hex SHA-256 of exactly the archive part's bytes
 *   checksum_archive the same value (Pelican's name)
 *   backup_<b>.tar.gz + checksum_backup_<b>.tar.gz   per requested backup on disk
 *   install_logs     filename install.log, if the install log exists
 *
 * The body is produced on demand from libcurl's read callback: archive
 * entries are walked, read, tarred and compressed only as fast as the
 * destination takes them, through one output buffer (a few MiB whatever the
 * server's size).  The progress callback polls the cancel marker and the
 * stop flags, and enforces the stall and response timeouts.
 */
#include "autoconf.h"

#include "push.h"
#include "config.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_INITIAL (2 * 1024 * 1024)
#define FILE_CHUNK (1024 * 1024)
#define UPLOAD_BUFFER (512 * 1024)
#define MAX_ANSWER (16 * 1024)
#define POLL_MS 200

struct outbuf {
	unsigned char *data;
	size_t off, len, cap;   /* unread bytes are data[off .. len) */
};

enum part_kind { PART_ARCHIVE, PART_CHECKSUMS, PART_BACKUP, PART_INSTALL_LOG, PART_CLOSE };

struct part {
	enum part_kind kind;
	char *path;             /* backup or install log */
	char *label;            /* backup UUID */
};

struct upload {
	struct job *job;
	char boundary[61];
	struct part *parts;
	size_t nparts, cur;
	int nbackups, backup_no;
	bool started;           /* the current part's headers are out */
	bool eof;               /* the closing boundary is out */
	struct tar *tar;
	EVP_MD_CTX *md;
	char archive_sum[65];
	int fd;                 /* current backup / install log */
	int64_t fsize, fleft;
	struct outbuf out;

	int64_t eof_ms;         /* when the read callback returned the end (0 = not yet) */
	curl_off_t last_ul;
	int64_t last_ul_ms;
	int64_t next_poll_ms;
	char *answer;
	size_t answer_len;
	char why[1024];         /* why we aborted the transfer ourselves */
};

/* --- output buffer --- */

static void
out_reserve(struct outbuf *o, size_t n)
{
	if (o->off > 0 && o->off == o->len)
		o->off = o->len = 0;
	if (o->cap - o->len >= n)
		return;
	if (o->off > 0) {
		memmove(o->data, o->data + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
	}
	if (o->cap - o->len < n) {
		while (o->cap - o->len < n)
			o->cap = o->cap ? o->cap * 2 : OUT_INITIAL;
		o->data = xrealloc(o->data, o->cap);
	}
}

static void
out_put(struct outbuf *o, const void *p, size_t n)
{
	out_reserve(o, n);
	memcpy(o->data + o->len, p, n);
	o->len += n;
}

static void out_printf(struct outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out_printf(struct outbuf *o, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n > 0)
		out_put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* --- parts --- */

static int
abort_with(struct upload *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
abort_with(struct upload *u, const char *fmt, ...)
{
	if (u->why[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(u->why, sizeof u->why, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void
hash_start(struct upload *u)
{
	EVP_DigestInit_ex(u->md, EVP_sha256(), NULL);
}

static void
hash_end(struct upload *u, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_DigestFinal_ex(u->md, md, &len);
	wx_hex(md, len, out);
}

static int
archive_sink(void *ctx, const void *buf, size_t len)
{
	struct upload *u = ctx;
	EVP_DigestUpdate(u->md, buf, len);
	out_put(&u->out, buf, len);
	u->job->progress.archive_bytes += (int64_t)len;
	return 0;
}

static void
next_part(struct upload *u)
{
	struct part *p = &u->parts[u->cur];
	if (p->kind == PART_BACKUP && u->parts[u->cur + 1].kind != PART_BACKUP)
		job_log(u->job, "Finished streaming archive and backups to destination.");
	u->cur++;
	u->started = false;
}

static int
produce_archive(struct upload *u)
{
	if (!u->started) {
		out_printf(&u->out, "--%s\r\nContent-Disposition: form-data; name=\"archive\"; "
		    "filename=\"archive.tar.gz\"\r\nContent-Type: application/octet-stream\r\n\r\n",
		    u->boundary);
		char err[1024];
		u->tar = tar_open(u->job, archive_sink, u, err, sizeof err);
		if (u->tar == NULL)
			return abort_with(u, "The archive could not be started: %s", err);
		hash_start(u);
		u->started = true;
		return 0;
	}
	int rc = tar_step(u->tar);
	if (rc < 0)
		return abort_with(u, "The archive could not be made: %s", tar_error(u->tar));
	if (rc == 0) {
		hash_end(u, u->archive_sum);
		tar_close(u->tar);
		u->tar = NULL;
		next_part(u);
	}
	return 0;
}

static void
produce_checksums(struct upload *u)
{
	/* Both names: Pterodactyl reads checksum, Pelican checksum_archive. */
	out_printf(&u->out, "\r\n--%s\r\nContent-Disposition: form-data; name=\"checksum\"\r\n\r\n%s",
	    u->boundary, u->archive_sum);
	out_printf(&u->out, "\r\n--%s\r\nContent-Disposition: form-data; "
	    "name=\"checksum_archive\"\r\n\r\n%s", u->boundary, u->archive_sum);
	if (u->job->rec.extra != NULL)
		json_object_object_add(u->job->rec.extra, "archive_sha256",
		    json_object_new_string(u->archive_sum));
	job_log(u->job, "Finished streaming archive to destination.");
	next_part(u);
}

static int
start_file(struct upload *u, struct part *p)
{
	const char *what = p->kind == PART_BACKUP ? "backup" : "install log";
	u->fd = open(p->path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (u->fd < 0 && errno == ENOENT) {
		job_log(u->job, "The %s %s disappeared before it could be sent; it is left out.",
		    what, p->path);
		next_part(u);
		return 0;
	}
	struct stat st;
	if (u->fd < 0 || fstat(u->fd, &st) < 0)
		return abort_with(u, "The %s %s could not be read: %s", what, p->path,
		    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return abort_with(u, "The %s %s is not a regular file", what, p->path);
	u->fsize = u->fleft = st.st_size;
	if (p->kind == PART_BACKUP) {
		if (u->backup_no++ == 0)
			job_log(u->job, "Streaming %d backup files to destination...", u->nbackups);
		out_printf(&u->out, "\r\n--%s\r\nContent-Disposition: form-data; "
		    "name=\"backup_%s.tar.gz\"; filename=\"%s.tar.gz\"\r\n"
		    "Content-Type: application/octet-stream\r\n\r\n", u->boundary, p->label, p->label);
	} else {
		out_printf(&u->out, "\r\n--%s\r\nContent-Disposition: form-data; "
		    "name=\"install_logs\"; filename=\"install.log\"\r\n"
		    "Content-Type: application/octet-stream\r\n\r\n", u->boundary);
	}
	hash_start(u);
	u->started = true;
	return 0;
}

static int
produce_file(struct upload *u, struct part *p)
{
	if (!u->started)
		return start_file(u, p);
	if (u->fleft > 0) {
		size_t want = u->fleft > FILE_CHUNK ? FILE_CHUNK : (size_t)u->fleft;
		out_reserve(&u->out, want);
		ssize_t n;
		do
			n = read(u->fd, u->out.data + u->out.len, want);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return abort_with(u, "%s could not be read: %s", p->path, strerror(errno));
		if (n == 0)
			return abort_with(u, "%s changed size while it was sent", p->path);
		EVP_DigestUpdate(u->md, u->out.data + u->out.len, (size_t)n);
		u->out.len += (size_t)n;
		u->fleft -= n;
		return 0;
	}
	struct stat st;
	if (fstat(u->fd, &st) < 0 || st.st_size != u->fsize)
		return abort_with(u, "%s changed size while it was sent", p->path);
	close(u->fd);
	u->fd = -1;
	char sum[65];
	hash_end(u, sum);
	if (p->kind == PART_BACKUP) {
		out_printf(&u->out, "\r\n--%s\r\nContent-Disposition: form-data; "
		    "name=\"checksum_backup_%s.tar.gz\"\r\n\r\n%s", u->boundary, p->label, sum);
		job_log(u->job, "Backup %d/%d completed: %s.tar.gz", u->backup_no, u->nbackups,
		    p->label);
	} else {
		job_log(u->job, "Finished streaming the install logs to destination.");
	}
	next_part(u);
	return 0;
}

/* Produces the next piece of the body into the output buffer; -1 on failure. */
static int
produce(struct upload *u)
{
	struct part *p = &u->parts[u->cur];
	switch (p->kind) {
	case PART_ARCHIVE:
		return produce_archive(u);
	case PART_CHECKSUMS:
		produce_checksums(u);
		return 0;
	case PART_BACKUP:
	case PART_INSTALL_LOG:
		return produce_file(u, p);
	case PART_CLOSE:
		out_printf(&u->out, "\r\n--%s--\r\n", u->boundary);
		u->eof = true;
		return 0;
	}
	return abort_with(u, "internal error: unknown part");
}

static void
add_part(struct upload *u, enum part_kind kind, char *path, const char *label)
{
	u->parts = xrealloc(u->parts, (u->nparts + 1) * sizeof *u->parts);
	struct part *p = &u->parts[u->nparts++];
	p->kind = kind;
	p->path = path;
	p->label = label ? xstrdup(label) : NULL;
}

static bool
is_regular(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The parts in order; requested backups and the install log only if present. */
static void
plan_parts(struct upload *u)
{
	struct job *job = u->job;
	const struct wx_config *cfg = job->cfg;
	add_part(u, PART_ARCHIVE, NULL, NULL);
	add_part(u, PART_CHECKSUMS, NULL, NULL);
	size_t n = job->backups ? json_object_array_length(job->backups) : 0;
	for (size_t i = 0; i < n; i++) {
		const char *b = json_object_get_string(json_object_array_get_idx(job->backups, i));
		char *path = xasprintf("%s/%s/%s.tar.gz", cfg->backup_directory, job->uuid, b);
		if (is_regular(path)) {
			add_part(u, PART_BACKUP, path, b);
			u->nbackups++;
		} else {
			job_log(job, "Backup %s was requested but is not on this node (%s); it is not "
			    "sent.", b, path);
			free(path);
		}
	}
	char *log = xasprintf("%s/install/%s.log", cfg->log_directory, job->uuid);
	if (is_regular(log))
		add_part(u, PART_INSTALL_LOG, log, NULL);
	else
		free(log);
	add_part(u, PART_CLOSE, NULL, NULL);
}

/* --- libcurl callbacks --- */

static size_t
read_body(char *buf, size_t size, size_t nitems, void *ctx)
{
	struct upload *u = ctx;
	struct job *job = u->job;
	size_t want = size * nitems;
	while (u->out.len - u->out.off < want && !u->eof) {
		if (produce(u) < 0)
			return CURL_READFUNC_ABORT;
		int64_t now = wx_mono_ms();
		if (now >= u->next_poll_ms) {
			u->next_poll_ms = now + POLL_MS;
			if (job_should_stop(job))
				return CURL_READFUNC_ABORT;
			progress_update(job, false);
		}
	}
	size_t n = u->out.len - u->out.off;
	if (n > want)
		n = want;
	memcpy(buf, u->out.data + u->out.off, n);
	u->out.off += n;
	if (n == 0 && u->eof_ms == 0) {
		u->eof_ms = wx_mono_ms();
		job->progress.streaming = false;
		job_phase(job, "waiting");
	}
	return n;
}

static int
on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	struct upload *u = ctx;
	struct job *job = u->job;
	const struct wx_transfers_config *tc = &job->cfg->transfers;
	int64_t now = wx_mono_ms();
	if (ulnow != u->last_ul) {
		u->last_ul = ulnow;
		u->last_ul_ms = now;
		job->progress.bytes_sent = ulnow;
	}
	if (job_should_stop(job))
		return 1;
	if (u->eof_ms == 0 && now - u->last_ul_ms >= tc->stall_timeout * 1000) {
		abort_with(u, "No data could be sent to the destination for %lld s "
		    "(system.transfers.stall_timeout): it stopped reading, or the network is down.",
		    (long long)tc->stall_timeout);
		return 1;
	}
	if (u->eof_ms != 0 && now - u->eof_ms >= tc->response_timeout * 1000) {
		abort_with(u, "The destination did not answer within %lld s after the upload "
		    "ended (system.transfers.response_timeout).", (long long)tc->response_timeout);
		return 1;
	}
	progress_update(job, false);
	return 0;
}

static size_t
read_answer(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct upload *u = ctx;
	size_t n = size * nmemb;
	size_t room = MAX_ANSWER - u->answer_len;
	size_t take = n < room ? n : room;
	if (take > 0) {
		u->answer = xrealloc(u->answer, u->answer_len + take + 1);
		memcpy(u->answer + u->answer_len, data, take);
		u->answer_len += take;
		u->answer[u->answer_len] = '\0';
	}
	return n;
}

/* Printable text of at most max bytes: control characters become spaces. */
static void
sanitize(const char *in, size_t len, char *out, size_t max)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < max; i++) {
		unsigned char c = (unsigned char)in[i];
		out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* "The destination answered HTTP 409: <its error text>". */
static void
describe_answer(struct upload *u, long code, char *why, size_t whysize)
{
	char text[400] = "";
	if (u->answer_len > 0) {
		json_object *j = json_tokener_parse(u->answer);
		json_object *e;
		if (j != NULL && json_object_is_type(j, json_type_object) &&
		    json_object_object_get_ex(j, "error", &e) && json_object_is_type(e, json_type_string))
			sanitize(json_object_get_string(e), (size_t)json_object_get_string_len(e), text,
			    sizeof text);
		else
			sanitize(u->answer, u->answer_len < 300 ? u->answer_len : 300, text, sizeof text);
		if (j != NULL)
			json_object_put(j);
	}
	snprintf(why, whysize, "The destination answered HTTP %ld%s%s", code,
	    text[0] ? ": " : " with no error text", text);
}

static struct curl_slist *
headers_for(struct upload *u, char *ua, size_t uasize)
{
	struct curl_slist *h = NULL;
	char *auth = xasprintf("Authorization: %s", u->job->token);
	char ctype[160];
	snprintf(ctype, sizeof ctype, "Content-Type: multipart/form-data; boundary=%s", u->boundary);
	snprintf(ua, uasize, "wingxfer-push/%s", PACKAGE_VERSION);
	h = curl_slist_append(h, auth);
	h = curl_slist_append(h, ctype);
	h = curl_slist_append(h, "Transfer-Encoding: chunked");
	h = curl_slist_append(h, "Expect:");
	h = curl_slist_append(h, "Accept: application/json");
	memset(auth, 0, strlen(auth));
	free(auth);
	return h;
}

static void
upload_free(struct upload *u)
{
	tar_close(u->tar);
	if (u->fd >= 0)
		close(u->fd);
	for (size_t i = 0; i < u->nparts; i++) {
		free(u->parts[i].path);
		free(u->parts[i].label);
	}
	free(u->parts);
	EVP_MD_CTX_free(u->md);
	free(u->out.data);
	free(u->answer);
}

enum upload_result
upload_run(struct job *job, char *why, size_t whysize)
{
	const struct wx_config *cfg = job->cfg;
	struct upload u;
	memset(&u, 0, sizeof u);
	u.job = job;
	u.fd = -1;
	u.md = EVP_MD_CTX_new();
	unsigned char rnd[30];
	if (u.md == NULL || wx_random_bytes(rnd, sizeof rnd) < 0) {
		snprintf(why, whysize, "Cannot set up the upload (no memory or no random bytes).");
		upload_free(&u);
		return UPLOAD_FAILED;
	}
	wx_hex(rnd, sizeof rnd, u.boundary);
	plan_parts(&u);

	CURL *c = curl_easy_init();
	if (c == NULL) {
		snprintf(why, whysize, "Cannot set up the upload (libcurl failed to start).");
		upload_free(&u);
		return UPLOAD_FAILED;
	}
	char ua[64], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = headers_for(&u, ua, sizeof ua);
	curl_easy_setopt(c, CURLOPT_URL, job->rec.url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_body);
	curl_easy_setopt(c, CURLOPT_READDATA, &u);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, (long)UPLOAD_BUFFER);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, read_answer);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &u);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &u);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)cfg->transfers.connect_timeout);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	bool verify = !cfg->api_ignore_certificate_errors;
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	if (cfg->transfers.ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->transfers.ca_file);

	job_phase(job, "streaming");
	job_log(job, "Streaming archive to destination...");
	progress_start_streaming(job);
	u.last_ul_ms = u.next_poll_ms = wx_mono_ms();
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	job->progress.streaming = false;
	if (u.last_ul > job->progress.bytes_sent)
		job->progress.bytes_sent = u.last_ul;

	enum upload_result result = UPLOAD_FAILED;
	if (rc == CURLE_OK && (code == 200 || code == 202)) {
		result = UPLOAD_PUSHED;
		wx_info("the destination answered HTTP %ld", code);
	} else if (rc == CURLE_OK || (code >= 300 && u.why[0] == '\0' && job->stop == JOB_RUNNING)) {
		describe_answer(&u, code, why, whysize);
	} else if (job->stop != JOB_RUNNING) {
		result = UPLOAD_STOPPED;
	} else if (u.why[0] != '\0') {
		snprintf(why, whysize, "%s", u.why);
	} else {
		snprintf(why, whysize, "The archive could not be sent to the destination: %s%s%s%s",
		    curl_easy_strerror(rc), errbuf[0] ? " (" : "", errbuf, errbuf[0] ? ")" : "");
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	upload_free(&u);
	return result;
}
