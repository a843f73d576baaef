/*
 * POST /api/transfers: everything that can be refused is refused before a
 * byte of the body is read, in this order:
 *   401/403  the transfer token (transfer_jwt.h)
 *   415/400  Content-Type not multipart/form-data with a valid boundary
 *   409      a live transfer of this server (its lock is held)
 *   409      a transfer whose process died and the watchdog has not yet
 *            cleaned up (record active, lock free)
 *   409      <system.data>/<uuid> exists and is not an empty directory
 *   409      the token already started a transfer (<state>/tokens/<sha256>,
 *            created with O_EXCL)
 * From there the transfer has started: the record says processing and every
 * failure is reported to the panel.  Still before the body: the free space
 * against system.transfers.disk_reserve (507) and the installer step, the
 * panel's server configuration with build.disk_space (502 when the panel
 * refuses or cannot be reached).  Then the body, then finish.c.
 *
 * The receiving process holds the transfer's lock for the whole request;
 * it is released after the answer is sent.
 */
#include "autoconf.h"

#include "destination.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "panel.h"
#include "priority.h"
#include "request.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Records the token as spent.  1 done, 0 already spent, -1 error. */
static int
spend_token(struct receiver *rx)
{
	char *path = wx_path_join(rx->st->tokens, rx->claims.id);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int e = errno;
	free(path);
	if (fd < 0) {
		errno = e;
		return e == EEXIST ? 0 : -1;
	}
	char ts[32];
	wx_format_time(wx_now(), ts, sizeof ts);
	char *line = xasprintf("{\"sub\":\"%s\",\"exp\":%lld,\"used_at\":\"%s\",\"request_id\":\"%s\"}\n",
	    rx->uuid, (long long)rx->claims.exp, ts, rx->req->request_id);
	int rc = wx_write_all(fd, line, strlen(line));
	free(line);
	if (close(fd) < 0)
		rc = -1;
	return rc < 0 ? -1 : 1;
}

/* The checks of the header comment, up to and including the spent token. */
static bool
admit(struct receiver *rx)
{
	struct wx_request *req = rx->req;
	enum wx_lock_result lr = wx_lock_try(rx->st, rx->uuid, &rx->lock_fd);
	if (lr == WX_LOCK_BUSY) {
		wx_req_error(req, 409, "A transfer is already in progress for this server.");
		return false;
	}
	if (lr != WX_LOCK_ACQUIRED) {
		wx_err("cannot take the transfer lock of %s: %s", rx->uuid, strerror(errno));
		wx_req_internal_error(req, "transfer lock");
		return false;
	}
	/* A cancel marker left by an earlier transfer must not stop this one. */
	wx_cancel_clear(rx->st, rx->uuid);

	if (!rx_check_vacancy(req, rx->st, rx->uuid, rx->server_dir))
		return false;
	int s = spend_token(rx);
	if (s == 0) {
		wx_req_error(req, 409, "This transfer token was already used to start a transfer; a "
		    "token starts one transfer only. Start the transfer again from the panel.");
		return false;
	}
	if (s < 0) {
		wx_err("cannot record the transfer token in %s: %s", rx->st->tokens, strerror(errno));
		wx_req_internal_error(req, "token store");
		return false;
	}
	return true;
}

/* The new record, saved: from here every failure is reported. */
static int
start(struct receiver *rx)
{
	wx_record_init(&rx->rec, rx->uuid, WX_ROLE_DESTINATION);
	rx->rec.status = WX_ST_PROCESSING;
	wx_strlcpy(rx->rec.phase, WX_PHASE_PREPARING, sizeof rx->rec.phase);
	wx_strlcpy(rx->rec.request_id, rx->req->request_id, sizeof rx->rec.request_id);
	rx->rec.bytes_total = rx->req->content_length > 0 ? rx->req->content_length : 0;
	rx->rec.extra = json_object_new_object();
	json_object_object_add(rx->rec.extra, "token_id",
	    json_object_new_string_len(rx->claims.id, 16));
	json_object_object_add(rx->rec.extra, "token_scoped", json_object_new_boolean(rx->claims.scoped));
	rx->started = true;
	rx->started_ms = wx_mono_ms();
	/* This transfer's events start empty. */
	char *events = wx_state_file(rx->st, rx->uuid, ".events");
	(void)unlink(events);
	free(events);
	if (wx_record_save(rx->st, &rx->rec) < 0) {
		wx_err("cannot save the transfer record of %s: %s", rx->uuid, strerror(errno));
		return rx_fail(rx, 500, "This node cannot write its transfer record "
		    "(system.transfers.state_directory).");
	}
	rx->last_save_ms = wx_mono_ms();
	rx_log(rx, "Receiving server %s from the source node (request %s).", rx->uuid,
	    rx->req->request_id);
	return 0;
}

static int
check_reserve(struct receiver *rx)
{
	int64_t free_bytes;
	char msg[512];
	int status = rx_check_room(rx->cfg, 0, &free_bytes, msg, sizeof msg);
	if (status == 500)
		rx_detail(rx, "statvfs %s: %s", rx->cfg->data_directory, strerror(errno));
	return status != 0 ? rx_fail(rx, status, "%s", msg) : 0;
}

