/* Overwriting freed memory (freed_fill.h). */
#include "autoconf.h"

#include "freed_fill.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define FREED_FILL 0x5a         /* M_PERTURB's byte; ASan's free_fill_byte below */
#define TCACHE_BINS 64          /* chunk sizes 32 .. 1040 bytes, 16 apart */
#define TCACHE_TAKE 16          /* per bin: glibc keeps 7 unless tuned */

void
wx_fill_freed(bool on)
{
	(void)mallopt(M_PERTURB, on ? FREED_FILL : 0);
}

void
wx_scrub_freed(void)
{
#ifndef WX_SANITIZERS
	static void *taken[TCACHE_BINS][TCACHE_TAKE];
	for (int b = 0; b < TCACHE_BINS; b++)
		for (int i = 0; i < TCACHE_TAKE; i++) {
			/* a request of 16b + 8 bytes is a chunk of 16b + 32 */
			taken[b][i] = malloc((size_t)b * 16 + 8);
			if (taken[b][i] != NULL)
				memset(taken[b][i], 0, malloc_usable_size(taken[b][i]));
		}
	for (int b = 0; b < TCACHE_BINS; b++)
		for (int i = 0; i < TCACHE_TAKE; i++)
			free(taken[b][i]);
#endif
}

#ifdef WX_SANITIZERS
/* ASan's allocator ignores M_PERTURB (the variables in ASAN_OPTIONS win). */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "max_free_fill_size=1048576:free_fill_byte=90";
}
#endif
