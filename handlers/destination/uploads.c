/*
 * The chunked upload's requests (docs/protocol.md §3):
 *
 *   POST   /api/transfers/uploads        transfer JWT: the single POST's checks
 *                                        before its body, then 201 and an assembler
 *   PATCH  /api/transfers/uploads/:id    upload secret: appends one chunk
 *   GET    /api/transfers/uploads/:id    upload secret: state, offset, outcome
 *   HEAD   /api/transfers/uploads/:id    the same in headers
 *   DELETE /api/transfers/uploads/:id    upload secret: cancels
 *
 * A PATCH reads its chunk into a private file of the spool, checks its
 * digest, waits (at most FLOW_WAIT_MS) until the assembler consumed the
 * previous chunk, then, holding the upload's lock, checks that the offset
 * and the writer are still its own, renames the file into the spool and
 * saves the state (both fsynced) before the 204.  Whoever commits first at
 * an offset wins; a newer PATCH makes an older one stop at its next read.
 *
 * Every request of a running upload first checks that its assembler lives
 * (the transfer's lock is held); when not, it starts a new one from offset
 * 0 (§5: version 1 keeps no extraction checkpoints).
 */
#include "autoconf.h"

#include "destination.h"
#include "upload.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "owner.h"
#include "record.h"
#include "request.h"
#include "state.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FLOW_WAIT_MS 50000      /* a PATCH waits this long for the assembler */
#define CANCEL_WAIT_MS 30000    /* a DELETE waits this long for the outcome */
#define READ_PIECE (256 * 1024)

/* {"error": ..., "code": ..., "request_id": ...} plus extra's members. */
static void __attribute__((format(printf, 5, 6)))
up_error(struct wx_request *req, int status, const char *code, json_object *extra,
    const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "error", json_object_new_string(msg));
	json_object_object_add(j, "code", json_object_new_string(code));
	json_object_object_add(j, "request_id", json_object_new_string(req->request_id));
	if (extra != NULL) {
		json_object_object_foreach(extra, k, v)
			json_object_object_add(j, k, json_object_get(v));
		json_object_put(extra);
	}
	if (status >= 500)
		wx_err("%s %s -> %d: %s", req->method, req->path, status, msg);
	else
		wx_info("%s %s -> %d %s", req->method, req->path, status, code);
	wx_req_json(req, status, j);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- create ---- */

/* Forgets uploads that ended more than resume_window ago (upload.h files). */
static void
sweep_ended(const struct wx_state *st, int64_t window)
{
	char *dir = up_dir(st);
	DIR *d = opendir(dir);
	struct dirent *e;
	int64_t now = wx_now();
	while (d != NULL && (e = readdir(d)) != NULL) {
		char id[UP_ID_LEN + 1];
		size_t n = strlen(e->d_name);
		if (n != UP_ID_LEN + 5 || strcmp(e->d_name + UP_ID_LEN, ".json") != 0)
			continue;
		memcpy(id, e->d_name, UP_ID_LEN);
		id[UP_ID_LEN] = '\0';
		struct upload up;
		if (up_load(st, id, &up) < 0)
			continue;
		bool old = up_final(up.state) && up.final_at > 0 && now - up.final_at > window;
		up_clear(&up);
		if (!old)
			continue;
		static const char *const suffixes[] = { ".json", ".writer", ".lock" };
		for (size_t i = 0; i < WX_ARRAY_LEN(suffixes); i++) {
			char *f = up_file(st, id, suffixes[i]);
			if (unlink(f) < 0 && errno != ENOENT)
				wx_warn("cannot remove %s: %s", f, strerror(errno));
			free(f);
		}
		char *spool = up_file(st, id, ".spool");
		(void)wx_remove_tree(spool);
		free(spool);
		wx_info("upload %s forgotten (ended more than system.transfers.resume_window ago)", id);
	}
	if (d != NULL)
		closedir(d);
	free(dir);
}

