/*
 * libFuzzer target: the request intake every program runs on what the web
 * server passes from the network, before any handler: wx_req_init()
 * (REQUEST_METHOD, REQUEST_URI, QUERY_STRING, CONTENT_LENGTH), routing with
 * its percent-decoded :uuid segment, query parameters, the Content-Type
 * boundary of POST /api/transfers, and both Authorization parsers (the
 * transfer JWT's Bearer and the node token's).
 *
 * Input: the variables' values separated by '\n', in the order below;
 * missing ones are unset.
 */
#include "autoconf.h"

#include "auth.h"
#include "multipart.h"
#include "request.h"
#include "router.h"
#include "transfer_jwt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"REQUEST_METHOD", "REQUEST_URI", "QUERY_STRING", "CONTENT_LENGTH", "CONTENT_TYPE",
	"HTTP_AUTHORIZATION",
};
#define NVARS (sizeof names / sizeof names[0])

static void
handler(struct wx_request *req)
{
	(void)req;
}

/* The destination's and the source's routes (handlers/ main.c files). */
static const struct wx_route routes[] = {
	{ "POST", "/api/transfers", WX_AUTH_NONE, handler },
	{ "DELETE", "/api/transfers", WX_AUTH_NODE_TOKEN, handler },
	{ "DELETE", "/api/transfers/:uuid", WX_AUTH_NODE_TOKEN, handler },
	{ "GET", "/api/transfers/:uuid", WX_AUTH_NODE_TOKEN, handler },
	{ "POST", "/api/servers/:uuid/transfer", WX_AUTH_NODE_TOKEN, handler },
	{ "DELETE", "/api/servers/:uuid/transfer", WX_AUTH_NODE_TOKEN, handler },
	{ "GET", "/api/servers/:uuid/transfer", WX_AUTH_NODE_TOKEN, handler },
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536 || memchr(data, '\0', size) != NULL)
		return 0;
	char *copy = malloc(size + 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	char *env[NVARS + 1];
	size_t n = 0;
	char *p = copy;
	for (size_t i = 0; i < NVARS && p != NULL; i++) {
		char *nl = strchr(p, '\n');
		if (nl != NULL)
			*nl = '\0';
		size_t len = strlen(names[i]) + 1 + strlen(p) + 1;
		env[n] = malloc(len);
		if (env[n] == NULL)
			abort();
		snprintf(env[n], len, "%s=%s", names[i], p);
		n++;
		p = nl ? nl + 1 : NULL;
	}
	env[n] = NULL;

	FCGX_Request fcgx;
	memset(&fcgx, 0, sizeof fcgx);
	fcgx.envp = env;
	struct wx_request req;
	wx_req_init(&req, &fcgx);
	if (strlen(req.path) >= sizeof req.path)
		abort();
	/* A length is a number the body must match, or unknown; never negative otherwise. */
	if (req.content_length < -1 || (req.content_length >= 0 && req.body_error))
		abort();

	const struct wx_route *found;
	char param[WX_REQ_PARAM_MAX], allow[128];
	(void)wx_route_find(routes, sizeof routes / sizeof routes[0], req.method, req.path, &found,
	    param, sizeof param, allow, sizeof allow);
	char value[64];
	if (wx_req_query(&req, "uuid", value, sizeof value) && strlen(value) >= sizeof value)
		abort();

	char boundary[WX_MP_MAX_BOUNDARY + 1];
	const char *ct = wx_req_env(&req, "CONTENT_TYPE");
	if (wx_mp_boundary_from_content_type(ct, boundary) == NULL &&
	    wx_mp_boundary_check(boundary) != NULL)
		abort(); /* a boundary we would use must be one we accept */

	const char *auth = wx_req_env(&req, "HTTP_AUTHORIZATION");
	const char *why = NULL;
	const char *tok = wx_transfer_bearer(auth, &why);
	if (tok != NULL) {
		/* HTTP whitespace (SP, HTAB, and line ends) in the token is refused. */
		if (tok[strcspn(tok, " \t\r\n")] != '\0')
			abort();
	} else if (why == NULL) {
		abort();
	}
	const char *cred = auth ? wx_auth_bearer(auth) : NULL;
	if (cred != NULL && (*cred == '\0' || strncmp(auth, "Bearer ", 7) != 0))
		abort();
	if (cred != NULL)
		(void)wx_secret_equal(cred, "fuzz-node-token");

	wx_req_done(&req);
	for (size_t i = 0; i < n; i++)
		free(env[i]);
	free(copy);
	return 0;
}
