#include "autoconf.h"

#include "config.h"
#include "config_keys.h"
#include "connect_to.h"
#include "util.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#ifndef WX_SYSCONFDIR
#define WX_SYSCONFDIR "/etc"
#endif

#define MAX_CONFIG_BYTES (1 << 20)
#define MAX_DEPTH 16
#define MAX_CONNECT_TO 256

struct loader {
	struct wx_config *cfg;
	const char *file;
	yaml_document_t doc;
	int *set_line;          /* per key: line it was set on, 0 = not set */
	char *err;
	size_t errsize;
};

static void *
field(struct wx_config *cfg, const struct wx_config_key *k)
{
	return (char *)cfg + k->offset;
}

static int
fail(struct loader *ld, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(struct loader *ld, int line, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(ld->err, ld->errsize, "%s:%d: %s: %s", ld->file, line, key, msg);
	else
		snprintf(ld->err, ld->errsize, "%s: %s: %s", ld->file, key, msg);
	return -1;
}

static const char *
expected(const struct wx_config_key *k)
{
	switch (k->type) {
	case WX_KEY_STRING: return "a string";
	case WX_KEY_SECRET: return "the secret itself, file:///path/to/file or $ENV_VAR";
	case WX_KEY_URL: return "an absolute http:// or https:// URL";
	case WX_KEY_PATH: return "an absolute path";
	case WX_KEY_BOOL: return "true or false";
	case WX_KEY_INT: return "a whole number";
	case WX_KEY_DURATION: return "seconds, or a number with s, m, h or d (90, 15m, 24h, 7d)";
	case WX_KEY_SIZE: return "bytes, or a number with KiB, MiB, GiB or TiB (1GiB)";
	case WX_KEY_LIST: return "a list of strings";
	case WX_KEY_COMMAND:
		return "an absolute program path with arguments, as a list or a space-separated string";
	case WX_KEY_CHOICE: return "one of the listed words";
	case WX_KEY_CONNECT_TO:
		return "a list of entries like {match: node2.example.com:8443, connect: 10.0.0.2:8443} "
		    "(ca_file: /path optional)";
	}
	return "a value";
}

static bool
is_null_scalar(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)n->data.scalar.value;
	return *v == '\0' || strcmp(v, "~") == 0 || strcasecmp(v, "null") == 0;
}

static int
parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	for (size_t i = 0; i < WX_ARRAY_LEN(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* Resolves "file://path" and "$ENV"; a literal is returned as is. */
static char *
resolve_secret(struct loader *ld, int line, const char *key, const char *spec)
{
	if (strncmp(spec, "file://", 7) == 0) {
		const char *why = NULL;
		char *s = wx_read_small_file(spec + 7, 64 * 1024, &why);
		if (s == NULL) {
			fail(ld, line, key, "cannot read %s: %s; expected a readable file holding the secret",
			    spec + 7, why);
			return NULL;
		}
		size_t len = strlen(s);
		while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' ||
		    s[len - 1] == '\t'))
			s[--len] = '\0';
		if (len == 0) {
			free(s);
			fail(ld, line, key, "file %s is empty; expected the secret in it", spec + 7);
			return NULL;
		}
		return s;
	}
	if (spec[0] == '$') {
		const char *name = spec[1] == '{' ? spec + 2 : spec + 1;
		size_t len = strcspn(name, "}");
		char envname[128];
		if (len == 0 || len >= sizeof envname) {
			fail(ld, line, key, "\"%s\" is not a variable name; expected $NAME", spec);
			return NULL;
		}
		memcpy(envname, name, len);
		envname[len] = '\0';
		const char *v = getenv(envname);
		if (v == NULL || *v == '\0') {
			fail(ld, line, key, "environment variable %s is not set; expected it to hold the secret",
			    envname);
			return NULL;
		}
		return xstrdup(v);
	}
	return xstrdup(spec);
}

