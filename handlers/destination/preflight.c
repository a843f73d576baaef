/*
 * The checks POST /api/transfers makes before it reads a body, shared with
 * POST /api/transfers/preflight, which makes the same checks for a source
 * about to stop its game server and spends nothing:
 *
 *   401/403  the transfer token (transfer_jwt.h), as for the upload
 *   409      a transfer of this server is running (its lock is held), or
 *            died and awaits the watchdog (record active, lock free)
 *   409      <system.data>/<uuid> exists and is not an empty directory
 *   409      the token already started a transfer (<state>/tokens/<id>)
 *   507      free space on system.data below size + disk_reserve, where
 *            size is ?size=<bytes> (the server's size as the source
 *            measured it; 0 when absent)
 *   200      {"server", "size", "free", "disk_reserve", "token_expires"}
 *
 * The preflight takes no lock, writes no record and no token file, reads
 * no body and never calls the panel: a later upload with the same token
 * is judged afresh.
 */
#include "autoconf.h"

#include "destination.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "request.h"
#include "state.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The largest ?size= accepted (beyond any filesystem). */
#define PREFLIGHT_MAX_SIZE (INT64_MAX / 4)

bool
rx_check_token(struct wx_request *req, struct wx_transfer_claims *claims)
{
	const struct wx_config *cfg = req->cfg;
	const char *why = NULL;
	const char *token = wx_transfer_bearer(wx_req_env(req, "HTTP_AUTHORIZATION"), &why);
	if (token == NULL) {
		wx_req_header(req, "WWW-Authenticate", "Bearer");
		wx_req_error(req, 401, "%s", why);
		return false;
	}
	char msg[512];
	struct wx_jwt_policy pol = {
		.allow_unscoped = cfg->transfers.allow_unscoped_tokens,
		.max_lifetime = cfg->transfers.max_token_lifetime,
	};
	enum wx_jwt_verdict v = wx_transfer_jwt_check(token, cfg->token, wx_now(), &pol, claims,
	    msg, sizeof msg);
	if (v != WX_JWT_OK) {
		char fp[32];
		wx_log_fingerprint(token, fp, sizeof fp);
		wx_warn("transfer token %s refused: %s", fp, msg);
		if (v == WX_JWT_UNAUTHORIZED)
			wx_req_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		wx_req_error(req, (int)v, "%s", msg);
		return false;
	}
	return true;
}

/* 1 when path is missing or an empty directory, 0 when it holds something, -1 on error. */
static int
vacant(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 1 : -1;
	if (!S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	int empty = 1;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
			empty = 0;
			break;
		}
	}
	closedir(d);
	return empty;
}

bool
rx_check_vacancy(struct wx_request *req, const struct wx_state *st, const char *uuid,
    const char *server_dir)
{
	struct wx_record old;
	if (wx_record_load(st, uuid, &old) == 0) {
		bool stuck = wx_status_active(old.status);
		wx_record_clear(&old);
		if (stuck) {
			wx_req_error(req, 409, "The previous transfer of this server on this node did "
			    "not finish (its process is gone); the watchdog (wingxfer-watchdog, run "
			    "from cron every minute) will mark it failed and clean up. Try again after "
			    "that.");
			return false;
		}
	}
	int v = vacant(server_dir);
	if (v == 0) {
		wx_req_error(req, 409, "This node already has data for this server (<system.data>/"
		    "<uuid> exists and is not empty). Remove it on this node, or transfer the server "
		    "elsewhere.");
		return false;
	}
	if (v < 0) {
		wx_err("cannot inspect %s: %s", server_dir, strerror(errno));
		wx_req_internal_error(req, "server directory");
		return false;
	}
	return true;
}

