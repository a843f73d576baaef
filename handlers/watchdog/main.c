/*
 * wingxfer-watchdog: run from cron every minute; ends dead and stalled
 * transfers, redelivers panel callbacks, removes stale staging data.
 */
#include "autoconf.h"

#include "config.h"
#include "log.h"
#include "program.h"

#include <stdio.h>

static const char help[] =
"NAME\n"
"    wingxfer-watchdog - end stuck transfers and redeliver panel callbacks\n"
"\n"
"SYNOPSIS\n"
"    wingxfer-watchdog [--config FILE] [--dry-run] [--json] [--verbose]\n"
"    wingxfer-watchdog --check-config | --help | --version\n";

int
main(int argc, char **argv)
{
	wx_log_init("wingxfer-watchdog");
	struct wx_cli cli = { .name = "wingxfer-watchdog", .help = help };
	(void)wx_cli_parse(&cli, argc, argv);
	if (cli.check_config)
		return wx_check_config(cli.config_arg);
	fprintf(stderr, "wingxfer-watchdog: not implemented yet\n");
	return 1;
}
