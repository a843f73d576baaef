#include "autoconf.h"

#include "presync_manifest.h"

#include "archive_paths.h"
#include "presync_blocks.h"
#include "tree_rules.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST_MAGIC "wingxfer-presync-manifest"
#define MAX_LINE (2 * 3 * WX_ENTRY_PATH_MAX + 512)

/* --- text helpers ------------------------------------------------------- */

void
wx_ps_buf_add(struct wx_ps_buf *b, const void *data, size_t n)
{
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
wx_ps_buf_printf(struct wx_ps_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char tmp[256];
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		abort();   /* callers print numbers only */
	wx_ps_buf_add(b, tmp, (size_t)n);
}

void
wx_ps_buf_escaped(struct wx_ps_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p > ' ' && *p < 0x7f && *p != '%') {
			wx_ps_buf_add(b, p, 1);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			wx_ps_buf_add(b, e, 3);
		}
	}
}

char *
wx_ps_unescape(const char *tok, size_t n, size_t max, const char **why)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)tok[i];
		if (c == '%') {
			int hi = i + 2 < n ? wx_hex_digit(tok[i + 1]) : -1;
			int lo = i + 2 < n ? wx_hex_digit(tok[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				*why = "has a bad %-escape";
				goto fail;
			}
			c = (unsigned char)(hi * 16 + lo);
			if (c == '\0') {
				*why = "contains a NUL byte";
				goto fail;
			}
			i += 2;
		} else if (c <= ' ' || c >= 0x7f) {
			*why = "contains an unescaped control, space or non-ASCII byte";
			goto fail;
		}
		if (o >= max) {
			*why = "is too long";
			goto fail;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

int
wx_ps_next_line(const char *text, size_t len, size_t *pos, size_t max_line,
    const char **tok, size_t *lens, int max)
{
	size_t p = *pos;
	if (p >= len)
		return 0;
	const char *nl = memchr(text + p, '\n', len - p);
	size_t end = nl ? (size_t)(nl - text) : len;
	*pos = nl ? end + 1 : len;
	if (nl == NULL || end - p > max_line)
		return -1;
	int count = 0;
	while (p < end) {
		size_t start = p;
		while (p < end && text[p] != ' ')
			p++;
		if (p == start || count == max)
			return -1;
		tok[count] = text + start;
		lens[count] = p - start;
		count++;
		if (p < end) {
			p++;
			if (p == end)
				return -1;   /* trailing space: an empty token */
		}
	}
	return count > 0 ? count : -1;
}

int
wx_ps_token_i64(const char *tok, size_t n, int64_t min, int64_t max, int64_t *out)
{
	char buf[24];
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, tok, n);
	buf[n] = '\0';
	return wx_parse_i64(buf, min, max, out) ? -1 : 0;
}

int
wx_ps_token_mode(const char *tok, size_t n, uint32_t *out)
{
	uint32_t mode = 0;
	if (n < 1 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (tok[i] < '0' || tok[i] > '7')
			return -1;
		mode = mode * 8 + (uint32_t)(tok[i] - '0');
	}
	if (mode > 07777)
		return -1;
	*out = mode;
	return 0;
}

int
wx_ps_token_time(const char *tok, size_t n, struct timespec *out)
{
	const char *dot = memchr(tok, '.', n);
	if (dot == NULL || (size_t)(tok + n - dot) != 10)
		return -1;
	int64_t sec, nsec;
	if (wx_ps_token_i64(tok, (size_t)(dot - tok), INT64_MIN / 2, INT64_MAX / 2, &sec) < 0)
		return -1;
	for (int i = 1; i < 10; i++)
		if (dot[i] < '0' || dot[i] > '9')
			return -1;
	if (wx_ps_token_i64(dot + 1, 9, 0, 999999999, &nsec) < 0)
		return -1;
	out->tv_sec = (time_t)sec;
	out->tv_nsec = (long)nsec;
	return 0;
}

/* --- paths --------------------------------------------------------------- */

int
wx_ps_path_cmp(const char *a, const char *b)
{
	bool ra = strcmp(a, ".") == 0, rb = strcmp(b, ".") == 0;
	if (ra || rb)
		return rb - ra;
	return strcmp(a, b);
}

static int
entry_cmp(const void *a, const void *b)
{
	return wx_ps_path_cmp(((const struct wx_ps_entry *)a)->path,
	    ((const struct wx_ps_entry *)b)->path);
}

ptrdiff_t
wx_ps_find(const struct wx_ps_manifest *m, const char *path)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = wx_ps_path_cmp(path, m->e[mid].path);
		if (c == 0)
			return (ptrdiff_t)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

const char *
wx_ps_path_problem(const char *path)
{
	if (strcmp(path, ".") == 0)
		return NULL;
	const char *why = wx_entry_path_problem(path);
	if (why)
		return why;
	size_t depth = 0;
	for (const char *p = path;;) {
		size_t n = strcspn(p, "/");
		if (n == 0)
			return "has an empty component";
		if (n == 1 && p[0] == '.')
			return "has a '.' component";
		depth++;
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	if (depth > WX_TREE_MAX_DEPTH)
		return "is deeper than the tree rules allow";
	return NULL;
}

int
wx_ps_parent(const char *path, char *out, size_t size)
{
	if (strcmp(path, ".") == 0)
		return -1;
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		return wx_strlcpy(out, ".", size) < size ? 0 : -1;
	size_t n = (size_t)(slash - path);
	if (n >= size)
		return -1;
	memcpy(out, path, n);
	out[n] = '\0';
	return 0;
}

int
wx_ps_open_parent(int rootfd, const char *path, const char **leaf)
{
	if (strcmp(path, ".") == 0) {
		errno = EINVAL;
		return -1;
	}
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	const char *p = path;
	for (;;) {
		if (fd < 0)
			return -1;
		const char *slash = strchr(p, '/');
		if (slash == NULL)
			break;
		char name[WX_ENTRY_NAME_MAX + 1];
		size_t n = (size_t)(slash - p);
		if (n == 0 || n > WX_ENTRY_NAME_MAX || (n == 2 && p[0] == '.' && p[1] == '.')) {
			close(fd);
			errno = EINVAL;
			return -1;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		int next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(fd);
		errno = e;
		fd = next;
		p = slash + 1;
	}
	*leaf = p;
	return fd;
}

/* --- manifest ------------------------------------------------------------ */

static struct wx_ps_entry *
add_entry(struct wx_ps_manifest *m)
{
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 256;
		m->e = xrealloc(m->e, m->cap * sizeof *m->e);
	}
	struct wx_ps_entry *e = &m->e[m->n++];
	memset(e, 0, sizeof *e);
	return e;
}

void
wx_ps_manifest_free(struct wx_ps_manifest *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->e[i].path);
		free(m->e[i].target);
		wx_ps_blocks_free(m->e[i].blocks);
	}
	free(m->e);
	memset(m, 0, sizeof *m);
}

