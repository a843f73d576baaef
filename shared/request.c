#include "autoconf.h"

#include "request.h"
#include "config.h"
#include "json_text.h"
#include "log.h"
#include "program.h"
#include "util.h"
#include "uuid.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

void
wx_req_init(struct wx_request *req, FCGX_Request *fcgx)
{
	memset(req, 0, sizeof *req);
	req->fcgx = fcgx;
	req->envp = fcgx ? fcgx->envp : environ;
	req->started_ms = wx_mono_ms();
	wx_uuid_random(req->request_id);

	req->method = wx_req_env(req, "REQUEST_METHOD");
	if (req->method == NULL)
		req->method = "GET";
	const char *uri = wx_req_env(req, "REQUEST_URI");
	if (uri == NULL)
		uri = wx_req_env(req, "SCRIPT_NAME");
	if (uri == NULL)
		uri = "/";
	size_t plen = strcspn(uri, "?");
	if (plen >= sizeof req->path)
		plen = sizeof req->path - 1;  /* too long for any route: 404 */
	memcpy(req->path, uri, plen);
	req->path[plen] = '\0';
	req->query = wx_req_env(req, "QUERY_STRING");
	if (req->query == NULL)
		req->query = uri[strcspn(uri, "?")] == '?' ? uri + strcspn(uri, "?") + 1 : "";

	req->content_length = -1;
	const char *cl = wx_req_env(req, "CONTENT_LENGTH");
	int64_t v;
	if (cl != NULL && *cl != '\0' && wx_parse_i64(cl, 0, INT64_MAX, &v) == NULL)
		req->content_length = v;
	else if (cl != NULL && *cl != '\0')
		req->body_error = true; /* a garbled length: treat the body as unreadable */
}

void
wx_req_done(struct wx_request *req)
{
	for (int i = 0; i < req->nheaders; i++)
		free(req->headers[i]);
	req->nheaders = 0;
	if (req->state_open)
		wx_state_close(&req->state);
	req->state_open = false;
}

const char *
wx_req_env(const struct wx_request *req, const char *name)
{
	size_t len = strlen(name);
	for (char **e = req->envp; e && *e; e++)
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e + len + 1;
	return NULL;
}

ssize_t
wx_req_read(struct wx_request *req, void *buf, size_t n)
{
	if (req->body_error)
		return -1;
	if (req->body_eof)
		return 0;
	if (req->content_length >= 0) {
		int64_t left = req->content_length - req->body_read;
		if (left == 0) {
			req->body_eof = true;
			return 0;
		}
		if ((int64_t)n > left)
			n = (size_t)left;
	}
	if (n > INT32_MAX)
		n = INT32_MAX;
	ssize_t got;
	if (req->fcgx != NULL) {
		int r = FCGX_GetStr(buf, (int)n, req->fcgx->in);
		if (FCGX_GetError(req->fcgx->in) != 0) {
			req->body_error = true;
			return -1;
		}
		got = r;
	} else {
		for (;;) {
			got = read(0, buf, n);
			/* SIGUSR2 (a cancel) ends the read, as it does under FastCGI. */
			if (got < 0 && errno == EINTR && !wx_interrupted)
				continue;
			break;
		}
		if (got < 0) {
			req->body_error = true;
			return -1;
		}
	}
	if (got == 0) {
		if (req->content_length >= 0 && req->body_read < req->content_length) {
			req->body_error = true; /* fewer bytes than announced */
			return -1;
		}
		req->body_eof = true;
		return 0;
	}
	req->body_read += got;
	return got;
}

void
wx_req_header(struct wx_request *req, const char *name, const char *fmt, ...)
{
	if (req->nheaders >= WX_REQ_MAX_HEADERS)
		return;
	char value[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(value, sizeof value, fmt, ap);
	va_end(ap);
	/* Header values come from us; still never let a newline through. */
	for (char *p = value; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	req->headers[req->nheaders++] = xasprintf("%s: %s", name, value);
}

const char *
wx_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Content";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 507: return "Insufficient Storage";
	}
	return "Status";
}

