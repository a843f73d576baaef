/*
 * The archive part: its bytes are hashed (SHA-256 of exactly what the sender
 * sent) and fed to libarchive, which extracts into the private staging
 * directory <system.data>/.wingxfer-staging/<uuid>.
 *
 * Read side: tar (ustar, pax, GNU) uncompressed or compressed with gzip,
 * zstd, xz, bzip2 or lz4, all in-process (no external filter programs);
 * gzip is decoded by gunzip.c, which checks every member's CRC-32 and
 * length (libarchive's gzip filter does not); concatenated-archive reading,
 * so the compressed stream is read to its end and a short or damaged gzip
 * is an error even when the tar end marker came first.
 *
 * Write side: archive_write_disk relative to the staging directory (the
 * process's cwd while extracting) with SECURE_NODOTDOT, SECURE_SYMLINKS,
 * SECURE_NOABSOLUTEPATHS, TIME and PERM, without OWNER, XATTR, ACL or
 * FFLAGS.  Before libarchive sees an entry we refuse paths and hardlink
 * targets that leave staging, paths deeper than the tree rules allow
 * (tree_rules.h), hardlinks through symlinked directories and hardlinks that
 * carry data, ignore entries naming the root itself ("./": its mode and
 * owner are ours), and skip devices, FIFOs and sockets; setuid/setgid bits
 * are cleared; when
 * running as root each entry is then given to system.user.uid/gid (lchown).
 * Every entry is charged against build.disk_space and the free space above
 * system.transfers.disk_reserve before it is written.  Regular files' data
 * is written back while receiving (system.transfers.write_behind,
 * writebehind.h).
 */
#include "autoconf.h"

#include "destination.h"
#include "archive_paths.h"
#include "config.h"
#include "log.h"
#include "util.h"
#include "writebehind.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define SPACE_RECHECK (64LL << 20)   /* re-measure free space after this many bytes */
#define MIN_FREE_INODES 64

static const int write_flags = ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
    ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM;

static int
measure_space(struct receiver *rx)
{
	struct statvfs sv;
	if (statvfs(rx->cfg->data_directory, &sv) < 0)
		return rx_fail(rx, 500, "Cannot measure the free space of system.data on this node.");
	int64_t free_bytes = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
	rx->space_left = free_bytes - rx->cfg->transfers.disk_reserve;
	rx->space_checked_at = rx->extracted;
	if (sv.f_files > 0 && sv.f_favail < MIN_FREE_INODES) {
		rx_detail(rx, "%llu free inodes on %s", (unsigned long long)sv.f_favail,
		    rx->cfg->data_directory);
		return rx_fail(rx, 507, "Not enough disk space on this node: the filesystem of "
		    "system.data has no free inodes left; nothing was installed.");
	}
	return 0;
}

int
rx_charge(struct receiver *rx, int64_t bytes, const char *what)
{
	char a[32], b[32];
	bool server_files = strcmp(what, "backup") != 0 && strcmp(what, "install log") != 0;
	/* bytes comes from the archive (up to INT64_MAX): compared without overflow. */
	if (server_files && rx->disk_limit > 0 && bytes > rx->disk_limit - rx->extracted) {
		wx_format_bytes(rx->extracted, a, sizeof a);
		return rx_fail(rx, 413, "The server's files are larger than its disk limit "
		    "(build.disk_space = %lld MiB in the panel); stopped after %s; nothing was "
		    "installed.", (long long)(rx->disk_limit >> 20), a);
	}
	if (bytes > rx->space_left || rx->extracted - rx->space_checked_at >= SPACE_RECHECK) {
		if (measure_space(rx) < 0)
			return -1;
	}
	if (bytes > rx->space_left) {
		wx_format_bytes(rx->space_left > 0 ? rx->space_left : 0, a, sizeof a);
		wx_format_bytes(rx->cfg->transfers.disk_reserve, b, sizeof b);
		return rx_fail(rx, 507, "Not enough disk space on this node: the %s being received "
		    "needs more than the %s left above system.transfers.disk_reserve (%s); nothing "
		    "was installed.", what, a, b);
	}
	rx->space_left -= bytes;
	rx->extracted += bytes;
	return 0;
}

