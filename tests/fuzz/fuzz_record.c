/* libFuzzer target: the transfer-record reader on arbitrary bytes. */
#include "autoconf.h"

#include "record.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wx_record r;
	const char *why = NULL;
	if (size > 1 << 20)
		return 0;
	if (wx_record_parse((const char *)data, size, &r, &why) == 0) {
		json_object *j = wx_record_to_json(&r);
		json_object_put(j);
		wx_record_clear(&r);
	}
	return 0;
}
