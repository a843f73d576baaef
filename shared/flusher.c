/* Paced disk cache flushes through an unnamed file (flusher.h). */
#include "autoconf.h"

#include "flusher.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

void
wx_flusher_init(struct wx_flusher *f, int dirfd, const char *dir)
{
	memset(f, 0, sizeof *f);
	f->dirfd = dirfd;
	f->dir = dir;
	f->fd = -1;
}

bool
wx_flusher_due(struct wx_flusher *f)
{
	if (f->due_ns == 0 || wx_mono_ns() >= f->due_ns)
		return true;
	f->put_off++;
	return false;
}

int
wx_flusher_flush(struct wx_flusher *f, int written_fd)
{
	if (!f->tried) {
		f->tried = true;
		f->fd = openat(f->dirfd, f->dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
		if (f->fd < 0)
			wx_debug("no unnamed file for disk cache flushes in %s (%s): each flush is "
			    "an fdatasync of a written file", f->dir, strerror(errno));
	}
	if (f->fd < 0)
		f->via_written++;
	f->flushes++;
	int64_t start = wx_mono_ns();
	int rc = fdatasync(f->fd >= 0 ? f->fd : written_fd);
	int64_t end = wx_mono_ns();
	f->due_ns = end + WX_FLUSH_SPACING * (end - start);
	return rc;
}

void
wx_flusher_close(struct wx_flusher *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}
