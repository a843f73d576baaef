#include "autoconf.h"

#include "presync_text.h"

#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
wx_ps_buf_add(struct wx_ps_buf *b, const void *data, size_t n)
{
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
wx_ps_buf_printf(struct wx_ps_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char tmp[256];
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof tmp)
		abort();   /* callers print numbers only */
	wx_ps_buf_add(b, tmp, (size_t)n);
}

void
wx_ps_buf_escaped(struct wx_ps_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p > ' ' && *p < 0x7f && *p != '%') {
			wx_ps_buf_add(b, p, 1);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			wx_ps_buf_add(b, e, 3);
		}
	}
}

char *
wx_ps_unescape(const char *tok, size_t n, size_t max, const char **why)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)tok[i];
		if (c == '%') {
			int hi = i + 2 < n ? wx_hex_digit(tok[i + 1]) : -1;
			int lo = i + 2 < n ? wx_hex_digit(tok[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				*why = "has a bad %-escape";
				goto fail;
			}
			c = (unsigned char)(hi * 16 + lo);
			if (c == '\0') {
				*why = "contains a NUL byte";
				goto fail;
			}
			i += 2;
		} else if (c <= ' ' || c >= 0x7f) {
			*why = "contains an unescaped control, space or non-ASCII byte";
			goto fail;
		}
		if (o >= max) {
			*why = "is too long";
			goto fail;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

int
wx_ps_next_line(const char *text, size_t len, size_t *pos, size_t max_line,
    const char **tok, size_t *lens, int max)
{
	size_t p = *pos;
	if (p >= len)
		return 0;
	const char *nl = memchr(text + p, '\n', len - p);
	size_t end = nl ? (size_t)(nl - text) : len;
	*pos = nl ? end + 1 : len;
	if (nl == NULL || end - p > max_line)
		return -1;
	int count = 0;
	while (p < end) {
		size_t start = p;
		while (p < end && text[p] != ' ')
			p++;
		if (p == start || count == max)
			return -1;
		tok[count] = text + start;
		lens[count] = p - start;
		count++;
		if (p < end) {
			p++;
			if (p == end)
				return -1;   /* trailing space: an empty token */
		}
	}
	return count > 0 ? count : -1;
}

int
wx_ps_token_i64(const char *tok, size_t n, int64_t min, int64_t max, int64_t *out)
{
	char buf[24];
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, tok, n);
	buf[n] = '\0';
	return wx_parse_i64(buf, min, max, out) ? -1 : 0;
}

int
wx_ps_token_mode(const char *tok, size_t n, uint32_t *out)
{
	uint32_t mode = 0;
	if (n < 1 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (tok[i] < '0' || tok[i] > '7')
			return -1;
		mode = mode * 8 + (uint32_t)(tok[i] - '0');
	}
	if (mode > 07777)
		return -1;
	*out = mode;
	return 0;
}

int
wx_ps_token_time(const char *tok, size_t n, struct timespec *out)
{
	const char *dot = memchr(tok, '.', n);
	if (dot == NULL || (size_t)(tok + n - dot) != 10)
		return -1;
	int64_t sec, nsec;
	if (wx_ps_token_i64(tok, (size_t)(dot - tok), INT64_MIN / 2, INT64_MAX / 2, &sec) < 0)
		return -1;
	for (int i = 1; i < 10; i++)
		if (dot[i] < '0' || dot[i] > '9')
			return -1;
	if (wx_ps_token_i64(dot + 1, 9, 0, 999999999, &nsec) < 0)
		return -1;
	out->tv_sec = (time_t)sec;
	out->tv_nsec = (long)nsec;
	return 0;
}
