/*
 * The archive as Wings writes it, plus what Wings loses: tar (pax restricted:
 * plain ustar headers unless a long name, a big size or a non-ASCII name
 * needs a pax record), uid/gid 0 and empty user/group names, modes with
 * setuid/setgid/sticky, mtimes in whole seconds, names relative with '/'.
 * Unlike Wings it keeps directory entries (empty directories survive),
 * symlinks (as links, target read with readlinkat on the directory fd) and
 * hard links (each inode's data once).  Towards a Go Wings destination
 * (peer.c) symlinks are left out and every hard-linked name is sent whole,
 * and each regular file's data is counted against its size.  Sockets, FIFOs
 * and devices are left out with a log line.
 *
 * libarchive writes unblocked tar bytes to our callback (no libarchive
 * filter); they go to the compressor, whose output goes to the caller's
 * sink.  A file whose size changes while it is read fails the archive.
 */
#include "autoconf.h"

#include "push.h"
#include "config.h"
#include "log.h"
#include "util.h"
#include "walk.h"

#include <archive.h>
#include <archive_entry.h>
#include <openssl/sha.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)

struct tar {
	struct job *job;
	struct walk *walk;
	struct inode_map *links;
	struct archive *a;
	struct archive_entry *entry;
	struct wx_compressor *comp;
	int fd;                 /* the regular file being archived, or -1 */
	char *path;             /* its relative path */
	int64_t size, left;     /* its size in the header, bytes still to read */
	unsigned char *buf;
	bool closed;            /* tar end blocks written */
	bool done;
	wx_compress_sink sink;
	void *sink_ctx;
	int level;
	int64_t entries;        /* walk entries consumed */
	char last[WX_ENTRY_PATH_MAX + 1];  /* the last of them */
	int64_t since_mark;     /* tar bytes since the compressed stream last began */
	char err[1024];
};

static la_ssize_t
to_compressor(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct tar *t = ctx;
	if (wx_compressor_write(t->comp, buf, len) < 0) {
		archive_set_error(a, EIO, "%s", wx_compressor_error(t->comp));
		return -1;
	}
	t->since_mark += (int64_t)len;
	return (la_ssize_t)len;
}

static struct wx_compressor *
new_compressor(struct tar *t, char *err, size_t errsize)
{
	return wx_compressor_new(t->job->codec, t->level,
	    (int)t->job->cfg->transfers.compression_threads, t->sink, t->sink_ctx, err, errsize);
}

