/* Untrusted text: UTF-8 repair of JSON text, URL userinfo redaction, saturating differences. */
#include "autoconf.h"

#include "json_text.h"
#include "tap.h"
#include "url_redact.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void
repaired(const char *in, const char *want, const char *what)
{
	size_t n = 0;
	char *out = wx_utf8_repair(in, strlen(in), &n);
	is_str(out, want, "%s", what);
	is_int((long long)n, (long long)strlen(want), "%s: length", what);
	free(out);
}

int
main(void)
{
	repaired("plain ascii", "plain ascii", "ASCII is kept");
	repaired("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	    "valid 2-, 3- and 4-byte sequences are kept");
	repaired("a\xff" "b", "a\xef\xbf\xbd" "b", "a stray byte becomes U+FFFD");
	repaired("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd", "an overlong '/' is two replacements");
	repaired("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "a surrogate is refused");
	repaired("\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
	    "past U+10FFFF is refused");
	repaired("x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd", "a sequence cut at the end");

	json_object *j = json_object_new_object();
	json_object_object_add(j, "error", json_object_new_string("bad \xfe name"));
	char *t = wx_json_text(j, JSON_C_TO_STRING_PLAIN, NULL);
	is_str(t, "{\"error\":\"bad \xef\xbf\xbd name\"}", "JSON text is repaired");
	free(t);
	json_object_put(j);

	char *r = wx_url_redact("https://user:pa%40ss@node2.example.com:8080/api/transfers?a=b@c");
	is_str(r, "https://" WX_URL_REDACTED "@node2.example.com:8080/api/transfers?a=b@c",
	    "userinfo (up to the last @ of the authority) is redacted, the query untouched");
	free(r);
	r = wx_url_redact("http://token@h/x");
	is_str(r, "http://" WX_URL_REDACTED "@h/x", "a user without password too");
	free(r);
	r = wx_url_redact("https://h:8080/x@y");
	is_str(r, "https://h:8080/x@y", "an @ in the path is not userinfo");
	free(r);
	ok(!wx_url_has_userinfo("https://h/"), "no userinfo");
	ok(wx_url_has_userinfo("https://a:b@h/"), "userinfo");

	is_int((long long)wx_sub_sat(1800000000, INT64_MIN), (long long)INT64_MAX,
	    "now - (-2^63) saturates");
	is_int((long long)wx_sub_sat(INT64_MIN, 1), (long long)INT64_MIN, "-2^63 - 1 saturates");
	is_int((long long)wx_sub_sat(10, 3), 7LL, "ordinary differences are exact");
	return tap_done();
}
