#include "autoconf.h"

#include "record.h"
#include "fsutil.h"
#include "json_text.h"
#include "json_get.h"
#include "state.h"
#include "util.h"
#include "uuid.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RECORD_BYTES (1024 * 1024)

static const char *const status_names[] = {
	"pending", "processing", "cancelling", "completed", "failed", "cancelled",
};
static const char *const role_names[] = { "source", "destination" };

bool
wx_status_active(enum wx_status s)
{
	return s == WX_ST_PENDING || s == WX_ST_PROCESSING || s == WX_ST_CANCELLING;
}

const char *
wx_status_name(enum wx_status s)
{
	return (unsigned)s < WX_ARRAY_LEN(status_names) ? status_names[s] : "unknown";
}

const char *
wx_role_name(enum wx_role r)
{
	return (unsigned)r < WX_ARRAY_LEN(role_names) ? role_names[r] : "unknown";
}

void
wx_record_init(struct wx_record *r, const char *uuid, enum wx_role role)
{
	memset(r, 0, sizeof *r);
	wx_strlcpy(r->uuid, uuid, sizeof r->uuid);
	r->role = role;
	r->status = WX_ST_PENDING;
	r->pid = getpid();
	r->created_at = r->updated_at = r->progress_at = wx_now();
}

void
wx_record_clear(struct wx_record *r)
{
	free(r->url);
	free(r->error);
	free(r->warning);
	free(r->callback);
	if (r->extra)
		json_object_put(r->extra);
	memset(r, 0, sizeof *r);
}

void
wx_record_set_error(struct wx_record *r, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	free(r->error);
	r->error = xstrdup(buf);
}

void
wx_record_set_warning(struct wx_record *r, const char *text)
{
	if (r->warning == NULL) {
		r->warning = xstrdup(text);
		return;
	}
	char *joined = xasprintf("%s; %s", r->warning, text);
	free(r->warning);
	r->warning = joined;
}

static void
add_str(json_object *j, const char *key, const char *v)
{
	json_object_object_add(j, key, v ? json_object_new_string(v) : NULL);
}

static void
add_int(json_object *j, const char *key, int64_t v)
{
	json_object_object_add(j, key, json_object_new_int64(v));
}

json_object *
wx_record_to_json(const struct wx_record *r)
{
	json_object *j = json_object_new_object();
	add_str(j, "uuid", r->uuid);
	add_str(j, "role", wx_role_name(r->role));
	add_str(j, "status", wx_status_name(r->status));
	add_str(j, "phase", r->phase);
	add_int(j, "pid", r->pid);
	add_str(j, "request_id", r->request_id);
	add_int(j, "created_at", r->created_at);
	add_int(j, "updated_at", r->updated_at);
	add_int(j, "progress_at", r->progress_at);
	add_int(j, "finished_at", r->finished_at);
	add_int(j, "bytes_total", r->bytes_total);
	add_int(j, "bytes_read", r->bytes_read);
	add_int(j, "bytes_sent", r->bytes_sent);
	add_int(j, "files", r->files);
	json_object_object_add(j, "rate", json_object_new_double(r->rate));
	add_str(j, "url", r->url);
	add_str(j, "error", r->error);
	add_str(j, "warning", r->warning);
	add_str(j, "callback", r->callback);
	if (r->extra)
		json_object_object_add(j, "extra", json_object_get(r->extra));
	return j;
}

static int
get_enum(json_object *j, const char *key, const char *const *names, size_t n, int *out)
{
	json_object *v;
	if (!json_object_object_get_ex(j, key, &v) || !json_object_is_type(v, json_type_string))
		return -1;
	const char *s = json_object_get_string(v);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	return -1;
}