static int
set_command(struct loader *ld, const struct wx_config_key *k, yaml_node_t *n, int line)
{
	struct wx_command *cmd = field(ld->cfg, k);
	char **argv = NULL;
	int argc = 0, rc = -1;
	if (n->type == YAML_SCALAR_NODE) {
		char *copy = xstrdup((const char *)n->data.scalar.value);
		char *save = NULL;
		for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
			argv = xrealloc(argv, sizeof *argv * (size_t)(argc + 2));
			argv[argc++] = xstrdup(w);
		}
		free(copy);
	} else if (n->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		    it < n->data.sequence.items.top; it++) {
			yaml_node_t *item = yaml_document_get_node(&ld->doc, *it);
			if (item == NULL || item->type != YAML_SCALAR_NODE) {
				fail(ld, line, k->name, "list item is not a string; expected %s", expected(k));
				goto out;
			}
			argv = xrealloc(argv, sizeof *argv * (size_t)(argc + 2));
			argv[argc++] = xstrdup((const char *)item->data.scalar.value);
		}
	} else {
		fail(ld, line, k->name, "is a mapping; expected %s", expected(k));
		goto out;
	}
	if (argc == 0) {
		fail(ld, line, k->name, "is empty; expected %s", expected(k));
		goto out;
	}
	argv[argc] = NULL;
	if (argv[0][0] != '/') {
		fail(ld, line, k->name, "program \"%s\" is not an absolute path; expected %s", argv[0],
		    expected(k));
		goto out;
	}
	cmd->argv = argv;
	cmd->argc = argc;
	argv = NULL;
	argc = 0;
	rc = 0;
out:
	/* On failure, every word taken so far: a broken config is loaded again
	 * on each request by a FastCGI worker, and nothing may leak per try. */
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
	return rc;
}

static int
set_list(struct loader *ld, const struct wx_config_key *k, yaml_node_t *n, int line)
{
	struct wx_strlist *list = field(ld->cfg, k);
	if (n->type == YAML_SCALAR_NODE) {
		list->items = xcalloc(2, sizeof *list->items);
		list->items[0] = xstrdup((const char *)n->data.scalar.value);
		list->count = 1;
		return 0;
	}
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(ld, line, k->name, "is a mapping; expected %s", expected(k));
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	    it++) {
		yaml_node_t *item = yaml_document_get_node(&ld->doc, *it);
		if (item == NULL || item->type != YAML_SCALAR_NODE)
			return fail(ld, line, k->name, "list item is not a string; expected %s",
			    expected(k));
		list->items = xrealloc(list->items, sizeof *list->items * (size_t)(list->count + 2));
		list->items[list->count++] = xstrdup((const char *)item->data.scalar.value);
		list->items[list->count] = NULL;
	}
	return 0;
}