/* The installer step: GET {remote}/api/remote/servers/{uuid}. */
static int
fetch_server(struct receiver *rx)
{
	wx_strlcpy(rx->rec.phase, WX_PHASE_INSTALLER, sizeof rx->rec.phase);
	rx_progress(rx, true);
	json_object *conf = NULL;
	struct wx_panel_answer ans;
	memset(&ans, 0, sizeof ans);
	enum wx_panel_result r = wx_panel_get_server(rx->cfg, rx->uuid, &conf, &ans);
	if (r == WX_PANEL_REJECTED) {
		rx_detail(rx, "GET servers/%s: HTTP %ld: %s", rx->uuid, ans.status, ans.detail);
		return rx_fail(rx, 502, "The panel refused to give this server's configuration (HTTP "
		    "%ld); nothing was received.", ans.status);
	}
	if (r != WX_PANEL_OK) {
		rx_detail(rx, "GET servers/%s: %s", rx->uuid, ans.detail);
		return rx_fail(rx, 502, "The panel could not be reached for this server's "
		    "configuration (%s); nothing was received.", ans.status ? "it answered with an "
		    "error" : "no answer");
	}
	bool present;
	rx->disk_limit = wx_panel_disk_limit(conf, &present);
	if (!present)
		rx_log(rx, "The panel's configuration has no settings.build.disk_space; no disk "
		    "limit applies.");
	json_object_object_add(rx->rec.extra, "server", conf);
	if (rx->disk_limit > 0)
		rx_log(rx, "The server's disk limit is %lld MiB.", (long long)(rx->disk_limit >> 20));
	return 0;
}

int
rx_make_staging(struct receiver *rx)
{
	mode_t old = umask(077);
	int rc = wx_mkdirs(rx->staging_root, 0700);
	umask(old);
	if (rc < 0 || (wx_remove_tree(rx->staging) < 0) || mkdir(rx->staging, 0700) < 0) {
		rx_detail(rx, "staging %s: %s", rx->staging, strerror(errno));
		return rx_fail(rx, 500, "This node cannot create its staging directory under "
		    "system.data.");
	}
	rx->staging_fd = open(rx->staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rx->staging_fd < 0) {
		rx_detail(rx, "open %s: %s", rx->staging, strerror(errno));
		return rx_fail(rx, 500, "This node cannot open its staging directory.");
	}
	if (geteuid() == 0 && rx->cfg->uid >= 0 && rx->cfg->gid >= 0 &&
	    fchown(rx->staging_fd, (uid_t)rx->cfg->uid, (gid_t)rx->cfg->gid) < 0) {
		rx_detail(rx, "chown %s: %s", rx->staging, strerror(errno));
		return rx_fail(rx, 500, "This node cannot give the staging directory to system.user.");
	}
	return 0;
}

static void
run(struct receiver *rx, const char *boundary)
{
	if (check_reserve(rx) < 0 || fetch_server(rx) < 0 || rx_make_staging(rx) < 0)
		return;
	if (rx_cancel_check(rx, true))
		return;
	wx_strlcpy(rx->rec.phase, WX_PHASE_RECEIVING, sizeof rx->rec.phase);
	rx->last_log_ms = wx_mono_ms(); /* the first progress line after 5 s */
	rx_progress(rx, true);
	(void)rx_sandbox_run(rx, boundary);
}

bool
rx_open_transfer(struct receiver *rx)
{
	return admit(rx) && start(rx) == 0;
}

int
rx_before_body(struct receiver *rx)
{
	if (check_reserve(rx) < 0 || fetch_server(rx) < 0 || rx_make_staging(rx) < 0)
		return -1;
	return rx_cancel_check(rx, true) ? -1 : 0;
}

void
rx_init(struct receiver *rx, struct wx_request *req, const struct wx_config *cfg)
{
	memset(rx, 0, sizeof *rx);
	rx->req = req;
	rx->cfg = cfg;
	rx->lock_fd = -1;
	rx->staging_fd = -1;
	rx->parts_fd = -1;
	rx->rl.fd = -1;
}

bool
rx_begin(struct receiver *rx, struct wx_request *req)
{
	rx_init(rx, req, req->cfg);
	if (!rx_check_token(req, &rx->claims))
		return false;
	memcpy(rx->uuid, rx->claims.sub, sizeof rx->uuid);
	wx_log_set_transfer(rx->uuid);
	return true;
}

void
rx_set_paths(struct receiver *rx)
{
	rx->server_dir = wx_path_join(rx->cfg->data_directory, rx->uuid);
	rx->staging_root = wx_path_join(rx->cfg->data_directory, ".wingxfer-staging");
	rx->staging = wx_path_join(rx->staging_root, rx->uuid);
}

void
dest_post_transfer(struct wx_request *req)
{
	const struct wx_config *cfg = req->cfg;
	struct receiver rx;
	if (!rx_begin(&rx, req))
		return;

	char boundary[WX_MP_MAX_BOUNDARY + 1];
	const char *why = wx_mp_boundary_from_content_type(wx_req_env(req, "CONTENT_TYPE"),
	    boundary);
	if (why != NULL) {
		bool media = strstr(why, "not multipart") != NULL || strstr(why, "no Content-Type");
		wx_req_error(req, media ? 415 : 400, "The upload must be multipart/form-data: %s.", why);
		return;
	}
	rx.st = wx_req_state(req);
	if (rx.st == NULL)
		return;
	rx_set_paths(&rx);

	/* Receiving, extracting and the hook at the node's transfer priority;
	 * this FastCGI worker serves other requests afterwards. */
	struct wx_priority prio = { 0 };
	if (admit(&rx) && start(&rx) == 0) {
		wx_priority_lower(cfg, &prio);
		wx_ratelimit_open(&rx.rl, rx.st->dir, "download", cfg->transfers.download_limit,
		    "system.transfers.download_limit");
		run(&rx, boundary);
	}
	if (rx.started)
		rx_finish(&rx);
	else if (rx.status != 0)
		wx_req_error(req, rx.status, "%s", rx.error);
	rx_release(&rx);
	wx_priority_restore(&prio);
	/* After the answer: the next transfer of this server may begin. */
	if (rx.lock_fd >= 0)
		close(rx.lock_fd);
}
