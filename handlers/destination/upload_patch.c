/*
 * PATCH /api/transfers/uploads/:id (docs/protocol.md §3.2): one chunk.
 *
 * The chunk is read into a private file of the spool (.tmp-<request id>)
 * while the body's running SHA-256 (and, for a Content-Digest, the chunk's
 * own) is computed; a wrong X-Wingxfer-Prefix-Digest (the body's SHA-256
 * up to the chunk's end) or Content-Digest keeps nothing.  Then the PATCH waits (at most FLOW_WAIT_MS)
 * until the assembler consumed the previous chunk, and, holding the
 * upload's lock, checks that the offset, the running hash and the writer
 * are still what they were, renames the file into the spool, fsyncs the
 * directory and saves the state (durably) before the 204/202.  Whoever
 * commits first at an offset wins.  Each PATCH names itself the upload's
 * newest writer once its headers pass; an older one sees that after its
 * next read, or before it commits, and answers 409 superseded.
 */
#include "autoconf.h"

#include "upload.h"
#include "flusher.h"
#include "fsutil.h"
#include "config.h"
#include "log.h"
#include "priority.h"
#include "ratelimit.h"
#include "request.h"
#include "state.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLOW_WAIT_MS 50000      /* a PATCH waits this long for the assembler */
#define READ_PIECE (256 * 1024)

/* "sha-256=:<base64>:" in a Digest-Fields header; false when absent or malformed. */
static bool
parse_digest(const char *h, unsigned char out[32])
{
	if (h == NULL)
		return false;
	const char *p = strstr(h, "sha-256=:");
	if (p == NULL)
		return false;
	p += 9;
	const char *end = strchr(p, ':');
	if (end == NULL || end - p != 44)
		return false;
	unsigned char buf[48];
	int n = EVP_DecodeBlock(buf, (const unsigned char *)p, 44);
	if (n != 33 || p[43] != '=' || p[42] == '=')
		return false;
	memcpy(out, buf, 32);
	return true;
}

struct patch {
	struct wx_request *req;
	const struct wx_state *st;
	const char *id;
	int64_t offset, length;
	bool complete;
	bool has_digest, has_prefix;    /* Content-Digest, X-Wingxfer-Prefix-Digest */
	unsigned char digest[32], prefix[32], repr[32];
	char *writer;           /* <id>.writer */
	char *spool;            /* the upload's spool directory */
	char *tmp;              /* the chunk being read, in it */
	int64_t fsync_ms;       /* how long the chunk's fsync took (for the debug log) */
	int64_t flushes;        /* write-behind flushes before it (for the debug log) */
	int64_t chunk_flushes;  /* of them, of the chunk's file (no O_TMPFILE there) */
};

/* Removes the chunk files of earlier writers (killed, or about to see
 * that they are superseded); with the upload's lock held. */
static void
remove_other_chunks(const struct patch *p)
{
	char *spool = up_file(p->st, p->id, ".spool");
	DIR *d = opendir(spool);
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, ".tmp-", 5) != 0 ||
		    strcmp(e->d_name + 5, p->req->request_id) == 0)
			continue;
		char *f = wx_path_join(spool, e->d_name);
		if (unlink(f) < 0 && errno != ENOENT)
			wx_warn("cannot remove %s: %s", f, strerror(errno));
		free(f);
	}
	if (d != NULL)
		closedir(d);
	free(spool);
}

/* This PATCH becomes the upload's newest writer: with the upload's lock,
 * so that an older writer committing (under it) is either done or sees it. */
static int
claim_writer(struct patch *p)
{
	int fd = up_lock(p->st, p->id);
	if (fd < 0)
		return -1;
	char *dir = up_dir(p->st);
	char *name = xasprintf("%s.writer", p->id);
	int rc = wx_atomic_write(dir, name, p->req->request_id, strlen(p->req->request_id));
	int e = errno;
	free(name);
	free(dir);
	if (rc == 0)
		remove_other_chunks(p);
	close(fd);
	errno = e;
	return rc;
}

static bool
still_writer(const struct patch *p)
{
	const char *why;
	char *s = wx_read_small_file(p->writer, 64, &why);
	bool mine = s != NULL && strcmp(s, p->req->request_id) == 0;
	free(s);
	return mine;
}

