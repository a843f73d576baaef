/*
 * The upload: one chunked multipart/form-data POST (HTTP/1.1) of the body
 * (body.c) to the destination with libcurl.  Authorization is the token
 * verbatim; TLS is verified unless api.ignore_certificate_errors says not
 * to.  The progress callback polls the cancel marker and the stop flags at
 * least once a second, fails the upload when no byte could be sent for
 * stall_timeout and when the answer takes longer than response_timeout
 * after the last byte.  200 and 202 mean pushed; any other answer is a
 * failure carrying its status and the JSON error text.
 * system.transfers.upload_limit paces the body node-wide (ratelimit.h).
 *
 * Before it, an OPTIONS request to the same URL (no credentials) asks what
 * the destination is: a wingxfer node answers 2xx with
 * X-Wingxfer-Capabilities; Go Wings answers 204 without it, and anything
 * without the header is treated as Go Wings (peer.c: whole files instead
 * of hard links, no symlinks).  The codec: gzip, which every destination
 * reads, unless system.transfers.compression (auto or zstd) allows zstd and
 * the capabilities name zstd.  zstd is never sent blindly: configured zstd
 * against a destination that does not advertise it sends gzip with a
 * warning.  The connection is reused for the POST.  The probe polls the
 * cancel marker and the stop flags like the upload (a destination that
 * accepts and never answers cannot hold a cancel), and a stop during it
 * ends the upload before the POST.
 */
#include "autoconf.h"

#include "push.h"
#include "answer.h"
#include "config.h"
#include "curl_setup.h"
#include "log.h"
#include "ratelimit.h"
#include "send_watch.h"
#include "util.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UPLOAD_BUFFER (512 * 1024)
#define MAX_ANSWER (16 * 1024)
#define OPTIONS_TIMEOUT 15L      /* seconds for the capabilities question, after connecting */
#define LIMITED_READ (128 * 1024) /* body bytes per read under upload_limit */

struct upload {
	struct job *job;
	struct body *body;
	struct send_watch watch;  /* stall_timeout, then response_timeout */
	struct wx_curl_answer answer;  /* the destination's answer body */
	struct wx_ratelimit rl;  /* upload_limit, node-wide */
	char why[1024];         /* why we aborted the transfer ourselves */
};

