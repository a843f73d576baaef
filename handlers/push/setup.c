/*
 * Setting a push up: the transfer's lock (inherited from wingxfer-source or
 * taken by hand), the token (from the handler's pipe or --token-file) and
 * the record it continues or starts.  Every refusal says what to do, for an
 * admin at a terminal.
 */
#include "autoconf.h"

#include "push.h"
#include "config.h"
#include "log.h"
#include "url_redact.h"
#include "util.h"
#include "uuid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TOKEN (64 * 1024)

/*
 * Reads the token from fd; NULL with a message on stderr.  With url != NULL
 * (the handler's pipe) a second line, when there is one, is the destination
 * URL with its credentials, into *url.
 */
static char *
read_token(int fd, const char *from, char **url)
{
	char *buf = xmalloc(MAX_TOKEN + 1);
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, MAX_TOKEN + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			wx_err("cannot read the transfer token from %s: %s", from, strerror(errno));
			goto bad;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > MAX_TOKEN) {
			wx_err("the transfer token from %s is longer than %d bytes", from, MAX_TOKEN);
			goto bad;
		}
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	char *nl = url != NULL ? memchr(buf, '\n', len) : NULL;
	if (nl != NULL) {
		*url = xstrdup(nl + 1);
		bool url_good = wx_has_prefix(*url, "http://") || wx_has_prefix(*url, "https://");
		for (const char *c = *url; url_good && *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				url_good = false;
		memset(nl, 0, len - (size_t)(nl - buf));
		len = (size_t)(nl - buf);
		if (!url_good) {
			wx_err("the destination URL from %s (second line) is not an http:// or "
			    "https:// URL", from);
			free(*url);
			*url = NULL;
			memset(buf, 0, len);
			free(buf);
			return NULL;
		}
	}
	bool good = strncmp(buf, "Bearer ", 7) == 0 && len > 7;
	for (size_t i = 0; good && i < len; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			good = false;
	if (!good) {
		wx_err("the transfer token from %s must be one line \"Bearer <jwt>\", as the panel "
		    "sends it", from);
		goto bad;
	}
	return buf;
bad:
	explicit_bzero(buf, MAX_TOKEN + 1); /* whatever part of a token was read */
	free(buf);
	return NULL;
}

char *
setup_token(const struct push_opts *o, char **url)
{
	*url = NULL;
	if (o->token_fd >= 0) {
		char *t = read_token(o->token_fd, "--token-fd", url);
		close(o->token_fd);
		return t;
	}
	if (o->token_file == NULL) {
		wx_err("no transfer token: pass --token-file FILE (or - for standard input) with "
		    "the \"Bearer <jwt>\" the panel issued; wingxfer never stores it");
		return NULL;
	}
	if (strcmp(o->token_file, "-") == 0)
		return read_token(0, "standard input", NULL);
	int fd = open(o->token_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		wx_err("cannot open --token-file %s: %s", o->token_file, strerror(errno));
		return NULL;
	}
	char *t = read_token(fd, o->token_file, NULL);
	close(fd);
	return t;
}

static int
take_lock(struct job *job)
{
	switch (wx_lock_try(&job->st, job->uuid, &job->lock_fd)) {
	case WX_LOCK_ACQUIRED:
		return 0;
	case WX_LOCK_BUSY:
		wx_err("a transfer of server %s is already running on this node (its lock %s/%s.lock "
		    "is held); cancel it with DELETE /api/servers/%s/transfer first", job->uuid,
		    job->st.transfers, job->uuid, job->uuid);
		return -1;
	default:
		wx_err("cannot take the lock of server %s: %s", job->uuid, strerror(errno));
		return -1;
	}
}

/* Started by the handler: stderr (/dev/null) becomes <uuid>.log unless syslog is used. */
static void
log_to_file(struct job *job)
{
	if (job->cfg->transfers.syslog_facility != NULL)
		return;
	char *path = wx_state_file(&job->st, job->uuid, ".log");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
	free(path);
}

static void
remove_state_file(struct job *job, const char *suffix)
{
	char *path = wx_state_file(&job->st, job->uuid, suffix);
	(void)unlink(path);
	free(path);
}

/* The record the spawned worker continues: the handler's "pending" one. */
static int
load_pending(struct job *job)
{
	if (wx_record_load(&job->st, job->uuid, &job->rec) < 0) {
		wx_err("cannot read the transfer record of %s: %s", job->uuid, strerror(errno));
		return -1;
	}
	if (job->rec.role != WX_ROLE_SOURCE || job->rec.status != WX_ST_PENDING ||
	    job->rec.url == NULL) {
		wx_err("the record of %s is not a pending outgoing transfer (it is %s %s)",
		    job->uuid, wx_role_name(job->rec.role), wx_status_name(job->rec.status));
		return -1;
	}
	if (job->request_url != NULL) {
		char *shown = wx_url_redact(job->request_url);
		bool same = strcmp(shown, job->rec.url) == 0;
		free(shown);
		if (!same) {
			wx_err("the destination URL passed with the token is not the one recorded for "
			    "%s", job->uuid);
			return -1;
		}
	} else if (wx_url_has_userinfo(job->rec.url)) {
		wx_err("the recorded destination of %s had credentials, which are not stored, and "
		    "none were passed with the token", job->uuid);
		return -1;
	}
	json_object *b;
	if (job->rec.extra && json_object_object_get_ex(job->rec.extra, "backups", &b) &&
	    json_object_is_type(b, json_type_array))
		job->backups = json_object_get(b);
	return 0;
}

/* By hand: a new record, for --url or the last recorded destination. */
static int
new_record(struct job *job, const struct push_opts *o)
{
	struct wx_record old;
	bool have = wx_record_load(&job->st, job->uuid, &old) == 0;
	const char *url = o->url;
	json_object *backups = o->backups ? json_object_get(o->backups) : NULL;
	if (url == NULL) {
		if (!have || old.role != WX_ROLE_SOURCE || old.url == NULL) {
			wx_err("no --url given, and no earlier outgoing transfer of %s is recorded to "
			    "take the destination from", job->uuid);
			if (have)
				wx_record_clear(&old);
			json_object_put(backups);
			return -1;
		}
		url = old.url;
		if (wx_url_has_userinfo(url)) {
			wx_err("the last recorded destination of %s had credentials, which wingxfer does "
			    "not store; pass --url again", job->uuid);
			wx_record_clear(&old);
			json_object_put(backups);
			return -1;
		}
		json_object *b;
		if (backups == NULL && old.extra &&
		    json_object_object_get_ex(old.extra, "backups", &b) &&
		    json_object_is_type(b, json_type_array))
			backups = json_object_get(b);
	}
	if (!wx_has_prefix(url, "http://") && !wx_has_prefix(url, "https://")) {
		wx_err("--url must be an http:// or https:// URL");
		if (have)
			wx_record_clear(&old);
		json_object_put(backups);
		return -1;
	}
	if (have && wx_status_active(old.status))
		fprintf(stderr, "wingxfer-push: taking over the interrupted %s transfer of %s\n",
		    wx_status_name(old.status), job->uuid);
	wx_record_init(&job->rec, job->uuid, WX_ROLE_SOURCE);
	job->rec.url = wx_url_redact(url);
	if (wx_url_has_userinfo(url))
		job->request_url = xstrdup(url);
	if (have)
		wx_record_clear(&old);
	wx_uuid_random(job->rec.request_id);
	wx_strlcpy(job->rec.phase, WX_PHASE_QUEUED, sizeof job->rec.phase);
	job->backups = backups ? backups : json_object_new_array();
	char fp[32];
	wx_log_fingerprint(job->token, fp, sizeof fp);
	job->rec.extra = json_object_new_object();
	json_object_object_add(job->rec.extra, "backups", json_object_get(job->backups));
	json_object_object_add(job->rec.extra, "token_fingerprint", json_object_new_string(fp));
	json_object_object_add(job->rec.extra, "started_by", json_object_new_string("hand"));
	wx_cancel_clear(&job->st, job->uuid);
	remove_state_file(job, ".events");
	return 0;
}

int
setup_lock(struct job *job, const struct push_opts *o)
{
	if (o->lock_fd < 0)
		return take_lock(job);
	job->lock_fd = o->lock_fd;
	if (wx_lock_adopt(&job->st, job->uuid, o->lock_fd) < 0)
		return -1;
	log_to_file(job);
	return 0;
}

/* --resume: the active outgoing record with a chunked upload to go on with. */
static int
load_resumable(struct job *job)
{
	if (wx_record_load(&job->st, job->uuid, &job->rec) < 0) {
		wx_err("cannot read the transfer record of %s: %s", job->uuid, strerror(errno));
		return -1;
	}
	json_object *r;
	if (job->rec.role != WX_ROLE_SOURCE || !wx_status_active(job->rec.status) ||
	    job->rec.extra == NULL || !json_object_object_get_ex(job->rec.extra, "resume", &r) ||
	    !json_object_is_type(r, json_type_object)) {
		wx_err("nothing to resume for %s: its record is %s %s%s", job->uuid,
		    wx_role_name(job->rec.role), wx_status_name(job->rec.status),
		    wx_status_active(job->rec.status) ? " without a chunked upload (extra.resume): "
		    "only a chunked upload to a wingxfer destination resumes" : "");
		return -1;
	}
	json_object *b;
	if (json_object_object_get_ex(job->rec.extra, "backups", &b) &&
	    json_object_is_type(b, json_type_array))
		job->backups = json_object_get(b);
	return 0;
}

int
setup_record(struct job *job, const struct push_opts *o)
{
	if (o->resume)
		return load_resumable(job);
	return o->lock_fd >= 0 ? load_pending(job) : new_record(job, o);
}
