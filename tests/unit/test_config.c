/* Config loader: a good Wings file, the seed's spelling, and each kind of bad file. */
#include "autoconf.h"

#include "config.h"
#include "connect_to.h"
#include "tap.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/wx-test-config.XXXXXX";

static char *
write_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(99);
	}
	return path;
}

/* Loads text; returns the config (or NULL with err filled). */
static struct wx_config *
load(const char *text, char *err, size_t errsize)
{
	char *path = write_file("config.yml", text);
	struct wx_config *cfg = wx_config_load(path, err, errsize);
	free(path);
	return cfg;
}

#define BASE "token_id: tid\ntoken: s3cret\nremote: https://panel.example.com\n"

static void
test_good_wings_file(void)
{
	/* A FeatherWings-style file with keys we do not read (ignored). */
	const char *text =
	    "debug: false\n"
	    "app_name: FeatherPanel\n"
	    "uuid: 0b2a1c3d-1111-4222-8333-444455556666\n"
	    "token_id: tid\n"
	    "token: s3cret\n"
	    "api:\n"
	    "  host: 0.0.0.0\n"
	    "  port: 8443\n"
	    "  ssl:\n"
	    "    enabled: true\n"
	    "    cert: /etc/letsencrypt/live/node/fullchain.pem\n"
	    "    key: /etc/letsencrypt/live/node/privkey.pem\n"
	    "  upload_limit: 100\n"
	    "system:\n"
	    "  root_directory: /var/lib/featherpanel\n"
	    "  log_directory: /var/log/featherpanel\n"
	    "  data: /var/lib/featherpanel/volumes\n"
	    "  sftp:\n"
	    "    bind_port: 2022\n"
	    "  user:\n"
	    "    uid: 988\n"
	    "    gid: 988\n"
	    "  transfers:\n"
	    "    download_limit: 50\n"
	    "    upload_limit: 20\n"
	    "    perform_checksum_checks: true\n"
	    "    storage_pool:\n"
	    "      enabled: false\n"
	    "      pool_name: \"\"\n"
	    "    stall_timeout: 15m\n"
	    "    disk_reserve: 2GiB\n"
	    "    hooks:\n"
	    "      stop: [/usr/local/bin/stop-server, --fast]\n"
	    "      create_environment: /usr/local/bin/make-env --quiet\n"
	    "docker:\n"
	    "  network:\n"
	    "    name: pterodactyl_nw\n"
	    "remote: https://panel.example.com\n"
	    "remote_query:\n"
	    "  timeout: 45\n"
	    "allowed_origins:\n"
	    "  - https://admin.example.com\n";
	char err[512];
	struct wx_config *cfg = load(text, err, sizeof err);
	ok(cfg != NULL, "a FeatherWings config.yml loads (%s)", cfg ? "ok" : err);
	if (cfg == NULL)
		return;
	is_str(cfg->token, "s3cret", "token read");
	is_str(cfg->token_id, "tid", "token_id read");
	is_int(cfg->api_port, 8443, "api.port read");
	ok(cfg->api_ssl_enabled, "api.ssl.enabled read");
	is_str(cfg->data_directory, "/var/lib/featherpanel/volumes", "system.data read");
	is_str(cfg->backup_directory, "/var/lib/featherpanel/backups",
	    "backup_directory derived from root_directory");
	is_int(cfg->uid, 988, "system.user.uid read");
	is_int(cfg->remote_timeout, 45, "remote_query.timeout read");
	is_int(cfg->transfers.download_limit, 50, "download_limit read");
	is_int(cfg->transfers.upload_limit, 20, "upload_limit read");
	ok(cfg->transfers.perform_checksum_checks, "perform_checksum_checks read");
	is_int(cfg->transfers.stall_timeout, 900, "stall_timeout 15m = 900 s");
	is_int(cfg->transfers.disk_reserve, 2LL << 30, "disk_reserve 2GiB");
	is_int(cfg->transfers.hook_stop.argc, 2, "hooks.stop as a list");
	is_str(cfg->transfers.hook_create_environment.argv[1], "--quiet",
	    "hooks.create_environment as a string is split into arguments");
	is_int(cfg->allowed_origins.count, 1, "allowed_origins read");
	is_int(cfg->transfers.callback_retention, 86400, "callback_retention defaults to 24h");
	is_int(cfg->transfers.record_retention, 7 * 86400, "record_retention defaults to 7 days");
	is_int(cfg->transfers.compression_level, 1, "compression_level defaults to 1");
	wx_config_free(cfg);
}

