/*
 * One request of the chunked upload (chunked.h) with libcurl: the shared
 * options of every request to the destination, the answer's headers
 * (Upload-Offset, Location, Retry-After, Content-Type) and JSON body kept,
 * the progress callback that polls the stop flags and bounds the waits
 * (stall_timeout while sending, the answer wait after), the body read from
 * the spool under upload_limit; and what an answer means.
 */
#include "autoconf.h"

#include "chunked.h"
#include "config.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void
ch_why(char *why, size_t whysize, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whysize, fmt, ap);
	va_end(ap);
}

/* --- requests --- */

static size_t
read_chunk(char *buf, size_t size, size_t nitems, void *ctx)
{
	struct chunked *u = ctx;
	int64_t left = u->req_len - u->req_pos;
	size_t want = size * nitems;
	if ((int64_t)want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (u->rl.rate > 0 && want > CH_LIMITED_READ)
		want = CH_LIMITED_READ;
	if (wx_ratelimit_take(&u->rl, (int64_t)want, job_pace_stop, u->job) < 0)
		return CURL_READFUNC_ABORT;
	if (chunk_spool_read(&u->spool, buf, want, u->req_off + u->req_pos) < 0) {
		wx_ratelimit_give(&u->rl, (int64_t)want);
		ch_why(u->why, sizeof u->why, "Cannot read the chunk spool: %s.",
		    errno ? strerror(errno) : "it is short");
		return CURL_READFUNC_ABORT;
	}
	u->req_pos += (int64_t)want;
	return want;
}

/*
 * libcurl sends a request again on a fresh connection when the kept one
 * died before any answer: the chunk again from its start, counted as an
 * interruption resumed at once (and its bytes as sent again).
 */
static int
seek_chunk(void *ctx, curl_off_t offset, int origin)
{
	struct chunked *u = ctx;
	if (origin != SEEK_SET || offset < 0 || offset > u->req_len)
		return CURL_SEEKFUNC_CANTSEEK;
	if (offset < u->req_pos) {
		u->interruptions++;
		u->resumes++;
		u->resent += u->req_pos - offset;
		wx_info("the connection died under a chunk at %lld; libcurl sends it again",
		    (long long)u->req_off);
	}
	u->req_pos = offset;
	return CURL_SEEKFUNC_OK;
}

static int
on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	struct chunked *u = ctx;
	struct job *job = u->job;
	if (job_should_stop(job))
		return 1;
	if (!u->has_body || ulnow >= u->req_len)
		send_watch_done(&u->watch);
	bool moved;
	enum send_verdict v = send_watch_step(&u->watch, ulnow,
	    job->cfg->transfers.stall_timeout * 1000, u->answer_wait, &moved);
	if (moved && u->has_body) {
		job->progress.bytes_sent = u->req_off + ulnow;
		if (u->req_off + ulnow > u->sent_hi)
			u->sent_hi = u->req_off + ulnow;
	}
	if (v == SEND_STALLED) {
		ch_why(u->why, sizeof u->why, "no byte could be sent for %lld s "
		    "(system.transfers.stall_timeout)", (long long)job->cfg->transfers.stall_timeout);
		return 1;
	}
	if (v == SEND_NO_ANSWER) {
		ch_why(u->why, sizeof u->why, "no answer within %lld s",
		    (long long)(u->answer_wait / 1000));
		return 1;
	}
	progress_update(job, false);
	return 0;
}

/* Stops nothing: the DELETE after a stop must still go out. */
static int
no_stop_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	(void)ctx;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return 0;
}

static bool
header_is(const char *line, size_t n, const char *name, const char **value, size_t *vlen)
{
	size_t l = strlen(name);
	if (n <= l || strncasecmp(line, name, l) != 0 || line[l] != ':')
		return false;
	size_t i = l + 1;
	while (i < n && (line[i] == ' ' || line[i] == '\t'))
		i++;
	size_t e = n;
	while (e > i && (line[e - 1] == '\r' || line[e - 1] == '\n' || line[e - 1] == ' '))
		e--;
	*value = line + i;
	*vlen = e - i;
	return true;
}