static void
answer_created(struct wx_request *req, const struct upload *up, const char *secret)
{
	wx_req_header(req, "Location", "/api/transfers/uploads/%s", up->id);
	wx_req_header(req, "Upload-Offset", "0");
	wx_req_header(req, "Upload-Limit", "max-append-size=%lld", UP_CHUNK_MAX);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "upload", json_object_new_string(up->id));
	json_object_object_add(j, "secret", json_object_new_string(secret));
	json_object_object_add(j, "offset", json_object_new_int64(0));
	json_object_object_add(j, "chunk_max", json_object_new_int64(UP_CHUNK_MAX));
	json_object_object_add(j, "resume_window",
	    json_object_new_int64(req->cfg->transfers.resume_window));
	wx_req_json(req, 201, j);
}

static json_object *
chunked_extra(const struct upload *up)
{
	json_object *c = json_object_new_object();
	json_object_object_add(c, "upload", json_object_new_string(up->id));
	json_object_object_add(c, "acked", json_object_new_int64(up->offset));
	json_object_object_add(c, "chunk_size", json_object_new_int64(up->chunk_size));
	json_object_object_add(c, "interruptions", json_object_new_int64(up->interruptions));
	json_object_object_add(c, "resumes", json_object_new_int64(up->resumes));
	json_object_object_add(c, "restarts", json_object_new_int64(up->restarts));
	return c;
}

/* The upload's state, spool and assembler; answers 201, or rx_fail. */
static int
open_upload(struct receiver *rx, const char *body_type)
{
	struct upload up;
	char secret[65];
	if (up_new(&up, rx->uuid, secret) < 0) {
		rx_detail(rx, "getrandom: %s", strerror(errno));
		return rx_fail(rx, 500, "This node cannot make a random upload secret.");
	}
	wx_strlcpy(up.body_type, body_type, sizeof up.body_type);
	char *spool = up_file(rx->st, up.id, ".spool");
	int rc = 0;
	if (mkdir(spool, 0700) < 0 || up_save(rx->st, &up) < 0) {
		rx_detail(rx, "upload state %s: %s", spool, strerror(errno));
		rc = rx_fail(rx, 500, "This node cannot write the upload's state "
		    "(system.transfers.state_directory).");
	}
	free(spool);
	if (rc < 0)
		return rc;
	json_object_object_add(rx->rec.extra, "chunked", chunked_extra(&up));
	wx_strlcpy(rx->rec.phase, WX_PHASE_RECEIVING, sizeof rx->rec.phase);
	rx_progress(rx, true);
	char err[256];
	if (up_spawn_assembler(rx->cfg, up.id, rx->lock_fd, err, sizeof err) < 0) {
		rx_detail(rx, "%s", err);
		up.state = UP_FAILED;
		up.status = 500;
		wx_strlcpy(up.error, "This node cannot start the upload's assembler.", sizeof up.error);
		(void)up_save(rx->st, &up);
		return rx_fail(rx, 500, "%s", up.error);
	}
	rx_log(rx, "Chunked upload %s opened; its assembler receives the body.", up.id);
	answer_created(rx->req, &up, secret);
	OPENSSL_cleanse(secret, sizeof secret);
	return 0;
}

