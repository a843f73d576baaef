/* The pre-sync engine: scan -> mutate the tree in every way a running game
 * server (or its admin) can -> scan -> delta -> apply to the staged copy ->
 * the copy equals the tree, checked by an independent walker; the racy
 * rule; block and tail deltas; crash and re-apply; hostile manifests, op
 * lists and paths through symlinks refused. */
#include "autoconf.h"

#include "fsutil.h"
#include "presync_apply.h"
#include "presync_blocks.h"
#include "presync_delta.h"
#include "presync_manifest.h"
#include "presync_verify.h"
#include "tap.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <signal.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char root[] = "/tmp/wx-test-presync.XXXXXX";
static char src[512], dst[512], work[512], outside[512];
static int srcfd = -1, dstfd = -1, workfd = -1;

/* --- tree helpers (plain path-based calls: the test's own tools) --------- */

static char *
at(const char *base, const char *rel)
{
	static char bufs[4][1024];
	static int n;
	char *b = bufs[n++ % 4];
	snprintf(b, sizeof bufs[0], "%s/%s", base, rel);
	return b;
}

static int
put(const char *rel, const void *data, size_t len)
{
	int fd = open(at(src, rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	int rc = wx_write_all(fd, data, len);
	return close(fd) == 0 ? rc : -1;
}

static int
put_text(const char *rel, const char *text)
{
	return put(rel, text, strlen(text));
}

static int
write_at(const char *rel, int64_t off, const void *data, size_t len)
{
	int fd = open(at(src, rel), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = pwrite(fd, data, len, (off_t)off) == (ssize_t)len ? 0 : -1;
	return close(fd) == 0 ? rc : -1;
}

static int
append(const char *rel, const void *data, size_t len)
{
	int fd = open(at(src, rel), O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = wx_write_all(fd, data, len);
	return close(fd) == 0 ? rc : -1;
}

static int
set_mtime(const char *path, time_t sec, long nsec)
{
	struct timespec t[2] = { { sec, nsec }, { sec, nsec } };
	return utimensat(AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW);
}

static unsigned char *
random_bytes(size_t n)
{
	unsigned char *p = xmalloc(n);
	uint64_t x = 0x9e3779b97f4a7c15ULL ^ n;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
	return p;
}

/* --- the independent comparison ------------------------------------------ */

struct ino_map {
	ino_t a[512], b[512];
	size_t n;
};

static int
same_content(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int same = fa && fb;
	while (same) {
		int ca = fgetc(fa), cb = fgetc(fb);
		if (ca != cb)
			same = 0;
		if (ca == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

/* Whether trees a and b are equal: names, types, modes, sizes, mtimes (ns),
 * symlink targets, content, link counts and which files share an inode.
 * The first difference goes to why. */
static int
trees_equal(const char *a, const char *b, struct ino_map *links, char *why, size_t whysize)
{
	struct stat sa, sb;
	if (lstat(a, &sa) < 0 || lstat(b, &sb) < 0)
		return snprintf(why, whysize, "%s: missing on one side", b), 0;
	if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT))
		return snprintf(why, whysize, "%s: type", b), 0;
	if (!S_ISLNK(sa.st_mode) && (sa.st_mode & 07777) != (sb.st_mode & 07777))
		return snprintf(why, whysize, "%s: mode %o vs %o", b, sa.st_mode & 07777, sb.st_mode & 07777), 0;
	if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
		return snprintf(why, whysize, "%s: mtime", b), 0;
	if (S_ISLNK(sa.st_mode)) {
		char ta[4096], tb[4096];
		ssize_t na = readlink(a, ta, sizeof ta), nb = readlink(b, tb, sizeof tb);
		if (na < 0 || na != nb || memcmp(ta, tb, (size_t)na) != 0)
			return snprintf(why, whysize, "%s: symlink target", b), 0;
		return 1;
	}
	if (S_ISREG(sa.st_mode)) {
		if (sa.st_size != sb.st_size || !same_content(a, b))
			return snprintf(why, whysize, "%s: content", b), 0;
		if (sa.st_nlink != sb.st_nlink)
			return snprintf(why, whysize, "%s: link count %ju vs %ju", b,
			    (uintmax_t)sa.st_nlink, (uintmax_t)sb.st_nlink), 0;
		if (sa.st_nlink > 1) {
			for (size_t i = 0; i < links->n; i++)
				if ((links->a[i] == sa.st_ino) != (links->b[i] == sb.st_ino))
					return snprintf(why, whysize, "%s: hard links differ", b), 0;
			if (links->n < 512) {
				links->a[links->n] = sa.st_ino;
				links->b[links->n++] = sb.st_ino;
			}
		}
		return 1;
	}
	DIR *da = opendir(a), *db = opendir(b);
	size_t ca = 0, cb = 0;
	int eq = da && db;
	struct dirent *de;
	while (eq && (de = readdir(da)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		ca++;
		char pa[2048], pb[2048];
		snprintf(pa, sizeof pa, "%s/%s", a, de->d_name);
		snprintf(pb, sizeof pb, "%s/%s", b, de->d_name);
		eq = trees_equal(pa, pb, links, why, whysize);
	}
	while (eq && (de = readdir(db)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			cb++;
	if (eq && ca != cb) {
		snprintf(why, whysize, "%s: %zu entries vs %zu", b, ca, cb);
		eq = 0;
	}
	if (da)
		closedir(da);
	if (db)
		closedir(db);
	return eq;
}

static void
check_equal(const char *what)
{
	char why[2048] = "";
	struct ino_map links = { .n = 0 };
	int eq = trees_equal(src, dst, &links, why, sizeof why);
	ok(eq, "%s: the staged copy equals the tree", what);
	if (!eq)
		printf("#   %s\n", why);
}

/* --- one round, as both nodes run it --------------------------------------- */

struct mem {
	struct wx_ps_buf buf;
	size_t pos;
};

/* Set by a test: called once, at the first byte emitted (a write by the
 * running server between the plan and the send). */
static void (*during_send)(void);

/* Set by a test: called once, right after the scan. */
static void (*after_scan)(void);

static int
mem_emit(void *ctx, const void *p, size_t n)
{
	if (during_send) {
		void (*f)(void) = during_send;
		during_send = NULL;
		f();
	}
	wx_ps_buf_add(&((struct mem *)ctx)->buf, p, n);
	return 0;
}

static int
mem_read(void *ctx, void *p, size_t n)
{
	struct mem *m = ctx;
	if (n > m->buf.len - m->pos)
		return -1;
	memcpy(p, m->buf.p + m->pos, n);
	m->pos += n;
	return 0;
}

struct round_result {
	int rc;
	int64_t data;          /* delta data bytes */
	size_t ops[8];         /* by kind */
	char text[1 << 16];    /* the op list as sent (truncated) */
};

static struct wx_ps_manifest prev;   /* the sender's manifest of the last round */
static int64_t round_no;

/*
 * Scan (start: NULL for now), compare with prev, plan, send into memory,
 * op list and manifest through their text forms, apply to dst, verify
 * dst against the parsed manifest (hashing what this round wrote).
 */
static void
run_round(const struct timespec *start, struct round_result *res)
{
	char err[1024] = "";
	struct wx_ps_manifest cur, parsed = { 0 };
	struct wx_ps_delta d = { 0 }, rd = { 0 };
	struct mem data = { { 0 }, 0 };
	char *ops = NULL, *man = NULL;
	size_t opslen = 0, manlen = 0;
	bool *hash = NULL;
	memset(res, 0, sizeof *res);
	res->rc = -1;
	round_no++;
	if (wx_ps_scan(srcfd, start, &cur, err, sizeof err) < 0) {
		printf("# scan: %s\n", err);
		return;
	}
	if (after_scan) {
		after_scan();
		after_scan = NULL;
	}
	wx_ps_compare(&prev, &cur, &d);
	if (wx_ps_delta_plan(srcfd, &prev, &cur, &d, err, sizeof err) < 0) {
		printf("# plan: %s\n", err);
		goto out;
	}
	res->data = wx_ps_delta_data_bytes(&d);
	if (wx_ps_delta_send(srcfd, &cur, &d, mem_emit, &data, err, sizeof err) < 0) {
		printf("# send: %s\n", err);
		goto out;
	}
	if ((int64_t)data.buf.len != res->data) {
		printf("# sent %zu bytes, planned %lld\n", data.buf.len, (long long)res->data);
		goto out;
	}
	ops = wx_ps_delta_format(&d, &opslen);
	man = wx_ps_manifest_format(&cur, &manlen);
	wx_strlcpy(res->text, ops, sizeof res->text);
	if (wx_ps_delta_parse(ops, opslen, &rd, err, sizeof err) < 0 ||
	    wx_ps_manifest_parse(man, manlen, WX_PS_MAX_ENTRIES, &parsed, err, sizeof err) < 0) {
		printf("# parse: %s\n", err);
		goto out;
	}
	for (size_t k = 0; k < rd.n; k++)
		res->ops[rd.op[k].kind]++;
	if (wx_ps_apply(dstfd, workfd, round_no, &rd, mem_read, &data, err, sizeof err) < 0) {
		printf("# apply: %s\n", err);
		goto out;
	}
	if (data.pos != data.buf.len) {
		printf("# apply read %zu of %zu data bytes\n", data.pos, data.buf.len);
		goto out;
	}
	hash = xcalloc(parsed.n ? parsed.n : 1, 1);
	wx_ps_delta_mark(&rd, &parsed, hash);
	if (wx_ps_verify(dstfd, &parsed, hash, false, err, sizeof err) < 0) {
		printf("# verify: %s\n", err);
		goto out;
	}
	res->rc = 0;
out:
	wx_ps_manifest_free(&prev);
	prev = cur;
	wx_ps_manifest_free(&parsed);
	wx_ps_delta_free(&d);
	wx_ps_delta_free(&rd);
	free(data.buf.p);
	free(ops);
	free(man);
	free(hash);
}

static bool
ops_have(const struct round_result *r, const char *line)
{
	const char *p = r->text;
	size_t n = strlen(line);
	while ((p = strstr(p, line)) != NULL) {
		if ((p == r->text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return true;
		p++;
	}
	return false;
}

/* --- the scenario ---------------------------------------------------------- */

#define BIG (4 * 1024 * 1024)
#define LOG (200 * 1024)

static void
build_initial_tree(void)
{
	unsigned char *big = random_bytes(BIG);
	unsigned char *log = random_bytes(LOG);
	int rc = 0;
	rc |= mkdir(at(src, "a"), 0755) | mkdir(at(src, "a/sub"), 0750);
	rc |= put_text("a/keep.txt", "keep\n") | put_text("a/rename-me.txt", "a file that moves\n");
	rc |= put_text("a/sub/deep.txt", "deep\n");
	rc |= mkdir(at(src, "world"), 0755) | mkdir(at(src, "logs"), 0755);
	rc |= put("world/r.0.0.mca", big, BIG);
	rc |= put("logs/latest.log", log, LOG);
	rc |= put_text("mode.txt", "mode\n") | put_text("mtime.txt", "mtime\n");
	rc |= put_text("swap-x", "xxxx\n") | put_text("swap-y", "yy\n");
	rc |= put_text("t_file2dir", "file\n") | mkdir(at(src, "t_dir2file"), 0755);
	rc |= put_text("t_dir2file/child", "child\n") | symlink("a/keep.txt", at(src, "t_link2file"));
	rc |= put_text("t_file2link", "soon a link\n") | put_text("hard1", "shared content\n");
	rc |= link(at(src, "hard1"), at(src, "hard2")) | mkdir(at(src, "empty"), 0700);
	rc |= symlink("a/keep.txt", at(src, "link")) | symlink("../../../etc/passwd", at(src, "dangling"));
	rc |= mkdir(at(src, "deldir"), 0755) | mkdir(at(src, "deldir/x"), 0755);
	rc |= put_text("deldir/x/f", "f\n") | put_text("deldir/g", "g\n");
	rc |= mkdir(at(src, "ro"), 0755) | put_text("ro/inside", "in a read-only dir\n");
	rc |= chmod(at(src, "ro"), 0555);
	rc |= put_text("we ird\nname%", "odd name\n") | put_text("racy.txt", "racy-1\n");
	rc |= set_mtime(at(src, "mtime.txt"), 1500000000, 123456789);
	ok(rc == 0, "initial tree built");
	free(big);
	free(log);
}

static void
test_rounds(void)
{
	struct round_result *r = xmalloc(sizeof *r);
	build_initial_tree();

	run_round(NULL, r);
	is_int(r->rc, 0, "round 1 (everything new) applies and verifies");
	ok(r->data >= BIG + LOG, "round 1 sends all the data (%lld bytes)", (long long)r->data);
	check_equal("round 1");

	/* Round 2: every kind of change. */
	int rc = 0;
	unsigned char chunk[8192];
	memset(chunk, 0xAB, sizeof chunk);
	rc |= mkdir(at(src, "b"), 0755);
	rc |= rename(at(src, "a/rename-me.txt"), at(src, "b/renamed.txt"));
	rc |= rename(at(src, "swap-x"), at(src, "swap-tmp")) | rename(at(src, "swap-y"), at(src, "swap-x"));
	rc |= rename(at(src, "swap-tmp"), at(src, "swap-y"));
	rc |= unlink(at(src, "t_file2dir")) | mkdir(at(src, "t_file2dir"), 0711);
	rc |= put_text("t_file2dir/inner", "now a dir\n");
	rc |= wx_remove_tree(at(src, "t_dir2file")) | put_text("t_dir2file", "now a file\n");
	rc |= unlink(at(src, "t_link2file")) | put_text("t_link2file", "was a link\n");
	rc |= unlink(at(src, "t_file2link")) | symlink("hard1", at(src, "t_file2link"));
	rc |= link(at(src, "hard1"), at(src, "hard3"));
	rc |= put_text("newh1", "new pair\n") | link(at(src, "newh1"), at(src, "newh2"));
	rc |= chmod(at(src, "mode.txt"), 0600);
	rc |= set_mtime(at(src, "mtime.txt"), 1600000000, 987654321);
	rc |= append("logs/latest.log", "appended line\n", 14);
	rc |= write_at("world/r.0.0.mca", 1024 * 1024 + 100, chunk, 4096);
	rc |= write_at("world/r.0.0.mca", 3 * 1024 * 1024, chunk, sizeof chunk);
	rc |= wx_remove_tree(at(src, "deldir"));
	rc |= unlink(at(src, "a/keep.txt")) | mkdir(at(src, "empty2"), 0755);
	rc |= symlink("nowhere", at(src, "newlink"));
	rc |= chmod(at(src, "ro"), 0755) | put_text("ro/added", "added\n") | chmod(at(src, "ro"), 0555);
	rc |= put_text("racy.txt", "racy-2\n");
	ok(rc == 0, "round 2 changes made");
	/* racy.txt changes "during the scan": its mtime is not older than the
	 * scan start. */
	struct timespec start;
	clock_gettime(CLOCK_REALTIME_COARSE, &start);
	rc = set_mtime(at(src, "racy.txt"), start.tv_sec, start.tv_nsec);
	ok(rc == 0, "racy.txt stamped with the scan start");

	run_round(&start, r);
	is_int(r->rc, 0, "round 2 applies and verifies");
	check_equal("round 2");
	ok(ops_have(r, "rename b/renamed.txt a/rename-me.txt"), "a moved file is a rename");
	ok(ops_have(r, "rename swap-x swap-y") && ops_have(r, "rename swap-y swap-x"),
	    "two swapped files are two renames");
	ok(!strstr(r->text, "file b/renamed.txt") && !strstr(r->text, "file swap-"),
	    "renamed files send no data");
	ok(ops_have(r, "delete deldir"), "a deleted non-empty directory is one delete");
	ok(!strstr(r->text, "delete deldir/"), "nothing under it is listed");
	ok(ops_have(r, "delete t_file2dir") && ops_have(r, "mkdir t_file2dir"), "file -> directory");
	ok(ops_have(r, "delete t_dir2file") && ops_have(r, "file t_dir2file 11"), "directory -> file");
	ok(ops_have(r, "symlink t_file2link hard1"), "file -> symlink");
	ok(ops_have(r, "file t_link2file 11"), "symlink -> file");
	ok(ops_have(r, "link hard3 hard1"), "a new hard link is a link op");
	ok(ops_have(r, "link newh2 newh1") && ops_have(r, "file newh1 9"), "a new pair: data once, then a link");
	ok(strstr(r->text, "file mode.txt") == NULL && strstr(r->text, "meta mode.txt 600 ") != NULL,
	    "mode-only change: a meta op, no data");
	ok(strstr(r->text, "file mtime.txt") == NULL &&
	    ops_have(r, "meta mtime.txt 644 1600000000.987654321"), "mtime-only change: a meta op, no data");
	ok(ops_have(r, "patch logs/latest.log 204814 1\n204800 14") || strstr(r->text,
	    "patch logs/latest.log 204814 1\n204800 14\n"), "append: the tail only");
	ok(strstr(r->text, "patch world/r.0.0.mca 4194304 2\n1048576 65536\n3145728 65536\n") != NULL,
	    "in-place rewrite: the two changed 64 KiB blocks only");
	ok(r->data < 200 * 1024, "round 2 sends %lld bytes, not the 4 MiB region", (long long)r->data);
	ok(ops_have(r, "mkdir empty2") && ops_have(r, "symlink newlink nowhere"), "empty dir and symlink");
	ok(prev.n > 0 && prev.e[wx_ps_find(&prev, "racy.txt")].racy, "racy.txt is marked racy");
	ok(!prev.e[wx_ps_find(&prev, "a/sub/deep.txt")].racy, "a file untouched since round 1 is not racy");

	/* Round 3: racy.txt changes without any metadata difference the scan
	 * could see (same size, mtime put back; ctime is all that moves, and
	 * within one clock tick even that would not): only the racy rule
	 * catches it.  Shown on the compare: a copy of the manifest with the
	 * ctime too put back. */
	struct wx_ps_manifest old2, copy;
	size_t mlen;
	char err[512] = "";
	char *mtext = wx_ps_manifest_format(&prev, &mlen);
	ok(wx_ps_manifest_parse(mtext, mlen, WX_PS_MAX_ENTRIES, &copy, err, sizeof err) == 0 &&
	    wx_ps_manifest_parse(mtext, mlen, WX_PS_MAX_ENTRIES, &old2, err, sizeof err) == 0,
	    "manifest round-trips through its text form");
	free(mtext);
	/* the next scan: the change is older now; only racy.txt was stamped
	 * with the scan start on purpose (files changed just before it may be
	 * racy too, within one clock tick: cleared here to isolate the rule) */
	for (size_t i = 0; i < copy.n; i++) {
		copy.e[i].racy = false;
		old2.e[i].racy = strcmp(old2.e[i].path, "racy.txt") == 0 ? old2.e[i].racy : false;
	}
	/* (parsed, so without block lists: the sender's own prev keeps them) */
	struct wx_ps_delta d;
	wx_ps_compare(&old2, &copy, &d);
	bool found = false;
	size_t files = 0;
	for (size_t k = 0; k < d.n; k++) {
		if (d.op[k].kind == WX_PS_OP_FILE && strcmp(d.op[k].path, "racy.txt") == 0)
			found = true;
		files += d.op[k].kind == WX_PS_OP_FILE;
	}
	ok(found && files == 1, "racy rule: unchanged metadata, yet the racy file is re-checked");
	wx_ps_delta_free(&d);
	old2.e[wx_ps_find(&old2, "racy.txt")].racy = false;
	wx_ps_compare(&old2, &copy, &d);
	is_int(d.n, 0, "without the racy flag, identical manifests give no ops");
	wx_ps_delta_free(&d);
	wx_ps_manifest_free(&copy);
	wx_ps_manifest_free(&old2);

	/* Round 3 for real: shrink the region (truncate), rename and modify,
	 * directory -> symlink, append again, nothing else. */
	rc = 0;
	rc |= truncate(at(src, "world/r.0.0.mca"), 3 * 1024 * 1024 + 5);
	rc |= rename(at(src, "logs/latest.log"), at(src, "logs/2026-12-05.log"));
	rc |= append("logs/2026-12-05.log", "after the rename\n", 17);
	rc |= wx_remove_tree(at(src, "t_file2dir")) | symlink("a", at(src, "t_file2dir"));
	rc |= unlink(at(src, "hard2"));
	rc |= put_text("racy.txt", "racy-3\n");
	rc |= link(at(src, "hard1"), at(src, "hard0"));              /* a new first member */
	rc |= rename(at(src, "swap-x"), at(src, "mode.txt"));        /* replace by rename */
	rc |= rename(at(src, "b/renamed.txt"), at(src, "a/sub/back.txt"));
	rc |= mkdir(at(src, "b/renamed.txt"), 0755);                 /* the old path is a dir now */
	ok(rc == 0, "round 3 changes made");
	run_round(NULL, r);
	is_int(r->rc, 0, "round 3 applies and verifies");
	check_equal("round 3");
	ok(ops_have(r, "rename logs/2026-12-05.log logs/latest.log"), "renamed log: a rename");
	ok(strstr(r->text, "patch logs/2026-12-05.log 204831 1\n204814 17\n") != NULL,
	    "renamed and appended: the tail only, on the moved copy");
	ok(strstr(r->text, "patch world/r.0.0.mca 3145733 1\n3145728 5\n") != NULL,
	    "truncated region: cut, and the one short last block");
	ok(ops_have(r, "delete t_file2dir") && ops_have(r, "symlink t_file2dir a"), "directory -> symlink");
	ok(ops_have(r, "delete hard2"), "a removed hard link is a delete");
	ok(ops_have(r, "file hard0 15") && ops_have(r, "link hard1 hard0") && ops_have(r, "link hard3 hard0"),
	    "a new link sorting first leads the group: data once, the others linked to it");
	ok(ops_have(r, "rename mode.txt swap-x"), "a file renamed over another: a rename");
	ok(ops_have(r, "rename a/sub/back.txt b/renamed.txt") && ops_have(r, "mkdir b/renamed.txt"),
	    "moved away, and a directory made at its old path");

	/* Round 4: nothing changed: nothing sent. */
	run_round(NULL, r);
	is_int(r->rc, 0, "round 4 (no change) applies");
	is_int(r->data, 0, "no change: no data");
	ok(r->ops[WX_PS_OP_FILE] + r->ops[WX_PS_OP_PATCH] + r->ops[WX_PS_OP_DELETE] == 0,
	    "no change: no file, patch or delete op");

	/* The final check: every file hashed. */
	struct wx_ps_manifest fin;
	ok(wx_ps_scan(srcfd, NULL, &fin, err, sizeof err) == 0, "final scan");
	struct wx_ps_delta none;
	wx_ps_compare(&prev, &fin, &none);   /* carries the hashes over */
	wx_ps_delta_free(&none);
	ok(wx_ps_verify(dstfd, &fin, NULL, true, err, sizeof err) == 0, "full verification, every file hashed");
	check_equal("final");

	/* The verification notices a change to the staged copy. */
	int fd = openat(dstfd, "a/sub/deep.txt", O_WRONLY | O_CLOEXEC);
	ok(fd >= 0 && pwrite(fd, "DEEP", 4, 0) == 4, "corrupt a staged file");
	if (fd >= 0)
		close(fd);
	struct stat st;
	lstat(at(src, "a/sub/deep.txt"), &st);
	struct timespec t[2] = { st.st_mtim, st.st_mtim };
	utimensat(dstfd, "a/sub/deep.txt", t, 0);
	ok(wx_ps_verify(dstfd, &fin, NULL, true, err, sizeof err) < 0 && strstr(err, "a/sub/deep.txt: SHA-256 differs"),
	    "verification: a changed file is found (%s)", err);
	fd = openat(dstfd, "a/sub/deep.txt", O_WRONLY | O_CLOEXEC);
	ok(fd >= 0 && pwrite(fd, "deep", 4, 0) == 4 && futimens(fd, t) == 0, "put it back");
	if (fd >= 0)
		close(fd);
	wx_ps_manifest_free(&fin);
	free(r);
}

/* --- blocks ------------------------------------------------------------------ */

static int
sink(void *ctx, const void *p, size_t n)
{
	*(size_t *)ctx += n;
	return 0;
}

static void
test_blocks(void)
{
	size_t n = 5 * WX_PS_BLOCK_SIZE + 100;
	unsigned char *data = random_bytes(n);
	char err[256] = "";
	ok(put("blk", data, n) == 0, "a file of 5 blocks and a bit");
	int fd = open(at(src, "blk"), O_RDONLY | O_CLOEXEC);
	struct wx_ps_plan p1, p2;
	ok(wx_ps_plan_file(fd, NULL, NULL, 0, &p1, err, sizeof err) == 0, "plan without a base");
	is_int(p1.nranges, 1, "no base: one range");
	is_int(p1.ranges[0].len, (int64_t)n, "no base: the whole file");
	ok(p1.blocks && p1.blocks->n == 6, "6 block hashes");
	ok(wx_ps_plan_file(fd, p1.blocks, p1.sha, p1.size, &p2, err, sizeof err) == 0 && p2.same,
	    "unchanged: same");
	wx_ps_plan_free(&p2);
	close(fd);

	/* change the first byte of block 2 and the last byte of the file */
	ok(write_at("blk", 2 * WX_PS_BLOCK_SIZE, "Z", 1) == 0 && write_at("blk", (int64_t)n - 1, "Q", 1) == 0,
	    "two bytes changed");
	fd = open(at(src, "blk"), O_RDONLY | O_CLOEXEC);
	ok(wx_ps_plan_file(fd, p1.blocks, p1.sha, p1.size, &p2, err, sizeof err) == 0, "plan");
	ok(!p2.same && !p2.append && p2.nranges == 2 && p2.ranges[0].off == 2 * WX_PS_BLOCK_SIZE &&
	    p2.ranges[0].len == WX_PS_BLOCK_SIZE && p2.ranges[1].off == 5 * WX_PS_BLOCK_SIZE &&
	    p2.ranges[1].len == 100, "blocks 2 and the short last one");
	size_t sent = 0;
	bool stable;
	ok(wx_ps_send_file(fd, &p2, sink, &sent, &stable, err, sizeof err) == 0 && stable &&
	    sent == WX_PS_BLOCK_SIZE + 100, "send: exactly those bytes, stable");

	/* changed between plan and send: the block is marked unknown */
	struct wx_ps_plan p3;
	ok(write_at("blk", 3, "A", 1) == 0 && write_at("blk", 4, "B", 1) == 0, "block 0 changed");
	ok(wx_ps_plan_file(fd, p2.blocks, p2.sha, p2.size, &p3, err, sizeof err) == 0 &&
	    p3.nranges == 1 && p3.ranges[0].off == 0, "plan: block 0");
	ok(write_at("blk", 5, "C", 1) == 0, "block 0 changes again before the send");
	sent = 0;
	ok(wx_ps_send_file(fd, &p3, sink, &sent, &stable, err, sizeof err) == 0 && !stable &&
	    !p3.blocks->valid[0] && p3.blocks->valid[1], "send: not stable, block 0 unknown");
	struct wx_ps_plan p4;
	ok(wx_ps_plan_file(fd, p3.blocks, NULL, p3.size, &p4, err, sizeof err) == 0 &&
	    p4.nranges == 1 && p4.ranges[0].off == 0, "the next plan sends block 0 again");
	wx_ps_plan_free(&p4);

	/* append onto a short last block */
	ok(append("blk", "tail!", 5) == 0, "append 5 bytes");
	ok(wx_ps_plan_file(fd, p3.blocks, NULL, p3.size, &p4, err, sizeof err) == 0, "plan");
	ok(!p4.append && p4.nranges >= 1, "an unknown block rules the tail-only delta out");
	wx_ps_plan_free(&p4);
	struct wx_ps_plan p5;
	ok(wx_ps_plan_file(fd, NULL, NULL, 0, &p4, err, sizeof err) == 0 && append("blk", "more", 4) == 0 &&
	    wx_ps_plan_file(fd, p4.blocks, p4.sha, p4.size, &p5, err, sizeof err) == 0, "plan after a clean base");
	ok(p5.append && p5.nranges == 1 && p5.ranges[0].off == (int64_t)n + 5 && p5.ranges[0].len == 4,
	    "append: only the 4 new bytes");
	/* the prefix of the last block changed: not an append */
	struct wx_ps_plan p6;
	ok(write_at("blk", (int64_t)n, "X", 1) == 0 && append("blk", "z", 1) == 0 &&
	    wx_ps_plan_file(fd, p5.blocks, p5.sha, p5.size, &p6, err, sizeof err) == 0, "plan");
	ok(!p6.append && p6.nranges == 1 && p6.ranges[0].off == 5 * WX_PS_BLOCK_SIZE,
	    "a rewritten old tail is not an append: the last block again");
	close(fd);
	wx_ps_plan_free(&p1);
	wx_ps_plan_free(&p2);
	wx_ps_plan_free(&p3);
	wx_ps_plan_free(&p4);
	wx_ps_plan_free(&p5);
	wx_ps_plan_free(&p6);
	unlink(at(src, "blk"));
	free(data);
}

/* --- a file written while it is being sent ------------------------------------- */

static void
scribble_block3(void)
{
	if (write_at("torn", 3 * WX_PS_BLOCK_SIZE + 10, "written meanwhile", 17) < 0 ||
	    write_at("fresh", 2 * WX_PS_BLOCK_SIZE + 10, "written meanwhile", 17) < 0 ||
	    unlink(at(src, "zz-gone-before-send")) < 0)
		ok(0, "scribble");
}

static void
remove_before_plan(void)
{
	if (unlink(at(src, "zz-gone-before-plan")) < 0 || unlink(at(src, "zz-old-gone")) < 0)
		ok(0, "remove");
}

static void
test_torn_send(void)
{
	unsigned char *d = random_bytes(5 * WX_PS_BLOCK_SIZE);
	unsigned char *d2 = random_bytes(4 * WX_PS_BLOCK_SIZE + 1);
	struct round_result *r = xmalloc(sizeof *r);
	ok(put_text("zz-old-gone", "old") == 0 && put("torn", d, 5 * WX_PS_BLOCK_SIZE) == 0,
	    "an old file that will vanish, a 5-block file");
	run_round(NULL, r);
	ok(r->rc == 0 && put_text("zz-old-gone", "old, changed") == 0 &&
	    write_at("torn", WX_PS_BLOCK_SIZE, d2 + 1, 4 * WX_PS_BLOCK_SIZE) == 0,
	    "synced, then changed (blocks 1 to 4 of the 5-block file)");
	ok(put("fresh", d, 3 * WX_PS_BLOCK_SIZE) == 0 && put_text("zz-gone-before-send", "soon gone") == 0 &&
	    put_text("zz-gone-before-plan", "gone at once") == 0,
	    "a new 3-block file and two that vanish");
	during_send = scribble_block3;
	after_scan = remove_before_plan;
	run_round(NULL, r);
	is_int(r->rc, 0, "the round applies; the non-final check skips the unsettled file");
	ptrdiff_t i = wx_ps_find(&prev, "torn");
	ok(i >= 0 && prev.e[i].racy && !prev.e[i].has_sha && prev.e[i].blocks &&
	    !prev.e[i].blocks->valid[3] && prev.e[i].blocks->valid[2],
	    "written between plan and send: racy, SHA-256 unknown, block 3 unknown");
	i = wx_ps_find(&prev, "fresh");
	ok(i >= 0 && prev.e[i].has_sha && prev.e[i].blocks && prev.e[i].blocks->valid[2],
	    "a new file written while sent (read once): its hashes are those of the bytes sent");
	ok(!ops_have(r, "patch fresh 196608 1"), "... sent whole");
	ok(ops_have(r, "file zz-gone-before-plan 0") && strstr(r->text, "file zz-gone-before-send 9\n") &&
	    ops_have(r, "file zz-old-gone 0"), "files gone since the scan: empty, or zeros after the plan");
	run_round(NULL, r);
	is_int(r->rc, 0, "next round applies");
	ok(ops_have(r, "delete zz-gone-before-plan") && ops_have(r, "delete zz-gone-before-send") &&
	    ops_have(r, "delete zz-old-gone"), "next round: the vanished files are deleted");
	ok(strstr(r->text, "patch torn 327680 1\n196608 65536\n") != NULL,
	    "next round: block 3 only (%lld bytes)", (long long)r->data);
	ok(!strstr(r->text, "file fresh") && (!strstr(r->text, "patch fresh") ||
	    strstr(r->text, "patch fresh 196608 1\n131072 65536\n")),
	    "next round: the new file's bytes written while it was sent are there, or only "
	    "their block is sent");
	char err[512] = "";
	ok(wx_ps_verify(dstfd, &prev, NULL, true, err, sizeof err) == 0, "final check passes (%s)", err);
	check_equal("after a torn send");
	free(r);
	free(d);
	free(d2);
}

/* --- the file hash ---------------------------------------------------------------- */

/* SHA-256 over the SHA-256s of each 64 KiB block of p, computed directly. */
static void
expected_fhash(const unsigned char *p, size_t n, unsigned char out[WX_PS_SHA_LEN])
{
	unsigned char *list = xmalloc((n / WX_PS_BLOCK_SIZE + 1) * WX_PS_SHA_LEN);
	size_t k = 0;
	unsigned int len;
	for (size_t off = 0; off < n; off += WX_PS_BLOCK_SIZE, k++) {
		size_t b = n - off < WX_PS_BLOCK_SIZE ? n - off : WX_PS_BLOCK_SIZE;
		EVP_Digest(p + off, b, list + k * WX_PS_SHA_LEN, &len, EVP_sha256(), NULL);
	}
	EVP_Digest(list, k * WX_PS_SHA_LEN, out, &len, EVP_sha256(), NULL);
	free(list);
}

static void
test_file_hash(void)
{
	size_t n = 3 * WX_PS_BLOCK_SIZE + 12345;
	unsigned char *d = random_bytes(n), want[WX_PS_SHA_LEN], got[WX_PS_SHA_LEN];
	expected_fhash(d, n, want);
	struct wx_ps_fhash h;
	ok(wx_ps_fhash_init(&h) == 0, "file hash: set up");
	/* odd splits, across block boundaries */
	size_t cuts[] = { 1, 4095, 65536, 70000, 100, 65535 };
	size_t off = 0;
	for (size_t i = 0; off < n; i++) {
		size_t c = cuts[i % 6] < n - off ? cuts[i % 6] : n - off;
		wx_ps_fhash_update(&h, d + off, c);
		off += c;
	}
	ok(wx_ps_fhash_final(&h, got) == 0 && memcmp(got, want, sizeof got) == 0,
	    "file hash: the SHA-256 of the blocks' SHA-256s, whatever the splits");
	unsigned char empty[WX_PS_SHA_LEN];
	unsigned int len;
	EVP_Digest("", 0, empty, &len, EVP_sha256(), NULL);
	ok(wx_ps_fhash_init(&h) == 0 && wx_ps_fhash_final(&h, got) == 0 &&
	    memcmp(got, empty, sizeof got) == 0, "file hash: an empty file has no blocks");
	ok(put("hashed", d, n) == 0, "a file of 3.2 blocks");
	int fd = open(at(src, "hashed"), O_RDONLY | O_CLOEXEC);
	struct wx_ps_plan plan;
	char err[256];
	ok(fd >= 0 && wx_ps_plan_file(fd, NULL, NULL, 0, &plan, err, sizeof err) == 0 &&
	    memcmp(plan.sha, want, WX_PS_SHA_LEN) == 0, "the plan's hash is the file hash");
	wx_ps_plan_free(&plan);
	bool stable;
	size_t sent = 0;
	ok(fd >= 0 && wx_ps_plan_whole(fd, &plan, err, sizeof err) == 0 &&
	    wx_ps_send_file(fd, &plan, sink, &sent, &stable, err, sizeof err) == 0 && stable &&
	    sent == n &&
	    memcmp(plan.sha, want, WX_PS_SHA_LEN) == 0 && plan.blocks && plan.blocks->n == 4,
	    "a send without a plan hashes what it sends the same way, blocks kept");
	wx_ps_plan_free(&plan);
	if (fd >= 0)
		close(fd);
	unlink(at(src, "hashed"));
	free(d);
}

/* --- crash and re-apply -------------------------------------------------------- */

static int
fail_after(void *ctx, void *p, size_t n)
{
	struct mem *m = ctx;
	if (m->pos + n > m->buf.len / 2)
		return -1;   /* the data stops half-way: a crash mid-apply */
	return mem_read(ctx, p, n);
}

static void
test_reapply(void)
{
	char err[512] = "";
	int rc = 0;
	unsigned char *d1 = random_bytes(300000);
	rc |= put("crash-a", d1, 300000) | put_text("crash-b", "b\n") | put_text("crash-c", "c\n");
	ok(rc == 0, "files for the crash test");
	struct round_result *r = xmalloc(sizeof *r);
	run_round(NULL, r);
	is_int(r->rc, 0, "synced");
	rc = rename(at(src, "crash-b"), at(src, "crash-moved")) | put("crash-new", d1, 300000) |
	    unlink(at(src, "crash-c")) | write_at("crash-a", 70000, "xyz", 3);
	ok(rc == 0, "changes");

	struct wx_ps_manifest cur;
	struct wx_ps_delta d;
	struct mem data = { { 0 }, 0 };
	ok(wx_ps_scan(srcfd, NULL, &cur, err, sizeof err) == 0, "scan");
	wx_ps_compare(&prev, &cur, &d);
	ok(wx_ps_delta_plan(srcfd, &prev, &cur, &d, err, sizeof err) == 0 &&
	    wx_ps_delta_send(srcfd, &cur, &d, mem_emit, &data, err, sizeof err) == 0, "delta built");
	round_no++;
	ok(wx_ps_apply(dstfd, workfd, round_no, &d, fail_after, &data, err, sizeof err) < 0,
	    "the apply fails half-way (%s)", err);
	int64_t jr;
	int phase;
	ok(wx_ps_journal_read(workfd, &jr, &phase) == 0 && jr == round_no && phase == 3,
	    "the journal says: this round, phase 3 in progress");
	struct stat st;
	ok(fstatat(dstfd, "crash-c", &st, AT_SYMLINK_NOFOLLOW) < 0, "phase 2 (deletes) was done");
	data.pos = 0;
	ok(wx_ps_apply(dstfd, workfd, round_no, &d, mem_read, &data, err, sizeof err) == 0,
	    "the same delta applied again completes (%s)", err);
	ok(wx_ps_journal_read(workfd, &jr, &phase) == 0 && jr == round_no && phase == 5,
	    "the journal says: applied");
	ok(wx_ps_verify(dstfd, &cur, NULL, true, err, sizeof err) == 0, "verified after the re-apply (%s)", err);
	check_equal("after a crash and re-apply");
	data.pos = 0;
	ok(wx_ps_apply(dstfd, workfd, round_no, &d, mem_read, &data, err, sizeof err) == 0 && data.pos == 0,
	    "applying an applied round again does nothing");
	ok(wx_ps_apply(dstfd, workfd, round_no - 1, &d, mem_read, &data, err, sizeof err) < 0,
	    "an older round is refused");
	struct wx_ps_delta other;
	const char *otext = "wingxfer-presync-ops 1 1 0\ndelete crash-a\n";
	ok(wx_ps_delta_parse(otext, strlen(otext), &other, err, sizeof err) == 0 &&
	    wx_ps_apply(dstfd, workfd, round_no, &other, mem_read, &data, err, sizeof err) < 0 &&
	    strstr(err, "different delta") && fstatat(dstfd, "crash-a", &st, AT_SYMLINK_NOFOLLOW) == 0,
	    "this round with another delta is refused, nothing done (%s)", err);
	wx_ps_delta_free(&other);
	wx_ps_manifest_free(&prev);
	prev = cur;
	wx_ps_delta_free(&d);
	free(data.buf.p);
	free(d1);
	free(r);
}

/* --- as an unprivileged user ---------------------------------------------------- */

/* chown -R (no symlink following) */
static int
chown_tree(const char *path, uid_t uid, gid_t gid)
{
	struct stat st;
	if (lchown(path, uid, gid) < 0 || lstat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode))
		return 0;
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char sub[2048];
		snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
		rc = chown_tree(sub, uid, gid);
	}
	closedir(d);
	return rc;
}

/* In the child, as nobody: two rounds over read-only directories and a
 * read-only file.  Exit status: 0, or the step that failed. */
static int
unprivileged_child(void)
{
	struct round_result *r = xmalloc(sizeof *r);
	char why[2048] = "";
	struct ino_map links = { .n = 0 };
	unsigned char *big = random_bytes(300000);
	wx_ps_manifest_free(&prev);
	memset(&prev, 0, sizeof prev);
	round_no = 0;
	run_round(NULL, r);
	if (r->rc < 0)
		return 1;
	if (!trees_equal(src, dst, &links, why, sizeof why))
		return printf("# %s\n", why), 2;
	/* the server changes things inside its read-only directory */
	if (chmod(at(src, "ro"), 0755) < 0 || chmod(at(src, "ro/f"), 0644) < 0 ||
	    write_at("ro/f", 140000, "patched", 7) < 0 || put_text("ro/new", "new\n") < 0 ||
	    chmod(at(src, "ro/sub"), 0755) < 0 || unlink(at(src, "ro/sub/gone")) < 0 ||
	    chmod(at(src, "ro/sub"), 0555) < 0 || chmod(at(src, "ro/f"), 0444) < 0 ||
	    chmod(at(src, "ro"), 0555) < 0)
		return 3;
	run_round(NULL, r);
	if (r->rc < 0)
		return 4;
	if (!strstr(r->text, "patch ro/f 300000 1\n131072 65536\n"))
		return printf("# %s\n", r->text), 5;
	links.n = 0;
	if (!trees_equal(src, dst, &links, why, sizeof why))
		return printf("# %s\n", why), 6;
	wx_ps_manifest_free(&prev);
	free(big);
	free(r);
	return 0;
}

static void
test_unprivileged(void)
{
	if (geteuid() != 0) {
		ok(1, "# SKIP not root: the tests above ran unprivileged already");
		return;
	}
	char s2[600], d2[600], w2[600];
	snprintf(s2, sizeof s2, "%s/src2", root);
	snprintf(d2, sizeof d2, "%s/dst2", root);
	snprintf(w2, sizeof w2, "%s/work2", root);
	unsigned char *big = random_bytes(300000);
	int rc = mkdir(s2, 0755) | mkdir(d2, 0755) | mkdir(w2, 0700) | chmod(root, 0711);
	char *saved_src = xstrdup(src), *saved_dst = xstrdup(dst);
	wx_strlcpy(src, s2, sizeof src);
	wx_strlcpy(dst, d2, sizeof dst);
	rc |= mkdir(at(src, "ro"), 0755) | mkdir(at(src, "ro/sub"), 0755);
	rc |= put("ro/f", big, 300000) | put_text("ro/sub/gone", "x\n") | chmod(at(src, "ro/f"), 0444);
	rc |= chmod(at(src, "ro/sub"), 0555) | chmod(at(src, "ro"), 0555);
	rc |= chown_tree(s2, 65534, 65534) | chown_tree(d2, 65534, 65534) | chown_tree(w2, 65534, 65534);
	ok(rc == 0, "a tree with read-only directories and a read-only file, owned by nobody");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int fs = open(s2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int fd = open(d2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int fw = open(w2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fs < 0 || fd < 0 || fw < 0 || setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
		    setuid(65534) < 0)
			_exit(100);
		srcfd = fs;
		dstfd = fd;
		workfd = fw;
		int status = unprivileged_child();
		fflush(stdout);
		_exit(status);
	}
	int status = -1;
	bool waited = pid > 0 && waitpid(pid, &status, 0) == pid;
	ok(waited && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "as nobody: synced, then patched a read-only file and changed a read-only directory (step %d)",
	    WIFEXITED(status) ? WEXITSTATUS(status) : -status);
	struct stat st;
	ok(stat(at(dst, "ro"), &st) == 0 && (st.st_mode & 07777) == 0555 &&
	    stat(at(dst, "ro/f"), &st) == 0 && (st.st_mode & 07777) == 0444,
	    "the read-only modes are back after the apply");
	wx_strlcpy(src, saved_src, sizeof src);
	wx_strlcpy(dst, saved_dst, sizeof dst);
	free(saved_src);
	free(saved_dst);
	free(big);
	chmod(root, 0700);
}

/* --- rounds while a writer runs, then the final round -------------------------- */

#define REGIONS 4
#define REGION_SIZE (1024 * 1024)

/* The stand-in game server: rewrites 4 KiB sectors of region files,
 * appends to its log, makes, renames and removes temporary files, and
 * changes a mode now and then, until it is killed. */
static void __attribute__((noreturn))
writer(void)
{
	uint64_t x = 88172645463325252ULL;
	unsigned char sector[4096];
	for (unsigned long i = 0;; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memset(sector, (int)(x & 0xff), sizeof sector);
		char name[64];
		/* players stay near spawn: two regions, their first 256 KiB */
		snprintf(name, sizeof name, "world/r.%u.mca", (unsigned)(x % 2));
		int64_t off = (int64_t)((x >> 8) % 64) * 4096;
		char line[64];
		int n = snprintf(line, sizeof line, "tick %lu\n", i);
		if (write_at(name, off, sector, sizeof sector) < 0 || append("logs/latest.log", line, (size_t)n) < 0)
			_exit(1);
		if (i % 20 == 0) {
			char a[64], b[64];
			snprintf(a, sizeof a, "tmp/t%lu", i);
			snprintf(b, sizeof b, "tmp/done%lu", i);
			if (put_text(a, "temporary\n") < 0 || rename(at(src, a), at(src, b)) < 0)
				_exit(2);
			snprintf(b, sizeof b, "tmp/done%lu", i - 40);
			if (i >= 40 && unlink(at(src, b)) < 0)
				_exit(3);
		}
		if (i % 50 == 0 && chmod(at(src, "server.properties"), (i / 50) % 2 ? 0600 : 0644) < 0)
			_exit(4);
		struct timespec pace = { 0, 200000 };
		nanosleep(&pace, NULL);
	}
}

static void
test_live_writer(void)
{
	char s3[600], d3[600], w3[600];
	snprintf(s3, sizeof s3, "%s/src3", root);
	snprintf(d3, sizeof d3, "%s/dst3", root);
	snprintf(w3, sizeof w3, "%s/work3", root);
	char *saved_src = xstrdup(src), *saved_dst = xstrdup(dst);
	int saved[3] = { srcfd, dstfd, workfd };
	struct wx_ps_manifest saved_prev = prev;
	int64_t saved_round = round_no;
	memset(&prev, 0, sizeof prev);
	round_no = 0;
	wx_strlcpy(src, s3, sizeof src);
	wx_strlcpy(dst, d3, sizeof dst);
	int rc = mkdir(s3, 0755) | mkdir(d3, 0755) | mkdir(w3, 0700);
	rc |= mkdir(at(src, "world"), 0755) | mkdir(at(src, "logs"), 0755) | mkdir(at(src, "tmp"), 0755);
	unsigned char *region = random_bytes(REGION_SIZE);
	for (int r = 0; r < REGIONS; r++) {
		char name[64];
		snprintf(name, sizeof name, "world/r.%d.mca", r);
		rc |= put(name, region, REGION_SIZE);
	}
	rc |= put_text("logs/latest.log", "start\n") | put_text("server.properties", "motd=hi\n");
	srcfd = open(s3, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dstfd = open(d3, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	workfd = open(w3, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok(rc == 0 && srcfd >= 0 && dstfd >= 0 && workfd >= 0, "a small server tree");
	free(region);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		writer();
	struct round_result *r = xmalloc(sizeof *r);
	int64_t sent[3] = { 0 };
	for (int k = 0; k < 3; k++) {
		run_round(NULL, r);
		sent[k] = r->data;
		is_int(r->rc, 0, "live round %d applies and passes the check before the final round", k + 1);
	}
	int status = -1;
	ok(pid > 0 && kill(pid, SIGTERM) == 0 && waitpid(pid, &status, 0) == pid &&
	    WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "the writer ran until stopped (status %d)", status);
	ok(sent[1] < REGIONS * REGION_SIZE / 2 && sent[2] < REGIONS * REGION_SIZE / 2,
	    "live rounds 2 and 3 send a fraction of the tree (%lld, %lld of %d bytes)",
	    (long long)sent[1], (long long)sent[2], REGIONS * REGION_SIZE);
	run_round(NULL, r);
	is_int(r->rc, 0, "the final round applies");
	/* what the destination checks: the final manifest, as sent */
	struct wx_ps_manifest fin, again;
	char err[512] = "";
	size_t len;
	char *text = wx_ps_manifest_format(&prev, &len);
	ok(wx_ps_manifest_parse(text, len, WX_PS_MAX_ENTRIES, &fin, err, sizeof err) == 0 &&
	    wx_ps_verify(dstfd, &fin, NULL, true, err, sizeof err) == 0,
	    "the final check against the final manifest, every file hashed (%s)", err);
	free(text);
	/* and nothing is left to send: files stamped in the scan's last tick
	 * are re-read (racy) and found equal */
	struct wx_ps_delta more;
	ok(wx_ps_scan(srcfd, NULL, &again, err, sizeof err) == 0, "scan the stopped tree again");
	wx_ps_compare(&prev, &again, &more);
	ok(wx_ps_delta_plan(srcfd, &prev, &again, &more, err, sizeof err) == 0, "plan");
	size_t ns = 0;
	for (size_t k = 0; k < more.n; k++)
		ns += more.op[k].kind != WX_PS_OP_META;
	ok(ns == 0 && wx_ps_delta_data_bytes(&more) == 0, "the stopped tree needs nothing more (%zu ops)", ns);
	wx_ps_delta_free(&more);
	wx_ps_manifest_free(&again);
	check_equal("after live rounds and the final one");
	wx_ps_manifest_free(&fin);
	wx_ps_manifest_free(&prev);
	close(srcfd);
	close(dstfd);
	close(workfd);
	srcfd = saved[0];
	dstfd = saved[1];
	workfd = saved[2];
	prev = saved_prev;
	round_no = saved_round;
	wx_strlcpy(src, saved_src, sizeof src);
	wx_strlcpy(dst, saved_dst, sizeof dst);
	free(saved_src);
	free(saved_dst);
	free(r);
}

/* --- hostile input ---------------------------------------------------------- */

#define HDR "wingxfer-presync-manifest 1 1.000000000 "
#define ROOT "d 755 0 1.000000000 1.000000000 1 2 - - .\n"
#define F(path) "f 644 1 1.000000000 1.000000000 2 1 - - " path "\n"

static void
test_hostile_manifests(void)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "", "not a wingxfer" },
		{ "wingxfer-presync-manifest 2 1.000000000 1\n" ROOT, "version" },
		{ HDR "2\n" ROOT F("../x"), "'..'" },
		{ HDR "2\n" ROOT F("/etc/passwd"), "absolute" },
		{ HDR "2\n" ROOT F("a%00b"), "NUL" },
		{ HDR "2\n" ROOT F("a//b"), "empty component" },
		{ HDR "2\n" ROOT F("a/"), "empty component" },
		{ HDR "2\n" ROOT F("./a"), "'.' component" },
		{ HDR "2\n" ROOT F("a b"), "wrong number" },
		{ HDR "2\n" ROOT F("a\tb"), "unescaped" },
		{ HDR "2\n" ROOT F("a/b"), "parent is not a directory" },
		{ HDR "3\n" ROOT F("b") F("a"), "not strictly sorted" },
		{ HDR "3\n" ROOT F("a") F("a"), "not strictly sorted" },
		{ HDR "3\n" ROOT F("a") F("a/b"), "parent is not a directory" },
		{ HDR "2\n" F("a") ROOT, "root" },
		{ HDR "3\n" ROOT F("a"), "fewer entries" },
		{ HDR "1\n" ROOT F("a"), "more entries" },
		{ HDR "2\n" ROOT "f 644 1 1.000000000 1.000000000 2 1 - - a", "malformed" },
		{ HDR "2\n" ROOT "f 9644 1 1.000000000 1.000000000 2 1 - - a\n", "bad mode" },
		{ HDR "2\n" ROOT "f 644 -1 1.000000000 1.000000000 2 1 - - a\n", "bad size" },
		{ HDR "2\n" ROOT "f 644 1 1.5 1.000000000 2 1 - - a\n", "bad time" },
		{ HDR "2\n" ROOT "f 644 1 1.000000000 1.000000000 2 1 - abc a\n", "SHA-256" },
		{ HDR "2\n" ROOT "f 644 1 1.000000000 1.000000000 2 1 x - a\n", "flags" },
		{ HDR "2\n" ROOT "l 0 1 1.000000000 1.000000000 2 1 - - a\n", "wrong number" },
		{ HDR "2\n" ROOT "l 0 3 1.000000000 1.000000000 2 1 - - a x%00y\n", "NUL" },
		{ HDR "2\n" ROOT "l 0 5 1.000000000 1.000000000 2 1 - - a x\n", "target's length" },
		{ HDR "2\n" ROOT "x 644 1 1.000000000 1.000000000 2 1 - - a\n", "unknown entry type" },
		{ HDR "2\n" ROOT "f 644 1 1.000000000 1.000000000 2 1 - - a \n", "malformed" },
		{ HDR "99999999999\n" ROOT, "over the limit" },
	};
	char err[512] = "";
	for (size_t i = 0; i < WX_ARRAY_LEN(bad); i++) {
		struct wx_ps_manifest m;
		int rc = wx_ps_manifest_parse(bad[i].text, strlen(bad[i].text), 1000, &m, err, sizeof err);
		ok(rc < 0 && strstr(err, bad[i].why) != NULL, "hostile manifest %zu refused: %s", i, err);
		ok(m.n == 0 && m.e == NULL, "nothing kept");
	}
	/* overlong path and component */
	struct wx_ps_buf b = { 0 };
	wx_ps_buf_printf(&b, HDR "2\n" ROOT "f 644 1 1.000000000 1.000000000 2 1 - - ");
	for (int i = 0; i < 300; i++)
		wx_ps_buf_add(&b, "x", 1);
	wx_ps_buf_add(&b, "\n", 1);
	struct wx_ps_manifest m;
	ok(wx_ps_manifest_parse(b.p, b.len, 1000, &m, err, sizeof err) < 0 && strstr(err, "255"),
	    "a 300-byte component refused: %s", err);
	b.len = 0;
	wx_ps_buf_printf(&b, HDR "2\n" ROOT "f 644 1 1.000000000 1.000000000 2 1 - - ");
	for (int i = 0; i < 2100; i++)
		wx_ps_buf_add(&b, "x/", 2);
	wx_ps_buf_add(&b, "x\n", 2);
	ok(wx_ps_manifest_parse(b.p, b.len, 1000, &m, err, sizeof err) < 0 && strstr(err, "too long"),
	    "a 4201-byte path refused: %s", err);
	free(b.p);
	const char *good = HDR "4\n" ROOT "d 700 0 1.000000000 1.000000000 3 2 - - a\n"
	    "f 600 3 2.000000001 3.000000002 4 1 r " "0000000000000000000000000000000000000000000000000000000000000000"
	    " a/b%20c%0A\nl 0 4 1.000000000 1.000000000 5 1 - - z ../y\n";
	ok(wx_ps_manifest_parse(good, strlen(good), 1000, &m, err, sizeof err) == 0, "a good manifest parses (%s)", err);
	ok(m.n == 4 && strcmp(m.e[2].path, "a/b c\n") == 0 && m.e[2].racy && m.e[2].has_sha &&
	    m.e[2].mtime.tv_nsec == 1 && strcmp(m.e[3].target, "../y") == 0, "its fields");
	wx_ps_manifest_free(&m);
}

#define OHDR(n, data) "wingxfer-presync-ops 1 " #n " " #data "\n"

static void
test_hostile_ops(void)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "", "not a wingxfer" },
		{ OHDR(1, 0) "delete ../x\n", "'..'" },
		{ OHDR(1, 0) "delete /etc\n", "absolute" },
		{ OHDR(1, 0) "delete a%00b\n", "NUL" },
		{ OHDR(1, 0) "delete .\n", "tree root" },
		{ OHDR(1, 0) "rename a ../b\n", "'..'" },
		{ OHDR(1, 0) "rename a .\n", "tree root" },
		{ OHDR(1, 0) "link a /etc/shadow\n", "absolute" },
		{ OHDR(1, 0) "symlink a x%00\n", "NUL" },
		{ OHDR(1, 3) "file a 4\n", "data size" },
		{ OHDR(1, 0) "file a -1\n", "bad size" },
		{ OHDR(1, 8) "patch a 10 2\n0 4\n2 4\n", "overlapping" },
		{ OHDR(1, 4) "patch a 10 1\n8 4\n", "past the size" },
		{ OHDR(1, 0) "patch a 10 1\n5 0\n", "bad range" },
		{ OHDR(1, 4) "patch a 10 2\n0 4\n", "bad range" },
		{ OHDR(1, 0) "meta a 17777 1.000000000\n", "bad mode" },
		{ OHDR(1, 0) "chown a 0\n", "unknown op" },
		{ OHDR(2, 0) "delete a\n", "fewer ops" },
		{ OHDR(1, 0) "delete a\ndelete b\n", "more ops" },
		{ OHDR(1, 0) "delete a b\n", "wrong number" },
		{ OHDR(1, 0) "delete a", "malformed" },
		{ "wingxfer-presync-ops 1 1 9223372036854775807\nfile a 9223372036854775807\n"
		  "file b 1\n", "more ops" },
		{ "wingxfer-presync-ops 1 2 1\nfile a 9223372036854775807\nfile b 1\n", "overflows" },
	};
	char err[512] = "";
	for (size_t i = 0; i < WX_ARRAY_LEN(bad); i++) {
		struct wx_ps_delta d;
		int rc = wx_ps_delta_parse(bad[i].text, strlen(bad[i].text), &d, err, sizeof err);
		ok(rc < 0 && strstr(err, bad[i].why) != NULL, "hostile op list %zu refused: %s", i, err);
		ok(d.n == 0 && d.op == NULL, "nothing kept");
	}
}

/* Ops that would reach outside through a symlink in the staged tree. */
static void
test_symlink_escape(void)
{
	char err[512] = "";
	char text[256];
	struct stat st;
	ok(symlinkat(outside, dstfd, "escape") == 0, "a symlink to outside in the staged tree");
	int ofd = open(at(outside, "victim"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ok(ofd >= 0 && write(ofd, "precious", 8) == 8, "a file outside");
	if (ofd >= 0)
		close(ofd);
	static const char *const ops[] = {
		"file escape/evil 4",
		"delete escape/victim",
		"patch escape 4 1\n0 4",
		"patch escape/victim 4 1\n0 4",
		"meta escape/victim 777 1.000000000",
		"rename x escape/victim",
		"link x escape/victim",
		"mkdir escape/d",
		"symlink escape/s /etc/passwd",
	};
	for (size_t i = 0; i < WX_ARRAY_LEN(ops); i++) {
		bool data = strncmp(ops[i], "file", 4) == 0 || strncmp(ops[i], "patch", 5) == 0;
		snprintf(text, sizeof text, "wingxfer-presync-ops 1 1 %d\n%s\n", data ? 4 : 0, ops[i]);
		struct wx_ps_delta d;
		int prc = wx_ps_delta_parse(text, strlen(text), &d, err, sizeof err);
		struct mem m = { { 0 }, 0 };
		wx_ps_buf_add(&m.buf, "EVIL", 4);
		round_no++;
		int rc = prc == 0 ? wx_ps_apply(dstfd, workfd, round_no, &d, mem_read, &m, err, sizeof err) : 0;
		ok(prc == 0 && rc < 0, "through a symlink refused: op %zu, %.*s (%s)", i,
		    (int)strcspn(ops[i], "\n"), ops[i], err);
		wx_ps_delta_free(&d);
		free(m.buf.p);
		/* a failed round stays "in progress"; a caller discards the
		 * staging with its journal.  Here the staging stays (for the
		 * next op) and only the journal goes. */
		ok(unlinkat(workfd, "journal", 0) == 0, "journal discarded");
	}
	char buf[16] = "";
	int fd = open(at(outside, "victim"), O_RDONLY | O_CLOEXEC);
	ok(fd >= 0 && read(fd, buf, sizeof buf) == 8 && memcmp(buf, "precious", 8) == 0,
	    "the file outside is intact");
	if (fd >= 0)
		close(fd);
	ok(stat(at(outside, "victim"), &st) == 0 && (st.st_mode & 0777) == 0644, "its mode too");
	ok(lstat(at(outside, "evil"), &st) < 0 && lstat(at(outside, "d"), &st) < 0 &&
	    lstat(at(outside, "s"), &st) < 0, "nothing was created outside");
	ok(fstatat(dstfd, "escape", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode),
	    "the symlink itself was not replaced");
}

int
main(void)
{
	if (mkdtemp(root) == NULL)
		return perror("mkdtemp"), 1;
	snprintf(src, sizeof src, "%s/src", root);
	snprintf(dst, sizeof dst, "%s/dst", root);
	snprintf(work, sizeof work, "%s/work", root);
	snprintf(outside, sizeof outside, "%s/outside", root);
	if (mkdir(src, 0755) < 0 || mkdir(dst, 0755) < 0 || mkdir(work, 0700) < 0 ||
	    mkdir(outside, 0755) < 0)
		return perror("mkdir"), 1;
	srcfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dstfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	workfd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (srcfd < 0 || dstfd < 0 || workfd < 0)
		return perror("open"), 1;

	test_rounds();
	test_blocks();
	test_torn_send();
	test_file_hash();
	test_reapply();
	test_unprivileged();
	test_live_writer();
	test_hostile_manifests();
	test_hostile_ops();
	test_symlink_escape();

	wx_ps_manifest_free(&prev);
	close(srcfd);
	close(dstfd);
	close(workfd);
	ok(wx_remove_tree(root) == 0, "clean up");
	return tap_done();
}
