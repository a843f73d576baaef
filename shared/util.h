/*
 * Small helpers every wingxfer program uses: checked allocation, checked
 * number parsing, bounded string copies, time, random bytes, hex.
 *
 * Out-of-memory policy: the x*() allocators log one line and abort().  The
 * programs are short-lived per request and cannot do anything useful without
 * memory; a crash is visible to the watchdog (the liveness lock is released)
 * and is handled like any other dead worker.
 */
#ifndef WX_UTIL_H
#define WX_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Wipes a secret (token, key) with explicit_bzero, which the compiler may
 * not drop as a dead store, then frees it; NULL is fine. */
void wx_free_secret(char *s);
/* printf into a new string; aborts on OOM. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Parses a whole decimal integer in [min, max].  Leading/trailing blanks are
 * not allowed.  Returns NULL on success, else a static description of what
 * is wrong ("is not a number", "is too large", ...), like strtonum(3).
 */
const char *wx_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/*
 * Parses a duration: plain seconds ("90") or with one unit suffix
 * s, m, h, d ("15m", "24h", "7d").  Result in seconds.
 */
const char *wx_parse_duration(const char *s, int64_t *seconds);

/*
 * Parses a size: plain bytes ("1048576") or with a suffix
 * K/KiB, M/MiB, G/GiB, T/TiB (all powers of 1024; "KB" etc. too).
 */
const char *wx_parse_size(const char *s, int64_t *bytes);

/* strlcpy semantics: returns strlen(src); truncated if >= size. */
size_t wx_strlcpy(char *dst, const char *src, size_t size);
/* snprintf that reports truncation: returns 0 on success, -1 if cut. */
int wx_snprintf(char *dst, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Case-insensitive ASCII prefix test. */
bool wx_has_prefix(const char *s, const char *prefix);

/*
 * a - b without overflow: saturates at INT64_MIN / INT64_MAX.  For
 * differences where either side may come from outside (a token's exp, nbf
 * or iat, a file's time, a record's timestamps).
 */
int64_t wx_sub_sat(int64_t a, int64_t b);

/* Wall-clock seconds / milliseconds, monotonic milliseconds / nanoseconds. */
int64_t wx_now(void);
int64_t wx_now_ms(void);
int64_t wx_mono_ms(void);
int64_t wx_mono_ns(void);
/* RFC 3339 UTC timestamp "2026-11-29T05:54:04Z" into buf (>= 21 bytes). */
void wx_format_time(int64_t t, char *buf, size_t size);

/* Fills buf with n bytes from the kernel CSPRNG; 0 or -1. */
int wx_random_bytes(void *buf, size_t n);

/* The value of one hex digit (either case), or -1. */
int wx_hex_digit(char c);

/* Whether s is a SHA-256 digest in hex: exactly 64 hex digits (either case). */
bool wx_is_sha256_hex(const char *s);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void wx_hex(const unsigned char *in, size_t n, char *out);

/* "1.2 GiB" as Wings' FormatBytes prints it (< 1024 -> "%d B"). */
void wx_format_bytes(int64_t n, char *buf, size_t size);

/* Reads a whole small file (<= max bytes) into a new NUL-terminated string. */
char *wx_read_small_file(const char *path, size_t max, const char **why);

/* Writes all of buf to fd, retrying short writes and EINTR; 0 or -1. */
int wx_write_all(int fd, const void *buf, size_t n);

/* A duration for people: "45 s", "12 min", "3h 05m", "4 days" (negative: 0). */
void wx_format_duration(int64_t seconds, char *buf, size_t size);

#endif
