/*
 * The state directory shared by every wingxfer process on a node:
 *
 *   <state>/transfers/<uuid>.json    the record (struct wx_record), replaced atomically
 *   <state>/transfers/<uuid>.lock    flock(2) held by the live owner of the transfer
 *   <state>/transfers/<uuid>.cancel  cancel request, created by DELETE, polled by the owner
 *   <state>/transfers/<uuid>.events  JSON lines in Wings' words, size-bounded
 *   <state>/tokens/<sha256>          transfer JWTs already used (single use)
 *   <state>/outbox/<id>.json         panel callbacks not yet acknowledged
 *   <state>/outbox/rejected/         callbacks the panel refused or that expired
 *   <state>/outbox/sent/             tombstones of delivered callbacks (panel.h)
 *   <state>/watchdog.lock            one watchdog run at a time
 *   <state>/bandwidth-<direction>    the node's upload/download_limit bucket (ratelimit.h)
 *
 * Directories are 0700, files 0600.  Only the owner of a transfer (the holder
 * of its lock) writes its record and events; others only read, or take the
 * lock first (the watchdog, once the owner is gone).
 */
#ifndef WX_STATE_H
#define WX_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

struct wx_config;

struct wx_state {
	char *dir;
	char *transfers;   /* <dir>/transfers */
	char *outbox;      /* <dir>/outbox */
	char *rejected;    /* <dir>/outbox/rejected */
	char *tokens;      /* <dir>/tokens */
};

/* Creates the layout if needed.  0, or -1 with a message in err. */
int wx_state_open(struct wx_state *st, const char *dir, char *err, size_t errsize);
void wx_state_close(struct wx_state *st);

/* "<transfers>/<uuid><suffix>"; new string. */
char *wx_state_file(const struct wx_state *st, const char *uuid, const char *suffix);

/* --- liveness locks --- */
enum wx_lock_result {
	WX_LOCK_ACQUIRED = 1, /* we hold it now: the previous owner (if any) is gone */
	WX_LOCK_BUSY = 0,     /* a live process holds it */
	WX_LOCK_ERROR = -1,   /* could not tell (errno set) */
};

/*
 * Takes the transfer's lock without blocking.  On WX_LOCK_ACQUIRED *fd is the
 * lock fd (O_CLOEXEC); the lock lives until it is closed (or the process and
 * every child holding a copy of the fd exits).
 */
enum wx_lock_result wx_lock_try(const struct wx_state *st, const char *uuid, int *fd);
/* Like wx_lock_try on an arbitrary path (watchdog.lock). */
enum wx_lock_result wx_lock_try_path(const char *path, int *fd);
/*
 * Like wx_lock_try but one attempt: WX_LOCK_BUSY may also be another
 * process's probe holding the lock at that moment.  For callers that run
 * while the owner is normally alive (a chunk arriving during its transfer)
 * and for whom a wrong BUSY only postpones work to the next request;
 * wx_lock_try's retries would cost each of them tens of milliseconds.
 */
enum wx_lock_result wx_lock_try_once(const struct wx_state *st, const char *uuid, int *fd);
/*
 * A worker started with --lock-fd fd (wx_spawn_detached): confirms that fd
 * is the transfer's lock file and holds its lock, and makes it close on
 * exec.  0, or -1 with the reason logged (naming the fd and the file).
 */
int wx_lock_adopt(const struct wx_state *st, const char *uuid, int fd);
/* Probe only: WX_LOCK_BUSY if some process holds it, else released again. */
enum wx_lock_result wx_lock_probe(const struct wx_state *st, const char *uuid);

/* --- cancel requests --- */
#define WX_CANCEL_WHY_MAX 512
/* Creates the cancel marker.  why: NULL for a DELETE by the panel, else who
 * asked and why (e.g. the watchdog's "stalled: ..."), kept in the marker. */
int wx_cancel_request(const struct wx_state *st, const char *uuid, const char *why);
/* True when a cancel was requested; why (may be NULL) gets the marker's
 * text, "" for a DELETE. */
bool wx_cancel_requested(const struct wx_state *st, const char *uuid, char *why, size_t whysize);
void wx_cancel_clear(const struct wx_state *st, const char *uuid);

/* --- records --- */
/* The UUIDs of the records in st->transfers (<uuid>.json), in directory
 * order: *uuids (new array of new strings, NULL when none), *count.  0, or
 * -1 with errno when the directory cannot be read (nothing returned). */
int wx_state_record_uuids(const struct wx_state *st, char ***uuids, size_t *count);

/* --- events (JSON lines {"time":..,"event":..,"args":[..]}) --- */
#define WX_EVENTS_MAX_BYTES (512 * 1024)
/* Appends one event; when the file passes the bound, only its newest half is kept. */
int wx_events_append(const struct wx_state *st, const char *uuid, const char *event,
    const char *arg);
/* The last n "transfer logs" messages, oldest first, as a JSON array (new ref). */
json_object *wx_events_tail(const struct wx_state *st, const char *uuid, int n);

#endif