static void
connect_to_free(struct wx_connect_to_list *l)
{
	for (int i = 0; i < l->count; i++) {
		free(l->items[i].match);
		free(l->items[i].connect);
		free(l->items[i].ca_file);
	}
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

/* One entry of system.transfers.connect_to: a mapping of match, connect, ca_file. */
static int
set_connect_to_entry(struct loader *ld, const struct wx_config_key *k, yaml_node_t *n,
    struct wx_connect_to *e)
{
	static const char example[] = "e.g. {match: node2.example.com:8443, connect: 10.0.0.2:8443}";
	e->line = (int)n->start_mark.line + 1;
	if (n->type != YAML_MAPPING_NODE)
		return fail(ld, e->line, k->name, "entry is a %s; expected a mapping with match and "
		    "connect (and optionally ca_file), %s",
		    n->type == YAML_SCALAR_NODE ? "string" : "list", example);
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = yaml_document_get_node(&ld->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(&ld->doc, p->value);
		if (kn == NULL || vn == NULL)
			continue;
		int line = (int)kn->start_mark.line + 1;
		if (kn->type != YAML_SCALAR_NODE)
			return fail(ld, line, k->name, "an entry's key is not a plain word; expected "
			    "match, connect or ca_file");
		const char *field_name = (const char *)kn->data.scalar.value;
		char **dst;
		if (strcmp(field_name, "match") == 0)
			dst = &e->match;
		else if (strcmp(field_name, "connect") == 0)
			dst = &e->connect;
		else if (strcmp(field_name, "ca_file") == 0)
			dst = &e->ca_file;
		else
			return fail(ld, line, k->name, "unknown field \"%s\" in an entry; expected match, "
			    "connect or ca_file", field_name);
		if (*dst != NULL)
			return fail(ld, line, k->name, "%s is set twice in one entry; expected it once",
			    field_name);
		line = (int)vn->start_mark.line + 1;
		if (vn->type != YAML_SCALAR_NODE || is_null_scalar(vn))
			return fail(ld, line, k->name, "%s has no value; expected %s", field_name,
			    dst == &e->ca_file ? "an absolute path" :
			    dst == &e->match ? "HOST:PORT" : "ADDRESS:PORT");
		const char *v = (const char *)vn->data.scalar.value;
		if (dst == &e->ca_file) {
			if (v[0] != '/')
				return fail(ld, line, k->name, "ca_file \"%s\" is not an absolute path; "
				    "expected the path of a PEM CA bundle", v);
			*dst = xstrdup(v);
			continue;
		}
		char norm[300];
		const char *why = wx_hostport_check(v, norm, sizeof norm);
		if (why != NULL)
			return fail(ld, line, k->name, "%s \"%s\" %s; expected %s, %s", field_name, v, why,
			    dst == &e->match ? "the destination's HOST:PORT as in its URL" :
			    "ADDRESS:PORT to connect to", example);
		*dst = xstrdup(norm);
	}
	if (e->match == NULL || e->connect == NULL)
		return fail(ld, e->line, k->name, "entry has no %s; expected both match and connect, %s",
		    e->match == NULL ? "match" : "connect", example);
	return 0;
}

/* A size bound as people write it: "96MiB", "1GiB", "0", or bytes when no
 * binary unit divides it. */
static void
size_words(int64_t n, char *out, size_t size)
{
	static const char *const unit[] = { "TiB", "GiB", "MiB", "KiB" };
	for (int i = 0; i < 4; i++) {
		int64_t u = (int64_t)1 << (10 * (4 - i));
		if (n >= u && n % u == 0 && n != INT64_MAX) {
			snprintf(out, size, "%lld%s", (long long)(n / u), unit[i]);
			return;
		}
	}
	snprintf(out, size, "%lld bytes", (long long)n);
}

static int
set_connect_to(struct loader *ld, const struct wx_config_key *k, yaml_node_t *n, int line)
{
	struct wx_connect_to_list *l = field(ld->cfg, k);
	if (n->type != YAML_SEQUENCE_NODE)
		return fail(ld, line, k->name, "is a %s; expected %s",
		    n->type == YAML_MAPPING_NODE ? "mapping" : "string", expected(k));
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	    it++) {
		yaml_node_t *item = yaml_document_get_node(&ld->doc, *it);
		if (item == NULL)
			continue;
		if (l->count >= MAX_CONNECT_TO)
			return fail(ld, (int)item->start_mark.line + 1, k->name,
			    "has more than %d entries; expected fewer", MAX_CONNECT_TO);
		l->items = xrealloc(l->items, sizeof *l->items * (size_t)(l->count + 1));
		struct wx_connect_to *e = &l->items[l->count++];
		memset(e, 0, sizeof *e);
		if (set_connect_to_entry(ld, k, item, e) < 0)
			return -1;
		for (int i = 0; i < l->count - 1; i++)
			if (strcmp(l->items[i].match, e->match) == 0)
				return fail(ld, e->line, k->name, "match \"%s\" is listed twice (also on "
				    "line %d); expected one entry per destination", e->match,
				    l->items[i].line);
	}
	return 0;
}

