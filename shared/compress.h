/*
 * Streaming compressors for the archive stream, behind one API shape:
 *
 *   new(options, sink, ctx) -> write(data, len)... -> finish() -> free()
 *
 * shared/pgzip.h     multi-threaded gzip: through this facade, concatenated
 *                    gzip members made by libdeflate (Go's gzip reader,
 *                    gzip(1), pigz and libarchive read them); or one zlib member
 * shared/zstd_stream.h  multi-threaded zstd (wingxfer <-> wingxfer only)
 *
 * This header holds what they share (the sink type) and a small facade that
 * picks one by format, so a caller can switch codecs at run time.
 *
 * Common contract of every compressor here:
 *  - One caller thread drives one compressor; the library's own worker
 *    threads never call the sink.  The sink is called only from inside
 *    write() and finish(), on the caller's thread, with compressed bytes in
 *    stream order and len > 0.  The caller hashes and sends them there.
 *  - write() may block while the pipeline is full (memory is bounded) and
 *    copies the data it needs: the caller's buffer is free on return.
 *  - Errors are sticky: after a failed write() or finish() every later call
 *    fails too and error() says why ("write callback failed", a zlib/zstd
 *    message, "write after finish").  free() is always safe and never hangs:
 *    worker threads finish at most the block they hold, then exit.
 *  - No logging, no config reading, no signals: worker threads block all
 *    signals, so handlers keep running on the caller's threads.
 *  - Out of memory aborts (the x* allocators of util.h).
 */
#ifndef WX_COMPRESS_H
#define WX_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Receives compressed bytes.  Returns 0 to go on, -1 to stop the stream:
 * the write()/finish() that called it then returns -1 and the compressor
 * reports "write callback failed" (the sink keeps its own reason).
 */
typedef int (*wx_compress_sink)(void *ctx, const void *buf, size_t len);

enum wx_compress_format {
	WX_COMPRESS_GZIP,	/* pgzip, libdeflate member per block; levels 0 (stored)..9 */
	WX_COMPRESS_ZSTD,	/* zstd frame with content checksum; levels -7..19, not 0 */
};

/* Largest thread count accepted by the compressors. */
#define WX_COMPRESS_THREADS_MAX 64

/*
 * What one compressor may hold in memory at once: its blocks or jobs in
 * flight plus each worker thread's own state.  The push worker's whole
 * peak RSS (about 11 MiB of mapped libraries, the body and TLS buffers)
 * then stays under 32 MiB in every configuration (bench/RESULTS.md).
 */
#define WX_COMPRESS_MEMORY_BUDGET ((size_t)12 * 1024 * 1024)
/* Default thread count: half the CPUs available, at least 2, at most 4 (never more than the CPUs). */
#define WX_COMPRESS_THREADS_DEFAULT_MAX 4

/*
 * Number of CPUs this process may run on (sched_getaffinity, so cpusets and
 * taskset count), else online CPUs; at least 1, at most
 * WX_COMPRESS_THREADS_MAX.  This is what threads = 0 means.
 */
int wx_compress_cpus(void);

/*
 * The worker threads a compressor of this format and level really runs for
 * a requested count (0 = the default: half of wx_compress_cpus(), at least 2
 * and at most WX_COMPRESS_THREADS_DEFAULT_MAX, never more than the CPUs):
 * at most as many as fit WX_COMPRESS_MEMORY_BUDGET (each gzip thread needs
 * its deflate state and two blocks; each zstd worker its context and jobs),
 * at least 1.  Never fails; an out-of-range request is capped.
 */
int wx_compress_threads(enum wx_compress_format format, int level, int requested);

struct wx_compressor;

/*
 * Creates a compressor of the given format.  threads: the requested count,
 * resolved by wx_compress_threads() (0 = default; more than the memory
 * budget allows is capped).  Invalid options: NULL with a message in err.
 */
struct wx_compressor *wx_compressor_new(enum wx_compress_format format, int level,
    int threads, wx_compress_sink sink, void *ctx, char *err, size_t errsize);
/* See the common contract above; 0 or -1. */
int wx_compressor_write(struct wx_compressor *c, const void *data, size_t len);
int wx_compressor_finish(struct wx_compressor *c);
/*
 * finish() a piece at a time, for a caller that sends at its own pace: each
 * call emits at most about one block (gzip) or one output buffer (zstd) of
 * what is left.  1 = call again, 0 = the stream is complete (and later calls
 * return 0), -1 on error.  Do not mix with finish().
 */
int wx_compressor_finish_some(struct wx_compressor *c);
/* Why the last call failed; "" if nothing failed.  Owned by c. */
const char *wx_compressor_error(const struct wx_compressor *c);
/* Bytes given to write() and bytes handed to the sink so far. */
void wx_compressor_stats(const struct wx_compressor *c, uint64_t *in, uint64_t *out);
/* Worker threads the compressor runs (after wx_compress_threads()). */
int wx_compressor_threads(const struct wx_compressor *c);
/* Stops the workers and frees everything; NULL is a no-op. */
void wx_compressor_free(struct wx_compressor *c);

/* "gzip" / "zstd". */
const char *wx_compress_format_name(enum wx_compress_format format);

#endif
