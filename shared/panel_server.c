/*
 * The panel's answer to GET /api/remote/servers/{uuid} (the installer
 * step of a receiving node), read apart from the request so that the
 * parsing of these network bytes can be fuzzed (tests/fuzz/fuzz_panel.c).
 */
#include "autoconf.h"

#include "panel.h"

#include <stdint.h>
#include <stdio.h>

enum wx_panel_result
wx_panel_server_config(long status, const char *body, json_object **config,
    struct wx_panel_answer *ans)
{
	*config = NULL;
	if (status < 200 || status > 299)
		return status >= 400 && status <= 499 ? WX_PANEL_REJECTED : WX_PANEL_UNAVAILABLE;
	json_object *j = body ? json_tokener_parse(body) : NULL;
	json_object *settings;
	if (j && json_object_is_type(j, json_type_object) &&
	    json_object_object_get_ex(j, "settings", &settings) &&
	    json_object_is_type(settings, json_type_object)) {
		*config = j;
		return WX_PANEL_OK;
	}
	if (j)
		json_object_put(j);
	snprintf(ans->detail, sizeof ans->detail, "the panel answered HTTP %ld but "
	    "not with a server configuration (no \"settings\" object)", status);
	return WX_PANEL_REJECTED;
}

int64_t
wx_panel_disk_limit(json_object *config, bool *present)
{
	json_object *settings, *build, *disk;
	int64_t mib = 0;
	*present = json_object_object_get_ex(config, "settings", &settings) &&
	    json_object_object_get_ex(settings, "build", &build) &&
	    json_object_object_get_ex(build, "disk_space", &disk) &&
	    (json_object_is_type(disk, json_type_int) || json_object_is_type(disk, json_type_double));
	if (*present)
		mib = json_object_get_int64(disk);
	return mib > 0 && mib < (INT64_MAX >> 20) ? mib << 20 : 0;
}
