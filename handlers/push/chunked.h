/*
 * The chunked upload's private parts (chunked.c: the loop of
 * docs/protocol.md §4; chunked_http.c: one request and what its answer
 * means).
 */
#ifndef WX_PUSH_CHUNKED_H
#define WX_PUSH_CHUNKED_H

#include "push.h"
#include "backoff.h"
#include "chunk_spool.h"
#include "curl_setup.h"
#include "ratelimit.h"
#include "send_watch.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#define CH_MIN_CHUNK (1LL << 20)
#define CH_ANSWER_WAIT 60         /* s: the longest wait for one answer (or response_timeout) */
#define CH_POLL_MS 2000           /* GET interval after the last chunk */
#define CH_DELETE_TIMEOUT 10L     /* s, after connecting */
#define CH_BUSY_MAX_MS 10000      /* longest Retry-After honoured */
#define CH_IO (256 * 1024)        /* libcurl's upload buffer */
#define CH_MAX_ANSWER (16 * 1024)
#define CH_LIMITED_READ (128 * 1024)

/* What an answer's headers said. */
struct ch_headers {
	bool has_offset;
	int64_t offset;           /* Upload-Offset */
	char location[512];
	int64_t retry_after;      /* seconds, -1 = none */
	bool json;                /* Content-Type: application/json */
};

/* Marks (push.h struct body_mark) made ahead of the acknowledged offset, and the last one below it. */
#define CH_MARKS_WAITING 8
struct ch_marks {
	struct body_mark waiting[CH_MARKS_WAITING];  /* by offset */
	int nwaiting;
	struct body_mark acked;   /* the last at or below the acknowledged offset */
	bool has_acked;
};

struct chunked {
	struct job *job;
	CURL *c;
	const char *ua;
	struct body *body;
	char *base;               /* <request url>/uploads (may hold credentials) */
	char *url;                /* <base>/<id> */
	char id[33];
	char secret[65];
	bool prefix_digest;       /* each chunk carries X-Wingxfer-Prefix-Digest, not Content-Digest */
	int64_t chunk;            /* chunk size in use */
	int64_t acked;            /* the destination's offset */
	struct chunk_spool spool; /* the body, made once, kept until acknowledged */
	CURLM *multi;             /* runs every request, so the spool fills meanwhile */
	bool produce;             /* the request is a chunk: make the next one beside it */
	int64_t sent_hi;          /* the furthest body offset put on the wire */
	int64_t interruptions, resumes, resent;
	int64_t remade;           /* body bytes made again to resume (from a mark or the start) */
	struct ch_marks marks;
	int64_t consecutive;      /* interruptions since the offset last moved */
	int64_t progress_ms;      /* when the offset (or the destination's consumed) last moved */
	int64_t progress_consumed;
	struct wx_backoff backoff;
	struct wx_ratelimit rl;
	/* The current request. */
	int64_t req_off, req_len, req_pos;
	struct send_watch watch;  /* stall_timeout, then answer_wait */
	bool has_body;
	struct wx_curl_answer answer;
	struct ch_headers h;
	json_object *json;        /* the answer parsed, when it is a JSON object */
	char errbuf[CURL_ERROR_SIZE];
	char why[1024];           /* why the worker aborted the request itself */
	bool final;               /* the destination said the upload is final */
	int64_t answer_wait;      /* ms: the longest wait for one answer */
};

enum ch_answer {
	CH_OK,                    /* 2xx: see the status */
	CH_INTERRUPTED,           /* try again after the backoff */
	CH_REFUSED,               /* a final refusal: why is set */
	CH_STOPPED,               /* job->stop */
};

/* A new mark; the oldest waiting one gives way when CH_MARKS_WAITING wait. */
void ch_marks_add(struct ch_marks *k, const struct body_mark *m);
/* The marks at or below acked: the last becomes k->acked (true when one did). */
bool ch_marks_settle(struct ch_marks *k, int64_t acked);
void ch_marks_forget(struct ch_marks *k);
/* extra.resume.mark, and back (0, or -1 when it is not one). */
json_object *ch_mark_json(const struct body_mark *m);
int ch_mark_parse(json_object *j, struct body_mark *m);

/* printf into why (whysize bytes). */
void ch_why(char *why, size_t whysize, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * One request to url: method, header lines (the upload's secret or the
 * token is among them), and, when len >= 0, body bytes [off, off + len) of
 * the spool (paced by upload_limit).  deleting: the DELETE after a stop,
 * which the stop does not end (bounded by a whole-request timeout).
 * *code is the HTTP status (0: none came).  Leaves the answer in u->answer,
 * u->h and u->json.  While a request runs (u->produce), the spool makes
 * the next chunk between libcurl's turns.
 */
CURLcode ch_request(struct chunked *u, const char *method, const char *url,
    const char *const *lines, size_t nlines, int64_t off, int64_t len, bool deleting, long *code);
/* A string / a non-negative integer member of a JSON object (NULL / false when not). */
const char *ch_json_str(json_object *j, const char *key);
bool ch_json_count(json_object *j, const char *key, int64_t *out);
/* Whether the answer's "code" is token. */
bool ch_code_is(struct chunked *u, const char *token);
/*
 * What a request's result means.  Interruptions: no answer, a 5xx (but
 * 503 busy), an answer that is not the destination's JSON, a 400
 * digest_mismatch.  why says what happened (for the log, or for people
 * when refused).
 */
enum ch_answer ch_classify(struct chunked *u, CURLcode rc, long code, char *why, size_t whysize);

#endif