/* Parses text v for key k into cfg; used for YAML scalars and for defaults. */
static int
set_scalar(struct loader *ld, const struct wx_config_key *k, const char *v, int line)
{
	void *dst = field(ld->cfg, k);
	const char *why = NULL;
	int64_t num = 0;
	bool show = k->type != WX_KEY_SECRET;

	switch (k->type) {
	case WX_KEY_STRING:
		free(*(char **)dst);
		*(char **)dst = xstrdup(v);
		return 0;
	case WX_KEY_SECRET: {
		if (*v == '\0')
			return fail(ld, line, k->name, "is empty; expected %s", expected(k));
		char *secret = resolve_secret(ld, line, k->name, v);
		if (secret == NULL)
			return -1;
		wx_free_secret(*(char **)dst);
		*(char **)dst = secret;
		wx_free_secret(ld->cfg->token_spec);
		ld->cfg->token_spec = xstrdup(v);
		return 0;
	}
	case WX_KEY_URL:
		if (!(wx_has_prefix(v, "http://") || wx_has_prefix(v, "https://")) ||
		    strlen(v) <= strlen("https://") - (wx_has_prefix(v, "http://") ? 1 : 0))
			return fail(ld, line, k->name, "\"%s\" is not a URL; expected %s", v, expected(k));
		free(*(char **)dst);
		*(char **)dst = xstrdup(v);
		return 0;
	case WX_KEY_PATH:
		if (v[0] != '/')
			return fail(ld, line, k->name, "\"%s\" is not an absolute path; expected %s", v,
			    expected(k));
		free(*(char **)dst);
		*(char **)dst = xstrdup(v);
		/* Keep "/a/b/" and "/a/b" the same: paths are joined with "/". */
		for (size_t len = strlen(*(char **)dst); len > 1 && (*(char **)dst)[len - 1] == '/';
		    len--)
			(*(char **)dst)[len - 1] = '\0';
		return 0;
	case WX_KEY_BOOL:
		if (parse_bool(v, dst) < 0)
			return fail(ld, line, k->name, "\"%s\" is not a boolean; expected %s", v,
			    expected(k));
		return 0;
	case WX_KEY_INT:
		why = wx_parse_i64(v, k->min, k->max, &num);
		break;
	case WX_KEY_DURATION:
		why = wx_parse_duration(v, &num);
		if (why == NULL && (num < k->min || num > k->max))
			return fail(ld, line, k->name, "\"%s\" is too %s; expected %lld to %lld seconds",
			    v, num < k->min ? "short" : "long", (long long)k->min, (long long)k->max);
		break;
	case WX_KEY_SIZE:
		why = wx_parse_size(v, &num);
		if (why == NULL && (num < k->min || num > k->max)) {
			char lo[32], hi[32];
			size_words(k->min, lo, sizeof lo);
			size_words(k->max, hi, sizeof hi);
			return fail(ld, line, k->name, "\"%s\" is too %s; expected %s to %s", v,
			    num < k->min ? "small" : "large", lo, hi);
		}
		break;
	case WX_KEY_CHOICE: {
		size_t vlen = strlen(v);
		for (const char *c = k->choices; vlen > 0 && *c;) {
			size_t wlen = strcspn(c, " ");
			if (wlen == vlen && strncasecmp(c, v, vlen) == 0) {
				free(*(char **)dst);
				*(char **)dst = xstrndup(c, wlen);
				return 0;
			}
			c += wlen;
			c += strspn(c, " ");
		}
		return fail(ld, line, k->name, "\"%s\" is not allowed; expected one of: %s", v,
		    k->choices);
	}
	case WX_KEY_LIST:
	case WX_KEY_COMMAND:
	case WX_KEY_CONNECT_TO:
		return fail(ld, line, k->name, "internal: not a scalar key");
	}
	if (why != NULL) {
		if (k->type == WX_KEY_INT)
			return fail(ld, line, k->name, "\"%s\" %s; expected a whole number from %lld to %lld",
			    show ? v : "(secret)", why, (long long)k->min, (long long)k->max);
		return fail(ld, line, k->name, "\"%s\" %s; expected %s", v, why, expected(k));
	}
	*(int64_t *)dst = num;
	return 0;
}

static int
set_key(struct loader *ld, const struct wx_config_key *k, yaml_node_t *n)
{
	int line = (int)n->start_mark.line + 1;
	size_t idx = (size_t)(k - wx_config_keys);
	if (ld->set_line[idx] != 0)
		return fail(ld, line, k->name,
		    "is set twice (also on line %d, as transfers.* or system.transfers.*); "
		    "expected it once", ld->set_line[idx]);
	ld->set_line[idx] = line;
	if (is_null_scalar(n)) {
		ld->set_line[idx] = 0;  /* "key:" with no value means the default */
		return 0;
	}
	if (k->type == WX_KEY_COMMAND)
		return set_command(ld, k, n, line);
	if (k->type == WX_KEY_LIST)
		return set_list(ld, k, n, line);
	if (k->type == WX_KEY_CONNECT_TO)
		return set_connect_to(ld, k, n, line);
	if (n->type != YAML_SCALAR_NODE)
		return fail(ld, line, k->name, "is a %s; expected %s",
		    n->type == YAML_MAPPING_NODE ? "mapping" : "list", expected(k));
	return set_scalar(ld, k, (const char *)n->data.scalar.value, line);
}

