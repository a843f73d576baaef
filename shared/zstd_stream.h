/*
 * Multi-threaded zstd stream encoder: libzstd's streaming compressor with
 * ZSTD_c_nbWorkers, behind the API shape of compress.h.  Output is one zstd
 * frame with a content checksum (XXH64, checked by every zstd decoder,
 * libarchive's zstd filter included).  For wingxfer -> wingxfer transfers
 * only: the Go Wings peers read gzip alone.
 *
 * Threads: libzstd's own workers (nbWorkers = threads) compress jobs while
 * the caller's write() only copies input in; output leaves through the sink
 * on the caller's thread.  If libzstd was built without threads, it
 * compresses in the caller (wx_zstd_threads() returns 0).
 *
 * Memory: libzstd bounds it (about nbWorkers + 2 jobs in flight); job_size
 * caps the job size (libzstd's default at level 3 is 8 MiB per job, so with
 * many threads the default job size would take tens of MiB).
 *
 * Common contract (sink, threads, errors, blocking): see compress.h.
 */
#ifndef WX_ZSTD_STREAM_H
#define WX_ZSTD_STREAM_H

#include "compress.h"

#include <stddef.h>
#include <stdint.h>

#define WX_ZSTD_LEVEL_MIN (-7)
#define WX_ZSTD_LEVEL_MAX 19
/* Default job size: libzstd's minimum.  Against 1 MiB jobs, on the mixed
 * benchmark tar at level 1: peak RSS 8.8 vs 14.0 MiB at 4 workers, output
 * 0.16 % larger, same speed (bench/RESULTS.md).  Smaller jobs also bound
 * the bursts of output the caller must take at once. */
#define WX_ZSTD_JOB_DEFAULT ((size_t)512 * 1024)

struct wx_zstd_opts {
	int level;		/* WX_ZSTD_LEVEL_MIN..MAX, not 0 (negative = faster) */
	int threads;		/* worker threads, 0 = wx_compress_cpus() */
	size_t job_size;	/* bytes per multi-threaded job, 0 = WX_ZSTD_JOB_DEFAULT;
				   libzstd raises values below its minimum (512 KiB) */
};

struct wx_zstd;

/* Creates the compressor; NULL with a message in err on a bad option. */
struct wx_zstd *wx_zstd_new(const struct wx_zstd_opts *opts, wx_compress_sink sink,
    void *ctx, char *err, size_t errsize);
/* Appends len bytes; may block on a full pipeline.  0 or -1. */
int wx_zstd_write(struct wx_zstd *z, const void *data, size_t len);
/* Flushes everything and ends the frame.  0 or -1; twice fails. */
int wx_zstd_finish(struct wx_zstd *z);
/* finish() a piece at a time: each call emits at most one output buffer
 * (ZSTD_CStreamOutSize).  1 = call again, 0 = complete, -1 on error. */
int wx_zstd_finish_some(struct wx_zstd *z);
/* "" or why the last call failed; owned by z. */
const char *wx_zstd_error(const struct wx_zstd *z);
/* Input bytes accepted, output bytes handed to the sink. */
void wx_zstd_stats(const struct wx_zstd *z, uint64_t *in, uint64_t *out);
/* Worker threads libzstd runs (0 = compresses in the caller). */
int wx_zstd_threads(const struct wx_zstd *z);
/* Stops libzstd's workers and frees everything.  NULL is a no-op. */
void wx_zstd_free(struct wx_zstd *z);

#endif
