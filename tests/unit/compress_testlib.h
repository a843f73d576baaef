/*
 * Helpers shared by the compressor unit tests: deterministic inputs, a
 * collecting sink that can be told to fail, and decoders (zlib, libzstd,
 * libarchive) that the outputs are checked against.  Header-only; every
 * function is static.
 */
#ifndef WX_COMPRESS_TESTLIB_H
#define WX_COMPRESS_TESTLIB_H

#include <archive.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "util.h"

/* Growable byte buffer. */
struct tbuf {
	unsigned char *p;
	size_t len, cap;
};

static void __attribute__((unused))
tbuf_add(struct tbuf *b, const void *data, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void __attribute__((unused))
tbuf_free(struct tbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* Sink collecting output; fails on call number fail_at (1-based, 0 = never). */
/* Threads of this process now (/proc/self/task), -1 when unreadable. */
static int __attribute__((unused))
tthreads(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

struct tsink {
	struct tbuf out;
	int calls;
	int fail_at;
};

static int __attribute__((unused))
tsink_write(void *ctx, const void *buf, size_t len)
{
	struct tsink *s = ctx;
	s->calls++;
	if (s->fail_at && s->calls >= s->fail_at)
		return -1;
	if (len == 0)
		return -1;	/* the contract promises len > 0 */
	tbuf_add(&s->out, buf, len);
	return 0;
}

static uint64_t
t_xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* n incompressible bytes from seed. */
static unsigned char * __attribute__((unused))
t_random(size_t n, uint64_t seed)
{
	unsigned char *p = xmalloc(n ? n : 1);
	uint64_t s = seed | 1;
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(t_xorshift(&s) >> 56);
	return p;
}

/* n bytes of text-like data (words from a small vocabulary) from seed. */
static unsigned char * __attribute__((unused))
t_text(size_t n, uint64_t seed)
{
	static const char *words[] = { "server", "world", "player", "chunk", "region",
		"level", "config", "true", "false", "spawn", "0.25", "1024", "minecraft:stone",
		"\n", "=", " ", "{", "}", "entity", "block", "items", "name", "\"", "x", "y", "z" };
	unsigned char *p = xmalloc(n ? n : 1);
	uint64_t s = seed | 1;
	size_t i = 0;
	while (i < n) {
		const char *w = words[t_xorshift(&s) % (sizeof words / sizeof words[0])];
		for (size_t k = 0; w[k] && i < n; k++)
			p[i++] = (unsigned char)w[k];
	}
	return p;
}

/*
 * Inflates gzip data member after member (as gzip -dc does) into out.
 * Returns the number of members, or -1 if the data is not a valid sequence
 * of complete gzip members (zlib checks each CRC-32 and ISIZE).
 */
static int __attribute__((unused))
t_gunzip(const unsigned char *in, size_t inlen, struct tbuf *out)
{
	z_stream zs;
	memset(&zs, 0, sizeof zs);
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		return -1;
	int members = 0;
	unsigned char buf[65536];
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)inlen;
	for (;;) {
		zs.next_out = buf;
		zs.avail_out = sizeof buf;
		int ret = inflate(&zs, Z_NO_FLUSH);
		tbuf_add(out, buf, sizeof buf - zs.avail_out);
		if (ret == Z_STREAM_END) {
			members++;
			if (zs.avail_in == 0)
				break;
			if (inflateReset(&zs) != Z_OK) {
				members = -1;
				break;
			}
			continue;
		}
		if (ret != Z_OK || (zs.avail_in == 0 && zs.avail_out != 0)) {
			members = -1;	/* corrupt, or truncated */
			break;
		}
	}
	inflateEnd(&zs);
	return members;
}

/* Decodes one zstd stream with libzstd (checksums verified); 0 or -1. */
static int __attribute__((unused))
t_unzstd(const unsigned char *in, size_t inlen, struct tbuf *out)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer ib = { in, inlen, 0 };
	unsigned char buf[65536];
	size_t ret = 1;
	int rc = 0;
	while (ib.pos < ib.size || ret != 0) {
		ZSTD_outBuffer ob = { buf, sizeof buf, 0 };
		size_t before = ib.pos;
		ret = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(ret)) {
			rc = -1;
			break;
		}
		tbuf_add(out, buf, ob.pos);
		if (ob.pos == 0 && ib.pos == before && ret != 0) {
			rc = -1;	/* truncated */
			break;
		}
	}
	ZSTD_freeDCtx(d);
	return rc;
}

/*
 * Reads compressed data with libarchive (all filters, raw format), as a
 * wingxfer destination would; 0 or -1.
 */
static int __attribute__((unused))
t_libarchive(const unsigned char *in, size_t inlen, struct tbuf *out, const char **filter)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int rc = -1;
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_raw(a);
	if (archive_read_open_memory(a, in, inlen) != ARCHIVE_OK)
		goto out;
	if (archive_read_next_header(a, &e) != ARCHIVE_OK)
		goto out;
	if (filter)
		*filter = archive_filter_name(a, 0);
	unsigned char buf[65536];
	la_ssize_t n;
	while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
		tbuf_add(out, buf, (size_t)n);
	if (n == 0)
		rc = 0;
out:
	archive_read_free(a);
	return rc;
}

#endif
