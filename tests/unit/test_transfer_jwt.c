/*
 * Transfer-token checks: the Bearer header, the alg check before libjwt,
 * the HS256 signature, exp/nbf/sub/scope, each rejection with its own
 * status and message.
 */
#include "autoconf.h"

#include "tap.h"
#include "transfer_jwt.h"
#include "util.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#define KEY "node-secret-token"
#define SUB "0B2A1C3D-1111-4222-8333-444455556666"
#define SUB_LC "0b2a1c3d-1111-4222-8333-444455556666"
#define NOW 1800000000LL

static char *
b64url(const void *data, size_t n)
{
	static const char tbl[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = data;
	char *out = xmalloc(n * 4 / 3 + 4);
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		out[o++] = tbl[v >> 18 & 63];
		out[o++] = tbl[v >> 12 & 63];
		out[o++] = tbl[v >> 6 & 63];
		out[o++] = tbl[v & 63];
	}
	if (n - i == 1) {
		unsigned v = (unsigned)p[i] << 16;
		out[o++] = tbl[v >> 18 & 63];
		out[o++] = tbl[v >> 12 & 63];
	} else if (n - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		out[o++] = tbl[v >> 18 & 63];
		out[o++] = tbl[v >> 12 & 63];
		out[o++] = tbl[v >> 6 & 63];
	}
	out[o] = '\0';
	return out;
}

/* header.payload.HMAC-SHA256(key) over the given JSON texts. */
static char *
mint(const char *header, const char *payload, const char *key)
{
	char *h = b64url(header, strlen(header));
	char *p = b64url(payload, strlen(payload));
	char *signing = xasprintf("%s.%s", h, p);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)signing, strlen(signing),
	    mac, &maclen);
	char *s = b64url(mac, maclen);
	char *tok = xasprintf("%s.%s", signing, s);
	free(h);
	free(p);
	free(signing);
	free(s);
	return tok;
}

#define HS256 "{\"typ\":\"JWT\",\"alg\":\"HS256\"}"

static char *
payload(const char *extra)
{
	return xasprintf("{\"sub\":\"%s\",\"exp\":%lld,\"nbf\":%lld,\"iat\":%lld%s%s}", SUB,
	    NOW + 900, NOW - 300, NOW, *extra ? "," : "", extra);
}

static int
check(const char *tok, bool unscoped, struct wx_transfer_claims *c, char *why, size_t n)
{
	struct wx_jwt_policy pol = { .allow_unscoped = unscoped, .max_lifetime = 7200 };
	return (int)wx_transfer_jwt_check(tok, KEY, NOW, &pol, c, why, n);
}

/* Mints header/payload with KEY, checks it, expects status and a message piece. */
static void
expect(const char *header, const char *pl, bool unscoped, int status, const char *needle,
    const char *what)
{
	char *tok = mint(header, pl, KEY);
	struct wx_transfer_claims c;
	char why[512];
	int v = check(tok, unscoped, &c, why, sizeof why);
	is_int(v, status, "%s: status %d", what, status);
	if (needle)
		has_str(why, needle, "%s: message", what);
	free(tok);
}

static void
test_bearer(void)
{
	const char *why;
	ok(wx_transfer_bearer(NULL, &why) == NULL && strstr(why, "no Authorization header"),
	    "no header");
	ok(wx_transfer_bearer("", &why) == NULL && strstr(why, "no Authorization header"),
	    "an empty header");
	ok(wx_transfer_bearer("bearer abc", &why) == NULL && strstr(why, "case-sensitive"),
	    "the scheme is case-sensitive");
	ok(wx_transfer_bearer("Basic abc", &why) == NULL, "another scheme");
	ok(wx_transfer_bearer("Bearer ", &why) == NULL && strstr(why, "no token"),
	    "no token after Bearer");
	ok(wx_transfer_bearer("Bearer  abc", &why) == NULL && strstr(why, "whitespace"),
	    "two spaces");
	ok(wx_transfer_bearer("Bearer a b", &why) == NULL && strstr(why, "whitespace"),
	    "whitespace inside the token");
	const char *t = wx_transfer_bearer("Bearer a.b.c", &why);
	is_str(t, "a.b.c", "the token of a well-formed header");
}

