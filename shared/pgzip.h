/*
 * Multi-threaded gzip stream encoder (pigz-style), pthreads + zlib.
 *
 * Input is cut into blocks of block_size bytes.  Each block is compressed by
 * a worker thread as raw deflate at the given level, primed with the last
 * 32 KiB of the previous block (deflateSetDictionary), so the ratio stays
 * within a fraction of a percent of single-threaded gzip.  Every block but
 * the last ends with Z_SYNC_FLUSH (byte-aligned, not final), the last with
 * Z_FINISH; the workers also compute each block's CRC-32, and the caller's
 * thread combines them (crc32_combine) and emits, in order, ONE ordinary
 * gzip member: 10-byte header, the deflate stream, CRC-32 and ISIZE.  The
 * bytes depend on level and block_size only, not on threads or on how the
 * input was split into write() calls.  Any gzip reader reads it (zlib, gzip(1), Go compress/gzip, klauspost/pgzip,
 * libarchive, python).  Level 0 gives stored deflate blocks.
 *
 * WX_PGZIP_MEMBER_PER_BLOCK instead emits each block as its own gzip member
 * (no dictionary); kept for measurement and tests only: it was no faster
 * (same CPU, bench/compress-results.md), is larger (+2.8 % on text with
 * 64 KiB blocks), and single-member readers (zlib inflate with a gzip
 * wrapper used once) stop after the first block.
 *
 * WX_PGZIP_LIBDEFLATE_MEMBERS compresses each block with libdeflate as a
 * complete gzip member (its own header, CRC-32 and ISIZE; no dictionary
 * from the previous block, as libdeflate compresses whole buffers).  At
 * level 1 libdeflate takes half of zlib's CPU for a slightly better ratio
 * (bench/RESULTS.md); concatenated members are read by gzip(1), pigz, Go's
 * compress/gzip and klauspost/pgzip (multistream is their default) and
 * libarchive; a reader that stops after one member does not (zlib inflate
 * used once).  What wx_compressor_new uses for gzip.  Levels 0..9 as zlib.
 * At levels 1..9 each block is cut into WX_PGZIP_SLICE slices, and each run
 * of slices that look incompressible (shared/incompressible.h: region-file
 * chunks, jars) becomes a member of stored deflate blocks, the other runs
 * deflated members: the same stream shape for every reader, no deflate CPU
 * spent on data it cannot shrink (no_store turns this off, for measurement).
 *
 * Memory bound: max_blocks blocks exist at once (one being filled by the
 * caller, the rest queued, compressing, or done and waiting to be emitted in
 * order), each block_size + 32 KiB of input and about block_size of output
 * (WX_PGZIP_BLOCK_MEMORY), plus one deflate state (WX_PGZIP_THREAD_STATE)
 * per thread.  Default max_blocks: 4 x threads + 2, lowered (not below
 * 2 x threads) to keep blocks and states within WX_COMPRESS_MEMORY_BUDGET
 * (compress.h).  Defaults at 2 threads: 10 x 256 KiB blocks, ~6 MiB; at
 * 4 threads: 18 blocks, ~10.5 MiB; at 8 threads: 18 blocks, ~11.9 MiB.
 * wx_compress_threads() caps the threads so that 2 blocks per thread fit.
 *
 * Common contract (sink, threads, errors, blocking): see compress.h.
 */
#ifndef WX_PGZIP_H
#define WX_PGZIP_H

#include "compress.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WX_PGZIP_BLOCK_DEFAULT ((size_t)256 * 1024)
#define WX_PGZIP_BLOCK_MIN ((size_t)4096)
#define WX_PGZIP_BLOCK_MAX ((size_t)64 * 1024 * 1024)
/* Unit of the stored-or-deflated decision (WX_PGZIP_LIBDEFLATE_MEMBERS). */
#define WX_PGZIP_SLICE ((size_t)16 * 1024)
/* One worker's deflate state: deflateInit2(level, -15, memLevel 8) takes
 * 2^17 + 2^17 bytes plus the z_stream and deflate_state structures. */
#define WX_PGZIP_THREAD_STATE ((size_t)268 * 1024)
/* One block in flight: input (dictionary + data) and output (deflateBound). */
#define WX_PGZIP_BLOCK_MEMORY(block) (2 * (size_t)(block) + (size_t)32 * 1024 + 1024)

enum wx_pgzip_framing {
	WX_PGZIP_ONE_MEMBER = 0,	/* zlib, one gzip member (what Go Wings sends) */
	WX_PGZIP_MEMBER_PER_BLOCK,	/* zlib, concatenated members, for measurement */
	WX_PGZIP_LIBDEFLATE_MEMBERS,	/* libdeflate, one member per block (see above) */
};

struct wx_pgzip_opts {
	int level;		/* 0 (stored) .. 9 */
	int threads;		/* worker threads, 0 = wx_compress_cpus() */
	size_t block_size;	/* input bytes per block, 0 = WX_PGZIP_BLOCK_DEFAULT */
	enum wx_pgzip_framing framing;
	int max_blocks;		/* blocks in memory at once (filling, queued, compressing,
				   waiting to be emitted), 0 = default; at least 2 */
	bool no_store;		/* WX_PGZIP_LIBDEFLATE_MEMBERS: deflate every slice, even
				   incompressible ones (for measurement) */
};

struct wx_pgzip;

/*
 * Starts the worker threads.  Returns NULL with a message in err when an
 * option is out of range (level, threads > WX_COMPRESS_THREADS_MAX,
 * block_size outside [MIN, MAX]) or a thread cannot be started.
 * The sink is not called here: the gzip header goes out with the first block.
 */
struct wx_pgzip *wx_pgzip_new(const struct wx_pgzip_opts *opts, wx_compress_sink sink,
    void *ctx, char *err, size_t errsize);

/*
 * Appends len bytes to the stream.  When every block is in flight, waits for
 * the oldest and emits it through the sink (at most one block's output per
 * block of input: finished blocks are not emitted earlier).
 * 0, or -1 (see wx_pgzip_error()).
 */
int wx_pgzip_write(struct wx_pgzip *z, const void *data, size_t len);

/*
 * Compresses what is left, waits for every block and emits the end of the
 * stream (last block + trailer).  After it returns 0 the sink has received
 * the complete gzip file.  0 or -1.  Calling it twice fails.
 */
int wx_pgzip_finish(struct wx_pgzip *z);

/*
 * finish() a piece at a time: the first call submits the last block; each
 * call emits at most one block (the trailer with the last).  1 = call
 * again, 0 = the stream is complete (later calls return 0), -1 on error.
 * Lets a caller that sends the stream at its own pace hold one block's
 * output at a time.
 */
int wx_pgzip_finish_some(struct wx_pgzip *z);

/* "" or why the last call failed; owned by z. */
const char *wx_pgzip_error(const struct wx_pgzip *z);

/* Input bytes accepted, output bytes handed to the sink. */
void wx_pgzip_stats(const struct wx_pgzip *z, uint64_t *in, uint64_t *out);

/* Number of worker threads actually running. */
int wx_pgzip_threads(const struct wx_pgzip *z);

/* Stops and joins the workers, frees everything.  NULL is a no-op. */
void wx_pgzip_free(struct wx_pgzip *z);

#endif