/* Committed chunks the assembler has not consumed; -1 on error. */
static int
spool_backlog(const struct wx_state *st, const char *id)
{
	char *spool = up_file(st, id, ".spool");
	DIR *d = opendir(spool);
	free(spool);
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Counts an append that ended without acknowledgement. */
static void
note_interruption(const struct patch *p)
{
	int fd = up_lock(p->st, p->id);
	struct upload cur;
	if (fd >= 0 && up_load(p->st, p->id, &cur) == 0) {
		if (!up_final(cur.state)) {
			cur.interruptions++;
			cur.interrupted = true;
			if (up_save(p->st, &cur) < 0)
				wx_warn("upload %s: cannot save its state: %s", p->id, strerror(errno));
		}
		up_clear(&cur);
	}
	if (fd >= 0)
		close(fd);
}

/* wx_ratelimit_take's stop: a newer PATCH took over while this one waited. */
static bool
superseded(void *ctx)
{
	return !still_writer(ctx);
}

/*
 * Write-behind of a chunk (system.transfers.write_behind): its data goes to
 * the disk in pieces of a quarter of the window while it arrives, and at
 * most one window of it is in flight (older pieces are waited for).  So the
 * fsync before the answer finds little left, and a game server's fsync on
 * the same disk never queues behind a whole chunk.  Once `flush` bytes were
 * waited for, the disk's cache is flushed (write_behind_flush, as in
 * writebehind.h; a wx_flusher on the spool).  The pages stay cached: the
 * assembler reads them next.
 * Only hints: a failure turns them off for the chunk; the fsync is what
 * makes it durable.
 */
struct chunk_wb {
	int64_t window;          /* bytes in flight at most; 0: off */
	int64_t flush;           /* fdatasync per this many bytes waited for; 0: none */
	int64_t submitted;       /* [0, submitted) handed to the disk */
	int64_t waited;          /* [0, waited) on the disk */
	int64_t flushed;         /* [0, flushed) persisted by a flush */
	struct wx_flusher flusher;
};

static void
chunk_wb_wrote(struct chunk_wb *w, int fd, int64_t written)
{
	if (w->window <= 0 || written - w->submitted < w->window / 4)
		return;
	if (sync_file_range(fd, w->submitted, written - w->submitted, SYNC_FILE_RANGE_WRITE) < 0) {
		w->window = 0;
		return;
	}
	w->submitted = written;
	if (w->submitted - w->waited <= w->window)
		return;
	int64_t upto = w->submitted - w->window;
	if (sync_file_range(fd, w->waited, upto - w->waited, SYNC_FILE_RANGE_WAIT_BEFORE |
	    SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) < 0) {
		w->window = 0;
		return;
	}
	w->waited = upto;
	if (w->flush > 0 && w->waited - w->flushed >= w->flush && wx_flusher_due(&w->flusher)) {
		if (wx_flusher_flush(&w->flusher, fd) < 0) {
			w->window = 0;
			return;
		}
		w->flushed = w->waited;
	}
}

/* Reads the body into p->tmp, its SHA-256 into got (with a Content-Digest
 * only), and the running hash from sha on.  0, or answers and -1. */
static int
read_chunk(struct patch *p, unsigned char *sha, size_t sha_len, unsigned char got[32])
{
	int fd = open(p->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		wx_err("upload %s: cannot create %s: %s", p->id, p->tmp, strerror(errno));
		wx_req_internal_error(p->req, "upload spool");
		return -1;
	}
	EVP_MD_CTX *md = NULL;
	if (p->has_digest && ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1))
		abort();
	char *buf = xmalloc(READ_PIECE);
	int64_t got_bytes = 0;
	int rc = 0;
	struct chunk_wb wb = { .window = p->req->cfg->transfers.write_behind,
	    .flush = p->req->cfg->transfers.write_behind_flush };
	wx_flusher_init(&wb.flusher, AT_FDCWD, p->spool);
	/* download_limit paces the bytes off the network, node-wide, as for the
	 * single POST; the assembler reads the spool unpaced (paying twice
	 * would halve the rate). */
	struct wx_ratelimit rl;
	wx_ratelimit_open(&rl, p->st->dir, "download", p->req->cfg->transfers.download_limit,
	    "system.transfers.download_limit");
	while (got_bytes < p->length) {
		size_t want = (size_t)(p->length - got_bytes < READ_PIECE ? p->length - got_bytes :
		    READ_PIECE);
		if (wx_ratelimit_take(&rl, (int64_t)want, superseded, p) < 0) {
			wx_req_error_code(p->req, 409, "superseded", NULL, "A newer PATCH of this upload started; "
			    "this one stopped and nothing of it was kept.");
			rc = -1;
			break;
		}
		ssize_t r = wx_req_read(p->req, buf, want);
		wx_ratelimit_give(&rl, r > 0 ? (int64_t)want - r : (int64_t)want);
		if (r <= 0) {
			wx_req_error_code(p->req, 400, "bad_request", NULL, "The chunk was cut off after %lld of "
			    "its %lld bytes; nothing was kept.", (long long)got_bytes,
			    (long long)p->length);
			rc = -1;
			break;
		}
		if (!still_writer(p)) {
			wx_req_error_code(p->req, 409, "superseded", NULL, "A newer PATCH of this upload started; "
			    "this one stopped and nothing of it was kept.");
			rc = -1;
			break;
		}
		if (wx_write_all(fd, buf, (size_t)r) < 0) {
			wx_err("upload %s: cannot write %s: %s", p->id, p->tmp, strerror(errno));
			wx_req_internal_error(p->req, "upload spool");
			rc = -1;
			break;
		}
		if (md != NULL)
			EVP_DigestUpdate(md, buf, (size_t)r);
		up_sha_add(sha, sha_len, buf, (size_t)r);
		got_bytes += r;
		chunk_wb_wrote(&wb, fd, got_bytes);
	}
	wx_ratelimit_close(&rl);
	free(buf);
	if (md != NULL)
		EVP_DigestFinal_ex(md, got, NULL);
	EVP_MD_CTX_free(md);
	int64_t synced_from = wx_mono_ms();
	if (rc == 0 && fsync(fd) < 0) {
		wx_err("upload %s: fsync %s: %s", p->id, p->tmp, strerror(errno));
		wx_req_internal_error(p->req, "upload spool");
		rc = -1;
	}
	p->fsync_ms = wx_mono_ms() - synced_from;
	p->flushes = wb.flusher.flushes;
	p->chunk_flushes = wb.flusher.via_written;
	wx_flusher_close(&wb.flusher);
	if (close(fd) < 0 && rc == 0) {
		wx_req_internal_error(p->req, "upload spool");
		rc = -1;
	}
	return rc;
}

