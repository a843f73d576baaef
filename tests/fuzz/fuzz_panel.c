/*
 * libFuzzer target: what a node reads from the panel's answers: the server
 * configuration of GET /api/remote/servers/{uuid} (the destination's
 * installer step: wx_panel_server_config, then wx_panel_disk_limit as
 * fetch_server() uses it) and the error text of a refused request
 * (wx_panel_describe_answer).  Input: the body.
 */
#include "autoconf.h"

#include "fuzz_text.h"

#include "panel.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = fuzz_text(data, size, 65536);
	if (body == NULL)
		return 0;
	json_object *conf;
	struct wx_panel_answer ans;
	memset(&ans, 0, sizeof ans);
	enum wx_panel_result r = wx_panel_server_config(200, body, &conf, &ans);
	if (r == WX_PANEL_OK) {
		json_object *settings;
		if (conf == NULL || !json_object_object_get_ex(conf, "settings", &settings) ||
		    !json_object_is_type(settings, json_type_object))
			abort();
		bool present;
		int64_t limit = wx_panel_disk_limit(conf, &present);
		/* Bytes of a whole number of MiB, never negative; none without the key. */
		if (limit < 0 || limit % (1 << 20) != 0 || (!present && limit != 0))
			abort();
		json_object_put(conf);
	} else if (r != WX_PANEL_REJECTED || conf != NULL || ans.detail[0] == '\0') {
		abort();
	}

	char out[512];
	wx_panel_describe_answer(422, body, out, sizeof out);
	if (strncmp(out, "HTTP 422", 8) != 0)
		abort();
	for (const char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			abort();
	free(body);
	return 0;
}
