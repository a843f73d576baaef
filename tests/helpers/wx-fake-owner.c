/*
 * wx-fake-owner: plays the owner of a transfer for the watchdog tests.  It
 * takes the transfer's lock, writes an active record (and, with --staging, a
 * staging directory with a few files), writes its pid to --ready FILE, and
 * sleeps until signalled.  kill -9 it to simulate a worker that died.
 *
 *   wx-fake-owner CONFIG UUID source|destination [--status S] [--phase P]
 *       [--progress-age SECONDS] [--age SECONDS] [--staging] [--record-pid self|0]
 *       [--on-cancel finish|ignore|exit] [--ready FILE]
 *
 * On SIGUSR2 with the cancel marker present: finish = behave like a real
 * owner (record cancelled, staging removed, failure reported through the
 * outbox, exit 0); ignore = keep sleeping (a hung owner: the watchdog must
 * kill it); exit = exit 3 without touching anything.
 */
#include "autoconf.h"

#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "panel.h"
#include "program.h"
#include "record.h"
#include "state.h"
#include "util.h"
#include "uuid.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr2, got_term;

static void
on_usr2(int sig)
{
	(void)sig;
	got_usr2 = 1;
}

static void
on_term(int sig)
{
	(void)sig;
	got_term = 1;
}

static int
die(const char *what)
{
	fprintf(stderr, "wx-fake-owner: %s\n", what);
	return 64;
}

int
main(int argc, char **argv)
{
	wx_log_init("wx-fake-owner");
	if (argc < 4)
		return die("usage: wx-fake-owner CONFIG UUID source|destination [options]");
	const char *cfg_path = argv[1], *uuid = argv[2], *role = argv[3];
	const char *status = "processing", *phase = NULL, *on_cancel = "finish", *ready = NULL;
	int64_t progress_age = 0, age = 0;
	bool staging = false, pid_zero = false;
	static const struct option opts[] = {
		{ "status", required_argument, NULL, 's' },
		{ "phase", required_argument, NULL, 'p' },
		{ "progress-age", required_argument, NULL, 'g' },
		{ "age", required_argument, NULL, 'a' },
		{ "staging", no_argument, NULL, 'S' },
		{ "record-pid", required_argument, NULL, 'r' },
		{ "on-cancel", required_argument, NULL, 'c' },
		{ "ready", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	optind = 4;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': status = optarg; break;
		case 'p': phase = optarg; break;
		case 'g':
			if (wx_parse_i64(optarg, 0, 1000000000, &progress_age) != NULL)
				return die("bad --progress-age");
			break;
		case 'a':
			if (wx_parse_i64(optarg, 0, 1000000000, &age) != NULL)
				return die("bad --age");
			break;
		case 'S': staging = true; break;
		case 'r': pid_zero = strcmp(optarg, "0") == 0; break;
		case 'c': on_cancel = optarg; break;
		case 'R': ready = optarg; break;
		default: return die("bad option");
		}
	}
	struct wx_config *cfg = wx_cli_load_config(cfg_path);
	if (cfg == NULL)
		return 64;
	struct wx_state st;
	char err[512];
	if (wx_state_open(&st, cfg->transfers.state_directory, err, sizeof err) < 0)
		return die(err);
	int lock = -1;
	if (wx_lock_try(&st, uuid, &lock) != WX_LOCK_ACQUIRED)
		return die("the transfer lock is taken");
	struct wx_record r;
	bool dest = strcmp(role, "destination") == 0;
	wx_record_init(&r, uuid, dest ? WX_ROLE_DESTINATION : WX_ROLE_SOURCE);
	wx_uuid_random(r.request_id);
	r.status = strcmp(status, "pending") == 0 ? WX_ST_PENDING :
	    strcmp(status, "cancelling") == 0 ? WX_ST_CANCELLING : WX_ST_PROCESSING;
	wx_strlcpy(r.phase, phase ? phase : dest ? "receiving" : "streaming", sizeof r.phase);
	r.created_at -= age;
	r.progress_at -= progress_age;
	r.pid = pid_zero ? 0 : getpid();
	r.bytes_read = 12345;
	char *stage = NULL;
	if (staging) {
		char *base = wx_path_join(cfg->data_directory, ".wingxfer-staging");
		stage = wx_path_join(base, uuid);
		free(base);
		char *sub = wx_path_join(stage, "world/region");
		if (wx_mkdirs(sub, 0700) < 0)
			return die("cannot create the staging directory");
		char *f = wx_path_join(sub, "r.0.0.mca");
		int fd = open(f, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || wx_write_all(fd, "half a region file", 18) < 0)
			return die("cannot write into staging");
		close(fd);
		free(f);
		free(sub);
	}
	if (wx_record_save(&st, &r) < 0)
		return die("cannot save the record");
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (ready) {
		char *tmp = xasprintf("%s.tmp", ready);
		char *pid = xasprintf("%d\n", (int)getpid());
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || wx_write_all(fd, pid, strlen(pid)) < 0 || close(fd) < 0 ||
		    rename(tmp, ready) < 0)
			return die("cannot write --ready");
		free(tmp);
		free(pid);
	}
	int rc = 0;
	for (;;) {
		pause();
		if (got_term)
			break;
		if (!got_usr2)
			continue;
		got_usr2 = 0;
		if (!wx_cancel_requested(&st, uuid, NULL, 0) || strcmp(on_cancel, "ignore") == 0)
			continue;
		if (strcmp(on_cancel, "exit") == 0) {
			rc = 3;
			break;
		}
		/* finish: what a well-behaved owner does. */
		if (stage)
			(void)wx_remove_tree(stage);
		r.status = WX_ST_CANCELLED;
		r.finished_at = wx_now();
		wx_record_set_error(&r, "The transfer was cancelled.");
		r.callback = xstrdup("failure");
		struct wx_panel_answer ans;
		(void)wx_panel_report_attempts(cfg, &st, uuid, r.request_id, WX_CALLBACK_FAILURE,
		    "The transfer was cancelled.", 1, &ans);
		if (wx_record_save(&st, &r) < 0)
			rc = die("cannot save the record");
		wx_cancel_clear(&st, uuid);
		break;
	}
	wx_record_clear(&r);
	free(stage);
	close(lock);
	wx_state_close(&st);
	wx_config_free(cfg);
	return rc;
}
