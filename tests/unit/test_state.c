/* State directory: layout and modes, atomic records, flock liveness, events. */
#include "autoconf.h"

#include "fsutil.h"
#include "log.h"
#include "record.h"
#include "state.h"
#include "tap.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define UUID "0b2a1c3d-1111-4222-8333-444455556666"

static char root[] = "/tmp/wx-test-state.XXXXXX";

static int
mode_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static int
count_entries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	if (d)
		closedir(d);
	return n;
}

static void
test_layout(struct wx_state *st)
{
	is_int(mode_of(st->dir), 0700, "state dir is 0700");
	is_int(mode_of(st->transfers), 0700, "transfers/ is 0700");
	is_int(mode_of(st->outbox), 0700, "outbox/ is 0700");
	is_int(mode_of(st->rejected), 0700, "outbox/rejected/ is 0700");
	is_int(mode_of(st->tokens), 0700, "tokens/ is 0700");
	char err[256];
	struct wx_state bad;
	ok(wx_state_open(&bad, "/proc/wingxfer-cannot-exist", err, sizeof err) < 0,
	    "an impossible state dir is an error");
	has_str(err, "system.transfers.state_directory", "the error names the config key");
}

static void
test_records(struct wx_state *st)
{
	struct wx_record r, back;
	wx_record_init(&r, UUID, WX_ROLE_DESTINATION);
	r.status = WX_ST_PROCESSING;
	wx_strlcpy(r.phase, "receiving", sizeof r.phase);
	r.bytes_read = 5368709120LL;
	r.files = 42;
	r.rate = 1234.5;
	r.url = xstrdup("https://dest.example:8080/api/transfers");
	wx_record_set_error(&r, "checksum mismatch for %s", "archive");
	r.extra = json_object_new_object();
	json_object_object_add(r.extra, "disk_space", json_object_new_int(1024));
	ok(wx_record_save(st, &r) == 0, "a record is saved");
	char *path = wx_state_file(st, UUID, ".json");
	is_int(mode_of(path), 0600, "the record file is 0600");
	free(path);
	is_int(count_entries(st->transfers, "."), 2, "no temp file is left next to it");

	ok(wx_record_load(st, UUID, &back) == 0, "the record loads");
	is_str(back.uuid, UUID, "uuid round-trips");
	is_int(back.role, WX_ROLE_DESTINATION, "role round-trips");
	is_int(back.status, WX_ST_PROCESSING, "status round-trips");
	is_str(back.phase, "receiving", "phase round-trips");
	is_int(back.bytes_read, 5368709120LL, "64-bit counters round-trip");
	is_str(back.error, "checksum mismatch for archive", "error round-trips");
	ok(back.extra && json_object_get_int(json_object_object_get(back.extra, "disk_space")) == 1024,
	    "extra round-trips");
	ok(wx_status_active(back.status), "processing is active");
	wx_record_clear(&back);

	r.status = WX_ST_FAILED;
	ok(wx_record_save(st, &r) == 0 && wx_record_load(st, UUID, &back) == 0 &&
	    back.status == WX_ST_FAILED, "a second save replaces the record");
	ok(!wx_status_active(back.status), "failed is not active");
	wx_record_clear(&back);
	wx_record_clear(&r);

	errno = 0;
	ok(wx_record_load(st, "0b2a1c3d-1111-4222-8333-000000000000", &back) < 0 && errno == ENOENT,
	    "a missing record is ENOENT");
	ok(wx_record_load(st, "../../etc/passwd", &back) < 0 && errno == EINVAL,
	    "a non-UUID name is refused before touching the disk");

	const char *why;
	ok(wx_record_parse("{", 1, &back, &why) < 0, "truncated JSON is refused");
	ok(wx_record_parse("[]", 2, &back, &why) < 0, "a JSON array is refused");
	const char *bad_status = "{\"uuid\":\"" UUID "\",\"role\":\"source\",\"status\":\"weird\"}";
	ok(wx_record_parse(bad_status, strlen(bad_status), &back, &why) < 0, "an unknown status is refused");
	const char *bad_type = "{\"uuid\":\"" UUID "\",\"role\":\"source\",\"status\":\"failed\","
	    "\"bytes_read\":\"12\"}";
	ok(wx_record_parse(bad_type, strlen(bad_type), &back, &why) < 0, "a string counter is refused");
	const char *good = "{\"uuid\":\"" UUID "\",\"role\":\"source\",\"status\":\"completed\"}";
	ok(wx_record_parse(good, strlen(good), &back, &why) == 0, "a minimal record parses");
	wx_record_clear(&back);
}

