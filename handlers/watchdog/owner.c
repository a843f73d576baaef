/*
 * The watchdog and a transfer's owner: the lock is taken only when nobody
 * holds it (which process does is shared/owner.h's question).
 */
#include "autoconf.h"

#include "watchdog.h"
#include "state.h"

#include <errno.h>
#include <string.h>

int
wd_lock_idle(struct wd *w, const char *uuid, const char *busy_note)
{
	int fd = -1;
	enum wx_lock_result lr = wx_lock_try(w->st, uuid, &fd);
	if (lr == WX_LOCK_ACQUIRED)
		return fd;
	if (lr == WX_LOCK_BUSY)
		wd_note(w, uuid, "%s", busy_note);
	else
		wd_error(w, uuid, "cannot check the transfer lock: %s", strerror(errno));
	return -1;
}
