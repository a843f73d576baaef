/*
 * The chunked, resumable upload (docs/protocol.md §3, §4): the body that
 * the single POST would carry (body.c), cut into PATCH requests of at most
 * job->chunk_size bytes to <url>/uploads/<id>, each with its SHA-256.
 *
 * The body is produced once, in order, into a private spool (chunk_spool.h:
 * two slots of one chunk, unlinked 0600 files in the state directory, so
 * the worker's memory does not grow with the chunk size; the next chunk is
 * made while the current one is on the wire) and is kept there until the
 * destination acknowledged it.  After an interruption (connection error or
 * cut, a timeout, a 5xx or a non-JSON answer from any hop, a digest refused)
 * the worker waits with Wings' backoff, asks the destination for its offset
 * and sends from there: an offset inside the spool re-sends at most that
 * chunk; an offset before it (the destination lost acknowledged bytes)
 * makes the body again from the start with the same boundary, checks what
 * it skips against the destination's prefix_sha256, and goes on.  A 413
 * from any hop halves the chunk size (not below 1 MiB).  Bounded by
 * resume_attempts consecutive interruptions without progress and by
 * resume_window since the last acknowledged byte; then the upload fails and
 * is deleted (DELETE), as it is on a cancel.  No request waits more than
 * CH_ANSWER_WAIT seconds for its answer; after the last chunk the outcome
 * is polled with GET for at most response_timeout.
 *
 * The record keeps extra.chunked (upload id and counters, shown by the
 * status outputs) and extra.resume (upload URL, its secret, the boundary):
 * the record file is 0600 and extra.resume is never shown or logged.
 */
#include "autoconf.h"

#include "chunked.h"
#include "backoff.h"
#include "config.h"
#include "curl_setup.h"
#include "log.h"
#include "ratelimit.h"
#include "url_redact.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* --- the record --- */

static void
record_counters(struct chunked *u)
{
	struct job *job = u->job;
	json_object *j = json_object_new_object();
	json_object_object_add(j, "upload", json_object_new_string(u->id));
	json_object_object_add(j, "acked", json_object_new_int64(u->acked));
	json_object_object_add(j, "chunk_size", json_object_new_int64(u->chunk));
	json_object_object_add(j, "interruptions", json_object_new_int64(u->interruptions));
	json_object_object_add(j, "resumes", json_object_new_int64(u->resumes));
	json_object_object_add(j, "resent_bytes", json_object_new_int64(u->resent));
	json_object_object_add(j, "remade_bytes", json_object_new_int64(u->remade));
	json_object_object_add(job->rec.extra, "chunked", j);
}

/* extra.resume: what a new worker needs to go on (never shown, never logged). */
static void
record_resume(struct chunked *u)
{
	struct job *job = u->job;
	char *shown = wx_url_redact(u->url);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "url", json_object_new_string(shown));
	json_object_object_add(j, "secret", json_object_new_string(u->secret));
	json_object_object_add(j, "boundary", json_object_new_string(body_boundary(u->body)));
	json_object_object_add(j, "codec",
	    json_object_new_string(wx_compress_format_name(job->codec)));
	json_object_object_add(j, "level",
	    json_object_new_int64(job->cfg->transfers.compression_level));
	json_object_object_add(j, "prefix_digest", json_object_new_boolean(u->prefix_digest));
	json_object_object_add(j, "body_checksum", json_object_new_boolean(body_checksum_by_digest(job)));
	json_object_object_add(job->rec.extra, "resume", j);
	free(shown);
}

/* extra.resume.mark: the last mark at or below the acknowledged offset. */
static void
record_mark(struct chunked *u)
{
	json_object *r;
	(void)ch_marks_settle(&u->marks, u->acked);
	if (u->job->rec.extra == NULL ||
	    !json_object_object_get_ex(u->job->rec.extra, "resume", &r))
		return;
	if (u->marks.has_acked)
		json_object_object_add(r, "mark", ch_mark_json(&u->marks.acked));
	else
		json_object_object_del(r, "mark");
}

static void
save(struct chunked *u)
{
	record_counters(u);
	record_mark(u);
	job_save(u->job);
}

/* --- the spool --- */

static ssize_t
body_source(void *ctx, void *buf, size_t n)
{
	return body_read(ctx, buf, n);
}

static const char *
body_source_error(void *ctx)
{
	return body_error(ctx);
}

/* The spool reached offset `produced`: a mark made there is taken with the body's state. */
static void
body_reached(void *ctx, int64_t produced, const struct wx_sha256 *whole)
{
	struct chunked *u = ctx;
	struct body_mark m;
	if (u->body != NULL && body_mark_take(u->body, produced, &m)) {
		m.whole = *whole;
		ch_marks_add(&u->marks, &m);
	}
}

/* "sha-256=:<base64>:" of a digest. */
static void
sf_digest(const unsigned char md[32], char *out, size_t size)
{
	unsigned char b64[48];
	EVP_EncodeBlock(b64, md, 32);
	snprintf(out, size, "sha-256=:%s:", (const char *)b64);
}