void
dest_upload_create(struct wx_request *req)
{
	const struct wx_config *cfg = req->cfg;
	struct receiver rx;
	memset(&rx, 0, sizeof rx);
	rx.req = req;
	rx.cfg = cfg;
	rx.lock_fd = -1;
	rx.staging_fd = -1;
	rx.rl.fd = -1;
	if (!rx_check_token(req, &rx.claims))
		return;
	memcpy(rx.uuid, rx.claims.sub, sizeof rx.uuid);
	wx_log_set_transfer(rx.uuid);

	const char *type = wx_req_env(req, "HTTP_X_WINGXFER_BODY_TYPE");
	char boundary[WX_MP_MAX_BOUNDARY + 1];
	const char *why = wx_mp_boundary_from_content_type(type, boundary);
	if (why != NULL || strlen(type) >= sizeof ((struct upload *)0)->body_type) {
		up_error(req, 400, "bad_request", NULL, "X-Wingxfer-Body-Type must be the "
		    "multipart/form-data content type the single POST would have had: %s.",
		    why != NULL ? why : "too long");
		return;
	}
	if (req->content_length > 0) {
		up_error(req, 400, "bad_request", NULL, "The create request has no body "
		    "(Content-Length: 0); the body goes in PATCH requests.");
		return;
	}
	int64_t size = 0;
	const char *sz = wx_req_env(req, "HTTP_X_WINGXFER_SIZE");
	if (sz != NULL && wx_parse_i64(sz, 0, INT64_MAX, &size) != NULL) {
		up_error(req, 400, "bad_request", NULL, "X-Wingxfer-Size is not a number of bytes.");
		return;
	}
	int64_t free_bytes;
	char msg[512];
	int room = rx_check_room(cfg, size, &free_bytes, msg, sizeof msg);
	if (room != 0) {
		wx_req_error(req, room, "%s", msg);
		return;
	}
	rx.st = wx_req_state(req);
	if (rx.st == NULL)
		return;
	sweep_ended(rx.st, cfg->transfers.resume_window);
	rx.server_dir = wx_path_join(cfg->data_directory, rx.uuid);
	rx.staging_root = wx_path_join(cfg->data_directory, ".wingxfer-staging");
	rx.staging = wx_path_join(rx.staging_root, rx.uuid);
	if (rx_open_transfer(&rx)) {
		rx.rec.bytes_total = size;
		if (rx_before_body(&rx) == 0)
			(void)open_upload(&rx, type);
	}
	if (rx.started && rx.status != 0)
		rx_finish(&rx);
	else if (rx.status != 0)
		wx_req_error(req, rx.status, "%s", rx.error);
	rx_release(&rx);
	if (rx.lock_fd >= 0)
		close(rx.lock_fd); /* the assembler holds its own copy */
}

/* ---- the upload of a request ---- */

/* The upload named by the route and its secret; answers 404/401 itself. */
static bool
find_upload(struct wx_request *req, const struct wx_state **st, struct upload *up)
{
	/* A malformed credential is refused before the upload is looked up. */
	const char *auth = wx_req_env(req, "HTTP_AUTHORIZATION");
	bool formed = auth != NULL && strncmp(auth, "Bearer ", 7) == 0 && strlen(auth + 7) == 64;
	for (size_t i = 7; formed && auth[i] != '\0'; i++)
		formed = (auth[i] >= '0' && auth[i] <= '9') || (auth[i] >= 'a' && auth[i] <= 'f');
	if (!formed) {
		up_error(req, 401, "bad_secret", NULL, "This request does not carry an upload secret "
		    "(Authorization: Bearer <64 hex digits from the upload's creation>).");
		return false;
	}
	*st = wx_req_state(req);
	if (*st == NULL)
		return false;
	if (!up_valid_id(req->param) || up_load(*st, req->param, up) < 0) {
		if (up_valid_id(req->param) && errno != ENOENT) {
			wx_err("upload %s: its state cannot be read: %s", req->param, strerror(errno));
			wx_req_internal_error(req, "upload state");
			return false;
		}
		up_error(req, 404, "unknown_upload", NULL, "There is no such upload on this node "
		    "(never created, or removed after system.transfers.resume_window).");
		return false;
	}
	wx_log_set_transfer(up->server);
	if (!up_secret_ok(up, auth + 7)) {
		up_clear(up);
		up_error(req, 401, "bad_secret", NULL, "This request does not carry the upload's "
		    "secret (Authorization: Bearer <secret> from its creation).");
		return false;
	}
	return true;
}

/* The final states' answer (409 completed, 410 cancelled/failed); true when
 * answered.  finishing counts as completed for appends. */
