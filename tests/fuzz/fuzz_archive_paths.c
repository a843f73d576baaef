/* libFuzzer target: entry path checks and file-name sanitising. */
#include "autoconf.h"

#include "fuzz_text.h"

#include "archive_paths.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size, 8192);
	if (text == NULL)
		return 0;
	const char *problem = wx_entry_path_problem(text);
	/* A safe path never starts with '/' and never has a ".." component. */
	if (problem == NULL) {
		if (text[0] == '/' || strcmp(text, "..") == 0 || strncmp(text, "../", 3) == 0 ||
		    strstr(text, "/../") != NULL)
			abort();
		size_t n = strlen(text);
		if (n >= 3 && strcmp(text + n - 3, "/..") == 0)
			abort();
	}
	char name[WX_SAFE_NAME_MAX + 1];
	if (wx_safe_file_name(text, name, sizeof name) == 0) {
		if (name[0] == '.' || strchr(name, '/') != NULL || strlen(name) > WX_SAFE_NAME_MAX)
			abort();
	}
	free(text);
	return 0;
}
