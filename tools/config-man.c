/*
 * config-man < man/wingxfer.conf.5.in > wingxfer.conf.5
 *
 * Copies the hand-written mdoc template to standard output and replaces its
 * line ".\" @KEYS@" with one .It entry per row of the configuration key
 * table (shared/config_keys.c): name, value type, default, range and help.
 * The section-5 page therefore lists exactly the keys wingxfer reads.
 */
#include "autoconf.h"

#include "config_keys.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char *
type_word(enum wx_key_type t)
{
	switch (t) {
	case WX_KEY_STRING: return "string";
	case WX_KEY_SECRET: return "secret: the value itself, file:///path or $ENV_VAR";
	case WX_KEY_URL: return "URL: absolute http:// or https://";
	case WX_KEY_PATH: return "absolute path";
	case WX_KEY_BOOL: return "true or false";
	case WX_KEY_INT: return "whole number";
	case WX_KEY_DURATION: return "duration: seconds, or with s, m, h, d (90, 15m, 24h, 7d)";
	case WX_KEY_SIZE: return "size: bytes, or with KiB, MiB, GiB, TiB (1GiB)";
	case WX_KEY_LIST: return "list of strings";
	case WX_KEY_COMMAND: return "command: absolute program path with arguments, "
	    "as a list or a space-separated string, run without a shell";
	case WX_KEY_CHOICE: return "one of";
	case WX_KEY_CONNECT_TO: return "list of overrides, each a map with match (HOST:PORT), "
	    "connect (ADDRESS:PORT) and optionally ca_file (absolute path)";
	}
	return "value";
}

/* Text of the entry being written, filled in before it is wrapped. */
static char entry[4096];

static void
add(const char *s)
{
	size_t len = strlen(entry);
	snprintf(entry + len, sizeof entry - len, "%s", s);
}

/*
 * Writes entry as mdoc text lines of at most 72 bytes (breaking between
 * words), each sentence on a new line, backslashes escaped, no line starting
 * with . or '.
 */
static void
put_wrapped(void)
{
	size_t col = 0;
	for (const char *w = entry; *w != '\0'; ) {
		if (*w == ' ') {
			w++;
			continue;
		}
		size_t len = strcspn(w, " ");
		if (col > 0 && col + 1 + len > 72) {
			putchar('\n');
			col = 0;
		} else if (col > 0) {
			putchar(' ');
			col++;
		}
		if (col == 0 && (w[0] == '.' || w[0] == '\''))
			fputs("\\&", stdout);
		for (size_t i = 0; i < len; i++) {
			if (w[i] == '\\')
				fputs("\\e", stdout);
			else
				putchar(w[i]);
		}
		col += len;
		if (w[len - 1] == '.') {
			putchar('\n');
			col = 0;
		}
		w += len;
	}
	if (col > 0)
		putchar('\n');
	entry[0] = '\0';
}

static void
put_key(const struct wx_config_key *k)
{
	char buf[128];
	printf(".It Cm %s\n", k->name);
	add("Type: ");
	add(type_word(k->type));
	if (k->type == WX_KEY_CHOICE && k->choices != NULL) {
		add(" ");
		add(k->choices);
	}
	if ((k->type == WX_KEY_INT || k->type == WX_KEY_DURATION || k->type == WX_KEY_SIZE) &&
	    (k->min != 0 || k->max != 0)) {
		const char *unit = k->type == WX_KEY_DURATION ? " seconds" :
		    k->type == WX_KEY_SIZE ? " bytes" : "";
		if (k->max == INT64_MAX)
			snprintf(buf, sizeof buf, "; at least %" PRId64 "%s", k->min, unit);
		else
			snprintf(buf, sizeof buf, "; from %" PRId64 " to %" PRId64 "%s", k->min,
			    k->max, unit);
		add(buf);
	}
	add(". ");
	if (k->fallback != NULL) {
		add("Default: ");
		add(k->fallback[0] != '\0' ? k->fallback : "empty");
		add(". ");
	} else {
		add("No default. ");
	}
	size_t at = strlen(entry);
	add(k->help);
	if (entry[at] >= 'a' && entry[at] <= 'z')
		entry[at] = (char)(entry[at] - 'a' + 'A');
	add(".");
	put_wrapped();
}

int
main(void)
{
	char line[4096];
	int replaced = 0;
	while (fgets(line, sizeof line, stdin) != NULL) {
		if (strcmp(line, ".\\\" @KEYS@\n") != 0) {
			fputs(line, stdout);
			continue;
		}
		puts(".Bl -tag -width Ds");
		for (size_t i = 0; i < wx_config_nkeys; i++)
			put_key(&wx_config_keys[i]);
		puts(".El");
		replaced++;
	}
	if (replaced != 1) {
		fprintf(stderr, "config-man: the template must have exactly one line .\\\" @KEYS@\n");
		return 1;
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("config-man: stdout");
		return 1;
	}
	return 0;
}
