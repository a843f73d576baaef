/*
 * libFuzzer target: the pre-sync manifest and op-list parsers, which read
 * what the other node sends (docs/presync.md).  The first byte picks the
 * parser; the rest is the text.  Oracle beyond the sanitizers: what parses
 * is canonical and bounded (every path passes wx_ps_path_problem, entries
 * strictly sorted with directory parents, ranges inside the size), and
 * formatting it then parsing that again gives the same text.
 */
#include "autoconf.h"

#include "presync_delta.h"
#include "presync_manifest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_manifest(const char *text, size_t len)
{
	struct wx_ps_manifest m, again;
	char err[512];
	if (wx_ps_manifest_parse(text, len, 100000, &m, err, sizeof err) < 0) {
		if (m.n != 0 || m.e != NULL || err[0] == '\0')
			abort();
		return;
	}
	for (size_t i = 0; i < m.n; i++) {
		if (wx_ps_path_problem(m.e[i].path) != NULL)
			abort();
		if (i > 0 && wx_ps_path_cmp(m.e[i - 1].path, m.e[i].path) >= 0)
			abort();
		if ((m.e[i].type == WX_PS_LINK) != (m.e[i].target != NULL))
			abort();
	}
	if (m.n == 0 || strcmp(m.e[0].path, ".") != 0)
		abort();
	size_t flen;
	char *f = wx_ps_manifest_format(&m, &flen);
	if (wx_ps_manifest_parse(f, flen, 100000, &again, err, sizeof err) < 0)
		abort();
	size_t glen;
	char *g = wx_ps_manifest_format(&again, &glen);
	if (flen != glen || memcmp(f, g, flen) != 0)
		abort();
	free(f);
	free(g);
	wx_ps_manifest_free(&m);
	wx_ps_manifest_free(&again);
}

static void
check_ops(const char *text, size_t len)
{
	struct wx_ps_delta d, again;
	char err[512];
	if (wx_ps_delta_parse(text, len, &d, err, sizeof err) < 0) {
		if (d.n != 0 || d.op != NULL || err[0] == '\0')
			abort();
		return;
	}
	for (size_t k = 0; k < d.n; k++) {
		const struct wx_ps_op *op = &d.op[k];
		if (wx_ps_path_problem(op->path) != NULL)
			abort();
		if ((op->kind == WX_PS_OP_RENAME || op->kind == WX_PS_OP_LINK) &&
		    (wx_ps_path_problem(op->from) != NULL || strcmp(op->from, ".") == 0))
			abort();
		int64_t end = 0;
		for (size_t r = 0; r < op->nranges; r++) {
			if (op->ranges[r].off < end || op->ranges[r].len <= 0 ||
			    op->ranges[r].off + op->ranges[r].len > op->size)
				abort();
			end = op->ranges[r].off + op->ranges[r].len;
		}
	}
	size_t flen;
	char *f = wx_ps_delta_format(&d, &flen);
	if (wx_ps_delta_parse(f, flen, &again, err, sizeof err) < 0)
		abort();
	size_t glen;
	char *g = wx_ps_delta_format(&again, &glen);
	if (flen != glen || memcmp(f, g, flen) != 0)
		abort();
	free(f);
	free(g);
	wx_ps_delta_free(&d);
	wx_ps_delta_free(&again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	if (data[0] & 1)
		check_ops((const char *)data + 1, size - 1);
	else
		check_manifest((const char *)data + 1, size - 1);
	return 0;
}
