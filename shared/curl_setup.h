/*
 * The curl options every request wingxfer sends shares, set in one place:
 * to the panel (shared/panel.c) and to a destination (wingxfer-push).  Each
 * caller then adds its own (method, body, callbacks; the push worker its
 * HTTP/1.1, keepalive and system.transfers.connect_to) with WX_CURL_SET, so
 * that no option libcurl refuses goes unnoticed: a request is never sent
 * with, say, TLS verification or a timeout silently missing.
 */
#ifndef WX_CURL_SETUP_H
#define WX_CURL_SETUP_H

#include <curl/curl.h>

struct wx_config;

/* The first option libcurl refused on a handle (rc CURLE_OK: none so far). */
struct wx_curl_set {
	CURLcode rc;
	const char *option;   /* its name, e.g. "CURLOPT_CAINFO" */
};
#define WX_CURL_SET_INIT { CURLE_OK, NULL }

/*
 * curl_easy_setopt(c, opt, val) unless an earlier option on s failed;
 * a failure is kept in s (the first one only).  Check s->rc once, before
 * curl_easy_perform.
 */
#define WX_CURL_SET(c, s, opt, val) do { \
	if ((s)->rc == CURLE_OK && ((s)->rc = curl_easy_setopt((c), opt, (val))) != CURLE_OK) \
		(s)->option = #opt; \
} while (0)

/* What a request is, for wx_curl_setup. */
struct wx_curl_request {
	const char *url;
	const char *user_agent;
	long connect_timeout;   /* seconds for TCP and TLS */
	long timeout;           /* seconds for the whole request; 0: no limit */
	char *errbuf;           /* CURL_ERROR_SIZE bytes for libcurl's message */
};

/*
 * Sets the shared options on c, into s as WX_CURL_SET does: the URL (http
 * and https only, redirects not followed), the User-Agent, the timeouts,
 * no signals (the programs own SIGUSR2 and SIGTERM), the error buffer, and
 * TLS: the peer and its host name verified against the system store or
 * system.transfers.ca_file, or not at all when api.ignore_certificate_errors
 * (Wings' key) is true.
 */
void wx_curl_setup(CURL *c, const struct wx_config *cfg, const struct wx_curl_request *r,
    struct wx_curl_set *s);

/* A header list of the n lines; NULL when out of memory (nothing kept) or n is 0. */
struct curl_slist *wx_curl_headers(const char *const *lines, size_t n);

/*
 * An answer's body as libcurl hands it over, kept up to max bytes (the rest
 * is read and dropped) and NUL-terminated; text is NULL until a byte came.
 * Use wx_curl_keep_answer as CURLOPT_WRITEFUNCTION with the struct as
 * CURLOPT_WRITEDATA; free(text) after.
 */
struct wx_curl_answer {
	char *text;
	size_t len;
	size_t max;
};
size_t wx_curl_keep_answer(char *data, size_t size, size_t nmemb, void *answer);

/* "libcurl refused CURLOPT_X (its message)" into buf, for people. */
void wx_curl_set_describe(const struct wx_curl_set *s, char *buf, size_t size);

#endif
