/*
 * The transfer token a panel issues for a server transfer and the source
 * node forwards to the destination as "Authorization: Bearer <jwt>".
 *
 * Checked, in this order, before any byte of the upload is read:
 *   1. the header is exactly "Bearer <token>" (case-sensitive scheme, one
 *      space, no whitespace in the token)                        -> 401
 *   2. three base64url parts; the JOSE header's alg is HS256, checked here
 *      before libjwt is trusted with it ("none", RS256, ES256, ... refused)
 *   3. the HMAC-SHA256 signature keyed with the node token (libjwt)
 *   4. exp present, an integer, not in the past (no leeway, as Wings), and
 *      not further than policy max_lifetime from now; iat, when present, an
 *      integer not more than max_lifetime before exp
 *   5. nbf, when present, an integer and not more than 60 s in the future
 *   6. sub present and a UUID (normalised to canonical lowercase)  -> 401
 *   7. scope (a space-separated string, or an array of strings) contains
 *      "transfer"; a token without any scope is accepted only with
 *      system.transfers.allow_unscoped_tokens (Pterodactyl 1.11 panels);
 *      a scope without "transfer" (e.g. a websocket token) never is -> 403
 * Each failure has its own message for people; none repeats token data.
 *
 * Everything works on a NUL-terminated string, so a fuzzer can drive it.
 */
#ifndef WX_TRANSFER_JWT_H
#define WX_TRANSFER_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WX_JWT_MAX_LEN 8192          /* longer tokens are refused */
#define WX_JWT_NBF_LEEWAY 60         /* seconds */

enum wx_jwt_verdict {
	WX_JWT_OK = 0,
	WX_JWT_UNAUTHORIZED = 401,
	WX_JWT_FORBIDDEN = 403,
};

struct wx_transfer_claims {
	char sub[37];                /* the server UUID, canonical lowercase */
	int64_t exp;
	int64_t nbf;                 /* 0 when absent */
	bool scoped;                 /* the scope named "transfer" (false: unscoped, allowed) */
	char id[65];                 /* SHA-256 hex of the whole token: its single-use key */
};

/* What the node accepts (system.transfers). */
struct wx_jwt_policy {
	bool allow_unscoped;         /* allow_unscoped_tokens */
	int64_t max_lifetime;        /* max_token_lifetime in s; 0 = no bound */
};

/*
 * The credential of an Authorization header value "Bearer <token>", or NULL
 * with *why set (missing, wrong scheme, empty, whitespace in the token).
 */
const char *wx_transfer_bearer(const char *authorization, const char **why);

/*
 * Checks token (NUL-terminated) against key (the node token) at time now
 * (unix seconds).  Returns WX_JWT_OK with *claims filled, or 401/403 with a
 * sentence in why.
 */
enum wx_jwt_verdict wx_transfer_jwt_check(const char *token, const char *key, int64_t now,
    const struct wx_jwt_policy *policy, struct wx_transfer_claims *claims, char *why,
    size_t whysize);

/* SHA-256 hex of token into out[65]. */
void wx_transfer_token_id(const char *token, char out[65]);

#endif
