#include "autoconf.h"

#include "program.h"
#include "auth.h"
#include "config.h"
#include "log.h"
#include "request.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <fcgiapp.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

volatile int wx_stop_requested;
volatile int wx_interrupted;
static volatile sig_atomic_t in_request;

static void
on_stop_signal(int sig)
{
	(void)sig;
	if (!in_request)
		_exit(0);
	wx_stop_requested = 1;
}

static void
on_ignored_signal(int sig)
{
	(void)sig;
}

static void
on_interrupt_signal(int sig)
{
	(void)sig;
	wx_interrupted = 1;
}

/*
 * Our handlers go in before FCGX_Init so libfcgi leaves them alone: with
 * SA_RESTART a signal never fails a body read mid-upload (libfcgi does not
 * retry EINTR).  SIGTERM while idle exits at once; during a request it lets
 * the request finish.
 */
static void
install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sa.sa_handler = on_stop_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_ignored_signal;
	sigaction(SIGPIPE, &sa, NULL);
	/* SIGUSR2 deliberately without SA_RESTART: it breaks a blocked body read. */
	sa.sa_flags = 0;
	sa.sa_handler = on_interrupt_signal;
	sigaction(SIGUSR2, &sa, NULL);
}

/* Makes sure fds 1 and 2 exist so a stray write cannot hit a socket. */
static void
ensure_std_fds(void)
{
	for (int fd = 1; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int nul = open("/dev/null", O_RDWR);
			if (nul >= 0 && nul != fd) {
				dup2(nul, fd);
				close(nul);
			}
		}
	}
}

void
wx_print_version(const char *name)
{
	printf("%s %s\n", name, PACKAGE_VERSION);
	exit(0);
}

void
wx_apply_log_config(const struct wx_config *cfg)
{
	int level = wx_log_parse_level(cfg->transfers.log_level);
	if (level >= 0)
		wx_log_set_level((enum wx_log_level)level);
	if (cfg->transfers.syslog_facility != NULL)
		(void)wx_log_use_syslog(cfg->transfers.syslog_facility);
	else
		(void)wx_log_use_syslog(NULL);
}

int
wx_check_config(const char *config_arg)
{
	const char *path = wx_config_path(config_arg);
	char err[1024];
	struct wx_config *cfg = wx_config_load(path, err, sizeof err);
	if (cfg == NULL) {
		fprintf(stderr, "%s: %s\n", wx_log_program(), err);
		return 1;
	}
	wx_config_print(cfg, stdout);
	printf("# config OK\n");
	wx_config_free(cfg);
	return 0;
}

struct wx_config *
wx_cli_load_config(const char *config_arg)
{
	const char *path = wx_config_path(config_arg);
	char err[1024];
	struct wx_config *cfg = wx_config_load(path, err, sizeof err);
	if (cfg == NULL) {
		fprintf(stderr, "%s: %s\n", wx_log_program(), err);
		return NULL;
	}
	wx_apply_log_config(cfg);
	return cfg;
}

int
wx_cli_parse(struct wx_cli *cli, int argc, char **argv)
{
	static const struct option common[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
	};
	size_t nextra = 0;
	while (cli->extra_opts && cli->extra_opts[nextra].name)
		nextra++;
	struct option *opts = xcalloc(WX_ARRAY_LEN(common) + nextra + 1, sizeof *opts);
	memcpy(opts, common, sizeof common);
	if (nextra)
		memcpy(opts + WX_ARRAY_LEN(common), cli->extra_opts, nextra * sizeof *opts);

	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cli->config_arg = optarg;
			break;
		case 'C':
			cli->check_config = true;
			break;
		case 'h':
			fputs(cli->help, stdout);
			exit(0);
		case 'V':
			wx_print_version(cli->name);
			break;
		case 0:
			break;  /* a flag option: getopt_long has set its int */
		case '?':
		case ':':
			fprintf(stderr, "%s: unknown option or missing argument: %s\n"
			    "Try '%s --help'.\n", cli->name, argv[optind - 1], cli->name);
			exit(2);
		default:
			if (cli->on_opt == NULL || cli->on_opt(c, optarg, cli->ctx) < 0) {
				fprintf(stderr, "Try '%s --help'.\n", cli->name);
				exit(2);
			}
		}
	}
	free(opts);
	return optind;
}