static int
out_write(struct wx_request *req, const char *s, size_t len)
{
	if (req->fcgx != NULL)
		return FCGX_PutStr(s, (int)len, req->fcgx->out) == (int)len ? 0 : -1;
	return fwrite(s, 1, len, stdout) == len ? 0 : -1;
}

/*
 * Whether an HTTP/1.x request has body bytes that were never read.  A
 * response sent then says "Connection: close": Apache otherwise reads and
 * discards the rest of the body before it finishes the response, and a client
 * that stopped sending on an early error waits for that until Apache's
 * Timeout.  (HTTP/2 has no Connection header; lighttpd would pass it on.)
 */
static bool
body_unread(const struct wx_request *req)
{
	const char *proto = wx_req_env(req, "SERVER_PROTOCOL");
	if (req->body_eof || proto == NULL || strncmp(proto, "HTTP/1.", 7) != 0)
		return false;
	if (req->content_length >= 0)
		return req->body_read < req->content_length;
	return wx_req_env(req, "HTTP_TRANSFER_ENCODING") != NULL;
}

int
wx_req_send(struct wx_request *req, int status, const char *content_type, const char *body,
    size_t len)
{
	if (req->status != 0)
		return 0;
	req->status = status;
	char head[256];
	snprintf(head, sizeof head, "Status: %d %s\r\nX-Request-Id: %s\r\n", status,
	    wx_http_reason(status), req->request_id);
	int rc = out_write(req, head, strlen(head));
	for (int i = 0; i < req->nheaders; i++) {
		rc |= out_write(req, req->headers[i], strlen(req->headers[i]));
		rc |= out_write(req, "\r\n", 2);
	}
	if (body_unread(req))
		rc |= out_write(req, "Connection: close\r\n", 19);
	if (content_type != NULL && status != 204) {
		snprintf(head, sizeof head, "Content-Type: %s\r\nContent-Length: %zu\r\n", content_type,
		    len);
		rc |= out_write(req, head, strlen(head));
	}
	rc |= out_write(req, "\r\n", 2);
	if (status != 204 && len > 0)
		rc |= out_write(req, body, len);
	if (req->fcgx == NULL)
		fflush(stdout);
	else
		FCGX_FFlush(req->fcgx->out);
	return rc;
}

/* Flushes what was written; 0, or -1 when the peer is gone. */
static int
out_flush(struct wx_request *req)
{
	if (req->fcgx == NULL)
		return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
	if (FCGX_FFlush(req->fcgx->out) < 0)
		return -1;
	return FCGX_GetError(req->fcgx->out) == 0 ? 0 : -1;
}

int
wx_req_stream_start(struct wx_request *req, int status, const char *content_type)
{
	if (req->status != 0)
		return -1;
	req->status = status;
	char head[256];
	snprintf(head, sizeof head, "Status: %d %s\r\nX-Request-Id: %s\r\nContent-Type: %s\r\n",
	    status, wx_http_reason(status), req->request_id, content_type);
	int rc = out_write(req, head, strlen(head));
	for (int i = 0; i < req->nheaders; i++) {
		rc |= out_write(req, req->headers[i], strlen(req->headers[i]));
		rc |= out_write(req, "\r\n", 2);
	}
	rc |= out_write(req, "\r\n", 2);
	if (rc != 0)
		return -1;
	return out_flush(req);
}

int
wx_req_stream_write(struct wx_request *req, const char *s, size_t len)
{
	if (len > 0 && out_write(req, s, len) < 0)
		return -1;
	return out_flush(req);
}

