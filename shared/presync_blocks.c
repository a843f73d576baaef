#include "autoconf.h"

#include "presync_blocks.h"

#include "util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define B ((int64_t)WX_PS_BLOCK_SIZE)

void
wx_ps_blocks_free(struct wx_ps_blocks *b)
{
	if (b == NULL)
		return;
	free(b->hash);
	free(b->valid);
	free(b);
}

void
wx_ps_plan_free(struct wx_ps_plan *p)
{
	free(p->ranges);
	wx_ps_blocks_free(p->blocks);
	memset(p, 0, sizeof *p);
}

int64_t
wx_ps_plan_bytes(const struct wx_ps_plan *p)
{
	int64_t sum = 0;
	for (size_t i = 0; i < p->nranges; i++)
		sum += p->ranges[i].len;
	return sum;
}

/* Reads up to n bytes at off; the count (short only at EOF), or -1. */
static ssize_t
pread_full(int fd, unsigned char *buf, size_t n, int64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + (int64_t)got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int
sha256(EVP_MD_CTX *ctx, const unsigned char *buf, size_t n, unsigned char *out)
{
	unsigned int len;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, buf, n) != 1 || EVP_DigestFinal_ex(ctx, out, &len) != 1)
		return -1;
	return 0;
}

int
wx_ps_fhash_init(struct wx_ps_fhash *h)
{
	h->outer = EVP_MD_CTX_new();
	h->blk = EVP_MD_CTX_new();
	h->fill = 0;
	h->ok = h->outer != NULL && h->blk != NULL &&
	    EVP_DigestInit_ex(h->outer, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestInit_ex(h->blk, EVP_sha256(), NULL) == 1;
	return h->ok ? 0 : -1;
}

/* The current block is complete (or the last, short one): into outer. */
static void
fhash_end_block(struct wx_ps_fhash *h)
{
	unsigned char md[WX_PS_SHA_LEN];
	unsigned int len;
	if (h->ok && (EVP_DigestFinal_ex(h->blk, md, &len) != 1 ||
	    EVP_DigestUpdate(h->outer, md, sizeof md) != 1 ||
	    EVP_DigestInit_ex(h->blk, EVP_sha256(), NULL) != 1))
		h->ok = false;
	h->fill = 0;
}

void
wx_ps_fhash_update(struct wx_ps_fhash *h, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n > 0 && h->ok) {
		size_t k = (size_t)B - h->fill;
		if (k > n)
			k = n;
		if (EVP_DigestUpdate(h->blk, b, k) != 1)
			h->ok = false;
		h->fill += k;
		b += k;
		n -= k;
		if (h->fill == (size_t)B)
			fhash_end_block(h);
	}
}

void
wx_ps_fhash_block(struct wx_ps_fhash *h, const unsigned char sha[WX_PS_SHA_LEN])
{
	if (h->ok && (h->fill != 0 || EVP_DigestUpdate(h->outer, sha, WX_PS_SHA_LEN) != 1))
		h->ok = false;
}

int
wx_ps_fhash_final(struct wx_ps_fhash *h, unsigned char out[WX_PS_SHA_LEN])
{
	if (h->fill > 0)
		fhash_end_block(h);
	unsigned int len;
	if (h->ok && EVP_DigestFinal_ex(h->outer, out, &len) != 1)
		h->ok = false;
	bool ok = h->ok;
	wx_ps_fhash_free(h);
	return ok ? 0 : -1;
}

void
wx_ps_fhash_free(struct wx_ps_fhash *h)
{
	EVP_MD_CTX_free(h->outer);
	EVP_MD_CTX_free(h->blk);
	h->outer = h->blk = NULL;
	h->ok = false;
}

static void
add_range(struct wx_ps_plan *p, size_t *cap, int64_t off, int64_t len)
{
	if (len <= 0)
		return;
	if (p->nranges > 0) {
		struct wx_ps_range *last = &p->ranges[p->nranges - 1];
		if (last->off + last->len == off) {
			last->len += len;
			return;
		}
	}
	if (p->nranges == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		p->ranges = xrealloc(p->ranges, *cap * sizeof *p->ranges);
	}
	p->ranges[p->nranges++] = (struct wx_ps_range){ off, len };
}

static int64_t
block_len(int64_t size, size_t i)
{
	int64_t left = size - (int64_t)i * B;
	return left < B ? left : B;
}