/* Whether any known key lives under "prefix." */
static bool
known_prefix(const char *prefix)
{
	size_t len = strlen(prefix);
	for (size_t i = 0; i < wx_config_nkeys; i++)
		if (strncmp(wx_config_keys[i].name, prefix, len) == 0 &&
		    wx_config_keys[i].name[len] == '.')
			return true;
	return false;
}

static bool
is_own(const char *name)
{
	return strncmp(name, WX_OWN_PREFIX, strlen(WX_OWN_PREFIX)) == 0;
}

static int
walk(struct loader *ld, yaml_node_t *map, const char *prefix, int depth)
{
	if (depth > MAX_DEPTH)
		return fail(ld, (int)map->start_mark.line + 1, prefix, "nested too deeply");
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	    p++) {
		yaml_node_t *kn = yaml_document_get_node(&ld->doc, p->key);
		yaml_node_t *vn = yaml_document_get_node(&ld->doc, p->value);
		if (kn == NULL || vn == NULL)
			continue;
		int line = (int)kn->start_mark.line + 1;
		if (kn->type != YAML_SCALAR_NODE) {
			if (is_own(prefix) || *prefix == '\0')
				return fail(ld, line, *prefix ? prefix : "(top level)",
				    "a key is not a plain word; expected key: value");
			continue;
		}
		char name[256];
		const char *key = (const char *)kn->data.scalar.value;
		if (wx_snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", key) < 0)
			return fail(ld, line, prefix, "key name too long");
		/* The seed document's top-level transfers.* is system.transfers.* */
		char canon[272];
		if (strncmp(name, WX_ALIAS_PREFIX, strlen(WX_ALIAS_PREFIX)) == 0 ||
		    strcmp(name, "transfers") == 0)
			snprintf(canon, sizeof canon, "system.%s", name);
		else
			wx_strlcpy(canon, name, sizeof canon);

		const struct wx_config_key *k = wx_config_find_key(canon);
		if (k != NULL) {
			if (set_key(ld, k, vn) < 0)
				return -1;
			continue;
		}
		if (vn->type == YAML_MAPPING_NODE &&
		    (known_prefix(canon) || strcmp(canon, "system.transfers") == 0 || is_own(canon))) {
			if (walk(ld, vn, canon, depth + 1) < 0)
				return -1;
			continue;
		}
		if (is_null_scalar(vn) && (known_prefix(canon) || strcmp(canon, "system.transfers") == 0))
			continue; /* "hooks:" with every child commented out */
		if (is_own(canon) || strcmp(canon, "system.transfers") == 0) {
			return fail(ld, line, name,
			    "unknown key under system.transfers; expected one of the keys listed by "
			    "--check-config (check the spelling)");
		}
		/* Any other Wings key: not ours, ignored. */
	}
	return 0;
}

static void
derive_defaults(struct wx_config *cfg)
{
	if (cfg->data_directory == NULL)
		cfg->data_directory = xasprintf("%s/volumes", cfg->root_directory);
	if (cfg->backup_directory == NULL)
		cfg->backup_directory = xasprintf("%s/backups", cfg->root_directory);
	if (cfg->uid < 0 || cfg->gid < 0) {
		struct passwd pw, *res = NULL;
		char buf[4096];
		if (cfg->username && getpwnam_r(cfg->username, &pw, buf, sizeof buf, &res) == 0 &&
		    res != NULL) {
			if (cfg->uid < 0)
				cfg->uid = res->pw_uid;
			if (cfg->gid < 0)
				cfg->gid = res->pw_gid;
		}
	}
	if (cfg->debug) {
		free(cfg->transfers.log_level);
		cfg->transfers.log_level = xstrdup("debug");
	}
}

