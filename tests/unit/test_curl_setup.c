/*
 * wx_curl_setup and WX_CURL_SET: the shared options are accepted; an option
 * libcurl refuses is kept (the first one), named, and not overwritten by
 * later ones; wx_curl_headers keeps every line.
 */
#include "autoconf.h"

#include "config.h"
#include "curl_setup.h"
#include "tap.h"

#include <string.h>

int
main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct wx_config cfg;
	memset(&cfg, 0, sizeof cfg);
	char errbuf[CURL_ERROR_SIZE] = "";
	CURL *c = curl_easy_init();
	ok(c != NULL, "a curl handle");

	struct wx_curl_set s = WX_CURL_SET_INIT;
	struct wx_curl_request r = { "https://127.0.0.1:1/api", "wingxfer-test/1", 5, 30, errbuf };
	wx_curl_setup(c, &cfg, &r, &s);
	is_int(s.rc, CURLE_OK, "every shared option is accepted (TLS verified, system store)");
	ok(s.option == NULL, "and none is named");

	char ca[] = "/nonexistent/ca.pem";
	cfg.transfers.ca_file = ca;
	cfg.api_ignore_certificate_errors = true;
	r.timeout = 0;
	wx_curl_setup(c, &cfg, &r, &s);
	is_int(s.rc, CURLE_OK, "likewise with a CA file, certificates ignored, no timeout");

	curl_easy_reset(c);
	r.connect_timeout = -1;
	wx_curl_setup(c, &cfg, &r, &s);
	is_int(s.rc, CURLE_BAD_FUNCTION_ARGUMENT, "a negative connect timeout is refused");
	is_str(s.option, "CURLOPT_CONNECTTIMEOUT", "and the option is named");
	WX_CURL_SET(c, &s, CURLOPT_HTTP_VERSION, 99L);
	is_str(s.option, "CURLOPT_CONNECTTIMEOUT", "a later refusal does not hide the first");
	char text[200];
	wx_curl_set_describe(&s, text, sizeof text);
	has_str(text, "libcurl refused CURLOPT_CONNECTTIMEOUT (", "described for people: %s", text);

	struct wx_curl_set t = WX_CURL_SET_INIT;
	WX_CURL_SET(c, &t, CURLOPT_NOSIGNAL, 1L);
	WX_CURL_SET(c, &t, CURLOPT_HTTP_VERSION, 99L);
	ok(t.rc != CURLE_OK, "a caller's own option refused after accepted ones is caught");
	is_str(t.option, "CURLOPT_HTTP_VERSION", "and named");
	curl_easy_cleanup(c);

	const char *lines[] = { "Accept: application/json", "Expect:", "X-One: 1" };
	struct curl_slist *h = wx_curl_headers(lines, 3);
	int n = 0;
	bool same = true;
	for (struct curl_slist *p = h; p != NULL; p = p->next, n++)
		same = same && n < 3 && strcmp(p->data, lines[n]) == 0;
	is_int(n, 3, "the header list has every line");
	ok(same, "in order");
	curl_slist_free_all(h);
	ok(wx_curl_headers(lines, 0) == NULL, "no lines: no list");
	curl_global_cleanup();
	return tap_done();
}
