/*
 * SHA-256 whose running state can be kept and taken up again: a transfer
 * record holds it (as hex), so a new process goes on hashing a body from
 * where an earlier one stood without reading what came before.  The state
 * is OpenSSL's SHA256_CTX, valid only on the node (and build) that wrote it.
 */
#ifndef WX_SHA256_STATE_H
#define WX_SHA256_STATE_H

#include <openssl/sha.h>
#include <stddef.h>

struct wx_sha256 {
	SHA256_CTX c;
};

/* Hex digits of a state, and the terminating NUL. */
#define WX_SHA256_STATE_HEX (2 * sizeof(SHA256_CTX) + 1)

void wx_sha256_init(struct wx_sha256 *h);
void wx_sha256_update(struct wx_sha256 *h, const void *p, size_t n);
/* The digest of what was added so far; h goes on unchanged. */
void wx_sha256_digest(const struct wx_sha256 *h, unsigned char out[32]);
/* The state as hex (WX_SHA256_STATE_HEX bytes), and back: 0, or -1 when hex is not one. */
void wx_sha256_state_hex(const struct wx_sha256 *h, char *out);
int wx_sha256_state_parse(struct wx_sha256 *h, const char *hex);

#endif
