#include "autoconf.h"

#include "panel.h"
#include "backoff.h"
#include "config.h"
#include "curl_setup.h"
#include "log.h"
#include "outbox.h"
#include "record.h"
#include "state.h"
#include "util.h"
#include "uuid.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RESPONSE (1024 * 1024)

const char *
wx_callback_kind_name(enum wx_callback_kind kind)
{
	return kind == WX_CALLBACK_SUCCESS ? "success" : "failure";
}

int
wx_callback_kind_parse(const char *name, enum wx_callback_kind *kind)
{
	if (strcmp(name, "success") == 0)
		*kind = WX_CALLBACK_SUCCESS;
	else if (strcmp(name, "failure") == 0)
		*kind = WX_CALLBACK_FAILURE;
	else
		return -1;
	return 0;
}

const char *
wx_panel_transfer_id(const struct wx_record *r, char *buf, size_t size)
{
	if (r->request_id[0] != '\0' && wx_outbox_valid_transfer_id(r->request_id))
		wx_strlcpy(buf, r->request_id, size);
	else
		snprintf(buf, size, "t%lld", (long long)r->created_at);
	return buf;
}

/* --- one HTTP request ------------------------------------------------------- */

/* Copies text into out with control characters replaced, trimmed. */
static void
clean_copy(char *out, size_t size, const char *text, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < size; i++) {
		unsigned char c = (unsigned char)text[i];
		out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/*
 * The panel's error text: errors[0].detail (Pterodactyl/Pelican, FeatherPanel
 * too), else message / error, else the start of the body.
 */
static void
describe_answer(long status, const char *body, char *out, size_t size)
{
	out[0] = '\0';
	if (body == NULL || *body == '\0') {
		snprintf(out, size, "HTTP %ld", status);
		return;
	}
	json_object *j = json_tokener_parse(body);
	const char *text = NULL;
	const char *code = NULL;
	if (j && json_object_is_type(j, json_type_object)) {
		json_object *errs, *first, *v;
		if (json_object_object_get_ex(j, "errors", &errs) &&
		    json_object_is_type(errs, json_type_array) &&
		    json_object_array_length(errs) > 0 &&
		    (first = json_object_array_get_idx(errs, 0)) != NULL &&
		    json_object_is_type(first, json_type_object)) {
			if (json_object_object_get_ex(first, "detail", &v) &&
			    json_object_is_type(v, json_type_string))
				text = json_object_get_string(v);
			if (json_object_object_get_ex(first, "code", &v) &&
			    json_object_is_type(v, json_type_string))
				code = json_object_get_string(v);
		}
		if (text == NULL && json_object_object_get_ex(j, "message", &v) &&
		    json_object_is_type(v, json_type_string))
			text = json_object_get_string(v);
		if (text == NULL && json_object_object_get_ex(j, "error", &v) &&
		    json_object_is_type(v, json_type_string))
			text = json_object_get_string(v);
	}
	char tmp[400], codebuf[64];
	if (text != NULL)
		clean_copy(tmp, sizeof tmp, text, strlen(text));
	else
		clean_copy(tmp, sizeof tmp, body, strnlen(body, 200));
	if (code != NULL) {
		/* The code is the panel's text too: no control characters in logs and records. */
		clean_copy(codebuf, sizeof codebuf, code, strlen(code));
		snprintf(out, size, "HTTP %ld %s: %s", status, codebuf, tmp);
	} else {
		snprintf(out, size, "HTTP %ld: %s", status, tmp);
	}
	if (j)
		json_object_put(j);
}

void
wx_panel_describe_answer(long status, const char *body, char *out, size_t size)
{
	describe_answer(status, body, out, size);
}

static void
curl_once_init(void)
{
	static int done;
	if (!done) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		done = 1;
	}
}

