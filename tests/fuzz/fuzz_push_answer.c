/*
 * libFuzzer target: what wingxfer-push reads from the destination's answers
 * (handlers/push/answer.c): the OPTIONS answer's header lines, handed over
 * one at a time and not NUL-terminated as libcurl does, and the body of a
 * refused upload.
 *
 * Input: byte 0 even: header lines (split after each '\n'); odd: a body.
 * Oracles: the capabilities agree with a reference reading written here
 * (the last header block counts; "zstd" must be a whole comma-separated
 * item's first word); the description is one printable line that starts
 * with the status.
 */
#include "autoconf.h"

#include "answer.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char name[] = "X-Wingxfer-Capabilities:";

/* The reference: is "zstd" the first word of some comma-separated item of v? */
static bool
names_zstd(const char *v, size_t n)
{
	size_t i = 0;
	while (i <= n) {
		size_t end = i;
		while (end < n && v[end] != ',')
			end++;
		size_t s = i;
		while (s < end && (v[s] == ' ' || v[s] == '\t'))
			s++;
		size_t w = s;
		while (w < end && v[w] != ' ' && v[w] != '\t' && v[w] != '\r' && v[w] != '\n')
			w++;
		if (w - s == 4 && strncasecmp(v + s, "zstd", 4) == 0)
			return true;
		i = end + 1;
	}
	return false;
}

static void
headers(const uint8_t *data, size_t size)
{
	struct caps caps = { 0 };
	bool header = false, zstd = false;
	size_t nlen = sizeof name - 1;
	size_t off = 0;
	while (off < size) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl ? (size_t)(nl - (data + off)) + 1 : size - off;
		char *line = malloc(n); /* exactly n bytes: an overread is caught */
		if (line == NULL)
			abort();
		memcpy(line, data + off, n);
		answer_caps_line(&caps, line, n);
		if (n > nlen && strncasecmp(line, name, nlen) == 0) {
			header = true;
			zstd = zstd || names_zstd(line + nlen, n - nlen);
		}
		if (n >= 5 && memcmp(line, "HTTP/", 5) == 0)
			header = zstd = false;
		free(line);
		off += n;
		if (caps.header != header || caps.zstd != zstd || (caps.zstd && !caps.header))
			abort();
	}
}

static void
body(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	char why[600];
	answer_describe(text, size, 409, why, sizeof why);
	static const char start[] = "The destination answered HTTP 409";
	if (strncmp(why, start, sizeof start - 1) != 0)
		abort();
	for (const char *c = why; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			abort();
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	if (data[0] % 2 == 0)
		headers(data + 1, size - 1);
	else
		body(data + 1, size - 1);
	return 0;
}