/* Forgets the entry added last (a running server removed it meanwhile). */
static void
drop_last(struct wx_ps_manifest *m)
{
	m->n--;
	free(m->e[m->n].path);
	free(m->e[m->n].target);
}

static bool
not_older(const struct timespec *t, const struct timespec *start)
{
	return t->tv_sec > start->tv_sec ||
	    (t->tv_sec == start->tv_sec && t->tv_nsec >= start->tv_nsec);
}

struct scan {
	struct wx_ps_manifest *m;
	char path[WX_ENTRY_PATH_MAX + 1];
	char *err;
	size_t errsize;
};

static int
scan_fail(struct scan *s, const char *name, const char *what, int errnum)
{
	const char *shown = s->path[0] ? s->path : ".";
	if (errnum)
		snprintf(s->err, s->errsize, "%s%s%s: %s: %s", shown, name ? "/" : "",
		    name ? name : "", what, strerror(errnum));
	else
		snprintf(s->err, s->errsize, "%s%s%s: %s", shown, name ? "/" : "",
		    name ? name : "", what);
	return -1;
}

static void
fill_entry(struct wx_ps_entry *e, const struct stat *st, const struct timespec *start)
{
	e->mode = S_ISLNK(st->st_mode) ? 0 : (uint32_t)(st->st_mode & 07777);
	e->size = S_ISDIR(st->st_mode) ? 0 : (int64_t)st->st_size;
	e->mtime = st->st_mtim;
	e->ctime = st->st_ctim;
	e->ino = (uint64_t)st->st_ino;
	e->nlink = (uint64_t)st->st_nlink;
	e->racy = not_older(&e->mtime, start) || not_older(&e->ctime, start);
}

