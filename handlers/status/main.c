/*
 * wingxfer-status: the node's transfers, incoming and outgoing, from the
 * transfer records, for admins (text) and scripts (--json); --follow watches
 * until they end.
 */
#include "autoconf.h"

#include "status_cmd.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "program.h"
#include "state.h"
#include "util.h"
#include "uuid.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char help[] =
"NAME\n"
"    wingxfer-status - show this node's server transfers\n"
"\n"
"SYNOPSIS\n"
"    wingxfer-status [--config FILE] [--json] [--active] [--follow]\n"
"                    [--interval DURATION] [--max-time DURATION] [UUID...]\n"
"    wingxfer-status --check-config | --help | --version\n"
"\n"
"DESCRIPTION\n"
"    Lists the transfers this node knows, from the records in\n"
"    <system.transfers.state_directory>/transfers/: outgoing ones (this node\n"
"    is the source, wingxfer-push sends the server) and incoming ones (this\n"
"    node is the destination, wingxfer-destination receives it).  Active\n"
"    transfers (pending, processing, cancelling) come first, then the newest.\n"
"    Finished records are kept for system.transfers.record_retention.\n"
"\n"
"    For each transfer, in text: the server UUID, the direction, the state\n"
"    (and phase while active: stopping, archiving, streaming, receiving,\n"
"    installing, ...); a progress bar with the percent, the bytes read of the\n"
"    total (source: the server's files archived; destination: the upload\n"
"    received; the total is unknown for a chunked upload), the current rate\n"
"    and the ETA, or, once ended, the average rate and how long it took; when\n"
"    it started, how many files, where it goes (outgoing); a chunked upload's\n"
"    acknowledged bytes and interruptions; a live pre-sync's round, whether\n"
"    the server is stopped yet, the data each round sent and the expected\n"
"    downtime; its last error and warning.  An active transfer whose\n"
"    process is gone (nobody holds its lock) says so: wingxfer-watchdog ends\n"
"    it on its next run.\n"
"\n"
"    It only reads: nothing is created or changed, and it can run while\n"
"    transfers run.  It needs to read the state directory (root, or the user\n"
"    the wingxfer programs run as).\n"
"\n"
"OPTIONS\n"
"    --config FILE         the node's config.yml (after $WINGXFER_CONFIG)\n"
"    --json                one JSON document: {time, state_directory, active,\n"
"                          transfers[]}, each transfer as GET\n"
"                          /api/transfers/<uuid> or /api/servers/<uuid>/transfer\n"
"                          answer it (uuid, role, state, phase, active,\n"
"                          owner_alive, bytes_*, files, rate_bytes_per_second,\n"
"                          eta_seconds, percent, *_at, error, warning, logs)\n"
"                          plus direction (incoming/outgoing) and, outgoing,\n"
"                          destination_url\n"
"    --active              only active transfers\n"
"    --follow              refresh every --interval until no listed transfer\n"
"                          is active (on a terminal the screen is redrawn;\n"
"                          otherwise each listing follows the last; with\n"
"                          --json one document per line)\n"
"    --interval DURATION   time between refreshes (default 1s; 1s to 1h)\n"
"    --max-time DURATION   --follow gives up after this long (default 24h)\n"
"    UUID...               only these servers' transfers (each must exist)\n"
"    --check-config        print the effective configuration (secrets redacted)\n"
"                          and exit 0, or print the problem and exit 1\n"
"    --help, --version\n"
"\n"
"    A DURATION is seconds (\"90\") or a number with s, m, h or d (\"15m\").\n"
"\n"
"ENVIRONMENT\n"
"    WINGXFER_CONFIG   config file; wins over --config\n"
"\n"
"FILES\n"
"    " WX_SYSCONFDIR "/wingxfer/config.yml   default configuration\n"
"    <state>/transfers/<uuid>.json   transfer records (.lock: held by the live\n"
"                                    owner; .cancel: a cancel was asked;\n"
"                                    .events: the log lines in --json)\n"
"    where <state> is system.transfers.state_directory.\n"
"\n"
"EXIT STATUS\n"
"    0 the transfers were listed (with --follow: none is active any more);\n"
"    1 the configuration or the state directory is unusable, a UUID given has\n"
"    no record, or the output could not be written; 2 on a usage error;\n"
"    3 --follow reached --max-time while transfers were still active.\n"
"\n"
"EXAMPLES\n"
"    wingxfer-status                   every transfer this node remembers\n"
"    wingxfer-status --active --follow watch the running ones until they end\n"
"    wingxfer-status --json | jq -r '.transfers[] | select(.state==\"failed\")\n"
"      | \"\\(.uuid) \\(.error)\"'\n";

struct opts {
	int json, active, follow;   /* flags: getopt_long sets them */
	int64_t interval, max_time;
};

enum { OPT_INTERVAL = 1000, OPT_MAX_TIME };

