#include "autoconf.h"

#include "events.h"
#include "state.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The status endpoints show this many log lines; a new stream starts with as many. */
#define BACKLOG 20

void
log_cursor_clear(struct log_cursor *c)
{
	free(c->last_line);
	memset(c, 0, sizeof *c);
}

/* Reads [off, size) of fd (at most 4 * WX_EVENTS_MAX_BYTES); new buffer or NULL. */
static char *
read_from(int fd, off_t off, off_t size, size_t *len)
{
	size_t want = (size_t)(size - off);
	if (want > 4 * (size_t)WX_EVENTS_MAX_BYTES)
		want = 4 * (size_t)WX_EVENTS_MAX_BYTES;
	char *buf = xmalloc(want + 1);
	size_t got = 0;
	while (got < want) {
		ssize_t n = pread(fd, buf + got, want - got, off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*len = got;
	return buf;
}

/* The message of a "transfer logs" line, or NULL; *time gets its time. */
static json_object *
log_message(const char *line)
{
	json_object *j = json_tokener_parse(line);
	json_object *ev, *args, *a0, *t;
	json_object *out = NULL;
	if (j != NULL && json_object_object_get_ex(j, "event", &ev) &&
	    strcmp(json_object_get_string(ev), "transfer logs") == 0 &&
	    json_object_object_get_ex(j, "args", &args) && json_object_is_type(args, json_type_array) &&
	    (a0 = json_object_array_get_idx(args, 0)) != NULL &&
	    json_object_is_type(a0, json_type_string)) {
		out = json_object_new_object();
		if (json_object_object_get_ex(j, "time", &t) && json_object_is_type(t, json_type_string))
			json_object_object_add(out, "time", json_object_get(t));
		json_object_object_add(out, "message", json_object_get(a0));
	}
	if (j != NULL)
		json_object_put(j);
	return out;
}

int
log_cursor_poll(struct log_cursor *c, const struct wx_state *st, const char *uuid,
    int (*send)(void *ctx, json_object *msg), void *ctx)
{
	char *path = wx_state_file(st, uuid, ".events");
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(path);
	if (fd < 0)
		return 0;   /* none yet */
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return 0;
	}
	/* Trimmed (rewritten with its newest half): read it again from the
	 * start, after the last line already sent if it is still there. */
	bool resync = false;
	if (c->started && (sb.st_ino != c->ino || sb.st_dev != c->dev || sb.st_size < c->off)) {
		c->off = 0;
		resync = c->last_line != NULL;
	}
	c->ino = sb.st_ino;
	c->dev = sb.st_dev;
	if (sb.st_size <= c->off) {
		close(fd);
		c->started = true;
		return 0;
	}
	size_t len;
	char *buf = read_from(fd, c->off, sb.st_size, &len);
	close(fd);
	/* Only complete lines; a line being appended is read next time. */
	char *end = memrchr(buf, '\n', len);
	if (end == NULL) {
		free(buf);
		c->started = true;
		return 0;
	}
	*end = '\0';
	c->off += (off_t)(end - buf) + 1;

	size_t nlines = 0;
	for (char *p = buf; p != NULL; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		nlines++;
	char **lines = xcalloc(nlines, sizeof *lines);
	size_t i = 0;
	for (char *p = buf; p != NULL && i < nlines; i++) {
		lines[i] = p;
		p = strchr(p, '\n');
		if (p != NULL)
			*p++ = '\0';
	}
	size_t from = 0;
	if (resync) {
		for (size_t k = nlines; k > 0; k--)
			if (strcmp(lines[k - 1], c->last_line) == 0) {
				from = k;
				break;
			}
	}
	/* A new stream starts with the last BACKLOG messages. */
	size_t skip = 0;
	if (!c->started) {
		size_t msgs = 0;
		for (size_t k = from; k < nlines; k++) {
			json_object *m = log_message(lines[k]);
			if (m != NULL) {
				msgs++;
				json_object_put(m);
			}
		}
		skip = msgs > BACKLOG ? msgs - BACKLOG : 0;
	}
	c->started = true;
	int rc = 0;
	for (size_t k = from; k < nlines && rc == 0; k++) {
		json_object *m = log_message(lines[k]);
		if (m == NULL)
			continue;
		if (skip > 0) {
			skip--;
			json_object_put(m);
			continue;
		}
		rc = send(ctx, m);
	}
	if (nlines > 0) {
		free(c->last_line);
		c->last_line = xstrdup(lines[nlines - 1]);
	}
	free(lines);
	free(buf);
	return rc;
}