static int
check_required(struct loader *ld)
{
	struct wx_config *cfg = ld->cfg;
	if (cfg->token == NULL)
		return fail(ld, 0, "token",
		    "missing; expected the node's secret token (the panel shows it in the node's "
		    "configuration)");
	if (cfg->token_id == NULL || *cfg->token_id == '\0')
		return fail(ld, 0, "token_id", "missing; expected the node's token id from the panel");
	if (cfg->remote == NULL)
		return fail(ld, 0, "remote", "missing; expected the panel URL, e.g. https://panel.example.com");
	if (cfg->api_ssl_enabled && (*cfg->api_ssl_cert == '\0' || *cfg->api_ssl_key == '\0'))
		return fail(ld, ld->set_line[wx_config_find_key("api.ssl.enabled") - wx_config_keys],
		    "api.ssl.enabled",
		    "is true but api.ssl.cert or api.ssl.key is empty; expected both paths");
	return 0;
}

struct wx_config *
wx_config_load(const char *path, char *err, size_t errsize)
{
	struct loader ld = { .file = path, .err = err, .errsize = errsize };
	struct wx_config *cfg = xcalloc(1, sizeof *cfg);
	ld.cfg = cfg;
	cfg->path = xstrdup(path);
	cfg->uid = cfg->gid = -1;
	ld.set_line = xcalloc(wx_config_nkeys, sizeof *ld.set_line);
	err[0] = '\0';

	/* Defaults first, through the same parser as the file. */
	for (size_t i = 0; i < wx_config_nkeys; i++) {
		const struct wx_config_key *k = &wx_config_keys[i];
		if (k->fallback != NULL && set_scalar(&ld, k, k->fallback, 0) < 0)
			goto fail;
	}

	const char *why = NULL;
	char *text = wx_read_small_file(path, MAX_CONFIG_BYTES, &why);
	if (text == NULL) {
		snprintf(err, errsize, "%s: cannot read the config file: %s", path, why);
		goto fail;
	}
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser)) {
		free(text);
		snprintf(err, errsize, "%s: cannot initialise the YAML parser", path);
		goto fail;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
	int ok = yaml_parser_load(&parser, &ld.doc);
	if (!ok) {
		snprintf(err, errsize, "%s:%zu: not valid YAML: %s%s%s", path,
		    parser.problem_mark.line + 1, parser.problem ? parser.problem : "syntax error",
		    parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		free(text);
		goto fail;
	}
	yaml_parser_delete(&parser);
	free(text);

	yaml_node_t *root = yaml_document_get_root_node(&ld.doc);
	int rc = 0;
	if (root == NULL) {
		/* an empty file: defaults only; check_required will complain */
	} else if (root->type != YAML_MAPPING_NODE) {
		rc = fail(&ld, (int)root->start_mark.line + 1, "(top level)",
		    "is not a mapping; expected key: value lines");
	} else {
		rc = walk(&ld, root, "", 0);
	}
	yaml_document_delete(&ld.doc);
	if (rc < 0)
		goto fail;
	derive_defaults(cfg);
	if (check_required(&ld) < 0)
		goto fail;
	free(ld.set_line);
	return cfg;
fail:
	free(ld.set_line);
	wx_config_free(cfg);
	return NULL;
}

void
wx_config_free(struct wx_config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < wx_config_nkeys; i++) {
		const struct wx_config_key *k = &wx_config_keys[i];
		void *f = field(cfg, k);
		switch (k->type) {
		case WX_KEY_SECRET:
			wx_free_secret(*(char **)f);
			break;
		case WX_KEY_STRING:
		case WX_KEY_URL:
		case WX_KEY_PATH:
		case WX_KEY_CHOICE:
			free(*(char **)f);
			break;
		case WX_KEY_LIST: {
			struct wx_strlist *l = f;
			for (int j = 0; j < l->count; j++)
				free(l->items[j]);
			free(l->items);
			break;
		}
		case WX_KEY_COMMAND: {
			struct wx_command *c = f;
			for (int j = 0; j < c->argc; j++)
				free(c->argv[j]);
			free(c->argv);
			break;
		}
		case WX_KEY_CONNECT_TO:
			connect_to_free(f);
			break;
		default:
			break;
		}
	}
	wx_free_secret(cfg->token_spec); /* may be the token itself */
	free(cfg->path);
	free(cfg);
}

