/*
 * One HTTP request as a FastCGI or CGI program sees it, behind a small I/O
 * interface (environment, body reader, response writer) so handlers do not
 * care whether they run under a web server (FCGX) or from a shell (plain CGI
 * on stdin/stdout).
 *
 * Responses are JSON.  Every response carries X-Request-Id.  Error bodies are
 * {"error": "..."}: the text says what was wrong in words a person
 * understands and never contains secrets or request data verbatim.
 */
#ifndef WX_REQUEST_H
#define WX_REQUEST_H

#include <fcgiapp.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "state.h"

struct wx_config;

#define WX_REQ_MAX_HEADERS 24
#define WX_REQ_PARAM_MAX 64

struct wx_request {
	FCGX_Request *fcgx;              /* NULL in CGI mode */
	char **envp;
	const struct wx_config *cfg;     /* NULL when the node is misconfigured */
	const char *method;
	char path[1024];                 /* REQUEST_URI without the query, not decoded */
	const char *query;               /* QUERY_STRING, "" if none */
	char param[WX_REQ_PARAM_MAX];    /* the :uuid segment of the route, percent-decoded */
	char request_id[37];

	int64_t content_length;          /* -1 when unknown (chunked through Apache) */
	int64_t body_read;
	bool body_eof;                   /* the whole body was read */
	bool body_error;                 /* truncated or aborted by the web server */

	int status;                      /* 0 until a response was sent */
	int nheaders;
	char *headers[WX_REQ_MAX_HEADERS]; /* "Name: value" lines for the response */

	struct wx_state state;
	bool state_open;
	int64_t started_ms;
};

/* Sets up req from a FastCGI request (fcgx != NULL) or the process environment. */
void wx_req_init(struct wx_request *req, FCGX_Request *fcgx);
/* Frees what the request owns and closes the state directory. */
void wx_req_done(struct wx_request *req);

/* A CGI variable (HTTP_AUTHORIZATION, CONTENT_TYPE, ...) or NULL. */
const char *wx_req_env(const struct wx_request *req, const char *name);

/*
 * Reads up to n body bytes.  Returns > 0 bytes, 0 at the end of a complete
 * body, or -1 when the body is truncated or the web server aborted it
 * (FCGX_GetError, or fewer bytes than CONTENT_LENGTH); body_error is set.
 * Blocks until n bytes, EOF or an error (FCGX semantics).
 */
ssize_t wx_req_read(struct wx_request *req, void *buf, size_t n);

/* Adds a response header line ("Name: value"); at most WX_REQ_MAX_HEADERS. */
void wx_req_header(struct wx_request *req, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends a complete response.  Only the first call has an effect. */
int wx_req_send(struct wx_request *req, int status, const char *content_type, const char *body,
    size_t len);
/*
 * A streamed response (text/event-stream): wx_req_stream_start sends the
 * status and headers without a length, then each wx_req_stream_write sends
 * its bytes and flushes them to the web server at once.  Both return 0, or
 * -1 when the client or the web server is gone (the stream is over).
 */
int wx_req_stream_start(struct wx_request *req, int status, const char *content_type);
int wx_req_stream_write(struct wx_request *req, const char *s, size_t len);
/* Sends body (takes the reference) as JSON with the status. */
int wx_req_json(struct wx_request *req, int status, json_object *body);
/* Sends {"error": message}; message is formatted, never request data. */
int wx_req_error(struct wx_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with a machine-readable "code" member (for protocols whose
 * clients act on it, docs/protocol.md) and extra's members (consumed; may
 * be NULL). */
int wx_req_error_code(struct wx_request *req, int status, const char *code,
    json_object *extra, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* 500 {"error": "node misconfigured"} style helper for internal failures. */
int wx_req_internal_error(struct wx_request *req, const char *what);

/*
 * The node's state directory, opened on first use.  On failure the request
 * has been answered 500 and NULL is returned.
 */
const struct wx_state *wx_req_state(struct wx_request *req);

/* Reason phrase for a status code. */
const char *wx_http_reason(int status);

/*
 * Reads the whole body as JSON (at most max bytes).  On failure (too large,
 * cut off, empty, not a JSON object) answers 400 itself and returns NULL.
 */
json_object *wx_req_read_json(struct wx_request *req, size_t max);

/* Looks up key in the query string (percent-decoded into out). */
bool wx_req_query(const struct wx_request *req, const char *key, char *out, size_t size);

#endif
