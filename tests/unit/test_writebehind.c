/*
 * The extractor's write-behind (handlers/destination/writebehind.c): what it
 * submits, that it never holds more than RX_WB_FILES descriptors however
 * many files pass, that it closes all of them at the end (with and without
 * waiting), that what it waited for left the page cache, and that with a
 * window of 0 it does nothing.
 */
#include "autoconf.h"

#include "tap.h"
#include "writebehind.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

static char buf[64 * 1024];

/* Every fdatasync of the program (flusher.c's included) comes here: those
 * of a file with a name (a received file) are counted, then all are done,
 * after slow_flush_ms of sleep (a disk slow to flush). */
static int named_flushes;
static long slow_flush_ms;
int
fdatasync(int fd)
{
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_nlink > 0)
		named_flushes++;
	if (slow_flush_ms > 0) {
		struct timespec ts = { slow_flush_ms / 1000, (slow_flush_ms % 1000) * 1000000 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return (int)syscall(SYS_fdatasync, fd);
}

static double
now_s(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		abort();
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int n = 0;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n - 3;   /* ".", ".." and the directory's own descriptor */
}

/* Writes size bytes (a hole before hole_at..hole_at+hole) as the extractor
 * does: create, then data in 64 KiB blocks, each reported. */
static int
write_file(struct rx_writebehind *wb, int dirfd, const char *name, int64_t size,
    int64_t hole_at, int64_t hole, int *max_fds)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	rx_wb_file(wb, name);
	for (int64_t off = 0; off < size; off += (int64_t)sizeof buf) {
		if (off == hole_at)
			off += hole;
		int64_t n = size - off < (int64_t)sizeof buf ? size - off : (int64_t)sizeof buf;
		if (n <= 0)
			break;
		if (pwrite(fd, buf, (size_t)n, off) != n) {
			close(fd);
			return -1;
		}
		rx_wb_wrote(wb, off, n);
		int now = open_fds();
		if (now > *max_fds)
			*max_fds = now;
	}
	close(fd);
	rx_wb_file_done(wb);
	return 0;
}

/* Bytes of name (beneath dirfd) in the page cache; -1 on error. */
static int64_t
cached(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return -1;
	long page = sysconf(_SC_PAGESIZE);
	size_t pages = ((size_t)st.st_size + (size_t)page - 1) / (size_t)page;
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	unsigned char *vec = malloc(pages);
	int64_t n = -1;
	if (vec != NULL && mincore(m, (size_t)st.st_size, vec) == 0) {
		n = 0;
		for (size_t i = 0; i < pages; i++)
			n += (vec[i] & 1) ? page : 0;
	}
	free(vec);
	munmap(m, (size_t)st.st_size);
	return n;
}

