/*
 * wx-presync-round: makes round 1 of a live pre-sync of a tree with the
 * engine the push worker uses (scan, compare with nothing, plan, send), for
 * tests that build pre-sync bodies of their own (valid, then spoiled).
 *
 *   wx-presync-round TREE OUTDIR
 *       writes OUTDIR/ops (the op list), OUTDIR/data (the ops' data,
 *       uncompressed) and OUTDIR/manifest; exit 0, or 1 with a message
 */
#include "autoconf.h"

#include "presync_delta.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
emit(void *ctx, const void *buf, size_t n)
{
	return wx_write_all(*(int *)ctx, buf, n);
}

static int
save(const char *dir, const char *name, const void *buf, size_t n)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = fd < 0 || wx_write_all(fd, buf, n) < 0 ? -1 : 0;
	if (fd >= 0 && close(fd) < 0)
		rc = -1;
	if (rc < 0)
		fprintf(stderr, "wx-presync-round: cannot write %s\n", path);
	free(path);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: wx-presync-round TREE OUTDIR\n");
		return 1;
	}
	char err[1024];
	int root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct wx_ps_manifest empty, cur;
	struct wx_ps_delta d;
	memset(&empty, 0, sizeof empty);
	memset(&d, 0, sizeof d);
	if (root < 0 || wx_ps_scan(root, NULL, &cur, err, sizeof err) < 0) {
		fprintf(stderr, "wx-presync-round: %s: %s\n", argv[1], root < 0 ? "cannot open" : err);
		return 1;
	}
	wx_ps_compare(&empty, &cur, &d);
	char *data = xasprintf("%s/data", argv[2]);
	int dfd = open(data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	free(data);
	int rc = 1;
	if (dfd < 0 || wx_ps_delta_plan(root, &empty, &cur, &d, err, sizeof err) < 0 ||
	    wx_ps_delta_send(root, &cur, &d, emit, &dfd, err, sizeof err) < 0) {
		fprintf(stderr, "wx-presync-round: %s\n", dfd < 0 ? "cannot write data" : err);
	} else {
		size_t olen, mlen;
		char *ops = wx_ps_delta_format(&d, &olen), *man = wx_ps_manifest_format(&cur, &mlen);
		if (save(argv[2], "ops", ops, olen) == 0 && save(argv[2], "manifest", man, mlen) == 0)
			rc = 0;
		free(ops);
		free(man);
	}
	if (dfd >= 0 && close(dfd) < 0)
		rc = 1;
	wx_ps_delta_free(&d);
	wx_ps_manifest_free(&cur);
	close(root);
	return rc;
}
