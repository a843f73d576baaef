/*
 * The preflight: before the stop hook runs, is there any reason the
 * destination would refuse the server?  Nothing here stops, archives or
 * spends anything; a failure fails the transfer with the game server still
 * running.
 *
 *  1. OPTIONS to the destination URL (upload.c's probe, with the upload's
 *     TLS, CA and connect_to settings): reachable, TLS verified.  Any HTTP
 *     answer below 500 means reachable; its capabilities are kept for the
 *     upload, which then does not ask again and reuses the connection.
 *  2. With a wingxfer destination that names "preflight":
 *     POST <url>/preflight?size=<bytes> with the token and no body; the
 *     destination checks the token, room for size above its disk_reserve,
 *     and that nothing is in the way, without spending the token
 *     (handlers/destination/preflight.c).  200 is a yes; anything else a
 *     no with the destination's reason.  A Go Wings destination (no
 *     X-Wingxfer-Capabilities) gets step 1 only.
 *
 * Connection failures (refused, reset, nothing answered) and 502/503/504
 * are retried with Wings' backoff (shared/backoff.h), at most
 * PREFLIGHT_ATTEMPTS attempts in all; TLS and other errors are final.
 */
#include "autoconf.h"

#include "push.h"
#include "answer.h"
#include "backoff.h"
#include "config.h"
#include "curl_setup.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFLIGHT_ATTEMPTS 3
#define PREFLIGHT_TIMEOUT 30L     /* seconds for the preflight request, after connecting */
#define MAX_ANSWER (16 * 1024)
#define WAIT_SLICE_MS 100

int
job_curl_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return job_should_stop(ctx) ? 1 : 0;
}

/* Errors after which a new attempt may find the destination up. */
static bool
transient_curl(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		return true;
	default:
		return false;
	}
}

static bool
transient_status(long status)
{
	return status == 502 || status == 503 || status == 504;
}

/* "<url>/preflight?size=N" from the destination's transfer URL; new string. */
static char *
preflight_url(const char *url, int64_t size)
{
	size_t q = strcspn(url, "?#");
	size_t base = q;
	while (base > 0 && url[base - 1] == '/')
		base--;
	return xasprintf("%.*s/preflight?size=%lld", (int)base, url, (long long)size);
}

/*
 * POST /api/transfers/preflight.  0 accepted; -1 with why set; *retry when
 * another attempt may do better.
 */
static int
ask(struct job *job, CURL *c, const char *ua, int64_t size, bool *retry, char *why,
    size_t whysize)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	char *url = preflight_url(job->request_url ? job->request_url : job->rec.url, size);
	char *auth = xasprintf("Authorization: %s", job->token);
	const char *lines[] = { auth, "Accept: application/json", "Content-Type:" };
	struct curl_slist *headers = wx_curl_headers(lines, WX_ARRAY_LEN(lines));
	memset(auth, 0, strlen(auth));
	free(auth);
	struct wx_curl_answer a = { NULL, 0, MAX_ANSWER };
	struct wx_curl_set set = WX_CURL_SET_INIT;
	upload_connection_opts(c, job, ua, errbuf,
	    (long)job->cfg->transfers.connect_timeout + PREFLIGHT_TIMEOUT, &set);
	WX_CURL_SET(c, &set, CURLOPT_URL, url);
	WX_CURL_SET(c, &set, CURLOPT_POST, 1L);
	WX_CURL_SET(c, &set, CURLOPT_POSTFIELDS, "");
	WX_CURL_SET(c, &set, CURLOPT_POSTFIELDSIZE, 0L);
	WX_CURL_SET(c, &set, CURLOPT_HTTPHEADER, headers);
	WX_CURL_SET(c, &set, CURLOPT_WRITEFUNCTION, wx_curl_keep_answer);
	WX_CURL_SET(c, &set, CURLOPT_WRITEDATA, &a);
	WX_CURL_SET(c, &set, CURLOPT_NOPROGRESS, 0L);
	WX_CURL_SET(c, &set, CURLOPT_XFERINFOFUNCTION, job_curl_progress);
	WX_CURL_SET(c, &set, CURLOPT_XFERINFODATA, job);
	long status = 0;
	CURLcode rc = set.rc;
	*retry = false;
	if (rc != CURLE_OK || headers == NULL) {
		char refused[200];
		if (rc != CURLE_OK)
			wx_curl_set_describe(&set, refused, sizeof refused);
		else
			snprintf(refused, sizeof refused, "out of memory for its headers");
		snprintf(why, whysize, "the preflight request could not be set up: %s", refused);
		rc = CURLE_FAILED_INIT;
	} else {
		rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (rc != CURLE_OK) {
			*retry = transient_curl(rc);
			snprintf(why, whysize, "its preflight request failed: %s%s%s%s",
			    curl_easy_strerror(rc), errbuf[0] ? " (" : "", errbuf, errbuf[0] ? ")" : "");
		} else if (status != 200) {
			*retry = transient_status(status);
			answer_describe(a.text ? a.text : "", a.len, status, why, whysize);
		}
	}
	if (rc == CURLE_OK && status == 200)
		wx_info("preflight: the destination would take the server (%lld bytes): %.300s",
		    (long long)size, a.text ? a.text : "");
	curl_easy_reset(c);
	curl_slist_free_all(headers);
	wx_free_secret(url);  /* may hold the URL's credentials */
	free(a.text);
	return rc == CURLE_OK && status == 200 ? 0 : -1;
}

