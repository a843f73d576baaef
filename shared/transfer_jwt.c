#include "autoconf.h"

#include "transfer_jwt.h"
#include "util.h"
#include "uuid.h"

#include <json-c/json.h>
#include <jwt.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum wx_jwt_verdict
refuse(enum wx_jwt_verdict v, char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum wx_jwt_verdict
refuse(enum wx_jwt_verdict v, char *why, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	return v;
}

const char *
wx_transfer_bearer(const char *h, const char **why)
{
	if (h == NULL || *h == '\0') {
		*why = "The request has no Authorization header; expected 'Authorization: Bearer "
		    "<transfer token>' as issued by the panel.";
		return NULL;
	}
	if (strncmp(h, "Bearer ", 7) != 0) {
		*why = "The Authorization header is not 'Bearer <transfer token>' (the scheme is "
		    "case-sensitive and followed by exactly one space).";
		return NULL;
	}
	const char *t = h + 7;
	if (*t == '\0') {
		*why = "The Authorization header has no token after 'Bearer '.";
		return NULL;
	}
	for (const char *p = t; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			*why = "The Authorization header's token contains whitespace; expected "
			    "'Bearer <transfer token>'.";
			return NULL;
		}
	}
	*why = NULL;
	return t;
}

void
wx_transfer_token_id(const char *token, char out[65])
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)token, strlen(token), d);
	wx_hex(d, sizeof d, out);
}

static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict unpadded base64url (RFC 7515 section 2) of in[0..n) into a new
 * NUL-terminated buffer; NULL when malformed (bad character, padding, a
 * length that no encoding produces, or stray bits in the last character).
 */
static char *
b64url_decode(const char *in, size_t n, size_t *outlen)
{
	if (n % 4 == 1)
		return NULL;
	char *out = xmalloc(n * 3 / 4 + 2);
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_value((unsigned char)in[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
		free(out);
		return NULL;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* Decodes one part as a JSON object (new reference), or NULL. */
static json_object *
decode_json_part(const char *p, size_t n)
{
	size_t len;
	char *text = b64url_decode(p, n, &len);
	if (text == NULL || strlen(text) != len) { /* NUL bytes inside */
		free(text);
		return NULL;
	}
	json_tokener *tok = json_tokener_new();
	json_object *j = json_tokener_parse_ex(tok, text, (int)len);
	bool clean = json_tokener_get_error(tok) == json_tokener_success &&
	    json_tokener_get_parse_end(tok) == len;
	json_tokener_free(tok);
	free(text);
	if (j == NULL || !clean || !json_object_is_type(j, json_type_object)) {
		json_object_put(j);
		return NULL;
	}
	return j;
}

static const char *
alg_name_for_message(const char *alg)
{
	static const char *const known[] = {
		"none", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
		"PS256", "PS384", "PS512", "EdDSA",
	};
	for (size_t i = 0; i < WX_ARRAY_LEN(known); i++)
		if (strcmp(alg, known[i]) == 0)
			return known[i];
	return "an unsupported algorithm";
}

static enum wx_jwt_verdict
check_header(json_object *h, char *why, size_t size)
{
	json_object *alg;
	if (!json_object_object_get_ex(h, "alg", &alg) || !json_object_is_type(alg, json_type_string))
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token's header names no signing algorithm (alg); only HS256 "
		    "tokens signed with this node's token are accepted.");
	const char *a = json_object_get_string(alg);
	if (strcmp(a, "HS256") == 0)
		return WX_JWT_OK;
	if (strcmp(a, "none") == 0)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token is unsigned (alg none); only HS256 tokens signed with this "
		    "node's token are accepted.");
	return refuse(WX_JWT_UNAUTHORIZED, why, size,
	    "The transfer token is signed with %s; only HS256 tokens signed with this node's "
	    "token are accepted.", alg_name_for_message(a));
}

/* The integer value of claim name: 1 present and integral, 0 absent, -1 not an integer. */
static int
int_claim(json_object *payload, const char *name, int64_t *out)
{
	json_object *v;
	if (!json_object_object_get_ex(payload, name, &v) || v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return -1;
	*out = json_object_get_int64(v);
	return 1;
}

static bool
word_in_list(const char *list, const char *word)
{
	size_t wl = strlen(word);
	const char *p = list;
	while (*p) {
		while (*p == ' ')
			p++;
		size_t l = strcspn(p, " ");
		if (l == wl && strncmp(p, word, wl) == 0)
			return true;
		p += l;
	}
	return false;
}

/* 1 the scope names "transfer", 0 it does not, -1 there is no scope claim. */
static int
scope_has_transfer(json_object *payload)
{
	json_object *s;
	if (!json_object_object_get_ex(payload, "scope", &s) || s == NULL)
		return -1;
	if (json_object_is_type(s, json_type_string))
		return word_in_list(json_object_get_string(s), "transfer") ? 1 : 0;
	if (json_object_is_type(s, json_type_array)) {
		size_t n = json_object_array_length(s);
		for (size_t i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(s, i);
			if (json_object_is_type(e, json_type_string) &&
			    word_in_list(json_object_get_string(e), "transfer"))
				return 1;
		}
	}
	return 0;
}

static enum wx_jwt_verdict
check_claims(json_object *payload, int64_t now, const struct wx_jwt_policy *pol,
    struct wx_transfer_claims *c, char *why, size_t size)
{
	char ts[32];
	int r = int_claim(payload, "exp", &c->exp);
	if (r == 0)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token has no exp (expiry) claim; tokens must expire.");
	if (r < 0)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token's exp claim is not an integer number of seconds.");
	if (now > c->exp) {
		wx_format_time(c->exp, ts, sizeof ts);
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token expired at %s (%lld s ago); start the transfer again from "
		    "the panel to get a new one.", ts, (long long)wx_sub_sat(now, c->exp));
	}
	if (pol->max_lifetime > 0 && wx_sub_sat(c->exp, now) > pol->max_lifetime) {
		wx_format_time(c->exp, ts, sizeof ts);
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token is valid until %s, %lld s from now: longer than "
		    "system.transfers.max_token_lifetime (%lld s) allows; panels issue tokens for 15 "
		    "minutes or an hour.", ts, (long long)wx_sub_sat(c->exp, now),
		    (long long)pol->max_lifetime);
	}
	int64_t iat;
	r = int_claim(payload, "iat", &iat);
	if (r < 0)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token's iat claim is not an integer number of seconds.");
	if (r > 0 && pol->max_lifetime > 0 && wx_sub_sat(c->exp, iat) > pol->max_lifetime)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token was issued for %lld s (exp - iat): longer than "
		    "system.transfers.max_token_lifetime (%lld s) allows; panels issue tokens for 15 "
		    "minutes or an hour.", (long long)wx_sub_sat(c->exp, iat),
		    (long long)pol->max_lifetime);
	r = int_claim(payload, "nbf", &c->nbf);
	if (r < 0)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token's nbf claim is not an integer number of seconds.");
	if (r > 0 && wx_sub_sat(c->nbf, now) > WX_JWT_NBF_LEEWAY) {
		wx_format_time(c->nbf, ts, sizeof ts);
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token is not valid before %s (%lld s from now); check the clocks "
		    "of the panel and this node.", ts, (long long)wx_sub_sat(c->nbf, now));
	}
	json_object *sub;
	if (!json_object_object_get_ex(payload, "sub", &sub) || sub == NULL)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token has no sub claim (the UUID of the server to transfer).");
	if (!json_object_is_type(sub, json_type_string) ||
	    wx_uuid_normalize(json_object_get_string(sub), c->sub) < 0)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token's sub claim is not a server UUID.");
	int scope = scope_has_transfer(payload);
	if (scope == 0)
		return refuse(WX_JWT_FORBIDDEN, why, size,
		    "The transfer token's scope does not include 'transfer'; it was issued for "
		    "something else.");
	if (scope < 0 && !pol->allow_unscoped)
		return refuse(WX_JWT_FORBIDDEN, why, size,
		    "The transfer token has no scope claim. Panels that send none (Pterodactyl "
		    "1.11) need system.transfers.allow_unscoped_tokens: true on this node.");
	c->scoped = scope > 0;
	return WX_JWT_OK;
}

