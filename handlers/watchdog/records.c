/*
 * The transfer records the watchdog walks: <state>/transfers/<uuid>.json.
 */
#include "autoconf.h"

#include "watchdog.h"
#include "state.h"

#include <errno.h>
#include <string.h>

char **
wd_record_uuids(struct wd *w, size_t *count)
{
	char **uuids;
	if (wx_state_record_uuids(w->st, &uuids, count) < 0) {
		wd_error(w, NULL, "cannot read %s: %s", w->st->transfers, strerror(errno));
		return NULL;
	}
	return uuids;
}