/*
 * One attempt: the probe, then (when named) the preflight request.  0 fine,
 * -1 with why set and *retry when another attempt may do better.
 */
static int
attempt(struct job *job, CURL *c, const char *ua, int64_t size, bool *retry, char *why,
    size_t whysize)
{
	struct caps caps = { 0 };
	long status = 0;
	char cwhy[sizeof job->caps_why];
	CURLcode rc = upload_probe(job, c, ua, &caps, &status, cwhy, sizeof cwhy);
	*retry = false;
	if (job->stop != JOB_RUNNING)
		return -1;
	if (rc != CURLE_OK) {
		*retry = transient_curl(rc);
		snprintf(why, whysize, "The destination could not be reached: %s", cwhy);
		return -1;
	}
	if (status >= 500) {
		*retry = transient_status(status);
		snprintf(why, whysize, "The destination is not available: %s", cwhy);
		return -1;
	}
	job->probed = true;
	job->caps = caps;
	wx_strlcpy(job->caps_why, cwhy, sizeof job->caps_why);
	if (!caps.header) {
		job_log(job, "Preflight: the destination answers (HTTP %ld, TLS verified); it is "
		    "not a wingxfer node, so room and token are not checked before the stop.", status);
		return 0;
	}
	if (!caps.preflight) {
		job_log(job, "Preflight: the destination answers (TLS verified); it does not offer "
		    "the preflight check (X-Wingxfer-Capabilities), so room and token are not "
		    "checked before the stop.");
		return 0;
	}
	char awhy[900];
	if (ask(job, c, ua, size, retry, awhy, sizeof awhy) < 0) {
		if (job->stop == JOB_RUNNING)
			snprintf(why, whysize, "%s", awhy);
		return -1;
	}
	char sz[32];
	wx_format_bytes(size, sz, sizeof sz);
	job_log(job, "Preflight: the destination accepts the token, has room for %s and nothing "
	    "is in the way.", sz);
	return 0;
}

bool
job_wait_ms(struct job *job, int64_t ms)
{
	int64_t end = wx_mono_ms() + ms;
	for (;;) {
		if (job_should_stop(job))
			return false;
		int64_t left = end - wx_mono_ms();
		if (left <= 0)
			return true;
		if (left > WAIT_SLICE_MS)
			left = WAIT_SLICE_MS;
		struct timespec ts = { left / 1000, (long)(left % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

enum preflight_result
preflight_run(struct job *job, int64_t size, char *why, size_t whysize)
{
	CURL *c = curl_easy_init();
	if (c == NULL) {
		snprintf(why, whysize, "Cannot check the destination before stopping the server "
		    "(libcurl failed to start).");
		return PREFLIGHT_FAILED;
	}
	char ua[64];
	snprintf(ua, sizeof ua, "wingxfer-push/%s", PACKAGE_VERSION);
	job_phase(job, WX_PHASE_PREFLIGHT);
	job_log(job, "Checking the destination before stopping the server...");
	struct wx_backoff b;
	wx_backoff_init(&b, wx_mono_ms());
	char reason[1000] = "";
	int n;
	for (n = 1;; n++) {
		bool retry = false;
		/* Each attempt is progress for the watchdog (stall_timeout). */
		job->rec.progress_at = wx_now();
		job_save(job);
		if (attempt(job, c, ua, size, &retry, reason, sizeof reason) == 0) {
			job->curl = c;  /* the upload goes on with this handle and its connection */
			return PREFLIGHT_OK;
		}
		if (job->stop != JOB_RUNNING)
			break;
		int64_t wait = retry && n < PREFLIGHT_ATTEMPTS ?
		    wx_backoff_next(&b, wx_mono_ms(), wx_backoff_random()) : -1;
		if (wait < 0)
			break;
		wx_info("preflight attempt %d of %d failed (%s); again in %lld ms", n,
		    PREFLIGHT_ATTEMPTS, reason, (long long)wait);
		if (!job_wait_ms(job, wait))
			break;
	}
	curl_easy_cleanup(c);
	if (job->stop != JOB_RUNNING)
		return PREFLIGHT_STOPPED;
	size_t len = strlen(reason);
	if (n > 1)
		snprintf(why, whysize, "Checked before stopping the server, which was not stopped: "
		    "%s (%d attempts).", reason, n);
	else
		snprintf(why, whysize, "Checked before stopping the server, which was not stopped: "
		    "%s%s", reason, len > 0 && reason[len - 1] == '.' ? "" : ".");
	return PREFLIGHT_FAILED;
}
