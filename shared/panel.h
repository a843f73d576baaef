/*
 * The panel client (libcurl) and its durable outbox.
 *
 * Requests go to {remote}/api/remote with the headers Wings sends:
 *   Authorization: Bearer <token_id>.<token>
 *   Accept: application/json, Content-Type: application/json
 *   User-Agent: <panel_product> Wings/v<version> (id:<token_id>)
 * Each attempt is bounded by remote_query.timeout.  Wings' retry policy:
 * exponential from 0.5 s, x1.5, +-50 % jitter, each wait <= 12 s, 30 s in
 * all; a 4xx answer is final, 5xx and transport errors are retried.
 *
 * Callbacks (transfer success / failure) are written to <state>/outbox/
 * before the first attempt and removed only once the panel answered 2xx (or
 * 409 to a failure: the panel had already closed the transfer).  Other 4xx
 * answers move the callback to outbox/rejected/ with the panel's answer.
 * What is still undelivered after the retry window stays in the outbox for
 * the watchdog, which redelivers it for system.transfers.callback_retention.
 *
 * One transfer never gets both a success and a failure from one node: a
 * callback is keyed by (server uuid, transfer id) and the first one queued
 * for a transfer wins.
 */
#ifndef WX_PANEL_H
#define WX_PANEL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wx_config;
struct wx_state;

enum wx_panel_result {
	WX_PANEL_OK = 0,         /* 2xx */
	WX_PANEL_REJECTED,       /* 4xx: final */
	WX_PANEL_UNAVAILABLE,    /* 5xx or transport errors until the retry window closed */
};

struct wx_panel_answer {
	long status;             /* HTTP status, 0 when no answer */
	char detail[512];        /* panel error text or transport error, for logs and records */
};

/*
 * GET {remote}/api/remote/servers/{uuid}: the server's configuration.  On
 * WX_PANEL_OK *config is the parsed JSON object (caller puts it).
 */
enum wx_panel_result wx_panel_get_server(const struct wx_config *cfg, const char *uuid,
    json_object **config, struct wx_panel_answer *ans);

enum wx_callback_kind { WX_CALLBACK_SUCCESS, WX_CALLBACK_FAILURE };

/*
 * Queues the transfer callback for (uuid, transfer_id) in the outbox, then
 * tries to deliver it within Wings' retry window.  reason is the failure
 * text (sent as {"error": reason}; success sends the body null).
 * Returns WX_PANEL_OK when delivered (or already delivered), REJECTED when
 * the panel refused it (moved to rejected/), UNAVAILABLE when it stays queued
 * for the watchdog.  Returns -1 with errno if it could not even be queued,
 * or if a different callback was already queued for this transfer (EEXIST).
 */
int wx_panel_report(const struct wx_config *cfg, const struct wx_state *st, const char *uuid,
    const char *transfer_id, enum wx_callback_kind kind, const char *reason,
    struct wx_panel_answer *ans);

/*
 * Redelivers every queued callback once (one attempt each, no retry loop),
 * honouring each one's next-attempt time; expired ones (callback_retention)
 * move to rejected/.  Used by the watchdog.  Returns the number of callbacks
 * acted on; on_action (may be NULL) gets one line per action.
 */
int wx_outbox_redeliver(const struct wx_config *cfg, const struct wx_state *st, bool dry_run,
    void (*on_action)(const char *line, void *ctx), void *ctx);

#endif
