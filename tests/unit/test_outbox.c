/* The outbox files: queueing, the one-callback-per-transfer rule, locks,
 * tombstones, rejected/, redelivery scheduling and expiry, pruning. */
#include "autoconf.h"

#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "outbox.h"
#include "panel.h"
#include "record.h"
#include "state.h"
#include "tap.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define UUID "0b2a1c3d-1111-4222-8333-444455556666"
#define UUID2 "0b2a1c3d-1111-4222-8333-777777777777"

static char root[] = "/tmp/wx-test-outbox.XXXXXX";
static struct wx_state st;
static struct wx_config *cfg;

static char *
path_in(const char *dir, const char *uuid, const char *tid)
{
	char *name = wx_outbox_name(uuid, tid);
	char *p = wx_path_join(dir, name);
	free(name);
	return p;
}

static bool
exists(const char *dir, const char *uuid, const char *tid)
{
	char *p = path_in(dir, uuid, tid);
	bool yes = access(p, F_OK) == 0;
	free(p);
	return yes;
}

static char *
slurp(const char *dir, const char *uuid, const char *tid)
{
	char *p = path_in(dir, uuid, tid);
	const char *why;
	char *text = wx_read_small_file(p, 1 << 20, &why);
	free(p);
	return text;
}

static char *sent;

static void
test_transfer_ids(void)
{
	ok(wx_outbox_valid_transfer_id("0b2a1c3d-1111-4222-8333-444455556666"), "a uuid is a transfer id");
	ok(wx_outbox_valid_transfer_id("t1700000000"), "t<created_at> is a transfer id");
	ok(!wx_outbox_valid_transfer_id(""), "empty is not");
	ok(!wx_outbox_valid_transfer_id("../x"), "a path is not");
	ok(!wx_outbox_valid_transfer_id(".hidden"), "a leading dot is not");
	ok(!wx_outbox_valid_transfer_id("a b"), "a space is not");
	char longid[66];
	memset(longid, 'a', 65);
	longid[65] = '\0';
	ok(!wx_outbox_valid_transfer_id(longid), "65 characters is too long");
	longid[64] = '\0';
	ok(wx_outbox_valid_transfer_id(longid), "64 are fine");
	struct wx_record r;
	wx_record_init(&r, UUID, WX_ROLE_SOURCE);
	r.created_at = 1700000000;
	char buf[80];
	is_str(wx_panel_transfer_id(&r, buf, sizeof buf), "t1700000000",
	    "no request id: t<created_at>");
	wx_strlcpy(r.request_id, UUID2, sizeof r.request_id);
	is_str(wx_panel_transfer_id(&r, buf, sizeof buf), UUID2, "else the request id");
	wx_record_clear(&r);
}

static void
test_bodies(void)
{
	struct wx_outbox_entry e = { .kind = WX_CALLBACK_SUCCESS, .fd = -1 };
	char *b = wx_outbox_body(&e);
	is_str(b, "null", "success sends the 4 bytes null, as Wings");
	free(b);
	e.kind = WX_CALLBACK_FAILURE;
	e.reason = "checksum \"mismatch\"\nline two /x";
	b = wx_outbox_body(&e);
	is_str(b, "{\"error\":\"checksum \\\"mismatch\\\"\\nline two /x\"}",
	    "failure sends {\"error\": reason}, JSON-escaped");
	free(b);
}

