#include "autoconf.h"

#include "config.h"
#include "config_keys.h"

#include <stddef.h>
#include <string.h>

#define OFF(field) offsetof(struct wx_config, field)
#define T(field) offsetof(struct wx_config, transfers.field)
#define DAY 86400

const struct wx_config_key wx_config_keys[] = {
	/* Wings keys, with Wings' defaults. */
	{ "uuid", WX_KEY_STRING, OFF(uuid), NULL, 0, 0, NULL,
	  "this node's UUID (from the panel)" },
	{ "token_id", WX_KEY_STRING, OFF(token_id), NULL, 0, 0, NULL,
	  "node token id; sent to the panel as Bearer <token_id>.<token> (required)" },
	{ "token", WX_KEY_SECRET, OFF(token), NULL, 0, 0, NULL,
	  "node secret: what the panel sends as Bearer token, and the HS256 key of transfer JWTs; "
	  "literal, file://path or $ENV (required)" },
	{ "remote", WX_KEY_URL, OFF(remote), NULL, 0, 0, NULL,
	  "panel base URL, e.g. https://panel.example.com (required)" },
	{ "remote_query.timeout", WX_KEY_DURATION, OFF(remote_timeout), "30", 1, 3600, NULL,
	  "seconds per panel request attempt" },
	{ "debug", WX_KEY_BOOL, OFF(debug), "false", 0, 0, NULL,
	  "log at debug level" },
	{ "api.host", WX_KEY_STRING, OFF(api_host), "0.0.0.0", 0, 0, NULL,
	  "address the web server listens on (used by the config generator)" },
	{ "api.port", WX_KEY_INT, OFF(api_port), "8080", 1, 65535, NULL,
	  "port the web server listens on (used by the config generator)" },
	{ "api.ssl.enabled", WX_KEY_BOOL, OFF(api_ssl_enabled), "false", 0, 0, NULL,
	  "when true, requests that did not arrive over TLS are refused" },
	{ "api.ssl.cert", WX_KEY_STRING, OFF(api_ssl_cert), "", 0, 0, NULL,
	  "TLS certificate (chain) file for the web server" },
	{ "api.ssl.key", WX_KEY_STRING, OFF(api_ssl_key), "", 0, 0, NULL,
	  "TLS private key file for the web server" },
	{ "api.ignore_certificate_errors", WX_KEY_BOOL, OFF(api_ignore_certificate_errors), "false",
	  0, 0, NULL, "do not verify the TLS certificate of the destination node and the panel" },
	{ "system.root_directory", WX_KEY_PATH, OFF(root_directory), "/var/lib/pterodactyl", 0, 0,
	  NULL, "Wings' root directory" },
	{ "system.data", WX_KEY_PATH, OFF(data_directory), NULL, 0, 0, NULL,
	  "server data directory; a server lives in <data>/<uuid> (default <root_directory>/volumes)" },
	{ "system.backup_directory", WX_KEY_PATH, OFF(backup_directory), NULL, 0, 0, NULL,
	  "local backups, <dir>/<server uuid>/<backup uuid>.tar.gz (default <root_directory>/backups)" },
	{ "system.log_directory", WX_KEY_PATH, OFF(log_directory), "/var/log/pterodactyl", 0, 0,
	  NULL, "install logs are <dir>/install/<uuid>.log" },
	{ "system.username", WX_KEY_STRING, OFF(username), "pterodactyl", 0, 0, NULL,
	  "system user owning server files (used when system.user.uid is not set)" },
	{ "system.user.uid", WX_KEY_INT, OFF(uid), NULL, 0, 2147483647, NULL,
	  "owner uid of received files (when running as root)" },
	{ "system.user.gid", WX_KEY_INT, OFF(gid), NULL, 0, 2147483647, NULL,
	  "owner gid of received files (when running as root)" },
	{ "allowed_origins", WX_KEY_LIST, OFF(allowed_origins), NULL, 0, 0, NULL,
	  "extra CORS origins allowed besides the panel (\"*\" allows any)" },
	{ "allow_cors_private_network", WX_KEY_BOOL, OFF(allow_cors_private_network), "false", 0, 0,
	  NULL, "answer Access-Control-Allow-Private-Network on preflight" },

	/* system.transfers: Wings' own keys there. */
	{ "system.transfers.download_limit", WX_KEY_INT, T(download_limit), "0", 0, 1048576, NULL,
	  "MiB/s cap on received transfer bodies, shared by all of them on this node, 0 = no limit" },
	{ "system.transfers.perform_checksum_checks", WX_KEY_BOOL, T(perform_checksum_checks),
	  "false", 0, 0, NULL,
	  "require the archive checksum and fail on mismatch (false: a mismatch is only a warning)" },
	{ "system.transfers.storage_pool.enabled", WX_KEY_BOOL, T(storage_pool_enabled), "false",
	  0, 0, NULL, "accepted for FeatherWings/Pelican configs; wingxfer always copies" },
	{ "system.transfers.storage_pool.pool_name", WX_KEY_STRING, T(storage_pool_name), "", 0, 0,
	  NULL, "accepted for FeatherWings/Pelican configs" },

	/* system.transfers: wingxfer's keys. */
	{ "system.transfers.state_directory", WX_KEY_PATH, T(state_directory), "/var/lib/wingxfer",
	  0, 0, NULL, "records, locks, events and the panel outbox" },
	{ "system.transfers.stall_timeout", WX_KEY_DURATION, T(stall_timeout), "120", 1, 7 * DAY,
	  NULL, "a transfer with no progress for this long is failed" },
	{ "system.transfers.stop_timeout", WX_KEY_DURATION, T(stop_timeout), "60", 1, DAY, NULL,
	  "how long hooks.stop may take before hooks.kill runs" },
	{ "system.transfers.hook_timeout", WX_KEY_DURATION, T(hook_timeout), "300", 1, DAY, NULL,
	  "how long hooks.create_environment may take" },
	{ "system.transfers.connect_timeout", WX_KEY_DURATION, T(connect_timeout), "30", 1, 3600,
	  NULL, "connect timeout from the source to the destination" },
	{ "system.transfers.response_timeout", WX_KEY_DURATION, T(response_timeout), "600", 1, DAY,
	  NULL, "how long the source waits for the destination's answer after the last byte" },
	{ "system.transfers.max_duration", WX_KEY_DURATION, T(max_duration), "0", 0, 365 * DAY,
	  NULL, "fail transfers older than this, 0 = no limit" },
	{ "system.transfers.callback_retention", WX_KEY_DURATION, T(callback_retention), "24h", 60,
	  365 * DAY, NULL, "how long undelivered panel callbacks are retried" },
	{ "system.transfers.record_retention", WX_KEY_DURATION, T(record_retention), "7d", 0,
	  3650 * DAY, NULL, "how long finished transfer records are kept" },
	{ "system.transfers.disk_reserve", WX_KEY_SIZE, T(disk_reserve), "1GiB", 0, INT64_MAX,
	  NULL, "free space that must remain on the data filesystem" },
	{ "system.transfers.compression_level", WX_KEY_INT, T(compression_level), "1", 0, 9, NULL,
	  "compression level of outgoing transfers, 0 = store (independent of backups)" },
	{ "system.transfers.compression_threads", WX_KEY_INT, T(compression_threads), "0", 0, 256,
	  NULL, "compression threads, 0 = half the CPUs (2..4); capped by a 12 MiB memory budget" },
	{ "system.transfers.compression", WX_KEY_CHOICE, T(compression), "auto", 0, 0,
	  "auto gzip zstd",
	  "codec: gzip (what every Wings reads), zstd (only to a destination that "
	  "advertises it; else gzip with a warning), auto (zstd when the destination "
	  "advertises it, else gzip)" },
	{ "system.transfers.ca_file", WX_KEY_PATH, T(ca_file), NULL, 0, 0, NULL,
	  "CA bundle (PEM) to verify the destination node and the panel; default: the system's" },
	{ "system.transfers.connect_to", WX_KEY_CONNECT_TO, T(connect_to), NULL, 0, 0, NULL,
	  "source: connect to another address for a destination's HOST:PORT (curl's "
	  "--connect-to); Host, SNI and certificate checks keep the URL's name" },
	{ "system.transfers.allow_unscoped_tokens", WX_KEY_BOOL, T(allow_unscoped_tokens), "false",
	  0, 0, NULL, "accept transfer JWTs without scope (Pterodactyl 1.11 panels)" },
	{ "system.transfers.max_token_lifetime", WX_KEY_DURATION, T(max_token_lifetime), "2h", 60,
	  30 * DAY, NULL, "refuse transfer JWTs valid for longer than this (exp - now, exp - iat); "
	  "panels issue 15 min (Pterodactyl, Pelican) or 1 h (FeatherPanel)" },
	{ "system.transfers.panel_product", WX_KEY_STRING, T(panel_product), "FeatherPanel", 0, 0,
	  NULL, "product in the User-Agent sent to the panel: FeatherPanel, Pelican or Pterodactyl" },
	{ "system.transfers.log_level", WX_KEY_CHOICE, T(log_level), "info", 0, 0,
	  "error warn info debug", "least severe level logged (debug: true also sets debug)" },
	{ "system.transfers.syslog", WX_KEY_CHOICE, T(syslog_facility), NULL, 0, 0,
	  "daemon user local0 local1 local2 local3 local4 local5 local6 local7",
	  "log to syslog with this facility instead of stderr" },
	{ "system.transfers.upload_limit", WX_KEY_INT, T(upload_limit), "0", 0, 1048576, NULL,
	  "MiB/s cap on outgoing transfers, shared by all of them on this node (as download_limit "
	  "on the receiving side), 0 = no limit" },
	{ "system.transfers.nice", WX_KEY_INT, T(nice), "10", 0, 19, NULL,
	  "CPU niceness (at least) of the push worker and of the receiving process, 0 = leave it" },
	{ "system.transfers.io_priority", WX_KEY_CHOICE, T(io_priority), "low", 0, 0,
	  "low idle normal",
	  "I/O priority of the same: low (best-effort, level 7), idle (only when no one else "
	  "uses the disk), normal (leave it)" },
	{ "system.transfers.events_heartbeat", WX_KEY_DURATION, T(events_heartbeat), "15", 1, 3600,
	  NULL, "wingxfer-events: time between heartbeat comments on an open event stream" },
	{ "system.transfers.events_max_duration", WX_KEY_DURATION, T(events_max_duration), "24h", 1,
	  30 * DAY, NULL, "wingxfer-events: an event stream is closed after this long even while "
	  "its transfer runs (the client reconnects)" },
	{ "system.transfers.preflight", WX_KEY_BOOL, T(preflight), "true", 0, 0, NULL,
	  "source: before the stop hook, check that the destination answers with valid TLS and "
	  "(a wingxfer destination) accepts the token, has room and has nothing in the way; "
	  "on a refusal the server is not stopped" },
	{ "system.transfers.chunked", WX_KEY_CHOICE, T(chunked), "auto", 0, 0, "auto off",
	  "auto: to a destination that names \"chunked\", send the transfer as resumable chunks "
	  "(docs/protocol.md); off: always one POST, as Wings does" },
	{ "system.transfers.presync", WX_KEY_CHOICE, T(presync), "auto", 0, 0, "auto off",
	  "source: to a destination that names \"presync\" (and takes chunks), copy the server "
	  "while it runs, then stop it only for a short final round of what changed "
	  "(docs/presync.md); off: stop first, then copy, as Wings does" },
	{ "system.transfers.presync_max_rounds", WX_KEY_INT, T(presync_max_rounds), "4", 1, 64,
	  NULL, "source: rounds copied while the server runs before it is stopped for the "
	  "final one" },
	{ "system.transfers.presync_threshold", WX_KEY_SIZE, T(presync_threshold), "256MiB", 0,
	  1LL << 50, NULL, "source: a round that sent less than this (or no less than the one "
	  "before) is the last one before the stop" },
	{ "system.transfers.chunk_size", WX_KEY_SIZE, T(chunk_size), "32MiB", 1LL << 20,
	  96LL << 20, NULL, "largest chunk request body sent (1MiB..96MiB: it must fit a "
	  "100 MB proxy limit such as Cloudflare's); a 413 halves it for the transfer" },
	{ "system.transfers.resume_window", WX_KEY_DURATION, T(resume_window), "1h", 60,
	  7 * DAY, NULL, "a chunked transfer that makes no progress for this long fails (both "
	  "sides); until then it resumes after any interruption" },
	{ "system.transfers.resume_attempts", WX_KEY_INT, T(resume_attempts), "20", 1, 10000,
	  NULL, "source: consecutive interruptions without progress before a chunked transfer "
	  "fails" },
	{ "system.transfers.write_behind", WX_KEY_SIZE, T(write_behind), "1MiB", 0, 1LL << 30,
	  NULL, "destination: write received files (and a chunked upload's chunks) to disk "
	  "while receiving, in pieces of a quarter of this, with at most this much in flight "
	  "(files are then dropped from the page cache); 0 = leave it to the kernel's "
	  "writeback" },
	{ "system.transfers.write_behind_flush", WX_KEY_SIZE, T(write_behind_flush), "1MiB", 0,
	  1LL << 30, NULL, "destination, with write_behind: after this much data written back, "
	  "ask the disk to persist it (a cache flush), so a game server's fsync never waits for "
	  "more than this of the transfer's data in the disk's cache; 0 = never (the disk's "
	  "cache holds all it takes, and the next fsync on the node waits for it)" },
	{ "system.transfers.hooks.stop", WX_KEY_COMMAND, T(hook_stop), NULL, 0, 0, NULL,
	  "run on the source before archiving, to stop the server (SERVER_UUID, SERVER_DIR set)" },
	{ "system.transfers.hooks.kill", WX_KEY_COMMAND, T(hook_kill), NULL, 0, 0, NULL,
	  "run when hooks.stop did not finish in stop_timeout" },
	{ "system.transfers.hooks.create_environment", WX_KEY_COMMAND,
	  T(hook_create_environment), NULL, 0, 0, NULL,
	  "run on the destination after extraction, before the server is put in place" },
};

const size_t wx_config_nkeys = sizeof wx_config_keys / sizeof wx_config_keys[0];

const struct wx_config_key *
wx_config_find_key(const char *name)
{
	for (size_t i = 0; i < wx_config_nkeys; i++)
		if (strcmp(wx_config_keys[i].name, name) == 0)
			return &wx_config_keys[i];
	return NULL;
}
