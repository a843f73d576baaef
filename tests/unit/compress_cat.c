/*
 * compress_cat: stdin -> compressor -> stdout, for the interoperability test
 * (tests/integration/compress-interop.sh pipes its output into gzip -dc,
 * python3, bsdcat, zstd) and for trying the compressors by hand.
 *
 *   compress_cat [--format gzip|gzip-members|gzip-libdeflate|gzip-libdeflate-nostore|zstd]
 *                [--level N] [--threads N]
 *                [--block BYTES]
 *
 * Exit 0 on success, 1 on a compression or I/O error, 2 on bad usage.
 */
#include "autoconf.h"

#include "pgzip.h"
#include "util.h"
#include "zstd_stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
write_stdout(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	return wx_write_all(1, buf, len);
}

static int
usage(const char *why)
{
	fprintf(stderr, "compress_cat: %s\nusage: compress_cat [--format gzip|gzip-members|gzip-libdeflate|zstd] "
	    "[--level N] [--threads N] [--block BYTES] < in > out\n", why);
	return 2;
}

int
main(int argc, char **argv)
{
	const char *format = "gzip";
	int64_t level = 1, threads = 0, block = 0;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		const char *bad = NULL;
		if (val == NULL)
			return usage("missing value or unknown option");
		if (strcmp(opt, "--format") == 0)
			format = val;
		else if (strcmp(opt, "--level") == 0)
			bad = wx_parse_i64(val, -100, 100, &level);
		else if (strcmp(opt, "--threads") == 0)
			bad = wx_parse_i64(val, 0, 1000, &threads);
		else if (strcmp(opt, "--block") == 0)
			bad = wx_parse_size(val, &block);
		else
			return usage("unknown option");
		if (bad)
			return usage(bad);
		i++;
	}

	struct wx_pgzip *gz = NULL;
	struct wx_zstd *zs = NULL;
	char err[200] = "";
	if (strncmp(format, "gzip", 4) == 0) {
		enum wx_pgzip_framing framing = WX_PGZIP_ONE_MEMBER;
		if (strcmp(format, "gzip-members") == 0)
			framing = WX_PGZIP_MEMBER_PER_BLOCK;
		else if (strcmp(format, "gzip-libdeflate") == 0 ||
		    strcmp(format, "gzip-libdeflate-nostore") == 0)
			framing = WX_PGZIP_LIBDEFLATE_MEMBERS;
		else if (strcmp(format, "gzip") != 0)
			return usage("unknown format");
		struct wx_pgzip_opts o = { .level = (int)level, .threads = (int)threads,
			.block_size = (size_t)block, .framing = framing,
			.no_store = strcmp(format, "gzip-libdeflate-nostore") == 0 };
		gz = wx_pgzip_new(&o, write_stdout, NULL, err, sizeof err);
	} else if (strcmp(format, "zstd") == 0) {
		struct wx_zstd_opts o = { .level = (int)level, .threads = (int)threads,
			.job_size = (size_t)block };
		zs = wx_zstd_new(&o, write_stdout, NULL, err, sizeof err);
	} else {
		return usage("unknown format");
	}
	if (gz == NULL && zs == NULL) {
		fprintf(stderr, "compress_cat: %s\n", err);
		return 2;
	}

	static unsigned char buf[1 << 17];
	int rc = 0;
	for (;;) {
		ssize_t n = read(0, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "compress_cat: reading stdin: %s\n", strerror(errno));
			rc = 1;
			break;
		}
		if (n == 0)
			break;
		if ((gz ? wx_pgzip_write(gz, buf, (size_t)n) : wx_zstd_write(zs, buf, (size_t)n)) < 0) {
			rc = 1;
			break;
		}
	}
	if (rc == 0 && (gz ? wx_pgzip_finish(gz) : wx_zstd_finish(zs)) < 0)
		rc = 1;
	if (rc != 0 && (gz ? wx_pgzip_error(gz) : wx_zstd_error(zs))[0])
		fprintf(stderr, "compress_cat: %s\n", gz ? wx_pgzip_error(gz) : wx_zstd_error(zs));
	wx_pgzip_free(gz);
	wx_zstd_free(zs);
	return rc;
}