void
wx_config_wipe_token(struct wx_config *cfg)
{
	wx_free_secret(cfg->token);
	cfg->token = NULL;
	wx_free_secret(cfg->token_spec);
	cfg->token_spec = NULL;
}

/* YAML-quotes s if it needs it. */
static void
print_string(FILE *out, const char *s)
{
	if (*s == '\0' || strpbrk(s, ":#'\"{}[],&*!|>%@`\n\t") || s[0] == ' ' || s[0] == '-') {
		fputc('"', out);
		for (const char *p = s; *p; p++) {
			if (*p == '"' || *p == '\\')
				fputc('\\', out);
			fputc(*p, out);
		}
		fputc('"', out);
	} else {
		fputs(s, out);
	}
}

void
wx_config_print(const struct wx_config *cfg, FILE *out)
{
	fprintf(out, "# effective configuration from %s (secrets redacted)\n", cfg->path);
	for (size_t i = 0; i < wx_config_nkeys; i++) {
		const struct wx_config_key *k = &wx_config_keys[i];
		const void *f = (const char *)cfg + k->offset;
		fprintf(out, "%s: ", k->name);
		switch (k->type) {
		case WX_KEY_SECRET: {
			const char *spec = cfg->token_spec ? cfg->token_spec : "";
			if (strncmp(spec, "file://", 7) == 0 || spec[0] == '$')
				fprintf(out, "\"<redacted, from %s>\"", spec);
			else
				fputs("\"<redacted>\"", out);
			break;
		}
		case WX_KEY_STRING:
		case WX_KEY_URL:
		case WX_KEY_PATH:
		case WX_KEY_CHOICE: {
			const char *s = *(char *const *)f;
			if (s == NULL)
				fputs("null", out);
			else
				print_string(out, s);
			break;
		}
		case WX_KEY_BOOL:
			fputs(*(const bool *)f ? "true" : "false", out);
			break;
		case WX_KEY_INT:
		case WX_KEY_DURATION:
		case WX_KEY_SIZE: {
			int64_t v = *(const int64_t *)f;
			if (v < 0)
				fputs("null", out);
			else
				fprintf(out, "%lld", (long long)v);
			break;
		}
		case WX_KEY_LIST: {
			const struct wx_strlist *l = f;
			fputc('[', out);
			for (int j = 0; j < l->count; j++) {
				if (j)
					fputs(", ", out);
				print_string(out, l->items[j]);
			}
			fputc(']', out);
			break;
		}
		case WX_KEY_COMMAND: {
			const struct wx_command *c = f;
			if (c->argv == NULL) {
				fputs("null", out);
				break;
			}
			fputc('[', out);
			for (int j = 0; j < c->argc; j++) {
				if (j)
					fputs(", ", out);
				print_string(out, c->argv[j]);
			}
			fputc(']', out);
			break;
		}
		case WX_KEY_CONNECT_TO: {
			const struct wx_connect_to_list *l = f;
			fputc('[', out);
			for (int j = 0; j < l->count; j++) {
				fputs(j ? ", {match: " : "{match: ", out);
				print_string(out, l->items[j].match);
				fputs(", connect: ", out);
				print_string(out, l->items[j].connect);
				if (l->items[j].ca_file != NULL) {
					fputs(", ca_file: ", out);
					print_string(out, l->items[j].ca_file);
				}
				fputc('}', out);
			}
			fputc(']', out);
			break;
		}
		}
		if (k->type == WX_KEY_DURATION)
			fputs("  # seconds", out);
		else if (k->type == WX_KEY_SIZE)
			fputs("  # bytes", out);
		fputc('\n', out);
	}
}

const char *
wx_config_path(const char *cli_path)
{
	const char *env = getenv("WINGXFER_CONFIG");
	if (env != NULL && *env != '\0')
		return env;
	if (cli_path != NULL)
		return cli_path;
	return WX_SYSCONFDIR "/wingxfer/config.yml";
}
