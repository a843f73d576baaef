/*
 * The two clocks of one request on its way to the destination, kept by a
 * libcurl progress callback: while the body goes out it must keep moving
 * (no byte sent for stall_ms is a stall), and once all of it is out the
 * answer must come within answer_ms.  Used by the single POST (upload.c)
 * and by every request of a chunked upload (chunked_http.c).
 */
#ifndef WX_PUSH_SEND_WATCH_H
#define WX_PUSH_SEND_WATCH_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

struct send_watch {
	curl_off_t sent;        /* body bytes curl reports sent */
	int64_t moved_ms;       /* monotonic ms when sent last changed */
	int64_t done_ms;        /* when the whole body was out (0: not yet) */
};

enum send_verdict {
	SEND_GOING,             /* nothing is late */
	SEND_STALLED,           /* body not all out, no byte for stall_ms */
	SEND_NO_ANSWER,         /* body all out, no answer for answer_ms */
};

/* A new request starts now. */
void send_watch_start(struct send_watch *w);
/* The whole body is out (the first call counts). */
void send_watch_done(struct send_watch *w);
/* Takes curl's ulnow; *moved tells whether it changed since the last call. */
enum send_verdict send_watch_step(struct send_watch *w, curl_off_t ulnow, int64_t stall_ms,
    int64_t answer_ms, bool *moved);

#endif