/* Waits until the assembler consumed the previous chunk; false when
 * answered (503 busy, 409 superseded). */
static bool
wait_for_assembler(struct patch *p)
{
	int64_t until = wx_mono_ms() + FLOW_WAIT_MS;
	char *spool = up_file(p->st, p->id, ".spool");
	int watch = up_watch_open(spool);
	free(spool);
	for (;;) {
		int n = spool_backlog(p->st, p->id);
		if (n == 0) {
			up_watch_close(watch);
			return true;
		}
		if (!still_writer(p)) {
			up_watch_close(watch);
			wx_req_error_code(p->req, 409, "superseded", NULL, "A newer PATCH of this upload started; "
			    "this one stopped and nothing of it was kept.");
			return false;
		}
		if (n < 0 || wx_mono_ms() >= until)
			break;
		up_watch_wait(watch, 100);
	}
	up_watch_close(watch);
	wx_req_header(p->req, "Retry-After", "5");
	wx_req_error_code(p->req, 503, "busy", NULL, "This node is still extracting the previous chunk; "
	    "send this one again in a moment (nothing was kept).");
	return false;
}

/* With the upload's lock: the chunk becomes part of the upload (answers). */
static void
commit(struct patch *p, const unsigned char *start_sha, const unsigned char *new_sha,
    size_t sha_len)
{
	struct upload cur;
	if (up_load(p->st, p->id, &cur) < 0) {
		wx_err("upload %s: its state cannot be read: %s", p->id, strerror(errno));
		wx_req_internal_error(p->req, "upload state");
		return;
	}
	if (up_answer_closed(p->req, &cur))
		goto out;
	if (!still_writer(p)) {
		wx_req_error_code(p->req, 409, "superseded", NULL, "A newer PATCH of this upload started; "
		    "this one stopped and nothing of it was kept.");
		goto out;
	}
	if (cur.offset != p->offset || cur.sha_len != sha_len ||
	    memcmp(cur.sha, start_sha, sha_len) != 0) {
		wx_req_header(p->req, "Upload-Offset", "%lld", (long long)cur.offset);
		json_object *x = json_object_new_object();
		json_object_object_add(x, "offset", json_object_new_int64(cur.offset));
		wx_req_error_code(p->req, 409, "offset_mismatch", x, "The upload's acknowledged offset "
		    "changed while this chunk was read; it is %lld.", (long long)cur.offset);
		goto out;
	}
	if (p->complete) {
		unsigned char whole[32];
		up_sha_raw(new_sha, sha_len, whole);
		if (memcmp(whole, p->repr, 32) != 0) {
			cur.state = UP_FAILED;
			cur.status = 422;
			cur.final_at = wx_now();
			wx_strlcpy(cur.error, "The body does not match the SHA-256 the source computed "
			    "(Repr-Digest): it was changed or damaged on the way; nothing was installed.",
			    sizeof cur.error);
			if (up_save(p->st, &cur) < 0)
				wx_err("upload %s: cannot save its state: %s", p->id, strerror(errno));
			wx_req_error_code(p->req, 422, "repr_digest_mismatch", NULL, "%s", cur.error);
			goto out;
		}
	}
	char *spool = up_file(p->st, p->id, ".spool");
	char *final = xasprintf("%s/%020lld", spool, (long long)p->offset);
	bool placed = p->length == 0 || rename(p->tmp, final) == 0;
	if (!placed || (p->length > 0 && wx_fsync_dir(spool) < 0)) {
		wx_err("upload %s: cannot place the chunk in %s: %s", p->id, spool, strerror(errno));
		if (placed)
			(void)unlink(final);
		free(final);
		free(spool);
		wx_req_internal_error(p->req, "upload spool");
		goto out;
	}
	cur.offset += p->length;
	memcpy(cur.sha, new_sha, sha_len);
	if (!p->complete)
		cur.chunk_size = p->length;
	if (cur.interrupted) {
		cur.resumes++;
		cur.interrupted = false;
	}
	if (p->complete)
		cur.state = UP_FINISHING;
	if (up_save(p->st, &cur) < 0) {
		wx_err("upload %s: cannot save its state: %s", p->id, strerror(errno));
		if (p->length > 0)
			(void)unlink(final);
		free(final);
		free(spool);
		wx_req_internal_error(p->req, "upload state");
		goto out;
	}
	free(final);
	free(spool);
	wx_req_header(p->req, "Upload-Offset", "%lld", (long long)cur.offset);
	if (p->complete) {
		wx_req_header(p->req, "Upload-Complete", "?1");
		wx_info("upload %s: last chunk acknowledged (%lld bytes in all)", p->id,
		    (long long)cur.offset);
		wx_req_send(p->req, 202, NULL, "", 0);
	} else {
		wx_req_send(p->req, 204, NULL, "", 0);
	}
out:
	up_clear(&cur);
}