static int
on_opt(int opt, const char *arg, void *ctx)
{
	struct opts *o = ctx;
	const char *why;
	switch (opt) {
	case OPT_INTERVAL:
		if ((why = wx_parse_duration(arg, &o->interval)) != NULL || o->interval < 1 ||
		    o->interval > 3600) {
			fprintf(stderr, "wingxfer-status: --interval '%s': %s\n", arg,
			    why ? why : "must be from 1s to 1h");
			return -1;
		}
		return 0;
	case OPT_MAX_TIME:
		if ((why = wx_parse_duration(arg, &o->max_time)) != NULL || o->max_time < 1) {
			fprintf(stderr, "wingxfer-status: --max-time '%s': %s\n", arg,
			    why ? why : "must be at least 1s");
			return -1;
		}
		return 0;
	}
	return -1;
}

/* Sleeps s seconds (through signals that do not end the process). */
static void
pause_seconds(int64_t s)
{
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = 0 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* One listing on stdout; -1 when the records could not be read. */
static int
show(const struct wx_state *st, char **uuids, size_t n, const struct opts *o, bool redraw,
    size_t *active)
{
	struct st_list l;
	int rc = st_list_load(st, uuids, n, o->active, &l);
	int64_t now = wx_now();
	if (o->json) {
		json_object *doc = st_show_json(&l, st, now);
		int flags = o->follow ? JSON_C_TO_STRING_PLAIN :
		    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED;
		printf("%s\n", json_object_to_json_string_ext(doc, flags | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(doc);
	} else {
		if (redraw)
			fputs("\033[H\033[2J", stdout);
		else if (o->follow)
			putchar('\n');
		st_show_text(stdout, &l, st, now);
	}
	*active = l.active;
	st_list_free(&l);
	return rc;
}

int
main(int argc, char **argv)
{
	wx_log_init("wingxfer-status");
	struct opts o = { .interval = 1, .max_time = 86400 };
	const struct option extra[] = {
		{ "json", no_argument, &o.json, 1 },
		{ "active", no_argument, &o.active, 1 },
		{ "follow", no_argument, &o.follow, 1 },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "max-time", required_argument, NULL, OPT_MAX_TIME },
		{ NULL, 0, NULL, 0 },
	};
	struct wx_cli cli = { .name = "wingxfer-status", .help = help, .extra_opts = extra,
	    .on_opt = on_opt, .ctx = &o };
	int first = wx_cli_parse(&cli, argc, argv);
	if (cli.check_config)
		return wx_check_config(cli.config_arg);
	size_t n = (size_t)(argc - first);
	char **uuids = xcalloc(n + 1, sizeof *uuids);
	for (size_t i = 0; i < n; i++) {
		uuids[i] = xmalloc(37);
		if (wx_uuid_normalize(argv[first + (int)i], uuids[i]) < 0) {
			fprintf(stderr, "wingxfer-status: '%s' is not a server UUID\n"
			    "Try 'wingxfer-status --help'.\n", argv[first + (int)i]);
			for (size_t k = 0; k <= i; k++)
				free(uuids[k]);
			free(uuids);
			return 2;
		}
	}
	struct wx_config *cfg = wx_cli_load_config(cli.config_arg);
	if (cfg == NULL) {
		for (size_t i = 0; i < n; i++)
			free(uuids[i]);
		free(uuids);
		return 1;
	}
	/* Read only: the paths of wx_state_open, without creating anything. */
	struct wx_state st = {
		.dir = xstrdup(cfg->transfers.state_directory),
		.transfers = wx_path_join(cfg->transfers.state_directory, "transfers"),
		.outbox = wx_path_join(cfg->transfers.state_directory, "outbox"),
		.tokens = wx_path_join(cfg->transfers.state_directory, "tokens"),
	};
	st.rejected = wx_path_join(st.outbox, "rejected");

	bool redraw = o.follow && !o.json && isatty(STDOUT_FILENO);
	int64_t deadline = wx_mono_ms() + o.max_time * 1000;
	int rc = 0;
	for (;;) {
		size_t active = 0;
		if (show(&st, uuids, n, &o, redraw, &active) < 0)
			rc = 1;
		if (fflush(stdout) != 0) {
			fprintf(stderr, "wingxfer-status: cannot write the output: %s\n",
			    strerror(errno));
			rc = 1;
			break;
		}
		if (!o.follow || rc != 0 || active == 0)
			break;
		if (wx_mono_ms() + o.interval * 1000 > deadline) {
			fprintf(stderr, "wingxfer-status: %zu transfer%s still active after "
			    "--max-time; stopped following\n", active, active == 1 ? "" : "s");
			rc = 3;
			break;
		}
		pause_seconds(o.interval);
	}
	for (size_t i = 0; i < n; i++)
		free(uuids[i]);
	free(uuids);
	wx_state_close(&st);
	wx_config_free(cfg);
	return rc;
}
