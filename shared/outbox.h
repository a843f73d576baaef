/*
 * The outbox's files, for panel.c and the tests (the public contract is in
 * panel.h).
 *
 *   <state>/outbox/<uuid>.<transfer id>.json   queued callback (one per transfer)
 *   <state>/outbox/sent/<same name>            tombstone of a delivered callback
 *   <state>/outbox/rejected/<same name>        refused by the panel, or expired
 *   <state>/outbox/.lock                       flock: serialises creation and moves
 *
 * A queued entry is locked with flock(2) on its own file by the one process
 * delivering it; it is rewritten atomically (temp file, fsync, rename) and
 * the writer locks the new file before it replaces the old one, so the lock
 * is never lost.  Whoever takes a lock checks that the path still names the
 * file it locked.  Creation, and moves to sent/ or rejected/, happen under
 * .lock, so "is there already a callback for this transfer" has one answer.
 */
#ifndef WX_OUTBOX_H
#define WX_OUTBOX_H

#include "panel.h"

#include <stdbool.h>
#include <stdint.h>

struct wx_state;

struct wx_outbox_entry {
	char server[37];
	char transfer_id[65];
	enum wx_callback_kind kind;
	char *reason;            /* failure text; NULL for success */
	int64_t created_at;      /* unix seconds, when queued */
	int64_t attempts;        /* POSTs made so far, by anyone */
	int64_t redeliveries;    /* watchdog attempts that failed */
	int64_t last_attempt_at;
	int64_t next_attempt_at; /* the watchdog waits until then */
	long last_status;        /* 0 = transport error or none yet */
	int64_t in_flight_at;    /* saved before each POST, cleared with its answer:
	                            found set, the deliverer died mid-POST */
	int64_t unanswered;      /* POSTs that may have reached the panel without a
	                            definite answer here (transport error, 5xx, or
	                            the deliverer died): a later 4xx is ambiguous */
	char *last_error;
	int fd;                  /* the entry's lock while we hold it, else -1 */
};

/* Validates a transfer id: 1-64 of [A-Za-z0-9._-], not starting with '.'. */
bool wx_outbox_valid_transfer_id(const char *tid);

/* "<uuid>.<tid>.json"; new string. */
char *wx_outbox_name(const char *uuid, const char *tid);

enum wx_outbox_queue_result {
	WX_OUTBOX_Q_NEW = 0,      /* created; e holds its lock */
	WX_OUTBOX_Q_EXISTING,     /* was queued already, same kind; e holds its lock */
	WX_OUTBOX_Q_BUSY,         /* queued, same kind, another process is delivering it */
	WX_OUTBOX_Q_SENT,         /* delivered before, same kind */
	WX_OUTBOX_Q_REJECTED,     /* rejected before, same kind */
};

/*
 * Queues a callback unless one exists for (uuid, tid).  Returns a
 * wx_outbox_queue_result, or -1 with errno (EEXIST: the transfer already has
 * a callback of the other kind, named in detail; else an I/O error).
 */
int wx_outbox_queue(const struct wx_state *st, const char *uuid, const char *tid,
    enum wx_callback_kind kind, const char *reason, struct wx_outbox_entry *e,
    char *detail, size_t detailsize);

/* Rewrites the locked entry e (attempt counters) keeping its lock; 0 / -1. */
int wx_outbox_save(const struct wx_state *st, struct wx_outbox_entry *e);

/*
 * Moves the locked entry to sent/ (delivered) or rejected/ with the panel's
 * status and answer (and why, for rejected), then releases it.  0 / -1.
 */
int wx_outbox_finish(const struct wx_state *st, struct wx_outbox_entry *e, bool delivered,
    long status, const char *answer, const char *why);

/* Releases the entry's lock (if held) and frees its strings. */
void wx_outbox_release(struct wx_outbox_entry *e);

/* The JSON request body: "null" for success, {"error": reason} for failure. */
char *wx_outbox_body(const struct wx_outbox_entry *e);

/*
 * Locks the queued entry with file name `name` for delivery.  1 locked and
 * loaded into e; 0 busy (another process has it) or gone; -1 unreadable
 * (errno EINVAL: malformed, with why).
 */
int wx_outbox_take(const struct wx_state *st, const char *name, struct wx_outbox_entry *e,
    const char **why);

/*
 * One delivery attempt sequence for a locked entry: up to max_attempts POSTs
 * within Wings' retry window.  Updates counters, then finishes the entry
 * (sent/ or rejected/) or saves it for later; always releases it.
 * redelivery: true when the watchdog calls (counts toward the schedule).
 */
enum wx_panel_result wx_outbox_deliver(const struct wx_config *cfg, const struct wx_state *st,
    struct wx_outbox_entry *e, int max_attempts, bool redelivery, struct wx_panel_answer *ans);

#endif
