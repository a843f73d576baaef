/*
 * wingxfer-status internals: the node's transfer records as a list
 * (list.c), shown as text or JSON (show.c).
 */
#ifndef WX_STATUS_CMD_H
#define WX_STATUS_CMD_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "record.h"

struct wx_state;

struct st_item {
	struct wx_record rec;
	bool live;        /* active and its owner holds the transfer's lock */
	bool cancelling;  /* active and a cancel marker exists */
};

struct st_list {
	struct st_item *items;
	size_t n;
	size_t active;    /* how many of them are active */
};

/*
 * Loads the records in st->transfers (which may be absent: an empty list;
 * nothing is created).  uuids (count nuuids, normalised): only these; a missing
 * one is an error.  active_only: only pending, processing, cancelling.
 * Sorted: active first, then the newest first.  Malformed records are
 * skipped with a line on stderr.  0, or -1 after printing why on stderr.
 */
int st_list_load(const struct wx_state *st, char **uuids, size_t nuuids, bool active_only,
    struct st_list *out);
void st_list_free(struct st_list *l);

/* Human-readable listing at time now. */
void st_show_text(FILE *f, const struct st_list *l, const struct wx_state *st, int64_t now);
/* {"time", "state_directory", "active", "transfers": [...]} (new reference);
 * each transfer is what the status endpoints answer plus "direction" and,
 * outgoing, "destination_url". */
json_object *st_show_json(const struct st_list *l, const struct wx_state *st, int64_t now);

/* "[#########-----------]" of width cells (plus the brackets) for done/total;
 * a total <= 0 gives "[" ... "?" ... "]". */
void st_bar(int64_t done, int64_t total, int width, char *buf, size_t size);

#endif