/* Scans the directory open as fd (closed here), whose path is s->path ("" for
 * the root) at the given depth. */
static int
scan_dir(struct scan *s, int fd, dev_t dev, size_t depth)
{
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		int e = errno;
		close(fd);
		return scan_fail(s, NULL, "cannot read the directory", e);
	}
	size_t plen = strlen(s->path);
	int rc = -1;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno) {
				scan_fail(s, NULL, "cannot read the directory", errno);
				goto out;
			}
			break;
		}
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;   /* deleted since readdir: the next round sees it gone */
			scan_fail(s, name, "cannot stat", errno);
			goto out;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
			s->m->skipped++;
			continue;
		}
		size_t nlen = strlen(name);
		if (plen + (plen ? 1 : 0) + nlen > WX_ENTRY_PATH_MAX) {
			scan_fail(s, name, "path longer than 4095 bytes", 0);
			goto out;
		}
		if (depth + 1 > WX_TREE_MAX_DEPTH) {
			scan_fail(s, name, "deeper than the tree rules allow", 0);
			goto out;
		}
		if (plen)
			s->path[plen] = '/';
		memcpy(s->path + plen + (plen ? 1 : 0), name, nlen + 1);
		struct wx_ps_entry *e = add_entry(s->m);
		e->path = xstrdup(s->path);
		fill_entry(e, &st, &s->m->start);
		if (S_ISREG(st.st_mode)) {
			e->type = WX_PS_FILE;
		} else if (S_ISLNK(st.st_mode)) {
			e->type = WX_PS_LINK;
			char target[WX_ENTRY_PATH_MAX + 1];
			ssize_t n = readlinkat(dirfd(d), name, target, sizeof target);
			s->path[plen] = '\0';
			if (n < 0 && (errno == ENOENT || errno == EINVAL)) {
				drop_last(s->m);   /* gone or replaced since the stat */
				continue;
			}
			if (n < 0) {
				scan_fail(s, name, "cannot read the symlink", errno);
				goto out;
			}
			if ((size_t)n >= sizeof target || n == 0) {
				scan_fail(s, name, "symlink target empty or longer than 4095 bytes", 0);
				goto out;
			}
			target[n] = '\0';
			e->target = xstrdup(target);
			e->size = n;
		} else {
			e->type = WX_PS_DIR;
			if (st.st_dev != dev) {
				s->path[plen] = '\0';
				scan_fail(s, name, "is a mount point (another file system)", 0);
				goto out;
			}
			int sub = openat(dirfd(d), name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)) {
				s->path[plen] = '\0';
				drop_last(s->m);   /* gone or replaced since the stat */
				continue;
			}
			if (sub < 0) {
				int err = errno;
				s->path[plen] = '\0';
				scan_fail(s, name, "cannot open the directory", err);
				goto out;
			}
			if (scan_dir(s, sub, dev, depth + 1) < 0)
				goto out;
		}
		s->path[plen] = '\0';
	}
	rc = 0;
out:
	s->path[plen] = '\0';
	closedir(d);
	return rc;
}

int
wx_ps_scan(int rootfd, const struct timespec *start, struct wx_ps_manifest *m,
    char *err, size_t errsize)
{
	memset(m, 0, sizeof *m);
	if (start)
		m->start = *start;
	else if (clock_gettime(CLOCK_REALTIME_COARSE, &m->start) < 0)
		return snprintf(err, errsize, "clock_gettime: %s", strerror(errno)), -1;
	struct scan s = { .m = m, .err = err, .errsize = errsize };
	struct stat st;
	if (fstat(rootfd, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errsize, "the tree root is not a directory");
		return -1;
	}
	struct wx_ps_entry *root = add_entry(m);
	root->path = xstrdup(".");
	root->type = WX_PS_DIR;
	fill_entry(root, &st, &m->start);
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		scan_fail(&s, NULL, "cannot open the tree root", errno);
		wx_ps_manifest_free(m);
		return -1;
	}
	if (scan_dir(&s, fd, st.st_dev, 0) < 0) {
		wx_ps_manifest_free(m);
		return -1;
	}
	qsort(m->e, m->n, sizeof *m->e, entry_cmp);
	/* readdir may return a name twice while the directory changes: keep one */
	size_t keep = m->n ? 1 : 0;
	for (size_t i = 1; i < m->n; i++) {
		if (strcmp(m->e[i].path, m->e[keep - 1].path) == 0) {
			free(m->e[i].path);
			free(m->e[i].target);
			continue;
		}
		m->e[keep++] = m->e[i];
	}
	m->n = keep;
	return 0;
}

