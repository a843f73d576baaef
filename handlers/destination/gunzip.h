/*
 * A gzip decoder between the archive part and libarchive, for what
 * libarchive's own gzip filter does not check (libarchive 3.6, in
 * consume_trailer(): "XXX TODO: Verify the length and CRC"): each member's
 * CRC-32 and length, so a damaged gzip stream is refused instead of
 * installed.  Members are read one after the other as gzip(1) does; after
 * the last one only zero bytes (block padding) may follow.
 *
 * Input that does not start with the gzip magic byte (0x1f) passes through
 * unchanged: libarchive then reads it (zstd, xz, bzip2, lz4, plain tar).
 *
 * The decoder pulls compressed bytes from pull(ctx, &buf): > 0 bytes at
 * *buf (valid until the next pull), 0 at the end, -1 when the input failed
 * (the caller has recorded why).  Memory: one RX_GUNZIP_OUT buffer plus
 * zlib's window.
 */
#ifndef WX_DESTINATION_GUNZIP_H
#define WX_DESTINATION_GUNZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zlib.h>

#define RX_GUNZIP_OUT (128 * 1024)

typedef ssize_t (*rx_pull_fn)(void *ctx, const void **buf);

struct rx_gunzip {
	rx_pull_fn pull;
	void *ctx;
	enum { RX_GZ_UNDECIDED, RX_GZ_PASS, RX_GZ_INFLATE } mode;
	z_stream zs;
	bool zs_ready;          /* inflateInit2 succeeded */
	bool in_member;         /* a member began and has not ended */
	bool padding;           /* zero bytes were skipped after a member */
	bool eof;               /* pull returned 0 */
	const unsigned char *in;
	size_t inlen;           /* pulled bytes not yet decoded or handed out */
	unsigned char *out;
	uint64_t members;       /* members completed with a good CRC and length */
	char error[160];        /* what was wrong with the gzip data; "" if nothing */
};

/* Sets up g (nothing allocated until the first read). */
void rx_gunzip_init(struct rx_gunzip *g, rx_pull_fn pull, void *ctx);

/*
 * The next decoded bytes: > 0 with *buf pointing at them (valid until the
 * next call), 0 at the end of a well-formed input, -1 on error: g->error
 * says what was wrong with the gzip data, or is "" when pull failed.
 */
ssize_t rx_gunzip_read(struct rx_gunzip *g, const void **buf);

/* Frees what g holds; g may be read no more. */
void rx_gunzip_free(struct rx_gunzip *g);

#endif