/* The request's headers into p; false when answered (400/411/413). */
static bool
parse_patch(struct wx_request *req, struct patch *p)
{
	const char *off = wx_req_env(req, "HTTP_UPLOAD_OFFSET");
	const char *cmp = wx_req_env(req, "HTTP_UPLOAD_COMPLETE");
	if (off == NULL || wx_parse_i64(off, 0, INT64_MAX, &p->offset) != NULL) {
		wx_req_error_code(req, 400, "bad_request", NULL, "Upload-Offset is missing or not a number of "
		    "bytes.");
		return false;
	}
	if (cmp == NULL || (strcmp(cmp, "?0") != 0 && strcmp(cmp, "?1") != 0)) {
		wx_req_error_code(req, 400, "bad_request", NULL, "Upload-Complete must be ?0 or ?1.");
		return false;
	}
	p->complete = strcmp(cmp, "?1") == 0;
	if (req->content_length < 0) {
		wx_req_error_code(req, 411, "length_required", NULL, "A chunk needs a Content-Length (no "
		    "chunked transfer-coding).");
		return false;
	}
	p->length = req->content_length;
	if (p->length > UP_CHUNK_MAX) {
		wx_req_error_code(req, 413, "too_large", NULL, "A chunk may be at most %lld bytes "
		    "(X-Wingxfer-Chunk-Max); this one is %lld.", UP_CHUNK_MAX, (long long)p->length);
		return false;
	}
	if (p->length == 0 && !p->complete) {
		wx_req_error_code(req, 400, "bad_request", NULL, "An empty chunk is allowed only as the last "
		    "one (Upload-Complete: ?1).");
		return false;
	}
	const char *cd = wx_req_env(req, "HTTP_CONTENT_DIGEST");
	const char *pd = wx_req_env(req, "HTTP_X_WINGXFER_PREFIX_DIGEST");
	p->has_digest = parse_digest(cd, p->digest);
	p->has_prefix = parse_digest(pd, p->prefix);
	if ((cd != NULL && !p->has_digest) || (pd != NULL && !p->has_prefix) ||
	    (!p->has_digest && !p->has_prefix)) {
		wx_req_error_code(req, 400, "bad_request", NULL, "A chunk needs Content-Digest: "
		    "sha-256=:<base64 of the chunk's SHA-256>: or X-Wingxfer-Prefix-Digest: "
		    "sha-256=:<base64 of the body's SHA-256 up to the chunk's end>:; %s is %s.",
		    pd != NULL ? "X-Wingxfer-Prefix-Digest" : "Content-Digest",
		    cd == NULL && pd == NULL ? "missing" : "malformed");
		return false;
	}
	if (p->complete && !parse_digest(wx_req_env(req, "HTTP_REPR_DIGEST"), p->repr)) {
		wx_req_error_code(req, 400, "bad_request", NULL, "The last chunk needs Repr-Digest: "
		    "sha-256=:<base64 of the whole body's SHA-256>:.");
		return false;
	}
	return true;
}