/* The archive part's bytes as sent, hashed: the gunzip layer's input. */
static ssize_t
pull_part(void *ctx, const void **buf)
{
	struct receiver *rx = ctx;
	ssize_t n = wx_mp_read_ptr(rx->mp, buf, SIZE_MAX);
	if (n < 0)
		return rx_mp_failed(rx);
	if (n > 0) {
		if (!rx->body_checksum && EVP_DigestUpdate(rx->sha, *buf, (size_t)n) != 1)
			return rx_fail(rx, 500, "SHA-256 failed on this node.");
		rx->archive_bytes += (uint64_t)n;
	}
	return n;
}

/* Records a failed gunzip read (the upload's own failure is already recorded); -1. */
static int
gunzip_failed(struct receiver *rx)
{
	if (rx->gz.error[0] == '\0')
		return -1;
	rx_detail(rx, "after %llu bytes of the archive part: %s",
	    (unsigned long long)rx->archive_bytes, rx->gz.error);
	return rx_fail(rx, 422, "The archive's gzip data is damaged or cut short (%s); nothing "
	    "was installed.", rx->gz.error);
}

static la_ssize_t
part_read(struct archive *a, void *ctx, const void **buf)
{
	struct receiver *rx = ctx;
	ssize_t n = rx_gunzip_read(&rx->gz, buf);
	if (n < 0) {
		gunzip_failed(rx);
		archive_set_error(a, EIO, "the archive part could not be read");
		return -1;
	}
	return n;
}

static const char *
type_name(mode_t type)
{
	switch (type) {
	case AE_IFCHR: return "a character device";
	case AE_IFBLK: return "a block device";
	case AE_IFIFO: return "a FIFO";
	case AE_IFSOCK: return "a socket";
	}
	return "an unknown type";
}

/* Whether a directory component of path (relative to dirfd) is a symlink. */
static bool
through_symlink(int dirfd, const char *path)
{
	char buf[WX_ENTRY_PATH_MAX + 1];
	size_t len = wx_strlcpy(buf, path, sizeof buf);
	if (len >= sizeof buf)
		return true;
	for (char *p = buf; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		struct stat st;
		bool link = buf[0] != '\0' && fstatat(dirfd, buf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode);
		*p = '/';
		if (link)
			return true;
	}
	return false;
}

/* Maps a failed archive_write_* to the failure: whose fault and which words. */
static int
write_failed(struct receiver *rx, struct archive *w, int64_t index, const char *path)
{
	int e = archive_errno(w);
	const char *msg = archive_error_string(w);
	rx_detail(rx, "entry %lld (%s): %s", (long long)index, path, msg ? msg : "unknown error");
	if (e == ENOSPC || e == EDQUOT)
		return rx_fail(rx, 507, "Not enough disk space on this node: the disk filled up "
		    "while extracting entry %lld; nothing was installed.", (long long)index);
	if (e == EIO || e == EROFS || e == ENOMEM || e == EMFILE || e == ENFILE)
		return rx_fail(rx, 500, "This node could not write entry %lld of the archive "
		    "(%s); nothing was installed.", (long long)index, strerror(e));
	return rx_fail(rx, 422, "Entry %lld of the archive cannot be extracted safely (it would "
	    "write outside the server's directory, through a symlink, or over something it may "
	    "not replace); nothing was installed.", (long long)index);
}

static int
refuse_entry(struct receiver *rx, int64_t index, const char *path, const char *what,
    const char *problem)
{
	rx_detail(rx, "entry %lld: %s '%s' %s", (long long)index, what, path, problem);
	return rx_fail(rx, 422, "Entry %lld of the archive is unsafe: its %s %s; nothing was "
	    "installed.", (long long)index, what, problem);
}