static bool
answer_closed(struct wx_request *req, const struct upload *up)
{
	if (up->state == UP_COMPLETED || up->state == UP_FINISHING) {
		wx_req_header(req, "Upload-Offset", "%lld", (long long)up->offset);
		up_error(req, 409, "completed", NULL, "The last chunk of this upload was already "
		    "acknowledged; it takes no more.");
		return true;
	}
	if (up->state == UP_CANCELLED || up->state == UP_FAILED) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "reason", json_object_new_string(up->error));
		up_error(req, 410, up->state == UP_CANCELLED ? "cancelled" : "failed", x,
		    "This upload has ended (%s).", up_state_name(up->state));
		return true;
	}
	return false;
}

static void
clear_spool(const struct wx_state *st, const char *id)
{
	char *spool = up_file(st, id, ".spool");
	if (wx_remove_tree(spool) < 0 && errno != ENOENT)
		wx_warn("cannot remove %s: %s", spool, strerror(errno));
	if (mkdir(spool, 0700) < 0 && errno != EEXIST)
		wx_warn("cannot create %s: %s", spool, strerror(errno));
	free(spool);
}

/*
 * With the transfer's lock just taken (the assembler is gone) and the
 * upload's lock held: ends cur as the record says when the record is final
 * (the watchdog ended it, or the assembler died after finishing), else
 * starts a new assembler from offset 0.
 */
static void
restart(struct wx_request *req, const struct wx_state *st, struct upload *cur, int lock_fd)
{
	struct wx_record rec;
	bool have = wx_record_load(st, cur->server, &rec) == 0;
	if (!have || !wx_status_active(rec.status)) {
		cur->state = have && rec.status == WX_ST_COMPLETED ? UP_COMPLETED :
		    have && rec.status == WX_ST_CANCELLED ? UP_CANCELLED : UP_FAILED;
		cur->status = cur->state == UP_COMPLETED ? 200 : cur->state == UP_CANCELLED ? 409 : 500;
		wx_strlcpy(cur->error, have && rec.error != NULL ? rec.error : cur->state ==
		    UP_COMPLETED ? "" : "The transfer ended on this node while its assembler was "
		    "gone.", sizeof cur->error);
		cur->final_at = wx_now();
		wx_warn("upload %s: its assembler is gone and the record is final: %s", cur->id,
		    up_state_name(cur->state));
	} else {
		wx_warn("upload %s: its assembler is gone; starting a new one from offset 0 "
		    "(%lld bytes to send again)", cur->id, (long long)cur->offset);
		clear_spool(st, cur->id);
		cur->offset = 0;
		cur->state = UP_RECEIVING;
		cur->restarts++;
		cur->interrupted = true;
		up_sha_reset(cur);
	}
	if (have)
		wx_record_clear(&rec);
	if (up_save(st, cur) < 0) {
		wx_err("upload %s: cannot save its state: %s", cur->id, strerror(errno));
		return;
	}
	if (up_final(cur->state))
		return;
	char err[256];
	if (up_spawn_assembler(req->cfg, cur->id, lock_fd, err, sizeof err) < 0) {
		wx_err("upload %s: %s", cur->id, err);
		cur->state = UP_FAILED;
		cur->status = 500;
		cur->final_at = wx_now();
		wx_strlcpy(cur->error, "This node cannot start the upload's assembler.",
		    sizeof cur->error);
		(void)up_save(st, cur);
	}
}

/* Makes sure a running upload has its assembler (upload.h); up is reloaded
 * when one was started.  false when answered (500). */