long
wx_panel_request(const struct wx_config *cfg, const char *method, const char *path,
    const char *body, char **resp, struct wx_panel_answer *ans)
{
	ans->status = 0;
	ans->detail[0] = '\0';
	if (resp)
		*resp = NULL;
	if (cfg->remote == NULL || cfg->token_id == NULL || cfg->token == NULL) {
		snprintf(ans->detail, sizeof ans->detail,
		    "remote, token_id and token must be set in %s to reach the panel", cfg->path);
		return 0;
	}
	curl_once_init();
	CURL *c = curl_easy_init();
	if (c == NULL) {
		snprintf(ans->detail, sizeof ans->detail, "cannot initialise libcurl");
		return 0;
	}
	size_t rl = strlen(cfg->remote);
	while (rl > 0 && cfg->remote[rl - 1] == '/')
		rl--;
	char *url = xasprintf("%.*s/api/remote%s", (int)rl, cfg->remote, path);
	char *auth = xasprintf("Authorization: Bearer %s.%s", cfg->token_id, cfg->token);
	char *ua = xasprintf("%s Wings/v%s (id:%s)", cfg->transfers.panel_product ?
	    cfg->transfers.panel_product : "FeatherPanel", PACKAGE_VERSION, cfg->token_id);
	const char *lines[] = { auth, "Accept: application/json", "Content-Type: application/json",
	    "Expect:" };
	struct curl_slist *h = wx_curl_headers(lines, WX_ARRAY_LEN(lines));
	struct wx_curl_answer b = { NULL, 0, MAX_RESPONSE };
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc = CURLE_OUT_OF_MEMORY;
	if (h == NULL)
		goto done;
	struct wx_curl_set set = WX_CURL_SET_INIT;
	const struct wx_curl_request req = { url, ua, (long)cfg->remote_timeout,
	    (long)cfg->remote_timeout, errbuf };
	wx_curl_setup(c, cfg, &req, &set);
	WX_CURL_SET(c, &set, CURLOPT_HTTPHEADER, h);
	WX_CURL_SET(c, &set, CURLOPT_WRITEFUNCTION, wx_curl_keep_answer);
	WX_CURL_SET(c, &set, CURLOPT_WRITEDATA, &b);
	if (strcmp(method, "POST") == 0) {
		const char *data = body ? body : "";
		WX_CURL_SET(c, &set, CURLOPT_POSTFIELDS, data);
		WX_CURL_SET(c, &set, CURLOPT_POSTFIELDSIZE, (long)strlen(data));
	} else if (strcmp(method, "GET") != 0) {
		WX_CURL_SET(c, &set, CURLOPT_CUSTOMREQUEST, method);
	}
	if ((rc = set.rc) != CURLE_OK) {
		wx_curl_set_describe(&set, errbuf, sizeof errbuf);
		goto done;
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		long status = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		ans->status = status;
		if (status < 200 || status > 299)
			describe_answer(status, b.text, ans->detail, sizeof ans->detail);
	}
done:
	if (rc != CURLE_OK) {
		const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
		clean_copy(ans->detail, sizeof ans->detail, why, strlen(why));
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(url);
	free(ua);
	/* The Authorization line holds the secret: wipe it before it is freed. */
	volatile char *p = (volatile char *)auth;
	while (*p)
		*p++ = '\0';
	free(auth);
	if (resp && rc == CURLE_OK)
		*resp = b.text ? b.text : xstrdup("");
	else
		free(b.text);
	return ans->status;
}

/* --- the retry loop ------------------------------------------------------------ */

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static bool
is_final(long status)
{
	return (status >= 200 && status <= 299) || (status >= 400 && status <= 499);
}

/*
 * Up to max_attempts tries of one request within Wings' window; returns the
 * last status (0: transport error) with ans filled; *resp as
 * wx_panel_request (for the last attempt).
 */
static long
request_with_retries(const struct wx_config *cfg, const char *method, const char *path,
    const char *body, int max_attempts, char **resp, struct wx_panel_answer *ans)
{
	struct wx_backoff b;
	wx_backoff_init(&b, wx_mono_ms());
	for (int attempt = 1;; attempt++) {
		if (resp) {
			free(*resp);
			*resp = NULL;
		}
		long status = wx_panel_request(cfg, method, path, body, resp, ans);
		ans->attempts = attempt;
		if (is_final(status) || attempt >= max_attempts)
			return status;
		int64_t wait = wx_backoff_next(&b, wx_mono_ms(), wx_backoff_random());
		if (wait < 0)
			return status;
		wx_debug("panel: %s %s: %s; attempt %d, retrying in %lld ms", method, path,
		    ans->detail[0] ? ans->detail : "no answer", attempt, (long long)wait);
		sleep_ms(wait);
	}
}

enum wx_panel_result
wx_panel_get_server(const struct wx_config *cfg, const char *uuid, json_object **config,
    struct wx_panel_answer *ans)
{
	*config = NULL;
	memset(ans, 0, sizeof *ans);
	if (!wx_uuid_valid(uuid)) {
		snprintf(ans->detail, sizeof ans->detail, "not a server uuid");
		return WX_PANEL_REJECTED;
	}
	char *path = xasprintf("/servers/%s", uuid);
	char *resp = NULL;
	long status = request_with_retries(cfg, "GET", path, NULL, 1000, &resp, ans);
	free(path);
	enum wx_panel_result r = wx_panel_server_config(status, resp, config, ans);
	free(resp);
	return r;
}

/* --- callbacks -------------------------------------------------------------------- */

enum wx_panel_result
wx_outbox_deliver(const struct wx_config *cfg, const struct wx_state *st,
    struct wx_outbox_entry *e, int max_attempts, bool redelivery, struct wx_panel_answer *ans)
{
	memset(ans, 0, sizeof *ans);
	char *path = xasprintf("/servers/%s/transfer/%s", e->server,
	    wx_callback_kind_name(e->kind));
	char *body = wx_outbox_body(e);
	char *resp = NULL;
	e->in_flight_at = wx_now();
	if (wx_outbox_save(st, e) < 0)
		wx_warn("outbox: cannot mark the %s callback for %s as being sent: %s",
		    wx_callback_kind_name(e->kind), e->server, strerror(errno));
	long status = request_with_retries(cfg, "POST", path, body, max_attempts, &resp, ans);
	int64_t now = wx_now();
	e->in_flight_at = 0;
	/* Every try but a final (2xx/4xx) last one may have reached the panel unanswered. */
	e->unanswered += ans->attempts - ((status >= 200 && status <= 499) ? 1 : 0);
	e->attempts += ans->attempts;
	e->last_attempt_at = now;
	e->last_status = status;
	free(e->last_error);
	e->last_error = ans->detail[0] ? xstrdup(ans->detail) : NULL;
	const char *kind = wx_callback_kind_name(e->kind);
	enum wx_panel_result r;
	if ((status >= 200 && status <= 299) ||
	    (status == 409 && e->kind == WX_CALLBACK_FAILURE)) {
		if (status == 409)
			wx_info("panel had already closed the transfer of server %s (%s); "
			    "failure callback counted as delivered", e->server, ans->detail);
		else
			wx_info("panel acknowledged the transfer %s of server %s (HTTP %ld, "
			    "attempt %lld)", kind, e->server, status, (long long)e->attempts);
		if (wx_outbox_finish(st, e, true, status, resp, NULL) < 0)
			wx_err("outbox: delivered the %s callback for %s but cannot record it in "
			    "%s/sent: %s", kind, e->server, st->outbox, strerror(errno));
		r = WX_PANEL_OK;
	} else if (status >= 400 && status <= 499) {
		wx_err("panel rejected the transfer %s callback for server %s: %s; moved to %s",
		    kind, e->server, ans->detail, st->rejected);
		char why[600];
		snprintf(why, sizeof why, "the panel answered %s", ans->detail);
		if (wx_outbox_finish(st, e, false, status, resp, why) < 0)
			wx_err("outbox: cannot move the %s callback for %s to %s: %s", kind,
			    e->server, st->rejected, strerror(errno));
		r = WX_PANEL_REJECTED;
	} else {
		if (redelivery)
			e->redeliveries++;
		e->next_attempt_at = now + wx_outbox_retry_delay(e->redeliveries);
		if (!redelivery)
			wx_warn("panel unavailable for the transfer %s callback for server %s after "
			    "%d attempts (%s); queued in %s for the watchdog", kind, e->server,
			    ans->attempts, ans->detail[0] ? ans->detail : "no answer", st->outbox);
		if (wx_outbox_save(st, e) < 0)
			wx_err("outbox: cannot update the %s callback for %s in %s: %s", kind,
			    e->server, st->outbox, strerror(errno));
		wx_outbox_release(e);
		r = WX_PANEL_UNAVAILABLE;
	}
	free(resp);
	free(body);
	free(path);
	return r;
}

int
wx_panel_report_attempts(const struct wx_config *cfg, const struct wx_state *st,
    const char *uuid, const char *transfer_id, enum wx_callback_kind kind, const char *reason,
    int max_attempts, struct wx_panel_answer *ans)
{
	memset(ans, 0, sizeof *ans);
	if (max_attempts < 1)
		max_attempts = 1;
	struct wx_outbox_entry e;
	int q = wx_outbox_queue(st, uuid, transfer_id, kind, reason, &e, ans->detail,
	    sizeof ans->detail);
	if (q < 0) {
		int saved = errno;
		if (saved == EEXIST)
			wx_warn("not reporting transfer %s for server %s: %s",
			    wx_callback_kind_name(kind), uuid, ans->detail);
		else
			wx_err("cannot queue the transfer %s callback for server %s: %s",
			    wx_callback_kind_name(kind), uuid, ans->detail);
		errno = saved;
		return -1;
	}
	switch (q) {
	case WX_OUTBOX_Q_SENT:
		snprintf(ans->detail, sizeof ans->detail, "already delivered");
		return WX_PANEL_OK;
	case WX_OUTBOX_Q_REJECTED:
		snprintf(ans->detail, sizeof ans->detail, "already rejected by the panel (see %s)",
		    st->rejected);
		return WX_PANEL_REJECTED;
	case WX_OUTBOX_Q_BUSY:
		snprintf(ans->detail, sizeof ans->detail,
		    "queued; another process is delivering it");
		return WX_PANEL_UNAVAILABLE;
	default:
		return wx_outbox_deliver(cfg, st, &e, max_attempts, false, ans);
	}
}

int
wx_panel_queue(const struct wx_state *st, const char *uuid, const char *transfer_id,
    enum wx_callback_kind kind, const char *reason, char *detail, size_t detailsize)
{
	struct wx_outbox_entry e;
	detail[0] = '\0';
	int q = wx_outbox_queue(st, uuid, transfer_id, kind, reason, &e, detail, detailsize);
	if (q < 0)
		return -1;
	if (q == WX_OUTBOX_Q_NEW || q == WX_OUTBOX_Q_EXISTING)
		wx_outbox_release(&e);
	return 0;
}

int
wx_panel_report(const struct wx_config *cfg, const struct wx_state *st, const char *uuid,
    const char *transfer_id, enum wx_callback_kind kind, const char *reason,
    struct wx_panel_answer *ans)
{
	return wx_panel_report_attempts(cfg, st, uuid, transfer_id, kind, reason, 1000, ans);
}
