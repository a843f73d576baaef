/*
 * wingxfer-push: streams one outgoing transfer (started by wingxfer-source,
 * or by hand).
 */
#include "autoconf.h"

#include "config.h"
#include "log.h"
#include "program.h"

#include <stdio.h>

static const char help[] =
"NAME\n"
"    wingxfer-push - stream one server to its destination node\n"
"\n"
"SYNOPSIS\n"
"    wingxfer-push [--config FILE] UUID\n"
"    wingxfer-push --check-config | --help | --version\n";

int
main(int argc, char **argv)
{
	wx_log_init("wingxfer-push");
	struct wx_cli cli = { .name = "wingxfer-push", .help = help };
	int first = wx_cli_parse(&cli, argc, argv);
	if (cli.check_config)
		return wx_check_config(cli.config_arg);
	(void)first;
	fprintf(stderr, "wingxfer-push: not implemented yet\n");
	return 1;
}