int
rx_check_room(const struct wx_config *cfg, int64_t need, int64_t *free_out, char *msg,
    size_t msgsize)
{
	int64_t free_bytes = wx_free_space(cfg->data_directory);
	*free_out = free_bytes;
	if (free_bytes < 0) {
		int e = errno;
		snprintf(msg, msgsize, "This node cannot measure the free space of system.data.");
		errno = e;
		return 500;
	}
	int64_t reserve = cfg->transfers.disk_reserve;
	if (free_bytes >= reserve && free_bytes - reserve >= need)
		return 0;
	char f[32], r[32];
	wx_format_bytes(free_bytes, f, sizeof f);
	wx_format_bytes(reserve, r, sizeof r);
	if (need <= 0) {
		snprintf(msg, msgsize, "Not enough disk space on this node: %s free, and "
		    "system.transfers.disk_reserve keeps %s free; nothing was received.", f, r);
	} else {
		char n[32];
		wx_format_bytes(need, n, sizeof n);
		snprintf(msg, msgsize, "Not enough disk space on this node for this server: it "
		    "needs %s (%lld bytes), system.transfers.disk_reserve keeps %s free, and %s "
		    "(%lld bytes) is free.", n, (long long)need, r, f, (long long)free_bytes);
	}
	return 507;
}

/* ?size=<bytes>: 0 when absent; -1 when malformed (answered 400). */
static int64_t
wanted_size(struct wx_request *req)
{
	char q[32];
	if (!wx_req_query(req, "size", q, sizeof q))
		return 0;
	int64_t v;
	const char *why = strlen(q) >= sizeof q - 1 ? "is too long" :
	    wx_parse_i64(q, 0, PREFLIGHT_MAX_SIZE, &v);
	if (why != NULL) {
		wx_req_error(req, 400, "The size query parameter %s; it is the server's size in "
		    "bytes.", why);
		return -1;
	}
	return v;
}

void
dest_preflight(struct wx_request *req)
{
	struct wx_transfer_claims claims;
	if (!rx_check_token(req, &claims))
		return;
	char uuid[37];
	memcpy(uuid, claims.sub, sizeof uuid);
	wx_log_set_transfer(uuid);
	int64_t size = wanted_size(req);
	if (size < 0)
		return;
	const struct wx_state *st = wx_req_state(req);
	if (st == NULL)
		return;
	enum wx_lock_result lr = wx_lock_probe(st, uuid);
	if (lr == WX_LOCK_BUSY) {
		wx_req_error(req, 409, "A transfer is already in progress for this server.");
		return;
	}
	if (lr != WX_LOCK_ACQUIRED) {
		wx_err("cannot probe the transfer lock of %s: %s", uuid, strerror(errno));
		wx_req_internal_error(req, "transfer lock");
		return;
	}
	char *server_dir = wx_path_join(req->cfg->data_directory, uuid);
	bool vacant_ok = rx_check_vacancy(req, st, uuid, server_dir);
	free(server_dir);
	if (!vacant_ok)
		return;
	char *spent = wx_path_join(st->tokens, claims.id);
	struct stat sb;
	int used = lstat(spent, &sb) == 0 ? 1 : errno == ENOENT ? 0 : -1;
	if (used < 0)
		wx_err("cannot look up the transfer token in %s: %s", st->tokens, strerror(errno));
	free(spent);
	if (used < 0) {
		wx_req_internal_error(req, "token store");
		return;
	}
	if (used > 0) {
		wx_req_error(req, 409, "This transfer token was already used to start a transfer; a "
		    "token starts one transfer only. Start the transfer again from the panel.");
		return;
	}
	int64_t free_bytes;
	char msg[512];
	int status = rx_check_room(req->cfg, size, &free_bytes, msg, sizeof msg);
	if (status != 0) {
		if (status == 500)
			wx_err("statvfs %s: %s", req->cfg->data_directory, strerror(errno));
		wx_warn("preflight of %s refused: %s", uuid, msg);
		wx_req_error(req, status, "%s", msg);
		return;
	}
	wx_info("preflight of %s: the token is accepted, nothing is in the way, %lld bytes fit",
	    uuid, (long long)size);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "server", json_object_new_string(uuid));
	json_object_object_add(o, "size", json_object_new_int64(size));
	json_object_object_add(o, "free", json_object_new_int64(free_bytes));
	json_object_object_add(o, "disk_reserve",
	    json_object_new_int64(req->cfg->transfers.disk_reserve));
	json_object_object_add(o, "token_expires", json_object_new_int64(claims.exp));
	wx_req_json(req, 200, o);
}
