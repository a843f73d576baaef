#include "autoconf.h"

#include "presync_delta.h"

#include "tree_rules.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPS_MAGIC "wingxfer-presync-ops"
#define MAX_LINE (2 * 3 * WX_ENTRY_PATH_MAX + 64)

static const char *const kind_names[] = {
	[WX_PS_OP_RENAME] = "rename", [WX_PS_OP_DELETE] = "delete",
	[WX_PS_OP_MKDIR] = "mkdir", [WX_PS_OP_FILE] = "file",
	[WX_PS_OP_PATCH] = "patch", [WX_PS_OP_SYMLINK] = "symlink",
	[WX_PS_OP_LINK] = "link", [WX_PS_OP_META] = "meta",
};

char *
wx_ps_delta_format(const struct wx_ps_delta *d, size_t *len)
{
	struct wx_ps_buf b = { 0 };
	wx_ps_buf_printf(&b, "%s 1 %zu %lld\n", OPS_MAGIC, d->n,
	    (long long)wx_ps_delta_data_bytes(d));
	for (size_t k = 0; k < d->n; k++) {
		const struct wx_ps_op *op = &d->op[k];
		wx_ps_buf_printf(&b, "%s ", kind_names[op->kind]);
		wx_ps_buf_escaped(&b, op->path);
		switch (op->kind) {
		case WX_PS_OP_RENAME:
		case WX_PS_OP_SYMLINK:
		case WX_PS_OP_LINK:
			wx_ps_buf_add(&b, " ", 1);
			wx_ps_buf_escaped(&b, op->from);
			break;
		case WX_PS_OP_FILE:
			wx_ps_buf_printf(&b, " %lld", (long long)op->size);
			break;
		case WX_PS_OP_PATCH:
			wx_ps_buf_printf(&b, " %lld %zu", (long long)op->size, op->nranges);
			for (size_t r = 0; r < op->nranges; r++)
				wx_ps_buf_printf(&b, "\n%lld %lld", (long long)op->ranges[r].off,
				    (long long)op->ranges[r].len);
			break;
		case WX_PS_OP_META:
			wx_ps_buf_printf(&b, " %o %lld.%09ld", (unsigned)op->mode,
			    (long long)op->mtime.tv_sec, op->mtime.tv_nsec);
			break;
		case WX_PS_OP_DELETE:
		case WX_PS_OP_MKDIR:
			break;
		}
		wx_ps_buf_add(&b, "\n", 1);
	}
	*len = b.len;
	return b.p;
}

static int
ops_fail(struct wx_ps_delta *d, char *err, size_t errsize, size_t line, const char *what)
{
	snprintf(err, errsize, "ops line %zu: %s", line, what);
	wx_ps_delta_free(d);
	return -1;
}

static char *
parse_path(const char *tok, size_t n, const char **why)
{
	char *p = wx_ps_unescape(tok, n, WX_ENTRY_PATH_MAX, why);
	if (p && (*why = wx_ps_path_problem(p)) != NULL) {
		free(p);
		return NULL;
	}
	return p;
}

