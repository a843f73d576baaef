/* Config loader: a good Wings file, the seed's spelling, and each kind of bad file. */
#include "autoconf.h"

#include "config.h"
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
