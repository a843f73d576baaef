/*
 * libFuzzer target: the destination's receive pipeline end to end on
 * arbitrary archive bytes, through the code production runs: the input is
 * the "archive" part of a multipart body (a boundary the input does not
 * contain), read by rx_read_parts() (handlers/destination/parts.c), which
 * calls rx_extract(): SHA-256, the gunzip layer, libarchive's decompression
 * filters (zstd, xz, bzip2, lz4), our entry checks, archive_write_disk into
 * a fresh staging directory.
 *
 * Layout (made once, in a mkdtemp directory B):
 *   B/outside/canary             the sentinel: must never change
 *   B/data/.wingxfer-staging/U   the staging directory, new for each input
 *   B/state/                     records and events (not checked)
 * After each input: nothing under B except staging and state changed; no
 * entry in staging has setuid/setgid bits; every hard-linked file in
 * staging has all its links inside staging.  Symlinks may point anywhere
 * (kept as the sender had them, as Pterodactyl's Wings does); the sentinel
 * check is what proves nothing was written through one.  Staging is removed
 * after each input.
 *
 * Per-input cost: inputs whose decompressed stream exceeds DECOMPRESSED_CAP
 * are skipped (a decompression bomb is not interesting to explore), and
 * build.disk_space is DISK_LIMIT, enforced by the production code.
 */
#include "autoconf.h"

#include "destination.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "multipart.h"
#include "record.h"
#include "state.h"
#include "util.h"

#include <archive.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define DECOMPRESSED_CAP (4 << 20)
#define DISK_LIMIT (8LL << 20)
#define UUID "0f0e0d0c-0b0a-4909-8807-060504030201"

static char base[64];
static char *staging_root, *staging, *state_dir;
static struct wx_config cfg;
static struct wx_state st;
static char *before;            /* the snapshot of B outside staging and state */
static bool verbose;            /* $FUZZ_EXTRACT_LOG: the outcome of each input, and logs */
static int cwd_fd;              /* rx_extract() leaves the process in "/": libFuzzer's
                                   relative paths need the directory it started in */

static void
die(const char *what)
{
	perror(what);
	abort();
}

/* --- snapshots --- */

static char *snap;
static size_t snap_len;

static void
snap_add(const char *line)
{
	size_t n = strlen(line);
	char *p = realloc(snap, snap_len + n + 2);
	if (p == NULL)
		abort();
	snap = p;
	memcpy(snap + snap_len, line, n);
	snap[snap_len + n] = '\n';
	snap_len += n + 1;
	snap[snap_len] = '\0';
}

static int
snap_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	if (strcmp(path, staging) == 0 || strcmp(path, state_dir) == 0)
		return 0;
	size_t sl = strlen(staging), tl = strlen(state_dir);
	if ((strncmp(path, staging, sl) == 0 && path[sl] == '/') ||
	    (strncmp(path, state_dir, tl) == 0 && path[tl] == '/'))
		return 0;
	/* Directories by name and mode (staging comes and goes in staging_root);
	 * anything else also by size, links and mtime (a write through a link). */
	char line[PATH_MAX + 128];
	if (S_ISDIR(sb->st_mode))
		snprintf(line, sizeof line, "%s %o", path, (unsigned)sb->st_mode);
	else
		snprintf(line, sizeof line, "%s %o %lld %lld %ld.%09ld", path, (unsigned)sb->st_mode,
		    (long long)sb->st_size, (long long)sb->st_nlink, (long)sb->st_mtim.tv_sec,
		    sb->st_mtim.tv_nsec);
	snap_add(line);
	return 0;
}

