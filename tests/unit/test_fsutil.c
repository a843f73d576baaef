/* wx_remove_tree on trees deeper than the open-file limit, and its removal of
 * large files in steps (never through another link); wx_move_file within and
 * across file systems; the tree rules' path depth. */
#include "autoconf.h"

#include "archive_paths.h"
#include "fsutil.h"
#include "tap.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LEVELS 3000

static char root[] = "/tmp/wx-test-fsutil.XXXXXX";
static char outside[] = "/tmp/wx-test-fsutil-outside.XXXXXX";

/* LEVELS nested directories under dir/tree, a file and a symlink to outside
 * every 500 levels, a read-only non-empty directory at the bottom; never
 * more than two of them open.  0 or -1. */
static int
make_deep(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || mkdirat(fd, "tree", 0755) < 0)
		return -1;
	const char *name = "tree";
	for (int i = 0; i <= LEVELS; i++) {
		int next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return -1;
		fd = next;
		name = "d";
		if (i == LEVELS)
			break;
		if (i % 500 == 0) {
			int f = openat(fd, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
			if (f < 0 || symlinkat(outside, fd, "l") < 0)
				return -1;
			close(f);
		}
		if (mkdirat(fd, "d", 0755) < 0)
			return -1;
	}
	int f = openat(fd, "bottom", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (f < 0 || fchmod(fd, 0500) < 0)
		return -1;
	close(f);
	close(fd);
	return 0;
}

/* A file at path with text, mode 0640 and mtime 1 000 000 000; 0 or -1. */
static int
make_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	const struct timespec t[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	size_t n = strlen(text);
	int rc = write(fd, text, n) == (ssize_t)n && fchmod(fd, 0640) == 0 &&
	    futimens(fd, t) == 0 ? 0 : -1;
	return close(fd) == 0 ? rc : -1;
}

/* from moved to to: to has the text, mode and mtime, from is gone. */
static void
check_moved(const char *from, const char *to, const char *text, const char *what)
{
	struct stat st;
	char buf[64] = "";
	int fd = open(to, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	ok(n == (ssize_t)strlen(text) && memcmp(buf, text, strlen(text)) == 0, "%s: the content arrives", what);
	ok(stat(to, &st) == 0 && (st.st_mode & 07777) == 0640 && st.st_mtim.tv_sec == 1000000000,
	    "%s: mode and mtime kept", what);
	ok(lstat(from, &st) < 0 && errno == ENOENT, "%s: the original is gone", what);
}

/* wx_move_file in one directory, and to /dev/shm when that is another file
 * system (the EXDEV copy). */
static void
test_move(void)
{
	char *from = wx_path_join(root, "backup.tar.gz");
	char *to = wx_path_join(root, "moved.tar.gz");
	ok(make_file(from, "backup bytes") == 0, "a file to move");
	is_int(wx_move_file(from, to), 0, "same file system: moved");
	check_moved(from, to, "backup bytes", "same file system");

	char shm[] = "/dev/shm/wx-test-fsutil.XXXXXX";
	struct stat a, b;
	if (mkdtemp(shm) == NULL || stat(root, &a) < 0 || stat(shm, &b) < 0 || a.st_dev == b.st_dev) {
		ok(0, "a second file system at /dev/shm (tmpfs) for the EXDEV copy");
		free(from);
		free(to);
		return;
	}
	char *far = wx_path_join(shm, "far.tar.gz");
	ok(make_file(from, "across the disks") == 0 && make_file(far, "old") == 0,
	    "a file to move, and an old one at the target");
	is_int(wx_move_file(from, far), 0, "another file system: copied across, replacing the old one");
	check_moved(from, far, "across the disks", "another file system");
	char *copy = wx_path_join(shm, ".far.tar.gz.wingxfer-copy");
	struct stat st;
	ok(lstat(copy, &st) < 0, "no temporary copy is left");
	char *missing = wx_path_join(root, "missing");
	ok(wx_move_file(missing, far) < 0 && errno == ENOENT, "a missing source: ENOENT, target untouched");
	ok(stat(far, &st) == 0 && st.st_size == (off_t)strlen("across the disks"), "the target is intact");
	ok(wx_remove_tree(shm) == 0, "clean up /dev/shm");
	free(missing);
	free(copy);
	free(far);
	free(from);
	free(to);
}

/* Writes size bytes of 'x' to path; 0 or -1. */
static int
put_file(const char *path, off_t size)
{
	static char block[64 * 1024];
	memset(block, 'x', sizeof block);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	for (off_t done = 0; done < size; done += (off_t)sizeof block)
		if (write(fd, block, sizeof block) != (ssize_t)sizeof block) {
			close(fd);
			return -1;
		}
	return close(fd);
}

/* Every ftruncate of the program (fsutil.c's included) comes here: counted,
 * then done, taking at least slow_truncate_ns when that is set (a disk
 * whose discards are slow); the first MAX_TIMED calls' start and end times
 * are kept. */
#define MAX_TIMED 64
static int truncations;
static off_t truncated_to_min = -1;
static int64_t slow_truncate_ns;
static int64_t truncate_start[MAX_TIMED], truncate_end[MAX_TIMED];
int
ftruncate(int fd, off_t length)
{
	int64_t t0 = wx_mono_ns();
	if (truncations < MAX_TIMED)
		truncate_start[truncations] = t0;
	if (truncated_to_min < 0 || length < truncated_to_min)
		truncated_to_min = length;
	int rc = (int)syscall(SYS_ftruncate, fd, length);
	if (slow_truncate_ns > 0) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)slow_truncate_ns };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	if (truncations < MAX_TIMED)
		truncate_end[truncations] = wx_mono_ns();
	truncations++;
	return rc;
}

