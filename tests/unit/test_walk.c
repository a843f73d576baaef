/* The no-follow directory walk, the size walk and the hard-link map. */
#include "autoconf.h"

#include "fsutil.h"
#include "tap.h"
#include "util.h"
#include "walk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[] = "/tmp/wx-test-walk.XXXXXX";
static char outside[] = "/tmp/wx-test-walk-outside.XXXXXX";

static void
put(const char *rel, const char *data)
{
	char *p = wx_path_join(root, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || wx_write_all(fd, data, strlen(data)) < 0)
		abort();
	close(fd);
	free(p);
}

static void
mk(const char *rel)
{
	char *p = wx_path_join(root, rel);
	if (wx_mkdirs(p, 0755) < 0)
		abort();
	free(p);
}

static void
link_to(const char *target, const char *rel)
{
	char *p = wx_path_join(root, rel);
	if (symlink(target, p) < 0)
		abort();
	free(p);
}

static int
cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "type path" lines of the whole walk, sorted, joined with '\n'. */
static char *
listing(const char *dir, int *rc_out)
{
	char err[256];
	struct walk *w = walk_open(dir, err, sizeof err);
	if (w == NULL) {
		*rc_out = -2;
		return xstrdup(err);
	}
	char **lines = NULL;
	size_t n = 0;
	struct walk_entry e;
	int rc;
	while ((rc = walk_next(w, &e)) > 0) {
		char t = S_ISDIR(e.st.st_mode) ? 'd' : S_ISLNK(e.st.st_mode) ? 'l' :
		    S_ISREG(e.st.st_mode) ? 'f' : S_ISFIFO(e.st.st_mode) ? 'p' : '?';
		lines = xrealloc(lines, (n + 1) * sizeof *lines);
		lines[n++] = xasprintf("%c %s", t, e.path);
		/* name is the last component, and dirfd + name reach the entry */
		struct stat st;
		if (strcmp(e.name, strrchr(e.path, '/') ? strrchr(e.path, '/') + 1 : e.path) != 0 ||
		    fstatat(e.dirfd, e.name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_ino != e.st.st_ino)
			lines[n - 1][0] = '!';
	}
	*rc_out = rc;
	if (rc < 0) {
		for (size_t i = 0; i < n; i++)
			free(lines[i]);
		free(lines);
		char *msg = xstrdup(walk_error(w));
		walk_close(w);
		return msg;
	}
	walk_close(w);
	qsort(lines, n, sizeof *lines, cmp_lines);
	size_t len = 1, off = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(lines[i]) + 1;
	char *out = xcalloc(1, len);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(lines[i]);
		memcpy(out + off, lines[i], l);
		out[off + l] = '\n';
		off += l + 1;
		free(lines[i]);
	}
	free(lines);
	return out;
}

int
main(void)
{
	if (mkdtemp(root) == NULL || mkdtemp(outside) == NULL)
		abort();
	mk("empty");
	mk("sub/deeper");
	put("a.txt", "hello");
	put("sub/b.txt", "0123456789");
	put("sub/deeper/c.txt", "");
	char *a = wx_path_join(root, "a.txt"), *h = wx_path_join(root, "sub/hard");
	if (link(a, h) < 0)
		abort();
	free(a);
	free(h);
	link_to(outside, "escape");           /* a symlink to a directory outside */
	link_to("sub", "sub-link");           /* and one inside */
	char *secret = wx_path_join(outside, "secret");
	int fd = open(secret, O_WRONLY | O_CREAT, 0600);
	close(fd);
	free(secret);
	char *fifo = wx_path_join(root, "sub/fifo");
	if (mkfifo(fifo, 0600) < 0)
		abort();
	free(fifo);

	int rc;
	char *got = listing(root, &rc);
	is_int(rc, 0, "the walk ends cleanly");
	is_str(got,
	    "d empty\n"
	    "d sub\n"
	    "d sub/deeper\n"
	    "f a.txt\n"
	    "f sub/b.txt\n"
	    "f sub/deeper/c.txt\n"
	    "f sub/hard\n"
	    "l escape\n"
	    "l sub-link\n"
	    "p sub/fifo\n",
	    "every entry once, relative names, links reported as links and never entered");
	free(got);

	struct walk_totals wt;
	char err[256];
	is_int(walk_measure(root, &wt, NULL, NULL, err, sizeof err), 0, "size walk");
	is_int(wt.bytes, 15, "regular file bytes, the hard-linked inode counted once");
	is_int(wt.entries, 9, "archivable entries (the FIFO is not)");
	is_int(wt.symlinks, 2, "of which 2 symlinks");
	is_int(wt.link_bytes, 5, "the hard link's further name: its 5 bytes, apart");

	ok(walk_archivable(S_IFDIR) && walk_archivable(S_IFREG) && walk_archivable(S_IFLNK),
	    "dirs, files and links are archivable");
	ok(!walk_archivable(S_IFIFO) && !walk_archivable(S_IFSOCK) && !walk_archivable(S_IFCHR),
	    "FIFOs, sockets and devices are not");

	/* Too deep: a clear error naming the directory. */
	char *deep = xstrdup("deep");
	for (int i = 0; i < WALK_MAX_DEPTH + 1; i++) {
		char *next = xasprintf("%s/d", deep);
		free(deep);
		deep = next;
	}
	mk(deep);
	free(deep);
	got = listing(root, &rc);
	is_int(rc, -1, "a tree deeper than WALK_MAX_DEPTH is an error");
	has_str(got, "nested more than", "... saying so");
	free(got);

	got = listing("/nonexistent-wx-dir", &rc);
	is_int(rc, -2, "a missing root is an error at open");
	has_str(got, "/nonexistent-wx-dir", "... naming it");
	free(got);

	struct inode_map *m = inode_map_new();
	ok(inode_map_add(m, 1, 42, "first") == NULL, "a new inode is stored");
	is_str(inode_map_add(m, 1, 42, "second"), "first", "the same inode gives the first path");
	ok(inode_map_add(m, 2, 42, "other-dev") == NULL, "the device is part of the key");
	for (int i = 0; i < 10000; i++) {
		char p[32];
		snprintf(p, sizeof p, "p%d", i);
		inode_map_add(m, 7, (ino_t)i, p);
	}
	is_str(inode_map_add(m, 7, 9999, "x"), "p9999", "lookups survive growth");
	is_str(inode_map_add(m, 1, 42, "x"), "first", "... also of early entries");
	inode_map_free(m);

	wx_remove_tree(root);
	wx_remove_tree(outside);
	return tap_done();
}