enum wx_jwt_verdict
wx_transfer_jwt_check(const char *token, const char *key, int64_t now,
    const struct wx_jwt_policy *pol, struct wx_transfer_claims *claims, char *why, size_t size)
{
	memset(claims, 0, sizeof *claims);
	why[0] = '\0';
	size_t len = strlen(token);
	if (len > WX_JWT_MAX_LEN)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token is longer than %d bytes.", WX_JWT_MAX_LEN);
	const char *dot1 = strchr(token, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL || dot1 == token ||
	    dot2 == dot1 + 1)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token is not a JWT (expected three base64url parts separated by "
		    "dots).");
	json_object *header = decode_json_part(token, (size_t)(dot1 - token));
	if (header == NULL)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token's header is not base64url-encoded JSON.");
	enum wx_jwt_verdict v = check_header(header, why, size);
	json_object_put(header);
	if (v != WX_JWT_OK)
		return v;
	size_t siglen = 0;
	char *sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &siglen);
	bool sig_shaped = sig != NULL && siglen == SHA256_DIGEST_LENGTH;
	free(sig);
	if (!sig_shaped)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token's signature is missing or is not an HS256 signature.");

	/* The header says HS256: now libjwt may check the signature. */
	jwt_t *jwt = NULL;
	int rc = jwt_decode(&jwt, token, (const unsigned char *)key, (int)strlen(key));
	bool hs256 = rc == 0 && jwt_get_alg(jwt) == JWT_ALG_HS256;
	jwt_free(jwt);
	if (!hs256)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token's signature does not verify: it was not signed with this "
		    "node's token (check that the panel has this node's current token).");

	json_object *payload = decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (payload == NULL)
		return refuse(WX_JWT_UNAUTHORIZED, why, size,
		    "The transfer token's payload is not a base64url-encoded JSON object.");
	v = check_claims(payload, now, pol, claims, why, size);
	json_object_put(payload);
	if (v == WX_JWT_OK)
		wx_transfer_token_id(token, claims->id);
	return v;
}
