#include "autoconf.h"

#include "auth.h"
#include "config.h"
#include "log.h"
#include "request.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

const char *
wx_auth_bearer(const char *header)
{
	if (header == NULL || strncmp(header, "Bearer ", 7) != 0)
		return NULL;
	const char *cred = header + 7;
	if (*cred == '\0')
		return NULL;
	return cred;
}

bool
wx_secret_equal(const char *a, const char *b)
{
	unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)a, strlen(a), da);
	SHA256((const unsigned char *)b, strlen(b), db);
	return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

int
wx_auth_node_token(struct wx_request *req)
{
	const char *cred = wx_auth_bearer(wx_req_env(req, "HTTP_AUTHORIZATION"));
	if (cred == NULL) {
		wx_req_header(req, "WWW-Authenticate", "Bearer");
		wx_req_error(req, 401,
		    "The required authorization headers were not present in the request: expected "
		    "'Authorization: Bearer <node token>'.");
		return -1;
	}
	if (!wx_secret_equal(cred, req->cfg->token)) {
		char fp[32];
		wx_log_fingerprint(cred, fp, sizeof fp);
		wx_warn("wrong node token (%s) for %s %s", fp, req->method, req->path);
		wx_req_error(req, 403, "You are not authorized to access this endpoint.");
		return -1;
	}
	return 0;
}