char *
wx_self_dir(void)
{
	char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n <= 0)
		return xstrdup(".");
	buf[n] = '\0';
	char *slash = strrchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	return xstrdup(buf);
}

/* --- config cache for the request loop --- */

struct config_cache {
	const char *path;
	struct wx_config *cfg;
	struct stat st;
	int64_t loaded_ms;
	char err[1024];
};

static bool
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Re-reads the config when the file changed, or every 10 s (file:// tokens). */
static struct wx_config *
config_get(struct config_cache *cc)
{
	struct stat st;
	int64_t now = wx_mono_ms();
	bool stat_ok = stat(cc->path, &st) == 0;
	if (cc->cfg != NULL && stat_ok && same_file(&st, &cc->st) && now - cc->loaded_ms < 10000)
		return cc->cfg;
	struct wx_config *cfg = wx_config_load(cc->path, cc->err, sizeof cc->err);
	if (cfg == NULL) {
		wx_config_free(cc->cfg);
		cc->cfg = NULL;
		return NULL;
	}
	wx_config_free(cc->cfg);
	cc->cfg = cfg;
	if (stat_ok)
		cc->st = st;
	cc->loaded_ms = now;
	wx_apply_log_config(cfg);
	return cfg;
}

/* "https://panel.example.com:8443/x/" -> "https://panel.example.com:8443" */
static void
origin_of(const char *url, char *out, size_t size)
{
	const char *p = strstr(url, "://");
	size_t len = p ? (size_t)(p + 3 - url) + strcspn(p + 3, "/") : strlen(url);
	if (len >= size)
		len = size - 1;
	memcpy(out, url, len);
	out[len] = '\0';
}

static bool
origin_allowed(const struct wx_config *cfg, const char *origin)
{
	char panel[512];
	origin_of(cfg->remote, panel, sizeof panel);
	if (strcasecmp(origin, panel) == 0)
		return true;
	for (int i = 0; i < cfg->allowed_origins.count; i++) {
		const char *o = cfg->allowed_origins.items[i];
		if (strcmp(o, "*") == 0 || strcasecmp(o, origin) == 0)
			return true;
	}
	return false;
}

static void
add_cors(struct wx_request *req, const char *allow)
{
	const char *origin = wx_req_env(req, "HTTP_ORIGIN");
	if (origin == NULL || !origin_allowed(req->cfg, origin))
		return;
	/* The origin is echoed only after it matched a configured one. */
	wx_req_header(req, "Access-Control-Allow-Origin", "%s", origin);
	wx_req_header(req, "Vary", "Origin");
	wx_req_header(req, "Access-Control-Allow-Credentials", "true");
	if (allow != NULL) {
		wx_req_header(req, "Access-Control-Allow-Methods", "%s", allow);
		wx_req_header(req, "Access-Control-Allow-Headers",
		    "Accept, Accept-Encoding, Authorization, Cache-Control, Content-Type, "
		    "Content-Length, Origin, X-Real-IP, X-CSRF-Token");
		wx_req_header(req, "Access-Control-Max-Age", "7200");
		if (req->cfg->allow_cors_private_network)
			wx_req_header(req, "Access-Control-Allow-Private-Network", "true");
	}
}

static void
dispatch(const struct wx_program *prog, struct config_cache *cc, struct wx_request *req)
{
	wx_log_set_request(req->request_id);
	wx_log_set_transfer(NULL);
	req->cfg = config_get(cc);
	if (req->cfg == NULL) {
		wx_err("%s", cc->err);
		wx_req_error(req, 500, "node misconfigured");
		return;
	}
	if (req->cfg->api_ssl_enabled) {
		const char *https = wx_req_env(req, "HTTPS");
		if (https == NULL || strcasecmp(https, "on") != 0) {
			wx_req_error(req, 403,
			    "This node only accepts requests over HTTPS (api.ssl.enabled is true), and "
			    "this one did not arrive over TLS. Use the https:// address of the node.");
			return;
		}
	}
	char allow[128];
	if (strcmp(req->method, "OPTIONS") == 0) {
		wx_route_allowed(prog->routes, prog->nroutes, req->path, allow, sizeof allow);
		if (allow[0] == '\0') {
			wx_req_error(req, 404, "The requested resource does not exist on this instance.");
			return;
		}
		wx_req_header(req, "Allow", "%s", allow);
		if (prog->capabilities != NULL)
			wx_req_header(req, "X-Wingxfer-Capabilities", "%s", prog->capabilities);
		if (prog->chunk_max > 0)
			wx_req_header(req, "X-Wingxfer-Chunk-Max", "%lld", prog->chunk_max);
		add_cors(req, allow);
		wx_req_send(req, 204, NULL, "", 0);
		return;
	}
	const struct wx_route *route = NULL;
	enum wx_match m = wx_route_find(prog->routes, prog->nroutes, req->method, req->path, &route,
	    req->param, sizeof req->param, allow, sizeof allow);
	add_cors(req, NULL);
	if (m == WX_MATCH_NOT_FOUND) {
		wx_req_error(req, 404, "The requested resource does not exist on this instance.");
		return;
	}
	if (m == WX_MATCH_BAD_METHOD) {
		wx_req_header(req, "Allow", "%s", allow);
		wx_req_error(req, 405, "This endpoint does not accept the %s method; it accepts %s.",
		    strlen(req->method) < 16 ? req->method : "requested", allow);
		return;
	}
	if (route->auth == WX_AUTH_NODE_TOKEN && wx_auth_node_token(req) < 0)
		return;
	route->fn(req);
	if (req->status == 0)
		wx_req_internal_error(req, "handler returned without answering");
}

static void
finish_request(struct wx_request *req)
{
	int64_t ms = wx_mono_ms() - req->started_ms;
	wx_log(req->status >= 500 ? WX_LOG_WARN : WX_LOG_DEBUG, "%s %s %d %lldms", req->method,
	    req->path, req->status, (long long)ms);
	wx_req_done(req);
	wx_log_set_request(NULL);
	wx_log_set_transfer(NULL);
	/* Reap intermediate children of detached spawns, if any are left. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static int
serve_cgi(const struct wx_program *prog, struct config_cache *cc)
{
	if (getenv("REQUEST_METHOD") == NULL) {
		fprintf(stderr,
		    "%s: no FastCGI socket on fd 0 and no REQUEST_METHOD in the environment.\n"
		    "Run it under a web server (spawn-fcgi, lighttpd), with --listen SOCKET, or as CGI:\n"
		    "  REQUEST_METHOD=GET REQUEST_URI=/api/... %s\n"
		    "See '%s --help'.\n", prog->name, prog->name, prog->name);
		return 2;
	}
	struct wx_request req;
	in_request = 1;
	wx_req_init(&req, NULL);
	dispatch(prog, cc, &req);
	int status = req.status;
	finish_request(&req);
	if (cc->cfg == NULL) {
		/* The one clear line for the admin at the terminal. */
		fprintf(stderr, "%s: %s\n", prog->name, cc->err);
		return 1;
	}
	return status >= 500 ? 1 : 0;
}