/*
 * The digest header of the chunk [off, off + len): X-Wingxfer-Prefix-Digest
 * (the body's SHA-256 up to the chunk's end, which the spool keeps as it
 * goes: no hashing pass of its own) when the destination names
 * prefix-digest, else Content-Digest (the chunk's own SHA-256).  0 or -1.
 */
static int
chunk_digest_header(struct chunked *u, int64_t off, int64_t len, char *out, size_t size)
{
	unsigned char d[32];
	char sf[80];
	if (u->prefix_digest ? chunk_spool_prefix_sha256(&u->spool, off + len, d) < 0 :
	    chunk_spool_range_sha256(&u->spool, off, len, d) < 0)
		return -1;
	sf_digest(d, sf, sizeof sf);
	snprintf(out, size, "%s: %s", u->prefix_digest ? "X-Wingxfer-Prefix-Digest" :
	    "Content-Digest", sf);
	return 0;
}

/* --- the upload's requests --- */

static void
secret_lines(struct chunked *u, char *auth, size_t size)
{
	snprintf(auth, size, "Authorization: Bearer %s", u->secret);
}

/* DELETE the upload (after a cancel or a failure); its answer only logged. */
static void
delete_upload(struct chunked *u)
{
	char auth[128];
	secret_lines(u, auth, sizeof auth);
	const char *lines[] = { auth, "Accept: application/json" };
	long code;
	CURLcode rc = ch_request(u, "DELETE", u->url, lines, WX_ARRAY_LEN(lines), 0, -1, true, &code);
	explicit_bzero(auth, sizeof auth);
	if (rc == CURLE_OK && (code == 204 || code == 410))
		wx_info("the upload %s was deleted on the destination (HTTP %ld)", u->id, code);
	else if (rc == CURLE_OK)
		wx_warn("the destination answered HTTP %ld to the DELETE of upload %s", code, u->id);
	else
		wx_warn("the DELETE of upload %s was not answered: %s", u->id, curl_easy_strerror(rc));
}

/* POST <url>/uploads: u->id, u->secret, u->url.  0, or -1 with why set. */
static int
create_upload(struct chunked *u, char *why, size_t whysize)
{
	struct job *job = u->job;
	char *auth = xasprintf("Authorization: %s", job->token);
	char type[160], size[64];
	snprintf(type, sizeof type, "X-Wingxfer-Body-Type: multipart/form-data; boundary=%s",
	    body_boundary(u->body));
	snprintf(size, sizeof size, "X-Wingxfer-Size: %lld", (long long)job->progress.bytes_total);
	const char *lines[] = { auth, "Upload-Complete: ?0", type, size, "Expect:",
	    "Accept: application/json", "X-Wingxfer-Checksum: body" };
	size_t nlines = WX_ARRAY_LEN(lines) - (body_checksum_by_digest(job) ? 0 : 1);
	long code;
	CURLcode rc = ch_request(u, "POST", u->base, lines, nlines, 0, -1, false, &code);
	memset(auth, 0, strlen(auth));
	free(auth);
	if (job->stop != JOB_RUNNING)
		return -1;
	if (rc != CURLE_OK) {
		ch_why(why, whysize, "The upload could not be opened on the destination: %s%s%s%s",
		    u->why[0] ? u->why : curl_easy_strerror(rc), u->errbuf[0] ? " (" : "",
		    u->errbuf, u->errbuf[0] ? ")" : "");
		return -1;
	}
	if (code != 201) {
		answer_describe(u->answer.text ? u->answer.text : "", u->answer.len, code, why,
		    whysize);
		return -1;
	}
	const char *id = ch_json_str(u->json, "upload"), *secret = ch_json_str(u->json, "secret");
	bool good = id != NULL && strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32 &&
	    secret != NULL && strlen(secret) == 64 && strspn(secret, "0123456789abcdef") == 64;
	size_t ll = strlen(u->h.location), il = id ? strlen(id) : 0;
	if (good && (ll < il + 9 || strcmp(u->h.location + ll - il, id) != 0 ||
	    strncmp(u->h.location + ll - il - 9, "/uploads/", 9) != 0))
		good = false;
	if (!good) {
		ch_why(why, whysize, "The destination's answer to the upload's creation is not "
		    "what docs/protocol.md §3.1 says (upload id, secret, Location).");
		return -1;
	}
	wx_strlcpy(u->id, id, sizeof u->id);
	wx_strlcpy(u->secret, secret, sizeof u->secret);
	u->url = xasprintf("%s/%s", u->base, u->id);
	int64_t max;
	if (ch_json_count(u->json, "chunk_max", &max) && max > 0 && max < u->chunk) {
		u->chunk = max < CH_MIN_CHUNK ? CH_MIN_CHUNK : max;
	}
	return 0;
}

