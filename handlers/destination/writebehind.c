/* Write-behind for the extractor (writebehind.h). */
#include "autoconf.h"

#include "writebehind.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QCAP ((int)(sizeof ((struct rx_writebehind *)0)->q / sizeof ((struct rx_writebehind *)0)->q[0]))

void
rx_wb_init(struct rx_writebehind *wb, int64_t window, int64_t flush, int dirfd)
{
	memset(wb, 0, sizeof *wb);
	wb->window = window > 0 ? window : 0;
	wb->flush = flush > 0 ? flush : 0;
	wb->piece = wb->window / 4 > RX_WB_MIN_PIECE ? wb->window / 4 : RX_WB_MIN_PIECE;
	wb->dirfd = dirfd;
	wb->fd = -1;
	wx_flusher_init(&wb->flusher, dirfd, ".");
}

/* Closes every descriptor and turns the module off (after a failed hint). */
static void
drop_all(struct rx_writebehind *wb)
{
	for (; wb->qlen > 0; wb->qlen--, wb->qhead = (wb->qhead + 1) % QCAP)
		if (wb->q[wb->qhead].last)
			close(wb->q[wb->qhead].fd);
	if (wb->fd >= 0)
		close(wb->fd);
	wx_flusher_close(&wb->flusher);
	wb->fd = -1;
	wb->qfiles = 0;
	wb->inflight = 0;
	wb->window = 0;
}

static void
hint_failed(struct rx_writebehind *wb, const char *what)
{
	wx_warn("write-behind: %s: %s; the rest of this transfer is left to the kernel's "
	    "writeback", what, strerror(errno));
	drop_all(wb);
}

/* Waits for the oldest range, drops it from the page cache, and flushes the
 * disk's cache once `flush` bytes were waited for since the last time. */
static void
retire_oldest(struct rx_writebehind *wb)
{
	struct rx_wb_range *r = &wb->q[wb->qhead];
	wb->qhead = (wb->qhead + 1) % QCAP;
	wb->qlen--;
	wb->inflight -= r->len;
	int rc = 0;
	const char *what = "waiting for written data";
	if (r->len > 0) {
		rc = sync_file_range(r->fd, r->off, r->len, SYNC_FILE_RANGE_WAIT_BEFORE |
		    SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
		if (rc == 0) {
			rc = posix_fadvise(r->fd, r->off, r->len, POSIX_FADV_DONTNEED);
			if (rc != 0) {
				errno = rc;
				rc = -1;
			}
		}
		wb->unflushed += r->len;
		if (rc == 0 && wb->flush > 0 && wb->unflushed >= wb->flush &&
		    wx_flusher_due(&wb->flusher)) {
			what = "flushing written data to the disk";
			rc = wx_flusher_flush(&wb->flusher, r->fd);
			wb->unflushed = 0;
		}
	}
	if (r->last) {
		close(r->fd);
		wb->qfiles--;
	}
	if (rc < 0)
		hint_failed(wb, what);
}

/* Submits [submitted_to, written_to) of the current file; last: it is complete. */
static void
submit(struct rx_writebehind *wb, bool last)
{
	int64_t off = wb->submitted_to, len = wb->written_to - wb->submitted_to;
	/* Room first: never more than the window in flight, RX_WB_FILES - 1 files
	 * queued besides the current one, QCAP ranges. */
	while (wb->qlen > 0 && (wb->inflight + len > wb->window || wb->qlen == QCAP ||
	    (last && wb->qfiles >= RX_WB_FILES - 1)))
		retire_oldest(wb);
	if (wb->fd < 0)          /* a failed wait turned the module off */
		return;
	if (len > 0) {
		if (sync_file_range(wb->fd, off, len, SYNC_FILE_RANGE_WRITE) < 0) {
			hint_failed(wb, "starting the write of received data");
			return;
		}
		wb->bytes += len;
		wb->ranges++;
	} else if (last && wb->qlen == 0) {
		close(wb->fd);   /* nothing of it is in flight */
		wb->fd = -1;
		return;
	}
	if (len == 0 && !last)
		return;
	struct rx_wb_range *r = &wb->q[(wb->qhead + wb->qlen) % QCAP];
	*r = (struct rx_wb_range){ .fd = wb->fd, .off = off, .len = len, .last = last };
	wb->qlen++;
	wb->inflight += len;
	wb->submitted_to = wb->written_to;
	if (last) {
		wb->qfiles++;
		wb->fd = -1;
	}
}

void
rx_wb_file(struct rx_writebehind *wb, const char *path)
{
	if (wb->window == 0)
		return;
	if (wb->fd >= 0)
		rx_wb_file_done(wb);
	int fd = openat(wb->dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
		errno = EINVAL;
	}
	if (fd < 0) {
		wb->unopened++;
		wx_debug("write-behind: %s not opened (%s): left to the kernel's writeback", path,
		    strerror(errno));
		return;
	}
	wb->fd = fd;
	wb->submitted_to = wb->written_to = 0;
}

void
rx_wb_file_fd(struct rx_writebehind *wb, int fd)
{
	if (wb->window == 0)
		return;
	if (wb->fd >= 0)
		rx_wb_file_done(wb);
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup < 0) {
		wb->unopened++;
		wx_debug("write-behind: a file not duplicated (%s): left to the kernel's writeback",
		    strerror(errno));
		return;
	}
	wb->fd = dup;
	wb->submitted_to = wb->written_to = 0;
}

void
rx_wb_wrote(struct rx_writebehind *wb, int64_t off, int64_t size)
{
	if (wb->fd < 0 || size <= 0)
		return;
	if (off + size > wb->written_to)
		wb->written_to = off + size;
	if (wb->written_to - wb->submitted_to >= wb->piece)
		submit(wb, false);
}

void
rx_wb_file_done(struct rx_writebehind *wb)
{
	if (wb->fd >= 0)
		submit(wb, true);
}

void
rx_wb_end(struct rx_writebehind *wb, bool wait)
{
	if (wait) {
		rx_wb_file_done(wb);
		while (wb->qlen > 0 && wb->window > 0)
			retire_oldest(wb);
	}
	if (wb->bytes > 0 || wb->unopened > 0)
		wx_info("write-behind: %lld MiB written back while receiving, in %lld ranges, "
		    "%lld flushes (%lld through received files, %lld put off for pace); %lld files "
		    "left to the kernel's writeback", (long long)(wb->bytes >> 20),
		    (long long)wb->ranges, (long long)wb->flusher.flushes,
		    (long long)wb->flusher.via_written, (long long)wb->flusher.put_off,
		    (long long)wb->unopened);
	drop_all(wb);
}
