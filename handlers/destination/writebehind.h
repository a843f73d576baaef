/*
 * Write-behind for the extractor (system.transfers.write_behind): the data
 * of the files being extracted is sent to the disk while they are written,
 * in pieces of a quarter of the window, and at most one window of it is
 * in flight: older pieces are waited for, then dropped from the page cache.
 *
 * Why: written through the page cache alone, a transfer leaves gigabytes of
 * dirty pages that the kernel's flusher writes back in bursts, without the
 * transfer's I/O priority; a game server's fsync (an ext4 journal commit)
 * then waits behind them.  Here the writes are submitted by the receiving
 * process itself (sync_file_range), so they carry its I/O priority, the
 * dirty backlog stays bounded, and the transfer keeps pace with the disk
 * instead of the page cache.  DONTNEED after the wait keeps the node's page
 * cache for the servers running on it.
 *
 * Flushes (system.transfers.write_behind_flush): a write that the disk has
 * acknowledged may still sit in its volatile cache, and the next fsync on
 * the node, a game server's, makes the disk persist all of it first.  So
 * once `flush` bytes have been waited for, the disk's cache is flushed
 * (a wx_flusher on the staging directory: through an unnamed file, paced),
 * and a neighbour's fsync never pays for more than about `flush` plus the
 * window of ours; where the disk is slow to flush, more goes between two.
 *
 * libarchive writes the files and keeps its descriptors; this module opens
 * each regular file again, read-only, relative to the staging directory
 * (O_NOFOLLOW, after archive_write_header created it), which is all that
 * sync_file_range and posix_fadvise need.  A file that cannot be opened (a
 * mode without the owner's read bit, when not root) is left to the kernel's
 * flusher.  Failures of the hints never fail the transfer: the first one is
 * logged and write-behind stops for the rest of it (the commit's syncfs
 * still makes everything durable).
 *
 * Descriptors: at most RX_WB_FILES open at once, and the flush handle (the
 * extractor's RLIMIT_NOFILE is small).  Not thread-safe; one per extraction.
 */
#ifndef WX_DESTINATION_WRITEBEHIND_H
#define WX_DESTINATION_WRITEBEHIND_H

#include "flusher.h"

#include <stdbool.h>
#include <stdint.h>

#define RX_WB_FILES 16                  /* files with data in flight, at most */
#define RX_WB_MIN_PIECE (64 * 1024)     /* smallest piece submitted within a file */

struct rx_wb_range {
	int fd;
	int64_t off, len;
	bool last;                      /* the file's last range: close fd after it */
};

struct rx_writebehind {
	int64_t window;                 /* bytes in flight at most; 0 = off */
	int64_t piece;                  /* submitted once this much of a file is unsubmitted */
	int dirfd;
	int fd;                         /* the file being written; -1 = none */
	int64_t submitted_to;           /* of that file: [0, submitted_to) submitted */
	int64_t written_to;             /* of that file: end of the highest write */
	struct rx_wb_range q[RX_WB_FILES * 4];
	int qhead, qlen, qfiles;        /* ranges queued; files among them */
	int64_t inflight;               /* bytes submitted and not yet waited for */
	int64_t flush;                  /* flush once this much was waited for; 0 = never */
	int64_t unflushed;              /* bytes waited for since the last flush */
	struct wx_flusher flusher;      /* its flushes (counted there, for the log) */
	/* what happened, for the log */
	int64_t bytes;                  /* submitted in all */
	int64_t ranges;                 /* sync_file_range(WRITE) calls */
	int64_t unopened;               /* files left to the flusher */
};

/* Starts write-behind with a window of `window` bytes (0 = off) and a flush
 * after every `flush` bytes written back (0 = none) for files beneath dirfd
 * (which must stay open until rx_wb_end). */
void rx_wb_init(struct rx_writebehind *wb, int64_t window, int64_t flush, int dirfd);

/* A regular file at path (relative to dirfd) was just created and will be
 * written; call before its data. */
void rx_wb_file(struct rx_writebehind *wb, const char *path);

/* The same for a file open as fd (written through it, perhaps renamed into
 * place later): fd is duplicated, the caller keeps its own. */
void rx_wb_file_fd(struct rx_writebehind *wb, int fd);

/* size bytes were written at off in that file. */
void rx_wb_wrote(struct rx_writebehind *wb, int64_t off, int64_t size);

/* That file's data is complete (archive_write_finish_entry returned). */
void rx_wb_file_done(struct rx_writebehind *wb);

/* End of the extraction: with wait, everything in flight is waited for and
 * dropped from the page cache; without (a failure), descriptors are only
 * closed.  The module is off afterwards. */
void rx_wb_end(struct rx_writebehind *wb, bool wait);

#endif