static bool
parse_count(const char *v, size_t n, int64_t *out)
{
	char buf[24];
	if (n == 0 || n >= sizeof buf)
		return false;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return wx_parse_i64(buf, 0, INT64_MAX, out) == NULL;
}

static size_t
on_header(char *line, size_t size, size_t nitems, void *ctx)
{
	struct ch_headers *h = ctx;
	size_t n = size * nitems;
	const char *v;
	size_t vl;
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		memset(h, 0, sizeof *h);
		h->retry_after = -1;
	} else if (header_is(line, n, "Upload-Offset", &v, &vl)) {
		h->has_offset = parse_count(v, vl, &h->offset);
	} else if (header_is(line, n, "Retry-After", &v, &vl)) {
		if (!parse_count(v, vl, &h->retry_after))
			h->retry_after = -1;
	} else if (header_is(line, n, "Location", &v, &vl)) {
		if (vl < sizeof h->location) {
			memcpy(h->location, v, vl);
			h->location[vl] = '\0';
		}
	} else if (header_is(line, n, "Content-Type", &v, &vl)) {
		h->json = vl >= 16 && strncasecmp(v, "application/json", 16) == 0;
	}
	return n;
}

/*
 * curl_easy_perform, but through the multi handle: between libcurl's turns
 * the spool makes the next chunk (u->produce), one step at a time, and
 * libcurl waits for its sockets only when there is nothing to make.
 */
static CURLcode
perform(struct chunked *u)
{
	CURLMcode mc = curl_multi_add_handle(u->multi, u->c);
	if (mc != CURLM_OK) {
		ch_why(u->why, sizeof u->why, "libcurl: %s", curl_multi_strerror(mc));
		return CURLE_FAILED_INIT;
	}
	int running = 1;
	u->job->upload_busy = true;
	while (mc == CURLM_OK) {
		mc = curl_multi_perform(u->multi, &running);
		if (mc != CURLM_OK || running == 0)
			break;
		int made = u->produce ? chunk_spool_step(&u->spool, u->req_off, u->chunk) : 0;
		/* A body that had nothing ready (the pre-sync's producer) is asked
		 * again soon, not only when the sockets move. */
		mc = curl_multi_poll(u->multi, NULL, 0, made == 1 ? 0 : made == 0 &&
		    u->produce && u->spool.later ? 20 : 1000, NULL);
	}
	u->job->upload_busy = false;
	CURLcode rc = CURLE_FAILED_INIT;
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(u->multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE && m->easy_handle == u->c)
			rc = m->data.result;
	if (mc != CURLM_OK)
		ch_why(u->why, sizeof u->why, "libcurl: %s", curl_multi_strerror(mc));
	(void)curl_multi_remove_handle(u->multi, u->c);
	return rc;
}