static int
serve_fcgi(const struct wx_program *prog, struct config_cache *cc, int lfd)
{
	FCGX_Request fr;
	if (FCGX_InitRequest(&fr, lfd, 0) != 0) {
		wx_err("FCGX_InitRequest failed");
		return 1;
	}
	while (!wx_stop_requested) {
		if (FCGX_Accept_r(&fr) < 0)
			break;
		in_request = 1;
		wx_interrupted = 0;
		struct wx_request req;
		wx_req_init(&req, &fr);
		dispatch(prog, cc, &req);
		/* Before FCGX_Finish_r: it frees the environment req points into. */
		finish_request(&req);
		FCGX_Finish_r(&fr);
		in_request = 0;
	}
	FCGX_Free(&fr, 1);
	return 0;
}

struct fcgi_opts {
	const char *listen_path;
	int64_t workers;
	bool routes;
};

static int
on_fcgi_opt(int opt, const char *arg, void *ctx)
{
	struct fcgi_opts *o = ctx;
	if (opt == 'l') {
		o->listen_path = arg;
		return 0;
	}
	if (opt == 'r') {
		o->routes = true;
		return 0;
	}
	if (opt == 'w') {
		const char *why = wx_parse_i64(arg, 1, 256, &o->workers);
		if (why != NULL) {
			fprintf(stderr, "%s: --workers \"%s\" %s; expected a number from 1 to 256\n",
			    wx_log_program(), arg, why);
			return -1;
		}
		return 0;
	}
	return -1;
}