static void
test_locks(struct wx_state *st)
{
	int fd = -1;
	is_int(wx_lock_try(st, UUID, &fd), WX_LOCK_ACQUIRED, "a free lock is acquired");
	int pfd[2];
	if (pipe(pfd) < 0)
		exit(99);
	pid_t child = fork();
	if (child == 0) {
		/* The child contends with the parent, then reports. */
		int cfd = -1;
		char r = (char)('0' + (wx_lock_try(st, UUID, &cfd) == WX_LOCK_BUSY));
		if (write(pfd[1], &r, 1) != 1)
			_exit(1);
		_exit(0);
	}
	char r = 0;
	if (read(pfd[0], &r, 1) != 1)
		r = 0;
	waitpid(child, NULL, 0);
	is_int(r, '1', "another process sees the lock BUSY");
	close(fd);
	is_int(wx_lock_probe(st, UUID), WX_LOCK_ACQUIRED, "after close, a probe finds it free");

	/* A child that holds the lock and is killed -9 frees it. */
	child = fork();
	if (child == 0) {
		int cfd = -1;
		if (wx_lock_try(st, UUID, &cfd) != WX_LOCK_ACQUIRED)
			_exit(1);
		char ready = 'r';
		if (write(pfd[1], &ready, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	if (read(pfd[0], &r, 1) != 1)
		r = 0;
	is_int(r, 'r', "the child holds the lock");
	is_int(wx_lock_probe(st, UUID), WX_LOCK_BUSY, "while the owner lives, the probe says BUSY");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	is_int(wx_lock_probe(st, UUID), WX_LOCK_ACQUIRED, "a killed owner frees the lock");
	close(pfd[0]);
	close(pfd[1]);

	errno = 0;
	is_int(wx_lock_try(st, "not-a-uuid", &fd), WX_LOCK_ERROR, "a bad uuid is an error, not a lock");
}

static void
test_cancel_and_events(struct wx_state *st)
{
	char why[64] = "x";
	ok(!wx_cancel_requested(st, UUID, why, sizeof why), "no cancel request at first");
	ok(wx_cancel_request(st, UUID, NULL) == 0 && wx_cancel_requested(st, UUID, why, sizeof why),
	    "a cancel request is seen");
	is_str(why, "", "a DELETE's request carries no reason");
	ok(wx_cancel_request(st, UUID, "wingxfer-watchdog: stalled") == 0 &&
	    wx_cancel_requested(st, UUID, why, sizeof why) && strcmp(why, "wingxfer-watchdog: stalled") == 0,
	    "the watchdog's request carries who asked and why");
	wx_cancel_clear(st, UUID);
	ok(!wx_cancel_requested(st, UUID, NULL, 0), "cleared");

	ok(wx_events_append(st, UUID, "transfer status", "processing") == 0, "an event is appended");
	ok(wx_events_append(st, UUID, "transfer logs", "Streaming archive to destination...") == 0,
	    "a log event is appended");
	json_object *tail = wx_events_tail(st, UUID, 20);
	is_int(json_object_array_length(tail), 1, "the tail has only the log lines");
	is_str(json_object_get_string(json_object_array_get_idx(tail, 0)),
	    "Streaming archive to destination...", "the log line text");
	json_object_put(tail);

	char line[200];
	memset(line, 'x', sizeof line - 1);
	line[sizeof line - 1] = '\0';
	for (int i = 0; i < 6000; i++)
		wx_events_append(st, UUID, "transfer logs", line);
	char *path = wx_state_file(st, UUID, ".events");
	struct stat sb;
	ok(stat(path, &sb) == 0 && sb.st_size <= WX_EVENTS_MAX_BYTES, "the events file stays bounded");
	is_int(mode_of(path), 0600, "the events file is 0600");
	free(path);
	tail = wx_events_tail(st, UUID, 20);
	is_int(json_object_array_length(tail), 20, "the tail gives the last 20 lines");
	json_object_put(tail);
}

int
main(void)
{
	wx_log_init("test_state");
	if (mkdtemp(root) == NULL)
		return 99;
	char *dir = xasprintf("%s/state", root);
	struct wx_state st;
	char err[256];
	ok(wx_state_open(&st, dir, err, sizeof err) == 0, "the state directory is created");
	test_layout(&st);
	test_records(&st);
	test_locks(&st);
	test_cancel_and_events(&st);
	wx_state_close(&st);
	free(dir);
	ok(wx_remove_tree(root) == 0, "the test tree is removed");
	return tap_done();
}
