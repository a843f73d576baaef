/*
 * The JSON a status endpoint (GET /api/transfers/:uuid,
 * GET /api/servers/:uuid/transfer) answers for a transfer record: state,
 * phase, byte counters, rate, ETA when a total is known, times, error, and
 * the last log lines in Wings' words.
 */
#ifndef WX_STATUS_H
#define WX_STATUS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

struct wx_record;
struct wx_state;

/* New object describing r; live = whether its owner holds the lock. */
json_object *wx_status_json(const struct wx_state *st, const struct wx_record *r, bool live);

/* Seconds left at rate for the bytes not yet read, or -1 when unknown. */
long long wx_status_eta(const struct wx_record *r);
/*
 * The bytes of r that count toward r->bytes_total (percent, bars, ETA):
 * bytes_read, except on the destination of a chunked upload, whose
 * bytes_total is the server's raw size (X-Wingxfer-Size) while its body is
 * compressed: there the bytes extracted (bytes_sent).
 */
int64_t wx_status_done(const struct wx_record *r);

#endif