/*
 * GET the upload's state: *state, *offset, prefix (65 bytes, "" if none).
 * CH_OK, CH_INTERRUPTED (why set), CH_REFUSED (why set), CH_STOPPED.
 */
static enum ch_answer
get_state(struct chunked *u, char *state, size_t ssize, int64_t *offset, char *prefix,
    char *why, size_t whysize)
{
	char auth[128];
	secret_lines(u, auth, sizeof auth);
	const char *lines[] = { auth, "Accept: application/json" };
	long code;
	CURLcode rc = ch_request(u, "GET", u->url, lines, WX_ARRAY_LEN(lines), 0, -1, false, &code);
	explicit_bzero(auth, sizeof auth);
	enum ch_answer a = ch_classify(u, rc, code, why, whysize);
	if (a != CH_OK)
		return a;
	const char *s = ch_json_str(u->json, "state"), *p = ch_json_str(u->json, "prefix_sha256");
	if (code != 200 || s == NULL || !ch_json_count(u->json, "offset", offset)) {
		ch_why(why, whysize, "the destination's state of the upload is not what "
		    "docs/protocol.md §3.3 says (HTTP %ld)", code);
		return CH_INTERRUPTED;
	}
	wx_strlcpy(state, s, ssize);
	wx_strlcpy(prefix, p != NULL && strlen(p) == 64 ? p : "", 65);
	/* A destination that does not say how far it read counts as caught up. */
	int64_t consumed;
	u->job->upload_consumed = ch_json_count(u->json, "consumed", &consumed) &&
	    consumed <= *offset ? consumed : *offset;
	return CH_OK;
}

/* The final state's meaning: CH_OK for completed, CH_REFUSED (why) for failed/cancelled. */
static enum ch_answer
final_state(struct chunked *u, const char *state, char *why, size_t whysize)
{
	u->final = true;
	if (strcmp(state, "completed") == 0)
		return CH_OK;
	const char *e = ch_json_str(u->json, "error");
	int64_t status = 0;
	(void)ch_json_count(u->json, "status", &status);
	char text[400] = "";
	if (e != NULL) {
		/* The destination's words, control characters made spaces. */
		wx_strlcpy(text, e, sizeof text);
		for (char *t = text; *t; t++)
			if ((unsigned char)*t < 0x20 || *t == 0x7f)
				*t = ' ';
	}
	ch_why(why, whysize, "The destination's upload %s (HTTP %lld): %s", state,
	    (long long)status, text[0] ? text : "no reason given");
	return CH_REFUSED;
}

static bool
is_final(const char *state)
{
	return strcmp(state, "completed") == 0 || strcmp(state, "failed") == 0 ||
	    strcmp(state, "cancelled") == 0;
}

/* After the last chunk: GET every CH_POLL_MS until final, for at most response_timeout. */
static enum upload_result
poll_outcome(struct chunked *u, char *why, size_t whysize)
{
	struct job *job = u->job;
	job->progress.streaming = false;
	job_phase(job, WX_PHASE_WAITING);
	int64_t end = wx_mono_ms() + job->cfg->transfers.response_timeout * 1000;
	char last[600] = "no answer yet";
	for (;;) {
		char state[32], prefix[65];
		int64_t off;
		enum ch_answer a = get_state(u, state, sizeof state, &off, prefix, last, sizeof last);
		if (a == CH_STOPPED)
			return UPLOAD_STOPPED;
		if (a == CH_REFUSED) {
			ch_why(why, whysize, "%s", last);
			return UPLOAD_FAILED;
		}
		if (a == CH_OK && is_final(state))
			return final_state(u, state, why, whysize) == CH_OK ? UPLOAD_PUSHED :
			    UPLOAD_FAILED;
		if (a == CH_OK)
			snprintf(last, sizeof last, "the upload is %s", state);
		if (wx_mono_ms() + CH_POLL_MS > end) {
			ch_why(why, whysize, "The destination did not finish within %lld s after the "
			    "last chunk (system.transfers.response_timeout): %s.",
			    (long long)job->cfg->transfers.response_timeout, last);
			return UPLOAD_FAILED;
		}
		if (!job_wait_ms(job, CH_POLL_MS))
			return UPLOAD_STOPPED;
	}
}

/* Whether the whole SHA-256 of the spool's bytes so far is prefix (hex). */
static bool
prefix_matches(struct chunked *u, const char *prefix)
{
	unsigned char d[32];
	char hex[65] = "";
	if (chunk_spool_whole_sha256(&u->spool, d) == 0)
		wx_hex(d, sizeof d, hex);
	return strcasecmp(hex, prefix) == 0;
}