static int
copy_data(struct receiver *rx, struct archive *a, struct archive *w, struct rx_writebehind *wb,
    int64_t index, const char *path)
{
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t offset;
		int r = archive_read_data_block(a, &buf, &size, &offset);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN) {
			if (rx->status == 0) {
				rx_detail(rx, "entry %lld (%s): %s", (long long)index, path,
				    archive_error_string(a));
				rx_fail(rx, 422, "The archive is damaged or cut short inside entry %lld; "
				    "nothing was installed.", (long long)index);
			}
			return -1;
		}
		if (archive_write_data_block(w, buf, size, offset) < ARCHIVE_WARN)
			return write_failed(rx, w, index, path);
		rx_wb_wrote(wb, offset, (int64_t)size);
		rx->rec.bytes_sent += (int64_t)size;
		if (rx_cancel_check(rx, false))
			return -1;
		rx_progress(rx, false);
	}
}

/*
 * Charge of one entry against the limits: content bytes, 4 KiB per directory.
 * A hardlink adds a name, no bytes (one with data is refused before this).
 */
static int64_t
entry_charge(struct archive_entry *e, mode_t type)
{
	if (archive_entry_hardlink(e) != NULL)
		return 0;
	if (type == AE_IFREG)
		return archive_entry_size(e) > 0 ? archive_entry_size(e) : 0;
	if (type == AE_IFDIR)
		return 4096;
	if (type == AE_IFLNK && archive_entry_symlink(e) != NULL)
		return (int64_t)strlen(archive_entry_symlink(e));
	return 0;
}

