/* Shared by the libFuzzer targets that read their input as one C string. */
#ifndef WX_FUZZ_TEXT_H
#define WX_FUZZ_TEXT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The input as a NUL-terminated copy (free it), or NULL when it is longer
 * than max bytes (not interesting) or memory ran out. */
static inline char *
fuzz_text(const uint8_t *data, size_t size, size_t max)
{
	if (size > max)
		return NULL;
	char *text = malloc(size + 1);
	if (text == NULL)
		return NULL;
	memcpy(text, data, size);
	text[size] = '\0';
	return text;
}

#endif
