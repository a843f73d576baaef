/*
 * The panel client (libcurl) and its durable outbox.
 *
 * Requests go to {remote}/api/remote with the headers Wings sends:
 *   Authorization: Bearer <token_id>.<token>
 *   Accept: application/json, Content-Type: application/json
 *   User-Agent: <panel_product> Wings/v<version> (id:<token_id>)
 * Each attempt is bounded by remote_query.timeout.  Wings' retry policy
 * (backoff.h): exponential from 0.5 s, x1.5, +-50 % jitter, each wait
 * <= 12 s, 30 s in all; a 4xx answer is final, 5xx (any non-2xx that is not
 * 4xx) and transport errors are retried.  The panel's certificate is
 * verified (system.transfers.ca_file, else the system store) unless
 * api.ignore_certificate_errors is true.  Redirects are not followed.
 *
 * Callbacks (transfer success / failure) are written to <state>/outbox/
 * before the first attempt and removed only once the panel answered 2xx (or
 * 409 to a failure: the panel had already closed the transfer); they are
 * then kept as a tombstone in outbox/sent/ (for record_retention), so the
 * same callback is never sent again.  Other 4xx answers move the callback to
 * outbox/rejected/ with the panel's answer, logged at error level.  What is
 * still undelivered after the retry window stays in the outbox for the
 * watchdog, which redelivers it at growing intervals (1 min doubling up to
 * 1 h) for system.transfers.callback_retention, then moves it to rejected/.
 *
 * One transfer never gets both a success and a failure from one node: a
 * callback is keyed by (server uuid, transfer id) and the first one queued
 * for a transfer wins, whatever became of it.  Concurrent reporters and the
 * watchdog are serialised by flock(2) on the outbox entry: one callback is
 * in flight from at most one process at a time.
 */
#ifndef WX_PANEL_H
#define WX_PANEL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wx_config;
struct wx_state;
struct wx_record;

enum wx_panel_result {
	WX_PANEL_OK = 0,         /* 2xx */
	WX_PANEL_REJECTED,       /* 4xx, or a 2xx that is not what was asked for: final */
	WX_PANEL_UNAVAILABLE,    /* 5xx or transport errors until the retry window closed */
};

struct wx_panel_answer {
	long status;             /* HTTP status, 0 when no answer */
	int attempts;            /* attempts made by this call */
	char detail[512];        /* panel error text or transport error, for logs and records */
};

/*
 * GET {remote}/api/remote/servers/{uuid}: the server's configuration.  On
 * WX_PANEL_OK *config is the parsed JSON object, which has a "settings"
 * object (caller puts it).  A 2xx answer that is not such an object is
 * WX_PANEL_REJECTED.
 */
enum wx_panel_result wx_panel_get_server(const struct wx_config *cfg, const char *uuid,
    json_object **config, struct wx_panel_answer *ans);

/*
 * The answer to that GET (panel_server.c): the HTTP status and the body
 * (may be NULL) to the result and *config as described above; ans->detail
 * says what was wrong with a 2xx that is not a configuration.
 */
enum wx_panel_result wx_panel_server_config(long status, const char *body, json_object **config,
    struct wx_panel_answer *ans);

/*
 * build.disk_space (MiB) of a server configuration in bytes, 0 for none
 * (missing, not a number, not positive, or too large to be one); *present
 * says whether the key was there as a number.
 */
int64_t wx_panel_disk_limit(json_object *config, bool *present);

/*
 * "HTTP <status>[ <code>]: <text>" for an error answer of the panel:
 * errors[0].detail, else message / error, else the body's start; control
 * characters replaced.
 */
void wx_panel_describe_answer(long status, const char *body, char *out, size_t size);

enum wx_callback_kind { WX_CALLBACK_SUCCESS, WX_CALLBACK_FAILURE };

/* "success" / "failure": the panel's URL word, the outbox's and the record's
 * (wx_record.callback) spelling.  parse: 0, or -1 for any other text. */
const char *wx_callback_kind_name(enum wx_callback_kind kind);
int wx_callback_kind_parse(const char *name, enum wx_callback_kind *kind);

/*
 * The transfer id that keys a transfer's callback: the record's request_id
 * (the request that started the transfer), else "t<created_at>".  The owner
 * of a transfer and the watchdog both use this, so that they share one key.
 * Writes into buf (>= 40 bytes); returns buf.
 */
const char *wx_panel_transfer_id(const struct wx_record *r, char *buf, size_t size);

/*
 * Queues the transfer callback for (uuid, transfer_id) in the outbox, then
 * tries to deliver it within Wings' retry window.  reason is the failure
 * text (sent as {"error": reason}; success sends the body null).
 * transfer_id: 1-64 characters of [A-Za-z0-9._-] (see wx_panel_transfer_id).
 * Returns WX_PANEL_OK when delivered (or already delivered), REJECTED when
 * the panel refused it (moved to rejected/), UNAVAILABLE when it stays queued
 * for the watchdog (also when another process is delivering it right now).
 * Returns -1 with errno if it could not even be queued (EINVAL for bad
 * arguments), or if a different callback was already queued for this
 * transfer (EEXIST; ans->detail says which).
 */