char *
wx_ps_manifest_format(const struct wx_ps_manifest *m, size_t *len)
{
	struct wx_ps_buf b = { 0 };
	wx_ps_buf_printf(&b, "%s 1 %lld.%09ld %zu\n", MANIFEST_MAGIC,
	    (long long)m->start.tv_sec, m->start.tv_nsec, m->n);
	for (size_t i = 0; i < m->n; i++) {
		const struct wx_ps_entry *e = &m->e[i];
		wx_ps_buf_printf(&b, "%c %o %lld %lld.%09ld %lld.%09ld %llu %llu %s ",
		    e->type, (unsigned)e->mode, (long long)e->size,
		    (long long)e->mtime.tv_sec, e->mtime.tv_nsec,
		    (long long)e->ctime.tv_sec, e->ctime.tv_nsec,
		    (unsigned long long)e->ino, (unsigned long long)e->nlink,
		    e->racy ? "r" : "-");
		if (e->has_sha && e->sha_size == e->size) {
			char hex[2 * WX_PS_SHA_LEN + 1];
			wx_hex(e->sha, WX_PS_SHA_LEN, hex);
			wx_ps_buf_add(&b, hex, 2 * WX_PS_SHA_LEN);
		} else {
			wx_ps_buf_add(&b, "-", 1);
		}
		wx_ps_buf_add(&b, " ", 1);
		wx_ps_buf_escaped(&b, e->path);
		if (e->type == WX_PS_LINK) {
			wx_ps_buf_add(&b, " ", 1);
			wx_ps_buf_escaped(&b, e->target);
		}
		wx_ps_buf_add(&b, "\n", 1);
	}
	*len = b.len;
	return b.p ? b.p : xstrdup("");
}

static int
parse_fail(struct wx_ps_manifest *m, char *err, size_t errsize, size_t line,
    const char *what)
{
	snprintf(err, errsize, "manifest line %zu: %s", line, what);
	wx_ps_manifest_free(m);
	return -1;
}