static int
fail(struct tar *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct tar *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof t->err, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * compression_level 1..9 (gzip's scale) as a zstd level: 1-3 -> 1, 4-6 -> 2,
 * 7-9 -> 3.  zstd 1 already compresses better than gzip 1 with a fifth of
 * its CPU (bench/compress-results.md); higher zstd levels need more memory
 * per worker (compress.h's budget) for a few percent.
 */
static int
zstd_level(int level)
{
	return level <= 3 ? 1 : level <= 6 ? 2 : 3;
}

int
tar_codec_level(const struct job *job)
{
	int level = (int)job->cfg->transfers.compression_level;
	return job->codec == WX_COMPRESS_ZSTD ? zstd_level(level) : level;
}

struct tar *
tar_open(struct job *job, wx_compress_sink sink, void *sink_ctx, char *err, size_t errsize)
{
	struct tar *t = xcalloc(1, sizeof *t);
	t->job = job;
	t->fd = -1;
	t->walk = walk_open(job->server_dir, err, errsize);
	if (t->walk == NULL)
		goto fail;
	t->level = tar_codec_level(job);
	t->sink = sink;
	t->sink_ctx = sink_ctx;
	t->comp = new_compressor(t, err, errsize);
	if (t->comp == NULL)
		goto fail;
	wx_info("compressing with %s level %d, %d threads", wx_compress_format_name(job->codec),
	    t->level, wx_compressor_threads(t->comp));
	t->links = inode_map_new();
	t->buf = xmalloc(READ_CHUNK);
	t->entry = archive_entry_new();
	t->a = archive_write_new();
	if (t->a == NULL || t->entry == NULL) {
		snprintf(err, errsize, "libarchive: out of memory");
		goto fail;
	}
	/* Unblocked: tar bytes reach the callback as written, end blocks unpadded. */
	if (archive_write_set_format_pax_restricted(t->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(t->a, 0) != ARCHIVE_OK ||
	    archive_write_open2(t->a, t, NULL, to_compressor, NULL, NULL) != ARCHIVE_OK) {
		snprintf(err, errsize, "libarchive: %s", archive_error_string(t->a));
		goto fail;
	}
	return t;
fail:
	tar_close(t);
	return NULL;
}

void
tar_close(struct tar *t)
{
	if (t == NULL)
		return;
	if (t->fd >= 0)
		close(t->fd);
	if (t->a != NULL)
		archive_write_free(t->a);  /* after an error: closes without end blocks */
	archive_entry_free(t->entry);
	wx_compressor_free(t->comp);
	inode_map_free(t->links);
	walk_close(t->walk);
	free(t->path);
	free(t->buf);
	free(t);
}

const char *
tar_error(const struct tar *t)
{
	return t->err;
}

static const char *
kind_of(mode_t mode)
{
	if (S_ISSOCK(mode))
		return "socket";
	if (S_ISFIFO(mode))
		return "FIFO";
	if (S_ISCHR(mode))
		return "character device";
	if (S_ISBLK(mode))
		return "block device";
	return "special file";
}

static int
write_header(struct tar *t, const char *path)
{
	int rc = archive_write_header(t->a, t->entry);
	if (rc == ARCHIVE_OK)
		return 0;
	if (rc == ARCHIVE_WARN) {
		/* e.g. a name that is not UTF-8: stored as raw bytes (hdrcharset=BINARY). */
		wx_debug("archive: %s: %s", path, archive_error_string(t->a));
		return 0;
	}
	return fail(t, "cannot archive %s: %s", path, archive_error_string(t->a));
}

/* Opens the regular file e and fills its header; 1 = archived data follows. */
static int
begin_file(struct tar *t, const struct walk_entry *e, struct stat *st)
{
	int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	int fd = openat(e->dirfd, e->name, flags | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(e->dirfd, e->name, flags);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP)
			return 0;  /* removed or replaced by a link since the walk saw it */
		return fail(t, "cannot open %s: %s", e->path, strerror(errno));
	}
	if (fstat(fd, st) < 0) {
		int saved = errno;
		close(fd);
		return fail(t, "cannot examine %s: %s", e->path, strerror(saved));
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return 0;  /* replaced by something else since the walk saw it */
	}
	t->fd = fd;
	return 1;
}

/* Writes the header of one walk entry (and opens a regular file's data). */
static int
add_entry(struct tar *t, const struct walk_entry *e)
{
	struct stat st = e->st;
	if (!walk_archivable(st.st_mode)) {
		if (++t->job->skipped <= JOB_NAMED_SKIPS)
			wx_info("skipped %s %s: sockets, FIFOs and devices are not transferred",
			    kind_of(st.st_mode), e->path);
		return 0;
	}
	if (!peer_sends(t->job, e->path, st.st_mode))
		return 0;
	if (S_ISREG(st.st_mode) && begin_file(t, e, &st) <= 0)
		return t->err[0] ? -1 : 0;

	struct archive_entry *ae = t->entry;
	archive_entry_clear(ae);
	archive_entry_copy_pathname(ae, e->path);
	archive_entry_set_perm(ae, st.st_mode & 07777);
	archive_entry_set_mtime(ae, st.st_mtim.tv_sec, 0);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	int64_t data = 0;
	if (S_ISDIR(st.st_mode)) {
		archive_entry_set_filetype(ae, AE_IFDIR);
	} else if (S_ISLNK(st.st_mode)) {
		archive_entry_set_filetype(ae, AE_IFLNK);
		size_t cap = (size_t)st.st_size + 2;
		if (cap < 64)
			cap = 64;
		for (;;) {
			char *target = xmalloc(cap);
			ssize_t n = readlinkat(e->dirfd, e->name, target, cap);
			if (n < 0) {
				int saved = errno;
				free(target);
				if (saved == ENOENT || saved == EINVAL)
					return 0;  /* gone, or no longer a link */
				return fail(t, "cannot read symlink %s: %s", e->path, strerror(saved));
			}
			if ((size_t)n < cap) {
				target[n] = '\0';
				archive_entry_copy_symlink(ae, target);
				free(target);
				break;
			}
			free(target);
			if (cap > 1024 * 1024)
				return fail(t, "symlink %s has an absurdly long target", e->path);
			cap *= 2;
		}
	} else {
		archive_entry_set_filetype(ae, AE_IFREG);
		/* Go Wings stores a hard link entry as an empty file: whole files only. */
		const char *first = st.st_nlink > 1 && !t->job->peer.wings ?
		    inode_map_add(t->links, st.st_dev, st.st_ino, e->path) : NULL;
		if (first != NULL) {
			archive_entry_copy_hardlink(ae, first);
			archive_entry_set_size(ae, 0);
			close(t->fd);
			t->fd = -1;
		} else {
			archive_entry_set_size(ae, st.st_size);
			data = st.st_size;
		}
	}
	if (write_header(t, e->path) < 0)
		return -1;
	t->job->progress.files++;
	peer_sent(t->job, e->path, st.st_mode);
	if (S_ISREG(st.st_mode) && peer_file_begin(&t->job->peer, e->path,
	    archive_entry_hardlink(ae) != NULL, archive_entry_size(ae), st.st_size, t->err,
	    sizeof t->err) < 0)
		return -1;
	if (t->fd >= 0 && data == 0) {
		close(t->fd);
		t->fd = -1;
	}
	if (S_ISREG(st.st_mode) && t->fd < 0 &&
	    peer_file_end(&t->job->peer, t->err, sizeof t->err) < 0)
		return -1;
	if (t->fd >= 0) {
		free(t->path);
		t->path = xstrdup(e->path);
		t->size = t->left = data;
	}
	return 0;
}

/* Archives the next piece of the open file. */
static int
file_step(struct tar *t)
{
	size_t want = t->left > READ_CHUNK ? READ_CHUNK : (size_t)t->left;
	ssize_t n;
	do
		n = read(t->fd, t->buf, want);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(t, "cannot read %s: %s", t->path, strerror(errno));
	if (n == 0)
		return fail(t, "%s changed size while it was read (it was %lld bytes, it ended "
		    "after %lld): stop the server before transferring it", t->path,
		    (long long)t->size, (long long)(t->size - t->left));
	if (archive_write_data(t->a, t->buf, (size_t)n) != n)
		return fail(t, "cannot archive %s: %s", t->path, archive_error_string(t->a));
	t->left -= n;
	t->job->progress.bytes_read += n;
	peer_file_data(&t->job->peer, n);
	if (t->left > 0)
		return 0;
	struct stat st;
	if (fstat(t->fd, &st) < 0)
		return fail(t, "cannot examine %s: %s", t->path, strerror(errno));
	if (st.st_size != t->size)
		return fail(t, "%s changed size while it was read (%lld bytes, now %lld): stop the "
		    "server before transferring it", t->path, (long long)t->size,
		    (long long)st.st_size);
	/* Read once: its pages leave the page cache to the node's running servers
	 * (a hint; a failure changes nothing). */
	(void)posix_fadvise(t->fd, 0, 0, POSIX_FADV_DONTNEED);
	close(t->fd);
	t->fd = -1;
	return peer_file_end(&t->job->peer, t->err, sizeof t->err);
}

int
tar_step(struct tar *t)
{
	if (t->err[0])
		return -1;
	if (t->fd >= 0)
		return file_step(t) < 0 ? -1 : 1;
	if (t->done)
		return 0;
	if (!t->closed) {
		struct walk_entry e;
		int rc = walk_next(t->walk, &e);
		if (rc < 0)
			return fail(t, "%s", walk_error(t->walk));
		if (rc > 0) {
			t->entries++;
			wx_strlcpy(t->last, e.path, sizeof t->last);
			return add_entry(t, &e) < 0 ? -1 : 1;
		}
		/* End of the tree: the whole-file totals, then the end blocks. */
		if (peer_tree_end(t->job, t->err, sizeof t->err) < 0)
			return -1;
		if (archive_write_close(t->a) != ARCHIVE_OK)
			return fail(t, "cannot finish the archive: %s", archive_error_string(t->a));
		t->closed = true;
		return 1;
	}
	/* The compressor's last blocks and trailer, a piece per step. */
	int rc = wx_compressor_finish_some(t->comp);
	if (rc < 0)
		return fail(t, "cannot finish the compressed stream: %s",
		    wx_compressor_error(t->comp));
	if (rc > 0)
		return 1;
	t->done = true;
	return 0;
}

bool
tar_mark_due(const struct tar *t, int64_t every)
{
	return t->fd < 0 && !t->closed && t->err[0] == '\0' && t->since_mark >= every;
}

int
tar_mark(struct tar *t, int64_t *entries, unsigned char last_sha256[32])
{
	char err[512];
	if (archive_write_finish_entry(t->a) != ARCHIVE_OK)
		return fail(t, "cannot finish an entry: %s", archive_error_string(t->a));
	if (wx_compressor_finish(t->comp) < 0)
		return fail(t, "cannot end the compressed stream: %s", wx_compressor_error(t->comp));
	wx_compressor_free(t->comp);
	t->comp = new_compressor(t, err, sizeof err);
	if (t->comp == NULL)
		return fail(t, "cannot begin a compressed stream: %s", err);
	t->since_mark = 0;
	*entries = t->entries;
	SHA256((const unsigned char *)t->last, strlen(t->last), last_sha256);
	return 0;
}

struct tar *
tar_open_at(struct job *job, wx_compress_sink sink, void *sink_ctx, int64_t entries,
    const unsigned char last_sha256[32], char *err, size_t errsize)
{
	struct tar *t = tar_open(job, sink, sink_ctx, err, errsize);
	if (t == NULL)
		return NULL;
	/* The entries before the mark, walked again without reading a byte of
	 * them: the hard-link map as add_entry left it. */
	while (t->entries < entries) {
		struct walk_entry e;
		int rc = walk_next(t->walk, &e);
		if (rc <= 0) {
			snprintf(err, errsize, "%s", rc < 0 ? walk_error(t->walk) :
			    "the tree has fewer entries than when the mark was made");
			tar_close(t);
			return NULL;
		}
		t->entries++;
		wx_strlcpy(t->last, e.path, sizeof t->last);
		if (S_ISREG(e.st.st_mode) && e.st.st_nlink > 1 && !job->peer.wings)
			(void)inode_map_add(t->links, e.st.st_dev, e.st.st_ino, e.path);
	}
	unsigned char d[32];
	SHA256((const unsigned char *)t->last, strlen(t->last), d);
	if (memcmp(d, last_sha256, sizeof d) != 0) {
		snprintf(err, errsize, "entry %lld is not the one of the mark", (long long)entries);
		tar_close(t);
		return NULL;
	}
	return t;
}