int wx_panel_report(const struct wx_config *cfg, const struct wx_state *st, const char *uuid,
    const char *transfer_id, enum wx_callback_kind kind, const char *reason,
    struct wx_panel_answer *ans);

/*
 * Queues the callback for (uuid, transfer_id) without sending it, so that it
 * survives a crash of the caller: the owner of a transfer queues before it
 * writes its final record, then delivers with wx_panel_report (which finds
 * the queued entry).  0 when queued now or before (or already sent/rejected),
 * -1 with errno as wx_panel_report (EEXIST: the other kind is queued; the
 * reason in detail).
 */
int wx_panel_queue(const struct wx_state *st, const char *uuid, const char *transfer_id,
    enum wx_callback_kind kind, const char *reason, char *detail, size_t detailsize);

/* wx_panel_report with at most max_attempts attempts (>= 1) inside the
 * retry window; the watchdog uses 1 so that one run stays short. */
int wx_panel_report_attempts(const struct wx_config *cfg, const struct wx_state *st,
    const char *uuid, const char *transfer_id, enum wx_callback_kind kind, const char *reason,
    int max_attempts, struct wx_panel_answer *ans);

/*
 * What the outbox knows about the callback of (uuid, transfer_id):
 * WX_OUTBOX_NONE, or queued / sent / rejected, with its kind in *kind.
 */
enum wx_outbox_where { WX_OUTBOX_NONE = 0, WX_OUTBOX_QUEUED, WX_OUTBOX_SENT, WX_OUTBOX_REJECTED };
enum wx_outbox_where wx_outbox_lookup(const struct wx_state *st, const char *uuid,
    const char *transfer_id, enum wx_callback_kind *kind);
/* The same with the whole entry in *e (not locked; wx_outbox_release it). */
struct wx_outbox_entry;
enum wx_outbox_where wx_outbox_lookup_entry(const struct wx_state *st, const char *uuid,
    const char *transfer_id, struct wx_outbox_entry *e);

/* What wx_outbox_redeliver did with one callback (or, with dry_run, would do). */
enum wx_outbox_act {
	WX_OA_DELIVERED,         /* the panel took it */
	WX_OA_UNAVAILABLE,       /* not reached; stays queued for the next attempt */
	WX_OA_REJECTED,          /* refused by the panel: moved to rejected/ */
	WX_OA_EXPIRED,           /* past its retry window: moved to rejected/ */
	WX_OA_DROPPED,           /* already delivered (or rejected): removed */
	WX_OA_WOULD_DELIVER,     /* dry run */
	WX_OA_BUSY,              /* another process is delivering it (not an action) */
	WX_OA_NOT_DUE,           /* waits for its next attempt (not an action) */
};
/* "delivered", "unavailable", ..., "would-deliver", "busy", "not-due". */
const char *wx_outbox_act_name(enum wx_outbox_act act);

struct wx_outbox_action {
	enum wx_outbox_act act;
	const char *action;      /* wx_outbox_act_name(act) */
	const char *server;
	const char *transfer_id;
	const char *kind;        /* "success" / "failure" */
	long status;             /* panel's HTTP status, 0 when none */
	int64_t next_attempt;    /* unix time of the next attempt ("unavailable", "not-due") */
	const char *detail;      /* panel's answer or transport error, may be "" */
};

struct wx_outbox_opts {
	bool dry_run;            /* say what would happen; send and change nothing */
	bool retry_now;          /* ignore each callback's next-attempt time */
	/* Called once per callback looked at; "busy" and "not-due" are not actions. */
	void (*on_action)(const struct wx_outbox_action *a, void *ctx);
	void *ctx;
};

/*
 * Redelivers every queued callback once (one attempt each, no retry loop),
 * honouring each one's next-attempt time; expired ones (callback_retention
 * after they were queued) move to rejected/.  Used by the watchdog.
 * Returns the number of callbacks acted on (delivered, attempted, rejected,
 * expired, dropped), or -1 if the outbox could not be read.
 */
int wx_outbox_redeliver(const struct wx_config *cfg, const struct wx_state *st,
    const struct wx_outbox_opts *opts);

/* Removes outbox/sent/ tombstones older than max_age seconds; returns how
 * many (or would, with dry_run). */
int wx_outbox_prune_sent(const struct wx_state *st, int64_t max_age, bool dry_run);

/*
 * One request to {remote}/api/remote{path}, one attempt, no outbox: method
 * "GET" or "POST", body (may be NULL) sent as application/json.  Returns the
 * HTTP status (0 on a transport error, with ans->detail saying why); the
 * response body, up to 1 MiB, goes to *resp when resp is not NULL (caller
 * frees).  The building block of everything above, for tools and tests.
 */
long wx_panel_request(const struct wx_config *cfg, const char *method, const char *path,
    const char *body, char **resp, struct wx_panel_answer *ans);

#endif