/* Steps that wait (as for a slow discard) are paced: after a step that took
 * d, the next starts no sooner than WX_SHRINK_SPACING times d later (at
 * most WX_SHRINK_PAUSE_MAX_NS).  Sleeps only make the gaps longer, so a
 * busy machine cannot fail this. */
static void
test_shrink_paced(void)
{
	char *slow = wx_path_join(root, "slow");
	off_t size = (off_t)4 << 20;
	int steps = (int)(size / WX_SHRINK_STEP);
	int rc = put_file(slow, size);
	truncations = 0;
	slow_truncate_ns = 5 * 1000 * 1000;
	int64_t t0 = wx_mono_ns();
	ok(rc == 0 && wx_remove_tree(slow) == 0, "a 4 MiB file whose truncations take 5 ms each "
	    "is removed");
	int64_t took = wx_mono_ns() - t0;
	slow_truncate_ns = 0;
	is_int(truncations, steps, "in %d steps", steps);
	int short_gaps = 0;
	int64_t min_gap = INT64_MAX;
	for (int i = 0; i + 1 < truncations && i + 1 < MAX_TIMED; i++) {
		int64_t d = truncate_end[i] - truncate_start[i];
		int64_t want = d * WX_SHRINK_SPACING < WX_SHRINK_PAUSE_MAX_NS ?
		    d * WX_SHRINK_SPACING : WX_SHRINK_PAUSE_MAX_NS;
		int64_t gap = truncate_start[i + 1] - truncate_end[i];
		if (gap < want)
			short_gaps++;
		if (gap < min_gap)
			min_gap = gap;
	}
	is_int(short_gaps, 0, "each step started at least %d times the previous one's time after "
	    "it (shortest gap %.1f ms, whole removal %.0f ms)", WX_SHRINK_SPACING,
	    (double)min_gap / 1e6, (double)took / 1e6);
	free(slow);
}

/* A 4 MiB file goes in steps of WX_SHRINK_STEP; one with a second link
 * outside the tree is unlinked whole, its other link keeping every byte; a
 * small one is unlinked at once. */