static int
give_to_user(struct receiver *rx, const char *path)
{
	if (geteuid() != 0 || rx->cfg->uid < 0 || rx->cfg->gid < 0)
		return 0;
	if (fchownat(rx->staging_fd, path, (uid_t)rx->cfg->uid, (gid_t)rx->cfg->gid,
	    AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	rx_detail(rx, "lchown %s to %lld:%lld: %s", path, (long long)rx->cfg->uid,
	    (long long)rx->cfg->gid, strerror(errno));
	return rx_fail(rx, 500, "This node could not give the extracted files to "
	    "system.user (uid %lld, gid %lld); nothing was installed.", (long long)rx->cfg->uid,
	    (long long)rx->cfg->gid);
}

/* One entry: checks, limits, write, data, owner.  0, 1 when skipped, -1. */
static int
extract_entry(struct receiver *rx, struct archive *a, struct archive *w, struct rx_writebehind *wb,
    struct archive_entry *e, int64_t index)
{
	const char *path = archive_entry_pathname(e);
	if (path == NULL)
		return refuse_entry(rx, index, "", "path", "is missing or not valid text");
	const char *problem = wx_entry_path_problem(path);
	if (problem != NULL)
		return refuse_entry(rx, index, path, "path", problem);
	size_t depth = wx_entry_path_depth(path);
	if (depth == 0) {
		/* "." or "./": the server root's mode, owner and times are ours. */
		wx_debug("entry %lld (%s) names the server root: ignored", (long long)index, path);
		return 1;
	}
	const char *link = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	if (depth > (link == NULL && type == AE_IFDIR ? WX_TREE_MAX_DEPTH - 1 : WX_TREE_MAX_DEPTH)) {
		rx_detail(rx, "entry %lld: %zu levels: %.200s...", (long long)index, depth, path);
		return rx_fail(rx, 422, "Entry %lld of the archive is nested deeper than the %d "
		    "directory levels a transfer may hold (docs/archive-rules.md); nothing was "
		    "installed.", (long long)index, WX_TREE_MAX_DEPTH);
	}
	if (link != NULL) {
		problem = wx_entry_path_problem(link);
		if (problem != NULL)
			return refuse_entry(rx, index, link, "hardlink target", problem);
		if (through_symlink(rx->staging_fd, link))
			return refuse_entry(rx, index, link, "hardlink target", "goes through a symlink");
		/* libarchive would write the body into the target: bytes nobody charged. */
		if (archive_entry_size(e) > 0) {
			rx_detail(rx, "entry %lld: hardlink '%s' -> '%s' with %lld bytes of data",
			    (long long)index, path, link, (long long)archive_entry_size(e));
			return rx_fail(rx, 422, "Entry %lld of the archive is a hardlink that carries "
			    "data (tar writers store a hardlink without data; its file comes earlier in "
			    "the archive); nothing was installed.", (long long)index);
		}
	}
	if (link == NULL && type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK) {
		if (++rx->skipped <= RX_NAMED_REPEATS) {
			wx_info("entry %lld (%s) is %s: skipped", (long long)index, path,
			    type_name(type));
			rx_log(rx, "Skipped %s in the archive (not extracted): %s", type_name(type),
			    path);
		}
		return 1;
	}
	archive_entry_set_perm(e, archive_entry_perm(e) & 07777 & ~(mode_t)(S_ISUID | S_ISGID));
	if (rx_charge(rx, entry_charge(e, type), "server's files") < 0)
		return -1;
	int r = archive_write_header(w, e);
	if (r < ARCHIVE_WARN)
		return write_failed(rx, w, index, path);
	if (r == ARCHIVE_WARN && ++rx->warnings <= RX_NAMED_REPEATS)
		wx_warn("entry %lld (%s): %s", (long long)index, path, archive_error_string(w));
	if (archive_entry_size(e) > 0) {
		if (link == NULL && type == AE_IFREG)
			rx_wb_file(wb, path);
		if (copy_data(rx, a, w, wb, index, path) < 0)
			return -1;
	}
	r = archive_write_finish_entry(w);
	if (r < ARCHIVE_WARN)
		return write_failed(rx, w, index, path);
	rx_wb_file_done(wb);
	return give_to_user(rx, path);
}

static struct archive *
open_reader(struct receiver *rx)
{
	struct archive *a = archive_read_new();
	if (a == NULL)
		return NULL;
	int (*const filters[])(struct archive *) = {
		archive_read_support_filter_gzip, archive_read_support_filter_zstd,
		archive_read_support_filter_xz, archive_read_support_filter_bzip2,
		archive_read_support_filter_lz4,
	};
	for (size_t i = 0; i < WX_ARRAY_LEN(filters); i++) {
		/* ARCHIVE_WARN would mean an external program: not wanted. */
		if (filters[i](a) != ARCHIVE_OK) {
			wx_warn("libarchive: decompression filter %zu is not built in; disabled", i);
		}
	}
	if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
	    archive_read_set_options(a, "tar:read_concatenated_archives") != ARCHIVE_OK ||
	    archive_read_open(a, rx, NULL, part_read, NULL) != ARCHIVE_OK) {
		if (rx->status == 0) {
			rx_detail(rx, "libarchive: %s", archive_error_string(a));
			rx_fail(rx, 422, "The archive part is not a tar archive this node can read "
			    "(tar, optionally gzip/zstd/xz/bzip2/lz4 compressed); nothing was installed.");
		}
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/*
 * Reads what libarchive left of the part (tar padding, a gzip trailer) into
 * the hash, through the gunzip layer so the last CRC and length are checked.
 */
static int
drain_part(struct receiver *rx)
{
	for (;;) {
		const void *buf;
		ssize_t n = rx_gunzip_read(&rx->gz, &buf);
		if (n < 0)
			return gunzip_failed(rx);
		if (n == 0)
			return 0;
	}
}

static int
extract_all(struct receiver *rx, struct archive *a, struct archive *w, struct rx_writebehind *wb)
{
	for (int64_t index = 1;; index++) {
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN) {
			if (rx->status == 0) {
				rx_detail(rx, "before entry %lld: %s", (long long)index,
				    archive_error_string(a));
				rx_fail(rx, 422, index == 1 ?
				    "The archive part is not a tar archive this node can read (tar, "
				    "optionally gzip/zstd/xz/bzip2/lz4 compressed), or it is damaged; "
				    "nothing was installed." :
				    "The archive is damaged or cut short after entry %lld; nothing was "
				    "installed.", (long long)(index - 1));
			}
			return -1;
		}
		if (r == ARCHIVE_WARN && ++rx->warnings <= RX_NAMED_REPEATS)
			wx_warn("entry %lld: %s", (long long)index, archive_error_string(a));
		if (index == 1)
			wx_info("the archive is %s-compressed tar", archive_filter_name(a, 0));
		int er = extract_entry(rx, a, w, wb, e, index);
		if (er < 0)
			return -1;
		if (er == 0)
			rx->rec.files++;
		if (rx_cancel_check(rx, false))
			return -1;
		rx_progress(rx, false);
	}
}

/* The one line for what was only counted after the first RX_NAMED_REPEATS. */
static void
sum_up_repeats(struct receiver *rx)
{
	if (rx->skipped > RX_NAMED_REPEATS) {
		wx_info("%lld devices, FIFOs or sockets in the archive were skipped in all (the "
		    "first %d named above)", (long long)rx->skipped, RX_NAMED_REPEATS);
		rx_log(rx, "Skipped %lld devices, FIFOs or sockets in the archive in all (not "
		    "extracted; the first %d are named above).", (long long)rx->skipped,
		    RX_NAMED_REPEATS);
	}
	if (rx->warnings > RX_NAMED_REPEATS)
		wx_warn("%lld archive warnings in all (the first %d shown above)",
		    (long long)rx->warnings, RX_NAMED_REPEATS);
}

int
rx_extract(struct receiver *rx)
{
	rx->sha = EVP_MD_CTX_new();
	if (rx->sha == NULL || EVP_DigestInit_ex(rx->sha, EVP_sha256(), NULL) != 1)
		return rx_fail(rx, 500, "SHA-256 is not available on this node.");
	if (measure_space(rx) < 0)
		return -1;
	if (fchdir(rx->staging_fd) < 0)
		return rx_fail(rx, 500, "This node cannot enter its staging directory.");
	rx_gunzip_init(&rx->gz, pull_part, rx);
	struct rx_writebehind wb;
	rx_wb_init(&wb, rx->cfg->transfers.write_behind, rx->cfg->transfers.write_behind_flush,
	    rx->staging_fd);
	struct archive *w = archive_write_disk_new();
	struct archive *a = w ? open_reader(rx) : NULL;
	int rc = -1;
	if (w == NULL || archive_write_disk_set_options(w, write_flags) != ARCHIVE_OK) {
		rx_fail(rx, 500, "libarchive could not be set up on this node.");
	} else if (a != NULL && extract_all(rx, a, w, &wb) == 0) {
		/* Directory modes and times are applied here, deepest first. */
		if (archive_write_close(w) < ARCHIVE_WARN)
			write_failed(rx, w, rx->rec.files, "(directory fix-ups)");
		else if (drain_part(rx) == 0)
			rc = 0;
	}
	sum_up_repeats(rx);
	if (a != NULL)
		archive_read_free(a);
	if (w != NULL)
		archive_write_free(w);
	rx_wb_end(&wb, rc == 0);
	rx_gunzip_free(&rx->gz);
	if (chdir("/") < 0)
		wx_warn("chdir / after extraction: %s", strerror(errno));
	if (rc == 0 && !rx->body_checksum) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;
		if (EVP_DigestFinal_ex(rx->sha, md, &mdlen) != 1 || mdlen != 32)
			return rx_fail(rx, 500, "SHA-256 failed on this node.");
		wx_hex(md, mdlen, rx->archive_sha256);
	}
	if (rc == 0)
		rx_progress(rx, true);
	return rx->status ? -1 : rc;
}
