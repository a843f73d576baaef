#include "autoconf.h"

#include "uuid.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

bool
wx_uuid_valid(const char *s)
{
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return s[36] == '\0';
}

int
wx_uuid_normalize(const char *s, char out[37])
{
	char hex[33];
	size_t len = strlen(s);
	if (len == 45 && strncasecmp(s, "urn:uuid:", 9) == 0) {
		s += 9;
		len -= 9;
	} else if (len == 38 && s[0] == '{' && s[37] == '}') {
		s += 1;
		len = 36;
	}
	size_t n = 0;
	if (len == 36) {
		char tmp[37];
		memcpy(tmp, s, 36);
		tmp[36] = '\0';
		if (!wx_uuid_valid(tmp))
			return -1;
		for (size_t i = 0; i < 36; i++)
			if (s[i] != '-')
				hex[n++] = (char)tolower((unsigned char)s[i]);
	} else if (len == 32) {
		for (size_t i = 0; i < 32; i++) {
			if (!isxdigit((unsigned char)s[i]))
				return -1;
			hex[n++] = (char)tolower((unsigned char)s[i]);
		}
	} else {
		return -1;
	}
	hex[32] = '\0';
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
	return 0;
}

void
wx_uuid_random(char out[37])
{
	unsigned char b[16];
	if (wx_random_bytes(b, sizeof b) < 0) {
		/* getrandom(2) does not fail after boot; keep the id unique anyway */
		int64_t t = wx_now_ms();
		memset(b, 0, sizeof b);
		memcpy(b, &t, sizeof t);
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	char hex[33];
	wx_hex(b, 16, hex);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}
