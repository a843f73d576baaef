/* libFuzzer target: the Authorization header and transfer-token checks. */
#include "autoconf.h"

#include "fuzz_text.h"

#include "transfer_jwt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_text(data, size, 16384);
	if (text == NULL)
		return 0;
	const char *why;
	const char *tok = wx_transfer_bearer(text, &why);
	if (tok == NULL)
		tok = text;
	struct wx_transfer_claims c;
	char msg[512];
	struct wx_jwt_policy pol = { .allow_unscoped = size % 2 == 0, .max_lifetime = 7200 };
	(void)wx_transfer_jwt_check(tok, "fuzz-node-token", 1800000000, &pol, &c, msg, sizeof msg);
	free(text);
	return 0;
}
