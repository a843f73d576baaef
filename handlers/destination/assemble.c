/*
 * The chunked upload's assembler (docs/protocol.md §5): one detached process
 * per upload, started by the create request (or by the first request after
 * an assembler died) with the transfer's lock on --lock-fd.  It runs the
 * single POST's pipeline (sandbox.c, finish.c) with the body read from the
 * spool in offset order instead of from a request.  Each chunk consumed is
 * kept, renamed .done-<offset> (upload.h: UP_DONE_PREFIX), so that a new
 * assembler after this one died extracts the whole body again from this
 * node's disk instead of asking the source for it; while keeping one would
 * leave less than disk_reserve + UP_KEEP_MARGIN free, the kept ones are
 * dropped (.dropped marks it: a restart then needs the body from offset 0).
 * While the upload is receiving and the next chunk is not there it waits,
 * giving up after system.transfers.resume_window without a new chunk.  The outcome goes to the record (as for the single
 * POST: panel callback, events) and to the upload's state, which says
 * completed (with the single POST's 200 JSON), failed or cancelled before
 * the lock is released.
 */
#include "autoconf.h"

#include "destination.h"
#include "upload.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "priority.h"
#include "panel.h"
#include "program.h"
#include "spawn.h"
#include "state.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 100
#define ALIVE_MS 10000

struct spool {
	char id[UP_ID_LEN + 1];
	char *dir;
	int fd;                 /* the chunk being read, or -1 */
	char *path;             /* its name */
	bool path_done;         /* it was consumed before (a restart reads it again) */
	bool keep;              /* consumed chunks are kept (not dropped yet) */
	int64_t reserve;        /* system.transfers.disk_reserve */
	int64_t pos;            /* bytes of the body consumed */
	int64_t chunk_at;       /* the offset of the chunk being read */
	int64_t last_chunk_ms;  /* when the last chunk was opened */
	int64_t window_ms;      /* system.transfers.resume_window */
	int64_t acked;          /* as last seen in the state */
	int64_t alive_ms;       /* when the record last said we wait */
	int watch;              /* up_watch_open of dir: a committed chunk wakes the reader */
	int64_t idle_ms;        /* spent waiting for the next chunk (for the debug log) */
};

int
up_spawn_assembler(const struct wx_config *cfg, const char *id, int lock_fd, char *err,
    size_t errsize)
{
	char *dir = wx_self_dir();
	char *path = xasprintf("%s/wingxfer-destination", dir);
	char lock_arg[16], log_arg[16];
	snprintf(lock_arg, sizeof lock_arg, "%d", WX_SPAWN_FIRST_FD);
	snprintf(log_arg, sizeof log_arg, "%d", WX_SPAWN_FIRST_FD + 1);
	/* Its log goes where this program's goes (the web server's error log,
	 * the journal, spawn-fcgi's stderr): that is where an admin looks. */
	char *argv[] = { path, "--assemble", (char *)id, "--lock-fd", lock_arg, "--log-fd",
		log_arg, "--config", cfg->path, NULL };
	int keep[] = { lock_fd, STDERR_FILENO };
	pid_t pid = wx_spawn_detached(path, argv, keep, WX_ARRAY_LEN(keep), err, errsize);
	free(path);
	free(dir);
	return (int)pid;
}

/* The record's extra.chunked from the upload's state. */
static void
note_state(struct receiver *rx, const struct upload *up)
{
	json_object_object_add(rx->rec.extra, "chunked", up_chunked_json(up));
}

/* Opens the chunk at s->pos (new, or kept by an earlier assembler): 1
 * opened, 0 not there (yet), -1 after rx_fail. */