static void
test_queue(void)
{
	struct wx_outbox_entry e, e2;
	char detail[512];
	is_int(wx_outbox_queue(&st, UUID, "tid1", WX_CALLBACK_SUCCESS, NULL, &e, detail,
	    sizeof detail), WX_OUTBOX_Q_NEW, "a new callback is queued");
	ok(e.fd >= 0, "and the caller holds its lock");
	char *p = path_in(st.outbox, UUID, "tid1");
	struct stat sb;
	ok(stat(p, &sb) == 0 && (sb.st_mode & 0777) == 0600, "the queued file is 0600");
	free(p);
	char *text = slurp(st.outbox, UUID, "tid1");
	has_str(text, "\"kind\":\"success\"", "the file says what it is");
	free(text);

	is_int(wx_outbox_queue(&st, UUID, "tid1", WX_CALLBACK_SUCCESS, NULL, &e2, detail,
	    sizeof detail), WX_OUTBOX_Q_BUSY, "the same callback while another holds it: busy");
	errno = 0;
	is_int(wx_outbox_queue(&st, UUID, "tid1", WX_CALLBACK_FAILURE, "x", &e2, detail,
	    sizeof detail), -1, "a failure for a transfer with a queued success is refused");
	is_int(errno, EEXIST, "with EEXIST");
	has_str(detail, "success callback for this transfer is already queued", "and says why");

	e.attempts = 3;
	e.in_flight_at = 1700000000;	/* as if its holder died mid-POST */
	e.last_status = 503;
	e.last_error = xstrdup("HTTP 503: down");
	ok(wx_outbox_save(&st, &e) == 0, "an entry is updated in place");
	is_int(wx_outbox_queue(&st, UUID, "tid1", WX_CALLBACK_SUCCESS, NULL, &e2, detail,
	    sizeof detail), WX_OUTBOX_Q_BUSY, "the update kept the lock");
	text = slurp(st.outbox, UUID, "tid1");
	has_str(text, "\"last_error\":\"HTTP 503: down\"", "the update is on disk");
	free(text);
	wx_outbox_release(&e);

	is_int(wx_outbox_queue(&st, UUID, "tid1", WX_CALLBACK_SUCCESS, NULL, &e2, detail,
	    sizeof detail), WX_OUTBOX_Q_EXISTING, "once released, the existing entry is taken");
	is_int(e2.attempts, 3, "with its counters");
	ok(e2.in_flight_at == 0 && e2.unanswered == 1,
	    "a POST left in flight by a dead holder is counted as unanswered when taken");
	ok(wx_outbox_finish(&st, &e2, true, 204, "", NULL) == 0, "delivered: moved to sent/");
	ok(!exists(st.outbox, UUID, "tid1") && exists(sent, UUID, "tid1"),
	    "the queued file is gone, the tombstone is there");
	ok(e2.fd == -1, "finish releases the lock");

	is_int(wx_outbox_queue(&st, UUID, "tid1", WX_CALLBACK_SUCCESS, NULL, &e2, detail,
	    sizeof detail), WX_OUTBOX_Q_SENT, "queueing a delivered callback again: already sent");
	ok(!exists(st.outbox, UUID, "tid1"), "and nothing is queued");
	errno = 0;
	ok(wx_outbox_queue(&st, UUID, "tid1", WX_CALLBACK_FAILURE, "late", &e2, detail,
	    sizeof detail) < 0 && errno == EEXIST, "a failure after a delivered success is refused");
	has_str(detail, "already delivered", "the refusal names the delivered callback");
	enum wx_callback_kind k = WX_CALLBACK_FAILURE;
	is_int(wx_outbox_lookup(&st, UUID, "tid1", &k), WX_OUTBOX_SENT, "lookup finds it in sent/");
	is_int(k, WX_CALLBACK_SUCCESS, "with its kind");

	/* rejected/ */
	is_int(wx_outbox_queue(&st, UUID, "tid2", WX_CALLBACK_SUCCESS, NULL, &e, detail,
	    sizeof detail), WX_OUTBOX_Q_NEW, "another transfer gets its own callback");
	ok(wx_outbox_finish(&st, &e, false, 422, "{\"errors\":[{\"detail\":\"nope\"}]}",
	    "the panel answered 422") == 0, "rejected: moved to rejected/");
	text = slurp(st.rejected, UUID, "tid2");
	has_str(text, "\"status\":422", "the rejected file has the status");
	has_str(text, "nope", "and the panel's answer");
	free(text);
	is_int(wx_outbox_queue(&st, UUID, "tid2", WX_CALLBACK_SUCCESS, NULL, &e, detail,
	    sizeof detail), WX_OUTBOX_Q_REJECTED, "a rejected callback is not queued again");
	is_int(wx_outbox_lookup(&st, UUID, "nope", NULL), WX_OUTBOX_NONE, "lookup of nothing: none");

	errno = 0;
	ok(wx_outbox_queue(&st, "not-a-uuid", "tid", WX_CALLBACK_SUCCESS, NULL, &e, detail,
	    sizeof detail) < 0 && errno == EINVAL, "a bad uuid is EINVAL");
	ok(wx_outbox_queue(&st, UUID, "../../x", WX_CALLBACK_SUCCESS, NULL, &e, detail,
	    sizeof detail) < 0 && errno == EINVAL, "a bad transfer id is EINVAL");

	/* A malformed entry blocks a second callback rather than being ignored. */
	char *bad = path_in(st.outbox, UUID, "tid3");
	int fd = open(bad, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(fd >= 0 && write(fd, "{garbage", 8) == 8, "a broken entry is planted");
	close(fd);
	errno = 0;
	ok(wx_outbox_queue(&st, UUID, "tid3", WX_CALLBACK_FAILURE, "x", &e, detail,
	    sizeof detail) < 0 && errno == EEXIST, "a callback over an unreadable entry is refused");
	const char *why = NULL;
	char *name = wx_outbox_name(UUID, "tid3");
	errno = 0;
	ok(wx_outbox_take(&st, name, &e, &why) < 0 && errno == EINVAL, "take reports it malformed");
	unlink(bad);
	free(bad);
	free(name);
}

static void
test_race(void)
{
	/* 8 processes race to report success or failure for one transfer. */
	int pfd[2];
	if (pipe(pfd) < 0)
		exit(99);
	pid_t kids[8];
	for (int i = 0; i < 8; i++) {
		kids[i] = fork();
		if (kids[i] == 0) {
			struct wx_outbox_entry e;
			char detail[512];
			int r = wx_outbox_queue(&st, UUID2, "race", i % 2 ? WX_CALLBACK_FAILURE :
			    WX_CALLBACK_SUCCESS, "x", &e, detail, sizeof detail);
			char c = r == WX_OUTBOX_Q_NEW ? (i % 2 ? 'F' : 'S') :
			    r == WX_OUTBOX_Q_BUSY || r == WX_OUTBOX_Q_EXISTING ? 'b' :
			    r < 0 && errno == EEXIST ? 'x' : '?';
			if (write(pfd[1], &c, 1) != 1)
				_exit(1);
			usleep(200 * 1000); /* hold the lock while the others try */
			_exit(0);
		}
	}
	close(pfd[1]);
	char got[9] = "";
	for (int i = 0; i < 8; i++)
		if (read(pfd[0], &got[i], 1) != 1)
			got[i] = '!';
	close(pfd[0]);
	for (int i = 0; i < 8; i++)
		waitpid(kids[i], NULL, 0);
	int created = 0, unknown = 0;
	for (int i = 0; i < 8; i++) {
		created += got[i] == 'S' || got[i] == 'F';
		unknown += got[i] == '?' || got[i] == '!';
	}
	is_int(created, 1, "8 racing reporters: exactly one callback is queued (%s)", got);
	is_int(unknown, 0, "the others are told busy or refused");
	enum wx_callback_kind k;
	ok(wx_outbox_lookup(&st, UUID2, "race", &k) == WX_OUTBOX_QUEUED, "it is in the outbox");
}

struct seen {
	char actions[16][32];
	long status[16];
	int64_t next[16];
	int n;
};

static void
on_action(const struct wx_outbox_action *a, void *ctx)
{
	struct seen *s = ctx;
	if (s->n < 16) {
		wx_strlcpy(s->actions[s->n], a->action, sizeof s->actions[0]);
		s->status[s->n] = a->status;
		s->next[s->n] = a->next_attempt;
		s->n++;
	}
}

static void
plant(const char *uuid, const char *tid, int64_t created, int64_t next)
{
	struct wx_outbox_entry e;
	char detail[512];
	if (wx_outbox_queue(&st, uuid, tid, WX_CALLBACK_FAILURE, "worker died", &e, detail,
	    sizeof detail) != WX_OUTBOX_Q_NEW)
		exit(98);
	e.created_at = created;
	e.next_attempt_at = next;
	if (wx_outbox_save(&st, &e) < 0)
		exit(97);
	wx_outbox_release(&e);
}

static void
test_redeliver(void)
{
	/* Start from an empty outbox: remove the race leftover. */
	char *p = path_in(st.outbox, UUID2, "race");
	unlink(p);
	free(p);
	int64_t now = wx_now();
	struct seen s = { .n = 0 };
	struct wx_outbox_opts o = { .on_action = on_action, .ctx = &s };

	plant(UUID, "due", now - 100, now - 1);
	is_int(wx_outbox_redeliver(cfg, &st, &o), 1, "a due callback is attempted");
	is_str(s.actions[0], "unavailable", "the panel (127.0.0.1:1) is down: unavailable");
	is_int(s.status[0], 0, "no HTTP status for a refused connection");
	ok(s.next[0] >= now + 120 && s.next[0] <= wx_now() + 120,
	    "the next attempt is 2 min later (after 1 min for the first)");
	char *text = slurp(st.outbox, UUID, "due");
	has_str(text, "\"redeliveries\":1", "the redelivery is counted");
	has_str(text, "\"attempts\":1", "and the attempt");
	has_str(text, "onnect", "with the transport error");
	free(text);

	s.n = 0;
	is_int(wx_outbox_redeliver(cfg, &st, &o), 0, "not due yet: nothing happens");
	is_str(s.actions[0], "not-due", "it is reported as not due");

	s.n = 0;
	o.retry_now = true;
	o.dry_run = true;
	is_int(wx_outbox_redeliver(cfg, &st, &o), 1, "dry run with --retry-now: would deliver");
	is_str(s.actions[0], "would-deliver", "dry run says so");
	text = slurp(st.outbox, UUID, "due");
	has_str(text, "\"redeliveries\":1", "and changes nothing");
	free(text);

	s.n = 0;
	o.dry_run = false;
	is_int(wx_outbox_redeliver(cfg, &st, &o), 1, "--retry-now ignores the schedule");
	text = slurp(st.outbox, UUID, "due");
	has_str(text, "\"redeliveries\":2", "second redelivery counted");
	free(text);
	o.retry_now = false;

	/* Busy: a reporter holds it. */
	struct wx_outbox_entry held;
	const char *why;
	char *name = wx_outbox_name(UUID, "due");
	is_int(wx_outbox_take(&st, name, &held, &why), 1, "take locks an entry");
	s.n = 0;
	o.retry_now = true;
	is_int(wx_outbox_redeliver(cfg, &st, &o), 0, "a locked entry is left alone");
	is_str(s.actions[0], "busy", "and reported busy");
	o.retry_now = false;
	wx_outbox_release(&held);
	free(name);

	/* Expired after callback_retention. */
	plant(UUID, "old", now - cfg->transfers.callback_retention - 5, now - 1);
	s.n = 0;
	wx_outbox_redeliver(cfg, &st, &o);
	int expired = 0;
	for (int i = 0; i < s.n; i++)
		expired += strcmp(s.actions[i], "expired") == 0;
	is_int(expired, 1, "a callback older than callback_retention expires");
	ok(!exists(st.outbox, UUID, "old") && exists(st.rejected, UUID, "old"),
	    "it is moved to rejected/");
	text = slurp(st.rejected, UUID, "old");
	has_str(text, "callback_retention", "the rejected file says why");
	free(text);

	/* Crash between the tombstone and the unlink: dropped, not resent. */
	plant(UUID, "twice", now, now - 1);
	char *a = path_in(st.outbox, UUID, "twice"), *b = path_in(sent, UUID, "twice");
	ok(link(a, b) == 0, "a tombstone is planted beside a queued entry");
	s.n = 0;
	wx_outbox_redeliver(cfg, &st, &o);
	int dropped = 0;
	for (int i = 0; i < s.n; i++)
		dropped += strcmp(s.actions[i], "dropped") == 0;
	is_int(dropped, 1, "an entry whose tombstone exists is dropped");
	ok(access(a, F_OK) < 0, "and removed from the queue");
	free(a);
	free(b);
}

static void
test_report_unavailable(void)
{
	struct wx_panel_answer ans;
	int64_t before = wx_now();
	int r = wx_panel_report_attempts(cfg, &st, UUID2, "rep", WX_CALLBACK_FAILURE, "disk full",
	    1, &ans);
	is_int(r, WX_PANEL_UNAVAILABLE, "report with the panel down: unavailable");
	is_int(ans.attempts, 1, "one attempt as asked");
	has_str(ans.detail, "onnect", "the detail is the transport error");
	char *text = slurp(st.outbox, UUID2, "rep");
	has_str(text, "\"reason\":\"disk full\"", "the callback stays queued with its reason");
	free(text);
	struct wx_outbox_entry e;
	const char *why;
	char *name = wx_outbox_name(UUID2, "rep");
	if (wx_outbox_take(&st, name, &e, &why) == 1) {
		ok(e.next_attempt_at >= before + 60, "the watchdog's first try is 1 min later");
		is_int(e.redeliveries, 0, "no redelivery yet");
		wx_outbox_release(&e);
	} else {
		ok(0, "the entry can be taken");
		ok(0, "-");
	}
	free(name);
	errno = 0;
	ok(wx_panel_report_attempts(cfg, &st, UUID2, "rep", WX_CALLBACK_SUCCESS, NULL, 1, &ans) < 0 &&
	    errno == EEXIST, "a success after a queued failure is refused");
}

static void
test_prune(void)
{
	char *old = wx_path_join(sent, "old.json"), *fresh = wx_path_join(sent, "fresh.json");
	char *tmp = wx_path_join(st.outbox, ".x.json.AbCdEf");
	const char *files[] = { old, fresh, tmp };
	for (int i = 0; i < 3; i++) {
		int fd = open(files[i], O_WRONLY | O_CREAT, 0600);
		close(fd);
	}
	struct timespec ts[2] = { { wx_now() - 8 * 86400, 0 }, { wx_now() - 8 * 86400, 0 } };
	utimensat(AT_FDCWD, old, ts, 0);
	utimensat(AT_FDCWD, tmp, ts, 0);
	is_int(wx_outbox_prune_sent(&st, 7 * 86400, true), 2, "dry run counts what would go");
	ok(access(old, F_OK) == 0, "and removes nothing");
	is_int(wx_outbox_prune_sent(&st, 7 * 86400, false), 2, "old tombstones and temp files go");
	ok(access(old, F_OK) < 0 && access(tmp, F_OK) < 0, "they are gone");
	ok(access(fresh, F_OK) == 0, "a fresh tombstone stays");
	char *lock = wx_path_join(st.outbox, ".lock");
	ok(access(lock, F_OK) == 0, "the outbox lock file stays");
	free(lock);
	free(old);
	free(fresh);
	free(tmp);
}

int
main(void)
{
	wx_log_init("test_outbox");
	wx_log_set_level(WX_LOG_ERROR);
	if (mkdtemp(root) == NULL)
		return 99;
	char *state_dir = wx_path_join(root, "state");
	char err[512];
	if (wx_state_open(&st, state_dir, err, sizeof err) < 0) {
		printf("Bail out! %s\n", err);
		return 1;
	}
	sent = wx_path_join(st.outbox, "sent");
	char *cfg_path = wx_path_join(root, "config.yml");
	char *yml = xasprintf("uuid: 00000000-0000-4000-8000-000000000001\ntoken_id: tid\n"
	    "token: secret\nremote: http://127.0.0.1:1\nremote_query:\n  timeout: 2\n"
	    "system:\n  data: %s/data\n  transfers:\n    state_directory: %s\n", root, state_dir);
	int fd = open(cfg_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || wx_write_all(fd, yml, strlen(yml)) < 0)
		return 99;
	close(fd);
	cfg = wx_config_load(cfg_path, err, sizeof err);
	if (cfg == NULL) {
		printf("Bail out! %s\n", err);
		return 1;
	}
	test_transfer_ids();
	test_bodies();
	test_queue();
	test_race();
	test_redeliver();
	test_report_unavailable();
	test_prune();
	wx_config_free(cfg);
	wx_state_close(&st);
	wx_remove_tree(root);
	free(state_dir);
	free(sent);
	free(cfg_path);
	free(yml);
	return tap_done();
}