static void
test_defaults(void)
{
	char err[512];
	struct wx_config *cfg = load(BASE, err, sizeof err);
	ok(cfg != NULL, "a minimal config loads");
	if (cfg == NULL)
		return;
	is_str(cfg->data_directory, "/var/lib/pterodactyl/volumes", "Wings' default data dir");
	is_int(cfg->remote_timeout, 30, "Wings' default panel timeout");
	is_int(cfg->transfers.stall_timeout, 120, "default stall_timeout");
	is_int(cfg->transfers.stop_timeout, 60, "default stop_timeout");
	is_int(cfg->transfers.disk_reserve, 1LL << 30, "default disk_reserve 1 GiB");
	ok(!cfg->transfers.perform_checksum_checks, "checksum checks off by default, as FeatherWings");
	is_str(cfg->transfers.state_directory, "/var/lib/wingxfer", "default state directory");
	ok(cfg->transfers.hook_stop.argv == NULL, "no stop hook by default");
	wx_config_free(cfg);
}

static void
test_seed_spelling(void)
{
	char err[512];
	struct wx_config *cfg = load(BASE "transfers:\n  download_limit: 7\n  stall_timeout: 30\n",
	    err, sizeof err);
	ok(cfg != NULL, "top-level transfers.* is accepted (%s)", cfg ? "ok" : err);
	if (cfg) {
		is_int(cfg->transfers.download_limit, 7, "transfers.download_limit read");
		is_int(cfg->transfers.stall_timeout, 30, "transfers.stall_timeout read");
		wx_config_free(cfg);
	}
	cfg = load(BASE "transfers:\n  download_limit: 7\nsystem:\n  transfers:\n"
	    "    download_limit: 8\n", err, sizeof err);
	ok(cfg == NULL, "the same key in transfers.* and system.transfers.* is an error");
	has_str(err, "set twice", "the error says it is set twice");
	has_str(err, "also on line 5", "the error names the other line");
	wx_config_free(cfg);
}

static void
test_errors(void)
{
	char err[512];
	struct wx_config *cfg;

	cfg = load(BASE "system:\n  transfers:\n    stall_timout: 30\n", err, sizeof err);
	ok(cfg == NULL, "an unknown key under system.transfers is an error");
	has_str(err, "config.yml:6: system.transfers.stall_timout: unknown key",
	    "it names file, line and key");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  transfers:\n    hooks:\n    # stop: /bin/true\n", err, sizeof err);
	ok(cfg != NULL, "an empty hooks: block (all commented out) is fine");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  transfers:\n    hooks:\n      stopp: /bin/true\n", err, sizeof err);
	ok(cfg == NULL, "an unknown nested key under system.transfers is an error");
	has_str(err, "system.transfers.hooks.stopp", "it names the nested key");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  transfers:\n    stall_timeout: soon\n", err, sizeof err);
	ok(cfg == NULL, "a non-numeric duration is an error");
	has_str(err, ":6: system.transfers.stall_timeout: \"soon\" is not a number; expected seconds",
	    "it names line, key, value and what was expected");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  transfers:\n    compression_level: 12\n", err, sizeof err);
	ok(cfg == NULL, "an out-of-range number is an error");
	has_str(err, "\"12\" is too large; expected a whole number from 0 to 9", "it gives the range");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  transfers:\n    chunk_size: 100MB\n", err, sizeof err);
	ok(cfg == NULL, "a chunk_size over 96 MiB is an error (it must fit a 100 MB proxy limit)");
	has_str(err, "system.transfers.chunk_size: \"100MB\" is too large; expected 1MiB to 96MiB",
	    "it gives the range in the units people write");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  transfers:\n    chunk_size: 96MiB\n", err, sizeof err);
	ok(cfg != NULL && cfg->transfers.chunk_size == 96LL << 20, "chunk_size 96MiB is the largest allowed");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  transfers:\n    resume_window: 10s\n", err, sizeof err);
	ok(cfg == NULL, "an out-of-range duration is an error");
	has_str(err, "\"10s\" is too short; expected 60 to 604800 seconds", "it gives the range in seconds");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  transfers:\n    perform_checksum_checks: maybe\n", err, sizeof err);
	ok(cfg == NULL, "a bad boolean is an error");
	has_str(err, "expected true or false", "it says what a boolean is");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  transfers:\n    compression: brotli\n", err, sizeof err);
	ok(cfg == NULL, "an unknown choice is an error");
	has_str(err, "expected one of: auto gzip zstd", "it lists the choices");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  transfers:\n    hooks:\n      stop: stop-server\n", err, sizeof err);
	ok(cfg == NULL, "a hook that is not an absolute path is an error");
	has_str(err, "not an absolute path", "it says so");
	wx_config_free(cfg);

	/* The words read before the error are freed (LeakSanitizer checks it in
	 * the sanitizer build; a FastCGI worker loads a broken config per request). */
	cfg = load(BASE "system:\n  transfers:\n    hooks:\n      stop: [/bin/echo, a, [b]]\n", err,
	    sizeof err);
	ok(cfg == NULL, "a hook list with a non-string item is an error");
	has_str(err, "list item is not a string", "it says so");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  data: relative/dir\n", err, sizeof err);
	ok(cfg == NULL, "a relative system.data is an error");
	has_str(err, ":5: system.data:", "it names line and key");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  user:\n    uid: abc\n", err, sizeof err);
	ok(cfg == NULL, "a non-numeric uid is an error, although it is a Wings key we read");
	wx_config_free(cfg);

	cfg = load(BASE "remote_query:\n  timeout: [1, 2]\n", err, sizeof err);
	ok(cfg == NULL, "a list where a number is expected is an error");
	has_str(err, "is a list; expected", "it says what it got");
	wx_config_free(cfg);

	cfg = load("token_id: tid\nremote: https://p.example\n", err, sizeof err);
	ok(cfg == NULL, "a missing token is an error");
	has_str(err, "token: missing", "it names the missing key");
	wx_config_free(cfg);

	cfg = load("token_id: tid\ntoken: x\nremote: panel.example.com\n", err, sizeof err);
	ok(cfg == NULL, "remote without a scheme is an error");
	has_str(err, "remote: \"panel.example.com\" is not a URL", "it names key and value");
	wx_config_free(cfg);

	cfg = load(BASE "system:\n  transfers: [a\n", err, sizeof err);
	ok(cfg == NULL, "invalid YAML is an error");
	has_str(err, "not valid YAML", "it says the YAML is invalid");
	wx_config_free(cfg);

	cfg = load("- a\n- b\n", err, sizeof err);
	ok(cfg == NULL, "a YAML list at the top is an error");
	wx_config_free(cfg);

	cfg = load(BASE "api:\n  ssl:\n    enabled: true\n", err, sizeof err);
	ok(cfg == NULL, "TLS enabled without cert/key is an error");
	has_str(err, "api.ssl.enabled", "it names the key");
	wx_config_free(cfg);

	cfg = wx_config_load("/nonexistent/wingxfer.yml", err, sizeof err);
	ok(cfg == NULL, "an unreadable file is an error");
	has_str(err, "/nonexistent/wingxfer.yml: cannot read the config file",
	    "it names the file and the problem");
}