static int
parse_sha(const char *tok, size_t n, struct wx_ps_entry *e)
{
	if (n == 1 && tok[0] == '-')
		return 0;
	if (n != 2 * WX_PS_SHA_LEN)
		return -1;
	for (size_t i = 0; i < WX_PS_SHA_LEN; i++) {
		int hi = wx_hex_digit(tok[2 * i]), lo = wx_hex_digit(tok[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		e->sha[i] = (unsigned char)(hi * 16 + lo);
	}
	e->has_sha = true;
	return 0;
}

int
wx_ps_manifest_parse(const char *text, size_t len, size_t max_entries,
    struct wx_ps_manifest *m, char *err, size_t errsize)
{
	memset(m, 0, sizeof *m);
	const char *tok[11];
	size_t lens[11];
	size_t pos = 0, line = 1;
	int nt = wx_ps_next_line(text, len, &pos, 256, tok, lens, 4);
	int64_t count, version;
	if (nt != 4 || lens[0] != strlen(MANIFEST_MAGIC) ||
	    memcmp(tok[0], MANIFEST_MAGIC, lens[0]) != 0)
		return parse_fail(m, err, errsize, line, "not a wingxfer pre-sync manifest");
	if (wx_ps_token_i64(tok[1], lens[1], 1, 1, &version) < 0)
		return parse_fail(m, err, errsize, line, "unsupported manifest version");
	if (wx_ps_token_time(tok[2], lens[2], &m->start) < 0)
		return parse_fail(m, err, errsize, line, "bad scan start time");
	if (wx_ps_token_i64(tok[3], lens[3], 1, (int64_t)max_entries, &count) < 0)
		return parse_fail(m, err, errsize, line, "entry count missing or over the limit");
	while ((nt = wx_ps_next_line(text, len, &pos, MAX_LINE, tok, lens, 11)) != 0) {
		line++;
		if (nt < 0)
			return parse_fail(m, err, errsize, line, "malformed line");
		if (m->n >= (size_t)count)
			return parse_fail(m, err, errsize, line, "more entries than the header says");
		if (lens[0] != 1 || (tok[0][0] != WX_PS_DIR && tok[0][0] != WX_PS_FILE &&
		    tok[0][0] != WX_PS_LINK))
			return parse_fail(m, err, errsize, line, "unknown entry type");
		char type = tok[0][0];
		if (nt != (type == WX_PS_LINK ? 11 : 10))
			return parse_fail(m, err, errsize, line, "wrong number of fields");
		struct wx_ps_entry *e = add_entry(m);
		e->type = type;
		int64_t size, ino, nlink;
		if (wx_ps_token_mode(tok[1], lens[1], &e->mode) < 0 ||
		    (type == WX_PS_LINK && e->mode != 0))
			return parse_fail(m, err, errsize, line, "bad mode");
		if (wx_ps_token_i64(tok[2], lens[2], 0, INT64_MAX, &size) < 0 ||
		    (type == WX_PS_DIR && size != 0))
			return parse_fail(m, err, errsize, line, "bad size");
		e->size = size;
		if (wx_ps_token_time(tok[3], lens[3], &e->mtime) < 0 ||
		    wx_ps_token_time(tok[4], lens[4], &e->ctime) < 0)
			return parse_fail(m, err, errsize, line, "bad time");
		if (wx_ps_token_i64(tok[5], lens[5], 0, INT64_MAX, &ino) < 0 ||
		    wx_ps_token_i64(tok[6], lens[6], 0, INT64_MAX, &nlink) < 0)
			return parse_fail(m, err, errsize, line, "bad inode or link count");
		e->ino = (uint64_t)ino;
		e->nlink = (uint64_t)nlink;
		if (lens[7] != 1 || (tok[7][0] != 'r' && tok[7][0] != '-'))
			return parse_fail(m, err, errsize, line, "bad flags");
		e->racy = tok[7][0] == 'r';
		if (parse_sha(tok[8], lens[8], e) < 0 || (e->has_sha && type != WX_PS_FILE))
			return parse_fail(m, err, errsize, line, "bad SHA-256");
		e->sha_size = e->size;
		const char *why = NULL;
		e->path = wx_ps_unescape(tok[9], lens[9], WX_ENTRY_PATH_MAX, &why);
		if (e->path == NULL)
			return parse_fail(m, err, errsize, line, why);
		if ((why = wx_ps_path_problem(e->path)) != NULL)
			return parse_fail(m, err, errsize, line, why);
		if (type == WX_PS_LINK) {
			e->target = wx_ps_unescape(tok[10], lens[10], WX_ENTRY_PATH_MAX, &why);
			if (e->target == NULL)
				return parse_fail(m, err, errsize, line, why);
			if ((int64_t)strlen(e->target) != e->size)
				return parse_fail(m, err, errsize, line, "symlink size is not its target's length");
		}
		if (m->n == 1) {
			if (strcmp(e->path, ".") != 0 || type != WX_PS_DIR)
				return parse_fail(m, err, errsize, line, "the first entry is not the root directory");
			continue;
		}
		if (wx_ps_path_cmp(m->e[m->n - 2].path, e->path) >= 0)
			return parse_fail(m, err, errsize, line, "entries not strictly sorted");
		char parent[WX_ENTRY_PATH_MAX + 1];
		m->n--;   /* search the entries before this one */
		ptrdiff_t p = wx_ps_parent(e->path, parent, sizeof parent) == 0 ?
		    wx_ps_find(m, parent) : -1;
		m->n++;
		if (p < 0 || m->e[p].type != WX_PS_DIR)
			return parse_fail(m, err, errsize, line, "its parent is not a directory in the manifest");
	}
	if (m->n != (size_t)count)
		return parse_fail(m, err, errsize, line, "fewer entries than the header says");
	return 0;
}
