#include "autoconf.h"

#include "archive_paths.h"

#include <string.h>

const char *
wx_entry_path_problem(const char *path)
{
	if (path == NULL || *path == '\0')
		return "is empty";
	if (path[0] == '/')
		return "is absolute";
	if (strlen(path) > WX_ENTRY_PATH_MAX)
		return "is longer than 4095 bytes";
	const char *p = path;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return "contains a '..' component";
		if (n > WX_ENTRY_NAME_MAX)
			return "has a component longer than 255 bytes";
		p += n;
		while (*p == '/')
			p++;
	}
	return NULL;
}

size_t
wx_entry_path_depth(const char *path)
{
	size_t depth = 0;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");
		if (n > 0 && !(n == 1 && p[0] == '.'))
			depth++;
		p += n;
		while (*p == '/')
			p++;
	}
	return depth;
}

static bool
safe_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '.' || c == '_' || c == '-';
}

int
wx_safe_file_name(const char *in, char *out, size_t size)
{
	if (size <= WX_SAFE_NAME_MAX)
		return -1;
	const char *base = strrchr(in, '/');
	base = base ? base + 1 : in;
	size_t o = 0;
	for (const char *p = base; *p && o < WX_SAFE_NAME_MAX; p++)
		out[o++] = safe_char((unsigned char)*p) ? *p : '_';
	out[o] = '\0';
	for (size_t i = 0; i < o && out[i] == '.'; i++)
		out[i] = '_';
	return o == 0 ? -1 : 0;
}
