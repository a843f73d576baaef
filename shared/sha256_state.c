/*
 * SHA-256 with a state that can be kept (sha256_state.h).  OpenSSL 3 calls
 * the SHA256_* functions deprecated but keeps them; EVP offers no way to
 * export a running state.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "autoconf.h"

#include "sha256_state.h"
#include "util.h"

#include <string.h>

void
wx_sha256_init(struct wx_sha256 *h)
{
	SHA256_Init(&h->c);
}

void
wx_sha256_update(struct wx_sha256 *h, const void *p, size_t n)
{
	SHA256_Update(&h->c, p, n);
}

void
wx_sha256_digest(const struct wx_sha256 *h, unsigned char out[32])
{
	SHA256_CTX copy = h->c;
	SHA256_Final(out, &copy);
}

void
wx_sha256_state_hex(const struct wx_sha256 *h, char *out)
{
	wx_hex((const unsigned char *)&h->c, sizeof h->c, out);
}

int
wx_sha256_state_parse(struct wx_sha256 *h, const char *hex)
{
	if (hex == NULL || strlen(hex) != WX_SHA256_STATE_HEX - 1)
		return -1;
	unsigned char *p = (unsigned char *)&h->c;
	for (size_t i = 0; i < sizeof h->c; i++) {
		int hi = wx_hex_digit(hex[2 * i]), lo = wx_hex_digit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		p[i] = (unsigned char)(hi << 4 | lo);
	}
	if (h->c.md_len != SHA256_DIGEST_LENGTH || h->c.num >= SHA256_CBLOCK)
		return -1;
	return 0;
}
