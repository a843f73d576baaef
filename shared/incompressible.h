/*
 * incompressible: a cheap test for data deflate cannot shrink (already
 * compressed: region-file chunks, jars, media), so the gzip encoder can
 * store it instead of spending ~3 ns a byte to save nothing.
 *
 * The test is on byte frequencies only (order-0): the Rényi-2 (collision)
 * entropy of the bytes is within WX_INCOMPRESSIBLE_SLACK of 8 bits.  It is
 * exact for what it sees: data with a skewed byte distribution (text,
 * zero padding, headers) is never taken for incompressible.  It is blind to
 * repetition of a uniformly distributed pattern (a random 1 KiB block
 * repeated): such data is stored and costs its size, never correctness.
 */
#ifndef WX_INCOMPRESSIBLE_H
#define WX_INCOMPRESSIBLE_H

#include <stdbool.h>
#include <stddef.h>

/* Slices shorter than this are never called incompressible (too few bytes
 * for the statistic; gzip members cost 18 bytes each). */
#define WX_INCOMPRESSIBLE_MIN ((size_t)4096)

/* True when p[0..n) looks incompressible (see above); n < WX_INCOMPRESSIBLE_MIN: false. */
bool wx_incompressible(const unsigned char *p, size_t n);

#endif
