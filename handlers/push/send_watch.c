#include "autoconf.h"

#include "send_watch.h"
#include "util.h"

#include <stdbool.h>

void
send_watch_start(struct send_watch *w)
{
	w->sent = 0;
	w->moved_ms = wx_mono_ms();
	w->done_ms = 0;
}

void
send_watch_done(struct send_watch *w)
{
	if (w->done_ms == 0)
		w->done_ms = wx_mono_ms();
}

enum send_verdict
send_watch_step(struct send_watch *w, curl_off_t ulnow, int64_t stall_ms, int64_t answer_ms,
    bool *moved)
{
	int64_t now = wx_mono_ms();
	*moved = ulnow != w->sent;
	if (*moved) {
		w->sent = ulnow;
		w->moved_ms = now;
	}
	if (w->done_ms == 0 && now - w->moved_ms >= stall_ms)
		return SEND_STALLED;
	if (w->done_ms != 0 && now - w->done_ms >= answer_ms)
		return SEND_NO_ANSWER;
	return SEND_GOING;
}
