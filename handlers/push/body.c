/*
 * The request body of the upload, produced on demand: the multipart parts in
 * the order FeatherWings sends them (wings-protocol.md §2.3), the archive
 * made and compressed only as fast as the reader takes it, each binary part
 * hashed as it goes out, so its checksum field can follow it without a
 * second read.  One output buffer of a few MiB, whatever the server's size.
 */
#include "autoconf.h"

#include "push.h"
#include "chunk_spool.h"
#include "config.h"
#include "presync.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OUT_INITIAL (1024 * 1024)
#define FILE_CHUNK (256 * 1024)
#define POLL_MS 200

struct outbuf {
	unsigned char *data;
	size_t off, len, cap;   /* unread bytes are data[off .. len) */
};

enum part_kind { PART_ARCHIVE, PART_PRESYNC, PART_CHECKSUMS, PART_BACKUP, PART_INSTALL_LOG,
	PART_CLOSE };

struct part {
	enum part_kind kind;
	char *path;             /* backup or install log */
	char *label;            /* backup UUID */
};

struct body {
	struct job *job;
	char boundary[61];
	struct part *parts;
	size_t nparts, cur;
	int nbackups, backup_no;
	bool started;           /* the current part's headers are out */
	bool eof;               /* the closing boundary is out */
	struct tar *tar;
	struct wx_sha256 md;    /* the current binary part's SHA-256 */
	bool unhashed;          /* body_checksum_by_digest: the archive is not hashed */
	char archive_sum[65];
	int fd;                 /* current backup / install log */
	int64_t fsize, fleft;
	struct outbuf out;
	int64_t next_poll_ms;
	int64_t emitted;        /* bytes body_read returned */
	int64_t mark_every;     /* tar bytes between marks (0: none) */
	bool mark_waits;        /* mark is made, not yet taken */
	struct body_mark mark;
	char err[1024];         /* why the body could not be made */
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
abort_with(struct body *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
abort_with(struct body *b, const char *fmt, ...)
{
	if (b->err[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(b->err, sizeof b->err, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void
hash_start(struct body *b)
{
	wx_sha256_init(&b->md);
}

static void
hash_end(struct body *b, char out[65])
{
	unsigned char md[32];
	wx_sha256_digest(&b->md, md);
	wx_hex(md, sizeof md, out);
}

static int
archive_sink(void *ctx, const void *buf, size_t len)
{
	struct body *b = ctx;
	if (!b->unhashed)
		wx_sha256_update(&b->md, buf, len);
	out_put(&b->out, buf, len);
	b->job->progress.archive_bytes += (int64_t)len;
	return 0;
}

static void
next_part(struct body *b)
{
	struct part *p = &b->parts[b->cur];
	if (p->kind == PART_BACKUP && b->parts[b->cur + 1].kind != PART_BACKUP)
		job_log(b->job, "Finished streaming archive and backups to destination.");
	b->cur++;
	b->started = false;
}

/* A mark here: the compressed stream ends (its last bytes into out) and begins again. */
static int
make_mark(struct body *b)
{
	struct body_mark *m = &b->mark;
	if (tar_mark(b->tar, &m->entries, m->last_sha256) < 0)
		return abort_with(b, "The archive could not be made: %s", tar_error(b->tar));
	m->offset = b->emitted + (int64_t)(b->out.len - b->out.off);
	m->archive = b->md;
	m->bytes_read = b->job->progress.bytes_read;
	m->files = b->job->progress.files;
	m->archive_bytes = b->job->progress.archive_bytes;
	m->skipped = b->job->skipped;
	b->mark_waits = true;
	return 0;
}

static int
produce_archive(struct body *b)
{
	if (!b->started) {
		out_printf(&b->out, "--%s\r\nContent-Disposition: form-data; name=\"archive\"; "
		    "filename=\"archive.tar.%s\"\r\nContent-Type: application/octet-stream\r\n\r\n",
		    b->boundary, b->job->codec == WX_COMPRESS_ZSTD ? "zst" : "gz");
		char err[1024];
		b->tar = tar_open(b->job, archive_sink, b, err, sizeof err);
		if (b->tar == NULL)
			return abort_with(b, "The archive could not be started: %s", err);
		hash_start(b);
		b->started = true;
		return 0;
	}
	int rc = tar_step(b->tar);
	if (rc < 0)
		return abort_with(b, "The archive could not be made: %s", tar_error(b->tar));
	if (rc > 0 && b->mark_every > 0 && !b->mark_waits && tar_mark_due(b->tar, b->mark_every))
		return make_mark(b);
	if (rc == 0) {
		tar_close(b->tar);
		b->tar = NULL;
		if (b->unhashed)
			job_log(b->job, "Finished streaming archive to destination (its checksum is "
			    "the whole upload's SHA-256).");
		else
			hash_end(b, b->archive_sum);
		next_part(b);
	}
	return 0;
}

/*
 * The pre-sync's rounds in place of the archive (presync.h): 1 when no byte
 * is ready and the caller may not wait (a request is in flight), else 0 or
 * -1.
 */
static int
produce_presync(struct body *b)
{
	struct job *job = b->job;
	if (!b->started) {
		char err[512];
		if (presync_start(job->presync, b->boundary, err, sizeof err) < 0)
			return abort_with(b, "%s", err);
		b->started = true;
		return 0;
	}
	out_reserve(&b->out, FILE_CHUNK);
	int64_t made = b->emitted + (int64_t)(b->out.len - b->out.off);
	ssize_t n = presync_read(job->presync, b->out.data + b->out.len, FILE_CHUNK,
	    !job->upload_busy, made == job->upload_acked && job->upload_consumed >= made);
	if (n == PRESYNC_LATER)
		return 1;
	if (n < 0)
		return abort_with(b, "%s", presync_error(job->presync));
	if (n > 0) {
		b->out.len += (size_t)n;
		job->progress.archive_bytes += n;
		return 0;
	}
	wx_strlcpy(b->archive_sum, presync_sum_sha256(job->presync), sizeof b->archive_sum);
	next_part(b);
	return 0;
}

static void
produce_checksums(struct body *b)
{
	/* Both names: Pterodactyl reads checksum, Pelican checksum_archive. */
	out_printf(&b->out, "\r\n--%s\r\nContent-Disposition: form-data; name=\"checksum\"\r\n\r\n%s",
	    b->boundary, b->archive_sum);
	out_printf(&b->out, "\r\n--%s\r\nContent-Disposition: form-data; "
	    "name=\"checksum_archive\"\r\n\r\n%s", b->boundary, b->archive_sum);
	if (b->job->rec.extra != NULL)
		json_object_object_add(b->job->rec.extra, "archive_sha256",
		    json_object_new_string(b->archive_sum));
	job_log(b->job, b->job->presync != NULL ? "Finished streaming the pre-sync rounds to "
	    "destination." : "Finished streaming archive to destination.");
	next_part(b);
}

static int
start_file(struct body *b, struct part *p)
{
	const char *what = p->kind == PART_BACKUP ? "backup" : "install log";
	b->fd = open(p->path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (b->fd < 0 && errno == ENOENT) {
		job_log(b->job, "The %s %s disappeared before it could be sent; it is left out.",
		    what, p->path);
		next_part(b);
		return 0;
	}
	struct stat st;
	if (b->fd < 0 || fstat(b->fd, &st) < 0)
		return abort_with(b, "The %s %s could not be read: %s", what, p->path,
		    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return abort_with(b, "The %s %s is not a regular file", what, p->path);
	b->fsize = b->fleft = st.st_size;
	if (p->kind == PART_BACKUP) {
		if (b->backup_no++ == 0)
			job_log(b->job, "Streaming %d backup files to destination...", b->nbackups);
		out_printf(&b->out, "\r\n--%s\r\nContent-Disposition: form-data; "
		    "name=\"backup_%s.tar.gz\"; filename=\"%s.tar.gz\"\r\n"
		    "Content-Type: application/octet-stream\r\n\r\n", b->boundary, p->label, p->label);
	} else {
		out_printf(&b->out, "\r\n--%s\r\nContent-Disposition: form-data; "
		    "name=\"install_logs\"; filename=\"install.log\"\r\n"
		    "Content-Type: application/octet-stream\r\n\r\n", b->boundary);
	}
	hash_start(b);
	b->started = true;
	return 0;
}

static int
produce_file(struct body *b, struct part *p)
{
	if (!b->started)
		return start_file(b, p);
	if (b->fleft > 0) {
		size_t want = b->fleft > FILE_CHUNK ? FILE_CHUNK : (size_t)b->fleft;
		out_reserve(&b->out, want);
		ssize_t n;
		do
			n = read(b->fd, b->out.data + b->out.len, want);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return abort_with(b, "%s could not be read: %s", p->path, strerror(errno));
		if (n == 0)
			return abort_with(b, "%s changed size while it was sent", p->path);
		wx_sha256_update(&b->md, b->out.data + b->out.len, (size_t)n);
		b->out.len += (size_t)n;
		b->fleft -= n;
		return 0;
	}
	struct stat st;
	if (fstat(b->fd, &st) < 0 || st.st_size != b->fsize)
		return abort_with(b, "%s changed size while it was sent", p->path);
	close(b->fd);
	b->fd = -1;
	char sum[65];
	hash_end(b, sum);
	if (p->kind == PART_BACKUP) {
		out_printf(&b->out, "\r\n--%s\r\nContent-Disposition: form-data; "
		    "name=\"checksum_backup_%s.tar.gz\"\r\n\r\n%s", b->boundary, p->label, sum);
		job_log(b->job, "Backup %d/%d completed: %s.tar.gz", b->backup_no, b->nbackups,
		    p->label);
	} else {
		job_log(b->job, "Finished streaming the install logs to destination.");
	}
	next_part(b);
	return 0;
}

/* Produces the next piece of the body into the output buffer; -1 on failure,
 * 1 when nothing can be made without waiting (produce_presync). */
static int
produce(struct body *b)
{
	struct part *p = &b->parts[b->cur];
	switch (p->kind) {
	case PART_ARCHIVE:
		return produce_archive(b);
	case PART_PRESYNC:
		return produce_presync(b);
	case PART_CHECKSUMS:
		produce_checksums(b);
		return 0;
	case PART_BACKUP:
	case PART_INSTALL_LOG:
		return produce_file(b, p);
	case PART_CLOSE:
		out_printf(&b->out, "\r\n--%s--\r\n", b->boundary);
		b->eof = true;
		return 0;
	}
	return abort_with(b, "internal error: unknown part");
}

static void
add_part(struct body *b, enum part_kind kind, char *path, const char *label)
{
	b->parts = xrealloc(b->parts, (b->nparts + 1) * sizeof *b->parts);
	struct part *p = &b->parts[b->nparts++];
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
plan_parts(struct body *b)
{
	struct job *job = b->job;
	const struct wx_config *cfg = job->cfg;
	add_part(b, job->presync != NULL ? PART_PRESYNC : PART_ARCHIVE, NULL, NULL);
	b->unhashed = body_checksum_by_digest(job);
	if (!b->unhashed)
		add_part(b, PART_CHECKSUMS, NULL, NULL);
	size_t n = job->backups ? json_object_array_length(job->backups) : 0;
	for (size_t i = 0; i < n; i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(job->backups, i));
		char *path = xasprintf("%s/%s/%s.tar.gz", cfg->backup_directory, job->uuid, id);
		if (is_regular(path)) {
			add_part(b, PART_BACKUP, path, id);
			b->nbackups++;
		} else {
			job_log(job, "Backup %s was requested but is not on this node (%s); it is not "
			    "sent.", id, path);
			free(path);
		}
	}
	char *log = xasprintf("%s/install/%s.log", cfg->log_directory, job->uuid);
	if (is_regular(log))
		add_part(b, PART_INSTALL_LOG, log, NULL);
	else
		free(log);
	add_part(b, PART_CLOSE, NULL, NULL);
}

/* --- the interface --- */

struct body *
body_open(struct job *job, const char *boundary, char *err, size_t errsize)
{
	struct body *b = xcalloc(1, sizeof *b);
	b->job = job;
	b->fd = -1;
	unsigned char rnd[30];
	if (boundary == NULL && wx_random_bytes(rnd, sizeof rnd) < 0) {
		snprintf(err, errsize, "Cannot set up the upload (no memory or no random bytes).");
		body_close(b);
		return NULL;
	}
	/* 60 hex digits, as Go's mime/multipart makes them. */
	if (boundary != NULL)
		wx_strlcpy(b->boundary, boundary, sizeof b->boundary);
	else
		wx_hex(rnd, sizeof rnd, b->boundary);
	plan_parts(b);
	return b;
}

bool
body_checksum_by_digest(const struct job *job)
{
	return job->chunk_size > 0 && job->chunk_body_checksum && job->presync == NULL;
}

const char *
body_boundary(const struct body *b)
{
	return b->boundary;
}

const char *
body_error(const struct body *b)
{
	return b->err;
}

ssize_t
body_read(struct body *b, void *buf, size_t n)
{
	struct job *job = b->job;
	while (b->out.len - b->out.off < n && !b->eof) {
		int r = produce(b);
		if (r < 0)
			return -1;
		if (r > 0) {
			if (b->out.len == b->out.off)
				return CHUNK_SPOOL_LATER;
			break;
		}
		int64_t now = wx_mono_ms();
		if (now >= b->next_poll_ms) {
			b->next_poll_ms = now + POLL_MS;
			if (job_should_stop(job))
				return -1;
			progress_update(job, false);
		}
	}
	size_t have = b->out.len - b->out.off;
	if (have > n)
		have = n;
	if (b->mark_waits && b->emitted < b->mark.offset &&
	    (int64_t)have > b->mark.offset - b->emitted)
		have = (size_t)(b->mark.offset - b->emitted);
	memcpy(buf, b->out.data + b->out.off, have);
	b->out.off += have;
	b->emitted += (int64_t)have;
	return (ssize_t)have;
}

void
body_marks(struct body *b, int64_t every)
{
	b->mark_every = every;
}

bool
body_mark_take(struct body *b, int64_t offset, struct body_mark *m)
{
	if (!b->mark_waits || b->mark.offset != offset)
		return false;
	*m = b->mark;
	b->mark_waits = false;
	return true;
}

struct body *
body_open_at(struct job *job, const char *boundary, const struct body_mark *m, char *err,
    size_t errsize)
{
	struct body *b = body_open(job, boundary, err, errsize);
	if (b == NULL)
		return NULL;
	char why[512];
	b->tar = tar_open_at(job, archive_sink, b, m->entries, m->last_sha256, why, sizeof why);
	if (b->tar == NULL) {
		snprintf(err, errsize, "The archive cannot be made again from its mark at offset "
		    "%lld: %s.", (long long)m->offset, why);
		body_close(b);
		return NULL;
	}
	b->cur = 0;             /* the archive part, its headers already sent */
	b->started = true;
	b->md = m->archive;
	b->emitted = m->offset;
	job->progress.bytes_read = m->bytes_read;
	job->progress.files = m->files;
	job->progress.archive_bytes = m->archive_bytes;
	job->skipped = m->skipped;
	return b;
}

void
body_close(struct body *b)
{
	if (b == NULL)
		return;
	tar_close(b->tar);
	if (b->fd >= 0)
		close(b->fd);
	for (size_t i = 0; i < b->nparts; i++) {
		free(b->parts[i].path);
		free(b->parts[i].label);
	}
	free(b->parts);
	wx_debug("body buffer peaked at %zu bytes", b->out.cap);
	free(b->out.data);
	free(b);
}
