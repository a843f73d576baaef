#include "autoconf.h"

#include "answer.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Printable text of at most max bytes: control characters become spaces. */
static void
sanitize(const char *in, size_t len, char *out, size_t max)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < max; i++) {
		unsigned char c = (unsigned char)in[i];
		out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

void
answer_describe(const char *body, size_t len, long code, char *why, size_t whysize)
{
	char text[400] = "";
	if (len > 0) {
		json_object *j = json_tokener_parse(body);
		json_object *e;
		if (j != NULL && json_object_is_type(j, json_type_object) &&
		    json_object_object_get_ex(j, "error", &e) && json_object_is_type(e, json_type_string))
			sanitize(json_object_get_string(e), (size_t)json_object_get_string_len(e), text,
			    sizeof text);
		else
			sanitize(body, len < 300 ? len : 300, text, sizeof text);
		if (j != NULL)
			json_object_put(j);
	}
	snprintf(why, whysize, "The destination answered HTTP %ld%s%s", code,
	    text[0] ? ": " : " with no error text", text);
}

/* Whether the comma-separated list v (length n) holds token (case-insensitive). */
static bool
list_has(const char *v, size_t n, const char *token)
{
	size_t tlen = strlen(token), i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t' && v[i] != '\r' &&
		    v[i] != '\n')
			i++;
		if (i - start == tlen && strncasecmp(v + start, token, tlen) == 0)
			return true;
		while (i < n && v[i] != ',')
			i++;
	}
	return false;
}

void
answer_caps_line(struct caps *caps, const char *line, size_t n)
{
	static const char name[] = "X-Wingxfer-Capabilities:";
	size_t nlen = sizeof name - 1;
	if (n > nlen && strncasecmp(line, name, nlen) == 0) {
		caps->header = true;
		if (list_has(line + nlen, n - nlen, "zstd"))
			caps->zstd = true;
		if (list_has(line + nlen, n - nlen, "preflight"))
			caps->preflight = true;
		if (list_has(line + nlen, n - nlen, "chunked"))
			caps->chunked = true;
		if (list_has(line + nlen, n - nlen, "presync"))
			caps->presync = true;
		if (list_has(line + nlen, n - nlen, "prefix-digest"))
			caps->prefix_digest = true;
		if (list_has(line + nlen, n - nlen, "body-checksum"))
			caps->body_checksum = true;
	}
	static const char max[] = "X-Wingxfer-Chunk-Max:";
	size_t mlen = sizeof max - 1;
	if (n > mlen && strncasecmp(line, max, mlen) == 0) {
		size_t i = mlen;
		long long v = 0;
		bool digits = false;
		while (i < n && (line[i] == ' ' || line[i] == '\t'))
			i++;
		while (i < n && line[i] >= '0' && line[i] <= '9' && v <= (1LL << 40)) {
			v = v * 10 + (line[i++] - '0');
			digits = true;
		}
		while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'))
			i++;
		caps->chunk_max = digits && i == n && v >= 1 && v <= (1LL << 40) ? v : 0;
	}
	/* A new status line (after a 1xx): forget what an earlier block said. */
	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0)
		*caps = (struct caps){ 0 };
}
