/*
 * The parts of the upload, as FeatherWings, Pelican Wings and Pterodactyl
 * Wings send them:
 *   archive                        the server's files (extract.c)
 *   checksum, checksum_archive*    hex SHA-256 of the archive part's bytes
 *   backup_<name>                  a backup, kept as <backup_directory>/<uuid>/<name>
 *   checksum_backup_<name>         hex SHA-256 of that backup
 *   install_logs                   kept as <log_directory>/install/<uuid>.log
 * Any other part is read and ignored.  Backups and the install log are
 * written to hidden partial files and put in place only when the transfer
 * succeeds; on failure they are removed.
 */
#include "autoconf.h"

#include "destination.h"
#include "archive_paths.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
rx_mp_failed(struct receiver *rx)
{
	if (rx->status != 0)
		return -1; /* the reader already said why (cut off, cancelled) */
	const char *why = wx_mp_error(rx->mp);
	switch (wx_mp_errcode(rx->mp)) {
	case WX_MP_TRUNCATED:
		return rx_fail(rx, 400, "The upload is incomplete: %s; nothing was installed.", why);
	case WX_MP_INPUT:
		return rx_fail(rx, 400, "The upload was cut off before its end; nothing was "
		    "installed.");
	default:
		return rx_fail(rx, 400, "The upload is not valid multipart/form-data: %s; nothing "
		    "was installed.", why);
	}
}

