/*
 * The node configuration: a Wings / Pelican Wings / FeatherWings config.yml
 * read as it is, plus wingxfer's own keys under system.transfers (also
 * accepted as top-level transfers.*, as the seed document writes them).
 *
 * Rules: unknown Wings keys are ignored (the same file drives a Wings
 * daemon); an unknown or mistyped key under system.transfers is an error.
 * Every error names the file, the line, the key, what is wrong with the value
 * and what was expected.  The table of keys lives in config_keys.c and also
 * drives --check-config and the sample config's documentation.
 */
#ifndef WX_CONFIG_H
#define WX_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* A program to run without a shell: argv[0] is an absolute path. */
struct wx_command {
	char **argv; /* NULL-terminated; NULL when not configured */
	int argc;
};

struct wx_strlist {
	char **items;
	int count;
};

/* One system.transfers.connect_to entry (see connect_to.h). */
struct wx_connect_to {
	char *match;             /* "host:port" of destination URLs, host lower-cased */
	char *connect;           /* "address:port" to connect to instead */
	char *ca_file;           /* PEM bundle for this destination; NULL = transfers.ca_file */
	int line;                /* where it is in the config file */
};

struct wx_connect_to_list {
	struct wx_connect_to *items;
	int count;
};

struct wx_transfers_config {
	int64_t download_limit;          /* MiB/s on received bodies, node-wide, 0 = none */
	bool perform_checksum_checks;    /* require + enforce the archive checksum */
	bool storage_pool_enabled;       /* accepted for FeatherWings configs */
	char *storage_pool_name;
	char *state_directory;
	int64_t stall_timeout;           /* s without progress before a transfer is failed */
	int64_t stop_timeout;            /* s to wait for hooks.stop */
	int64_t hook_timeout;            /* s to wait for hooks.create_environment */
	int64_t connect_timeout;         /* s, source -> destination connect */
	int64_t response_timeout;        /* s to wait for the destination's answer after the upload */
	int64_t max_duration;            /* s, 0 = no limit */
	int64_t callback_retention;      /* s the watchdog keeps redelivering a callback */
	int64_t record_retention;        /* s finished records are kept */
	int64_t disk_reserve;            /* bytes that must stay free on the data filesystem */
	int64_t compression_level;       /* 0 = store, 1..9 */
	int64_t compression_threads;     /* 0 = wx_compress_threads() default */
	char *compression;               /* "gzip", "zstd" or "auto" */
	char *ca_file;                   /* PEM bundle for TLS peers; NULL = system store */
	struct wx_connect_to_list connect_to; /* source -> destination address overrides */
	bool allow_unscoped_tokens;      /* Pterodactyl <= 1.11 panels send no scope */
	int64_t max_token_lifetime;      /* s a transfer JWT may still be valid for (exp - now, exp - iat) */
	char *panel_product;             /* User-Agent product: "FeatherPanel", "Pelican", "Pterodactyl" */
	char *log_level;
	char *syslog_facility;           /* NULL = stderr */
	int64_t upload_limit;            /* MiB/s on outgoing bodies, node-wide, 0 = none */
	int64_t nice;                    /* niceness of the worker/receiver, at least; 0 = leave */
	char *io_priority;               /* "low", "idle" or "normal" (priority.h) */
	int64_t events_heartbeat;        /* s between heartbeats on an event stream */
	int64_t events_max_duration;     /* s an event stream may stay open */
	bool preflight;                  /* push: check the destination before the stop hook */
	char *chunked;                   /* "auto" or "off" (docs/protocol.md) */
	int64_t chunk_size;              /* largest chunk sent, bytes (1 MiB .. 96 MiB) */
	char *presync;                   /* "auto" or "off" (docs/presync.md) */
	int64_t presync_max_rounds;      /* rounds while the server runs, before the final one */
	int64_t presync_threshold;       /* bytes: a round under this is the last before the stop */
	int64_t resume_window;           /* seconds an upload may go without progress */
	int64_t resume_attempts;         /* consecutive interruptions without progress */
	int64_t write_behind;            /* destination: bytes of written data in flight, 0 = off */
	int64_t write_behind_flush;      /* destination: disk cache flush per this many, 0 = none */
	struct wx_command hook_stop;
	struct wx_command hook_kill;
	struct wx_command hook_create_environment;
};

struct wx_config {
	char *path;                      /* the file this came from */
	char *uuid;
	char *token_id;
	char *token;                     /* the resolved secret */
	char *token_spec;                /* as written: literal, file://..., $ENV */
	char *remote;
	int64_t remote_timeout;
	bool debug;
	char *api_host;
	int64_t api_port;
	bool api_ssl_enabled;
	char *api_ssl_cert;
	char *api_ssl_key;
	bool api_ignore_certificate_errors;
	char *root_directory;
	char *data_directory;
	char *backup_directory;
	char *log_directory;
	char *username;
	int64_t uid;                     /* -1: not configured and not resolvable */
	int64_t gid;
	struct wx_strlist allowed_origins;
	bool allow_cors_private_network;
	struct wx_transfers_config transfers;
};

/*
 * Loads and validates path.  On failure returns NULL and writes one line to
 * err: "<file>:<line>: <key>: <problem>; expected <what>".
 */
struct wx_config *wx_config_load(const char *path, char *err, size_t errsize);
void wx_config_free(struct wx_config *cfg);
/*
 * Wipes and forgets the node token (token and token_spec, which may be the
 * token itself): for a process that must not hold it (a confined child).
 */
void wx_config_wipe_token(struct wx_config *cfg);

/* Prints the effective configuration as YAML, secrets redacted. */
void wx_config_print(const struct wx_config *cfg, FILE *out);

/*
 * The config path: $WINGXFER_CONFIG, else the --config argument (may be
 * NULL), else $(sysconfdir)/wingxfer/config.yml.
 */
const char *wx_config_path(const char *cli_path);

#endif
