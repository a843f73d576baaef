/* wx_remove_tree on trees deeper than the open-file limit; the tree rules' path depth. */
#include "autoconf.h"

#include "archive_paths.h"
#include "fsutil.h"
#include "tap.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
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

	ok(wx_remove_tree(root) == 0 && wx_remove_tree(outside) == 0, "clean up");
	free(file);
	free(tree);
	free(victim);
	return tap_done();
}
