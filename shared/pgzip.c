#include "autoconf.h"

#include "pgzip.h"
#include "incompressible.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libdeflate.h>
#include <zlib.h>

/* Deflate window: the dictionary carried from one block to the next. */
#define WINDOW ((size_t)32 * 1024)

/*
 * One block of the pipeline.  The caller fills in[] (dictionary then data)
 * and submits it; one worker compresses it into out[] and sets done; the
 * caller emits it and later reuses the slot.  done (and the hand-over of
 * everything else) is guarded by the stream mutex.
 */
struct slot {
	unsigned char *in;	/* WINDOW + block_size bytes: dict, then data */
	size_t dictlen;		/* dictionary bytes at the front of in */
	size_t inlen;		/* data bytes after the dictionary */
	bool last;		/* ends the deflate stream (Z_FINISH) */
	unsigned char *out;	/* raw deflate of the data */
	size_t outcap, outlen;
	uLong crc;		/* CRC-32 of the data */
	int zerr;		/* Z_OK, or the zlib error that stopped the block */
	bool done;
};

struct worker {
	struct wx_pgzip *z;
	z_stream strm;
	bool strm_ok;
	struct libdeflate_compressor *ld;	/* WX_PGZIP_LIBDEFLATE_MEMBERS */
	struct libdeflate_compressor *ld0;	/* level 0 (stored), for incompressible slices */
	pthread_t tid;
	bool running;
};

struct wx_pgzip {
	int level;
	size_t block_size;
	enum wx_pgzip_framing framing;
	wx_compress_sink sink;
	void *ctx;

	pthread_mutex_t mu;
	pthread_cond_t work_cv;	/* workers: a block was submitted, or shutdown */
	pthread_cond_t done_cv;	/* caller: a block is done */
	bool shutdown;		/* guarded by mu */
	uint64_t submitted;	/* blocks handed to workers; written under mu */
	uint64_t taken;		/* blocks taken by workers; guarded by mu */

	struct worker *workers;
	int nworkers;
	struct slot *slots;
	size_t nslots;

	/* Caller-thread state. */
	uint64_t emitted;	/* blocks passed to the sink */
	struct slot *filling;	/* block being filled, not yet submitted */
	bool header_sent, last_submitted, finished, failed;
	uLong crc;
	uint64_t total_in, total_out;
	char err[200];
};

