#include "autoconf.h"

#include "walk.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* getdents64 buffer per level: small, so a deep tree costs little memory. */
#define LEVEL_BUF 4096

struct level {
	int fd;
	size_t prefix;        /* length of the path of this directory + 1 for its '/' (0 at root) */
	size_t pos, len;      /* unread getdents64 records in buf */
	char *buf;
};

struct walk {
	struct level *levels;
	int depth;            /* number of open levels */
	int cap;
	char *path;           /* the current entry's relative path */
	size_t path_cap;
	char err[1024];
};

bool
walk_archivable(mode_t mode)
{
	return S_ISDIR(mode) || S_ISREG(mode) || S_ISLNK(mode);
}

static int
push_level(struct walk *w, int fd, size_t prefix)
{
	if (w->depth == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 16;
		w->levels = xrealloc(w->levels, (size_t)w->cap * sizeof *w->levels);
	}
	struct level *l = &w->levels[w->depth++];
	l->fd = fd;
	l->prefix = prefix;
	l->pos = l->len = 0;
	l->buf = xmalloc(LEVEL_BUF);
	return 0;
}

static void
pop_level(struct walk *w)
{
	struct level *l = &w->levels[--w->depth];
	close(l->fd);
	free(l->buf);
}

struct walk *
walk_open(const char *root, char *err, size_t errsize)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errsize, "cannot open the server directory %s: %s", root,
		    strerror(errno));
		return NULL;
	}
	struct walk *w = xcalloc(1, sizeof *w);
	w->path_cap = 256;
	w->path = xmalloc(w->path_cap);
	w->path[0] = '\0';
	push_level(w, fd, 0);
	return w;
}

void
walk_close(struct walk *w)
{
	if (w == NULL)
		return;
	while (w->depth > 0)
		pop_level(w);
	free(w->levels);
	free(w->path);
	free(w);
}

const char *
walk_error(const struct walk *w)
{
	return w->err;
}

/* Sets the path to the level's prefix + name; returns the name's offset. */
static size_t
set_path(struct walk *w, const struct level *l, const char *name)
{
	size_t nlen = strlen(name);
	size_t need = l->prefix + nlen + 2;
	if (need > w->path_cap) {
		while (w->path_cap < need)
			w->path_cap *= 2;
		w->path = xrealloc(w->path, w->path_cap);
	}
	if (l->prefix > 0)
		w->path[l->prefix - 1] = '/';
	memcpy(w->path + l->prefix, name, nlen + 1);
	return l->prefix;
}

/* The next name in the top level, or NULL at its end (-1 in *rc on error). */
static const char *
next_name(struct walk *w, struct level *l, int *rc)
{
	for (;;) {
		while (l->pos < l->len) {
			struct dirent64 *d = (struct dirent64 *)(l->buf + l->pos);
			l->pos += d->d_reclen;
			if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
				return d->d_name;
		}
		ssize_t n = getdents64(l->fd, l->buf, LEVEL_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(w->err, sizeof w->err, "cannot read directory %s: %s",
			    l->prefix ? w->path : ".", strerror(errno));
			*rc = -1;
			return NULL;
		}
		if (n == 0)
			return NULL;
		l->pos = 0;
		l->len = (size_t)n;
	}
}