CURLcode
ch_request(struct chunked *u, const char *method, const char *url, const char *const *lines,
    size_t nlines, int64_t off, int64_t len, bool deleting, long *code)
{
	struct job *job = u->job;
	CURL *c = u->c;
	curl_easy_reset(c);
	free(u->answer.text);
	u->answer.text = NULL;
	u->answer.len = 0;
	json_object_put(u->json);
	u->json = NULL;
	memset(&u->h, 0, sizeof u->h);
	u->h.retry_after = -1;
	u->why[0] = u->errbuf[0] = '\0';
	u->has_body = len >= 0;
	u->req_off = off;
	u->req_len = len >= 0 ? len : 0;
	u->req_pos = 0;
	send_watch_start(&u->watch);
	*code = 0;

	struct curl_slist *headers = wx_curl_headers(lines, nlines);
	struct wx_curl_set set = WX_CURL_SET_INIT;
	long whole = deleting ? (long)job->cfg->transfers.connect_timeout + CH_DELETE_TIMEOUT : 0;
	upload_connection_opts(c, job, u->ua, u->errbuf, whole, &set);
	WX_CURL_SET(c, &set, CURLOPT_URL, url);
	if (len >= 0) {
		WX_CURL_SET(c, &set, CURLOPT_UPLOAD, 1L);
		WX_CURL_SET(c, &set, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
		WX_CURL_SET(c, &set, CURLOPT_READFUNCTION, read_chunk);
		WX_CURL_SET(c, &set, CURLOPT_READDATA, u);
		WX_CURL_SET(c, &set, CURLOPT_SEEKFUNCTION, seek_chunk);
		WX_CURL_SET(c, &set, CURLOPT_SEEKDATA, u);
		WX_CURL_SET(c, &set, CURLOPT_UPLOAD_BUFFERSIZE, (long)CH_IO);
	} else if (strcmp(method, "POST") == 0) {
		WX_CURL_SET(c, &set, CURLOPT_POST, 1L);
		WX_CURL_SET(c, &set, CURLOPT_POSTFIELDS, "");
		WX_CURL_SET(c, &set, CURLOPT_POSTFIELDSIZE, 0L);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		WX_CURL_SET(c, &set, CURLOPT_CUSTOMREQUEST, method);
	WX_CURL_SET(c, &set, CURLOPT_HTTPHEADER, headers);
	WX_CURL_SET(c, &set, CURLOPT_HEADERFUNCTION, on_header);
	WX_CURL_SET(c, &set, CURLOPT_HEADERDATA, &u->h);
	WX_CURL_SET(c, &set, CURLOPT_WRITEFUNCTION, wx_curl_keep_answer);
	WX_CURL_SET(c, &set, CURLOPT_WRITEDATA, &u->answer);
	WX_CURL_SET(c, &set, CURLOPT_NOPROGRESS, 0L);
	WX_CURL_SET(c, &set, CURLOPT_XFERINFOFUNCTION, deleting ? no_stop_progress : on_progress);
	WX_CURL_SET(c, &set, CURLOPT_XFERINFODATA, u);
	CURLcode rc = set.rc;
	if (rc != CURLE_OK || headers == NULL) {
		if (rc != CURLE_OK)
			wx_curl_set_describe(&set, u->why, sizeof u->why);
		else
			ch_why(u->why, sizeof u->why, "out of memory for its headers");
		curl_slist_free_all(headers);
		return rc != CURLE_OK ? rc : CURLE_OUT_OF_MEMORY;
	}
	rc = perform(u);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
	curl_slist_free_all(headers);
	if (u->answer.text != NULL && u->h.json) {
		json_object *j = json_tokener_parse(u->answer.text);
		if (j != NULL && json_object_is_type(j, json_type_object))
			u->json = j;
		else
			json_object_put(j);
	}
	if (u->has_body && u->watch.sent > 0 &&
	    job->progress.bytes_sent < u->req_off + u->watch.sent)
		job->progress.bytes_sent = u->req_off + u->watch.sent;
	return rc;
}

const char *
ch_json_str(json_object *j, const char *key)
{
	json_object *v;
	if (j == NULL || !json_object_object_get_ex(j, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

bool
ch_json_count(json_object *j, const char *key, int64_t *out)
{
	json_object *v;
	if (j == NULL || !json_object_object_get_ex(j, key, &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return false;
	*out = json_object_get_int64(v);
	return true;
}

bool
ch_code_is(struct chunked *u, const char *token)
{
	const char *c = ch_json_str(u->json, "code");
	return c != NULL && strcmp(c, token) == 0;
}

enum ch_answer
ch_classify(struct chunked *u, CURLcode rc, long code, char *why, size_t whysize)
{
	if (u->job->stop != JOB_RUNNING)
		return CH_STOPPED;
	if (rc != CURLE_OK && code != 413) {
		if (u->why[0] != '\0')
			ch_why(why, whysize, "%s", u->why);
		else
			ch_why(why, whysize, "%s%s%s%s", curl_easy_strerror(rc),
			    u->errbuf[0] ? " (" : "", u->errbuf, u->errbuf[0] ? ")" : "");
		return CH_INTERRUPTED;
	}
	if (code >= 200 && code < 300)
		return CH_OK;
	answer_describe(u->answer.text ? u->answer.text : "", u->answer.len, code, why, whysize);
	if (code >= 500 || u->json == NULL || ch_code_is(u, "digest_mismatch"))
		return CH_INTERRUPTED;
	return CH_REFUSED;
}
