#include "autoconf.h"

#include "zstd_stream.h"
#include "util.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

struct wx_zstd {
	ZSTD_CCtx *cctx;
	wx_compress_sink sink;
	void *ctx;
	int threads;
	unsigned char *out;
	size_t outcap;
	bool started;		/* first compressStream2 call made (workers exist) */
	bool finished, failed;
	uint64_t total_in, total_out;
	char err[200];
};

static void set_error(struct wx_zstd *z, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
set_error(struct wx_zstd *z, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(z->err, sizeof z->err, fmt, ap);
	va_end(ap);
	z->failed = true;
}

/* Sets one parameter; on error fills err and returns -1. */
static int
set_param(ZSTD_CCtx *cctx, ZSTD_cParameter p, int v, const char *what, char *err, size_t errsize)
{
	size_t r = ZSTD_CCtx_setParameter(cctx, p, v);
	if (ZSTD_isError(r)) {
		snprintf(err, errsize, "zstd %s %d: %s", what, v, ZSTD_getErrorName(r));
		return -1;
	}
	return 0;
}

struct wx_zstd *
wx_zstd_new(const struct wx_zstd_opts *opts, wx_compress_sink sink, void *ctx,
    char *err, size_t errsize)
{
	if (opts->level == 0 || opts->level < WX_ZSTD_LEVEL_MIN || opts->level > WX_ZSTD_LEVEL_MAX) {
		snprintf(err, errsize, "zstd level %d is out of range %d..%d (0 excluded)",
		    opts->level, WX_ZSTD_LEVEL_MIN, WX_ZSTD_LEVEL_MAX);
		return NULL;
	}
	if (opts->threads < 0 || opts->threads > WX_COMPRESS_THREADS_MAX) {
		snprintf(err, errsize, "thread count %d is out of range 0..%d",
		    opts->threads, WX_COMPRESS_THREADS_MAX);
		return NULL;
	}
	size_t job = opts->job_size ? opts->job_size : WX_ZSTD_JOB_DEFAULT;
	if (job > (size_t)1 << 30) {
		snprintf(err, errsize, "zstd job size %zu is larger than 1 GiB", job);
		return NULL;
	}

	struct wx_zstd *z = xcalloc(1, sizeof *z);
	z->sink = sink;
	z->ctx = ctx;
	z->cctx = ZSTD_createCCtx();
	if (z->cctx == NULL) {
		snprintf(err, errsize, "cannot create a zstd context");
		free(z);
		return NULL;
	}
	if (set_param(z->cctx, ZSTD_c_compressionLevel, opts->level, "level", err, errsize) < 0 ||
	    set_param(z->cctx, ZSTD_c_checksumFlag, 1, "checksum flag", err, errsize) < 0) {
		wx_zstd_free(z);
		return NULL;
	}
	int threads = opts->threads ? opts->threads : wx_compress_cpus();
	/* Fails only when libzstd was built without threads: compress inline. */
	if (!ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, threads))) {
		z->threads = threads;
		if (set_param(z->cctx, ZSTD_c_jobSize, (int)job, "job size", err, errsize) < 0) {
			wx_zstd_free(z);
			return NULL;
		}
	}
	z->outcap = ZSTD_CStreamOutSize();
	z->out = xmalloc(z->outcap);
	return z;
}

/* Runs one compressStream2 step and hands its output to the sink. */
static int
step(struct wx_zstd *z, ZSTD_inBuffer *in, ZSTD_EndDirective mode, size_t *remaining)
{
	ZSTD_outBuffer out = { z->out, z->outcap, 0 };
	size_t r;
	if (!z->started) {
		/* libzstd starts its workers in this first call: they inherit
		 * a fully blocked signal mask, as pgzip's do. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		r = ZSTD_compressStream2(z->cctx, &out, in, mode);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		z->started = true;
	} else {
		r = ZSTD_compressStream2(z->cctx, &out, in, mode);
	}
	if (ZSTD_isError(r)) {
		set_error(z, "zstd compression failed: %s", ZSTD_getErrorName(r));
		return -1;
	}
	if (out.pos > 0) {
		if (z->sink(z->ctx, z->out, out.pos) != 0) {
			set_error(z, "write callback failed");
			return -1;
		}
		z->total_out += out.pos;
	}
	*remaining = r;
	return 0;
}

int
wx_zstd_write(struct wx_zstd *z, const void *data, size_t len)
{
	if (z->failed)
		return -1;
	if (z->finished) {
		set_error(z, "write after finish");
		return -1;
	}
	ZSTD_inBuffer in = { data, len, 0 };
	size_t remaining;
	/* libzstd guarantees progress on every call (it blocks if it must). */
	while (in.pos < in.size)
		if (step(z, &in, ZSTD_e_continue, &remaining) < 0)
			return -1;
	z->total_in += len;
	return 0;
}

int
wx_zstd_finish_some(struct wx_zstd *z)
{
	if (z->failed)
		return -1;
	if (z->finished)
		return 0;
	ZSTD_inBuffer in = { NULL, 0, 0 };
	size_t remaining;
	if (step(z, &in, ZSTD_e_end, &remaining) < 0)
		return -1;
	if (remaining > 0)
		return 1;
	z->finished = true;
	return 0;
}

int
wx_zstd_finish(struct wx_zstd *z)
{
	if (z->failed)
		return -1;
	if (z->finished) {
		set_error(z, "finish called twice");
		return -1;
	}
	ZSTD_inBuffer in = { NULL, 0, 0 };
	size_t remaining;
	do {
		if (step(z, &in, ZSTD_e_end, &remaining) < 0)
			return -1;
	} while (remaining > 0);
	z->finished = true;
	return 0;
}

const char *
wx_zstd_error(const struct wx_zstd *z)
{
	return z->err;
}

void
wx_zstd_stats(const struct wx_zstd *z, uint64_t *in, uint64_t *out)
{
	if (in)
		*in = z->total_in;
	if (out)
		*out = z->total_out;
}

int
wx_zstd_threads(const struct wx_zstd *z)
{
	return z->threads;
}

void
wx_zstd_free(struct wx_zstd *z)
{
	if (z == NULL)
		return;
	ZSTD_freeCCtx(z->cctx);
	free(z->out);
	free(z);
}
