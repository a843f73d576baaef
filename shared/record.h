/*
 * A transfer record: what one node knows about one transfer, on disk as
 * <state>/transfers/<uuid>.json.  Written whole and atomically by the owner
 * (the holder of the transfer's lock), at most about once a second while
 * bytes move; read by the status endpoints and the watchdog.
 *
 * States (Wings' vocabulary): pending -> processing -> completed | failed |
 * cancelled.  "cancelling" is shown while a cancel request is being honoured.
 * The phase says what an active transfer is doing: one of the WX_PHASE_*
 * below, spelled once here because the watchdog's stall allowance reads
 * what the source, push and destination write.
 */
#ifndef WX_RECORD_H
#define WX_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

struct wx_state;

enum wx_role { WX_ROLE_SOURCE = 0, WX_ROLE_DESTINATION };

enum wx_status {
	WX_ST_PENDING = 0,
	WX_ST_PROCESSING,
	WX_ST_CANCELLING,
	WX_ST_COMPLETED,
	WX_ST_FAILED,
	WX_ST_CANCELLED,
};

/* Phases (wx_record.phase), in the order a transfer passes them. */
#define WX_PHASE_QUEUED     "queued"     /* source: the push worker is starting */
#define WX_PHASE_PREPARING  "preparing"  /* push: config, token; destination: checks */
#define WX_PHASE_PREFLIGHT  "preflight"  /* push: checking the destination before the stop */
#define WX_PHASE_STOPPING   "stopping"   /* push: hooks.stop, then hooks.kill */
#define WX_PHASE_SCANNING   "scanning"   /* push: walking the server's tree */
#define WX_PHASE_STREAMING  "streaming"  /* push: archiving onto the wire */
#define WX_PHASE_WAITING    "waiting"    /* push: body sent, the destination's answer */
#define WX_PHASE_RESUMING   "resuming"   /* push: an interrupted chunked upload waits to go on */
#define WX_PHASE_DONE       "done"       /* push: finished */
#define WX_PHASE_INSTALLER  "installer"  /* destination: the panel's installer step */
#define WX_PHASE_RECEIVING  "receiving"  /* destination: reading and extracting */
#define WX_PHASE_VERIFYING  "verifying"  /* destination: checksum */
#define WX_PHASE_INSTALLING "installing" /* destination: hooks, rename into place */
#define WX_PHASE_COMPLETED  "completed"  /* destination: installed and reported */

struct wx_record {
	char uuid[37];
	enum wx_role role;
	enum wx_status status;
	char phase[32];
	int64_t pid;             /* informational; liveness is the lock */
	char request_id[37];
	int64_t created_at;      /* unix seconds */
	int64_t updated_at;
	int64_t progress_at;     /* last time bytes moved (stall detection) */
	int64_t finished_at;     /* 0 while active */
	int64_t bytes_total;     /* expected raw bytes; 0 = unknown */
	int64_t bytes_read;      /* source: file bytes archived; destination: body bytes received */
	int64_t bytes_sent;      /* source: bytes on the wire; destination: bytes extracted */
	int64_t files;           /* entries archived / extracted */
	double rate;             /* bytes_read per second, smoothed */
	char *url;               /* source: destination URL (never the token) */
	char *error;             /* why it failed, for people */
	char *warning;           /* non-fatal problems, e.g. checksum mismatch when not enforced */
	char *callback;          /* panel callback queued: "success" / "failure" / NULL */
	json_object *extra;      /* role-specific (panel settings, token fingerprint, ...) */
};

bool wx_status_active(enum wx_status s);
const char *wx_status_name(enum wx_status s);
const char *wx_role_name(enum wx_role r);

/* Initialises a fresh record (timestamps now, pid = getpid()). */
void wx_record_init(struct wx_record *r, const char *uuid, enum wx_role role);
void wx_record_clear(struct wx_record *r);
void wx_record_set_error(struct wx_record *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void wx_record_set_warning(struct wx_record *r, const char *text);

/* Serialises to a new json-c object / parses one.  from_json returns -1 and a
 * reason on a malformed record (never crashes on hostile input). */
json_object *wx_record_to_json(const struct wx_record *r);
int wx_record_from_json(struct wx_record *r, json_object *j, const char **why);

/* Atomic write of the record (updated_at set to now); 0 or -1 with errno. */
int wx_record_save(const struct wx_state *st, struct wx_record *r);
/* Reads <uuid>.json: 0, -1 with errno ENOENT when absent, -1 EINVAL when malformed. */
int wx_record_load(const struct wx_state *st, const char *uuid, struct wx_record *r);

/* Parses record text (for tests and the fuzzer). */
int wx_record_parse(const char *text, size_t len, struct wx_record *r, const char **why);

#endif