int
wx_ps_delta_parse(const char *text, size_t len, struct wx_ps_delta *d,
    char *err, size_t errsize)
{
	memset(d, 0, sizeof *d);
	const char *tok[5];
	size_t lens[5];
	size_t pos = 0, line = 1;
	int64_t version, count, data;
	int nt = wx_ps_next_line(text, len, &pos, 256, tok, lens, 4);
	if (nt != 4 || lens[0] != strlen(OPS_MAGIC) || memcmp(tok[0], OPS_MAGIC, lens[0]) != 0)
		return ops_fail(d, err, errsize, line, "not a wingxfer pre-sync op list");
	if (wx_ps_token_i64(tok[1], lens[1], 1, 1, &version) < 0)
		return ops_fail(d, err, errsize, line, "unsupported version");
	if (wx_ps_token_i64(tok[2], lens[2], 0, WX_PS_MAX_OPS, &count) < 0 ||
	    wx_ps_token_i64(tok[3], lens[3], 0, INT64_MAX, &data) < 0)
		return ops_fail(d, err, errsize, line, "bad op count or data size");
	int64_t sum = 0;
	while ((nt = wx_ps_next_line(text, len, &pos, MAX_LINE, tok, lens, 4)) != 0) {
		line++;
		if (nt < 0)
			return ops_fail(d, err, errsize, line, "malformed line");
		if (d->n >= (size_t)count)
			return ops_fail(d, err, errsize, line, "more ops than the header says");
		int kind = -1;
		for (size_t k = 0; k < WX_ARRAY_LEN(kind_names); k++)
			if (lens[0] == strlen(kind_names[k]) && memcmp(tok[0], kind_names[k], lens[0]) == 0)
				kind = (int)k;
		if (kind < 0)
			return ops_fail(d, err, errsize, line, "unknown op");
		static const int fields[] = {
			[WX_PS_OP_RENAME] = 3, [WX_PS_OP_DELETE] = 2, [WX_PS_OP_MKDIR] = 2,
			[WX_PS_OP_FILE] = 3, [WX_PS_OP_PATCH] = 4, [WX_PS_OP_SYMLINK] = 3,
			[WX_PS_OP_LINK] = 3, [WX_PS_OP_META] = 4,
		};
		if (nt != fields[kind])
			return ops_fail(d, err, errsize, line, "wrong number of fields");
		struct wx_ps_op *op = wx_ps_delta_add(d, (enum wx_ps_op_kind)kind, NULL);
		const char *why = NULL;
		if ((op->path = parse_path(tok[1], lens[1], &why)) == NULL)
			return ops_fail(d, err, errsize, line, why);
		if (strcmp(op->path, ".") == 0 && kind != WX_PS_OP_META && kind != WX_PS_OP_MKDIR)
			return ops_fail(d, err, errsize, line, "the tree root as the op's path");
		switch (op->kind) {
		case WX_PS_OP_RENAME:
		case WX_PS_OP_LINK:
			if ((op->from = parse_path(tok[2], lens[2], &why)) == NULL)
				return ops_fail(d, err, errsize, line, why);
			if (strcmp(op->from, ".") == 0)
				return ops_fail(d, err, errsize, line, "the tree root as the source");
			break;
		case WX_PS_OP_SYMLINK:
			if ((op->from = wx_ps_unescape(tok[2], lens[2], WX_ENTRY_PATH_MAX, &why)) == NULL)
				return ops_fail(d, err, errsize, line, why);
			break;
		case WX_PS_OP_FILE:
			if (wx_ps_token_i64(tok[2], lens[2], 0, INT64_MAX, &op->size) < 0)
				return ops_fail(d, err, errsize, line, "bad size");
			if (op->size > INT64_MAX - sum)
				return ops_fail(d, err, errsize, line, "data size overflows");
			sum += op->size;
			break;
		case WX_PS_OP_PATCH: {
			int64_t nr;
			if (wx_ps_token_i64(tok[2], lens[2], 0, INT64_MAX, &op->size) < 0)
				return ops_fail(d, err, errsize, line, "bad size");
			if (wx_ps_token_i64(tok[3], lens[3], 0, WX_PS_MAX_RANGES, &nr) < 0)
				return ops_fail(d, err, errsize, line, "bad range count");
			op->ranges = xmalloc((size_t)(nr ? nr : 1) * sizeof *op->ranges);
			int64_t end = 0;
			for (int64_t r = 0; r < nr; r++) {
				line++;
				struct wx_ps_range *g = &op->ranges[op->nranges];
				if (wx_ps_next_line(text, len, &pos, 64, tok, lens, 2) != 2 ||
				    wx_ps_token_i64(tok[0], lens[0], 0, INT64_MAX, &g->off) < 0 ||
				    wx_ps_token_i64(tok[1], lens[1], 1, INT64_MAX, &g->len) < 0)
					return ops_fail(d, err, errsize, line, "bad range");
				if (g->off < end || g->len > op->size || g->off > op->size - g->len)
					return ops_fail(d, err, errsize, line, "range unsorted, overlapping or past the size");
				end = g->off + g->len;
				if (g->len > INT64_MAX - sum)
					return ops_fail(d, err, errsize, line, "data size overflows");
				sum += g->len;
				op->nranges++;
			}
			break;
		}
		case WX_PS_OP_META:
			if (wx_ps_token_mode(tok[2], lens[2], &op->mode) < 0)
				return ops_fail(d, err, errsize, line, "bad mode");
			if (wx_ps_token_time(tok[3], lens[3], &op->mtime) < 0)
				return ops_fail(d, err, errsize, line, "bad time");
			break;
		case WX_PS_OP_DELETE:
		case WX_PS_OP_MKDIR:
			break;
		}
	}
	if (d->n != (size_t)count)
		return ops_fail(d, err, errsize, line, "fewer ops than the header says");
	if (sum != data)
		return ops_fail(d, err, errsize, line, "the data size does not match the ops");
	return 0;
}