static void
test_secrets(void)
{
	char err[512];
	char *tokfile = write_file("token.txt", "from-a-file\n");
	char *text = xasprintf("token_id: tid\nremote: https://p.example\ntoken: file://%s\n", tokfile);
	struct wx_config *cfg = load(text, err, sizeof err);
	ok(cfg != NULL, "token: file://path loads");
	if (cfg) {
		is_str(cfg->token, "from-a-file", "the token is read from the file, newline trimmed");
		char *buf = NULL;
		size_t len = 0;
		FILE *mem = open_memstream(&buf, &len);
		wx_config_print(cfg, mem);
		fclose(mem);
		ok(strstr(buf, "from-a-file") == NULL, "--check-config output does not contain the token");
		has_str(buf, "token: \"<redacted, from file://", "it says where the token comes from");
		free(buf);
		wx_config_free(cfg);
	}
	free(text);
	free(tokfile);

	setenv("WX_TEST_TOKEN", "from-env", 1);
	cfg = load("token_id: tid\nremote: https://p.example\ntoken: $WX_TEST_TOKEN\n", err, sizeof err);
	ok(cfg != NULL && strcmp(cfg->token, "from-env") == 0, "token: $ENV is resolved");
	wx_config_free(cfg);

	unsetenv("WX_TEST_UNSET");
	cfg = load("token_id: tid\nremote: https://p.example\ntoken: $WX_TEST_UNSET\n", err, sizeof err);
	ok(cfg == NULL, "token: $ENV with the variable unset is an error");
	has_str(err, "WX_TEST_UNSET is not set", "it names the variable");
	wx_config_free(cfg);

	cfg = load("token_id: tid\nremote: https://p.example\ntoken: file:///nonexistent/tok\n", err,
	    sizeof err);
	ok(cfg == NULL, "token: file:// with a missing file is an error");
	has_str(err, ":3: token: cannot read /nonexistent/tok", "it names line, key and file");
	wx_config_free(cfg);

	/* A literal token never appears in an error about another key. */
	cfg = load("token: s3cret-literal\ntoken_id: tid\nremote: https://p.example\ndebug: 7\n", err,
	    sizeof err);
	ok(cfg == NULL && strstr(err, "s3cret-literal") == NULL, "errors never contain the token");
	wx_config_free(cfg);
}

