/*
 * The source's two-slot spool of a chunked upload (chunk_spool.h).
 */
#include "autoconf.h"

#include "chunk_spool.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
slot_file(const char *dir, const char *hint)
{
	int fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* No O_TMPFILE on this file system: a named file, unlinked at once. */
	char *path = xasprintf("%s.XXXXXX", hint);
	mode_t old = umask(077);
	fd = mkostemp(path, O_CLOEXEC);
	umask(old);
	if (fd >= 0)
		(void)unlink(path);
	free(path);
	return fd;
}

static void
empty_at(struct chunk_spool *s, int64_t at)
{
	for (int i = 0; i < 2; i++) {
		s->slot[i].off = at;
		s->slot[i].len = 0;
		wx_sha256_init(&s->slot[i].sha);
		s->slot[i].start = s->whole;
	}
}

int
chunk_spool_open(struct chunk_spool *s, const char *dir, const char *hint,
    chunk_spool_reader read, chunk_spool_reader_error error, void *ctx,
    char *why, size_t whysize)
{
	memset(s, 0, sizeof *s);
	s->slot[0].fd = s->slot[1].fd = -1;
	s->read = read;
	s->error = error;
	s->ctx = ctx;
	s->io = xmalloc(CHUNK_SPOOL_IO);
	s->slot_digests = true;
	wx_sha256_init(&s->whole);
	empty_at(s, 0);
	for (int i = 0; i < 2; i++) {
		s->slot[i].fd = slot_file(dir, hint);
		if (s->slot[i].fd < 0) {
			snprintf(why, whysize, "Cannot make the chunk spool in %s: %s.", dir,
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

void
chunk_spool_close(struct chunk_spool *s)
{
	for (int i = 0; i < 2; i++)
		if (s->slot[i].fd >= 0)
			close(s->slot[i].fd);
	s->slot[0].fd = s->slot[1].fd = -1;
	free(s->io);
	s->io = NULL;
}

void
chunk_spool_restart_at(struct chunk_spool *s, void *ctx, int64_t at,
    const struct wx_sha256 *whole)
{
	s->ctx = ctx;
	s->produced = at;
	s->eof = s->failed = false;
	s->why[0] = '\0';
	s->whole = *whole;
	empty_at(s, at);
}

void
chunk_spool_restart(struct chunk_spool *s, void *ctx)
{
	struct wx_sha256 fresh;
	wx_sha256_init(&fresh);
	chunk_spool_restart_at(s, ctx, 0, &fresh);
}

/* Up to want further bytes from the reader into s->io, hashed: > 0, 0 at the end, -1. */
static ssize_t
pull(struct chunk_spool *s, size_t want)
{
	if (s->failed)
		return -1;
	if (s->eof)
		return 0;
	ssize_t n = s->read(s->ctx, s->io, want);
	s->later = n == CHUNK_SPOOL_LATER;
	if (s->later)
		return 0;
	if (n < 0) {
		s->failed = true;
		snprintf(s->why, sizeof s->why, "%s", s->error(s->ctx));
		return -1;
	}
	if (n == 0) {
		s->eof = true;
		return 0;
	}
	wx_sha256_update(&s->whole, s->io, (size_t)n);
	s->produced += n;
	if (s->reached != NULL)
		s->reached(s->reached_ctx, s->produced, &s->whole);
	return n;
}

int
chunk_spool_skip(struct chunk_spool *s, int64_t upto)
{
	while (s->produced < upto) {
		int64_t left = upto - s->produced;
		if (pull(s, left > CHUNK_SPOOL_IO ? CHUNK_SPOOL_IO : (size_t)left) <= 0)
			return -1;
	}
	empty_at(s, s->produced);
	return 0;
}

int64_t
chunk_spool_start(const struct chunk_spool *s)
{
	const struct chunk_spool_slot *old = &s->slot[!s->newest];
	return old->len > 0 ? old->off : s->slot[s->newest].off;
}

static int
write_all(int fd, const unsigned char *p, size_t n, int64_t at)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		at += w;
	}
	return 0;
}

int
chunk_spool_step(struct chunk_spool *s, int64_t floor, int64_t cap)
{
	if (s->failed)
		return -1;
	if (s->eof)
		return 0;
	struct chunk_spool_slot *n = &s->slot[s->newest];
	if (n->len >= cap) {
		struct chunk_spool_slot *o = &s->slot[!s->newest];
		if (o->len > 0 && o->off + o->len > floor)
			return 0;    /* both slots hold bytes that may still be sent */
		if (ftruncate(o->fd, 0) < 0) {
			s->failed = true;
			snprintf(s->why, sizeof s->why, "Cannot reuse the chunk spool: %s.",
			    strerror(errno));
			return -1;
		}
		o->off = s->produced;
		o->len = 0;
		wx_sha256_init(&o->sha);
		o->start = s->whole;
		s->newest = !s->newest;
		n = o;
	}
	int64_t room = cap - n->len;
	ssize_t got = pull(s, room > CHUNK_SPOOL_IO ? CHUNK_SPOOL_IO : (size_t)room);
	if (got <= 0)
		return got;
	if (write_all(n->fd, s->io, (size_t)got, n->len) < 0) {
		s->failed = true;
		snprintf(s->why, sizeof s->why, "Cannot keep the chunk in its spool: %s.",
		    strerror(errno));
		return -1;
	}
	if (s->slot_digests)
		wx_sha256_update(&n->sha, s->io, (size_t)got);
	n->len += got;
	return 1;
}

int
chunk_spool_fill(struct chunk_spool *s, int64_t upto, int64_t floor, int64_t cap)
{
	while (s->produced < upto && !s->eof) {
		int r = chunk_spool_step(s, floor, cap);
		if (r < 0)
			return -1;
		if (r == 0 && !s->eof && s->later)
			return 0;       /* the reader asks for what it made to be sent first */
		if (r == 0 && !s->eof) {
			snprintf(s->why, sizeof s->why, "The chunk spool has no room for body offset "
			    "%lld (a fault of wingxfer-push).", (long long)s->produced);
			return -1;
		}
	}
	return 0;
}

int
chunk_spool_read(struct chunk_spool *s, void *buf, size_t n, int64_t off)
{
	unsigned char *p = buf;
	while (n > 0) {
		const struct chunk_spool_slot *sl = &s->slot[s->newest];
		if (off < sl->off)
			sl = &s->slot[!s->newest];
		if (off < sl->off || off >= sl->off + sl->len) {
			errno = ERANGE;
			return -1;
		}
		size_t part = n;
		if ((int64_t)part > sl->off + sl->len - off)
			part = (size_t)(sl->off + sl->len - off);
		ssize_t r = pread(sl->fd, p, part, (off_t)(off - sl->off));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			return -1;
		}
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

int
chunk_spool_range_sha256(struct chunk_spool *s, int64_t off, int64_t len, unsigned char md[32])
{
	for (int i = 0; i < 2; i++) {
		if (s->slot_digests && len > 0 && s->slot[i].off == off && s->slot[i].len == len) {
			wx_sha256_digest(&s->slot[i].sha, md);
			return 0;
		}
	}
	struct wx_sha256 h;
	wx_sha256_init(&h);
	while (len > 0) {
		size_t n = len > CHUNK_SPOOL_IO ? CHUNK_SPOOL_IO : (size_t)len;
		if (chunk_spool_read(s, s->io, n, off) < 0)
			return -1;
		wx_sha256_update(&h, s->io, n);
		off += (int64_t)n;
		len -= (int64_t)n;
	}
	wx_sha256_digest(&h, md);
	return 0;
}

int
chunk_spool_whole_sha256(const struct chunk_spool *s, unsigned char md[32])
{
	wx_sha256_digest(&s->whole, md);
	return 0;
}

int
chunk_spool_prefix_sha256(struct chunk_spool *s, int64_t end, unsigned char md[32])
{
	if (end == s->produced) {
		wx_sha256_digest(&s->whole, md);
		return 0;
	}
	for (int i = 0; i < 2; i++) {
		const struct chunk_spool_slot *sl = &s->slot[i];
		if (end == sl->off) {
			wx_sha256_digest(&sl->start, md);
			return 0;
		}
	}
	for (int i = 0; i < 2; i++) {
		const struct chunk_spool_slot *sl = &s->slot[i];
		if (end < sl->off || end > sl->off + sl->len)
			continue;
		struct wx_sha256 h = sl->start;
		for (int64_t off = sl->off; off < end; ) {
			size_t n = end - off > CHUNK_SPOOL_IO ? CHUNK_SPOOL_IO : (size_t)(end - off);
			if (chunk_spool_read(s, s->io, n, off) < 0)
				return -1;
			wx_sha256_update(&h, s->io, n);
			off += (int64_t)n;
		}
		wx_sha256_digest(&h, md);
		return 0;
	}
	errno = ERANGE;
	return -1;
}