static int
cmp_lines(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The tree under B outside staging and state, one sorted line per entry. */
static char *
snapshot(void)
{
	snap = NULL;
	snap_len = 0;
	if (nftw(base, snap_one, 16, FTW_PHYS) != 0)
		die("nftw");
	if (snap == NULL)
		abort();
	size_t n = 0;
	for (char *p = snap; *p; p++)
		n += *p == '\n';
	char **lines = calloc(n, sizeof *lines);
	if (lines == NULL)
		abort();
	size_t i = 0;
	for (char *p = snap; *p; ) {
		char *nl = strchr(p, '\n');
		*nl = '\0';
		lines[i++] = p;
		p = nl + 1;
	}
	qsort(lines, i, sizeof *lines, cmp_lines);
	char *out = malloc(snap_len + 1);
	if (out == NULL)
		abort();
	char *o = out;
	for (size_t k = 0; k < i; k++) {
		size_t len = strlen(lines[k]);
		memcpy(o, lines[k], len);
		o[len] = '\n';
		o += len + 1;
	}
	*o = '\0';
	free(lines);
	free(snap);
	return out;
}

/* --- staging checks --- */

struct link_seen {
	dev_t dev;
	ino_t ino;
	nlink_t nlink, seen;
};
static struct link_seen *links;
static size_t nlinks;

static int
check_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	if (sb->st_mode & (S_ISUID | S_ISGID)) {
		fprintf(stderr, "fuzz_extract: %s has setuid/setgid bits (mode %o)\n", path,
		    (unsigned)sb->st_mode);
		abort();
	}
	if (S_ISREG(sb->st_mode) && sb->st_nlink > 1) {
		for (size_t i = 0; i < nlinks; i++) {
			if (links[i].dev == sb->st_dev && links[i].ino == sb->st_ino) {
				links[i].seen++;
				return 0;
			}
		}
		struct link_seen *p = realloc(links, (nlinks + 1) * sizeof *links);
		if (p == NULL)
			abort();
		links = p;
		links[nlinks++] = (struct link_seen){ sb->st_dev, sb->st_ino, sb->st_nlink, 1 };
	}
	return 0;
}

static void
check_staging(void)
{
	nlinks = 0;
	if (nftw(staging, check_one, 16, FTW_PHYS) != 0)
		die("nftw staging");
	for (size_t i = 0; i < nlinks; i++) {
		if (links[i].seen != links[i].nlink) {
			fprintf(stderr, "fuzz_extract: a file in staging has %lu links, %lu of them "
			    "in staging\n", (unsigned long)links[i].nlink, (unsigned long)links[i].seen);
			abort();
		}
	}
}

/* --- the input as a multipart body --- */

struct body {
	const uint8_t *parts[3];
	size_t lens[3];
	int i;
	size_t off;
};

static ssize_t
body_read(void *ctx, void *buf, size_t n)
{
	struct body *b = ctx;
	while (b->i < 3 && b->off == b->lens[b->i]) {
		b->i++;
		b->off = 0;
	}
	if (b->i == 3)
		return 0;
	size_t left = b->lens[b->i] - b->off;
	if (n > left)
		n = left;
	memcpy(buf, b->parts[b->i] + b->off, n);
	b->off += n;
	return (ssize_t)n;
}

/* --- the decompressed size, for the cap --- */

static bool
too_big(const uint8_t *data, size_t size)
{
	struct archive *a = archive_read_new();
	if (a == NULL)
		abort();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	bool big = false;
	struct archive_entry *e;
	if (archive_read_open_memory(a, data, size) == ARCHIVE_OK &&
	    archive_read_next_header(a, &e) == ARCHIVE_OK) {
		static char buf[64 * 1024];
		size_t total = 0;
		la_ssize_t n;
		while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
			total += (size_t)n;
			if (total > DECOMPRESSED_CAP) {
				big = true;
				break;
			}
		}
	}
	archive_read_free(a);
	return big;
}

