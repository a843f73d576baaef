/*
 * The archiver's read-ahead: files it is about to open are read into the
 * page cache before it opens them, no further than the lead ahead of it,
 * and the thread stops promptly wherever it is (blocked at the lead, or
 * done).  Residency is checked with mincore after the test's files were
 * dropped from the cache (fsync + POSIX_FADV_DONTNEED), waiting with a
 * generous bound for the asynchronous reads.
 */
#include "autoconf.h"

#include "prefetch.h"
#include "fsutil.h"
#include "tap.h"
#include "util.h"
#include "walk.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NFILES (PREFETCH_LEAD_FILES + 44)
#define FILE_BYTES 8192

static char root[] = "/tmp/wx-test-prefetch.XXXXXX";
static char order[NFILES][64];	/* the files in walk order */

/* Drops path's pages from the page cache; true if none is resident after. */
static bool
evict(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	(void)fdatasync(fd);
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return true;
}

/* Number of path's first FILE_BYTES pages in the page cache (mincore). */
static int
resident(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	void *m = mmap(NULL, FILE_BYTES, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	long page = sysconf(_SC_PAGESIZE);
	unsigned char vec[FILE_BYTES / 4096 + 1];
	int n = 0;
	if (mincore(m, FILE_BYTES, vec) == 0)
		for (long i = 0; i < (FILE_BYTES + page - 1) / page; i++)
			n += vec[i] & 1;
	munmap(m, FILE_BYTES);
	return n;
}

static char *
path_of(int i)
{
	return wx_path_join(root, order[i]);
}

/* Waits up to 60 s for file i to be resident. */
static bool
wait_resident(int i)
{
	char *p = path_of(i);
	bool ok = false;
	for (int t = 0; t < 6000 && !ok; t++) {
		ok = resident(p) > 0;
		if (!ok) {
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	free(p);
	return ok;
}

int
main(void)
{
	if (mkdtemp(root) == NULL)
		return 1;
	unsigned char data[FILE_BYTES];
	memset(data, 'x', sizeof data);
	for (int i = 0; i < NFILES; i++) {
		char name[64], *p;
		snprintf(name, sizeof name, "f%04d", i);
		p = wx_path_join(root, name);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0 || wx_write_all(fd, data, sizeof data) < 0 || close(fd) < 0)
			return 1;
		free(p);
	}
	char err[256];
	struct walk *w = walk_open(root, err, sizeof err);
	struct walk_entry e;
	int n = 0;
	while (w != NULL && walk_next(w, &e) == 1)
		if (S_ISREG(e.st.st_mode) && n < NFILES)
			snprintf(order[n++], sizeof order[0], "%s", e.path);
	walk_close(w);
	is_int(n, NFILES, "the walk sees the %d files", NFILES);

	int evicted = 0;
	for (int i = 0; i < NFILES; i++) {
		char *p = path_of(i);
		if (evict(p) && resident(p) == 0)
			evicted++;
		free(p);
	}
	if (evicted < NFILES - 2) {
		/* tmpfs and the like keep everything resident: nothing to observe. */
		ok(1, "# SKIP the page cache of %s cannot be dropped (%d of %d files)", root, evicted, NFILES);
	} else {
		struct prefetch *pf = prefetch_start(root);
		ok(pf != NULL, "the read-ahead thread starts");
		ok(wait_resident(0), "the first file is read before the archiver opens it");
		ok(wait_resident(PREFETCH_LEAD_FILES - 1), "... and the last within the lead");
		/* The thread is now held at the lead: the next file stays on disk. */
		struct timespec ts = { 0, 300 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		char *p = path_of(PREFETCH_LEAD_FILES + 10);
		is_int(resident(p), 0, "a file past the lead is not read while the archiver stays behind");
		free(p);
		for (int i = 0; i < 20; i++)
			prefetch_opened(pf, FILE_BYTES);
		ok(wait_resident(PREFETCH_LEAD_FILES + 10), "once the archiver moves on, the read-ahead follows");
		prefetch_stop(pf);
		ok(1, "stopped while held at the lead");
	}
	struct prefetch *pf = prefetch_start(root);
	for (int i = 0; i < NFILES; i++)
		prefetch_opened(pf, FILE_BYTES);
	prefetch_stop(pf);
	ok(pf != NULL, "stopped after (or while) walking a tree the archiver passed");
	ok(prefetch_start("/nonexistent/wx-prefetch") == NULL, "a root that cannot be opened: NULL");
	prefetch_stop(NULL);

	for (int i = 0; i < NFILES; i++) {
		char *p = path_of(i);
		unlink(p);
		free(p);
	}
	rmdir(root);
	return tap_done();
}
