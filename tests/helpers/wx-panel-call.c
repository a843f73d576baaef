/*
 * wx-panel-call: drives the panel client from shell tests.
 *
 *   wx-panel-call CONFIG get UUID
 *       prints the server configuration JSON; exit 0 ok, 1 rejected, 2 unavailable
 *   wx-panel-call CONFIG report UUID TRANSFER_ID success|failure [REASON] [ATTEMPTS]
 *       prints "ok|rejected|unavailable status=N attempts=N detail=..."; exit 0 ok,
 *       1 rejected, 2 unavailable, 3 refused or not queued (errno said)
 */
#include "autoconf.h"

#include "config.h"
#include "log.h"
#include "panel.h"
#include "program.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = { "ok", "rejected", "unavailable" };

int
main(int argc, char **argv)
{
	wx_log_init("wx-panel-call");
	if (argc < 4) {
		fprintf(stderr, "usage: wx-panel-call CONFIG get UUID | "
		    "report UUID TID success|failure [REASON] [ATTEMPTS]\n");
		return 64;
	}
	struct wx_config *cfg = wx_cli_load_config(argv[1]);
	if (cfg == NULL)
		return 64;
	struct wx_panel_answer ans;
	if (strcmp(argv[2], "get") == 0) {
		json_object *j = NULL;
		enum wx_panel_result r = wx_panel_get_server(cfg, argv[3], &j, &ans);
		if (r == WX_PANEL_OK)
			printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		else
			printf("%s status=%ld attempts=%d detail=%s\n", names[r], ans.status,
			    ans.attempts, ans.detail);
		if (j)
			json_object_put(j);
		wx_config_free(cfg);
		return (int)r;
	}
	if (strcmp(argv[2], "report") != 0 || argc < 6) {
		fprintf(stderr, "wx-panel-call: bad command\n");
		return 64;
	}
	struct wx_state st;
	char err[512];
	if (wx_state_open(&st, cfg->transfers.state_directory, err, sizeof err) < 0) {
		fprintf(stderr, "wx-panel-call: %s\n", err);
		return 64;
	}
	enum wx_callback_kind kind = strcmp(argv[5], "success") == 0 ? WX_CALLBACK_SUCCESS :
	    WX_CALLBACK_FAILURE;
	const char *reason = argc > 6 ? argv[6] : NULL;
	int64_t attempts = 1000;
	if (argc > 7 && wx_parse_i64(argv[7], 1, 1000, &attempts) != NULL) {
		fprintf(stderr, "wx-panel-call: ATTEMPTS must be 1-1000\n");
		return 64;
	}
	int r = wx_panel_report_attempts(cfg, &st, argv[3], argv[4], kind, reason, (int)attempts,
	    &ans);
	if (r < 0)
		printf("refused errno=%s detail=%s\n", strerror(errno), ans.detail);
	else
		printf("%s status=%ld attempts=%d detail=%s\n", names[r], ans.status, ans.attempts,
		    ans.detail);
	wx_state_close(&st);
	wx_config_free(cfg);
	return r < 0 ? 3 : r;
}
