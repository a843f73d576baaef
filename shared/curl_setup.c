/* The curl options every request shares (curl_setup.h). */
#include "autoconf.h"

#include "curl_setup.h"
#include "config.h"
#include "util.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void
wx_curl_setup(CURL *c, const struct wx_config *cfg, const struct wx_curl_request *r,
    struct wx_curl_set *s)
{
	WX_CURL_SET(c, s, CURLOPT_URL, r->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	WX_CURL_SET(c, s, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	WX_CURL_SET(c, s, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	WX_CURL_SET(c, s, CURLOPT_FOLLOWLOCATION, 0L);
	WX_CURL_SET(c, s, CURLOPT_USERAGENT, r->user_agent);
	WX_CURL_SET(c, s, CURLOPT_NOSIGNAL, 1L);
	WX_CURL_SET(c, s, CURLOPT_CONNECTTIMEOUT, r->connect_timeout);
	if (r->timeout > 0)
		WX_CURL_SET(c, s, CURLOPT_TIMEOUT, r->timeout);
	WX_CURL_SET(c, s, CURLOPT_ERRORBUFFER, r->errbuf);
	bool verify = !cfg->api_ignore_certificate_errors;
	WX_CURL_SET(c, s, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
	WX_CURL_SET(c, s, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	if (verify && cfg->transfers.ca_file != NULL && cfg->transfers.ca_file[0] != '\0')
		WX_CURL_SET(c, s, CURLOPT_CAINFO, cfg->transfers.ca_file);
}

void
wx_curl_set_describe(const struct wx_curl_set *s, char *buf, size_t size)
{
	snprintf(buf, size, "libcurl refused %s (%s)", s->option ? s->option : "an option",
	    curl_easy_strerror(s->rc));
}

struct curl_slist *
wx_curl_headers(const char *const *lines, size_t n)
{
	struct curl_slist *h = NULL;
	for (size_t i = 0; i < n; i++) {
		struct curl_slist *more = curl_slist_append(h, lines[i]);
		if (more == NULL) {
			curl_slist_free_all(h);
			return NULL;
		}
		h = more;
	}
	return h;
}

size_t
wx_curl_keep_answer(char *data, size_t size, size_t nmemb, void *answer)
{
	struct wx_curl_answer *a = answer;
	size_t n = size * nmemb;
	size_t take = a->len < a->max ? a->max - a->len : 0;
	if (take > n)
		take = n;
	if (take > 0) {
		a->text = xrealloc(a->text, a->len + take + 1);
		memcpy(a->text + a->len, data, take);
		a->len += take;
		a->text[a->len] = '\0';
	}
	return n;
}