/* After the spool skipped to offset: why it could not (or 0). */
static int
skipped_to(struct chunked *u, int64_t offset, const char *prefix, char *why, size_t whysize)
{
	if (chunk_spool_skip(&u->spool, offset) < 0) {
		if (u->spool.failed && u->job->stop == JOB_RUNNING)
			ch_why(why, whysize, "%s", u->spool.why);
		else if (!u->spool.failed)
			ch_why(why, whysize, "The archive made again is shorter (%lld bytes) than "
			    "what the destination holds (%lld): the server's files changed.",
			    (long long)u->spool.produced, (long long)offset);
		return -1;
	}
	if (offset > 0 && !prefix_matches(u, prefix)) {
		ch_why(why, whysize, "The archive made again differs from the %lld bytes the "
		    "destination holds (prefix_sha256): the server's files changed.",
		    (long long)offset);
		return -1;
	}
	return 0;
}

/*
 * The body made again from the acknowledged mark up to offset: the tree
 * before the mark is walked, not read.  0; -1 with why (then the caller
 * makes it from the start).
 */
static int
rewind_from_mark(struct chunked *u, int64_t offset, const char *prefix, const char *boundary,
    char *why, size_t whysize)
{
	struct job *job = u->job;
	const struct body_mark *m = &u->marks.acked;
	body_close(u->body);
	u->body = body_open_at(job, boundary, m, why, whysize);
	u->spool.ctx = u->body;
	if (u->body == NULL) {
		u->spool.failed = true;
		return -1;
	}
	body_marks(u->body, job->chunk_size);
	chunk_spool_restart_at(&u->spool, u->body, m->offset, &m->whole);
	if (skipped_to(u, offset, prefix, why, whysize) < 0)
		return -1;
	u->remade += offset - m->offset;
	job_log(job, "The destination holds %lld bytes: the archive is made again from its mark at "
	    "%lld (after %lld entries), not from the start.", (long long)offset,
	    (long long)m->offset, (long long)m->entries);
	return 0;
}

/*
 * Makes the body again (same boundary) up to offset, checking what it
 * skips against prefix (hex SHA-256 of the destination's bytes
 * [0, offset)): from the acknowledged mark when there is one at or below
 * offset, else from its start.  0, or -1 with why set (or job->stop).
 */
static int
rewind_body(struct chunked *u, int64_t offset, const char *prefix, char *why, size_t whysize)
{
	struct job *job = u->job;
	if (job->presync != NULL) {
		/* The rounds were made from a running server: they cannot be made again. */
		ch_why(why, whysize, "The destination lost pre-sync data it had acknowledged (it "
		    "holds %lld bytes, this node kept only from %lld on); a pre-sync cannot be "
		    "made again.", (long long)offset, (long long)chunk_spool_start(&u->spool));
		return -1;
	}
	if (prefix[0] == '\0' && offset > 0) {
		ch_why(why, whysize, "The destination went back to offset %lld without "
		    "prefix_sha256: the body cannot be checked.", (long long)offset);
		return -1;
	}
	char boundary[61];
	wx_strlcpy(boundary, body_boundary(u->body), sizeof boundary);
	(void)ch_marks_settle(&u->marks, u->acked);
	u->marks.nwaiting = 0;  /* the body made again makes them again */
	if (u->marks.has_acked && u->marks.acked.offset <= offset) {
		if (rewind_from_mark(u, offset, prefix, boundary, why, whysize) == 0)
			return 0;
		if (job->stop != JOB_RUNNING)
			return -1;
		job_warn(job, "The archive could not be made again from its mark (%s); it is made "
		    "from the start.", why);
	}
	ch_marks_forget(&u->marks);
	job_log(job, "The destination holds %lld bytes, fewer than were sent: the archive is "
	    "made again from the start.", (long long)offset);
	body_close(u->body);
	job->progress.bytes_read = job->progress.files = job->progress.archive_bytes = 0;
	job->skipped = 0;
	u->body = body_open(job, boundary, why, whysize);
	u->spool.ctx = u->body;
	if (u->body == NULL) {
		u->spool.failed = true;
		return -1;
	}
	body_marks(u->body, job->chunk_size);
	chunk_spool_restart(&u->spool, u->body);
	if (skipped_to(u, offset, prefix, why, whysize) < 0)
		return -1;
	u->remade += offset;
	wx_info("the body was made again up to offset %lld and matches the destination's prefix",
	    (long long)offset);
	return 0;
}

/*
 * After an interruption: bounded, backs off, asks for the offset.  CH_OK
 * with u->acked set and *state the upload's state (final or finishing: the
 * last chunk is in), CH_REFUSED with why, CH_STOPPED.  Meanwhile the phase
 * is "resuming", which wingxfer-watchdog allows resume_window without
 * progress (this loop's own bound).
 */