static void set_error(struct wx_pgzip *z, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
set_error(struct wx_pgzip *z, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(z->err, sizeof z->err, fmt, ap);
	va_end(ap);
	z->failed = true;
}

/* Grows slot->out so at least need more bytes fit after outlen. */
static void
reserve_out(struct slot *s, size_t need)
{
	if (s->outcap - s->outlen >= need)
		return;
	/* Exactly what the first block needs (its deflateBound): a power-of-two
	 * rounding would leave 256 KiB blocks with 512 KiB output buffers. */
	size_t cap = s->outlen + need;
	if (s->outcap > 0 && cap < 2 * s->outcap)
		cap = 2 * s->outcap;
	s->out = xrealloc(s->out, cap);
	s->outcap = cap;
}

/*
 * Compresses one block into s->out as raw deflate.  Every block but the
 * stream's last ends byte-aligned and non-final (Z_SYNC_FLUSH) so the
 * outputs can be concatenated; member-per-block framing finishes each.
 * Sets s->zerr on a zlib error.
 */
/* Length of the run of slices from off on that wx_incompressible() judges as
 * *store: the first slice decides *store, the run ends at the first slice
 * judged otherwise. */
static size_t
slice_run(const unsigned char *data, size_t len, size_t off, bool *store)
{
	size_t end = off;
	for (bool first = true; end < len; first = false) {
		size_t n = len - end < WX_PGZIP_SLICE ? len - end : WX_PGZIP_SLICE;
		bool inc = wx_incompressible(data + end, n);
		if (first)
			*store = inc;
		else if (inc != *store)
			break;
		end += n;
	}
	return end - off;
}

/*
 * One block as complete gzip members (header, deflate, CRC-32, ISIZE), by
 * libdeflate: one member per run of WX_PGZIP_SLICE slices that look
 * incompressible (stored, by the level-0 compressor ld0) or not (deflated
 * at the stream's level by ld).  Without ld0 (level 0, or kept for
 * measurement), one deflated member.
 */
static void
compress_member(struct libdeflate_compressor *ld, struct libdeflate_compressor *ld0, struct slot *s)
{
	const unsigned char *data = s->in + WINDOW;
	s->outlen = 0;
	s->zerr = Z_OK;
	s->crc = 0;
	if (ld0 == NULL) {
		reserve_out(s, libdeflate_gzip_compress_bound(ld, s->inlen));
		s->outlen = libdeflate_gzip_compress(ld, data, s->inlen, s->out, s->outcap);
		if (s->outlen == 0)
			s->zerr = Z_BUF_ERROR;	/* cannot happen: the buffer has the bound */
		return;
	}
	/* Each member's bound on its own: the sum over runs is at most the
	 * whole block's bound plus a member's overhead per slice. */
	size_t slices = s->inlen / WX_PGZIP_SLICE + 1;
	reserve_out(s, libdeflate_gzip_compress_bound(ld, s->inlen) + slices * 64);
	size_t off = 0;
	do {
		bool store = false;
		size_t n = slice_run(data, s->inlen, off, &store);
		struct libdeflate_compressor *c = store ? ld0 : ld;
		if (libdeflate_gzip_compress_bound(c, n) > s->outcap - s->outlen) {
			s->zerr = Z_BUF_ERROR;	/* cannot happen: see the reserve */
			return;
		}
		size_t made = libdeflate_gzip_compress(c, data + off, n, s->out + s->outlen,
		    s->outcap - s->outlen);
		if (made == 0) {
			s->zerr = Z_BUF_ERROR;
			return;
		}
		s->outlen += made;
		off += n;
	} while (off < s->inlen);
}

static void
compress_block(struct wx_pgzip *z, z_stream *strm, struct slot *s)
{
	const unsigned char *data = s->in + WINDOW;
	int flush = (s->last || z->framing == WX_PGZIP_MEMBER_PER_BLOCK) ? Z_FINISH : Z_SYNC_FLUSH;

	s->outlen = 0;
	s->zerr = Z_OK;
	s->crc = crc32_z(crc32_z(0, NULL, 0), data, s->inlen);

	int ret = deflateReset(strm);
	if (ret == Z_OK && s->dictlen > 0)
		ret = deflateSetDictionary(strm, data - s->dictlen, (uInt)s->dictlen);
	if (ret != Z_OK) {
		s->zerr = ret;
		return;
	}
	/* deflateBound covers Z_FINISH; a sync flush adds at most ~10 bytes. */
	reserve_out(s, deflateBound(strm, (uLong)s->inlen) + 64);
	strm->next_in = (Bytef *)data;
	strm->avail_in = (uInt)s->inlen;
	for (int rounds = 0;; rounds++) {
		if (rounds > 64) {	/* each round doubles out: cannot happen */
			s->zerr = Z_BUF_ERROR;
			return;
		}
		if (s->outcap == s->outlen)
			reserve_out(s, s->outcap);
		size_t room = s->outcap - s->outlen;
		if (room > UINT_MAX)
			room = UINT_MAX;
		strm->next_out = s->out + s->outlen;
		strm->avail_out = (uInt)room;
		ret = deflate(strm, flush);
		s->outlen += room - strm->avail_out;
		if (ret == Z_STREAM_ERROR) {
			s->zerr = ret;
			return;
		}
		if (flush == Z_FINISH && ret == Z_STREAM_END)
			return;
		/* A flush is complete when deflate left output space unused. */
		if (flush != Z_FINISH && strm->avail_in == 0 && strm->avail_out > 0)
			return;
		if (strm->avail_out > 0 && ret == Z_BUF_ERROR) {
			s->zerr = ret;
			return;
		}
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct wx_pgzip *z = w->z;

	pthread_mutex_lock(&z->mu);
	for (;;) {
		while (!z->shutdown && z->taken == z->submitted)
			pthread_cond_wait(&z->work_cv, &z->mu);
		if (z->shutdown)
			break;
		struct slot *s = &z->slots[z->taken % z->nslots];
		z->taken++;
		pthread_mutex_unlock(&z->mu);

		if (w->ld != NULL)
			compress_member(w->ld, w->ld0, s);
		else
			compress_block(z, &w->strm, s);

		pthread_mutex_lock(&z->mu);
		s->done = true;
		pthread_cond_signal(&z->done_cv);
	}
	pthread_mutex_unlock(&z->mu);
	return NULL;
}

static int
emit(struct wx_pgzip *z, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (z->sink(z->ctx, buf, len) != 0) {
		set_error(z, "write callback failed");
		return -1;
	}
	z->total_out += len;
	return 0;
}

static int
emit_header(struct wx_pgzip *z)
{
	/* ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL OS=Unix, as gzip -n writes it. */
	unsigned char h[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
	h[8] = z->level == 9 ? 2 : z->level == 1 ? 4 : 0;
	return emit(z, h, sizeof h);
}

static int
emit_trailer(struct wx_pgzip *z, uLong crc, uint64_t len)
{
	unsigned char t[8];
	for (int i = 0; i < 4; i++) {
		t[i] = (unsigned char)(crc >> (8 * i));
		t[4 + i] = (unsigned char)(len >> (8 * i));	/* ISIZE: len mod 2^32 */
	}
	return emit(z, t, sizeof t);
}

/*
 * Emits the oldest submitted block if it is done; with wait, waits for it.
 * Returns 1 if a block was emitted, 0 if not (nothing done yet or nothing
 * in flight), -1 on error.
 */
static int
emit_oldest(struct wx_pgzip *z, bool wait)
{
	if (z->emitted == z->submitted)
		return 0;
	struct slot *s = &z->slots[z->emitted % z->nslots];
	pthread_mutex_lock(&z->mu);
	while (!s->done && wait)
		pthread_cond_wait(&z->done_cv, &z->mu);
	bool done = s->done;
	pthread_mutex_unlock(&z->mu);
	if (!done)
		return 0;

	if (s->zerr != Z_OK) {
		set_error(z, "deflate failed: %s (zlib %d)", zError(s->zerr), s->zerr);
		return -1;
	}
	if (z->framing == WX_PGZIP_LIBDEFLATE_MEMBERS) {
		if (emit(z, s->out, s->outlen) < 0)
			return -1;
	} else if (z->framing == WX_PGZIP_MEMBER_PER_BLOCK) {
		if (emit_header(z) < 0 || emit(z, s->out, s->outlen) < 0 ||
		    emit_trailer(z, s->crc, s->inlen) < 0)
			return -1;
	} else {
		if (!z->header_sent) {
			if (emit_header(z) < 0)
				return -1;
			z->header_sent = true;
		}
		if (emit(z, s->out, s->outlen) < 0)
			return -1;
		z->crc = crc32_combine(z->crc, s->crc, (z_off_t)s->inlen);
		if (s->last && emit_trailer(z, z->crc, z->total_in) < 0)
			return -1;
	}
	z->emitted++;
	return 1;
}

/*
 * Makes z->filling the next block: waits (emitting) until its slot is free,
 * and primes it with the last WINDOW bytes of the previous block.
 */
static int
begin_block(struct wx_pgzip *z)
{
	while (z->submitted - z->emitted >= z->nslots)
		if (emit_oldest(z, true) < 0)
			return -1;
	struct slot *s = &z->slots[z->submitted % z->nslots];
	if (s->in == NULL)
		s->in = xmalloc(WINDOW + z->block_size);
	s->dictlen = 0;
	s->inlen = 0;
	s->last = false;
	if (z->submitted > 0 && z->level > 0 && z->framing == WX_PGZIP_ONE_MEMBER) {
		/* The previous slot is not reused before this one: nslots >= 2.
		 * A worker may be reading it: both sides only read. */
		const struct slot *p = &z->slots[(z->submitted - 1) % z->nslots];
		size_t n = p->inlen < WINDOW ? p->inlen : WINDOW;
		memcpy(s->in + WINDOW - n, p->in + WINDOW + p->inlen - n, n);
		s->dictlen = n;
	}
	z->filling = s;
	return 0;
}

static void
submit(struct wx_pgzip *z, bool last)
{
	struct slot *s = z->filling;
	z->filling = NULL;
	pthread_mutex_lock(&z->mu);
	s->last = last;
	s->done = false;
	z->submitted++;
	pthread_cond_signal(&z->work_cv);
	pthread_mutex_unlock(&z->mu);
}

static void
stop_workers(struct wx_pgzip *z)
{
	pthread_mutex_lock(&z->mu);
	z->shutdown = true;
	pthread_cond_broadcast(&z->work_cv);
	pthread_mutex_unlock(&z->mu);
	for (int i = 0; i < z->nworkers; i++) {
		if (z->workers[i].running)
			pthread_join(z->workers[i].tid, NULL);
		z->workers[i].running = false;
	}
}

/*
 * 4 x threads + 2 blocks (as pigz): blocks take unequal times (incompressible
 * data deflates slower), and with only 2 x threads a slow oldest block idles
 * the other workers, as output leaves in order.  Measured on 2 cores: 97 vs
 * 130 MiB/s.  Fewer (down to 2 x threads) when the blocks and the deflate
 * states would pass WX_COMPRESS_MEMORY_BUDGET.
 */
static size_t
default_blocks(int threads, size_t block)
{
	size_t want = 4 * (size_t)threads + 2, floor = 2 * (size_t)threads;
	size_t states = (size_t)threads * WX_PGZIP_THREAD_STATE;
	size_t room = WX_COMPRESS_MEMORY_BUDGET > states ? WX_COMPRESS_MEMORY_BUDGET - states : 0;
	size_t fit = room / WX_PGZIP_BLOCK_MEMORY(block);
	if (want > fit)
		want = fit > floor ? fit : floor;
	return want;
}

struct wx_pgzip *
wx_pgzip_new(const struct wx_pgzip_opts *opts, wx_compress_sink sink, void *ctx,
    char *err, size_t errsize)
{
	size_t block = opts->block_size ? opts->block_size : WX_PGZIP_BLOCK_DEFAULT;
	if (opts->level < 0 || opts->level > 9) {
		snprintf(err, errsize, "gzip level %d is out of range 0..9", opts->level);
		return NULL;
	}
	if (opts->threads < 0 || opts->threads > WX_COMPRESS_THREADS_MAX) {
		snprintf(err, errsize, "thread count %d is out of range 0..%d",
		    opts->threads, WX_COMPRESS_THREADS_MAX);
		return NULL;
	}
	if (block < WX_PGZIP_BLOCK_MIN || block > WX_PGZIP_BLOCK_MAX) {
		snprintf(err, errsize, "gzip block size %zu is out of range %zu..%zu",
		    block, WX_PGZIP_BLOCK_MIN, WX_PGZIP_BLOCK_MAX);
		return NULL;
	}
	if (opts->max_blocks < 0 || opts->max_blocks == 1 || opts->max_blocks > 4 * WX_COMPRESS_THREADS_MAX) {
		snprintf(err, errsize, "gzip max_blocks %d is out of range 2..%d (0 = default)",
		    opts->max_blocks, 4 * WX_COMPRESS_THREADS_MAX);
		return NULL;
	}
	if (opts->framing != WX_PGZIP_ONE_MEMBER && opts->framing != WX_PGZIP_MEMBER_PER_BLOCK &&
	    opts->framing != WX_PGZIP_LIBDEFLATE_MEMBERS) {
		snprintf(err, errsize, "unknown gzip framing %d", (int)opts->framing);
		return NULL;
	}

	struct wx_pgzip *z = xcalloc(1, sizeof *z);
	z->level = opts->level;
	z->block_size = block;
	z->framing = opts->framing;
	z->sink = sink;
	z->ctx = ctx;
	z->crc = crc32(0, NULL, 0);
	z->nworkers = opts->threads ? opts->threads : wx_compress_cpus();
	z->nslots = opts->max_blocks ? (size_t)opts->max_blocks : default_blocks(z->nworkers, block);
	z->slots = xcalloc(z->nslots, sizeof *z->slots);
	z->workers = xcalloc((size_t)z->nworkers, sizeof *z->workers);
	pthread_mutex_init(&z->mu, NULL);
	pthread_cond_init(&z->work_cv, NULL);
	pthread_cond_init(&z->done_cv, NULL);

	for (int i = 0; i < z->nworkers; i++) {
		struct worker *w = &z->workers[i];
		w->z = z;
		if (z->framing == WX_PGZIP_LIBDEFLATE_MEMBERS) {
			w->ld = libdeflate_alloc_compressor(z->level);
			if (w->ld == NULL) {
				snprintf(err, errsize, "libdeflate cannot compress at level %d", z->level);
				wx_pgzip_free(z);
				return NULL;
			}
			if (z->level > 0 && !opts->no_store) {
				w->ld0 = libdeflate_alloc_compressor(0);
				if (w->ld0 == NULL) {
					snprintf(err, errsize, "libdeflate cannot store (level 0)");
					wx_pgzip_free(z);
					return NULL;
				}
			}
			continue;
		}
		int ret = deflateInit2(&w->strm, z->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
		if (ret != Z_OK) {
			snprintf(err, errsize, "deflateInit2 failed: %s (zlib %d)", zError(ret), ret);
			wx_pgzip_free(z);
			return NULL;
		}
		w->strm_ok = true;
	}

	/* Workers start with every signal blocked: handlers stay on the caller. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = 0, i;
	for (i = 0; i < z->nworkers; i++) {
		rc = pthread_create(&z->workers[i].tid, NULL, worker_main, &z->workers[i]);
		if (rc != 0)
			break;
		z->workers[i].running = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errsize, "cannot start compression thread %d of %d: %s",
		    i + 1, z->nworkers, strerror(rc));
		wx_pgzip_free(z);
		return NULL;
	}
	return z;
}

int
wx_pgzip_write(struct wx_pgzip *z, const void *data, size_t len)
{
	const unsigned char *p = data;
	if (z->failed)
		return -1;
	if (z->finished || z->last_submitted) {
		set_error(z, "write after finish");
		return -1;
	}
	while (len > 0) {
		if (z->filling == NULL && begin_block(z) < 0)
			return -1;
		struct slot *s = z->filling;
		size_t room = z->block_size - s->inlen;
		if (room == 0) {
			/* Submitted only once more data arrives: finish() then
			 * marks the true last block, with no empty block after.
			 * Done blocks are emitted only when their slot is needed
			 * (begin_block): the caller never holds more than one
			 * block's output on top of the slots. */
			submit(z, false);
			continue;
		}
		size_t n = len < room ? len : room;
		memcpy(s->in + WINDOW + s->inlen, p, n);
		s->inlen += n;
		z->total_in += n;
		p += n;
		len -= n;
	}
	return 0;
}

int
wx_pgzip_finish_some(struct wx_pgzip *z)
{
	if (z->failed)
		return -1;
	if (z->finished)
		return 0;
	if (!z->last_submitted) {
		/* No data at all: one empty last block still makes a valid stream. */
		if (z->filling == NULL && begin_block(z) < 0)
			return -1;
		submit(z, true);
		z->last_submitted = true;
	}
	if (z->emitted < z->submitted && emit_oldest(z, true) < 0)
		return -1;
	if (z->emitted < z->submitted)
		return 1;
	z->finished = true;
	return 0;
}

int
wx_pgzip_finish(struct wx_pgzip *z)
{
	if (z->failed)
		return -1;
	if (z->finished) {
		set_error(z, "finish called twice");
		return -1;
	}
	int r;
	while ((r = wx_pgzip_finish_some(z)) > 0)
		;
	return r;
}

const char *
wx_pgzip_error(const struct wx_pgzip *z)
{
	return z->err;
}

void
wx_pgzip_stats(const struct wx_pgzip *z, uint64_t *in, uint64_t *out)
{
	if (in)
		*in = z->total_in;
	if (out)
		*out = z->total_out;
}

int
wx_pgzip_threads(const struct wx_pgzip *z)
{
	return z->nworkers;
}

void
wx_pgzip_free(struct wx_pgzip *z)
{
	if (z == NULL)
		return;
	stop_workers(z);
	for (int i = 0; i < z->nworkers; i++) {
		if (z->workers[i].strm_ok)
			deflateEnd(&z->workers[i].strm);
		if (z->workers[i].ld != NULL)
			libdeflate_free_compressor(z->workers[i].ld);
		if (z->workers[i].ld0 != NULL)
			libdeflate_free_compressor(z->workers[i].ld0);
	}
	for (size_t i = 0; i < z->nslots; i++) {
		free(z->slots[i].in);
		free(z->slots[i].out);
	}
	free(z->slots);
	free(z->workers);
	pthread_cond_destroy(&z->done_cv);
	pthread_cond_destroy(&z->work_cv);
	pthread_mutex_destroy(&z->mu);
	free(z);
}
