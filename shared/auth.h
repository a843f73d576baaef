/*
 * Node-token authentication, exactly as Wings' RequireAuthorization:
 * "Authorization: Bearer <token>" split on the first space; a missing or
 * malformed header is 401 with WWW-Authenticate: Bearer; a wrong token 403.
 * The comparison is constant-time (over SHA-256 digests, so the length of the
 * token does not leak either).  The token is the one in the config, which the
 * program re-reads when the file changes.
 */
#ifndef WX_AUTH_H
#define WX_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct wx_request;

/* 0 when authorised; otherwise the request has been answered (401/403). */
int wx_auth_node_token(struct wx_request *req);

/*
 * Extracts the credential of "Bearer <credential>" (case-sensitive scheme,
 * exactly one space, non-empty credential).  Returns NULL if malformed.
 */
const char *wx_auth_bearer(const char *header);

/* Constant-time equality of two NUL-terminated secrets. */
bool wx_secret_equal(const char *a, const char *b);

#endif