static void
test_valid(void)
{
	char *pl = payload("\"scope\":\"transfer\",\"aud\":[\"https://x\"],\"jti\":\"j\"");
	char *tok = mint(HS256, pl, KEY);
	struct wx_transfer_claims c;
	char why[512];
	is_int(check(tok, false, &c, why, sizeof why), WX_JWT_OK, "a valid scoped token (%s)", why);
	is_str(c.sub, SUB_LC, "sub is normalised to lowercase");
	is_int(c.exp, NOW + 900, "exp is returned");
	ok(c.scoped, "the token is marked scoped");
	char id[65];
	wx_transfer_token_id(tok, id);
	is_str(c.id, id, "the single-use id is SHA-256 of the token");
	is_int(strlen(c.id), 64, "... 64 hex digits");
	free(tok);
	free(pl);

	pl = xasprintf("{\"sub\":\"{%s}\",\"exp\":%lld,\"scope\":\"websocket transfer\"}", SUB, NOW);
	tok = mint("{\"alg\":\"HS256\"}", pl, KEY);
	is_int(check(tok, false, &c, why, sizeof why), WX_JWT_OK,
	    "braced sub, exp == now, scope list containing transfer, no typ (%s)", why);
	is_str(c.sub, SUB_LC, "braced sub is normalised");
	free(tok);
	free(pl);

	pl = payload("\"scope\":[\"file-upload\",\"transfer\"]");
	expect(HS256, pl, false, WX_JWT_OK, NULL, "scope as an array containing transfer");
	free(pl);
	pl = xasprintf("{\"sub\":\"%s\",\"exp\":%lld,\"nbf\":%lld,\"scope\":\"transfer\"}", SUB,
	    NOW + 10, NOW + 60);
	expect(HS256, pl, false, WX_JWT_OK, NULL, "nbf 60 s ahead is within the leeway");
	free(pl);

	pl = payload("");
	tok = mint(HS256, pl, KEY);
	is_int(check(tok, true, &c, why, sizeof why), WX_JWT_OK,
	    "no scope is accepted with allow_unscoped_tokens (%s)", why);
	ok(!c.scoped, "... and marked unscoped");
	free(tok);
	free(pl);
}