static bool
revive(struct wx_request *req, const struct wx_state *st, struct upload *up)
{
	if (up_final(up->state))
		return true;
	int lock_fd = -1;
	enum wx_lock_result lr = wx_lock_try(st, up->server, &lock_fd);
	if (lr == WX_LOCK_BUSY)
		return true;
	if (lr == WX_LOCK_ERROR) {
		wx_err("cannot take the transfer lock of %s: %s", up->server, strerror(errno));
		wx_req_internal_error(req, "transfer lock");
		return false;
	}
	int ufd = up_lock(st, up->id);
	struct upload cur;
	if (ufd < 0 || up_load(st, up->id, &cur) < 0) {
		wx_err("upload %s: its state cannot be read: %s", up->id, strerror(errno));
		if (ufd >= 0)
			close(ufd);
		close(lock_fd);
		wx_req_internal_error(req, "upload state");
		return false;
	}
	if (!up_final(cur.state))
		restart(req, st, &cur, lock_fd);
	close(ufd);
	close(lock_fd);
	up_clear(up);
	*up = cur;
	return true;
}

/* ---- PATCH ---- */

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
	unsigned char digest[32], repr[32];
	char *writer;           /* <id>.writer */
	char *tmp;              /* the chunk being read */
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

/* Reads the body into p->tmp, its SHA-256 into got, and the running hash
 * from sha on.  0, or answers and -1. */
