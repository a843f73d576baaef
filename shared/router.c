#include "autoconf.h"

#include "router.h"
#include "util.h"

#include <stdbool.h>
#include <string.h>

/* Percent-decodes seg[0..len) into out; false on bad escapes, NUL, '/' or overflow. */
static bool
decode_segment(const char *seg, size_t len, char *out, size_t size)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = seg[i];
		if (c == '%') {
			int h, l;
			if (i + 2 >= len)
				return false;
			if ((h = wx_hex_digit(seg[i + 1])) < 0 || (l = wx_hex_digit(seg[i + 2])) < 0)
				return false;
			c = (char)(h * 16 + l);
			i += 2;
			if (c == '\0' || c == '/')
				return false;
		}
		if (o + 1 >= size)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

/* Whether path matches pattern; captures the ":name" segment into param. */
static bool
match(const char *pattern, const char *path, char *param, size_t psize)
{
	const char *p = pattern, *s = path;
	size_t slen = strlen(path);
	/* One trailing slash is ignored ("/api/transfers/" = "/api/transfers"). */
	if (slen > 1 && path[slen - 1] == '/')
		slen--;
	const char *end = path + slen;
	while (*p && s < end) {
		if (*p != '/' || *s != '/')
			return false;
		p++, s++;
		size_t plen = strcspn(p, "/");
		const char *seg_end = s;
		while (seg_end < end && *seg_end != '/')
			seg_end++;
		size_t len = (size_t)(seg_end - s);
		if (*p == ':') {
			if (len == 0 || !decode_segment(s, len, param, psize))
				return false;
		} else if (len != plen || strncmp(p, s, len) != 0) {
			return false;
		}
		p += plen;
		s = seg_end;
	}
	return *p == '\0' && s == end;
}

static void
append_method(char *allow, size_t asize, const char *m)
{
	if (strstr(allow, m) != NULL)
		return;
	size_t len = strlen(allow);
	wx_strlcpy(allow + len, len ? ", " : "", asize - len);
	len = strlen(allow);
	wx_strlcpy(allow + len, m, asize - len);
}

void
wx_route_allowed(const struct wx_route *routes, size_t n, const char *path, char *allow,
    size_t asize)
{
	char scratch[128];
	allow[0] = '\0';
	for (size_t i = 0; i < n; i++)
		if (match(routes[i].pattern, path, scratch, sizeof scratch))
			append_method(allow, asize, routes[i].method);
	if (allow[0] != '\0')
		append_method(allow, asize, "OPTIONS");
}

enum wx_match
wx_route_find(const struct wx_route *routes, size_t n, const char *method, const char *path,
    const struct wx_route **found, char *param, size_t psize, char *allow, size_t asize)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(routes[i].method, method) == 0 &&
		    match(routes[i].pattern, path, param, psize)) {
			*found = &routes[i];
			return WX_MATCH_OK;
		}
	}
	wx_route_allowed(routes, n, path, allow, asize);
	param[0] = '\0';
	return allow[0] ? WX_MATCH_BAD_METHOD : WX_MATCH_NOT_FOUND;
}