static enum ch_answer
recover(struct chunked *u, const char *what, char *state, size_t ssize, char *prefix,
    char *why, size_t whysize)
{
	struct job *job = u->job;
	const struct wx_transfers_config *tc = &job->cfg->transfers;
	char wbuf[600];
	job_phase(job, WX_PHASE_RESUMING);
	for (;;) {
		u->interruptions++;
		if (u->consecutive++ == 0)
			wx_backoff_init(&u->backoff, wx_mono_ms());
		job_warn(job, "The upload was interrupted (%s); it resumes from the destination's "
		    "offset.", what);
		save(u);
		int64_t now = wx_mono_ms();
		if (u->consecutive > tc->resume_attempts) {
			ch_why(why, whysize, "The upload was interrupted %lld times in a row without "
			    "progress (system.transfers.resume_attempts); the last: %s.",
			    (long long)u->consecutive, what);
			return CH_REFUSED;
		}
		if (now - u->progress_ms >= tc->resume_window * 1000) {
			ch_why(why, whysize, "The upload made no progress for %lld s "
			    "(system.transfers.resume_window); the last interruption: %s.",
			    (long long)((now - u->progress_ms) / 1000), what);
			return CH_REFUSED;
		}
		int64_t wait = wx_backoff_next(&u->backoff, now, wx_backoff_random());
		if (wait < 0)
			wait = WX_BACKOFF_MAX_WAIT_MS;
		if (!job_wait_ms(job, wait))
			return CH_STOPPED;
		int64_t off;
		enum ch_answer a = get_state(u, state, ssize, &off, prefix, wbuf, sizeof wbuf);
		if (a == CH_STOPPED)
			return a;
		if (a == CH_REFUSED) {
			ch_why(why, whysize, "%s", wbuf);
			return a;
		}
		if (a == CH_INTERRUPTED) {
			what = wbuf;
			continue;
		}
		u->resumes++;
		wx_strlcpy(job->rec.phase, WX_PHASE_STREAMING, sizeof job->rec.phase);
		if (off != u->acked)
			wx_info("the destination holds %lld bytes of upload %s", (long long)off, u->id);
		u->acked = off;
		job->upload_acked = off;
		save(u);
		return CH_OK;
	}
}

/* The offset went somewhere: fine when it moved forward. */
static void
offset_moved(struct chunked *u, int64_t off)
{
	if (off > u->acked) {
		u->consecutive = 0;
		u->progress_ms = wx_mono_ms();
	}
	u->acked = off;
	u->job->upload_acked = off;
	u->job->progress.bytes_sent = off;
}

enum send_result { SEND_NEXT, SEND_LAST_DONE, SEND_FAILED, SEND_STOPPED };

#define CATCH_UP_POLL_MS 100

/*
 * Everything made was acknowledged, and the body waits for the destination
 * to have read it too (job->upload_consumed): after a short pause, its
 * state again.  Bounded by resume_window without progress.  0, or -1 with
 * why set (or job->stop).
 */
static int
catch_up(struct chunked *u, char *state, size_t ssize, char *prefix, char *why, size_t whysize)
{
	struct job *job = u->job;
	if (wx_mono_ms() - u->progress_ms >= job->cfg->transfers.resume_window * 1000) {
		ch_why(why, whysize, "The destination did not read the acknowledged upload for "
		    "longer than system.transfers.resume_window.");
		return -1;
	}
	if (!job_wait_ms(job, CATCH_UP_POLL_MS))
		return -1;
	char wbuf[600];
	int64_t off;
	enum ch_answer a = get_state(u, state, ssize, &off, prefix, wbuf, sizeof wbuf);
	if (a == CH_STOPPED)
		return -1;
	if (a == CH_REFUSED || (a == CH_OK && is_final(state))) {
		ch_why(why, whysize, "%s", a == CH_REFUSED ? wbuf : "The destination ended the "
		    "upload before its last chunk.");
		return -1;
	}
	if (a == CH_OK && off != u->acked)
		offset_moved(u, off);
	if (a == CH_OK && job->upload_consumed > u->progress_consumed) {
		u->progress_consumed = job->upload_consumed;
		u->progress_ms = wx_mono_ms();   /* the destination is busy, not stuck */
	}
	return 0;
}

