/*
 * bench-data: the deterministic datasets of `make bench` (bench/e2e-bench).
 * Same arguments, same tree, byte for byte (contents, sizes, names, modes,
 * mtimes); nothing depends on the clock or on /dev/urandom.
 *
 *   bench-data mixed DIR [--bytes N] [--seed S]
 *       N bytes (default 1 GiB) of regular files from 0 B to 200 MiB (one of
 *       200 MiB when N >= 400 MiB, most under 16 KiB, some of 16 KiB-4 MiB and
 *       4-64 MiB, a few of 64-200 MiB), in a tree of directories up to three
 *       deep, plus empty directories (one per 50 files) and relative symlinks
 *       to files and directories (one per 30 files).  Contents: half
 *       incompressible (xorshift) and half text-like (config and log words),
 *       in runs of 64 KiB, balanced over the whole tree.
 *   bench-data small DIR [--files N] [--seed S]
 *       N regular files (default 200 000) of 0-4 KiB, same contents, 100 per
 *       directory.
 *   bench-data game DIR [--bytes N] [--seed S]
 *       A game server of N bytes (default 1 GiB): 55 % region files of 4 MiB
 *       (world, nether and end region/r.X.Z.mca: incompressible chunks padded to 4 KiB
 *       sectors, deflate saves ~5 %), 15 % jars of 64 KiB-8 MiB (plugins/,
 *       libraries/: zip-like, already compressed), 20 % text logs of
 *       64 KiB-16 MiB (logs/), 10 % in ~2 000 configs of 8-128 KiB
 *       (config/, plugins/NAME/; ~2 000 per GiB, at least 20), five
 *       relative symlinks and four empty directories.
 *   bench-data big DIR [--bytes N] [--seed S]
 *       one file of N bytes (default 4 GiB): 1 MiB of random bytes, 1 MiB of
 *       zeros (written, not sparse), alternating.
 *
 * DIR must not exist.  Prints "files N bytes B" (regular files, their bytes)
 * on stdout.  A benchmark tool, not a test.
 */
#include "autoconf.h"

#include "datagen.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define MIB ((uint64_t)1 << 20)
#define RUN ((size_t)64 * 1024)         /* random/text run length */
#define MTIME 1700000000

struct gen {
	uint64_t rng;           /* file layout */
	uint64_t data;          /* contents */
	uint64_t random_bytes, text_bytes;
	uint64_t files, bytes;
	unsigned char *buf;
	size_t bufsize;
	char root[4096];
};