static void
remove_base(void)
{
	(void)wx_remove_tree(base);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	wx_log_init("fuzz_extract");
	verbose = getenv("FUZZ_EXTRACT_LOG") != NULL;
	wx_log_set_level(verbose ? WX_LOG_DEBUG : WX_LOG_ERROR);
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(base, sizeof base, "%.40s/wx-fuzz-extract.XXXXXX", tmp);
	if (mkdtemp(base) == NULL)
		die("mkdtemp");
	char *outside = wx_path_join(base, "outside");
	char *data = wx_path_join(base, "data");
	staging_root = wx_path_join(data, ".wingxfer-staging");
	staging = wx_path_join(staging_root, UUID);
	state_dir = wx_path_join(base, "state");
	char *canary = wx_path_join(outside, "canary");
	if (mkdir(outside, 0755) < 0 || mkdir(data, 0755) < 0 || wx_mkdirs(staging_root, 0700) < 0)
		die("mkdir");
	FILE *f = fopen(canary, "w");
	if (f == NULL || fputs("canary\n", f) < 0 || fclose(f) != 0)
		die(canary);
	char err[256];
	if (wx_state_open(&st, state_dir, err, sizeof err) < 0) {
		fprintf(stderr, "fuzz_extract: %s\n", err);
		abort();
	}
	cfg.data_directory = data;
	cfg.uid = -1;
	cfg.gid = -1;
	cfg.transfers.disk_reserve = 0;
	free(outside);
	free(canary);
	before = snapshot();
	cwd_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cwd_fd < 0)
		die("open .");
	atexit(remove_base);
	fprintf(stderr, "fuzz_extract: working in %s\n", base);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20) || too_big(data, size))
		return 0;
	char boundary[WX_MP_MAX_BOUNDARY + 1];
	for (unsigned k = 0;; k++) {
		snprintf(boundary, sizeof boundary, "wxfuzz%u", k);
		if (memmem(data, size, boundary, strlen(boundary)) == NULL)
			break;
	}
	char head[256], tail[96];
	int hl = snprintf(head, sizeof head, "--%s\r\nContent-Disposition: form-data; "
	    "name=\"archive\"; filename=\"archive.tar.gz\"\r\nContent-Type: "
	    "application/octet-stream\r\n\r\n", boundary);
	int tl = snprintf(tail, sizeof tail, "\r\n--%s--\r\n", boundary);
	struct body b = { { (const uint8_t *)head, data, (const uint8_t *)tail },
	    { (size_t)hl, size, (size_t)tl }, 0, 0 };

	if (mkdir(staging, 0700) < 0)
		die(staging);
	struct receiver rx;
	memset(&rx, 0, sizeof rx);
	rx.cfg = &cfg;
	rx.st = &st;
	memcpy(rx.uuid, UUID, sizeof rx.uuid);
	wx_record_init(&rx.rec, rx.uuid, WX_ROLE_DESTINATION);
	rx.rec.status = WX_ST_PROCESSING;
	wx_strlcpy(rx.rec.phase, "receiving", sizeof rx.rec.phase);
	rx.lock_fd = -1;
	rx.staging_root = staging_root;
	rx.staging = staging;
	rx.staging_fd = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rx.staging_fd < 0)
		die(staging);
	rx.disk_limit = DISK_LIMIT;
	rx.mp = wx_mp_new(boundary, RX_READ_CHUNK, body_read, &b);
	if (rx.mp == NULL)
		abort();

	int rc = rx_read_parts(&rx);
	if (fchdir(cwd_fd) < 0)
		die("fchdir");
	if (verbose)
		fprintf(stderr, "fuzz_extract: %d files, status %d: %s [%s]\n", (int)rx.rec.files,
		    rx.status, rx.error, rx.detail);
	/* A failure always has a status and words for the answer; success has neither. */
	if ((rc < 0) != (rx.status != 0) || (rc < 0 && rx.error[0] == '\0'))
		abort();
	if (rc == 0 && (!rx.have_archive || strlen(rx.archive_sha256) != 64))
		abort();

	check_staging();
	char *after = snapshot();
	if (strcmp(before, after) != 0) {
		fprintf(stderr, "fuzz_extract: the tree outside staging changed:\n--- before\n%s"
		    "--- after\n%s", before, after);
		abort();
	}
	free(after);

	rx_parts_cleanup(&rx);
	wx_mp_free(rx.mp);
	EVP_MD_CTX_free(rx.sha);
	close(rx.staging_fd);
	wx_record_clear(&rx.rec);
	if (wx_remove_tree(staging) < 0)
		die("remove staging");
	return 0;
}