/* The loop of §4: chunks until the last one was acknowledged. */
static enum send_result
send_all(struct chunked *u, char *why, size_t whysize)
{
	struct job *job = u->job;
	char what[700], state[32] = "", prefix[65] = "";
	for (;;) {
		if (job_should_stop(job))
			return SEND_STOPPED;
		struct chunk_spool *sp = &u->spool;
		if (u->acked < chunk_spool_start(sp)) {
			if (rewind_body(u, u->acked, prefix, why, whysize) < 0)
				return job->stop != JOB_RUNNING ? SEND_STOPPED : SEND_FAILED;
		}
		if (u->acked > sp->produced) {
			ch_why(why, whysize, "The destination says it holds %lld bytes, more than were "
			    "sent (%lld).", (long long)u->acked, (long long)sp->produced);
			return SEND_FAILED;
		}
		int64_t a = u->acked;
		int64_t t_fill = wx_mono_ms();
		if (chunk_spool_fill(sp, a + u->chunk, a, u->chunk) < 0) {
			if (job->stop != JOB_RUNNING)
				return SEND_STOPPED;
			ch_why(why, whysize, "%s", sp->why);
			return SEND_FAILED;
		}
		if (sp->later && sp->produced == a && !sp->eof) {
			/* The body waits for the destination to read everything it
			 * acknowledged (a pre-sync before its stop): its state again. */
			if (catch_up(u, state, sizeof state, prefix, why, whysize) < 0)
				return job->stop != JOB_RUNNING ? SEND_STOPPED : SEND_FAILED;
			continue;
		}
		int64_t e = sp->produced - a > u->chunk ? a + u->chunk : sp->produced;
		bool last = sp->eof && e == sp->produced;
		char repr[80] = "", hdr_off[64], hdr_dig[120], hdr_repr[100] = "", auth[128];
		int64_t t_digest = wx_mono_ms();
		if (chunk_digest_header(u, a, e - a, hdr_dig, sizeof hdr_dig) < 0) {
			ch_why(why, whysize, "Cannot read the chunk spool: %s.", strerror(errno));
			return SEND_FAILED;
		}
		if (last) {
			unsigned char d[32];
			if (chunk_spool_whole_sha256(sp, d) < 0) {
				ch_why(why, whysize, "SHA-256 failed (OpenSSL).");
				return SEND_FAILED;
			}
			sf_digest(d, repr, sizeof repr);
			snprintf(hdr_repr, sizeof hdr_repr, "Repr-Digest: %s", repr);
			/* With body-checksum this is the transfer's checksum (no
			 * extra.archive_sha256): kept beside it for the admin. */
			char hex[65];
			wx_hex(d, sizeof d, hex);
			if (job->rec.extra != NULL)
				json_object_object_add(job->rec.extra, "body_sha256",
				    json_object_new_string(hex));
		}
		if (u->sent_hi > a)
			u->resent += (u->sent_hi < e ? u->sent_hi : e) - a;
		snprintf(hdr_off, sizeof hdr_off, "Upload-Offset: %lld", (long long)a);
		secret_lines(u, auth, sizeof auth);
		const char *lines[] = { auth, hdr_off, last ? "Upload-Complete: ?1" :
		    "Upload-Complete: ?0", hdr_dig, "Content-Type: application/partial-upload",
		    "Expect:", "Accept: application/json", hdr_repr };
		long code;
		u->produce = !last;
		int64_t t_send = wx_mono_ms();
		CURLcode rc = ch_request(u, "PATCH", u->url, lines,
		    WX_ARRAY_LEN(lines) - (last ? 0 : 1), a, e - a, false, &code);
		u->produce = false;
		wx_debug("chunk at %lld (%lld bytes): made %lld ms, digest %lld ms, request %lld ms "
		    "(HTTP %ld); %lld bytes made ahead", (long long)a, (long long)(e - a),
		    (long long)(t_digest - t_fill), (long long)(t_send - t_digest),
		    (long long)(wx_mono_ms() - t_send), code, (long long)(sp->produced - e));
		explicit_bzero(auth, sizeof auth);
		enum ch_answer ans = ch_classify(u, rc, code, what, sizeof what);
		int64_t off = -1;
		if (u->h.has_offset)
			off = u->h.offset;
		else
			(void)ch_json_count(u->json, "offset", &off);
		if (ans == CH_STOPPED)
			return SEND_STOPPED;
		if (ans == CH_OK && (code == 204 || code == 202) && off > a && off <= e) {
			offset_moved(u, off);
			save(u);
			if (code == 202 || (last && off == e))
				return SEND_LAST_DONE;
			continue;
		}
		if (ans == CH_OK) {
			snprintf(what, sizeof what, "the destination answered HTTP %ld to a chunk "
			    "without a valid Upload-Offset", code);
			ans = CH_INTERRUPTED;
		} else if (code == 413) {
			if (u->chunk <= CH_MIN_CHUNK) {
				ch_why(why, whysize, "%s, even for a chunk of 1 MiB.", what);
				return SEND_FAILED;
			}
			u->chunk /= 2;
			if (u->chunk < CH_MIN_CHUNK)
				u->chunk = CH_MIN_CHUNK;
			job_warn(job, "A chunk of %lld bytes was refused as too large (HTTP 413); chunks "
			    "of %lld bytes from now on.", (long long)(e - a), (long long)u->chunk);
			save(u);
			continue;
		} else if (code == 409 && ch_code_is(u, "offset_mismatch") && off >= 0) {
			wx_info("the destination holds %lld bytes, not %lld (409 offset_mismatch)",
			    (long long)off, (long long)a);
			/* Not progress: bounded like an interruption when it repeats. */
			if (off <= a && ++u->consecutive > job->cfg->transfers.resume_attempts) {
				ch_why(why, whysize, "The destination kept refusing the offset: %s.", what);
				return SEND_FAILED;
			}
			const char *p = ch_json_str(u->json, "prefix_sha256");
			wx_strlcpy(prefix, p != NULL && strlen(p) == 64 ? p : "", sizeof prefix);
			if (off < chunk_spool_start(&u->spool) && prefix[0] == '\0') {
				/* The prefix digest comes with the state. */
				char wbuf[600];
				int64_t o2;
				enum ch_answer g = get_state(u, state, sizeof state, &o2, prefix, wbuf,
				    sizeof wbuf);
				if (g == CH_STOPPED)
					return SEND_STOPPED;
				if (g != CH_OK) {
					snprintf(what, sizeof what, "%s", wbuf);
					ans = CH_INTERRUPTED;
				} else {
					off = o2;
				}
			}
			if (ans != CH_INTERRUPTED) {
				offset_moved(u, off);
				continue;
			}
		} else if (code == 409 && ch_code_is(u, "completed")) {
			return SEND_LAST_DONE;
		} else if (code == 409 && ch_code_is(u, "superseded")) {
			/* Another request of this upload took over (a resend of ours
			 * after a cut): nothing of this one was kept; ask the offset. */
			ans = CH_INTERRUPTED;
		} else if (code == 503 && ch_code_is(u, "busy")) {
			int64_t ms = u->h.retry_after >= 0 ? u->h.retry_after * 1000 : 1000;
			if (ms > CH_BUSY_MAX_MS)
				ms = CH_BUSY_MAX_MS;
			if (ms < 100)
				ms = 100;
			if (wx_mono_ms() - u->progress_ms >= job->cfg->transfers.resume_window * 1000) {
				ch_why(why, whysize, "The destination stayed busy for longer than "
				    "system.transfers.resume_window.");
				return SEND_FAILED;
			}
			if (!job_wait_ms(job, ms))
				return SEND_STOPPED;
			continue;
		}
		if (ans == CH_REFUSED) {
			ch_why(why, whysize, "%s", what);
			return SEND_FAILED;
		}
		/* Interrupted: ask where the destination stands. */
		enum ch_answer r = recover(u, what, state, sizeof state, prefix, why, whysize);
		if (r == CH_STOPPED)
			return SEND_STOPPED;
		if (r == CH_REFUSED)
			return SEND_FAILED;
		if (is_final(state) || strcmp(state, "finishing") == 0)
			return SEND_LAST_DONE;  /* the last chunk's answer was lost */
	}
}

