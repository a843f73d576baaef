/* Node-token authentication, as Wings' RequireAuthorization. */
#include "autoconf.h"

#include "auth.h"
#include "cgi_capture.h"
#include "config.h"
#include "log.h"
#include "tap.h"

static struct wx_config cfg = { .token = "node-secret" };

/* Runs the node-token check for an Authorization header (NULL = none). */
static int
check(const char *auth, char **out)
{
	char hdr[512];
	char *envp[4] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/transfers/x", NULL, NULL };
	if (auth != NULL) {
		snprintf(hdr, sizeof hdr, "HTTP_AUTHORIZATION=%s", auth);
		envp[2] = hdr;
	}
	struct wx_request req;
	capture_request(&req, envp, "", 0);
	req.cfg = &cfg;
	capture_start();
	int rc = wx_auth_node_token(&req);
	*out = capture_end();
	wx_req_done(&req);
	return rc;
}

int
main(void)
{
	wx_log_init("test_auth");
	wx_log_set_level(WX_LOG_ERROR);
	is_str(wx_auth_bearer("Bearer abc"), "abc", "Bearer <token> gives the token");
	ok(wx_auth_bearer("bearer abc") == NULL, "the scheme is case-sensitive, as Wings");
	ok(wx_auth_bearer("Bearer") == NULL, "no token");
	ok(wx_auth_bearer("Bearer ") == NULL, "an empty token");
	ok(wx_auth_bearer("Basic dXNlcjpwYXNz") == NULL, "another scheme");
	ok(wx_auth_bearer("BearerX abc") == NULL, "no space after Bearer");
	ok(wx_auth_bearer(NULL) == NULL, "no header");
	is_str(wx_auth_bearer("Bearer  abc"), " abc", "split on the first space only, as Wings");

	ok(wx_secret_equal("abc", "abc"), "equal secrets");
	ok(!wx_secret_equal("abc", "abd"), "different secrets");
	ok(!wx_secret_equal("abc", "abcd"), "a prefix is not equal");
	ok(!wx_secret_equal("", "abc"), "empty is not equal");

	char *out;
	is_int(check(NULL, &out), -1, "no Authorization header is refused");
	has_str(out, "Status: 401 Unauthorized", "... with 401");
	has_str(out, "WWW-Authenticate: Bearer", "... and WWW-Authenticate: Bearer");
	has_str(out, "{\"error\":\"The required authorization headers were not present",
	    "... and a JSON error");
	free(out);

	is_int(check("Basic abc", &out), -1, "a malformed header is refused");
	has_str(out, "Status: 401", "... with 401");
	free(out);

	is_int(check("bearer node-secret", &out), -1, "lower-case bearer is refused");
	has_str(out, "Status: 401", "... with 401");
	free(out);

	is_int(check("Bearer wrong-secret", &out), -1, "a wrong token is refused");
	has_str(out, "Status: 403 Forbidden", "... with 403");
	ok(strstr(out, "wrong-secret") == NULL, "the response does not echo the token");
	ok(strstr(out, "WWW-Authenticate") == NULL, "403 has no WWW-Authenticate");
	free(out);

	is_int(check("Bearer node-secret", &out), 0, "the right token passes");
	is_str(out, "", "... and nothing is answered yet");
	free(out);
	return tap_done();
}