int
main(void)
{
	memset(buf, 0x5a, sizeof buf);
	char dir[] = "wb-test.XXXXXX";   /* in the build directory: a disk, usually */
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct statfs sf;
	bool tmpfs = dirfd >= 0 && fstatfs(dirfd, &sf) == 0 && sf.f_type == TMPFS_MAGIC;
	int base = open_fds();
	ok(dirfd >= 0 && base > 0, "a scratch directory");

	/* 40 small files, a 6 MiB one, a sparse one: window 1 MiB. */
	struct rx_writebehind wb;
	rx_wb_init(&wb, 1 << 20, 0, dirfd);
	int max_fds = base, rc = 0;
	char name[32];
	int64_t total = 0;
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof name, "small%d", i);
		rc |= write_file(&wb, dirfd, name, 100000, -1, 0, &max_fds);
		total += 100000;
	}
	rc |= write_file(&wb, dirfd, "big", 6 << 20, -1, 0, &max_fds);
	total += 6 << 20;
	rc |= write_file(&wb, dirfd, "sparse", 3 << 20, 1 << 20, 1 << 20, &max_fds);
	total += 3 << 20;   /* the hole is inside the submitted range */
	ok(rc == 0, "files written");
	/* + 1: the writer's own descriptor (libarchive's, in the extractor) */
	ok(max_fds - base <= RX_WB_FILES + 1, "at most RX_WB_FILES of its descriptors were "
	    "open at once: %d", max_fds - base - 1);
	ok(max_fds - base >= 3, "... and it did keep files in flight: %d", max_fds - base - 1);
	is_int(wb.bytes, total, "every byte written was submitted");
	ok(wb.ranges >= 40 + 6 * 4, "in pieces: %lld ranges", (long long)wb.ranges);
	is_int(wb.unopened, 0, "every file was opened");
	rx_wb_end(&wb, true);
	is_int(open_fds(), base, "after the end (waited): no descriptor left open");
	if (tmpfs) {
		printf("ok %d - # SKIP the scratch directory is on tmpfs (no writeback)\n", ++tap_count);
	} else {
		int64_t c = cached(dirfd, "big") + cached(dirfd, "sparse");
		for (int i = 0; i < 40; i++) {
			snprintf(name, sizeof name, "small%d", i);
			c += cached(dirfd, name);
		}
		/* What the kernel keeps in per-CPU batches after DONTNEED stays. */
		ok(c >= 0 && c <= total / 4, "what was waited for left the page cache: %lld of "
		    "%lld bytes cached", (long long)c, (long long)total);
	}

	/* A failure: the end without waiting closes everything too. */
	rx_wb_init(&wb, 1 << 20, 0, dirfd);
	max_fds = base;
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof name, "again%d", i);
		rc |= write_file(&wb, dirfd, name, 300000, -1, 0, &max_fds);
	}
	rx_wb_file(&wb, "big");
	rx_wb_wrote(&wb, 0, 65536);
	ok(rc == 0 && open_fds() > base, "files in flight");
	rx_wb_end(&wb, false);
	is_int(open_fds(), base, "after the end (not waited): no descriptor left open");

	/* A file that is not there, a directory: left to the kernel. */
	rx_wb_init(&wb, 1 << 20, 0, dirfd);
	rx_wb_file(&wb, "missing");
	rx_wb_wrote(&wb, 0, 65536);
	if (mkdirat(dirfd, "adir", 0755) == 0)
		rx_wb_file(&wb, "adir");
	is_int(wb.unopened, 2, "a missing file and a directory are not written behind");
	is_int(wb.bytes, 0, "... nothing submitted");
	rx_wb_end(&wb, true);
	is_int(open_fds(), base, "... nothing left open");

	/* Flushes: one per `flush` bytes waited for (give or take the piece that
	 * crossed the mark), none without; fewer only when some were put off
	 * (wx_flusher_due: this disk took long to flush, as the next case makes
	 * it). */
	rx_wb_init(&wb, 256 << 10, 256 << 10, dirfd);
	max_fds = base;
	total = 0;
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof name, "flushed%d", i);
		rc |= write_file(&wb, dirfd, name, 100000, -1, 0, &max_fds);
		total += 100000;
	}
	rc |= write_file(&wb, dirfd, "flushedbig", 4 << 20, -1, 0, &max_fds);
	total += 4 << 20;
	rx_wb_end(&wb, true);
	ok(rc == 0, "files written with write_behind_flush 256KiB");
	ok((wb.flusher.flushes >= total / ((256 << 10) + (64 << 10)) ||
	    (wb.flusher.flushes >= 1 && wb.flusher.put_off > 0)) &&
	    wb.flusher.flushes <= total / (256 << 10),
	    "a flush per 256 KiB written back: %lld for %lld bytes (%lld times put off)",
	    (long long)wb.flusher.flushes, (long long)total, (long long)wb.flusher.put_off);
	ok(named_flushes == 0 && wb.flusher.via_written == 0, "... each of an unnamed file (O_TMPFILE), "
	    "not of a received one (whose journal commit it would force): %d named", named_flushes);
	is_int(open_fds(), base, "... whose descriptor is closed at the end");

	/* A disk that takes 50 ms to flush: after each flush the next waits
	 * WX_FLUSH_SPACING times as long, so two begin at least 250 ms apart,
	 * however slowly the machine writes.  (Unpaced: 16 flushes, 0.8 s.) */
	slow_flush_ms = 50;
	rx_wb_init(&wb, 256 << 10, 256 << 10, dirfd);
	double t0 = now_s();
	rc |= write_file(&wb, dirfd, "slowflush", 4 << 20, -1, 0, &max_fds);
	rx_wb_end(&wb, true);
	double took = now_s() - t0;
	slow_flush_ms = 0;
	ok(rc == 0 && wb.flusher.flushes >= 1 && (double)wb.flusher.flushes <= 1 + took /
	    ((1 + WX_FLUSH_SPACING) * 0.050), "a disk slow to flush: flushes paced, %lld in %.2f s "
	    "(%lld times put off)", (long long)wb.flusher.flushes, took, (long long)wb.flusher.put_off);

	rx_wb_init(&wb, 256 << 10, 0, dirfd);
	rc |= write_file(&wb, dirfd, "unflushed", 4 << 20, -1, 0, &max_fds);
	rx_wb_end(&wb, true);
	ok(rc == 0 && wb.bytes == 4 << 20 && wb.flusher.flushes == 0,
	    "write_behind_flush 0: written back, never flushed");

	/* window 0: off. */
	rx_wb_init(&wb, 0, 0, dirfd);
	max_fds = base;
	rc |= write_file(&wb, dirfd, "off", 2 << 20, -1, 0, &max_fds);
	is_int(max_fds, base + 1, "write_behind 0: no file opened (only the writer's)");
	is_int(wb.bytes + wb.ranges + wb.unopened, 0, "... nothing submitted");
	rx_wb_end(&wb, true);

	/* clean up */
	DIR *d = fdopendir(dup(dirfd));
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			unlinkat(dirfd, de->d_name, strcmp(de->d_name, "adir") == 0 ? AT_REMOVEDIR : 0);
	if (d != NULL)
		closedir(d);
	close(dirfd);
	rmdir(dir);
	return tap_done();
}