int
wx_req_json(struct wx_request *req, int status, json_object *body)
{
	size_t len = 0;
	char *s = wx_json_text(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char *text = xasprintf("%s\n", s);
	free(s);
	int rc = wx_req_send(req, status, "application/json", text, len + 1);
	free(text);
	json_object_put(body);
	return rc;
}

/* The one error answer: {"error", ["code",] "request_id"} plus extra's members. */
static int
req_verror(struct wx_request *req, int status, const char *code, json_object *extra,
    const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "error", json_object_new_string(msg));
	if (code != NULL)
		json_object_object_add(j, "code", json_object_new_string(code));
	json_object_object_add(j, "request_id", json_object_new_string(req->request_id));
	if (extra != NULL) {
		json_object_object_foreach(extra, k, v)
			json_object_object_add(j, k, json_object_get(v));
		json_object_put(extra);
	}
	if (status >= 500)
		wx_err("%s %s -> %d: %s", req->method, req->path, status, msg);
	else
		wx_info("%s %s -> %d: %s", req->method, req->path, status, msg);
	return wx_req_json(req, status, j);
}

int
wx_req_error(struct wx_request *req, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = req_verror(req, status, NULL, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int
wx_req_error_code(struct wx_request *req, int status, const char *code, json_object *extra,
    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = req_verror(req, status, code, extra, fmt, ap);
	va_end(ap);
	return rc;
}

int
wx_req_internal_error(struct wx_request *req, const char *what)
{
	wx_err("internal error: %s", what);
	return wx_req_error(req, 500,
	    "An unexpected error occurred on this node; the node's error log has the details "
	    "(request id %s).", req->request_id);
}

const struct wx_state *
wx_req_state(struct wx_request *req)
{
	if (req->state_open)
		return &req->state;
	char err[512];
	if (wx_state_open(&req->state, req->cfg->transfers.state_directory, err, sizeof err) < 0) {
		wx_err("%s", err);
		wx_req_error(req, 500, "node misconfigured");
		return NULL;
	}
	req->state_open = true;
	return &req->state;
}

json_object *
wx_req_read_json(struct wx_request *req, size_t max)
{
	if (req->content_length > (int64_t)max) {
		wx_req_error(req, 400, "The request body is larger than %zu bytes.", max);
		return NULL;
	}
	char *buf = xmalloc(max + 1);
	size_t len = 0;
	for (;;) {
		ssize_t r = wx_req_read(req, buf + len, max + 1 - len);
		if (r < 0) {
			free(buf);
			wx_req_error(req, 400, "The request body was cut off before its end.");
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max) {
			free(buf);
			wx_req_error(req, 400, "The request body is larger than %zu bytes.", max);
			return NULL;
		}
	}
	if (len == 0) {
		free(buf);
		wx_req_error(req, 400, "The request body is empty; expected a JSON object.");
		return NULL;
	}
	json_tokener *tok = json_tokener_new();
	json_object *j = json_tokener_parse_ex(tok, buf, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	int consumed = (int)json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	/* Only whitespace may follow the value. */
	bool trailing = false;
	for (size_t i = (size_t)consumed; i < len && j != NULL; i++)
		if (buf[i] != ' ' && buf[i] != '\n' && buf[i] != '\r' && buf[i] != '\t')
			trailing = true;
	free(buf);
	if (j == NULL || jerr != json_tokener_success || trailing) {
		if (j)
			json_object_put(j);
		wx_req_error(req, 400, "The request body is not valid JSON.");
		return NULL;
	}
	if (!json_object_is_type(j, json_type_object)) {
		json_object_put(j);
		wx_req_error(req, 400, "The request body is not a JSON object.");
		return NULL;
	}
	return j;
}

bool
wx_req_query(const struct wx_request *req, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);
	const char *q = req->query;
	while (q && *q) {
		size_t plen = strcspn(q, "&");
		if (plen > klen && strncmp(q, key, klen) == 0 && q[klen] == '=') {
			size_t o = 0;
			for (size_t i = klen + 1; i < plen && o + 1 < size; i++) {
				int h, l;
				if (q[i] == '%' && i + 2 < plen && (h = wx_hex_digit(q[i + 1])) >= 0 &&
				    (l = wx_hex_digit(q[i + 2])) >= 0) {
					out[o++] = (char)(h * 16 + l);
					i += 2;
				} else {
					out[o++] = q[i] == '+' ? ' ' : q[i];
				}
			}
			out[o] = '\0';
			return true;
		}
		q += plen;
		if (*q == '&')
			q++;
	}
	return false;
}