void
dest_upload_patch(struct wx_request *req)
{
	struct patch p;
	memset(&p, 0, sizeof p);
	p.req = req;
	struct wx_priority prio = { 0 };
	struct upload up;
	if (!up_find(req, &p.st, &up))
		return;
	p.id = req->param;
	if (!up_revive(req, p.st, &up) || up_answer_closed(req, &up) || !parse_patch(req, &p))
		goto out;
	if (p.offset != up.offset) {
		wx_req_header(req, "Upload-Offset", "%lld", (long long)up.offset);
		json_object *x = json_object_new_object();
		json_object_object_add(x, "offset", json_object_new_int64(up.offset));
		wx_req_error_code(req, 409, "offset_mismatch", x, "Upload-Offset %lld is not the acknowledged "
		    "offset %lld; send from there.", (long long)p.offset, (long long)up.offset);
		goto out;
	}
	p.writer = up_file(p.st, p.id, ".writer");
	p.spool = up_file(p.st, p.id, ".spool");
	p.tmp = xasprintf("%s/.tmp-%s", p.spool, req->request_id);
	if (claim_writer(&p) < 0) {
		wx_err("upload %s: cannot write %s: %s", p.id, p.writer, strerror(errno));
		wx_req_internal_error(req, "upload state");
		goto out;
	}
	/* Reading, writing and committing the chunk at the node's transfer
	 * priority; this FastCGI worker serves other requests afterwards. */
	wx_priority_lower(req->cfg, &prio);
	unsigned char start_sha[sizeof up.sha], new_sha[sizeof up.sha], got[32], upto[32];
	memcpy(start_sha, up.sha, up.sha_len);
	memcpy(new_sha, up.sha, up.sha_len);
	int64_t t_read = wx_mono_ms();
	if (read_chunk(&p, new_sha, up.sha_len, got) < 0) {
		note_interruption(&p);
		goto out;
	}
	if (p.has_digest && memcmp(got, p.digest, 32) != 0) {
		note_interruption(&p);
		wx_req_error_code(req, 400, "digest_mismatch", NULL, "The chunk's bytes do not match its "
		    "Content-Digest; nothing was kept; send them again.");
		goto out;
	}
	if (p.has_prefix) {
		up_sha_raw(new_sha, up.sha_len, upto);
		if (memcmp(upto, p.prefix, 32) != 0) {
			note_interruption(&p);
			wx_req_error_code(req, 400, "digest_mismatch", NULL, "The body up to this chunk's "
			    "end does not match its X-Wingxfer-Prefix-Digest; nothing was kept; send "
			    "the chunk again.");
			goto out;
		}
	}
	int64_t t_wait = wx_mono_ms();
	if (!wait_for_assembler(&p))
		goto out;
	int64_t t_commit = wx_mono_ms();
	int fd = up_lock(p.st, p.id);
	if (fd < 0) {
		wx_err("upload %s: cannot lock its state: %s", p.id, strerror(errno));
		wx_req_internal_error(req, "upload state");
		goto out;
	}
	commit(&p, start_sha, new_sha, up.sha_len);
	close(fd);
	wx_debug("upload %s: chunk at %lld (%lld bytes): checks %lld ms, read %lld ms (fsync %lld, "
	    "%lld flushes, %lld through the chunk), waited for the assembler %lld ms, commit "
	    "%lld ms (HTTP %d)", p.id,
	    (long long)p.offset, (long long)p.length, (long long)(t_read - req->started_ms),
	    (long long)(t_wait - t_read), (long long)p.fsync_ms, (long long)p.flushes,
	    (long long)p.chunk_flushes, (long long)(t_commit - t_wait),
	    (long long)(wx_mono_ms() - t_commit), req->status);
out:
	if (p.tmp != NULL)
		(void)unlink(p.tmp);
	free(p.tmp);
	free(p.spool);
	free(p.writer);
	up_clear(&up);
	wx_priority_restore(&prio);
}
