/*
 * The common life of a wingxfer program: options, config, logging, and for
 * the FastCGI programs the request loop.
 *
 * A FastCGI program serves requests on fd 0 (spawn-fcgi, lighttpd,
 * systemd StandardInput=socket) or on --listen SOCKET.  Started from a shell
 * (fd 0 is not a socket) with REQUEST_METHOD set, it answers exactly one
 * request as plain CGI on stdout; that is how admins debug a handler.
 *
 * Each request: request id, config (re-read when the file changed), TLS
 * contract (api.ssl.enabled), CORS, OPTIONS preflight, routing, node-token
 * auth, the handler, and a guarantee that some response is sent.
 */
#ifndef WX_PROGRAM_H
#define WX_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>

#include "router.h"

struct wx_config;

struct wx_program {
	const char *name;            /* "wingxfer-destination" */
	const char *help;            /* full --help text (man-page style) */
	const struct wx_route *routes;
	size_t nroutes;
	/* X-Wingxfer-Capabilities on OPTIONS answers (e.g. "zstd, gzip": the
	 * archive codecs this program reads), or NULL for none. */
	const char *capabilities;
	/* X-Wingxfer-Chunk-Max on OPTIONS answers (docs/protocol.md §2): the
	 * largest chunk request body accepted, in bytes; 0 for none. */
	long long chunk_max;
};

/* Runs a FastCGI program; returns the process exit status. */
int wx_fcgi_main(const struct wx_program *prog, int argc, char **argv);

/* Set by SIGTERM/SIGINT while a request or job runs: finish, then exit. */
extern volatile int wx_stop_requested;

/*
 * Set by SIGUSR2, which is installed without SA_RESTART so that it also
 * breaks a body read blocked in the kernel (the read fails, the request sees
 * a body error).  Whoever cancels a transfer (DELETE handler, watchdog) first
 * creates the cancel marker, then sends SIGUSR2 to the owner's pid; the owner
 * checks the marker when a read fails or wx_interrupted is set.  Cleared at
 * the start of each request.
 */
extern volatile int wx_interrupted;

/*
 * Options every command-line program shares.  wx_cli_parse handles --help,
 * --version, --config and --check-config itself (exiting where they say so)
 * and returns the index of the first non-option argument.  extra_opts is a
 * getopt_long option table of the program's own options (may be NULL);
 * on_opt is called for each of them, except a flag option (an int whose
 * address is the entry's flag: getopt_long sets it to val itself).  on_opt
 * may be NULL when every extra option is a flag.
 */
struct option;
struct wx_cli {
	const char *name;
	const char *help;
	const struct option *extra_opts;
	int (*on_opt)(int opt, const char *arg, void *ctx);
	void *ctx;
	const char *config_arg;      /* out: --config value */
	bool check_config;           /* out */
};
int wx_cli_parse(struct wx_cli *cli, int argc, char **argv);

/*
 * Loads the config for a command-line program and applies its logging
 * settings; on error prints one line to stderr and returns NULL.
 */
struct wx_config *wx_cli_load_config(const char *config_arg);

/* --check-config: prints the effective config or the error; exit status. */
int wx_check_config(const char *config_arg);

/* Applies log_level/syslog from cfg to the logger. */
void wx_apply_log_config(const struct wx_config *cfg);

/* Prints "<name> <version>" and exits 0. */
void wx_print_version(const char *name);

/* Directory of the running executable (for finding sibling programs). */
char *wx_self_dir(void);

#endif