int
wx_ps_plan_file(int fd, const struct wx_ps_blocks *old_blocks,
    const unsigned char *old_sha, int64_t old_size, struct wx_ps_plan *plan,
    char *err, size_t errsize)
{
	memset(plan, 0, sizeof *plan);
	unsigned char *buf = xmalloc((size_t)B);
	EVP_MD_CTX *blk = EVP_MD_CTX_new();
	struct wx_ps_fhash whole;
	size_t nblocks = 0, cap = 0, bcap = 0;
	unsigned char (*hash)[WX_PS_SHA_LEN] = NULL;
	/* prefix: the new bytes [k*B, old_size) of the old last, partial block k */
	bool prefix_same = true;
	int rc = -1;
	if (wx_ps_fhash_init(&whole) < 0 || blk == NULL) {
		snprintf(err, errsize, "SHA-256 unavailable");
		goto out;
	}
	for (;;) {
		ssize_t n = pread_full(fd, buf, (size_t)B, plan->size);
		if (n < 0) {
			snprintf(err, errsize, "read: %s", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (nblocks == bcap) {
			bcap = bcap ? bcap * 2 : 64;
			hash = xrealloc(hash, bcap * sizeof *hash);
		}
		if (sha256(blk, buf, (size_t)n, hash[nblocks]) < 0)
			goto hash_fail;
		wx_ps_fhash_block(&whole, hash[nblocks]);
		if (old_blocks && old_size % B != 0 && (int64_t)nblocks == old_size / B &&
		    n >= old_size % B && (size_t)nblocks < old_blocks->n) {
			unsigned char h[WX_PS_SHA_LEN];
			if (sha256(blk, buf, (size_t)(old_size % B), h) < 0)
				goto hash_fail;
			prefix_same = old_blocks->valid[nblocks] &&
			    memcmp(h, old_blocks->hash[nblocks], WX_PS_SHA_LEN) == 0;
		}
		nblocks++;
		plan->size += n;
		if (n < B)
			break;
	}
	if (wx_ps_fhash_final(&whole, plan->sha) < 0)
		goto hash_fail;
	if (plan->size >= WX_PS_BLOCKS_MIN) {
		plan->blocks = xcalloc(1, sizeof *plan->blocks);
		plan->blocks->size = plan->size;
		plan->blocks->n = nblocks;
		plan->blocks->hash = hash;
		hash = NULL;
		plan->blocks->valid = xmalloc(nblocks ? nblocks : 1);
		memset(plan->blocks->valid, 1, nblocks);
	}
	if (old_sha && old_size == plan->size && memcmp(old_sha, plan->sha, WX_PS_SHA_LEN) == 0) {
		plan->same = true;
		rc = 0;
		goto out;
	}
	bool have_base = old_blocks && old_blocks->size == old_size && plan->blocks;
	if (!have_base) {
		add_range(plan, &cap, 0, plan->size);
		rc = 0;
		goto out;
	}
	const struct wx_ps_blocks *nb = plan->blocks;
	bool old_full_same = true;
	for (size_t i = 0; i < (size_t)(old_size / B); i++)
		if (i >= nb->n || !old_blocks->valid[i] ||
		    memcmp(old_blocks->hash[i], nb->hash[i], WX_PS_SHA_LEN) != 0)
			old_full_same = false;
	if (plan->size > old_size && old_full_same && prefix_same) {
		plan->append = true;
		add_range(plan, &cap, old_size, plan->size - old_size);
		rc = 0;
		goto out;
	}
	for (size_t i = 0; i < nb->n; i++) {
		bool same = i < old_blocks->n && old_blocks->valid[i] &&
		    block_len(old_size, i) == block_len(plan->size, i) &&
		    memcmp(old_blocks->hash[i], nb->hash[i], WX_PS_SHA_LEN) == 0;
		if (!same)
			add_range(plan, &cap, (int64_t)i * B, block_len(plan->size, i));
	}
	/* All blocks equal and the size too, yet no old SHA to say so. */
	plan->same = plan->nranges == 0 && plan->size == old_size;
	rc = 0;
	goto out;
hash_fail:
	snprintf(err, errsize, "SHA-256 failed");
out:
	if (rc < 0)
		wx_ps_plan_free(plan);
	free(hash);
	free(buf);
	wx_ps_fhash_free(&whole);
	EVP_MD_CTX_free(blk);
	return rc;
}

int
wx_ps_plan_whole(int fd, struct wx_ps_plan *plan, char *err, size_t errsize)
{
	memset(plan, 0, sizeof *plan);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(err, errsize, "stat: %s", strerror(errno));
		return -1;
	}
	size_t cap = 0;
	plan->unhashed = true;
	plan->size = (int64_t)st.st_size;
	add_range(plan, &cap, 0, plan->size);
	return 0;
}

/* The block list an unhashed plan's send fills in: n blocks, all valid. */
static struct wx_ps_blocks *
new_blocks(int64_t size)
{
	struct wx_ps_blocks *b = xcalloc(1, sizeof *b);
	b->size = size;
	b->n = (size_t)((size + B - 1) / B);
	b->hash = xmalloc((b->n ? b->n : 1) * sizeof *b->hash);
	b->valid = xmalloc(b->n ? b->n : 1);
	memset(b->valid, 1, b->n);
	return b;
}

/*
 * Reads want bytes at off into buf for a send; bytes the file no longer
 * has are zeros (and *stable becomes false).  0, or -1 with err filled.
 */
static int
read_padded(int fd, unsigned char *buf, int64_t want, int64_t off, bool *stable, char *err,
    size_t errsize)
{
	ssize_t n = pread_full(fd, buf, (size_t)want, off);
	if (n < 0) {
		snprintf(err, errsize, "read: %s", strerror(errno));
		return -1;
	}
	if (n < want) {
		memset(buf + n, 0, (size_t)(want - n));
		*stable = false;
	}
	return 0;
}

/* Blocks read at once by a send without a plan (the whole file, in order). */
#define WHOLE_READ_BLOCKS 16

/*
 * wx_ps_send_file for an unhashed plan: the file from 0 to plan->size in
 * reads of WHOLE_READ_BLOCKS blocks, each passed on at once, every block
 * hashed for the block list and the file hash.
 */
static int
send_whole(int fd, struct wx_ps_plan *plan, wx_ps_emit_fn emit, void *ctx, bool *stable,
    char *err, size_t errsize)
{
	size_t cap = (size_t)B * WHOLE_READ_BLOCKS;
	unsigned char *buf = xmalloc(cap);
	EVP_MD_CTX *blk = EVP_MD_CTX_new();
	struct wx_ps_fhash whole;
	int rc = -1;
	if (wx_ps_fhash_init(&whole) < 0 || blk == NULL) {
		snprintf(err, errsize, "SHA-256 unavailable");
		goto out;
	}
	if (plan->blocks == NULL && plan->size >= WX_PS_BLOCKS_MIN)
		plan->blocks = new_blocks(plan->size);
	for (int64_t at = 0; at < plan->size;) {
		int64_t want = plan->size - at < (int64_t)cap ? plan->size - at : (int64_t)cap;
		if (read_padded(fd, buf, want, at, stable, err, errsize) < 0)
			goto out;
		if (emit(ctx, buf, (size_t)want) < 0) {
			snprintf(err, errsize, "could not pass the data on");
			goto out;
		}
		for (int64_t o = 0; o < want; o += B) {
			size_t i = (size_t)((at + o) / B);
			unsigned char h[WX_PS_SHA_LEN];
			if (sha256(blk, buf + o, (size_t)block_len(plan->size, i), h) < 0)
				goto hash_fail;
			wx_ps_fhash_block(&whole, h);
			if (plan->blocks)
				memcpy(plan->blocks->hash[i], h, WX_PS_SHA_LEN);
		}
		at += want;
	}
	if (wx_ps_fhash_final(&whole, plan->sha) < 0)
		goto hash_fail;
	plan->unhashed = false;
	rc = 0;
	goto out;
hash_fail:
	snprintf(err, errsize, "SHA-256 failed");
out:
	free(buf);
	wx_ps_fhash_free(&whole);
	EVP_MD_CTX_free(blk);
	return rc;
}

int
wx_ps_send_file(int fd, struct wx_ps_plan *plan, wx_ps_emit_fn emit, void *ctx,
    bool *stable, char *err, size_t errsize)
{
	if (plan->unhashed) {
		*stable = true;
		return send_whole(fd, plan, emit, ctx, stable, err, errsize);
	}
	*stable = true;
	unsigned char *buf = xmalloc((size_t)B);
	EVP_MD_CTX *blk = EVP_MD_CTX_new();
	/* Without blocks (a small file, sent whole): the file hash of what is
	 * sent, checked against the plan's. */
	struct wx_ps_fhash whole;
	int rc = -1;
	if (wx_ps_fhash_init(&whole) < 0 || blk == NULL) {
		snprintf(err, errsize, "SHA-256 unavailable");
		goto out;
	}
	for (size_t r = 0; r < plan->nranges; r++) {
		int64_t off = plan->ranges[r].off, end = off + plan->ranges[r].len;
		for (int64_t bstart = off - off % B; bstart < end; bstart += B) {
			size_t i = (size_t)(bstart / B);
			int64_t want = block_len(plan->size, i);
			if (read_padded(fd, buf, want, bstart, stable, err, errsize) < 0)
				goto out;
			int64_t from = off > bstart ? off : bstart;
			int64_t to = end < bstart + want ? end : bstart + want;
			if (emit(ctx, buf + (from - bstart), (size_t)(to - from)) < 0) {
				snprintf(err, errsize, "could not pass the data on");
				goto out;
			}
			unsigned char h[WX_PS_SHA_LEN];
			if (sha256(blk, buf, (size_t)want, h) < 0)
				goto hash_fail;
			if (plan->blocks == NULL)
				wx_ps_fhash_block(&whole, h);   /* the ranges cover the file */
			else if (memcmp(h, plan->blocks->hash[i], WX_PS_SHA_LEN) != 0) {
				plan->blocks->valid[i] = 0;
				*stable = false;
			}
		}
	}
	if (plan->blocks == NULL) {
		unsigned char h[WX_PS_SHA_LEN];
		if (wx_ps_fhash_final(&whole, h) < 0)
			goto hash_fail;
		if (memcmp(h, plan->sha, WX_PS_SHA_LEN) != 0)
			*stable = false;
	}
	rc = 0;
	goto out;
hash_fail:
	snprintf(err, errsize, "SHA-256 failed");
out:
	free(buf);
	wx_ps_fhash_free(&whole);
	EVP_MD_CTX_free(blk);
	return rc;
}