static void
test_shrink(void)
{
	char *dir = wx_path_join(root, "spool");
	char *big = wx_path_join(dir, "big"), *linked = wx_path_join(dir, "linked");
	char *small = wx_path_join(dir, "small"), *other = wx_path_join(outside, "other-link");
	off_t size = (off_t)4 << 20;
	ok(mkdir(dir, 0700) == 0 && put_file(big, size) == 0 && put_file(linked, size) == 0 &&
	    put_file(small, 2 * WX_SHRINK_STEP) == 0 && link(linked, other) == 0,
	    "a spool with a 4 MiB file, a 4 MiB file linked from outside, a 1 MiB file");
	truncations = 0;
	ok(wx_remove_tree(dir) == 0, "wx_remove_tree removes it");
	is_int(truncations, (int)(size / WX_SHRINK_STEP), "only the 4 MiB file was truncated, in "
	    "%d steps, before its unlink", (int)(size / WX_SHRINK_STEP));
	is_int((int)truncated_to_min, 0, "... down to 0");
	struct stat st;
	ok(stat(other, &st) == 0 && st.st_size == size && st.st_nlink == 1,
	    "the file with another link kept all of its bytes there");
	char *lone = wx_path_join(root, "lone");
	int rc = put_file(lone, size);
	truncations = 0;
	ok(rc == 0 && wx_remove_tree(lone) == 0 && truncations == (int)(size / WX_SHRINK_STEP),
	    "a large file given as the path itself goes in steps too");
	free(lone);
	free(dir);
	free(big);
	free(linked);
	free(small);
	free(other);
}

int
main(void)
{
	if (mkdtemp(root) == NULL || mkdtemp(outside) == NULL)
		abort();
	char *victim = wx_path_join(outside, "victim");
	int vf = open(victim, O_WRONLY | O_CREAT, 0644);
	if (vf < 0)
		abort();
	close(vf);

	ok(make_deep(root) == 0, "a tree %d levels deep is made", LEVELS);
	char *tree = wx_path_join(root, "tree");
	struct rlimit old, low;
	ok(getrlimit(RLIMIT_NOFILE, &old) == 0, "getrlimit");
	low = old;
	low.rlim_cur = 32;
	ok(setrlimit(RLIMIT_NOFILE, &low) == 0, "the open-file limit is lowered to 32");
	int rc = wx_remove_tree(tree);
	int e = errno;
	ok(setrlimit(RLIMIT_NOFILE, &old) == 0, "and restored");
	is_int(rc, 0, "wx_remove_tree removes it with 32 open files allowed");
	if (rc != 0)
		printf("#   errno %d (%s)\n", e, strerror(e));
	struct stat st;
	ok(lstat(tree, &st) < 0 && errno == ENOENT, "the tree is gone");
	ok(lstat(victim, &st) == 0 && S_ISREG(st.st_mode), "the symlinks' target is untouched");
	is_int(wx_remove_tree(tree), 0, "a missing path is success");
	char *file = wx_path_join(root, "file");
	vf = open(file, O_WRONLY | O_CREAT, 0644);
	if (vf < 0)
		abort();
	close(vf);
	ok(wx_remove_tree(file) == 0 && lstat(file, &st) < 0, "a plain file is removed");

	is_int(wx_entry_path_depth("."), 0, "depth of . is 0 (the root)");
	is_int(wx_entry_path_depth("./"), 0, "depth of ./ is 0");
	is_int(wx_entry_path_depth(".//./"), 0, "depth of .//./ is 0");
	is_int(wx_entry_path_depth("a"), 1, "depth of a is 1");
	is_int(wx_entry_path_depth("./a/"), 1, "depth of ./a/ is 1");
	is_int(wx_entry_path_depth("a//b/./c"), 3, "depth of a//b/./c is 3");
	is_int(wx_entry_path_depth(".a/..b/c."), 3, "names starting or ending with dots count");

	test_move();
	test_shrink();
	test_shrink_paced();
	ok(wx_remove_tree(root) == 0 && wx_remove_tree(outside) == 0, "clean up");
	free(file);
	free(tree);
	free(victim);
	return tap_done();
}