static int64_t
extra_count(json_object *o, const char *key)
{
	int64_t v = 0;
	return ch_json_count(o, key, &v) ? v : 0;
}

/*
 * A new worker takes the upload over from the record (extra.resume: its
 * URL's id and secret; extra.chunked: the counters).  0, or -1 with why set.
 */
static int
restore_upload(struct chunked *u, char *why, size_t whysize)
{
	json_object *r = NULL, *ch = NULL;
	json_object *extra = u->job->rec.extra;
	const char *url = NULL, *secret = NULL;
	if (extra != NULL && json_object_object_get_ex(extra, "resume", &r)) {
		url = ch_json_str(r, "url");
		secret = ch_json_str(r, "secret");
		json_object *pd;
		u->prefix_digest = json_object_object_get_ex(r, "prefix_digest", &pd) &&
		    json_object_get_boolean(pd);
	}
	const char *id = url != NULL ? strrchr(url, '/') : NULL;
	if (id == NULL || strlen(id + 1) != 32 || strspn(id + 1, "0123456789abcdef") != 32 ||
	    secret == NULL || strlen(secret) != 64 || strspn(secret, "0123456789abcdef") != 64) {
		ch_why(why, whysize, "The transfer record has no chunked upload to resume "
		    "(extra.resume).");
		return -1;
	}
	wx_strlcpy(u->id, id + 1, sizeof u->id);
	wx_strlcpy(u->secret, secret, sizeof u->secret);
	u->url = xasprintf("%s/%s", u->base, u->id);
	if (json_object_object_get_ex(extra, "chunked", &ch)) {
		int64_t size = extra_count(ch, "chunk_size");
		if (size >= CH_MIN_CHUNK && size < u->chunk)
			u->chunk = size;
		u->interruptions = extra_count(ch, "interruptions");
		u->resumes = extra_count(ch, "resumes");
		u->resent = extra_count(ch, "resent_bytes");
		u->acked = extra_count(ch, "acked");
		u->remade = extra_count(ch, "remade_bytes");
	}
	json_object *mk;
	if (json_object_object_get_ex(r, "mark", &mk)) {
		if (ch_mark_parse(mk, &u->marks.acked) == 0)
			u->marks.has_acked = true;
		else
			wx_warn("the record's extra.resume.mark is not one; the body is made again "
			    "from the start");
	}
	return 0;
}