static void
test_rejections(void)
{
	struct wx_transfer_claims c;
	char why[512];
	static const char *const shapes[] = { "abc", "a.b", "a.b.c.d", ".b.c", "a..c", "..", "" };
	for (size_t i = 0; i < WX_ARRAY_LEN(shapes); i++) {
		is_int(check(shapes[i], false, &c, why, sizeof why), 401, "'%s' is not a JWT: 401",
		    shapes[i]);
		has_str(why, "not a JWT", "'%s': says it is not a JWT", shapes[i]);
	}
	is_int(check("!!!.e30.AAAA", false, &c, why, sizeof why), 401, "a header that is not base64url");
	has_str(why, "header is not base64url-encoded JSON", "... says so");
	char *padded = xasprintf("%s=.e30.AAAA", "eyJhbGciOiJIUzI1NiJ9");
	is_int(check(padded, false, &c, why, sizeof why), 401, "a padded header is refused");
	free(padded);
	char *big = xmalloc(WX_JWT_MAX_LEN + 2);
	memset(big, 'a', WX_JWT_MAX_LEN + 1);
	big[WX_JWT_MAX_LEN + 1] = '\0';
	is_int(check(big, false, &c, why, sizeof why), 401, "an over-long token");
	has_str(why, "longer than 8192", "... says so");
	free(big);

	char *pl = payload("\"scope\":\"transfer\"");
	/* alg none, with an empty and with a fake signature */
	char *h = b64url("{\"alg\":\"none\"}", 14);
	char *p = b64url(pl, strlen(pl));
	char *none1 = xasprintf("%s.%s.", h, p);
	is_int(check(none1, false, &c, why, sizeof why), 401, "alg none, empty signature: 401");
	has_str(why, "unsigned (alg none)", "... says the token is unsigned");
	char *none2 = xasprintf("%s.%s.AAAA", h, p);
	is_int(check(none2, false, &c, why, sizeof why), 401, "alg none with a signature: 401");
	free(h);
	free(p);
	free(none1);
	free(none2);
	expect("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", pl, false, 401, "signed with RS256", "RS256");
	expect("{\"alg\":\"ES256\"}", pl, false, 401, "signed with ES256", "ES256");
	expect("{\"alg\":\"HS512\"}", pl, false, 401, "signed with HS512", "HS512");
	expect("{\"alg\":\"<script>\"}", pl, false, 401, "an unsupported algorithm",
	    "an unknown alg is not echoed");
	expect("{\"typ\":\"JWT\"}", pl, false, 401, "no signing algorithm", "no alg");
	expect("{\"alg\":256}", pl, false, 401, "no signing algorithm", "alg not a string");
	expect("[\"HS256\"]", pl, false, 401, "header is not base64url-encoded JSON",
	    "a header that is not an object");

	char *wrong = mint(HS256, pl, "another-node");
	is_int(check(wrong, false, &c, why, sizeof why), 401, "signed with another key: 401");
	has_str(why, "signature does not verify", "... says the signature does not verify");
	/* Tamper with the payload of a good token. */
	char *good = mint(HS256, pl, KEY);
	char *tampered = xstrdup(good);
	char *d1 = strchr(tampered, '.');
	d1[3] = d1[3] == 'A' ? 'B' : 'A';
	is_int(check(tampered, false, &c, why, sizeof why), 401, "a tampered payload: 401");
	char *shortsig = xstrdup(good);
	shortsig[strlen(shortsig) - 4] = '\0';
	is_int(check(shortsig, false, &c, why, sizeof why), 401, "a truncated signature: 401");
	has_str(why, "not an HS256 signature", "... says the signature is malformed");
	free(wrong);
	free(good);
	free(tampered);
	free(shortsig);
	free(pl);

	expect(HS256, "[1,2]", false, 401, "payload is not a base64url-encoded JSON object",
	    "a payload that is not an object");
	expect(HS256, "{\"sub\":\"" SUB "\",\"scope\":\"transfer\"}", false, 401, "no exp", "no exp");
	expect(HS256, "{\"sub\":\"" SUB "\",\"exp\":1800000900.5,\"scope\":\"transfer\"}", false,
	    401, "exp claim is not an integer", "a float exp");
	expect(HS256, "{\"sub\":\"" SUB "\",\"exp\":\"1800000900\",\"scope\":\"transfer\"}", false,
	    401, "exp claim is not an integer", "a string exp");
	expect(HS256, "{\"sub\":\"" SUB "\",\"exp\":null,\"scope\":\"transfer\"}", false, 401,
	    "no exp", "a null exp");
	expect(HS256, "{\"sub\":\"" SUB "\",\"exp\":1799999999,\"scope\":\"transfer\"}", false, 401,
	    "expired at 2027-01-15T07:59:59Z (1 s ago)", "an exp one second in the past");
	expect(HS256, "{\"sub\":\"" SUB "\",\"exp\":1800000900,\"nbf\":1800000061,"
	    "\"scope\":\"transfer\"}", false, 401, "not valid before", "nbf 61 s ahead");
	expect(HS256, "{\"sub\":\"" SUB "\",\"exp\":1800000900,\"nbf\":1.5,\"scope\":\"transfer\"}",
	    false, 401, "nbf claim is not an integer", "a float nbf");
	expect(HS256, "{\"exp\":1800000900,\"scope\":\"transfer\"}", false, 401, "no sub claim",
	    "no sub");
	expect(HS256, "{\"sub\":\"server-1\",\"exp\":1800000900,\"scope\":\"transfer\"}", false, 401,
	    "sub claim is not a server UUID", "a sub that is not a UUID");
	expect(HS256, "{\"sub\":42,\"exp\":1800000900,\"scope\":\"transfer\"}", false, 401,
	    "sub claim is not a server UUID", "a numeric sub");
	expect(HS256, "{\"sub\":\"" SUB "\",\"exp\":1800000900}", false, 403, "no scope claim",
	    "no scope without allow_unscoped_tokens: 403");
	expect(HS256, "{\"sub\":\"" SUB "\",\"exp\":1800000900,\"scope\":\"websocket\"}", true, 403,
	    "does not include 'transfer'", "a websocket token, even with allow_unscoped_tokens: 403");
	expect(HS256, "{\"sub\":\"" SUB "\",\"exp\":1800000900,\"scope\":\"transfers\"}", false, 403,
	    "does not include 'transfer'", "scope 'transfers' is not 'transfer'");
	expect(HS256, "{\"sub\":\"" SUB "\",\"exp\":1800000900,\"scope\":[\"file-upload\"]}", false,
	    403, "does not include 'transfer'", "an array scope without transfer");
	expect(HS256, "{\"sub\":\"" SUB "\",\"exp\":1800000900,\"scope\":7}", true, 403,
	    "does not include 'transfer'", "a scope that is not a string");
}

int
main(void)
{
	test_bearer();
	test_valid();
	test_rejections();
	return tap_done();
}
