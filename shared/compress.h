/*
 * Streaming compressors for outgoing archives: bytes go in with
 * wx_compressor_write, compressed bytes come out, in order, through the sink
 * given at creation.  The caller never sees the implementation: today one
 * zlib deflate stream in gzip format on the calling thread; a parallel gzip
 * or a zstd implementation can be added behind the same calls (select it in
 * wx_compressor_new) without touching the archive or upload code.
 *
 * Contract for every implementation:
 *   - the sink receives the complete compressed stream, in order, as one or
 *     more calls; a sink returning -1 makes the current and every later call
 *     fail;
 *   - wx_compressor_write may call the sink zero or more times (it may keep
 *     input buffered); wx_compressor_finish flushes everything and ends the
 *     stream (gzip trailer); after finish only wx_compressor_free is allowed;
 *   - errors: -1, with a one-line reason from wx_compressor_error.
 */
#ifndef WX_COMPRESS_H
#define WX_COMPRESS_H

#include <stddef.h>

/* Receives compressed bytes; returns 0, or -1 to stop the stream. */
typedef int (*wx_sink_fn)(void *ctx, const void *buf, size_t len);

enum wx_codec {
	WX_CODEC_GZIP = 0,  /* RFC 1952, one member: what every Wings destination reads */
};

struct wx_compressor;

struct wx_compressor_ops {
	int (*write)(struct wx_compressor *c, const void *buf, size_t len);
	int (*finish)(struct wx_compressor *c);
	void (*destroy)(struct wx_compressor *c);
};

/* The part every implementation shares; implementations embed it first. */
struct wx_compressor {
	const struct wx_compressor_ops *ops;
	wx_sink_fn sink;
	void *sink_ctx;
	unsigned long long bytes_in;    /* uncompressed bytes accepted */
	unsigned long long bytes_out;   /* compressed bytes given to the sink */
	char error[256];
};

/*
 * A compressor for codec at level (gzip: 0 = stored blocks, 1 fastest .. 9
 * best).  threads is a hint (0 = implementation's choice); the gzip
 * implementation here uses the calling thread only.  Returns NULL with a
 * reason in err when the codec or level is not supported.
 */
struct wx_compressor *wx_compressor_new(enum wx_codec codec, int level, int threads,
    wx_sink_fn sink, void *sink_ctx, char *err, size_t errsize);

int wx_compressor_write(struct wx_compressor *c, const void *buf, size_t len);
int wx_compressor_finish(struct wx_compressor *c);
const char *wx_compressor_error(const struct wx_compressor *c);
/* Frees c (NULL is fine), finished or not. */
void wx_compressor_free(struct wx_compressor *c);

/* Codec name ("gzip") for logs. */
const char *wx_codec_name(enum wx_codec codec);

/* Implementations (compress_*.c); use wx_compressor_new. */
struct wx_compressor *wx_gzip_new(int level, char *err, size_t errsize);

#endif
