/*
 * Flushes of the disk's write cache for a writer that writes data back as
 * it goes (the destination's write-behind: handlers/destination/
 * writebehind.h, and a chunk's spool).
 *
 * A disk acknowledges writes into its volatile cache, and the next fsync on
 * the node, a game server's, waits until all of that is persisted.  A
 * writer that flushes every so often bounds that wait.
 *
 * What is flushed: an unnamed file (O_TMPFILE) in dir, opened at the first
 * flush and never written.  Its fdatasync persists every write the disk
 * has completed, of any file, and commits nothing of the writer's: once its
 * creation is committed, a journal has nothing of it to write, so the call
 * is the cache flush alone.  An fdatasync of a written file that grew would
 * commit ext4's journal each time; that is done only where the file system
 * has no O_TMPFILE (counted in via_written).
 *
 * Pace: after a flush that took d, the next is due no sooner than
 * WX_FLUSH_SPACING times d after it ended, so flushing takes at most a
 * fifth of the writer's time.  Where flushes are fast (a write-through
 * cache, a VM host's), none is put off; where they are slow (a spinning
 * disk's cache, ~10 ms), more data goes between two instead of the writer
 * slowing down by half.
 */
#ifndef WX_FLUSHER_H
#define WX_FLUSHER_H

#include <stdbool.h>
#include <stdint.h>

#define WX_FLUSH_SPACING 4

struct wx_flusher {
	int dirfd;                      /* where the unnamed file goes, as for openat */
	const char *dir;                /* (borrowed: must outlive the flusher) */
	int fd;                         /* the unnamed file; -1 = not open (yet) */
	bool tried;                     /* its opening was tried */
	int64_t due_ns;                 /* wx_mono_ns of the next flush; 0 = now */
	/* what happened, for the logs */
	int64_t flushes;                /* fdatasync calls */
	int64_t via_written;            /* of them, of the written file (no O_TMPFILE) */
	int64_t put_off;                /* wx_flusher_due answered "not yet" */
};

void wx_flusher_init(struct wx_flusher *f, int dirfd, const char *dir);

/* Whether a flush is due now. */
bool wx_flusher_due(struct wx_flusher *f);

/* Flushes, through the unnamed file or else written_fd, and sets when the
 * next one is due.  fdatasync's result. */
int wx_flusher_flush(struct wx_flusher *f, int written_fd);

/* Closes the unnamed file; it is not opened again.  The counts stay. */
void wx_flusher_close(struct wx_flusher *f);

#endif
