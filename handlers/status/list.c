/*
 * The transfer records of this node, read without changing anything: no
 * directory is created, and only an active record's lock is probed (a
 * finished transfer has no owner to find, and probing its lock could make a
 * new transfer of that server starting at that instant see it busy).
 */
#include "autoconf.h"

#include "status_cmd.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Loads one record into l; false when it is absent or malformed (said on stderr). */
static bool
load_one(const struct wx_state *st, const char *uuid, bool active_only, bool must_exist,
    struct st_list *l)
{
	struct wx_record r;
	if (wx_record_load(st, uuid, &r) < 0) {
		if (errno == ENOENT && !must_exist)
			return true;
		if (errno == ENOENT)
			fprintf(stderr, "wingxfer-status: no transfer of server %s is known on this "
			    "node (no %s/%s.json)\n", uuid, st->transfers, uuid);
		else
			fprintf(stderr, "wingxfer-status: %s/%s.json: %s\n", st->transfers, uuid,
			    errno == EINVAL ? "not a transfer record (malformed), skipped" :
			    strerror(errno));
		return false;
	}
	bool active = wx_status_active(r.status);
	if (active_only && !active) {
		wx_record_clear(&r);
		return true;
	}
	l->items = xrealloc(l->items, (l->n + 1) * sizeof *l->items);
	struct st_item *it = &l->items[l->n++];
	it->rec = r;
	it->live = active && wx_lock_probe(st, uuid) == WX_LOCK_BUSY;
	it->cancelling = active && wx_cancel_requested(st, uuid, NULL, 0);
	if (active)
		l->active++;
	return true;
}

static int
by_activity_then_age(const void *a, const void *b)
{
	const struct wx_record *x = &((const struct st_item *)a)->rec;
	const struct wx_record *y = &((const struct st_item *)b)->rec;
	bool ax = wx_status_active(x->status), ay = wx_status_active(y->status);
	if (ax != ay)
		return ax ? -1 : 1;
	if (x->created_at != y->created_at)
		return x->created_at > y->created_at ? -1 : 1;
	return strcmp(x->uuid, y->uuid);
}

int
st_list_load(const struct wx_state *st, char **uuids, size_t nuuids, bool active_only,
    struct st_list *out)
{
	memset(out, 0, sizeof *out);
	char **all;
	size_t nall;
	if (wx_state_record_uuids(st, &all, &nall) < 0) {
		if (errno == ENOENT && nuuids == 0)
			return 0; /* no transfer ever ran here */
		if (errno == ENOENT)
			fprintf(stderr, "wingxfer-status: no transfer is known on this node (%s does "
			    "not exist; system.transfers.state_directory)\n", st->transfers);
		else
			fprintf(stderr, "wingxfer-status: cannot read %s: %s%s\n", st->transfers,
			    strerror(errno), errno == EACCES ? " (run it as root or as the user the "
			    "wingxfer programs run as)" : "");
		return -1;
	}
	int rc = 0;
	if (nuuids > 0) {
		for (size_t i = 0; i < nuuids; i++)
			if (!load_one(st, uuids[i], active_only, true, out))
				rc = -1;
	} else {
		for (size_t i = 0; i < nall; i++)
			(void)load_one(st, all[i], active_only, false, out);
	}
	for (size_t i = 0; i < nall; i++)
		free(all[i]);
	free(all);
	if (out->n > 1)
		qsort(out->items, out->n, sizeof *out->items, by_activity_then_age);
	return rc;
}

void
st_list_free(struct st_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		wx_record_clear(&l->items[i].rec);
	free(l->items);
	memset(l, 0, sizeof *l);
}