static void
die(const char *what, const char *path)
{
	fprintf(stderr, "bench-data: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void
write_all(int fd, const unsigned char *p, size_t n, const char *path)
{
	if (wx_write_all(fd, p, n) < 0)
		die("cannot write", path);
}

static void
set_mtime(const char *path, bool link)
{
	struct timespec ts[2] = { { MTIME, 0 }, { MTIME, 0 } };
	if (utimensat(AT_FDCWD, path, ts, link ? AT_SYMLINK_NOFOLLOW : 0) < 0)
		die("cannot set the mtime of", path);
}

/* A file of size bytes, half random and half text in RUN-byte runs (balanced globally). */
static void
make_file(struct gen *g, const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		die("cannot create", path);
	while (size > 0) {
		size_t n = size < RUN ? (size_t)size : RUN;
		if (g->random_bytes <= g->text_bytes) {
			wx_bench_fill_random(g->buf, n, &g->data);
			g->random_bytes += n;
		} else {
			wx_bench_fill_text(g->buf, n, &g->data);
			g->text_bytes += n;
		}
		write_all(fd, g->buf, n, path);
		size -= n;
		g->bytes += n;
	}
	if (close(fd) < 0)
		die("cannot close", path);
	set_mtime(path, false);
	g->files++;
}

static void
make_dir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die("cannot create directory", path);
}

static uint64_t
log_uniform(uint64_t *s, uint64_t lo, uint64_t hi)
{
	/* lo * (hi/lo)^u, u uniform in [0,1), integer only: pick an octave, then within it. */
	int octaves = 0;
	for (uint64_t v = lo; v < hi; v *= 2)
		octaves++;
	uint64_t base = lo << (wx_bench_xorshift(s) % (uint64_t)(octaves ? octaves : 1));
	uint64_t v = base + wx_bench_xorshift(s) % base;
	return v > hi ? hi : v;
}

static uint64_t
mixed_size(struct gen *g)
{
	uint64_t r = wx_bench_xorshift(&g->rng) % 1000;
	if (r < 10)
		return 0;
	if (r < 700)
		return 1 + wx_bench_xorshift(&g->rng) % (16 * 1024);
	if (r < 950)
		return log_uniform(&g->rng, 16 * 1024, 4 * MIB);
	if (r < 990)
		return log_uniform(&g->rng, 4 * MIB, 64 * MIB);
	return log_uniform(&g->rng, 64 * MIB, 200 * MIB);
}

static void
gen_mixed(struct gen *g, uint64_t total)
{
	char dir[4200], path[4400], target[256];
	uint64_t budget = total;
	unsigned ndirs = 0;
	snprintf(dir, sizeof dir, "%s", g->root);
	for (uint64_t i = 0; budget > 0 || i == 0; i++) {
		if (i % 20 == 0) {
			/* A new directory: up to three levels under the root. */
			unsigned depth = (unsigned)(wx_bench_xorshift(&g->rng) % 3);
			int n = snprintf(dir, sizeof dir, "%s/d%03u", g->root, ndirs % 64);
			make_dir(dir);
			for (unsigned k = 1; k <= depth; k++) {
				n += snprintf(dir + n, sizeof dir - (size_t)n, "/s%u", ndirs);
				make_dir(dir);
			}
			ndirs++;
		}
		uint64_t size = (i == 0 && total >= 400 * MIB) ? 200 * MIB : mixed_size(g);
		if (size > budget)
			size = budget;
		snprintf(path, sizeof path, "%s/f%06llu.dat", dir, (unsigned long long)i);
		make_file(g, path, size);
		budget -= size;
		if (i % 50 == 49) {
			snprintf(path, sizeof path, "%s/empty%06llu", dir, (unsigned long long)i);
			make_dir(path);
			set_mtime(path, false);
		}
		if (i % 30 == 29) {
			snprintf(target, sizeof target, "f%06llu.dat", (unsigned long long)i);
			snprintf(path, sizeof path, "%s/link%06llu", dir, (unsigned long long)i);
			if (symlink(target, path) < 0)
				die("cannot create symlink", path);
			snprintf(path, sizeof path, "%s/dirlink%06llu", dir, (unsigned long long)i);
			if (symlink("..", path) < 0)
				die("cannot create symlink", path);
		}
	}
}

static void
gen_small(struct gen *g, uint64_t files)
{
	char dir[4200], path[4400];
	for (uint64_t i = 0; i < files; i++) {
		if (i % 100 == 0) {
			snprintf(dir, sizeof dir, "%s/p%03llu", g->root, (unsigned long long)(i / 10000));
			make_dir(dir);
			snprintf(dir, sizeof dir, "%s/p%03llu/c%05llu", g->root,
			    (unsigned long long)(i / 10000), (unsigned long long)(i / 100));
			make_dir(dir);
		}
		snprintf(path, sizeof path, "%s/f%07llu.yml", dir, (unsigned long long)i);
		make_file(g, path, wx_bench_xorshift(&g->rng) % 4097);
	}
}

static void
gen_big(struct gen *g, uint64_t size)
{
	char path[4400];
	snprintf(path, sizeof path, "%s/world.img", g->root);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		die("cannot create", path);
	for (uint64_t off = 0, k = 0; off < size; k++) {
		size_t n = size - off < MIB ? (size_t)(size - off) : (size_t)MIB;
		if (k % 2 == 0)
			wx_bench_fill_random(g->buf, n, &g->data);
		else
			memset(g->buf, 0, n);
		write_all(fd, g->buf, n, path);
		off += n;
	}
	if (close(fd) < 0)
		die("cannot close", path);
	set_mtime(path, false);
	g->files = 1;
	g->bytes = size;
}

enum fill { FILL_REGION, FILL_JAR, FILL_TEXT };

/* A file of size bytes of one kind of content, filled bufsize bytes at a time. */
static void
make_kind_file(struct gen *g, const char *path, uint64_t size, enum fill kind)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		die("cannot create", path);
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < g->bufsize ? (size_t)(size - off) : g->bufsize;
		if (kind == FILL_REGION)
			wx_bench_fill_region(g->buf, n, &g->data);
		else if (kind == FILL_JAR)
			wx_bench_fill_jar(g->buf, n, &g->data);
		else
			wx_bench_fill_text(g->buf, n, &g->data);
		write_all(fd, g->buf, n, path);
		off += n;
	}
	if (close(fd) < 0)
		die("cannot close", path);
	set_mtime(path, false);
	g->files++;
	g->bytes += size;
}

