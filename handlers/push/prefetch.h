/*
 * Read-ahead for the archiver: a thread walks the server's tree in the same
 * order as the archiving walk (walk.h: readdir order) and asks the kernel
 * (posix_fadvise WILLNEED) to start reading the regular files the archiver
 * will open next, at most PREFETCH_LEAD_BYTES / PREFETCH_LEAD_FILES ahead of
 * it.  With a cold page cache the archiver then finds its files' first
 * pages read while it was compressing, hashing and sending the previous
 * ones, instead of waiting for the disk at every open (measured in
 * bench/RESULTS-notes.md).
 *
 * Hints only: the thread opens files read-only without following links
 * (O_NOFOLLOW, relative to the walk's directory fds) and closes them at
 * once; it reads no data, logs nothing, and any failure (a file gone, the
 * walks out of step after the tree changed, the thread not starting) costs
 * speed, never correctness.  The page cache it fills is bounded by the lead.
 */
#ifndef WX_PUSH_PREFETCH_H
#define WX_PUSH_PREFETCH_H

#include <stdint.h>

#define PREFETCH_LEAD_BYTES ((int64_t)32 << 20)
#define PREFETCH_LEAD_FILES 256
/* Of each file, the kernel is asked for at most this much at once; its own
 * read-ahead follows the archiver through the rest. */
#define PREFETCH_FILE_MAX ((int64_t)8 << 20)

struct prefetch;

/* Starts the thread on root; NULL when it cannot (the transfer goes on without). */
struct prefetch *prefetch_start(const char *root);
/* The archiver opened its next regular file, of size bytes. */
void prefetch_opened(struct prefetch *p, int64_t size);
/* Stops and joins the thread, frees p; p may be NULL. */
void prefetch_stop(struct prefetch *p);

#endif
