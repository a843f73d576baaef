/*
 * Routing on REQUEST_URI (the one variable Apache mod_proxy_fcgi, mod_fcgid
 * and lighttpd all pass unchanged).  A pattern is a path whose segments are
 * literals or ":name", which captures one percent-decoded segment into
 * req->param.  A path that matches a pattern but not its method gives 405
 * with Allow; no pattern gives 404.
 */
#ifndef WX_ROUTER_H
#define WX_ROUTER_H

#include <stddef.h>

struct wx_request;

enum wx_auth_kind {
	WX_AUTH_NONE,       /* the handler authenticates (transfer JWT) */
	WX_AUTH_NODE_TOKEN, /* Authorization: Bearer <node token>, as Wings */
};

typedef void (*wx_handler_fn)(struct wx_request *req);

struct wx_route {
	const char *method;
	const char *pattern;
	enum wx_auth_kind auth;
	wx_handler_fn fn;
};

enum wx_match { WX_MATCH_OK = 0, WX_MATCH_NOT_FOUND = 404, WX_MATCH_BAD_METHOD = 405 };

/*
 * Finds the route for method and path.  On WX_MATCH_OK *found is set and the
 * captured segment is in param.  On WX_MATCH_BAD_METHOD allow holds the
 * methods the path accepts ("GET, DELETE, OPTIONS").
 */
enum wx_match wx_route_find(const struct wx_route *routes, size_t n, const char *method,
    const char *path, const struct wx_route **found, char *param, size_t psize, char *allow,
    size_t asize);

/* Methods accepted on path (for OPTIONS); empty when the path is unknown. */
void wx_route_allowed(const struct wx_route *routes, size_t n, const char *path, char *allow,
    size_t asize);

#endif