static void
make_link(const char *target, const char *path)
{
	if (symlink(target, path) < 0)
		die("cannot create symlink", path);
	set_mtime(path, true);
}

/* Files of log-uniform sizes in [lo, hi] under dir until budget is spent. */
static void
game_files(struct gen *g, const char *dir, const char *prefix, const char *ext, uint64_t budget,
    uint64_t lo, uint64_t hi, enum fill kind)
{
	char path[4400];
	for (unsigned i = 0; budget > 0; i++) {
		uint64_t size = log_uniform(&g->rng, lo, hi);
		if (size > budget)
			size = budget;
		snprintf(path, sizeof path, "%s/%s%03u%s", dir, prefix, i, ext);
		make_kind_file(g, path, size, kind);
		budget -= size;
	}
}

static void
gen_game(struct gen *g, uint64_t total)
{
	static const char *worlds[] = { "world/region", "world_nether/DIM-1/region",
		"world_the_end/DIM1/region" };
	static const char *dirs[] = { "world", "world/region", "world_nether", "world_nether/DIM-1",
		"world_nether/DIM-1/region", "world_the_end", "world_the_end/DIM1",
		"world_the_end/DIM1/region", "world/datapacks", "plugins", "libraries", "logs",
		"config", "cache", "crash-reports" };
	char path[4400];
	for (size_t i = 0; i < WX_ARRAY_LEN(dirs); i++) {
		snprintf(path, sizeof path, "%s/%s", g->root, dirs[i]);
		make_dir(path);
	}
	/* Regions: 55 %, whole 4 MiB files (the last may be shorter), 70/20/10 over the worlds. */
	uint64_t budget = total / 100 * 55;
	for (unsigned i = 0; budget > 0; i++) {
		unsigned w = i % 10 < 7 ? 0 : i % 10 < 9 ? 1 : 2;
		uint64_t size = budget < 4 * MIB ? budget : 4 * MIB;
		snprintf(path, sizeof path, "%s/%s/r.%d.%d.mca", g->root, worlds[w],
		    (int)(i % 16) - 8, (int)(i / 16) - 4);
		make_kind_file(g, path, size, FILL_REGION);
		budget -= size;
	}
	snprintf(path, sizeof path, "%s/plugins", g->root);
	game_files(g, path, "Plugin", ".jar", total / 100 * 10, 64 * 1024, 8 * MIB, FILL_JAR);
	snprintf(path, sizeof path, "%s/libraries", g->root);
	game_files(g, path, "lib", ".jar", total / 100 * 5, 64 * 1024, 8 * MIB, FILL_JAR);
	snprintf(path, sizeof path, "%s/logs", g->root);
	game_files(g, path, "2026-11-", ".log", total / 100 * 20, 64 * 1024, 16 * MIB, FILL_TEXT);
	/* Configs: 10 % in ~2 000 files per GiB (20 at least), 40 per directory. */
	uint64_t cfg = total - total / 100 * 55 - total / 100 * 15 - total / 100 * 20;
	uint64_t count = total / (1024 * MIB / 2000);
	if (count < 20)
		count = 20;
	uint64_t each = cfg / count;
	for (uint64_t i = 0; cfg > 0; i++) {
		char dir[4300];
		snprintf(dir, sizeof dir, "%s/%s%03llu", g->root, i < count / 2 ? "config/c" : "plugins/P",
		    (unsigned long long)(i / 40));
		make_dir(dir);	/* EEXIST is fine */
		uint64_t size = each / 2 + wx_bench_xorshift(&g->rng) % (each + 1);
		if (size > cfg || i + 1 >= count)
			size = cfg;
		snprintf(path, sizeof path, "%s/%s%03llu/conf%05llu.yml", g->root,
		    i < count / 2 ? "config/c" : "plugins/P", (unsigned long long)(i / 40),
		    (unsigned long long)i);
		make_kind_file(g, path, size, FILL_TEXT);
		cfg -= size;
	}
	snprintf(path, sizeof path, "%s/plugins/P%03llu/shared.yml", g->root, (unsigned long long)(count / 2 / 40 + 1));
	make_link("../../config/c000/conf00000.yml", path);
	snprintf(path, sizeof path, "%s/server.jar", g->root);
	make_link("libraries/lib000.jar", path);
	snprintf(path, sizeof path, "%s/logs/latest.log", g->root);
	make_link("2026-11-000.log", path);
	snprintf(path, sizeof path, "%s/plugins/world-link", g->root);
	make_link("../world", path);
	snprintf(path, sizeof path, "%s/config/c000/self", g->root);
	make_link(".", path);
	static const char *empty[] = { "world/datapacks", "cache", "crash-reports", "world/playerdata" };
	for (size_t i = 0; i < WX_ARRAY_LEN(empty); i++) {
		snprintf(path, sizeof path, "%s/%s", g->root, empty[i]);
		make_dir(path);
		set_mtime(path, false);
	}
}

