/*
 * The table of configuration keys wingxfer reads.  One row per key: where the
 * value goes in struct wx_config, its type and range, its default and one
 * line of help.  The loader, --check-config and the documentation tests all
 * use this table, so a key is described in exactly one place.
 */
#ifndef WX_CONFIG_KEYS_H
#define WX_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>

enum wx_key_type {
	WX_KEY_STRING,
	WX_KEY_SECRET,   /* literal, file://path or $ENV; never printed */
	WX_KEY_URL,      /* absolute http:// or https:// URL */
	WX_KEY_PATH,     /* absolute filesystem path */
	WX_KEY_BOOL,
	WX_KEY_INT,
	WX_KEY_DURATION, /* seconds, or with s/m/h/d */
	WX_KEY_SIZE,     /* bytes, or with KiB/MiB/GiB/TiB */
	WX_KEY_LIST,     /* sequence of strings */
	WX_KEY_COMMAND,  /* program + arguments, run without a shell */
	WX_KEY_CHOICE,   /* one of the words in .choices */
	WX_KEY_CONNECT_TO, /* list of {match, connect, ca_file} (struct wx_connect_to_list) */
};

struct wx_config_key {
	const char *name;       /* dotted path, e.g. "system.transfers.stall_timeout" */
	enum wx_key_type type;
	size_t offset;          /* into struct wx_config */
	const char *fallback;   /* default as written in YAML; NULL = none or derived */
	int64_t min, max;       /* for INT, DURATION, SIZE */
	const char *choices;    /* for CHOICE: space-separated words */
	const char *help;
};

extern const struct wx_config_key wx_config_keys[];
extern const size_t wx_config_nkeys;

/* The prefix under which unknown keys are errors. */
#define WX_OWN_PREFIX "system.transfers."
/* The seed document's spelling, normalised to WX_OWN_PREFIX. */
#define WX_ALIAS_PREFIX "transfers."

const struct wx_config_key *wx_config_find_key(const char *name);

#endif
