#include "autoconf.h"

#include "log.h"
#include "util.h"

#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

static char log_program[64] = "wingxfer";
static char log_request[40];
static char log_transfer[40];
static bool log_syslog;
static enum wx_log_level log_level = WX_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void
wx_log_init(const char *program)
{
	const char *slash = strrchr(program, '/');
	wx_strlcpy(log_program, slash ? slash + 1 : program, sizeof log_program);
}

const char *
wx_log_program(void)
{
	return log_program;
}

int
wx_log_use_syslog(const char *facility)
{
	static const struct { const char *name; int fac; } facilities[] = {
		{ "daemon", LOG_DAEMON }, { "user", LOG_USER }, { "local0", LOG_LOCAL0 },
		{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
		{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },
		{ "local7", LOG_LOCAL7 },
	};
	if (facility == NULL) {
		if (log_syslog)
			closelog();
		log_syslog = false;
		return 0;
	}
	for (size_t i = 0; i < WX_ARRAY_LEN(facilities); i++) {
		if (strcasecmp(facility, facilities[i].name) == 0) {
			openlog(log_program, LOG_PID | LOG_NDELAY, facilities[i].fac);
			log_syslog = true;
			return 0;
		}
	}
	return -1;
}

void
wx_log_set_level(enum wx_log_level level)
{
	log_level = level;
}

enum wx_log_level
wx_log_get_level(void)
{
	return log_level;
}

int
wx_log_parse_level(const char *s)
{
	for (size_t i = 0; i < WX_ARRAY_LEN(level_names); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return (int)i;
	if (strcasecmp(s, "warning") == 0)
		return WX_LOG_WARN;
	return -1;
}

void
wx_log_set_request(const char *request_id)
{
	wx_strlcpy(log_request, request_id ? request_id : "", sizeof log_request);
}

void
wx_log_set_transfer(const char *uuid)
{
	wx_strlcpy(log_transfer, uuid ? uuid : "", sizeof log_transfer);
}

void
wx_log(enum wx_log_level level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';

	char ctx[128] = "";
	size_t off = 0;
	if (log_request[0])
		off += (size_t)snprintf(ctx + off, sizeof ctx - off, " req=%s", log_request);
	if (log_transfer[0] && off < sizeof ctx)
		snprintf(ctx + off, sizeof ctx - off, " transfer=%s", log_transfer);

	if (log_syslog) {
		syslog(syslog_prio[level], "%s%s: %s", level_names[level], ctx, msg);
		return;
	}
	char ts[32];
	wx_format_time(wx_now(), ts, sizeof ts);
	char line[2400];
	int n = snprintf(line, sizeof line, "%s %s[%d]: %s%s: %s\n", ts, log_program,
	    (int)getpid(), level_names[level], ctx, msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line) {
		n = sizeof line - 1;
		line[n - 1] = '\n';
	}
	/* One write(2) per line so concurrent processes do not interleave. */
	(void)wx_write_all(2, line, (size_t)n);
}

void
wx_log_fingerprint(const char *secret, char *out, size_t size)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	SHA256((const unsigned char *)secret, strlen(secret), md);
	wx_hex(md, 4, hex);
	snprintf(out, size, "sha256:%s", hex);
}