static int
usage(void)
{
	fprintf(stderr, "usage: bench-data mixed|small|big|game DIR [--bytes N] [--files N] [--seed S]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *kind = argv[1];
	int64_t bytes = -1, files = 200000, seed = 1;
	for (int i = 3; i < argc; i++) {
		const char *why = NULL;
		if (i + 1 >= argc)
			return usage();
		if (strcmp(argv[i], "--bytes") == 0)
			why = wx_parse_size(argv[++i], &bytes);
		else if (strcmp(argv[i], "--files") == 0)
			why = wx_parse_i64(argv[++i], 0, 100000000, &files);
		else if (strcmp(argv[i], "--seed") == 0)
			why = wx_parse_i64(argv[++i], 1, INT64_MAX, &seed);
		else
			return usage();
		if (why != NULL) {
			fprintf(stderr, "bench-data: %s '%s' %s\n", argv[i - 1], argv[i], why);
			return 2;
		}
	}
	struct gen g;
	memset(&g, 0, sizeof g);
	g.rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)seed;
	g.data = 0xd1b54a32d192ed03ULL ^ ((uint64_t)seed << 1);
	g.bufsize = 4 * MIB;	/* a region file at once */
	g.buf = xmalloc(g.bufsize);
	if (wx_strlcpy(g.root, argv[2], sizeof g.root) >= sizeof g.root)
		return usage();
	if (mkdir(g.root, 0755) < 0)
		die("cannot create", g.root);
	if (strcmp(kind, "mixed") == 0)
		gen_mixed(&g, bytes >= 0 ? (uint64_t)bytes : 1024 * MIB);
	else if (strcmp(kind, "small") == 0)
		gen_small(&g, (uint64_t)files);
	else if (strcmp(kind, "game") == 0)
		gen_game(&g, bytes >= 0 ? (uint64_t)bytes : 1024 * MIB);
	else if (strcmp(kind, "big") == 0)
		gen_big(&g, bytes >= 0 ? (uint64_t)bytes : 4096 * MIB);
	else
		return usage();
	printf("files %llu bytes %llu\n", (unsigned long long)g.files, (unsigned long long)g.bytes);
	free(g.buf);
	return 0;
}
