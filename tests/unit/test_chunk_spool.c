/*
 * chunk_spool.c: the two slots hold the body back to back; a slot is
 * reused only when all it holds lies below the floor; production up to
 * floor + cap always fits; reads and digests span both slots; the whole
 * digest covers everything produced; restart and skip make the body again
 * up to an offset, or from a mark (the SHA-256 state at an offset) on;
 * prefix digests at a slot's edges and inside it, with and without the
 * slots' own digests; a reader's failure is kept and said.
 */
#include "autoconf.h"

#include "chunk_spool.h"
#include "tap.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A body of `total` bytes, byte i = pattern(i); fails at `fail_at` (-1: never). */
struct fake {
	int64_t pos, total, fail_at;
	int reads;
};

static unsigned char
pattern(int64_t i)
{
	return (unsigned char)((i * 7 + i / 251) & 0xff);
}

static ssize_t
fake_read(void *ctx, void *buf, size_t n)
{
	struct fake *f = ctx;
	f->reads++;
	if (f->fail_at >= 0 && f->pos >= f->fail_at)
		return -1;
	if ((int64_t)n > f->total - f->pos)
		n = (size_t)(f->total - f->pos);
	if (f->fail_at >= 0 && (int64_t)n > f->fail_at - f->pos)
		n = (size_t)(f->fail_at - f->pos);
	unsigned char *p = buf;
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(f->pos + (int64_t)i);
	f->pos += (int64_t)n;
	return (ssize_t)n;
}

static const char *
fake_error(void *ctx)
{
	(void)ctx;
	return "the fake body broke";
}

/* Whether the spool's bytes [off, off + n) are the pattern. */
static int
holds(struct chunk_spool *s, int64_t off, size_t n)
{
	unsigned char *buf = malloc(n);
	int good = buf != NULL && chunk_spool_read(s, buf, n, off) == 0;
	for (size_t i = 0; good && i < n; i++)
		good = buf[i] == pattern(off + (int64_t)i);
	free(buf);
	return good;
}