static int
read_chunk(struct patch *p, unsigned char *sha, size_t sha_len, unsigned char got[32])
{
	int fd = open(p->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		wx_err("upload %s: cannot create %s: %s", p->id, p->tmp, strerror(errno));
		wx_req_internal_error(p->req, "upload spool");
		return -1;
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		abort();
	char *buf = xmalloc(READ_PIECE);
	int64_t got_bytes = 0;
	int rc = 0;
	while (got_bytes < p->length) {
		size_t want = (size_t)(p->length - got_bytes < READ_PIECE ? p->length - got_bytes :
		    READ_PIECE);
		ssize_t r = wx_req_read(p->req, buf, want);
		if (r <= 0) {
			up_error(p->req, 400, "bad_request", NULL, "The chunk was cut off after %lld of "
			    "its %lld bytes; nothing was kept.", (long long)got_bytes,
			    (long long)p->length);
			rc = -1;
			break;
		}
		if (!still_writer(p)) {
			up_error(p->req, 409, "superseded", NULL, "A newer PATCH of this upload started; "
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
		EVP_DigestUpdate(md, buf, (size_t)r);
		up_sha_add(sha, sha_len, buf, (size_t)r);
		got_bytes += r;
	}
	free(buf);
	EVP_DigestFinal_ex(md, got, NULL);
	EVP_MD_CTX_free(md);
	if (rc == 0 && fsync(fd) < 0) {
		wx_err("upload %s: fsync %s: %s", p->id, p->tmp, strerror(errno));
		wx_req_internal_error(p->req, "upload spool");
		rc = -1;
	}
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
	for (;;) {
		int n = spool_backlog(p->st, p->id);
		if (n == 0)
			return true;
		if (!still_writer(p)) {
			up_error(p->req, 409, "superseded", NULL, "A newer PATCH of this upload started; "
			    "this one stopped and nothing of it was kept.");
			return false;
		}
		if (n < 0 || wx_mono_ms() >= until)
			break;
		sleep_ms(100);
	}
	wx_req_header(p->req, "Retry-After", "5");
	up_error(p->req, 503, "busy", NULL, "This node is still extracting the previous chunk; "
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
	if (answer_closed(p->req, &cur))
		goto out;
	if (!still_writer(p)) {
		up_error(p->req, 409, "superseded", NULL, "A newer PATCH of this upload started; "
		    "this one stopped and nothing of it was kept.");
		goto out;
	}
	if (cur.offset != p->offset || cur.sha_len != sha_len ||
	    memcmp(cur.sha, start_sha, sha_len) != 0) {
		wx_req_header(p->req, "Upload-Offset", "%lld", (long long)cur.offset);
		json_object *x = json_object_new_object();
		json_object_object_add(x, "offset", json_object_new_int64(cur.offset));
		up_error(p->req, 409, "offset_mismatch", x, "The upload's acknowledged offset "
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
			up_error(p->req, 422, "repr_digest_mismatch", NULL, "%s", cur.error);
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
		up_error(req, 400, "bad_request", NULL, "Upload-Offset is missing or not a number of "
		    "bytes.");
		return false;
	}
	if (cmp == NULL || (strcmp(cmp, "?0") != 0 && strcmp(cmp, "?1") != 0)) {
		up_error(req, 400, "bad_request", NULL, "Upload-Complete must be ?0 or ?1.");
		return false;
	}
	p->complete = strcmp(cmp, "?1") == 0;
	if (req->content_length < 0) {
		up_error(req, 411, "length_required", NULL, "A chunk needs a Content-Length (no "
		    "chunked transfer-coding).");
		return false;
	}
	p->length = req->content_length;
	if (p->length > UP_CHUNK_MAX) {
		up_error(req, 413, "too_large", NULL, "A chunk may be at most %lld bytes "
		    "(X-Wingxfer-Chunk-Max); this one is %lld.", UP_CHUNK_MAX, (long long)p->length);
		return false;
	}
	if (p->length == 0 && !p->complete) {
		up_error(req, 400, "bad_request", NULL, "An empty chunk is allowed only as the last "
		    "one (Upload-Complete: ?1).");
		return false;
	}
	if (!parse_digest(wx_req_env(req, "HTTP_CONTENT_DIGEST"), p->digest)) {
		up_error(req, 400, "bad_request", NULL, "Content-Digest: sha-256=:<base64>: is "
		    "missing or malformed.");
		return false;
	}
	if (p->complete && !parse_digest(wx_req_env(req, "HTTP_REPR_DIGEST"), p->repr)) {
		up_error(req, 400, "bad_request", NULL, "The last chunk needs Repr-Digest: "
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
	struct upload up;
	if (!find_upload(req, &p.st, &up))
		return;
	p.id = req->param;
	if (!revive(req, p.st, &up) || answer_closed(req, &up) || !parse_patch(req, &p))
		goto out;
	if (p.offset != up.offset) {
		wx_req_header(req, "Upload-Offset", "%lld", (long long)up.offset);
		json_object *x = json_object_new_object();
		json_object_object_add(x, "offset", json_object_new_int64(up.offset));
		up_error(req, 409, "offset_mismatch", x, "Upload-Offset %lld is not the acknowledged "
		    "offset %lld; send from there.", (long long)p.offset, (long long)up.offset);
		goto out;
	}
	p.writer = up_file(p.st, p.id, ".writer");
	char *spool = up_file(p.st, p.id, ".spool");
	p.tmp = xasprintf("%s/.tmp-%s", spool, req->request_id);
	free(spool);
	if (claim_writer(&p) < 0) {
		wx_err("upload %s: cannot write %s: %s", p.id, p.writer, strerror(errno));
		wx_req_internal_error(req, "upload state");
		goto out;
	}
	unsigned char start_sha[sizeof up.sha], new_sha[sizeof up.sha], got[32];
	memcpy(start_sha, up.sha, up.sha_len);
	memcpy(new_sha, up.sha, up.sha_len);
	if (read_chunk(&p, new_sha, up.sha_len, got) < 0) {
		note_interruption(&p);
		goto out;
	}
	if (memcmp(got, p.digest, 32) != 0) {
		note_interruption(&p);
		up_error(req, 400, "digest_mismatch", NULL, "The chunk's bytes do not match its "
		    "Content-Digest; nothing was kept; send them again.");
		goto out;
	}
	if (!wait_for_assembler(&p))
		goto out;
	int fd = up_lock(p.st, p.id);
	if (fd < 0) {
		wx_err("upload %s: cannot lock its state: %s", p.id, strerror(errno));
		wx_req_internal_error(req, "upload state");
		goto out;
	}
	commit(&p, start_sha, new_sha, up.sha_len);
	close(fd);
out:
	if (p.tmp != NULL)
		(void)unlink(p.tmp);
	free(p.tmp);
	free(p.writer);
	up_clear(&up);
}

/* ---- GET, HEAD, DELETE ---- */

void
dest_upload_get(struct wx_request *req)
{
	const struct wx_state *st;
	struct upload up;
	if (!find_upload(req, &st, &up))
		return;
	if (!revive(req, st, &up))
		goto out;
	bool complete = up.state != UP_RECEIVING;
	wx_req_header(req, "Upload-Offset", "%lld", (long long)up.offset);
	wx_req_header(req, "Upload-Complete", "%s", complete ? "?1" : "?0");
	wx_req_header(req, "X-Wingxfer-Upload-State", "%s", up_state_name(up.state));
	wx_req_header(req, "Cache-Control", "no-store");
	if (strcmp(req->method, "HEAD") == 0) {
		wx_req_send(req, 204, NULL, "", 0);
		goto out;
	}
	char prefix[65];
	up_sha_hex(up.sha, up.sha_len, prefix);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "upload", json_object_new_string(up.id));
	json_object_object_add(j, "server", json_object_new_string(up.server));
	json_object_object_add(j, "state", json_object_new_string(up_state_name(up.state)));
	json_object_object_add(j, "offset", json_object_new_int64(up.offset));
	json_object_object_add(j, "prefix_sha256", json_object_new_string(prefix));
	json_object_object_add(j, "complete", json_object_new_boolean(complete));
	json_object_object_add(j, "chunk_max", json_object_new_int64(UP_CHUNK_MAX));
	json_object_object_add(j, "chunk_size", json_object_new_int64(up.chunk_size));
	json_object_object_add(j, "interruptions", json_object_new_int64(up.interruptions));
	json_object_object_add(j, "resumes", json_object_new_int64(up.resumes));
	json_object_object_add(j, "restarts", json_object_new_int64(up.restarts));
	if (up.state == UP_FAILED || up.state == UP_CANCELLED) {
		json_object_object_add(j, "error", json_object_new_string(up.error));
		json_object_object_add(j, "status", json_object_new_int(up.status));
	}
	if (up.state == UP_COMPLETED) {
		json_object_object_add(j, "status", json_object_new_int(200));
		json_object_object_add(j, "result", json_object_get(up.result));
	}
	wx_req_json(req, 200, j);
out:
	up_clear(&up);
}

void
dest_upload_delete(struct wx_request *req)
{
	const struct wx_state *st;
	struct upload up;
	if (!find_upload(req, &st, &up))
		return;
	if (up_final(up.state)) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "reason", json_object_new_string(up.error));
		up_error(req, 410, up_state_name(up.state), x, "This upload has already ended (%s).",
		    up_state_name(up.state));
		goto out;
	}
	if (wx_cancel_request(st, up.server, NULL) < 0) {
		wx_err("cannot create the cancel marker of %s: %s", up.server, strerror(errno));
		wx_req_internal_error(req, "cancel marker");
		goto out;
	}
	struct wx_record rec;
	if (wx_record_load(st, up.server, &rec) == 0) {
		char *lock = wx_state_file(st, up.server, ".lock");
		pid_t owner = wx_transfer_owner(lock, rec.pid, "wingxfer-destination",
		    WX_OWNER_RECORDED);
		free(lock);
		if (owner > 0 && kill(owner, SIGUSR2) < 0)
			wx_warn("cannot signal the assembler %lld: %s", (long long)owner,
			    strerror(errno));
		wx_record_clear(&rec);
	}
	/* A dead assembler's successor sees the marker at once and cancels. */
	if (!revive(req, st, &up))
		goto out;
	wx_info("upload %s: cancel requested", up.id);
	int64_t until = wx_mono_ms() + CANCEL_WAIT_MS;
	while (!up_final(up.state) && wx_mono_ms() < until) {
		sleep_ms(100);
		struct upload cur;
		if (up_load(st, up.id, &cur) == 0) {
			up_clear(&up);
			up = cur;
		}
	}
	wx_req_send(req, 204, NULL, "", 0);
out:
	up_clear(&up);
}
