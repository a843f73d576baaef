/* Request plumbing: JSON responses and errors, body reading, query strings. */
#include "autoconf.h"

#include "cgi_capture.h"
#include "log.h"
#include "request.h"
#include "tap.h"
#include "uuid.h"

static void
test_error_response(void)
{
	char *envp[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/api/transfers/x?y=1", NULL };
	struct wx_request req;
	capture_request(&req, envp, "", 0);
	is_str(req.path, "/api/transfers/x", "the path is REQUEST_URI without the query");
	ok(wx_uuid_valid(req.request_id), "every request gets a request id");
	wx_req_header(&req, "X-Test", "a\r\nSet-Cookie: evil");
	capture_start();
	wx_req_error(&req, 409, "A transfer is already in progress for this server.");
	wx_req_error(&req, 500, "second answer");
	char *out = capture_end();
	has_str(out, "Status: 409 Conflict\r\n", "the status line");
	char want[80];
	snprintf(want, sizeof want, "X-Request-Id: %s\r\n", req.request_id);
	has_str(out, want, "X-Request-Id header");
	has_str(out, "Content-Type: application/json\r\n", "JSON content type");
	has_str(out, "X-Test: a  Set-Cookie: evil\r\n", "newlines in header values are neutralised");
	has_str(out, "\r\n\r\n{\"error\":\"A transfer is already in progress for this server.\","
	    "\"request_id\":\"", "the body is {\"error\": ...}");
	ok(strstr(out, "second answer") == NULL, "only the first response is sent");
	is_int(req.status, 409, "the status is remembered");
	free(out);
	wx_req_done(&req);

	capture_request(&req, envp, "", 0);
	capture_start();
	wx_req_send(&req, 204, NULL, "", 0);
	out = capture_end();
	has_str(out, "Status: 204 No Content\r\n", "204 status line");
	ok(strstr(out, "Content-Length") == NULL, "204 has no body headers");
	free(out);
	wx_req_done(&req);
}

static void
test_body(void)
{
	char buf[64];
	struct wx_request req;
	char *with_len[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/x", "CONTENT_LENGTH=5", NULL };
	capture_request(&req, with_len, "hello", 5);
	is_int(wx_req_read(&req, buf, sizeof buf), 5, "reads CONTENT_LENGTH bytes");
	is_int(wx_req_read(&req, buf, sizeof buf), 0, "then the end of the body");
	ok(req.body_eof && !req.body_error, "the body is complete");
	wx_req_done(&req);

	capture_request(&req, with_len, "hel", 3);
	is_int(wx_req_read(&req, buf, sizeof buf), 3, "a short body gives what there is");
	is_int(wx_req_read(&req, buf, sizeof buf), -1, "then an error, not a clean end");
	ok(req.body_error, "the body is marked truncated");
	wx_req_done(&req);

	char *no_len[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/x", NULL };
	capture_request(&req, no_len, "chunked body", 12);
	is_int(req.content_length, -1, "no CONTENT_LENGTH: length unknown");
	is_int(wx_req_read(&req, buf, sizeof buf), 12, "reads until EOF without CONTENT_LENGTH");
	is_int(wx_req_read(&req, buf, sizeof buf), 0, "then the end");
	wx_req_done(&req);

	char *bad_len[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/x", "CONTENT_LENGTH=12abc", NULL };
	capture_request(&req, bad_len, "x", 1);
	is_int(wx_req_read(&req, buf, sizeof buf), -1, "a garbled CONTENT_LENGTH is an error");
	wx_req_done(&req);

	char *big_len[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/x", "CONTENT_LENGTH=5368709120",
		NULL };
	capture_request(&req, big_len, "", 0);
	is_int(req.content_length, 5368709120LL, "a 5 GiB CONTENT_LENGTH is parsed (no atoi)");
	wx_req_done(&req);
}

static json_object *
json_body(const char *body, int *status)
{
	char cl[48];
	snprintf(cl, sizeof cl, "CONTENT_LENGTH=%zu", strlen(body));
	char *envp[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/x", cl, NULL };
	struct wx_request req;
	capture_request(&req, envp, body, strlen(body));
	capture_start();
	json_object *j = wx_req_read_json(&req, 64);
	free(capture_end());
	*status = req.status;
	wx_req_done(&req);
	return j;
}

static void
test_json_body(void)
{
	int status;
	json_object *j = json_body("{\"url\":\"https://x\"}\n", &status);
	ok(j != NULL && status == 0, "a JSON object is read");
	json_object_put(j);
	ok(json_body("not json", &status) == NULL && status == 400, "not JSON: 400");
	ok(json_body("[1,2]", &status) == NULL && status == 400, "a JSON array: 400");
	ok(json_body("{} {}", &status) == NULL && status == 400, "trailing data: 400");
	ok(json_body("", &status) == NULL && status == 400, "an empty body: 400");
	ok(json_body("{\"a\":\"0123456789012345678901234567890123456789012345678901234567890123\"}",
	    &status) == NULL && status == 400, "a body over the limit: 400");
}

static void
test_query(void)
{
	char *envp[] = { "REQUEST_METHOD=DELETE", "REQUEST_URI=/api/transfers",
		"QUERY_STRING=a=1&server=0b2a%2D1&x", NULL };
	struct wx_request req;
	capture_request(&req, envp, "", 0);
	char v[64];
	ok(wx_req_query(&req, "server", v, sizeof v), "a query parameter is found");
	is_str(v, "0b2a-1", "... and percent-decoded");
	ok(!wx_req_query(&req, "serv", v, sizeof v), "a prefix of a name does not match");
	ok(!wx_req_query(&req, "x", v, sizeof v), "a name without a value does not match");
	wx_req_done(&req);
}

int
main(void)
{
	wx_log_init("test_request");
	wx_log_set_level(WX_LOG_ERROR);
	test_error_response();
	test_body();
	test_json_body();
	test_query();
	return tap_done();
}