static int
open_next(struct receiver *rx, struct spool *s)
{
	for (int done = 0; done <= 1; done++) {
		free(s->path);
		s->path = xasprintf("%s/%s%020lld", s->dir, done ? UP_DONE_PREFIX : "",
		    (long long)s->pos);
		s->path_done = done;
		s->fd = open(s->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (s->fd >= 0) {
			s->last_chunk_ms = wx_mono_ms();
			return 1;
		}
		if (errno != ENOENT)
			break;
	}
	if (errno == ENOENT)
		return 0;
	rx_detail(rx, "open %s: %s", s->path, strerror(errno));
	return rx_fail(rx, 500, "This node cannot read the upload's spool.");
}

/* Nothing to read at s->pos: 0 at the end of the body, 1 to look again,
 * -1 after rx_fail. */
static int
no_chunk(struct receiver *rx, struct spool *s)
{
	/* Under the upload's lock: a PATCH renames its chunk into the spool and
	 * then saves the offset, both under it. */
	struct upload up;
	int lfd = up_lock(rx->st, s->id);
	if (lfd < 0 || up_load(rx->st, s->id, &up) < 0) {
		rx_detail(rx, "upload state %s: %s", s->id, strerror(errno));
		if (lfd >= 0)
			close(lfd);
		return rx_fail(rx, 500, "This node cannot read the upload's state.");
	}
	close(lfd);
	int rc = 1;
	if (up.offset != s->acked) {
		s->acked = up.offset;
		note_state(rx, &up);
		rx_progress(rx, true);
	}
	if (up.state == UP_FAILED || up.state == UP_CANCELLED) {
		rc = rx_fail(rx, up.status > 0 ? up.status : 500, "%s", up.error[0] ? up.error :
		    "The upload ended.");
	} else if (up.offset < s->pos) {
		rc = rx_fail(rx, 500, "The upload's acknowledged offset went back while its "
		    "assembler ran; nothing was installed.");
	} else if (up.state == UP_FINISHING && up.offset == s->pos) {
		rx_log(rx, "The last chunk is in: %lld bytes received in chunks.", (long long)s->pos);
		up_sha_hex(up.sha, up.sha_len, rx->body_sha256);
		rc = 0;
	} else if (up.offset > s->pos && open_next(rx, s) != 0) {
		/* committed between our look and the state's: read it */
		rc = rx->status != 0 ? -1 : 1;
	} else if (up.offset > s->pos) {
		rx_detail(rx, "acknowledged %lld, no chunk at %lld", (long long)up.offset,
		    (long long)s->pos);
		rc = rx_fail(rx, 500, "An acknowledged chunk of the upload is missing from the "
		    "spool; nothing was installed.");
	} else if (wx_mono_ms() - s->last_chunk_ms < s->window_ms) {
		/* Waiting for the source within resume_window is progress for
		 * the watchdog's stall_timeout: this process bounds the wait. */
		if (wx_mono_ms() - s->alive_ms >= ALIVE_MS) {
			s->alive_ms = wx_mono_ms();
			rx->rec.progress_at = wx_now();
			rx_progress(rx, true);
		}
	} else {
		char w[32];
		wx_format_duration(s->window_ms / 1000, w, sizeof w);
		rc = rx_fail(rx, 408, "No chunk of the upload arrived for %s "
		    "(system.transfers.resume_window); nothing was installed.", w);
	}
	up_clear(&up);
	return rc;
}

/* Drops the kept chunks: the marker first (durably), so that a restart
 * never trusts a spool with holes. */
static void
drop_kept(struct spool *s, int64_t free_bytes)
{
	char b[32];
	wx_format_bytes(free_bytes > 0 ? free_bytes : 0, b, sizeof b);
	s->keep = false;
	if (wx_atomic_write(s->dir, UP_DROPPED, "", 0) < 0) {
		wx_warn("upload %s: cannot mark its spool: %s; the received chunks stay", s->id,
		    strerror(errno));
		return;
	}
	wx_warn("upload %s: only %s free for the spool: the chunks already extracted are "
	    "removed (if this assembler dies, the source sends the body again from offset 0)",
	    s->id, b);
	DIR *d = opendir(s->dir);
	struct dirent *e;
	size_t plen = strlen(UP_DONE_PREFIX);
	while (d != NULL && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, UP_DONE_PREFIX, plen) != 0)
			continue;
		char *f = wx_path_join(s->dir, e->d_name);
		if (unlink(f) < 0 && errno != ENOENT)
			wx_warn("cannot remove %s: %s", f, strerror(errno));
		free(f);
	}
	if (d != NULL)
		closedir(d);
}

/* A chunk read to its end: kept for a restart (renamed, so that the PATCH
 * handlers' flow control sees it consumed), or removed. */
