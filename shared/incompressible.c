#include "autoconf.h"

#include "incompressible.h"

#include <stdint.h>
#include <string.h>

/*
 * Uniform random bytes give sum(c_i^2) ~= n^2/256 + n (collision entropy
 * ~7.98 bits at 16 KiB); the limit admits 3 % above that, about 7.94 bits:
 * where deflate's Huffman stage could save at most ~1 %.  A 16 KiB slice of
 * random bytes with 500 zero bytes in it (3 %) is already over the limit.
 */
bool
wx_incompressible(const unsigned char *p, size_t n)
{
	if (n < WX_INCOMPRESSIBLE_MIN)
		return false;
	/* Four interleaved tables: consecutive equal bytes do not serialise on one counter. */
	uint32_t c[4][256];
	memset(c, 0, sizeof c);
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		c[0][p[i]]++;
		c[1][p[i + 1]]++;
		c[2][p[i + 2]]++;
		c[3][p[i + 3]]++;
	}
	for (; i < n; i++)
		c[0][p[i]]++;
	uint64_t sq = 0;
	for (int b = 0; b < 256; b++) {
		uint64_t t = (uint64_t)c[0][b] + c[1][b] + c[2][b] + c[3][b];
		sq += t * t;
	}
	/* sq <= 1.03 * (n^2/256 + n); in doubles: n^2 overflows 64 bits past 4 GiB. */
	double dn = (double)n;
	return (double)sq * 256.0 <= 1.03 * (dn * dn + 256.0 * dn);
}
