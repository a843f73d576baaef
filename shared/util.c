#include "autoconf.h"

#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void
oom(size_t n)
{
	/* Not through wx_log: it may allocate. */
	char msg[96];
	int len = snprintf(msg, sizeof msg, "wingxfer: out of memory (%zu bytes)\n", n);
	if (len > 0)
		(void)!write(2, msg, (size_t)len);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom(n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (p == NULL)
		oom(nmemb * size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		oom(n);
	return q;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

void
wx_free_secret(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

char *
xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	char *p = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	(void)vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

const char *
wx_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (s == NULL || *s == '\0')
		return "is empty";
	if (!(isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+'))
		return "is not a number";
	errno = 0;
	char *end = NULL;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end != '\0')
		return "is not a whole number";
	if (errno == ERANGE)
		return v < 0 ? "is too small" : "is too large";
	if (v < min)
		return "is too small";
	if (v > max)
		return "is too large";
	*out = (int64_t)v;
	return NULL;
}

/* Splits "15m" into number and unit; the unit is matched by the caller. */
static const char *
split_number_unit(const char *s, char *num, size_t numsize, const char **unit)
{
	size_t i = 0;
	while (s[i] != '\0' && isdigit((unsigned char)s[i]))
		i++;
	if (i == 0)
		return "is not a number";
	if (i >= numsize)
		return "is too large";
	memcpy(num, s, i);
	num[i] = '\0';
	*unit = s + i;
	return NULL;
}

const char *
wx_parse_duration(const char *s, int64_t *seconds)
{
	char num[24];
	const char *unit;
	const char *why = split_number_unit(s, num, sizeof num, &unit);
	if (why != NULL)
		return why;
	int64_t mult;
	if (*unit == '\0' || strcmp(unit, "s") == 0)
		mult = 1;
	else if (strcmp(unit, "m") == 0)
		mult = 60;
	else if (strcmp(unit, "h") == 0)
		mult = 3600;
	else if (strcmp(unit, "d") == 0)
		mult = 86400;
	else
		return "has an unknown unit (use s, m, h or d)";
	int64_t v;
	why = wx_parse_i64(num, 0, INT64_MAX / 86400, &v);
	if (why != NULL)
		return why;
	*seconds = v * mult;
	return NULL;
}

const char *
wx_parse_size(const char *s, int64_t *bytes)
{
	char num[24];
	const char *unit;
	const char *why = split_number_unit(s, num, sizeof num, &unit);
	if (why != NULL)
		return why;
	while (*unit == ' ')
		unit++;
	int shift;
	if (*unit == '\0' || strcmp(unit, "B") == 0)
		shift = 0;
	else if (strchr("kK", unit[0]) && (!unit[1] || !strcmp(unit + 1, "B") || !strcmp(unit + 1, "iB")))
		shift = 10;
	else if (unit[0] == 'M' && (!unit[1] || !strcmp(unit + 1, "B") || !strcmp(unit + 1, "iB")))
		shift = 20;
	else if (unit[0] == 'G' && (!unit[1] || !strcmp(unit + 1, "B") || !strcmp(unit + 1, "iB")))
		shift = 30;
	else if (unit[0] == 'T' && (!unit[1] || !strcmp(unit + 1, "B") || !strcmp(unit + 1, "iB")))
		shift = 40;
	else
		return "has an unknown unit (use B, KiB, MiB, GiB or TiB)";
	int64_t v;
	why = wx_parse_i64(num, 0, INT64_MAX >> shift, &v);
	if (why != NULL)
		return why;
	*bytes = v << shift;
	return NULL;
}

size_t
wx_strlcpy(char *dst, const char *src, size_t size)
{
	size_t len = strlen(src);
	if (size > 0) {
		size_t n = len < size - 1 ? len : size - 1;
		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

int
wx_snprintf(char *dst, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(dst, size, fmt, ap);
	va_end(ap);
	return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

bool
wx_has_prefix(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

int64_t
wx_now(void)
{
	return (int64_t)time(NULL);
}

int64_t
wx_sub_sat(int64_t a, int64_t b)
{
	int64_t d;
	if (__builtin_sub_overflow(a, b, &d))
		return b < 0 ? INT64_MAX : INT64_MIN;
	return d;
}

int64_t
wx_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
wx_mono_ms(void)
{
	return wx_mono_ns() / 1000000;
}

int64_t
wx_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
wx_format_time(int64_t t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		wx_strlcpy(buf, "1970-01-01T00:00:00Z", size);
}

int
wx_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

bool
wx_is_sha256_hex(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (wx_hex_digit(s[n]) < 0)
			return false;
	return n == 64;
}

int
wx_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void
wx_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void
wx_format_bytes(int64_t n, char *buf, size_t size)
{
	if (n < 1024) {
		snprintf(buf, size, "%lld B", (long long)n);
		return;
	}
	static const char units[] = "KMGTPE";
	double v = (double)n;
	int u = -1;
	while (v >= 1024.0 && u < 5) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, size, "%.1f %ciB", v, units[u]);
}

char *
wx_read_small_file(const char *path, size_t max, const char **why)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*why = strerror(errno);
		return NULL;
	}
	char *buf = xmalloc(max + 1);
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + len, max + 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			*why = strerror(errno);
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max) {
			*why = "file is too large";
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	return buf;
fail:;
	int saved = errno;
	close(fd);
	free(buf);
	errno = saved;
	return NULL;
}

int
wx_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void
wx_format_duration(int64_t s, char *buf, size_t size)
{
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, size, "%lld s", (long long)s);
	else if (s < 7200)
		snprintf(buf, size, "%lld min", (long long)(s / 60));
	else if (s < 2 * 86400)
		snprintf(buf, size, "%lldh %02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
	else
		snprintf(buf, size, "%lld days", (long long)(s / 86400));
}