int
wx_record_from_json(struct wx_record *r, json_object *j, const char **why)
{
	memset(r, 0, sizeof *r);
	if (!json_object_is_type(j, json_type_object)) {
		*why = "not a JSON object";
		return -1;
	}
	int role = 0, status = 0;
	if (wx_json_opt_fixed(j, "uuid", r->uuid, sizeof r->uuid) < 0 || !wx_uuid_valid(r->uuid)) {
		*why = "bad uuid";
		goto fail;
	}
	if (get_enum(j, "role", role_names, WX_ARRAY_LEN(role_names), &role) < 0) {
		*why = "bad role";
		goto fail;
	}
	if (get_enum(j, "status", status_names, WX_ARRAY_LEN(status_names), &status) < 0) {
		*why = "bad status";
		goto fail;
	}
	r->role = (enum wx_role)role;
	r->status = (enum wx_status)status;
	json_object *v;
	if (wx_json_opt_fixed(j, "phase", r->phase, sizeof r->phase) < 0 ||
	    wx_json_opt_fixed(j, "request_id", r->request_id, sizeof r->request_id) < 0 ||
	    wx_json_opt_i64(j, "pid", &r->pid) < 0 || wx_json_opt_i64(j, "created_at", &r->created_at) < 0 ||
	    wx_json_opt_i64(j, "updated_at", &r->updated_at) < 0 ||
	    wx_json_opt_i64(j, "progress_at", &r->progress_at) < 0 ||
	    wx_json_opt_i64(j, "finished_at", &r->finished_at) < 0 ||
	    wx_json_opt_i64(j, "bytes_total", &r->bytes_total) < 0 ||
	    wx_json_opt_i64(j, "bytes_read", &r->bytes_read) < 0 ||
	    wx_json_opt_i64(j, "bytes_sent", &r->bytes_sent) < 0 || wx_json_opt_i64(j, "files", &r->files) < 0 ||
	    wx_json_opt_str(j, "url", &r->url) < 0 || wx_json_opt_str(j, "error", &r->error) < 0 ||
	    wx_json_opt_str(j, "warning", &r->warning) < 0 || wx_json_opt_str(j, "callback", &r->callback) < 0) {
		*why = "a field has the wrong type";
		goto fail;
	}
	if (json_object_object_get_ex(j, "rate", &v) && v != NULL) {
		if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
			*why = "rate is not a number";
			goto fail;
		}
		r->rate = json_object_get_double(v);
	}
	if (json_object_object_get_ex(j, "extra", &v) && v != NULL) {
		if (!json_object_is_type(v, json_type_object)) {
			*why = "extra is not an object";
			goto fail;
		}
		r->extra = json_object_get(v);
	}
	return 0;
fail:
	wx_record_clear(r);
	return -1;
}

int
wx_record_parse(const char *text, size_t len, struct wx_record *r, const char **why)
{
	json_tokener *tok = json_tokener_new();
	if (tok == NULL) {
		*why = "out of memory";
		return -1;
	}
	json_object *j = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (j == NULL || jerr != json_tokener_success) {
		if (j)
			json_object_put(j);
		memset(r, 0, sizeof *r);
		*why = "not valid JSON";
		return -1;
	}
	int rc = wx_record_from_json(r, j, why);
	json_object_put(j);
	return rc;
}

int
wx_record_save(const struct wx_state *st, struct wx_record *r)
{
	r->updated_at = wx_now();
	json_object *j = wx_record_to_json(r);
	size_t len = 0;
	char *text = wx_json_text(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	char *name = xasprintf("%s.json", r->uuid);
	char *data = xasprintf("%s\n", text);
	free(text);
	int rc = wx_atomic_write(st->transfers, name, data, len + 1);
	int saved = errno;
	free(data);
	free(name);
	json_object_put(j);
	errno = saved;
	return rc;
}

int
wx_record_load(const struct wx_state *st, const char *uuid, struct wx_record *r)
{
	memset(r, 0, sizeof *r);
	if (!wx_uuid_valid(uuid)) {
		errno = EINVAL;
		return -1;
	}
	char *path = wx_state_file(st, uuid, ".json");
	const char *why = NULL;
	char *text = wx_read_small_file(path, MAX_RECORD_BYTES, &why);
	int saved = errno;
	free(path);
	if (text == NULL) {
		errno = saved ? saved : EIO;
		return -1;
	}
	int rc = wx_record_parse(text, strlen(text), r, &why);
	free(text);
	if (rc < 0)
		errno = EINVAL;
	return rc;
}