static void
consumed(struct spool *s, int64_t start)
{
	if (s->path_done)
		return;
	if (s->keep) {
		int64_t free_bytes = wx_free_space(s->dir);
		if (free_bytes >= 0 && free_bytes < s->reserve + UP_KEEP_MARGIN)
			drop_kept(s, free_bytes);
	}
	if (s->keep) {
		char *done = xasprintf("%s/%s%020lld", s->dir, UP_DONE_PREFIX, (long long)start);
		int rc = rename(s->path, done);
		free(done);
		if (rc == 0)
			return;
		wx_warn("cannot rename %s: %s", s->path, strerror(errno));
	}
	if (unlink(s->path) < 0)
		wx_warn("cannot remove %s: %s", s->path, strerror(errno));
}

/* The receiver's body source: the spool, in offset order. */
static ssize_t
spool_read(struct receiver *rx, void *buf, size_t n)
{
	struct spool *s = rx->source_ctx;
	for (;;) {
		if (s->fd >= 0) {
			ssize_t r = read(s->fd, buf, n);
			if (r > 0) {
				s->pos += r;
				return r;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				rx_detail(rx, "read %s: %s", s->path, strerror(errno));
				return rx_fail(rx, 500, "This node cannot read the upload's spool.");
			}
			close(s->fd);
			s->fd = -1;
			/* Consumed: its room goes to the next chunk (flow control). */
			consumed(s, s->chunk_at);
			continue;
		}
		s->chunk_at = s->pos;
		int o = open_next(rx, s);
		if (o < 0)
			return -1;
		if (o > 0)
			continue;
		int w = no_chunk(rx, s);
		if (w <= 0)
			return w;
		if (rx_cancel_check(rx, false))
			return -1;
		int64_t t = wx_mono_ms();
		up_watch_wait(s->watch, POLL_MS);
		s->idle_ms += wx_mono_ms() - t;
	}
}

static void
on_interrupt(int sig)
{
	(void)sig;
	wx_interrupted = 1;
}