static void
abort_with(struct upload *u, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
abort_with(struct upload *u, const char *fmt, ...)
{
	if (u->why[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(u->why, sizeof u->why, fmt, ap);
		va_end(ap);
	}
}

/* --- libcurl callbacks --- */

static size_t
read_body(char *buf, size_t size, size_t nitems, void *ctx)
{
	struct upload *u = ctx;
	struct job *job = u->job;
	size_t want = size * nitems;
	/* upload_limit: the node's bucket pays for the bytes before they are
	 * made (waiting in slices of at most 100 ms, a stop seen after each);
	 * what the body did not give goes back.  curl sends what it read
	 * before it asks for more. */
	if (u->rl.rate > 0 && want > LIMITED_READ)
		want = LIMITED_READ;
	if (wx_ratelimit_take(&u->rl, (int64_t)want, job_pace_stop, job) < 0)
		return CURL_READFUNC_ABORT;
	ssize_t n = body_read(u->body, buf, want);
	wx_ratelimit_give(&u->rl, n > 0 ? (int64_t)want - n : (int64_t)want);
	if (n < 0)
		return CURL_READFUNC_ABORT;
	if (n == 0 && u->watch.done_ms == 0) {
		send_watch_done(&u->watch);
		job->progress.streaming = false;
		job_phase(job, WX_PHASE_WAITING);
	}
	progress_update(job, false);
	return (size_t)n;
}

static int
on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	struct upload *u = ctx;
	struct job *job = u->job;
	const struct wx_transfers_config *tc = &job->cfg->transfers;
	bool moved;
	enum send_verdict v = send_watch_step(&u->watch, ulnow, tc->stall_timeout * 1000,
	    tc->response_timeout * 1000, &moved);
	if (moved)
		job->progress.bytes_sent = ulnow;
	if (job_should_stop(job))
		return 1;
	if (v == SEND_STALLED) {
		abort_with(u, "No data could be sent to the destination for %lld s "
		    "(system.transfers.stall_timeout): it stopped reading, or the network is down.",
		    (long long)tc->stall_timeout);
		return 1;
	}
	if (v == SEND_NO_ANSWER) {
		abort_with(u, "The destination did not answer within %lld s after the upload "
		    "ended (system.transfers.response_timeout).", (long long)tc->response_timeout);
		return 1;
	}
	progress_update(job, false);
	return 0;
}

/* "The destination answered HTTP 409: <its error text>". */
static void
describe_answer(struct upload *u, long code, char *why, size_t whysize)
{
	answer_describe(u->answer.text ? u->answer.text : "", u->answer.len, code, why, whysize);
}

/* --- the codec --- */

static size_t
options_header(char *line, size_t size, size_t nitems, void *ctx)
{
	size_t n = size * nitems;
	answer_caps_line(ctx, line, n);
	return n;
}

static size_t
discard_answer(char *data, size_t size, size_t nmemb, void *ctx)
{
	(void)data;
	(void)ctx;
	return size * nmemb;
}

/*
 * What both requests share: wx_curl_setup's options (URL, TLS verification,
 * User-Agent, connect timeout; timeout seconds for the whole request, 0 for
 * none), HTTP/1.1 with TCP keepalive, and system.transfers.connect_to.
 */
void
upload_connection_opts(CURL *c, struct job *job, const char *ua, char *errbuf, long timeout,
    struct wx_curl_set *s)
{
	const struct wx_curl_request r = { job->request_url ? job->request_url : job->rec.url, ua,
	    (long)job->cfg->transfers.connect_timeout, timeout, errbuf };
	wx_curl_setup(c, job->cfg, &r, s);
	WX_CURL_SET(c, s, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	WX_CURL_SET(c, s, CURLOPT_TCP_KEEPALIVE, 1L);
	connect_to_apply(c, job, s);
}

CURLcode
upload_probe(struct job *job, CURL *c, const char *ua, struct caps *caps, long *status,
    char *why, size_t whysize)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct wx_curl_set set = WX_CURL_SET_INIT;
	upload_connection_opts(c, job, ua, errbuf,
	    (long)job->cfg->transfers.connect_timeout + OPTIONS_TIMEOUT, &set);
	WX_CURL_SET(c, &set, CURLOPT_CUSTOMREQUEST, "OPTIONS");
	WX_CURL_SET(c, &set, CURLOPT_HEADERFUNCTION, options_header);
	WX_CURL_SET(c, &set, CURLOPT_HEADERDATA, caps);
	WX_CURL_SET(c, &set, CURLOPT_WRITEFUNCTION, discard_answer);
	WX_CURL_SET(c, &set, CURLOPT_NOPROGRESS, 0L);
	WX_CURL_SET(c, &set, CURLOPT_XFERINFOFUNCTION, job_curl_progress);
	WX_CURL_SET(c, &set, CURLOPT_XFERINFODATA, job);
	CURLcode rc = set.rc;
	long code = 0;
	if (rc == CURLE_OK) {
		rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	} else {
		wx_curl_set_describe(&set, errbuf, sizeof errbuf);
	}
	curl_easy_reset(c);
	*status = rc == CURLE_OK ? code : 0;
	if (rc != CURLE_OK || code < 200 || code > 299)
		*caps = (struct caps){ 0 };
	if (rc != CURLE_OK && set.rc != CURLE_OK)
		snprintf(why, whysize, "OPTIONS not sent: %s", errbuf);
	else if (rc != CURLE_OK)
		snprintf(why, whysize, "OPTIONS failed: %s%s%s%s", curl_easy_strerror(rc),
		    errbuf[0] ? " (" : "", errbuf, errbuf[0] ? ")" : "");
	else if (code < 200 || code > 299)
		snprintf(why, whysize, "it answered OPTIONS with HTTP %ld", code);
	else if (!caps->header)
		snprintf(why, whysize, "its OPTIONS answer has no X-Wingxfer-Capabilities "
		    "(a Wings node)");
	else if (!caps->zstd)
		snprintf(why, whysize, "its X-Wingxfer-Capabilities does not name zstd");
	else
		why[0] = '\0';
	return rc;
}

/*
 * job->chunk_size (docs/protocol.md §2): chunks when the destination names
 * chunked and system.transfers.chunked is auto, of min(chunk_size,
 * X-Wingxfer-Chunk-Max) bytes (but at least 1 MiB); else 0, the single POST.
 */
static void
choose_chunks(struct job *job, const struct caps *caps)
{
	const struct wx_transfers_config *tc = &job->cfg->transfers;
	job->chunk_size = 0;
	job->chunk_prefix_digest = job->chunk_body_checksum = false;
	if (!caps->header || !caps->chunked) {
		if (caps->header)
			wx_info("the destination does not name chunked: one POST");
		return;
	}
	if (strcmp(tc->chunked, "auto") != 0) {
		wx_info("system.transfers.chunked is %s: one POST", tc->chunked);
		return;
	}
	int64_t size = tc->chunk_size;
	if (caps->chunk_max > 0 && caps->chunk_max < size)
		size = caps->chunk_max;
	if (size < (1 << 20))
		size = 1 << 20;
	job->chunk_size = size;
	job->chunk_prefix_digest = caps->prefix_digest;
	job->chunk_body_checksum = caps->body_checksum;
	wx_info("the destination takes resumable chunks: chunks of %lld bytes%s", (long long)size,
	    caps->prefix_digest ? ", each with the body's digest up to its end" : "");
}

/*
 * Asks the destination what it is (peer_decide) and sets job->codec: zstd
 * only when the configuration allows it, the level compresses (0 stores, in
 * gzip framing), and the destination named zstd.
 */
static void
choose_codec(struct job *job, CURL *c, const char *ua)
{
	const struct wx_transfers_config *tc = &job->cfg->transfers;
	bool want_zstd = strcmp(tc->compression, "zstd") == 0;
	struct caps caps = { 0 };
	char why[300];
	long status;
	if (job->probed) {
		caps = job->caps;  /* the preflight asked already (preflight.c) */
		wx_strlcpy(why, job->caps_why, sizeof why);
	} else {
		(void)upload_probe(job, c, ua, &caps, &status, why, sizeof why);
	}
	if (job->stop != JOB_RUNNING)
		return;  /* upload_run stops before the POST */
	choose_chunks(job, &caps);
	if (!caps.header)
		wx_info("the destination is treated as Go Wings: %s", why);
	peer_decide(job, !caps.header);
	job->codec = WX_COMPRESS_GZIP;
	if (strcmp(tc->compression, "gzip") == 0)
		return;
	if (tc->compression_level == 0) {
		if (want_zstd)
			wx_info("system.transfers.compression_level is 0 (store): the archive is sent "
			    "uncompressed in gzip framing, not zstd");
		return;
	}
	if (why[0] == '\0') {
		job->codec = WX_COMPRESS_ZSTD;
		wx_info("the destination reads zstd (X-Wingxfer-Capabilities): sending tar.zst");
	} else if (want_zstd) {
		wx_warn("system.transfers.compression is zstd, but the destination does not say it "
		    "reads zstd (%s): sending gzip, which every destination reads", why);
	} else {
		wx_info("sending tar.gz: %s", why);
	}
}

/* The POST's headers; NULL when out of memory. */
static struct curl_slist *
headers_for(struct upload *u)
{
	char *auth = xasprintf("Authorization: %s", u->job->token);
	char ctype[160];
	snprintf(ctype, sizeof ctype, "Content-Type: multipart/form-data; boundary=%s",
	    body_boundary(u->body));
	const char *lines[] = { auth, ctype, "Transfer-Encoding: chunked", "Expect:",
	    "Accept: application/json" };
	struct curl_slist *h = wx_curl_headers(lines, WX_ARRAY_LEN(lines));
	memset(auth, 0, strlen(auth));
	free(auth);
	return h;
}

enum upload_result
upload_run(struct job *job, char *why, size_t whysize)
{
	struct upload u;
	memset(&u, 0, sizeof u);
	u.job = job;
	u.rl.fd = -1;
	u.answer.max = MAX_ANSWER;
	CURL *c = job->curl != NULL ? job->curl : curl_easy_init();
	job->curl = NULL;  /* the preflight's handle: its connection is reused */
	if (c == NULL) {
		snprintf(why, whysize, "Cannot set up the upload (libcurl failed to start).");
		return UPLOAD_FAILED;
	}
	char ua[64], errbuf[CURL_ERROR_SIZE] = "";
	snprintf(ua, sizeof ua, "wingxfer-push/%s", PACKAGE_VERSION);
	choose_codec(job, c, ua);
	if (job->stop != JOB_RUNNING) {
		curl_easy_cleanup(c);
		return UPLOAD_STOPPED;  /* cancelled or signalled during the probe */
	}
	if (job->rec.extra == NULL)
		job->rec.extra = json_object_new_object();
	json_object_object_add(job->rec.extra, "codec",
	    json_object_new_string(wx_compress_format_name(job->codec)));
	char size[32];
	wx_format_bytes(job->progress.bytes_total, size, sizeof size);
	if (job->presync == NULL)
		job_log(job, "Archiving %lld files and directories (%s) as tar.%s, level %lld.",
		    (long long)job->progress.files_total, size,
		    job->codec == WX_COMPRESS_ZSTD ? "zst" : "gz",
		    (long long)job->cfg->transfers.compression_level);
	else
		job_log(job, "Copying %lld files and directories (%s) in pre-sync rounds, data as "
		    "%s, level %lld.", (long long)job->progress.files_total, size,
		    wx_compress_format_name(job->codec),
		    (long long)job->cfg->transfers.compression_level);
	u.body = body_open(job, NULL, why, whysize);
	if (u.body == NULL) {
		curl_easy_cleanup(c);
		return UPLOAD_FAILED;
	}
	if (job->chunk_size > 0) {
		enum upload_result r = chunked_run(job, c, ua, &u.body, false, why, whysize);
		curl_easy_cleanup(c);
		body_close(u.body);
		return r;
	}
	struct curl_slist *headers = headers_for(&u);
	struct wx_curl_set set = WX_CURL_SET_INIT;
	upload_connection_opts(c, job, ua, errbuf, 0, &set);
	WX_CURL_SET(c, &set, CURLOPT_POST, 1L);
	WX_CURL_SET(c, &set, CURLOPT_READFUNCTION, read_body);
	WX_CURL_SET(c, &set, CURLOPT_READDATA, &u);
	WX_CURL_SET(c, &set, CURLOPT_HTTPHEADER, headers);
	WX_CURL_SET(c, &set, CURLOPT_UPLOAD_BUFFERSIZE, (long)UPLOAD_BUFFER);
	WX_CURL_SET(c, &set, CURLOPT_WRITEFUNCTION, wx_curl_keep_answer);
	WX_CURL_SET(c, &set, CURLOPT_WRITEDATA, &u.answer);
	WX_CURL_SET(c, &set, CURLOPT_NOPROGRESS, 0L);
	WX_CURL_SET(c, &set, CURLOPT_XFERINFOFUNCTION, on_progress);
	WX_CURL_SET(c, &set, CURLOPT_XFERINFODATA, &u);
	if (set.rc != CURLE_OK || headers == NULL) {
		char refused[200];
		if (set.rc != CURLE_OK)
			wx_curl_set_describe(&set, refused, sizeof refused);
		else
			snprintf(refused, sizeof refused, "out of memory for its headers");
		snprintf(why, whysize, "Cannot set up the upload to the destination: %s.", refused);
		curl_slist_free_all(headers);
		curl_easy_cleanup(c);
		body_close(u.body);
		return UPLOAD_FAILED;
	}

	wx_ratelimit_open(&u.rl, job->st.dir, "upload", job->cfg->transfers.upload_limit,
	    "system.transfers.upload_limit");
	job_phase(job, WX_PHASE_STREAMING);
	job_log(job, "Streaming archive to destination...");
	progress_start_streaming(job);
	send_watch_start(&u.watch);
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	job->progress.streaming = false;
	if (u.watch.sent > job->progress.bytes_sent)
		job->progress.bytes_sent = u.watch.sent;

	enum upload_result result = UPLOAD_FAILED;
	if (rc == CURLE_OK && (code == 200 || code == 202)) {
		result = UPLOAD_PUSHED;
		wx_info("the destination answered HTTP %ld", code);
	} else if (rc == CURLE_OK || (code >= 300 && u.why[0] == '\0' && job->stop == JOB_RUNNING)) {
		describe_answer(&u, code, why, whysize);
	} else if (job->stop != JOB_RUNNING) {
		result = UPLOAD_STOPPED;
	} else if (u.why[0] != '\0') {
		snprintf(why, whysize, "%s", u.why);
	} else if (body_error(u.body)[0] != '\0') {
		snprintf(why, whysize, "%s", body_error(u.body));
	} else {
		snprintf(why, whysize, "The archive could not be sent to the destination: %s%s%s%s",
		    curl_easy_strerror(rc), errbuf[0] ? " (" : "", errbuf, errbuf[0] ? ")" : "");
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	body_close(u.body);
	free(u.answer.text);
	wx_ratelimit_close(&u.rl);
	return result;
}

enum upload_result
upload_resume(struct job *job, char *why, size_t whysize)
{
	json_object *r = NULL, *v;
	const char *boundary = NULL, *codec = NULL;
	if (job->rec.extra != NULL && json_object_object_get_ex(job->rec.extra, "resume", &r)) {
		if (json_object_object_get_ex(r, "boundary", &v) && json_object_is_type(v, json_type_string))
			boundary = json_object_get_string(v);
		if (json_object_object_get_ex(r, "codec", &v) && json_object_is_type(v, json_type_string))
			codec = json_object_get_string(v);
	}
	if (boundary == NULL || strlen(boundary) != 60 ||
	    strspn(boundary, "0123456789abcdef") != 60 || codec == NULL ||
	    (strcmp(codec, "gzip") != 0 && strcmp(codec, "zstd") != 0)) {
		snprintf(why, whysize, "The transfer record has no chunked upload to resume "
		    "(extra.resume: boundary, codec).");
		return UPLOAD_FAILED;
	}
	job->codec = strcmp(codec, "zstd") == 0 ? WX_COMPRESS_ZSTD : WX_COMPRESS_GZIP;
	job->chunk_size = job->cfg->transfers.chunk_size;  /* chunked_run takes the recorded size */
	/* The same body again: with or without its checksum parts, as first made. */
	job->chunk_body_checksum = json_object_object_get_ex(r, "body_checksum", &v) &&
	    json_object_get_boolean(v);
	peer_decide(job, false);  /* only a wingxfer destination takes chunks */
	CURL *c = curl_easy_init();
	if (c == NULL) {
		snprintf(why, whysize, "Cannot set up the upload (libcurl failed to start).");
		return UPLOAD_FAILED;
	}
	char ua[64];
	snprintf(ua, sizeof ua, "wingxfer-push/%s", PACKAGE_VERSION);
	struct body *body = body_open(job, boundary, why, whysize);
	if (body == NULL) {
		curl_easy_cleanup(c);
		return UPLOAD_FAILED;
	}
	enum upload_result res = chunked_run(job, c, ua, &body, true, why, whysize);
	curl_easy_cleanup(c);
	body_close(body);
	return res;
}
