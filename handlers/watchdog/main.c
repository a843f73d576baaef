/*
 * wingxfer-watchdog: run from cron every minute; ends dead and stalled
 * transfers, redelivers panel callbacks, removes stale staging data.
 */
#include "autoconf.h"

#include "watchdog.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "panel.h"
#include "program.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help[] =
"NAME\n"
"    wingxfer-watchdog - end stuck transfers and redeliver panel callbacks\n"
"\n"
"SYNOPSIS\n"
"    wingxfer-watchdog [--config FILE] [--dry-run] [--json] [--verbose] [--retry-now]\n"
"    wingxfer-watchdog --check-config | --help | --version\n"
"\n"
"DESCRIPTION\n"
"    Run from cron every minute (" WX_SYSCONFDIR "/cron.d/wingxfer) or from the\n"
"    wingxfer-watchdog.timer systemd unit.  One run does three things, in order:\n"
"\n"
"    1. Stuck transfers.  For every transfer record in an active state\n"
"       (pending, processing, cancelling):\n"
"       - owner dead: nobody holds the transfer's lock any more (the web server\n"
"         was restarted, the worker crashed or was killed) -> failed, \"worker\n"
"         died\"; except an outgoing chunked upload (to a wingxfer\n"
"         destination) whose last progress is less than\n"
"         system.transfers.resume_window ago: a new wingxfer-push --resume\n"
"         takes its lock and goes on from the destination's offset (at most 3\n"
"         times per transfer; --dry-run says \"would start\");\n"
"       - stalled: the owner is alive but no bytes moved for\n"
"         system.transfers.stall_timeout (plus stop_timeout x2 while the stop\n"
"         hooks run, hook_timeout while hooks.create_environment runs,\n"
"         response_timeout while waiting for the destination's answer);\n"
"       - overdue: older than system.transfers.max_duration (0 = no limit).\n"
"       A live owner is asked to stop (cancel marker, then SIGUSR2 to the\n"
"       process that holds the transfer's lock) and killed with SIGKILL if it\n"
"       still holds the lock after 10 s.  Then, holding the lock:\n"
"       - destination side: <system.data>/.wingxfer-staging/<uuid> is removed;\n"
"       - the panel gets a failure callback for the server UUID (through the\n"
"         outbox: if the panel is down it stays queued, see 2);\n"
"       - the record becomes failed with the reason, which clears the\n"
"         \"transferring\" state, so the panel can start a new transfer.\n"
"       The source side's server data is never touched.  A destination whose\n"
"       owner died after this node told the panel success is marked completed\n"
"       instead: one transfer never gets both success and failure.\n"
"\n"
"    2. Panel callbacks.  Every callback in <state>/outbox/ that is due is sent\n"
"       once.  Undelivered callbacks are retried 1 min, 2, 4, ... at most 1 h\n"
"       apart for system.transfers.callback_retention (default 24h), then moved\n"
"       to <state>/outbox/rejected/ with an error log line.  A callback the\n"
"       panel answers with 4xx goes to rejected/ at once (409 to a failure\n"
"       means the panel already closed the transfer: delivered).\n"
"\n"
"    3. Cleanup.  An installed server whose success callback the panel refused\n"
"       (or never took within callback_retention) is moved, not deleted, to\n"
"       <system.data>/.wingxfer-unaccepted/<uuid>.<time>: the panel says the\n"
"       server lives on the source node, and the copy would block the next\n"
"       transfer here.  Finished records with their events, cancel markers and lock\n"
"       files older than system.transfers.record_retention (default 7d) and\n"
"       without a live owner; staging directories without a live owner or an\n"
"       active record (older than stall_timeout); delivered-callback\n"
"       tombstones older than record_retention; used-token records older than\n"
"       a day.\n"
"\n"
"    Only one run at a time: a second run started while one is going on says\n"
"    so on standard error and exits 0.  A run prints nothing when it did\n"
"    nothing (cron mails output), and one line per action otherwise.  Errors\n"
"    go to the log (stderr, or syslog with system.transfers.syslog).\n"
"\n"
"OPTIONS\n"
"    --config FILE     the node's config.yml (after $WINGXFER_CONFIG)\n"
"    --dry-run         say what would be done; change nothing, signal no one,\n"
"                      send nothing to the panel\n"
"    --json            print one JSON document {time, dry_run, actions[],\n"
"                      errors[]} instead of lines (always printed)\n"
"    --verbose         also say what was looked at and left alone\n"
"    --retry-now       send every queued callback now, ignoring its\n"
"                      next-attempt time (after the panel is back)\n"
"    --check-config    print the effective configuration (secrets redacted)\n"
"                      and exit 0, or print the problem and exit 1\n"
"    --help, --version\n"
"\n"
"ENVIRONMENT\n"
"    WINGXFER_CONFIG   config file; wins over --config\n"
"\n"
"FILES\n"
"    " WX_SYSCONFDIR "/wingxfer/config.yml   default configuration\n"
"    <state>/watchdog.lock           held for the whole run\n"
"    <state>/transfers/<uuid>.json   transfer records (.lock, .events, .cancel)\n"
"    <state>/outbox/                 queued panel callbacks; sent/, rejected/\n"
"    <system.data>/.wingxfer-staging/<uuid>   data being received\n"
"    <system.data>/.wingxfer-unaccepted/      copies the panel did not accept\n"
"    where <state> is system.transfers.state_directory.\n"
"\n"
"EXIT STATUS\n"
"    0 when the run completed (also when it found problems it logged, and\n"
"    when another run holds the lock); 1 when it could not run (config or\n"
"    state directory unusable); 2 on a usage error.\n"
"\n"
"EXAMPLES\n"
"    * * * * *  root  /usr/sbin/wingxfer-watchdog          (cron.d line)\n"
"    wingxfer-watchdog --dry-run --verbose   what would happen now, and why\n"
"    wingxfer-watchdog --retry-now           the panel is back: deliver now\n"
"    wingxfer-watchdog --json | jq '.actions[]'\n";

