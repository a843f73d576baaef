#include "autoconf.h"

#include "json_text.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 (RFC 3629, table 3-7 of Unicode). */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned char lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

char *
wx_utf8_repair(const char *s, size_t len, size_t *outlen)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t bad = 0;
	for (size_t i = 0; i < len;) {
		size_t l = utf8_seq(u + i, len - i);
		if (l == 0) {
			bad++;
			l = 1;
		}
		i += l;
	}
	/* Each bad byte (1) becomes 3: EF BF BD. */
	char *out = xmalloc(len + 2 * bad + 1);
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		size_t l = utf8_seq(u + i, len - i);
		if (l == 0) {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
			continue;
		}
		memcpy(out + o, s + i, l);
		o += l;
		i += l;
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return out;
}

char *
wx_json_text(json_object *j, int flags, size_t *len)
{
	size_t n = 0;
	const char *s = json_object_to_json_string_length(j, flags, &n);
	return wx_utf8_repair(s, n, len);
}
