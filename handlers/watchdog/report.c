#include "autoconf.h"

#include "watchdog.h"
#include "log.h"
#include "json_text.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void
add(struct wd *w, const char *kind, const char *uuid, const char *msg, bool error)
{
	if (w->list == NULL)
		w->list = json_object_new_array();
	json_object *o = json_object_new_object();
	json_object_object_add(o, error ? "error" : "action", json_object_new_string(kind));
	json_object_object_add(o, "server", uuid ? json_object_new_string(uuid) : NULL);
	json_object_object_add(o, "message", json_object_new_string(msg));
	json_object_array_add(w->list, o);
}

void
wd_action(struct wd *w, const char *kind, const char *uuid, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (w->json) {
		add(w, kind, uuid, msg, false);
		return;
	}
	if (uuid)
		printf("%s%s: %s\n", w->dry_run ? "[dry run] " : "", uuid, msg);
	else
		printf("%s%s\n", w->dry_run ? "[dry run] " : "", msg);
	fflush(stdout);
}

void
wd_note(struct wd *w, const char *uuid, const char *fmt, ...)
{
	if (!w->verbose)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (w->json) {
		add(w, "note", uuid, msg, false);
		return;
	}
	if (uuid)
		printf("  %s: %s\n", uuid, msg);
	else
		printf("  %s\n", msg);
	fflush(stdout);
}

void
wd_error(struct wd *w, const char *uuid, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (uuid)
		wx_err("%s: %s", uuid, msg);
	else
		wx_err("%s", msg);
	if (w->json)
		add(w, "error", uuid, msg, true);
}

void
wd_print_json(struct wd *w)
{
	json_object *doc = json_object_new_object();
	char now[32];
	wx_format_time(w->now, now, sizeof now);
	json_object_object_add(doc, "time", json_object_new_string(now));
	json_object_object_add(doc, "dry_run", json_object_new_boolean(w->dry_run));
	json_object *actions = json_object_new_array(), *errors = json_object_new_array();
	size_t n = w->list ? json_object_array_length(w->list) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_array_get_idx(w->list, i);
		json_object_array_add(json_object_object_get_ex(o, "error", NULL) ? errors : actions,
		    json_object_get(o));
	}
	json_object_object_add(doc, "actions", actions);
	json_object_object_add(doc, "errors", errors);
	char *text = wx_json_text(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, NULL);
	printf("%s\n", text);
	free(text);
	fflush(stdout);
	json_object_put(doc);
}

void
wd_duration(int64_t s, char *buf, size_t size)
{
	wx_format_duration(s, buf, size);
}
