/*
 * A minimal TAP producer for the C unit tests (automake's tap-driver counts
 * each "ok"/"not ok" line as one test).  Each check carries its line number.
 */
#ifndef WX_TAP_H
#define WX_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failures;

static void tap_result(int pass, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), unused));

static void
tap_result(int pass, int line, const char *fmt, ...)
{
	va_list ap;
	tap_count++;
	printf("%sok %d - ", pass ? "" : "not ", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (line %d)\n", line);
	if (!pass)
		tap_failures++;
	fflush(stdout);
}

#define ok(cond, ...) tap_result(!!(cond), __LINE__, __VA_ARGS__)

#define is_int(got, want, ...) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	tap_result(g_ == w_, __LINE__, __VA_ARGS__); \
	if (g_ != w_) printf("#   got %lld, want %lld\n", g_, w_); \
} while (0)

#define is_str(got, want, ...) do { \
	const char *g_ = (got), *w_ = (want); \
	int p_ = (g_ == NULL && w_ == NULL) || (g_ && w_ && strcmp(g_, w_) == 0); \
	tap_result(p_, __LINE__, __VA_ARGS__); \
	if (!p_) printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
} while (0)

#define has_str(hay, needle, ...) do { \
	const char *h_ = (hay), *n_ = (needle); \
	int p_ = h_ && strstr(h_, n_) != NULL; \
	tap_result(p_, __LINE__, __VA_ARGS__); \
	if (!p_) printf("#   \"%s\" does not contain \"%s\"\n", h_ ? h_ : "(null)", n_); \
} while (0)

static int tap_done(void) __attribute__((unused));
static int
tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failures ? 1 : 0;
}

#endif