static volatile sig_atomic_t supervisor_stop;

static void
on_supervisor_signal(int sig)
{
	(void)sig;
	supervisor_stop = 1;
}

static pid_t
start_worker(const struct wx_program *prog, struct config_cache *cc, int lfd)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	install_signals();
	int rc = serve_fcgi(prog, cc, lfd);
	wx_config_free(cc->cfg);
	_exit(rc);
}

/*
 * --workers N: N processes accept on the one listening socket, so a long
 * upload does not block status requests or cancels.  A worker that dies (a
 * crash, or kill -9 by the watchdog) is replaced; SIGTERM is passed on and
 * each worker finishes its current request.
 */
static int
supervise(const struct wx_program *prog, struct config_cache *cc, int lfd, int n)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_supervisor_signal; /* no SA_RESTART: waitpid returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	pid_t *pids = xcalloc((size_t)n, sizeof *pids);
	int64_t *started = xcalloc((size_t)n, sizeof *started);
	for (int i = 0; i < n; i++) {
		pids[i] = start_worker(prog, cc, lfd);
		started[i] = wx_mono_ms();
	}
	while (!supervisor_stop) {
		int status;
		pid_t pid = waitpid(-1, &status, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (pids[i] != pid)
				continue;
			if (WIFSIGNALED(status))
				wx_warn("worker %d killed by signal %d; starting another", (int)pid,
				    WTERMSIG(status));
			else
				wx_warn("worker %d exited with status %d; starting another", (int)pid,
				    WEXITSTATUS(status));
			if (wx_mono_ms() - started[i] < 1000)
				sleep(1); /* a crash loop must not spin */
			if (supervisor_stop)
				break;
			pids[i] = start_worker(prog, cc, lfd);
			started[i] = wx_mono_ms();
		}
	}
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
				;
	free(pids);
	free(started);
	return 0;
}

/* --routes: "METHOD PATTERN" per line, the table requests are matched
 * against (what the web-server templates must route here). */
static int
print_routes(const struct wx_program *prog)
{
	for (size_t i = 0; i < prog->nroutes; i++)
		if (printf("%s %s\n", prog->routes[i].method, prog->routes[i].pattern) < 0)
			return 1;
	return fflush(stdout) == 0 ? 0 : 1;
}

int
wx_fcgi_main(const struct wx_program *prog, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "routes", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct fcgi_opts fo = { .workers = 1 };
	struct wx_cli cli = {
		.name = prog->name,
		.help = prog->help,
		.extra_opts = extra,
		.on_opt = on_fcgi_opt,
		.ctx = &fo,
	};
	ensure_std_fds();
	wx_log_init(prog->name);
	int first = wx_cli_parse(&cli, argc, argv);
	if (first < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\nTry '%s --help'.\n", prog->name,
		    argv[first], prog->name);
		return 2;
	}
	if (cli.check_config)
		return wx_check_config(cli.config_arg);
	if (fo.routes)
		return print_routes(prog);

	install_signals();
	if (FCGX_Init() != 0) {
		fprintf(stderr, "%s: FCGX_Init failed\n", prog->name);
		return 1;
	}
	struct config_cache cc = { .path = wx_config_path(cli.config_arg) };
	(void)config_get(&cc);
	bool cgi = fo.listen_path == NULL && FCGX_IsCGI();
	if (cc.cfg == NULL && !cgi)
		wx_err("%s (requests are answered 500 until it is fixed)", cc.err);

	int rc;
	if (cgi) {
		rc = serve_cgi(prog, &cc);
	} else {
		int lfd = 0;
		if (fo.listen_path != NULL) {
			lfd = FCGX_OpenSocket(fo.listen_path, 64);
			if (lfd < 0) {
				fprintf(stderr, "%s: cannot listen on %s: %s\n", prog->name,
				    fo.listen_path, strerror(errno));
				wx_config_free(cc.cfg);
				return 1;
			}
		}
		if (fo.workers > 1)
			rc = supervise(prog, &cc, lfd, (int)fo.workers);
		else
			rc = serve_fcgi(prog, &cc, lfd);
	}
	wx_config_free(cc.cfg);
	return rc;
}
