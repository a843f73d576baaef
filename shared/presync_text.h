/*
 * Live pre-sync (docs/presync.md): the pieces of the line-based text forms
 * (manifest, op list, journal): a growable buffer, %XX escaping, a bounded
 * line splitter and checked token parsers.  Every parser here treats its
 * input as hostile.
 */
#ifndef WX_PRESYNC_TEXT_H
#define WX_PRESYNC_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* A growable byte buffer for the text forms. */
struct wx_ps_buf {
	char *p;
	size_t len, cap;
};
void wx_ps_buf_add(struct wx_ps_buf *b, const void *data, size_t n);
void wx_ps_buf_printf(struct wx_ps_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s with every byte outside '!'..'~' and '%' written as %XX. */
void wx_ps_buf_escaped(struct wx_ps_buf *b, const char *s);

/*
 * Decodes one %XX-escaped token of n bytes into a new string; NULL (with
 * *why) if it has a bad escape, a raw byte outside '!'..'~', a NUL after
 * decoding, or decodes to more than max bytes.
 */
char *wx_ps_unescape(const char *tok, size_t n, size_t max, const char **why);

/*
 * Splits the next line of text[*pos..len) into at most max space-separated
 * tokens (pointers into text, not terminated; lengths in lens).  Returns the
 * token count, 0 at the end of text, or -1 when the line has more tokens,
 * an empty token, a byte other than '\n' ending it, or is longer than
 * max_line.  *pos moves past the line.
 */
int wx_ps_next_line(const char *text, size_t len, size_t *pos, size_t max_line,
    const char **tok, size_t *lens, int max);

/* Parses a whole decimal token in [min, max]; 0 or -1. */
int wx_ps_token_i64(const char *tok, size_t n, int64_t min, int64_t max, int64_t *out);

/* Parses 1 to 5 octal digits, at most 07777; 0 or -1. */
int wx_ps_token_mode(const char *tok, size_t n, uint32_t *out);

/* Parses "<sec>.<9-digit nsec>"; 0 or -1. */
int wx_ps_token_time(const char *tok, size_t n, struct timespec *out);

#endif