static void
pattern_sha256(int64_t off, int64_t len, unsigned char md[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int dl = 0;
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	for (int64_t i = 0; i < len; i++) {
		unsigned char b = pattern(off + i);
		EVP_DigestUpdate(c, &b, 1);
	}
	EVP_DigestFinal_ex(c, md, &dl);
	EVP_MD_CTX_free(c);
}

static int
range_is(struct chunk_spool *s, int64_t off, int64_t len)
{
	unsigned char got[32], want[32];
	if (chunk_spool_range_sha256(s, off, len, got) < 0)
		return 0;
	pattern_sha256(off, len, want);
	return memcmp(got, want, 32) == 0;
}

/* Whether chunk_spool_prefix_sha256 at end is the SHA-256 of [0, end). */
static int
prefix_is(struct chunk_spool *s, int64_t end)
{
	unsigned char got[32], want[32];
	if (chunk_spool_prefix_sha256(s, end, got) < 0)
		return 0;
	pattern_sha256(0, end, want);
	return memcmp(got, want, 32) == 0;
}

static int
whole_is(struct chunk_spool *s)
{
	unsigned char got[32], want[32];
	if (chunk_spool_whole_sha256(s, got) < 0)
		return 0;
	pattern_sha256(0, s->produced, want);
	return memcmp(got, want, 32) == 0;
}

/* What the reached hook saw last at offset 3000. */
struct seen {
	int64_t at;
	struct wx_sha256 state;
};
static struct seen seen;

static void
remember(void *ctx, int64_t produced, const struct wx_sha256 *whole)
{
	struct seen *w = ctx;
	if (produced == 3000) {
		w->at = produced;
		w->state = *whole;
	}
}

int
main(void)
{
	char dir[] = "/tmp/test_chunk_spool.XXXXXX", why[512] = "";
	if (mkdtemp(dir) == NULL)
		return 99;
	char *hint = NULL;
	if (asprintf(&hint, "%s/x.spool", dir) < 0)
		return 99;
	struct fake f = { 0, 2500, -1, 0 };
	struct chunk_spool s;
	const int64_t cap = 1000;

	ok(chunk_spool_open(&s, dir, hint, fake_read, fake_error, &f, why, sizeof why) == 0,
	    "the spool opens: %s", why);

	/* The first chunk, nothing in flight. */
	ok(chunk_spool_fill(&s, 1000, 0, cap) == 0, "fill to 1000");
	is_int(s.produced, 1000, "one chunk made");
	is_int(chunk_spool_start(&s), 0, "the spool starts at 0");
	ok(holds(&s, 0, 1000), "the first chunk's bytes are kept");

	/* [0, 1000) on the wire: the next chunk fills the other slot, then stops. */
	int steps = 0, r;
	while ((r = chunk_spool_step(&s, 0, cap)) == 1 && steps < 100)
		steps++;
	is_int(r, 0, "with both slots holding bytes at or above the floor, nothing more is made");
	is_int(s.produced, 2000, "the next chunk was made beside the one in flight");
	ok(holds(&s, 500, 1000), "a read across the two slots");
	ok(range_is(&s, 500, 1000), "a digest across the two slots");
	ok(range_is(&s, 0, 1000) && range_is(&s, 1000, 1000),
	    "the digest of each slot's chunk (kept while it was made)");
	ok(range_is(&s, 0, 999) && range_is(&s, 1001, 999), "and of ranges a byte off them");
	ok(whole_is(&s), "the whole digest covers [0, produced)");
	unsigned char byte;
	ok(chunk_spool_read(&s, &byte, 1, 2000) < 0, "a read past what was made fails");

	/* The floor moves to 1000: the first slot is reused, the spool starts at 1000. */
	ok(chunk_spool_fill(&s, 2000 + cap, 1000, cap) == 0, "fill to 3000 past the end");
	ok(s.eof, "the body ended");
	is_int(s.produced, 2500, "all of the body made");
	is_int(chunk_spool_start(&s), 1000, "the spool now starts at 1000");
	ok(chunk_spool_read(&s, &byte, 1, 999) < 0, "bytes below the start are gone");
	ok(holds(&s, 1000, 1500), "the rest of the body is kept");
	ok(range_is(&s, 2000, 500) && range_is(&s, 1000, 1000),
	    "a reused slot's digest is of its new bytes only");
	ok(whole_is(&s), "the whole digest covers the whole body");
	ok(prefix_is(&s, 1000) && prefix_is(&s, 2000) && prefix_is(&s, 2500),
	    "prefix digests at the slots' edges (kept as they were made)");
	ok(prefix_is(&s, 1001) && prefix_is(&s, 1999) && prefix_is(&s, 2001),
	    "and inside a slot (read back)");
	unsigned char md[32];
	ok(chunk_spool_prefix_sha256(&s, 999, md) < 0 && chunk_spool_prefix_sha256(&s, 2501, md) < 0,
	    "a prefix ending below the slots or past what was made fails");
	is_int(chunk_spool_step(&s, 2500, cap), 0, "at the end nothing more is made");

	/* Without the slots' own digests (a destination that takes prefix digests). */
	struct fake p = { 0, 2500, -1, 0 };
	chunk_spool_restart(&s, &p);
	s.slot_digests = false;
	ok(chunk_spool_fill(&s, 1000, 0, cap) == 0 && chunk_spool_fill(&s, 2000, 0, cap) == 0 &&
	    chunk_spool_fill(&s, 3000, 1000, cap) == 0 && s.eof, "made again without slot digests");
	ok(prefix_is(&s, 1000) && prefix_is(&s, 2000) && prefix_is(&s, 2500) && prefix_is(&s, 1500),
	    "prefix digests are right");
	ok(range_is(&s, 1000, 1000) && range_is(&s, 2000, 500),
	    "a chunk's own digest is read back and right");
	s.slot_digests = true;

	/* A smaller cap later (a 413 halved the chunk): fill to floor + cap still fits. */
	struct fake g = { 0, 100000, -1, 0 };
	chunk_spool_restart(&s, &g);
	ok(s.produced == 0 && chunk_spool_start(&s) == 0 && !s.eof && !s.failed,
	    "restart with a new reader: nothing made, the slots empty");
	ok(chunk_spool_fill(&s, 1000, 0, 1000) == 0 && chunk_spool_fill(&s, 2000, 0, 1000) == 0,
	    "two chunks of 1000 made");
	int fits = 1;
	for (int64_t floor = 1000; floor < 90000 && fits; floor += 300)
		fits = chunk_spool_fill(&s, floor + 400, floor, 400) == 0 &&
		    s.produced >= floor + 400 && holds(&s, floor, 400);
	ok(fits, "with a cap of 400, every fill to floor + cap fits and holds its bytes");

	/* Made again up to an offset: nothing kept below it, the digest of the prefix. */
	struct fake h = { 0, 5000, -1, 0 };
	chunk_spool_restart(&s, &h);
	ok(chunk_spool_skip(&s, 1234) == 0, "skip to 1234");
	is_int(chunk_spool_start(&s), 1234, "the spool starts at the offset skipped to");
	ok(whole_is(&s), "the whole digest is the prefix's");
	ok(chunk_spool_fill(&s, 1234 + cap, 1234, cap) == 0 && holds(&s, 1234, 1000),
	    "the chunk after the offset is made and kept");
	ok(range_is(&s, 1234, 1000), "its digest leaves out what was skipped");
	ok(prefix_is(&s, 1234) && prefix_is(&s, 2234) && prefix_is(&s, 1500),
	    "prefix digests after a skip cover what was skipped");
	struct fake k = { 0, 100, -1, 0 };
	chunk_spool_restart(&s, &k);
	ok(chunk_spool_skip(&s, 200) < 0 &&
	    s.eof && !s.failed, "skipping past a shorter body fails at its end");

	/* Taken up at a mark: the state the hook saw at 3000, a reader from 3000 on. */
	struct fake m = { 0, 9000, -1, 0 };
	chunk_spool_restart(&s, &m);
	s.reached = remember;
	s.reached_ctx = &seen;
	ok(chunk_spool_fill(&s, 3000, 0, 3000) == 0 && seen.at == 3000, "the hook saw offset 3000");
	unsigned char straight[32];
	ok(chunk_spool_fill(&s, 9001, 3000, 6000) == 0 && s.eof &&
	    chunk_spool_whole_sha256(&s, straight) == 0, "the whole body made straight");
	s.reached = NULL;
	struct fake m2 = { 3000, 9000, -1, 0 };
	chunk_spool_restart_at(&s, &m2, 3000, &seen.state);
	is_int(chunk_spool_start(&s), 3000, "taken up at 3000: the slots start there");
	unsigned char again[32];
	ok(chunk_spool_fill(&s, 9001, 3000, 6000) == 0 && s.eof && holds(&s, 3000, 6000) &&
	    chunk_spool_whole_sha256(&s, again) == 0 && memcmp(again, straight, 32) == 0,
	    "the rest made from the mark: the same bytes, the same whole digest");
	ok(range_is(&s, 3000, 6000), "the digest of the chunk made from the mark");
	ok(prefix_is(&s, 3000) && prefix_is(&s, 9000) && prefix_is(&s, 4567),
	    "prefix digests from the mark's state on");
	char hex[WX_SHA256_STATE_HEX];
	struct wx_sha256 back;
	wx_sha256_state_hex(&seen.state, hex);
	ok(wx_sha256_state_parse(&back, hex) == 0 &&
	    memcmp(&back, &seen.state, sizeof back) == 0, "a state survives hex and back");
	hex[3] = 'x';
	ok(wx_sha256_state_parse(&back, hex) < 0, "a state that is not hex is refused");
	ok(wx_sha256_state_parse(&back, "00") < 0, "so is a short one");

	/* A reader's failure is kept: no further reads, the reason said. */
	struct fake b = { 0, 5000, 1500, 0 };
	chunk_spool_restart(&s, &b);
	ok(chunk_spool_fill(&s, 1000, 0, cap) == 0, "the first chunk is made");
	while ((r = chunk_spool_step(&s, 0, cap)) == 1)
		;
	is_int(r, -1, "the step that meets the failure fails");
	ok(s.failed, "the failure is kept");
	is_str(s.why, "the fake body broke", "and its reason");
	int reads = b.reads;
	is_int(chunk_spool_step(&s, 1000, cap), -1, "a later step fails too");
	is_int(chunk_spool_fill(&s, 3000, 1000, cap), -1, "so does a fill");
	is_int(b.reads, reads, "without asking the reader again");
	ok(holds(&s, 0, 1500), "what was made before the failure is still kept");

	chunk_spool_close(&s);
	ok(s.slot[0].fd == -1 && s.slot[1].fd == -1 && s.io == NULL,
	    "closing gives everything back");
	chunk_spool_close(&s);
	ok(rmdir(dir) == 0, "the spool left no file in its directory");
	free(hint);
	return tap_done();
}
