#include "autoconf.h"

#include "presync_manifest.h"

#include "archive_paths.h"
#include "presync_blocks.h"
#include "tree_rules.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MANIFEST_MAGIC "wingxfer-presync-manifest"
#define MAX_LINE (2 * 3 * WX_ENTRY_PATH_MAX + 512)

/* --- paths --------------------------------------------------------------- */

int
wx_ps_path_cmp(const char *a, const char *b)
{
	bool ra = strcmp(a, ".") == 0, rb = strcmp(b, ".") == 0;
	if (ra || rb)
		return rb - ra;
	return strcmp(a, b);
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

struct wx_ps_entry *
wx_ps_manifest_add(struct wx_ps_manifest *m)
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
		struct wx_ps_entry *e = wx_ps_manifest_add(m);
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