/* The outcome into the upload's state, before the lock is released. */
static void
save_outcome(struct receiver *rx, const char *id)
{
	int fd = up_lock(rx->st, id);
	struct upload up;
	if (fd < 0 || up_load(rx->st, id, &up) < 0) {
		wx_err("upload %s: cannot record its outcome: %s", id, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (rx->status == 0) {
		up.state = UP_COMPLETED;
		up.status = 200;
		json_object_put(up.result);
		up.result = json_object_get(rx->result);
	} else if (up.state != UP_FAILED) {
		/* A failed state (Repr-Digest) keeps its reason. */
		up.state = rx->cancelled && !rx->stopped_by_watchdog ? UP_CANCELLED : UP_FAILED;
		up.status = rx->status;
		wx_strlcpy(up.error, rx->error, sizeof up.error);
	}
	up.final_at = wx_now();
	if (up_save(rx->st, &up) < 0)
		wx_err("upload %s: cannot record its outcome: %s", id, strerror(errno));
	up_clear(&up);
	close(fd);
	char *spool = up_file(rx->st, id, ".spool");
	if (wx_remove_tree(spool) < 0 && errno != ENOENT)
		wx_warn("cannot remove %s: %s", spool, strerror(errno));
	free(spool);
}

/* With the lock held and the record loaded: the pipeline, then the outcome. */
static void
assemble(struct receiver *rx, struct spool *s, const struct upload *up)
{
	char boundary[WX_MP_MAX_BOUNDARY + 1];
	const char *why = wx_mp_boundary_from_content_type(up->body_type, boundary);
	json_object *server;
	if (json_object_object_get_ex(rx->rec.extra, "server", &server)) {
		bool present;
		rx->disk_limit = wx_panel_disk_limit(server, &present);
	}
	note_state(rx, up);
	wx_strlcpy(rx->rec.phase, WX_PHASE_RECEIVING, sizeof rx->rec.phase);
	rx->rec.pid = getpid();
	rx->rec.bytes_read = 0;
	rx->rec.bytes_sent = 0;
	rx->rec.files = 0;
	rx->last_log_ms = wx_mono_ms();
	rx_progress(rx, true);
	if (why != NULL)
		rx_fail(rx, 400, "The upload's body type is not multipart/form-data: %s.", why);
	else if (rx_make_staging(rx) == 0 && !rx_cancel_check(rx, true))
		(void)rx_sandbox_run(rx, boundary);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	rx_finish(rx);
	save_outcome(rx, s->id);
}

int
dest_assemble_main(int argc, char **argv)
{
	const char *id = NULL, *config = NULL;
	int64_t lock_fd = -1, log_fd = -1;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--assemble") == 0)
			id = argv[i + 1];
		else if (strcmp(argv[i], "--config") == 0)
			config = argv[i + 1];
		else if (strcmp(argv[i], "--lock-fd") == 0 &&
		    wx_parse_i64(argv[i + 1], 3, 1023, &lock_fd) == NULL)
			;
		else if (strcmp(argv[i], "--log-fd") == 0 &&
		    wx_parse_i64(argv[i + 1], 3, 1023, &log_fd) == NULL)
			;
		else
			lock_fd = -2;
	}
	if (log_fd >= 0 && log_fd != lock_fd) {
		if (dup2((int)log_fd, STDERR_FILENO) < 0 || close((int)log_fd) < 0)
			return 1;  /* stderr is /dev/null: nowhere to say it */
	}
	wx_log_init("wingxfer-destination");
	if (id == NULL || !up_valid_id(id) || lock_fd < 0 || argc % 2 != 1) {
		fprintf(stderr, "wingxfer-destination: --assemble ID --lock-fd N [--log-fd N] [--config FILE] "
		    "is started by wingxfer-destination itself (a chunked upload's assembler)\n");
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_interrupt; /* a DELETE's SIGUSR2: look at the cancel marker */
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	struct wx_config *cfg = wx_cli_load_config(config);
	if (cfg == NULL)
		return 1;
	/* Extracting, the hook and the install at the node's transfer
	 * priority, as the single POST's receiver: for the rest of its life. */
	struct wx_priority prio;
	wx_priority_lower(cfg, &prio);
	struct wx_state st;
	char err[512];
	if (wx_state_open(&st, cfg->transfers.state_directory, err, sizeof err) < 0) {
		wx_err("%s", err);
		wx_config_free(cfg);
		return 1;
	}
	struct upload up;
	int rc = 1;
	if (up_load(&st, id, &up) < 0) {
		wx_err("upload %s: its state cannot be read: %s", id, strerror(errno));
		goto out_state;
	}
	wx_log_set_transfer(up.server);
	if (wx_lock_adopt(&st, up.server, (int)lock_fd) < 0)
		goto out_up;
	struct receiver rx;
	rx_init(&rx, NULL, cfg);
	rx.st = &st;
	rx.lock_fd = (int)lock_fd;
	memcpy(rx.uuid, up.server, sizeof rx.uuid);
	if (wx_record_load(&st, rx.uuid, &rx.rec) < 0) {
		wx_err("upload %s: the transfer record of %s cannot be read: %s", id, rx.uuid,
		    strerror(errno));
		close(rx.lock_fd);
		goto out_up;
	}
	if (rx.rec.extra == NULL)
		rx.rec.extra = json_object_new_object();
	rx.started = true;
	rx.started_ms = wx_mono_ms();
	rx.body_checksum = up.body_checksum;
	rx_set_paths(&rx);
	struct spool s = { .fd = -1, .last_chunk_ms = wx_mono_ms(),
		.window_ms = cfg->transfers.resume_window * 1000, .acked = -1,
		.reserve = cfg->transfers.disk_reserve };
	wx_strlcpy(s.id, id, sizeof s.id);
	s.dir = up_file(&st, id, ".spool");
	s.watch = up_watch_open(s.dir);
	s.keep = up_spool_whole(&st, id);
	rx.source = spool_read;
	rx.source_ctx = &s;
	wx_info("upload %s: assembler started (restart %lld)", id, (long long)up.restarts);
	assemble(&rx, &s, &up);
	wx_debug("upload %s: assembler done; %lld ms of it waiting for chunks", id,
	    (long long)s.idle_ms);
	rc = rx.status == 0 ? 0 : 1;
	rx_release(&rx);
	free(s.path);
	free(s.dir);
	up_watch_close(s.watch);
	close(rx.lock_fd); /* last: the record and the upload are final */
out_up:
	up_clear(&up);
out_state:
	wx_state_close(&st);
	wx_config_free(cfg);
	return rc;
}
