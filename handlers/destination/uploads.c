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
 * PATCH is upload_patch.c.
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
#include <openssl/crypto.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CANCEL_WAIT_MS 30000    /* a DELETE waits this long for the outcome */

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

/* The upload's state, spool and assembler; answers 201, or rx_fail. */
static int
open_upload(struct receiver *rx, const char *body_type, bool body_checksum)
{
	struct upload up;
	char secret[65];
	if (up_new(&up, rx->uuid, secret) < 0) {
		rx_detail(rx, "getrandom: %s", strerror(errno));
		return rx_fail(rx, 500, "This node cannot make a random upload secret.");
	}
	wx_strlcpy(up.body_type, body_type, sizeof up.body_type);
	up.body_checksum = body_checksum;
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
	json_object_object_add(rx->rec.extra, "chunked", up_chunked_json(&up));
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
	if (!rx_begin(&rx, req))
		return;

	const char *type = wx_req_env(req, "HTTP_X_WINGXFER_BODY_TYPE");
	char boundary[WX_MP_MAX_BOUNDARY + 1];
	const char *why = wx_mp_boundary_from_content_type(type, boundary);
	if (why != NULL || strlen(type) >= sizeof ((struct upload *)0)->body_type) {
		wx_req_error_code(req, 400, "bad_request", NULL, "X-Wingxfer-Body-Type must be the "
		    "multipart/form-data content type the single POST would have had: %s.",
		    why != NULL ? why : "too long");
		return;
	}
	if (req->content_length > 0) {
		wx_req_error_code(req, 400, "bad_request", NULL, "The create request has no body "
		    "(Content-Length: 0); the body goes in PATCH requests.");
		return;
	}
	/* X-Wingxfer-Checksum: body: the body's Repr-Digest stands for the
	 * archive checksum, and the body has no checksum parts (§3.1). */
	const char *ck = wx_req_env(req, "HTTP_X_WINGXFER_CHECKSUM");
	if (ck != NULL && strcmp(ck, "body") != 0) {
		wx_req_error_code(req, 400, "bad_request", NULL, "X-Wingxfer-Checksum must be \"body\" "
		    "or absent.");
		return;
	}
	int64_t size = 0;
	const char *sz = wx_req_env(req, "HTTP_X_WINGXFER_SIZE");
	if (sz != NULL && wx_parse_i64(sz, 0, INT64_MAX, &size) != NULL) {
		wx_req_error_code(req, 400, "bad_request", NULL, "X-Wingxfer-Size is not a number of bytes.");
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
	rx_set_paths(&rx);
	if (rx_open_transfer(&rx)) {
		rx.rec.bytes_total = size;
		if (rx_before_body(&rx) == 0)
			(void)open_upload(&rx, type, ck != NULL);
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
bool
up_find(struct wx_request *req, const struct wx_state **st, struct upload *up)
{
	/* A malformed credential is refused before the upload is looked up. */
	const char *auth = wx_req_env(req, "HTTP_AUTHORIZATION");
	bool formed = auth != NULL && strncmp(auth, "Bearer ", 7) == 0 && strlen(auth + 7) == 64;
	for (size_t i = 7; formed && auth[i] != '\0'; i++)
		formed = (auth[i] >= '0' && auth[i] <= '9') || (auth[i] >= 'a' && auth[i] <= 'f');
	if (!formed) {
		wx_req_error_code(req, 401, "bad_secret", NULL, "This request does not carry an upload secret "
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
		wx_req_error_code(req, 404, "unknown_upload", NULL, "There is no such upload on this node "
		    "(never created, or removed after system.transfers.resume_window).");
		return false;
	}
	wx_log_set_transfer(up->server);
	if (!up_secret_ok(up, auth + 7)) {
		up_clear(up);
		wx_req_error_code(req, 401, "bad_secret", NULL, "This request does not carry the upload's "
		    "secret (Authorization: Bearer <secret> from its creation).");
		return false;
	}
	return true;
}

/* The final states' answer (409 completed, 410 cancelled/failed); true when
 * answered.  finishing counts as completed for appends. */
bool
up_answer_closed(struct wx_request *req, const struct upload *up)
{
	if (up->state == UP_COMPLETED || up->state == UP_FINISHING) {
		wx_req_header(req, "Upload-Offset", "%lld", (long long)up->offset);
		wx_req_error_code(req, 409, "completed", NULL, "The last chunk of this upload was already "
		    "acknowledged; it takes no more.");
		return true;
	}
	if (up->state == UP_CANCELLED || up->state == UP_FAILED) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "reason", json_object_new_string(up->error));
		wx_req_error_code(req, 410, up->state == UP_CANCELLED ? "cancelled" : "failed", x,
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
 * starts a new assembler, which reads the body again from the spool when it
 * holds all of it (upload.h: UP_DONE_PREFIX), or else from offset 0 with
 * the upload's offset set back to 0 (the source sends it again).
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
	} else if (up_spool_whole(st, cur->id)) {
		wx_warn("upload %s: its assembler is gone; a new one extracts the %lld bytes "
		    "received again from this node's spool (nothing to send again)", cur->id,
		    (long long)cur->offset);
		cur->restarts++;
	} else {
		wx_warn("upload %s: its assembler is gone and the chunks it extracted were "
		    "removed for room; starting a new one from offset 0 (%lld bytes to send "
		    "again)", cur->id, (long long)cur->offset);
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
bool
up_revive(struct wx_request *req, const struct wx_state *st, struct upload *up)
{
	if (up_final(up->state))
		return true;
	int lock_fd = -1;
	enum wx_lock_result lr = wx_lock_try_once(st, up->server, &lock_fd);
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

/* ---- GET, HEAD, DELETE ---- */

void
dest_upload_get(struct wx_request *req)
{
	const struct wx_state *st;
	struct upload up;
	if (!up_find(req, &st, &up))
		return;
	if (!up_revive(req, st, &up))
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
	json_object_object_add(j, "consumed", json_object_new_int64(up_consumed(st, &up)));
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
	if (!up_find(req, &st, &up))
		return;
	if (up_final(up.state)) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "reason", json_object_new_string(up.error));
		wx_req_error_code(req, 410, up_state_name(up.state), x, "This upload has already ended (%s).",
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
	if (!up_revive(req, st, &up))
		goto out;
	wx_info("upload %s: cancel requested", up.id);
	int64_t until = wx_mono_ms() + CANCEL_WAIT_MS;
	while (!up_final(up.state) && wx_mono_ms() < until) {
		up_sleep_ms(100);
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