/* Flags (getopt_long sets them: ints). */
struct opts {
	int dry_run, json, verbose, retry_now;
};

static void
on_outbox_action(const struct wx_outbox_action *a, void *ctx)
{
	struct wd *w = ctx;
	char when[48] = "";
	if (a->next_attempt > 0) {
		char d[32];
		wd_duration(a->next_attempt - wx_now(), d, sizeof d);
		snprintf(when, sizeof when, "in %s", d);
	}
	const char *detail = a->detail[0] ? a->detail : "no answer";
	switch (a->act) {
	case WX_OA_BUSY:
		wd_note(w, a->server, "%s callback is being delivered by another process", a->kind);
		break;
	case WX_OA_NOT_DUE:
		wd_note(w, a->server, "%s callback waits for its next attempt %s (last: %s)", a->kind,
		    when, detail);
		break;
	case WX_OA_DELIVERED:
		wd_action(w, a->action, a->server, "%s callback delivered to the panel (HTTP %ld)",
		    a->kind, a->status);
		break;
	case WX_OA_UNAVAILABLE:
		wd_action(w, a->action, a->server, "%s callback not delivered (%s); next "
		    "attempt %s", a->kind, detail, when);
		break;
	case WX_OA_REJECTED:
		wd_action(w, a->action, a->server, "%s callback rejected by the panel (%s); moved "
		    "to %s", a->kind, detail, w->st->rejected);
		break;
	case WX_OA_EXPIRED:
		wd_action(w, a->action, a->server, "%s callback %s: %s; moved to %s", a->kind,
		    w->dry_run ? "would expire" : "expired", detail, w->st->rejected);
		break;
	case WX_OA_DROPPED:
		wd_action(w, a->action, a->server, "%s callback was %s; removed from the queue",
		    a->kind, detail);
		break;
	case WX_OA_WOULD_DELIVER:
		wd_action(w, "deliver", a->server, "%s callback would be sent (queued %s)", a->kind,
		    a->transfer_id);
		break;
	}
}

int
main(int argc, char **argv)
{
	wx_log_init("wingxfer-watchdog");
	struct opts o = { 0, 0, 0, 0 };
	const struct option extra[] = {
		{ "dry-run", no_argument, &o.dry_run, 1 },
		{ "json", no_argument, &o.json, 1 },
		{ "verbose", no_argument, &o.verbose, 1 },
		{ "retry-now", no_argument, &o.retry_now, 1 },
		{ NULL, 0, NULL, 0 },
	};
	struct wx_cli cli = { .name = "wingxfer-watchdog", .help = help, .extra_opts = extra };
	int first = wx_cli_parse(&cli, argc, argv);
	if (first < argc) {
		fprintf(stderr, "wingxfer-watchdog: unexpected argument '%s'\n"
		    "Try 'wingxfer-watchdog --help'.\n", argv[first]);
		return 2;
	}
	if (cli.check_config)
		return wx_check_config(cli.config_arg);
	struct wx_config *cfg = wx_cli_load_config(cli.config_arg);
	if (cfg == NULL)
		return 1;
	struct wx_state st;
	char err[1024];
	if (wx_state_open(&st, cfg->transfers.state_directory, err, sizeof err) < 0) {
		fprintf(stderr, "wingxfer-watchdog: %s\n", err);
		wx_config_free(cfg);
		return 1;
	}
	char *lock_path = wx_path_join(st.dir, "watchdog.lock");
	int lock_fd = -1;
	enum wx_lock_result lr = wx_lock_try_path(lock_path, &lock_fd);
	if (lr != WX_LOCK_ACQUIRED) {
		int rc = 0;
		if (lr == WX_LOCK_BUSY) {
			fprintf(stderr, "wingxfer-watchdog: another run is in progress (%s is locked); "
			    "exiting\n", lock_path);
		} else {
			fprintf(stderr, "wingxfer-watchdog: cannot lock %s: %s\n", lock_path,
			    strerror(errno));
			rc = 1;
		}
		free(lock_path);
		wx_state_close(&st);
		wx_config_free(cfg);
		return rc;
	}

	struct wd w = {
		.cfg = cfg, .st = &st, .dry_run = o.dry_run, .json = o.json, .verbose = o.verbose,
		.retry_now = o.retry_now, .now = wx_now(),
	};
	/* Routine progress of the panel client is not news for cron mail. */
	if (!o.verbose && wx_log_get_level() == WX_LOG_INFO)
		wx_log_set_level(WX_LOG_WARN);

	wd_stuck_transfers(&w);
	struct wx_outbox_opts oo = { .dry_run = o.dry_run, .retry_now = o.retry_now,
	    .on_action = on_outbox_action, .ctx = &w };
	if (wx_outbox_redeliver(cfg, &st, &oo) < 0)
		wd_error(&w, NULL, "cannot read the outbox %s: %s", st.outbox, strerror(errno));
	w.now = wx_now();
	wd_cleanup(&w);

	if (o.json)
		wd_print_json(&w);
	if (w.list)
		json_object_put(w.list);
	close(lock_fd);
	free(lock_path);
	wx_state_close(&st);
	wx_config_free(cfg);
	return 0;
}