/* Reads a small text part (at most max bytes) into out, trimmed; 0 or -1. */
static int
read_small(struct receiver *rx, const char *what, char *out, size_t max)
{
	size_t len = 0;
	for (;;) {
		char buf[512];
		ssize_t n = wx_mp_read(rx->mp, buf, sizeof buf);
		if (n < 0)
			return rx_mp_failed(rx);
		if (n == 0)
			break;
		if (len + (size_t)n > max)
			return rx_fail(rx, 400, "The %s part is longer than %zu bytes; nothing was "
			    "installed.", what, max);
		memcpy(out + len, buf, (size_t)n);
		len += (size_t)n;
	}
	out[len] = '\0';
	size_t start = 0;
	while (start < len && isspace((unsigned char)out[start]))
		start++;
	while (len > start && isspace((unsigned char)out[len - 1]))
		len--;
	memmove(out, out + start, len - start);
	out[len - start] = '\0';
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

static struct rx_backup *
backup_slot(struct receiver *rx, const char *name)
{
	for (int i = 0; i < rx->nbackups; i++)
		if (strcmp(rx->backups[i].name, name) == 0)
			return &rx->backups[i];
	rx->backups = xrealloc(rx->backups, (size_t)(rx->nbackups + 1) * sizeof *rx->backups);
	struct rx_backup *b = &rx->backups[rx->nbackups++];
	memset(b, 0, sizeof *b);
	wx_strlcpy(b->name, name, sizeof b->name);
	return b;
}

/*
 * Streams the current part into a new hidden file next to its final place.
 * *sha256 receives the hex digest.  The file is counted against free space.
 * max > 0 stops writing (and keeps reading) past max bytes.
 */
static int
receive_file(struct receiver *rx, const char *what, const char *tmp, char *sha256, int64_t max,
    bool *cut)
{
	(void)unlink(tmp); /* a partial file of an earlier, killed attempt */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rx_detail(rx, "open %s: %s", tmp, strerror(errno));
		return rx_fail(rx, 500, "This node cannot write the %s it is receiving.", what);
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = -1;
	int64_t written = 0;
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rx_fail(rx, 500, "SHA-256 is not available on this node.");
		goto out;
	}
	for (;;) {
		const void *buf;
		ssize_t n = wx_mp_read_ptr(rx->mp, &buf, SIZE_MAX);
		if (n < 0) {
			rx_mp_failed(rx);
			goto out;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
			rx_fail(rx, 500, "SHA-256 failed on this node.");
			goto out;
		}
		if (max > 0 && written + n > max) {
			*cut = true;
			continue;
		}
		if (rx_charge(rx, n, what) < 0)
			goto out;
		if (wx_write_all(fd, buf, (size_t)n) < 0) {
			rx_detail(rx, "write %s: %s", tmp, strerror(errno));
			if (errno == ENOSPC || errno == EDQUOT)
				rx_fail(rx, 507, "Not enough disk space on this node for the %s.", what);
			else
				rx_fail(rx, 500, "This node cannot write the %s it is receiving.", what);
			goto out;
		}
		written += n;
		if (rx_cancel_check(rx, false))
			goto out;
	}
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	if (EVP_DigestFinal_ex(md, d, &dlen) != 1 || dlen != 32) {
		rx_fail(rx, 500, "SHA-256 failed on this node.");
		goto out;
	}
	wx_hex(d, dlen, sha256);
	if (fsync(fd) < 0) {
		rx_detail(rx, "fsync %s: %s", tmp, strerror(errno));
		rx_fail(rx, 500, "This node cannot write the %s it is receiving.", what);
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	if (close(fd) < 0 && rc == 0) {
		rx_detail(rx, "close %s: %s", tmp, strerror(errno));
		rc = rx_fail(rx, 500, "This node cannot write the %s it is receiving.", what);
	}
	return rc;
}

static int
backup_part(struct receiver *rx, const char *raw_name, bool checksum)
{
	char name[WX_SAFE_NAME_MAX + 1];
	if (wx_safe_file_name(raw_name, name, sizeof name) < 0) {
		rx_log(rx, "Ignored a backup part without a usable name.");
		return 0;
	}
	struct rx_backup *b = backup_slot(rx, name);
	if (checksum) {
		if (read_small(rx, "backup checksum", b->expected, RX_CHECKSUM_MAX) < 0)
			return -1;
		b->has_expected = true;
		return 0;
	}
	if (b->received || b->tmp_path != NULL)
		return rx_fail(rx, 400, "The upload has two backup parts with the same name; nothing "
		    "was installed.");
	char *dir = xasprintf("%s/%s", rx->cfg->backup_directory, rx->uuid);
	struct stat st;
	bool existed = rx->parts_dir != NULL || lstat(dir, &st) == 0;
	/* In the sandbox (sandbox.c) the partial file waits in the parts
	 * directory and the parent creates dir afterwards. */
	if (rx->parts_dir == NULL && wx_mkdirs(dir, 0700) < 0) {
		rx_detail(rx, "mkdir %s: %s", dir, strerror(errno));
		free(dir);
		return rx_fail(rx, 500, "This node cannot create its backup directory "
		    "(system.backup_directory).");
	}
	if (!existed && rx->backup_dir_made == NULL)
		rx->backup_dir_made = xstrdup(dir);
	b->tmp_path = xasprintf("%s/.%s.wingxfer-partial", rx->parts_dir != NULL ? rx->parts_dir : dir,
	    name);
	b->final_path = xasprintf("%s/%s", dir, name);
	free(dir);
	bool cut = false;
	if (receive_file(rx, "backup", b->tmp_path, b->sha256, 0, &cut) < 0)
		return -1;
	b->received = true;
	rx_log(rx, "Received backup %s.", name);
	return 0;
}

static int
install_log_part(struct receiver *rx)
{
	if (rx->install_log_tmp != NULL)
		return 0; /* the first one counts; a second is ignored */
	char *dir = xasprintf("%s/install", rx->cfg->log_directory);
	if (rx->parts_dir == NULL && wx_mkdirs(dir, 0750) < 0) {
		wx_warn("cannot create %s for the install log: %s", dir, strerror(errno));
		rx_log(rx, "The install log was not kept: %s cannot be created.", dir);
		free(dir);
		return 0; /* not worth failing the transfer for */
	}
	rx->install_log_tmp = xasprintf("%s/.%s.log.wingxfer-partial",
	    rx->parts_dir != NULL ? rx->parts_dir : dir, rx->uuid);
	rx->install_log_final = xasprintf("%s/%s.log", dir, rx->uuid);
	free(dir);
	char sha[65];
	bool cut = false;
	if (receive_file(rx, "install log", rx->install_log_tmp, sha, RX_INSTALL_LOG_MAX, &cut) < 0)
		return -1;
	if (cut)
		rx_log(rx, "The install log was longer than %lld MiB; only its start was kept.",
		    RX_INSTALL_LOG_MAX >> 20);
	return 0;
}

int
rx_read_parts(struct receiver *rx)
{
	struct wx_mp_part part;
	int r;
	while ((r = wx_mp_next_part(rx->mp, &part)) == 1) {
		const char *n = part.name;
		if (rx_presync_part_name(n)) {
			if (rx_presync_part(rx, n) < 0)
				return -1;
		} else if (strcmp(n, "archive") == 0) {
			if (rx->presync != NULL)
				return rx_fail(rx, 400, "The upload has both pre-sync parts and an archive "
				    "part; nothing was installed.");
			if (rx->have_archive)
				return rx_fail(rx, 400, "The upload has two archive parts; nothing was "
				    "installed.");
			rx->have_archive = true;
			if (rx_extract(rx) < 0)
				return -1;
		} else if (strcmp(n, "checksum") == 0 || strncmp(n, "checksum_archive", 16) == 0) {
			char value[RX_CHECKSUM_MAX + 1];
			if (read_small(rx, "checksum", value, RX_CHECKSUM_MAX) < 0)
				return -1;
			if (rx->nchecksums < RX_MAX_CHECKSUMS)
				memcpy(rx->checksums[rx->nchecksums++], value, sizeof value);
		} else if (strncmp(n, "checksum_backup_", 16) == 0) {
			if (backup_part(rx, n + 16, true) < 0)
				return -1;
		} else if (strncmp(n, "backup_", 7) == 0) {
			if (backup_part(rx, n + 7, false) < 0)
				return -1;
		} else if (strcmp(n, "install_logs") == 0) {
			if (install_log_part(rx) < 0)
				return -1;
		} else {
			wx_debug("ignoring part %d (%s)", part.index + 1, n);
		}
		if (rx->status != 0)
			return -1;
	}
	if (r < 0)
		return rx_mp_failed(rx);
	return rx_presync_end(rx);
}

int
rx_parts_verify(struct receiver *rx)
{
	bool enforce = rx->cfg->transfers.perform_checksum_checks;
	for (int i = 0; i < rx->nbackups; i++) {
		struct rx_backup *b = &rx->backups[i];
		if (!b->received)
			continue;
		if (!b->has_expected) {
			if (enforce)
				return rx_fail(rx, 422, "Backup %s arrived without its checksum "
				    "(checksum_backup_%s), and this node requires checksums; nothing was "
				    "installed.", b->name, b->name);
			continue;
		}
		if (wx_is_sha256_hex(b->expected) && strcmp(b->expected, b->sha256) == 0)
			continue;
		if (enforce)
			return rx_fail(rx, 422, "Backup %s does not match its checksum: it was changed "
			    "or damaged on the way; nothing was installed.", b->name);
		char *w = xasprintf("backup %s does not match its checksum (kept: "
		    "perform_checksum_checks is false)", b->name);
		wx_record_set_warning(&rx->rec, w);
		rx_log(rx, "Warning: %s.", w);
		free(w);
	}
	return 0;
}

int
rx_parts_install(struct receiver *rx)
{
	int rc = 0;
	for (int i = 0; i < rx->nbackups; i++) {
		struct rx_backup *b = &rx->backups[i];
		if (b->tmp_path == NULL)
			continue;
		if (wx_move_file(b->tmp_path, b->final_path) < 0) {
			wx_err("cannot put backup %s in place: %s", b->final_path, strerror(errno));
			rc = -1;
		} else {
			free(b->tmp_path);
			b->tmp_path = NULL;
		}
	}
	if (rx->install_log_tmp != NULL) {
		if (wx_move_file(rx->install_log_tmp, rx->install_log_final) < 0) {
			wx_err("cannot put the install log %s in place: %s", rx->install_log_final,
			    strerror(errno));
			rc = -1;
		} else {
			free(rx->install_log_tmp);
			rx->install_log_tmp = NULL;
		}
	}
	free(rx->backup_dir_made);
	rx->backup_dir_made = NULL;  /* it holds the installed backups now */
	return rc;
}

void
rx_parts_cleanup(struct receiver *rx)
{
	for (int i = 0; i < rx->nbackups; i++) {
		if (rx->backups[i].tmp_path != NULL)
			(void)unlink(rx->backups[i].tmp_path);
		free(rx->backups[i].tmp_path);
		free(rx->backups[i].final_path);
	}
	free(rx->backups);
	rx->backups = NULL;
	rx->nbackups = 0;
	if (rx->backup_dir_made != NULL && rmdir(rx->backup_dir_made) < 0 && errno != ENOENT &&
	    errno != ENOTEMPTY && errno != EEXIST)
		wx_warn("cannot remove the backup directory %s this transfer created: %s",
		    rx->backup_dir_made, strerror(errno));
	free(rx->backup_dir_made);
	rx->backup_dir_made = NULL;
	if (rx->install_log_tmp != NULL)
		(void)unlink(rx->install_log_tmp);
	free(rx->install_log_tmp);
	free(rx->install_log_final);
	rx->install_log_tmp = rx->install_log_final = NULL;
}
