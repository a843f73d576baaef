/* Log lines: level, program, request id and transfer on every line; one line each. */
#include "autoconf.h"

#include "log.h"
#include "tap.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char *
capture_stderr(void (*fn)(void))
{
	FILE *f = tmpfile();
	int saved = dup(2);
	dup2(fileno(f), 2);
	fn();
	dup2(saved, 2);
	close(saved);
	long len = ftell(f);
	char *buf = xmalloc((size_t)(len > 0 ? len : 0) + 1);
	rewind(f);
	size_t n = fread(buf, 1, (size_t)(len > 0 ? len : 0), f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
emit_with_context(void)
{
	wx_log_set_request("11111111-2222-4333-8444-555555555555");
	wx_log_set_transfer("0b2a1c3d-1111-4222-8333-444455556666");
	wx_err("disk full at %d%%", 100);
	wx_log_set_request(NULL);
	wx_log_set_transfer(NULL);
	wx_info("no context");
}

static void
emit_hostile(void)
{
	wx_warn("path from peer: %s", "evil\nFAKE LINE\r\x1b[31m");
}

static void
emit_levels(void)
{
	wx_log_set_level(WX_LOG_WARN);
	wx_info("hidden info");
	wx_debug("hidden debug");
	wx_warn("shown warn");
	wx_log_set_level(WX_LOG_INFO);
}

int
main(void)
{
	wx_log_init("/usr/sbin/wingxfer-test");
	is_str(wx_log_program(), "wingxfer-test", "the program name is the basename");
	char *out = capture_stderr(emit_with_context);
	has_str(out, " wingxfer-test[", "the line names the program and pid");
	has_str(out, "]: error req=11111111-2222-4333-8444-555555555555 "
	    "transfer=0b2a1c3d-1111-4222-8333-444455556666: disk full at 100%\n",
	    "level, request id and transfer uuid on the line");
	has_str(out, "]: info: no context\n", "without context, just the level");
	ok(out[0] == '2' && out[4] == '-' && out[10] == 'T', "lines start with an RFC 3339 time");
	free(out);

	out = capture_stderr(emit_hostile);
	int lines = 0;
	for (char *p = out; *p; p++)
		lines += *p == '\n';
	is_int(lines, 1, "a message with newlines stays one line");
	has_str(out, "evil?FAKE LINE??[31m", "control characters are replaced");
	free(out);

	out = capture_stderr(emit_levels);
	ok(strstr(out, "hidden") == NULL, "messages below the level are dropped");
	has_str(out, "shown warn", "messages at the level are kept");
	free(out);

	is_int(wx_log_parse_level("debug"), WX_LOG_DEBUG, "level names parse");
	is_int(wx_log_parse_level("verbose"), -1, "unknown level names are refused");
	is_int(wx_log_use_syslog("nonsense"), -1, "an unknown syslog facility is refused");

	char fp[32];
	wx_log_fingerprint("my-node-secret", fp, sizeof fp);
	ok(strncmp(fp, "sha256:", 7) == 0 && strlen(fp) == 15, "a fingerprint is sha256: + 8 hex digits");
	ok(strstr(fp, "secret") == NULL, "the fingerprint does not contain the secret");
	return tap_done();
}
