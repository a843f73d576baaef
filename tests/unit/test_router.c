/* Routing on REQUEST_URI: matches, captures, 404, 405 + Allow. */
#include "autoconf.h"

#include "router.h"
#include "tap.h"
#include "util.h"

static void h(struct wx_request *req) { (void)req; }

static const struct wx_route routes[] = {
	{ "POST", "/api/transfers", WX_AUTH_NONE, h },
	{ "DELETE", "/api/transfers", WX_AUTH_NODE_TOKEN, h },
	{ "DELETE", "/api/transfers/:uuid", WX_AUTH_NODE_TOKEN, h },
	{ "GET", "/api/transfers/:uuid", WX_AUTH_NODE_TOKEN, h },
	{ "POST", "/api/servers/:uuid/transfer", WX_AUTH_NODE_TOKEN, h },
	{ "GET", "/api/servers/:uuid/transfer", WX_AUTH_NODE_TOKEN, h },
};

static enum wx_match
find(const char *method, const char *path, const struct wx_route **r, char *param, char *allow)
{
	return wx_route_find(routes, WX_ARRAY_LEN(routes), method, path, r, param, 64, allow, 128);
}

int
main(void)
{
	const struct wx_route *r = NULL;
	char param[64], allow[128];

	is_int(find("POST", "/api/transfers", &r, param, allow), WX_MATCH_OK, "POST /api/transfers");
	ok(r == &routes[0], "the POST route is chosen");
	is_int(find("POST", "/api/transfers/", &r, param, allow), WX_MATCH_OK,
	    "one trailing slash is ignored");
	is_int(find("GET", "/api/transfers/abc-123", &r, param, allow), WX_MATCH_OK,
	    "GET /api/transfers/:uuid");
	is_str(param, "abc-123", "the :uuid segment is captured");
	ok(r == &routes[3], "the GET route is chosen");
	is_int(find("DELETE", "/api/transfers/x", &r, param, allow), WX_MATCH_OK, "DELETE with a uuid");
	ok(r == &routes[2], "DELETE /:uuid, not DELETE without one");
	is_int(find("GET", "/api/servers/0b2a1c3d-1111-4222-8333-444455556666/transfer", &r, param,
	    allow), WX_MATCH_OK, "source status route");
	is_str(param, "0b2a1c3d-1111-4222-8333-444455556666", "the server uuid is captured");
	is_int(find("GET", "/api/servers/a%20b/transfer", &r, param, allow), WX_MATCH_OK,
	    "a percent-encoded segment matches");
	is_str(param, "a b", "the captured segment is decoded");

	is_int(find("GET", "/api/transfers", &r, param, allow), WX_MATCH_BAD_METHOD,
	    "GET /api/transfers is 405");
	is_str(allow, "POST, DELETE, OPTIONS", "Allow lists the path's methods");
	is_int(find("PUT", "/api/servers/x/transfer", &r, param, allow), WX_MATCH_BAD_METHOD,
	    "PUT on the source route is 405");
	is_str(allow, "POST, GET, OPTIONS", "Allow for the source route");

	is_int(find("GET", "/api/transfersXYZ", &r, param, allow), WX_MATCH_NOT_FOUND,
	    "a prefix that is not a segment is 404");
	is_int(find("GET", "/api/transfers/a/b", &r, param, allow), WX_MATCH_NOT_FOUND,
	    "an extra segment is 404");
	is_int(find("GET", "/api/servers/..%2F..%2Fetc/transfer", &r, param, allow), WX_MATCH_NOT_FOUND,
	    "an encoded slash in a segment is 404");
	is_int(find("GET", "/api/servers/%00/transfer", &r, param, allow), WX_MATCH_NOT_FOUND,
	    "an encoded NUL is 404");
	is_int(find("GET", "/api/servers/%zz/transfer", &r, param, allow), WX_MATCH_NOT_FOUND,
	    "a bad escape is 404");
	is_int(find("GET", "/api/servers/%4/transfer", &r, param, allow), WX_MATCH_NOT_FOUND,
	    "a short escape is 404");
	is_int(find("GET", "/api/servers//transfer", &r, param, allow), WX_MATCH_NOT_FOUND,
	    "an empty segment does not match :uuid");
	char longpath[300] = "/api/transfers/";
	for (int i = 15; i < 200; i++)
		longpath[i] = 'a';
	longpath[200] = '\0';
	is_int(find("GET", longpath, &r, param, allow), WX_MATCH_NOT_FOUND,
	    "a segment longer than the capture buffer is 404, not truncated");
	is_int(find("GET", "/", &r, param, allow), WX_MATCH_NOT_FOUND, "/ is 404");
	is_int(find("GET", "", &r, param, allow), WX_MATCH_NOT_FOUND, "an empty path is 404");

	wx_route_allowed(routes, WX_ARRAY_LEN(routes), "/api/transfers/x", allow, sizeof allow);
	is_str(allow, "DELETE, GET, OPTIONS", "methods for OPTIONS");
	wx_route_allowed(routes, WX_ARRAY_LEN(routes), "/nope", allow, sizeof allow);
	is_str(allow, "", "no methods for an unknown path");
	return tap_done();
}
