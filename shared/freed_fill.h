/*
 * Overwriting memory as it is freed, so that a process forked later (the
 * destination's extractor, the push worker) inherits no stale copy of a
 * secret that was freed before the fork: the node token in the YAML text
 * and document of every config read, other transfers' tokens and panel
 * answers.  glibc's M_PERTURB; ASan builds fill freed memory through
 * __asan_default_options (defined with wx_fill_freed, so a program that
 * calls it gets both).  Live copies are the caller's to wipe.
 */
#ifndef WX_FREED_FILL_H
#define WX_FREED_FILL_H

#include <stdbool.h>

/* From now on (on) or no longer (off), free() overwrites what it frees. */
void wx_fill_freed(bool on);

/*
 * glibc keeps the last few small chunks freed by a thread in its tcache,
 * untouched by M_PERTURB: takes every chunk the calling thread's tcache
 * holds, overwrites it and gives it back.  For a freshly forked child (its
 * only thread's tcache is the forking thread's); after it, and with
 * wx_fill_freed on in the parent, no freed chunk holds old bytes.  A no-op
 * in ASan builds (their allocator has no tcache and fills on free).
 */
void wx_scrub_freed(void);

#endif
