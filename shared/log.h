/*
 * Logging for all wingxfer programs.
 *
 * Every line carries the level, the program, and (when set) the request id
 * and the transfer UUID:
 *   2026-11-29T05:54:04Z wingxfer-destination[812]: error req=... transfer=...: message
 * Destination: stderr (the web server's error log, or the terminal) by
 * default; syslog(3) when the config says so.  Lines are single lines: any
 * control character in the message is replaced, so a peer cannot forge log
 * lines.  Never pass a token or a JWT; use wx_log_fingerprint() to identify a
 * secret without revealing it.
 */
#ifndef WX_LOG_H
#define WX_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum wx_log_level { WX_LOG_ERROR = 0, WX_LOG_WARN, WX_LOG_INFO, WX_LOG_DEBUG };

/* Sets the program name (basename of argv[0] is fine); call once. */
void wx_log_init(const char *program);
/* Chooses the sink: syslog with the given facility name, or stderr when NULL.
 * Returns -1 for an unknown facility name. */
int wx_log_use_syslog(const char *facility);
void wx_log_set_level(enum wx_log_level level);
enum wx_log_level wx_log_get_level(void);
/* Parses "error", "warn", "info", "debug"; -1 if unknown. */
int wx_log_parse_level(const char *s);

/* Per-request context; NULL clears.  Strings are copied. */
void wx_log_set_request(const char *request_id);
void wx_log_set_transfer(const char *uuid);
const char *wx_log_program(void);

void wx_log(enum wx_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define wx_err(...)   wx_log(WX_LOG_ERROR, __VA_ARGS__)
#define wx_warn(...)  wx_log(WX_LOG_WARN, __VA_ARGS__)
#define wx_info(...)  wx_log(WX_LOG_INFO, __VA_ARGS__)
#define wx_debug(...) wx_log(WX_LOG_DEBUG, __VA_ARGS__)

/* "sha256:1a2b3c4d": the first 8 hex digits of SHA-256(secret), for logs. */
void wx_log_fingerprint(const char *secret, char *out, size_t size);

#endif
