/*
 * wingxfer-watchdog internals.  One run: stuck transfers (stuck.c), then the
 * outbox (main.c via panel.h), then old files (cleanup.c).  Every action goes
 * through wd_action (report.c): one line on stdout, or one JSON object with
 * --json; nothing is printed when nothing happened.
 */
#ifndef WX_WATCHDOG_H
#define WX_WATCHDOG_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct wx_config;
struct wx_state;
struct wx_record;

/* How long a cancelled owner gets to stop on its own before SIGKILL. */
#define WD_GRACE_SECONDS 10
/* How long to wait for the lock after SIGKILL. */
#define WD_KILL_WAIT_SECONDS 5
/* Used-token files are kept at least this long, and until the token's exp
 * (or, when the file does not say, its mtime + max_token_lifetime) plus
 * WD_TOKEN_LEEWAY: a used token must never be accepted again. */
#define WD_TOKEN_MAX_AGE 86400
#define WD_TOKEN_LEEWAY 300

struct wd {
	const struct wx_config *cfg;
	const struct wx_state *st;
	bool dry_run;
	bool json;
	bool verbose;
	bool retry_now;
	int64_t now;
	json_object *list;       /* --json: the actions */
};

/*
 * Records one action.  kind is a short word ("failed", "cancel", "killed",
 * "delivered", "removed", ...); uuid may be NULL.  Text mode prints
 * "<uuid>: <message>" (or just the message) on stdout.
 */
void wd_action(struct wd *w, const char *kind, const char *uuid, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Something that is not an action, printed only with --verbose. */
void wd_note(struct wd *w, const char *uuid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A problem: logged at error level, and listed with --json. */
void wd_error(struct wd *w, const char *uuid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints the --json document. */
void wd_print_json(struct wd *w);

/* "3h 12m", "45 s": a duration for people. */
void wd_duration(int64_t seconds, char *buf, size_t size);

/* Phase 1: dead, stalled and overdue transfers. */
void wd_stuck_transfers(struct wd *w);

/* Phase 3: old records, orphaned staging, tombstones, used tokens. */
void wd_cleanup(struct wd *w);

/* The UUIDs of <state>/transfers/<uuid>.json (records.c); *count of them,
 * NULL when none or unreadable (said through wd_error).  Caller frees. */
char **wd_record_uuids(struct wd *w, size_t *count);

/* Phase 3 (unaccepted.c): moves aside installed copies whose success
 * callback the panel refused or never took. */
void wd_set_aside_unaccepted(struct wd *w);

/* <system.data>/.wingxfer-staging[/<uuid>]; new string. */
char *wd_staging_path(const struct wd *w, const char *uuid);

/* Takes the transfer's lock when nobody holds it: its fd, else -1 after
 * wd_note(busy_note) (a live owner) or wd_error (cannot tell). */
int wd_lock_idle(struct wd *w, const char *uuid, const char *busy_note);

#endif
