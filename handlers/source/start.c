/*
 * POST /api/servers/:uuid/transfer.
 *
 * Liveness passes from this handler to the worker without a gap: the handler
 * takes the transfer's flock, writes the record "pending", starts
 * wingxfer-push with a duplicate of the lock fd (so the same lock is held by
 * the worker from its first instruction) and only then closes its own copy.
 * The destination's token reaches the worker through a pipe, never through
 * argv (visible in ps) or the state directory.
 */
#include "autoconf.h"

#include "source.h"
#include "config.h"
#include "log.h"
#include "program.h"
#include "record.h"
#include "request.h"
#include "spawn.h"
#include "state.h"
#include "util.h"
#include "url_redact.h"
#include "uuid.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_URL 2048

struct start_request {
	const char *url;
	const char *token;
	json_object *backups;   /* array of canonical UUID strings (owned) */
};

/* An absolute http:// or https:// URL with a host right after "//", as libcurl parses it. */
static bool
valid_destination_url(const char *url)
{
	if (strlen(url) > MAX_URL)
		return false;
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	CURLU *h = curl_url();
	if (h == NULL)
		return false;
	bool good = false;
	char *scheme = NULL, *host = NULL;
	if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		good = (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
		    host[0] != '\0' && wx_has_prefix(url, scheme) &&
		    /* as written: libcurl reads "http:///x/y" and "http:/x/y" as host x */
		    strncmp(url + strlen(scheme), "://", 3) == 0 &&
		    url[strlen(scheme) + 3] != '/';
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(h);
	return good;
}

static bool
valid_token(const char *token)
{
	if (strncmp(token, "Bearer ", 7) != 0 || token[7] == '\0')
		return false;
	for (const char *p = token; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Fills sr from the body; answers 422 and returns -1 on a bad field. */
static int
parse_body(struct wx_request *req, json_object *body, struct start_request *sr)
{
	json_object *v;
	if (!json_object_object_get_ex(body, "url", &v) || !json_object_is_type(v, json_type_string) ||
	    !valid_destination_url(json_object_get_string(v))) {
		wx_req_error(req, 422, "The field url must be the absolute http:// or https:// address "
		    "of the destination node's transfer endpoint, e.g. "
		    "https://node2.example.com:8080/api/transfers.");
		return -1;
	}
	sr->url = json_object_get_string(v);
	if (!json_object_object_get_ex(body, "token", &v) ||
	    !json_object_is_type(v, json_type_string) || !valid_token(json_object_get_string(v))) {
		wx_req_error(req, 422, "The field token must be the destination's transfer token as "
		    "the panel sends it: one line starting with \"Bearer \" followed by the JWT.");
		return -1;
	}
	sr->token = json_object_get_string(v);
	sr->backups = json_object_new_array();
	if (json_object_object_get_ex(body, "backups", &v) && v != NULL) {
		bool good = json_object_is_type(v, json_type_array);
		size_t n = good ? json_object_array_length(v) : 0;
		for (size_t i = 0; good && i < n; i++) {
			json_object *b = json_object_array_get_idx(v, i);
			char canon[37];
			if (!json_object_is_type(b, json_type_string) ||
			    wx_uuid_normalize(json_object_get_string(b), canon) < 0)
				good = false;
			else
				json_object_array_add(sr->backups, json_object_new_string(canon));
		}
		if (!good) {
			wx_req_error(req, 422, "The field backups must be a list of backup UUIDs.");
			return -1;
		}
	}
	return 0;
}

/*
 * A pipe whose read end holds the token, write end closed; -1 on failure.
 * When the destination URL has credentials (which the record does not
 * keep), a second line carries the URL itself for the request.
 */
static int
token_pipe(const char *token, const char *url)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	/*
	 * The body is at most 64 KiB, the token less: it fits in an empty pipe
	 * of the default 64 KiB (asked for explicitly, since a user over
	 * fs.pipe-user-pages-soft gets 4 KiB pipes).
	 */
	char *text = wx_url_has_userinfo(url) ? xasprintf("%s\n%s", token, url) : xstrdup(token);
	size_t len = strlen(text);
	if (len >= 4096)
		(void)fcntl(p[1], F_SETPIPE_SZ, (int)len + 1);
	(void)fcntl(p[1], F_SETFL, O_NONBLOCK);
	ssize_t n = write(p[1], text, len);
	int saved = errno;
	memset(text, 0, len);
	free(text);
	close(p[1]);
	if (n != (ssize_t)len) {
		close(p[0]);
		errno = n < 0 ? saved : EMSGSIZE;
		return -1;
	}
	return p[0];
}

static void
remove_state_file(const struct wx_state *st, const char *uuid, const char *suffix)
{
	char *path = wx_state_file(st, uuid, suffix);
	if (unlink(path) < 0 && errno != ENOENT)
		wx_warn("cannot remove %s: %s", path, strerror(errno));
	free(path);
}

/* Starts wingxfer-push for uuid; its pid, or -1 with err filled. */
static pid_t
start_worker(const struct wx_config *cfg, const char *uuid, int lock_fd, int token_fd, char *err,
    size_t errsize)
{
	char *dir = wx_self_dir();
	char *path = xasprintf("%s/wingxfer-push", dir);
	char lock_arg[16], token_arg[16];
	snprintf(lock_arg, sizeof lock_arg, "%d", WX_SPAWN_FIRST_FD);
	snprintf(token_arg, sizeof token_arg, "%d", WX_SPAWN_FIRST_FD + 1);
	char *argv[] = { path, "--config", cfg->path, "--lock-fd", lock_arg, "--token-fd", token_arg,
		(char *)uuid, NULL };
	int keep[] = { lock_fd, token_fd };
	pid_t pid = wx_spawn_detached(path, argv, keep, WX_ARRAY_LEN(keep), err, errsize);
	free(path);
	free(dir);
	return pid;
}

/*
 * With the lock held: refuses (409) when the last transfer of this server
 * is still marked active (its owner died), else clears what a previous
 * transfer left.  0 to go on, -1 when answered.
 */
static int
check_previous(struct wx_request *req, const struct wx_state *st, const char *uuid)
{
	struct wx_record old;
	if (wx_record_load(st, uuid, &old) == 0) {
		bool active = wx_status_active(old.status);
		enum wx_role role = old.role;
		wx_record_clear(&old);
		if (active) {
			wx_req_error(req, 409, "The previous %s transfer of this server did not finish "
			    "cleanly: its worker is gone but its record is still active. "
			    "wingxfer-watchdog (run from cron every minute, or by hand) will mark it "
			    "failed; then a new transfer can start.", wx_role_name(role));
			return -1;
		}
	} else if (errno == EINVAL) {
		wx_warn("the previous transfer record of this server is unreadable; replacing it");
	} else if (errno != ENOENT) {
		wx_req_internal_error(req, "cannot read the previous transfer record");
		return -1;
	}
	wx_cancel_clear(st, uuid);
	remove_state_file(st, uuid, ".events");
	return 0;
}

void
source_start(struct wx_request *req)
{
	char uuid[37];
	char *server_dir = source_server_dir(req, uuid);
	if (server_dir == NULL)
		return;
	free(server_dir);
	json_object *body = wx_req_read_json(req, SOURCE_MAX_BODY);
	if (body == NULL)
		return;
	struct start_request sr = { 0 };
	int lock_fd = -1, token_fd = -1;
	struct wx_record r;
	wx_record_init(&r, uuid, WX_ROLE_SOURCE);
	if (parse_body(req, body, &sr) < 0)
		goto out;
	const struct wx_state *st = wx_req_state(req);
	if (st == NULL)
		goto out;

	switch (wx_lock_try(st, uuid, &lock_fd)) {
	case WX_LOCK_ACQUIRED:
		break;
	case WX_LOCK_BUSY:
		wx_req_error(req, 409, "A transfer is already in progress for this server.");
		goto out;
	default:
		wx_err("cannot take the transfer lock: %s", strerror(errno));
		wx_req_internal_error(req, "transfer lock");
		goto out;
	}
	if (check_previous(req, st, uuid) < 0)
		goto out;

	r.pid = 0;  /* the worker writes its own pid; never signal this handler */
	wx_strlcpy(r.request_id, req->request_id, sizeof r.request_id);
	wx_strlcpy(r.phase, WX_PHASE_QUEUED, sizeof r.phase);
	r.url = wx_url_redact(sr.url);
	char fp[32];
	wx_log_fingerprint(sr.token, fp, sizeof fp);
	r.extra = json_object_new_object();
	json_object_object_add(r.extra, "backups", json_object_get(sr.backups));
	json_object_object_add(r.extra, "token_fingerprint", json_object_new_string(fp));
	if (wx_record_save(st, &r) < 0) {
		wx_err("cannot write the transfer record: %s", strerror(errno));
		wx_req_internal_error(req, "transfer record");
		goto out;
	}

	token_fd = token_pipe(sr.token, sr.url);
	char err[512] = "";
	pid_t pid = -1;
	if (token_fd < 0)
		snprintf(err, sizeof err, "cannot pass the token to the worker: %s", strerror(errno));
	else
		pid = start_worker(req->cfg, uuid, lock_fd, token_fd, err, sizeof err);
	if (pid < 0) {
		wx_err("%s", err);
		r.status = WX_ST_FAILED;
		r.finished_at = wx_now();
		wx_record_set_error(&r, "The transfer worker could not be started: %s", err);
		if (wx_record_save(st, &r) < 0)
			wx_err("cannot write the transfer record: %s", strerror(errno));
		wx_req_error(req, 500, "The transfer worker (wingxfer-push) could not be started on "
		    "this node; the node's error log has the details (request id %s).",
		    req->request_id);
		goto out;
	}
	wx_info("transfer to %s started (worker pid %d, token %s)", r.url, (int)pid, fp);
	wx_req_send(req, 202, NULL, "", 0);
out:
	if (token_fd >= 0)
		close(token_fd);
	if (lock_fd >= 0)
		close(lock_fd);
	if (sr.backups)
		json_object_put(sr.backups);
	wx_record_clear(&r);
	json_object_put(body);
}
