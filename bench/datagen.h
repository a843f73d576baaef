/*
 * datagen: deterministic benchmark data, shared by bench-data (the e2e
 * datasets) and compress-bench (the compressor input).  Same seed, same
 * bytes, on every machine.
 */
#ifndef WX_BENCH_DATAGEN_H
#define WX_BENCH_DATAGEN_H

#include <stddef.h>
#include <stdint.h>

/* xorshift64: advances *s (never 0) and returns it. */
uint64_t wx_bench_xorshift(uint64_t *s);
/* n incompressible bytes from the generator *s. */
void wx_bench_fill_random(unsigned char *p, size_t n, uint64_t *s);
/* n text-like bytes (words, numbers and punctuation of game-server configs
 * and logs) from the generator *s; compresses like such files. */
void wx_bench_fill_text(unsigned char *p, size_t n, uint64_t *s);

/* A Minecraft region file (.mca) of n bytes: an 8 KiB header (chunk
 * offsets and timestamps), then chunks of incompressible payload (they are
 * zlib data in a real one) padded with zeros to 4 KiB sectors; deflate saves
 * about 5 %. */
void wx_bench_fill_region(unsigned char *p, size_t n, uint64_t *s);
/* A jar of n bytes: zip local headers ("PK\3\4", a class-like name) before
 * incompressible (already deflated) entries, a few stored text entries, and
 * a central directory at the end; deflate saves about 8 %. */
void wx_bench_fill_jar(unsigned char *p, size_t n, uint64_t *s);

#endif