int
walk_next(struct walk *w, struct walk_entry *e)
{
	while (w->depth > 0) {
		struct level *l = &w->levels[w->depth - 1];
		int rc = 0;
		/* The path buffer still names this level's directory for errors. */
		if (l->prefix > 0)
			w->path[l->prefix - 1] = '\0';
		const char *name = next_name(w, l, &rc);
		if (rc < 0)
			return -1;
		if (name == NULL) {
			pop_level(w);
			continue;
		}
		size_t off = set_path(w, l, name);
		if (strlen(w->path) > WX_ENTRY_PATH_MAX) {
			snprintf(w->err, sizeof w->err, "paths longer than %d bytes are not supported "
			    "(the destination refuses them): %.200s...", WX_ENTRY_PATH_MAX, w->path);
			return -1;
		}
		e->path = w->path;
		e->name = w->path + off;
		e->dirfd = l->fd;
		if (fstatat(l->fd, e->name, &e->st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;  /* removed since readdir */
			snprintf(w->err, sizeof w->err, "cannot examine %s: %s", w->path,
			    strerror(errno));
			return -1;
		}
		if (!S_ISDIR(e->st.st_mode))
			return 1;
		int fd = openat(l->fd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP))
			continue;  /* replaced or removed since fstatat */
		if (fd < 0 || fstat(fd, &e->st) < 0) {
			snprintf(w->err, sizeof w->err, "cannot open directory %s: %s", w->path,
			    strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		if (w->depth >= WALK_MAX_DEPTH) {
			snprintf(w->err, sizeof w->err, "directories nested more than %d levels deep "
			    "are not supported: %s", WALK_MAX_DEPTH, w->path);
			close(fd);
			return -1;
		}
		size_t prefix = strlen(w->path) + 1;
		push_level(w, fd, prefix);
		/* e->dirfd and e->name still refer to the parent, which stays open. */
		e->dirfd = w->levels[w->depth - 2].fd;
		return 1;
	}
	return 0;
}

/* --- inode map: open addressing on (dev, ino) --- */

struct inode_slot {
	dev_t dev;
	ino_t ino;
	char *path;     /* NULL = empty slot */
};

struct inode_map {
	struct inode_slot *slots;
	size_t cap, used;
};

struct inode_map *
inode_map_new(void)
{
	struct inode_map *m = xcalloc(1, sizeof *m);
	m->cap = 64;
	m->slots = xcalloc(m->cap, sizeof *m->slots);
	return m;
}

static size_t
inode_hash(dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Full;
	return (size_t)(h ^ (h >> 29));
}

static struct inode_slot *
inode_find(struct inode_slot *slots, size_t cap, dev_t dev, ino_t ino)
{
	size_t i = inode_hash(dev, ino) & (cap - 1);
	while (slots[i].path != NULL && !(slots[i].dev == dev && slots[i].ino == ino))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

const char *
inode_map_add(struct inode_map *m, dev_t dev, ino_t ino, const char *path)
{
	struct inode_slot *s = inode_find(m->slots, m->cap, dev, ino);
	if (s->path != NULL)
		return s->path;
	if ((m->used + 1) * 4 > m->cap * 3) {
		size_t ncap = m->cap * 2;
		struct inode_slot *n = xcalloc(ncap, sizeof *n);
		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].path != NULL)
				*inode_find(n, ncap, m->slots[i].dev, m->slots[i].ino) = m->slots[i];
		free(m->slots);
		m->slots = n;
		m->cap = ncap;
		s = inode_find(m->slots, m->cap, dev, ino);
	}
	s->dev = dev;
	s->ino = ino;
	s->path = xstrdup(path);
	m->used++;
	return NULL;
}

void
inode_map_free(struct inode_map *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].path);
	free(m->slots);
	free(m);
}

int
walk_measure(const char *root, struct walk_totals *t, bool (*stop)(void *), void *ctx,
    char *err, size_t errsize)
{
	memset(t, 0, sizeof *t);
	struct walk *w = walk_open(root, err, errsize);
	if (w == NULL)
		return -1;
	struct inode_map *seen = inode_map_new();
	struct walk_entry e;
	int rc;
	unsigned long n = 0;
	bool stopped = false;
	while ((rc = walk_next(w, &e)) > 0) {
		if (stop != NULL && ++n % 256 == 0 && stop(ctx)) {
			stopped = true;
			break;
		}
		if (!walk_archivable(e.st.st_mode))
			continue;
		t->entries++;
		if (S_ISLNK(e.st.st_mode))
			t->symlinks++;
		if (!S_ISREG(e.st.st_mode))
			continue;
		if (e.st.st_nlink > 1 && inode_map_add(seen, e.st.st_dev, e.st.st_ino, "") != NULL)
			t->link_bytes += e.st.st_size;
		else
			t->bytes += e.st.st_size;
	}
	if (stopped) {
		snprintf(err, errsize, "stopped");
		rc = -1;
	} else if (rc < 0) {
		snprintf(err, errsize, "%s", walk_error(w));
	}
	inode_map_free(seen);
	walk_close(w);
	return rc < 0 ? -1 : 0;
}