enum upload_result
chunked_run(struct job *job, CURL *c, const char *ua, struct body **bodyp, bool resume,
    char *why, size_t whysize)
{
	struct chunked u;
	memset(&u, 0, sizeof u);
	u.job = job;
	u.c = c;
	u.ua = ua;
	u.body = *bodyp;
	u.rl.fd = -1;
	u.chunk = job->chunk_size;
	u.answer_wait = job->cfg->transfers.response_timeout < CH_ANSWER_WAIT ?
	    job->cfg->transfers.response_timeout * 1000 : CH_ANSWER_WAIT * 1000;
	u.answer.max = CH_MAX_ANSWER;
	u.spool.slot[0].fd = u.spool.slot[1].fd = -1;
	const char *url = job->request_url ? job->request_url : job->rec.url;
	size_t q = strcspn(url, "?#"), base = q;
	while (base > 0 && url[base - 1] == '/')
		base--;
	u.base = xasprintf("%.*s/uploads", (int)base, url);
	enum upload_result result = UPLOAD_FAILED;
	bool created = false;
	char *hint = xasprintf("%s/transfers/%s.spool", job->st.dir, job->uuid);
	int opened = chunk_spool_open(&u.spool, job->st.dir, hint, body_source, body_source_error,
	    u.body, why, whysize);
	free(hint);
	if (opened < 0)
		goto out;
	u.spool.reached = body_reached;
	u.spool.reached_ctx = &u;
	body_marks(u.body, job->chunk_size);
	u.multi = curl_multi_init();
	if (u.multi == NULL) {
		ch_why(why, whysize, "libcurl could not make a multi handle (out of memory).");
		goto out;
	}
	job_phase(job, WX_PHASE_STREAMING);
	if (resume ? restore_upload(&u, why, whysize) < 0 : create_upload(&u, why, whysize) < 0) {
		result = job->stop != JOB_RUNNING ? UPLOAD_STOPPED : UPLOAD_FAILED;
		goto out;
	}
	created = true;
	if (!resume)
		u.prefix_digest = job->chunk_prefix_digest;
	u.spool.slot_digests = !u.prefix_digest;
	if (resume && job->rec.extra != NULL &&
	    json_object_object_get_ex(job->rec.extra, "presync", NULL)) {
		/* Its rounds were made from a running server and cannot be made
		 * again: the upload is deleted (below) and the transfer fails. */
		ch_why(why, whysize, "The push worker of this pre-sync died; the copies it made "
		    "while the server ran cannot be made again, so the transfer fails (the server "
		    "is where it was; start the transfer again).");
		goto out;
	}
	if (!resume)
		record_resume(&u);
	save(&u);
	char size[32];
	wx_format_bytes(u.chunk, size, sizeof size);
	if (!resume) {
		job_log(job, job->presync != NULL ? "Streaming the pre-sync rounds to destination..." :
		    "Streaming archive to destination...");
		job_log(job, "The destination takes a resumable upload: chunks of %s (upload %s).",
		    size, u.id);
	}
	wx_ratelimit_open(&u.rl, job->st.dir, "upload", job->cfg->transfers.upload_limit,
	    "system.transfers.upload_limit");
	progress_start_streaming(job);
	u.progress_ms = wx_mono_ms();
	enum send_result sent = SEND_FAILED;
	if (resume) {
		/* A new process: the destination's offset and prefix, then the body
		 * made again up to there (its prefix checked). */
		char state[32] = "", prefix[65] = "";
		u.sent_hi = u.acked;
		switch (recover(&u, "the push worker was started again", state, sizeof state, prefix,
		    why, whysize)) {
		case CH_STOPPED:
			sent = SEND_STOPPED;
			break;
		case CH_REFUSED:
			sent = SEND_FAILED;
			break;
		default:
			if (is_final(state) || strcmp(state, "finishing") == 0)
				sent = SEND_LAST_DONE;
			else if (rewind_body(&u, u.acked, prefix, why, whysize) < 0)
				sent = job->stop != JOB_RUNNING ? SEND_STOPPED : SEND_FAILED;
			else
				sent = send_all(&u, why, whysize);
			break;
		}
	} else {
		sent = send_all(&u, why, whysize);
	}
	switch (sent) {
	case SEND_LAST_DONE:
		result = poll_outcome(&u, why, whysize);
		break;
	case SEND_STOPPED:
		result = UPLOAD_STOPPED;
		break;
	default:
		result = UPLOAD_FAILED;
		break;
	}
	if (result == UPLOAD_PUSHED)
		wx_info("the destination completed upload %s", u.id);
	if (u.interruptions > 0 || u.resent > 0)
		job_log(job, "The upload was interrupted %lld times, resumed %lld times, %lld bytes "
		    "were sent again.", (long long)u.interruptions, (long long)u.resumes,
		    (long long)u.resent);
out:
	job->progress.streaming = false;
	if (created && result != UPLOAD_PUSHED && !u.final)
		delete_upload(&u);
	if (created)
		save(&u);
	*bodyp = u.body;
	explicit_bzero(u.secret, sizeof u.secret);
	chunk_spool_close(&u.spool);
	if (u.multi != NULL)
		curl_multi_cleanup(u.multi);
	json_object_put(u.json);
	free(u.answer.text);
	wx_free_secret(u.base);
	wx_free_secret(u.url);
	wx_ratelimit_close(&u.rl);
	return result;
}