#define CT BASE "system:\n  transfers:\n    connect_to:\n"

/* Loads CT + entries and expects an error containing want. */
static void
connect_to_refused(const char *entries, const char *want, const char *what)
{
	char err[512];
	char *text = xasprintf(CT "%s", entries);
	struct wx_config *cfg = load(text, err, sizeof err);
	ok(cfg == NULL, "connect_to: %s is refused", what);
	has_str(err, want, "... naming file, line, key and value");
	wx_config_free(cfg);
	free(text);
}

static void
test_connect_to(void)
{
	char err[512];
	struct wx_config *cfg = load(CT
	    "      - match: Node2.Example.COM:08443\n"
	    "        connect: 10.0.0.2:8443\n"
	    "      - match: node3.example.com:443\n"
	    "        connect: \"[fd00::3]:9443\"\n"
	    "        ca_file: /etc/wingxfer/node3-ca.pem\n"
	    "      - {match: \"[2001:db8::1]:8443\", connect: node4.internal:8443}\n", err, sizeof err);
	ok(cfg != NULL, "connect_to: a list of match/connect(/ca_file) mappings loads (%s)",
	    cfg ? "ok" : err);
	if (cfg == NULL)
		return;
	const struct wx_connect_to_list *l = &cfg->transfers.connect_to;
	is_int(l->count, 3, "three entries");
	is_str(l->items[0].match, "node2.example.com:8443", "match: host lower-cased, port as a number");
	is_str(l->items[0].connect, "10.0.0.2:8443", "connect read");
	ok(l->items[0].ca_file == NULL, "no ca_file: the global one applies");
	is_int(l->items[0].line, 7, "the entry's line is kept for the log");
	is_str(l->items[1].connect, "[fd00::3]:9443", "an IPv6 connect address in brackets");
	is_str(l->items[1].ca_file, "/etc/wingxfer/node3-ca.pem", "per-entry ca_file read");
	is_str(l->items[2].match, "[2001:db8::1]:8443", "an IPv6 match in brackets (flow style)");

	const struct wx_connect_to *o;
	o = wx_connect_to_find(l, "https://node2.example.com:8443/api/transfers");
	ok(o == &l->items[0], "the URL's host:port finds its entry");
	o = wx_connect_to_find(l, "https://NODE2.example.com:8443/api/transfers");
	ok(o == &l->items[0], "host names match whatever their case");
	ok(wx_connect_to_find(l, "https://node2.example.com/api/transfers") == NULL,
	    "another port (443 by default) does not match");
	ok(wx_connect_to_find(l, "https://node2.example.net:8443/api/transfers") == NULL,
	    "another host does not match");
	ok(wx_connect_to_find(l, "https://node3.example.com/api/transfers") == &l->items[1],
	    "a URL without a port matches HOST:443 for https");
	ok(wx_connect_to_find(l, "http://node3.example.com/api/transfers") == NULL,
	    "... but not for http (port 80)");
	ok(wx_connect_to_find(l, "https://[2001:db8::1]:8443/api/transfers") == &l->items[2],
	    "an IPv6 URL matches its bracketed entry");
	ok(wx_connect_to_find(l, "not a url") == NULL, "a bad URL matches nothing");

	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	wx_config_print(cfg, mem);
	fclose(mem);
	has_str(buf, "system.transfers.connect_to: [{match: \"node2.example.com:8443\", connect: "
	    "\"10.0.0.2:8443\"}, {match: \"node3.example.com:443\", connect: \"[fd00::3]:9443\", "
	    "ca_file: /etc/wingxfer/node3-ca.pem}, ", "--check-config shows every entry on one line");
	/* What --check-config prints loads again as the same list. */
	const char *line = strstr(buf, "system.transfers.connect_to: ");
	char *again = NULL;
	if (line != NULL) {
		line += strlen("system.transfers.connect_to: ");
		again = xasprintf(BASE "transfers:\n  connect_to: %.*s\n", (int)strcspn(line, "\n"), line);
	}
	wx_config_free(cfg);
	free(buf);
	cfg = again ? load(again, err, sizeof err) : NULL;
	ok(cfg != NULL && cfg->transfers.connect_to.count == 3 &&
	    strcmp(cfg->transfers.connect_to.items[2].connect, "node4.internal:8443") == 0,
	    "the printed list loads again (as top-level transfers.connect_to)");
	wx_config_free(cfg);
	free(again);

	cfg = load(BASE "system:\n  transfers:\n    connect_to: []\n", err, sizeof err);
	ok(cfg != NULL && cfg->transfers.connect_to.count == 0, "connect_to: [] is no override");
	wx_config_free(cfg);
	cfg = load(CT "    # - match: a:1\n", err, sizeof err);
	ok(cfg != NULL && cfg->transfers.connect_to.count == 0, "an empty connect_to: is no override");
	wx_config_free(cfg);

	connect_to_refused("      - match: node2.example.com\n        connect: 10.0.0.2:8443\n",
	    "config.yml:7: system.transfers.connect_to: match \"node2.example.com\" has no port; "
	    "expected the destination's HOST:PORT", "a match without a port");
	connect_to_refused("      - match: node2.example.com:8443\n        connect: 10.0.0.2:70000\n",
	    "config.yml:8: system.transfers.connect_to: connect \"10.0.0.2:70000\" has a port that is "
	    "not a number from 1 to 65535; expected ADDRESS:PORT", "a port out of range");
	connect_to_refused("      - match: node2.example.com:8443\n        connect: \"::1:8443\"\n",
	    ":8: system.transfers.connect_to: connect \"::1:8443\" has more than one colon (an IPv6 "
	    "address must be in brackets", "an IPv6 address without brackets");
	connect_to_refused("      - match: \"[fd00::zz]:8443\"\n        connect: 10.0.0.2:8443\n",
	    ":7: system.transfers.connect_to: match \"[fd00::zz]:8443\" is not an IPv6 address",
	    "a bad IPv6 address");
	connect_to_refused("      - match: node2/x:8443\n        connect: 10.0.0.2:8443\n",
	    ":7: system.transfers.connect_to: match \"node2/x:8443\" has a character that cannot be "
	    "in a host name", "a host name with a slash");
	connect_to_refused("      - match: node2.example.com:8443\n        conect: 10.0.0.2:8443\n",
	    ":8: system.transfers.connect_to: unknown field \"conect\" in an entry; expected match, "
	    "connect or ca_file", "a misspelt field");
	connect_to_refused("      - match: node2.example.com:8443\n",
	    ":7: system.transfers.connect_to: entry has no connect", "an entry without connect");
	connect_to_refused("      - node2.example.com:8443:10.0.0.2:8443\n",
	    ":7: system.transfers.connect_to: entry is a string; expected a mapping with match and "
	    "connect", "curl's string form");
	connect_to_refused("      match: node2.example.com:8443\n      connect: 10.0.0.2:8443\n",
	    ":7: system.transfers.connect_to: is a mapping; expected a list of entries",
	    "a single mapping instead of a list");
	connect_to_refused("      - match: node2.example.com:8443\n        connect: 10.0.0.2:8443\n"
	    "      - match: NODE2.example.com:8443\n        connect: 10.0.0.3:8443\n",
	    ":9: system.transfers.connect_to: match \"node2.example.com:8443\" is listed twice "
	    "(also on line 7)", "the same match twice");
	connect_to_refused("      - match: node2.example.com:8443\n        connect: 10.0.0.2:8443\n"
	    "        ca_file: certs/ca.pem\n",
	    ":9: system.transfers.connect_to: ca_file \"certs/ca.pem\" is not an absolute path",
	    "a relative ca_file");
	connect_to_refused("      - match: node2.example.com:8443\n        connect:\n",
	    ":8: system.transfers.connect_to: connect has no value; expected ADDRESS:PORT",
	    "an empty connect");
}

static void
test_path_precedence(void)
{
	unsetenv("WINGXFER_CONFIG");
	is_str(wx_config_path("/cli.yml"), "/cli.yml", "--config is used without WINGXFER_CONFIG");
	has_str(wx_config_path(NULL), "/wingxfer/config.yml", "the default is sysconfdir/wingxfer");
	setenv("WINGXFER_CONFIG", "/env.yml", 1);
	is_str(wx_config_path("/cli.yml"), "/env.yml", "WINGXFER_CONFIG wins over --config");
	unsetenv("WINGXFER_CONFIG");
}

int
main(void)
{
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	test_good_wings_file();
	test_defaults();
	test_seed_spelling();
	test_errors();
	test_secrets();
	test_connect_to();
	test_path_precedence();
	char *cleanup[] = { "config.yml", "token.txt" };
	for (size_t i = 0; i < WX_ARRAY_LEN(cleanup); i++) {
		char *p = xasprintf("%s/%s", dir, cleanup[i]);
		unlink(p);
		free(p);
	}
	rmdir(dir);
	return tap_done();
}
