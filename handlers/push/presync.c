/*
 * The live pre-sync body, source side (presync.h, docs/presync.md).
 *
 * Each round is four multipart parts, written by the producer thread into
 * a ring buffer that body.c reads (handlers/destination/presync.c reads
 * them on the other side):
 *   presync            "round=<k> final=<0|1> checksum=texts"
 *   presync_ops        the op list (wx_ps_delta_format)
 *   presync_data       the ops' data, compressed with the job's codec
 *   presync_manifest   the tree as the round sent it (with the SHA-256 of
 *                      what was sent), formatted after the data
 * The checksum part after the final round is the SHA-256 of every ops and
 * manifest part (checksum=texts): the manifests' file hashes, which the
 * destination verifies each round against, stand for the data.
 * The destination applies and verifies each round as it arrives, so the
 * source always knows what it holds: the manifest of the last round.
 */
#include "autoconf.h"

#include "presync.h"
#include "push.h"
#include "config.h"
#include "log.h"
#include "presync_delta.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RING_SIZE (1024 * 1024)
#define WAIT_POLL_MS 200
#define MAX_ROUNDS 65           /* presync_max_rounds (at most 64) + the final one */

struct round_stat {
	int64_t round;
	bool final;
	size_t ops, entries;
	int64_t data;           /* delta data bytes (before compression) */
	int64_t ms;             /* scan to the last part written */
	int64_t scan_ms;        /* scan, compare and plan */
};

struct presync {
	struct job *job;
	int rootfd;
	struct wx_ps_manifest first;    /* round 1's scan (presync_choose); the thread takes it */
	char boundary[61];
	pthread_t thread;
	bool started;
	bool eof;                       /* main: the pipe ended */
	int64_t stopped_ms;             /* main: when the server was stopped (monotonic) */
	int64_t reported_ms;            /* main: when extra.presync was last made */
	int reported_nstats;            /* ... with this many rounds in it */
	bool reported_stopped;          /* ... and the server stopped or not */

	pthread_mutex_t mu;             /* guards what follows */
	pthread_cond_t cv;
	/* The ring: thread -> body.c, RING_SIZE bytes, len of them from head on. */
	unsigned char *ring;
	size_t head, len;
	bool closed;                    /* thread: no more bytes */
	pthread_cond_t ring_cv;         /* len changed, closed, or abort */
	bool want_stop;                 /* thread: the next round is final, stop the server */
	bool stopped;                   /* main: it is stopped */
	bool abort;                     /* main: end the thread */
	bool failed;
	char why[1024];
	struct round_stat stats[MAX_ROUNDS];
	int nstats, reported;
	int64_t round;                  /* the round being made */
	bool round_final;
	int64_t round_data, round_sent; /* its planned data bytes, and those read so far */
	char sha_hex[65];

	/* thread only */
	struct wx_ps_manifest prev;
	struct wx_sha256 sum_sha;        /* every ops and manifest part (the checksum part) */
	struct wx_compressor *comp;
	bool first_written;
};

/* --- the producer thread --- */

static void thread_fail(struct presync *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
thread_fail(struct presync *ps, const char *fmt, ...)
{
	pthread_mutex_lock(&ps->mu);
	if (!ps->failed) {
		ps->failed = true;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ps->why, sizeof ps->why, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&ps->mu);
}

static bool
aborted(struct presync *ps)
{
	pthread_mutex_lock(&ps->mu);
	bool a = ps->abort;
	pthread_mutex_unlock(&ps->mu);
	return a;
}

/* Body bytes into the ring, waiting for room.  0, or -1 (abort). */
static int
put(struct presync *ps, const void *p, size_t n)
{
	const unsigned char *s = p;
	pthread_mutex_lock(&ps->mu);
	while (n > 0 && !ps->abort) {
		if (ps->len == RING_SIZE) {
			pthread_cond_wait(&ps->ring_cv, &ps->mu);
			continue;
		}
		size_t tail = (ps->head + ps->len) % RING_SIZE;
		size_t k = RING_SIZE - ps->len;
		if (k > RING_SIZE - tail)
			k = RING_SIZE - tail;
		if (k > n)
			k = n;
		memcpy(ps->ring + tail, s, k);
		ps->len += k;
		s += k;
		n -= k;
		pthread_cond_broadcast(&ps->ring_cv);
	}
	bool a = ps->abort;
	pthread_mutex_unlock(&ps->mu);
	return a ? -1 : 0;
}

static int
put_part_header(struct presync *ps, const char *name, const char *extra)
{
	char h[512];
	int n = snprintf(h, sizeof h, "%s--%s\r\nContent-Disposition: form-data; name=\"%s\"%s"
	    "\r\n\r\n", ps->first_written ? "\r\n" : "", ps->boundary, name, extra);
	ps->first_written = true;
	return put(ps, h, (size_t)n);
}

/* The compressor's output, passed on. */
static int
data_sink(void *ctx, const void *buf, size_t len)
{
	struct presync *ps = ctx;
	return put(ps, buf, len);
}

/* A text part's bytes: hashed (the checksum part, checksum=texts) and passed on. */
static int
put_text(struct presync *ps, const void *p, size_t n)
{
	wx_sha256_update(&ps->sum_sha, p, n);
	return put(ps, p, n);
}

static int
data_emit(void *ctx, const void *buf, size_t n)
{
	struct presync *ps = ctx;
	if (ps->comp == NULL) {
		char err[300];
		ps->comp = wx_compressor_new(ps->job->codec, tar_codec_level(ps->job),
		    (int)ps->job->cfg->transfers.compression_threads, data_sink, ps, err, sizeof err);
		if (ps->comp == NULL) {
			thread_fail(ps, "The pre-sync data could not be compressed: %s.", err);
			return -1;
		}
	}
	if (wx_compressor_write(ps->comp, buf, n) < 0) {
		if (!aborted(ps))
			thread_fail(ps, "The pre-sync data could not be compressed: %s.",
			    wx_compressor_error(ps->comp));
		return -1;
	}
	pthread_mutex_lock(&ps->mu);
	ps->round_sent += (int64_t)n;
	bool a = ps->abort;
	pthread_mutex_unlock(&ps->mu);
	return a ? -1 : 0;
}

/* One round's four parts.  0, or -1 (failed or aborted). */
static int
write_round(struct presync *ps, int64_t round, bool final, struct wx_ps_manifest *cur,
    struct wx_ps_delta *d)
{
	char text[64], err[1024];
	int n = snprintf(text, sizeof text, "round=%lld final=%d checksum=texts", (long long)round,
	    final ? 1 : 0);
	if (put_part_header(ps, "presync", "") < 0 || put(ps, text, (size_t)n) < 0)
		return -1;
	size_t len;
	char *ops = wx_ps_delta_format(d, &len);
	int rc = put_part_header(ps, "presync_ops", "");
	if (rc == 0)
		rc = put_text(ps, ops, len);
	free(ops);
	if (rc < 0)
		return -1;
	char extra[160];
	snprintf(extra, sizeof extra, "; filename=\"data.%s\"\r\nContent-Type: "
	    "application/octet-stream", ps->job->codec == WX_COMPRESS_ZSTD ? "zst" : "gz");
	if (put_part_header(ps, "presync_data", extra) < 0)
		return -1;
	if (wx_ps_delta_send(ps->rootfd, cur, d, data_emit, ps, err, sizeof err) < 0) {
		if (!aborted(ps))
			thread_fail(ps, "Pre-sync round %lld could not read the server's files: %s.",
			    (long long)round, err);
		return -1;
	}
	if (ps->comp != NULL) {
		rc = wx_compressor_finish(ps->comp);
		if (rc < 0 && !aborted(ps))
			thread_fail(ps, "The pre-sync data could not be compressed: %s.",
			    wx_compressor_error(ps->comp));
		wx_compressor_free(ps->comp);
		ps->comp = NULL;
		if (rc < 0)
			return -1;
	}
	char *man = wx_ps_manifest_format(cur, &len);
	rc = put_part_header(ps, "presync_manifest", "");
	if (rc == 0)
		rc = put_text(ps, man, len);
	free(man);
	return rc;
}

/*
 * Waits until the body has taken every byte of the last round from the ring
 * (it is then in the upload's spool, at most two chunks ahead of what the
 * destination acknowledged), so that the next round's scan sees what
 * changed while the last one was on its way.  false on abort.
 */
static bool
await_drained(struct presync *ps)
{
	pthread_mutex_lock(&ps->mu);
	while (ps->len > 0 && !ps->abort)
		pthread_cond_wait(&ps->ring_cv, &ps->mu);
	bool ok = !ps->abort;
	pthread_mutex_unlock(&ps->mu);
	return ok;
}

/* Asks for the stop and waits for it: true once the server is stopped, false on abort. */
static bool
await_stop(struct presync *ps)
{
	pthread_mutex_lock(&ps->mu);
	ps->want_stop = true;
	while (!ps->stopped && !ps->abort)
		pthread_cond_wait(&ps->cv, &ps->mu);
	bool ok = ps->stopped && !ps->abort;
	pthread_mutex_unlock(&ps->mu);
	return ok;
}

static void *
producer(void *arg)
{
	struct presync *ps = arg;
	const struct wx_transfers_config *tc = &ps->job->cfg->transfers;
	wx_sha256_init(&ps->sum_sha);
	bool final = false;
	int64_t last_data = -1;
	for (int64_t round = 1; round <= MAX_ROUNDS; round++) {
		if (round > 1 && !await_drained(ps))
			break;
		if (final && !await_stop(ps))
			break;
		int64_t t0 = wx_mono_ms();
		struct wx_ps_manifest cur;
		char err[1024];
		if (round == 1) {
			cur = ps->first;
			memset(&ps->first, 0, sizeof ps->first);
		} else if (wx_ps_scan(ps->rootfd, NULL, &cur, err, sizeof err) < 0) {
			thread_fail(ps, "Pre-sync round %lld could not scan the server's files: %s.",
			    (long long)round, err);
			break;
		}
		struct wx_ps_delta d = { NULL, 0, 0 };
		wx_ps_compare(&ps->prev, &cur, &d);
		if (wx_ps_delta_plan(ps->rootfd, &ps->prev, &cur, &d, err, sizeof err) < 0) {
			thread_fail(ps, "Pre-sync round %lld could not read the server's files: %s.",
			    (long long)round, err);
			wx_ps_delta_free(&d);
			wx_ps_manifest_free(&cur);
			break;
		}
		int64_t data = wx_ps_delta_data_bytes(&d);
		int64_t t_plan = wx_mono_ms();
		pthread_mutex_lock(&ps->mu);
		ps->round = round;
		ps->round_final = final;
		ps->round_data = data;
		ps->round_sent = 0;
		pthread_mutex_unlock(&ps->mu);
		int rc = write_round(ps, round, final, &cur, &d);
		struct round_stat st = { round, final, d.n, cur.n, data, wx_mono_ms() - t0,
			t_plan - t0 };
		wx_ps_delta_free(&d);
		wx_ps_manifest_free(&ps->prev);
		ps->prev = cur;
		if (rc < 0)
			break;
		pthread_mutex_lock(&ps->mu);
		if (ps->nstats < MAX_ROUNDS)
			ps->stats[ps->nstats++] = st;
		pthread_mutex_unlock(&ps->mu);
		if (final) {
			unsigned char md[32];
			wx_sha256_digest(&ps->sum_sha, md);
			pthread_mutex_lock(&ps->mu);
			wx_hex(md, sizeof md, ps->sha_hex);
			pthread_mutex_unlock(&ps->mu);
			break;
		}
		/* The next round is the final one when this one was small, did not
		 * shrink, or was the last allowed while the server runs. */
		final = data < tc->presync_threshold || (last_data >= 0 && data >= last_data) ||
		    round >= tc->presync_max_rounds;
		last_data = data;
	}
	pthread_mutex_lock(&ps->mu);
	ps->closed = true;
	pthread_cond_broadcast(&ps->ring_cv);
	pthread_mutex_unlock(&ps->mu);
	return NULL;
}

/* --- the main thread --- */

bool
presync_choose(struct job *job)
{
	const struct wx_transfers_config *tc = &job->cfg->transfers;
	if (strcmp(tc->presync, "auto") != 0)
		return false;
	if (!job->probed || !job->caps.header || !job->caps.presync || !job->caps.chunked ||
	    strcmp(tc->chunked, "auto") != 0) {
		wx_info("no pre-sync: %s", !job->probed ? "the destination was not probed "
		    "(system.transfers.preflight is false)" : !job->caps.header ||
		    !job->caps.presync ? "the destination does not name presync" :
		    "it needs the chunked upload");
		return false;
	}
	if (job->broker_fd < 0) {
		job_log(job, "The server is stopped before it is copied: the pre-sync needs a "
		    "supervised worker.");
		return false;
	}
	int fd = open(job->server_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct wx_ps_manifest m;
	char err[1024];
	if (fd < 0 || wx_ps_scan(fd, NULL, &m, err, sizeof err) < 0) {
		if (fd < 0)
			snprintf(err, sizeof err, "%s: %s", job->server_dir, strerror(errno));
		job_log(job, "The server's files cannot be copied while it runs (%s); it is stopped "
		    "first, as usual.", err);
		if (fd >= 0)
			close(fd);
		return false;
	}
	struct presync *ps = xcalloc(1, sizeof *ps);
	ps->job = job;
	ps->rootfd = fd;
	ps->first = m;
	pthread_mutex_init(&ps->mu, NULL);
	pthread_cond_init(&ps->cv, NULL);
	pthread_cond_init(&ps->ring_cv, NULL);
	job->presync = ps;
	return true;
}

int
presync_start(struct presync *ps, const char *boundary, char *why, size_t whysize)
{
	wx_strlcpy(ps->boundary, boundary, sizeof ps->boundary);
	ps->ring = xmalloc(RING_SIZE);
	/* Signals stay with the main thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&ps->thread, NULL, producer, ps);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		snprintf(why, whysize, "Cannot start the pre-sync: %s.", strerror(e));
		return -1;
	}
	ps->started = true;
	return 0;
}

/* The rounds made so far into the log and extra.presync (the record's GET). */
static void
report(struct presync *ps)
{
	struct job *job = ps->job;
	pthread_mutex_lock(&ps->mu);
	int n = ps->nstats;
	struct round_stat stats[MAX_ROUNDS];
	memcpy(stats, ps->stats, sizeof stats);
	int64_t round = ps->round, data = ps->round_data, sent = ps->round_sent;
	bool final = ps->round_final, stopped = ps->stopped;
	pthread_mutex_unlock(&ps->mu);
	/* The progress of the whole copy: every round's data so far, the
	 * round being made included (a bar that only moves forward). */
	int64_t made = 0;
	for (int i = 0; i < n; i++)
		made += stats[i].data;
	bool current_done = n > 0 && stats[n - 1].round == round;
	job->progress.bytes_total = made + (current_done ? 0 : data);
	job->progress.bytes_read = made + (current_done ? 0 : sent);
	/* Called for every piece of the body: extra.presync is made again when
	 * a round ended, the server stopped, or a second passed. */
	int64_t now = wx_mono_ms();
	if (ps->reported_ms > 0 && n == ps->reported_nstats && stopped == ps->reported_stopped &&
	    now - ps->reported_ms < 1000)
		return;
	ps->reported_ms = now;
	ps->reported_nstats = n;
	ps->reported_stopped = stopped;
	if (job->rec.extra == NULL)
		job->rec.extra = json_object_new_object();
	for (; ps->reported < n; ps->reported++) {
		const struct round_stat *s = &stats[ps->reported];
		char dz[32];
		wx_format_bytes(s->data, dz, sizeof dz);
		job_log(job, "Pre-sync round %lld%s made: %zu changes, %s of data, %zu entries "
		    "(%.1f s).", (long long)s->round, s->final ? " (final, server stopped)" :
		    " (server running)", s->ops, dz, s->entries, (double)s->ms / 1000.0);
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "round", json_object_new_int64(round));
	json_object_object_add(o, "final", json_object_new_boolean(final));
	json_object_object_add(o, "server_stopped", json_object_new_boolean(stopped));
	json_object_object_add(o, "round_bytes", json_object_new_int64(data));
	json_object_object_add(o, "round_bytes_read", json_object_new_int64(sent));
	json_object *trend = json_object_new_array();
	for (int i = 0; i < n; i++) {
		json_object *r = json_object_new_object();
		json_object_object_add(r, "round", json_object_new_int64(stats[i].round));
		json_object_object_add(r, "final", json_object_new_boolean(stats[i].final));
		json_object_object_add(r, "data_bytes", json_object_new_int64(stats[i].data));
		json_object_object_add(r, "ops", json_object_new_int64((int64_t)stats[i].ops));
		json_object_object_add(r, "entries", json_object_new_int64((int64_t)stats[i].entries));
		json_object_object_add(r, "seconds", json_object_new_double((double)stats[i].ms /
		    1000.0));
		json_object_array_add(trend, r);
	}
	json_object_object_add(o, "rounds", trend);
	/* What the final round will cost while the server is down: it has no
	 * more to scan and send than the last round (which did not stop
	 * shrinking, or was under the threshold), so about as long. */
	if (n > 0 && !stopped)
		json_object_object_add(o, "estimated_downtime_seconds",
		    json_object_new_double((double)stats[n - 1].ms / 1000.0));
	json_object_object_add(job->rec.extra, "presync", o);
}

/* The producer asked for the stop: the stop hook, as without pre-sync.  0 or -1. */
static int
stop_now(struct presync *ps)
{
	struct job *job = ps->job;
	report(ps);
	job_log(job, "Stopping the server for the final pre-sync round...");
	char why[1024] = "";
	job_phase(job, WX_PHASE_STOPPING);
	if (stop_via_supervisor(job, why, sizeof why) < 0) {
		if (job->stop == JOB_RUNNING) {
			pthread_mutex_lock(&ps->mu);
			if (!ps->failed) {
				ps->failed = true;
				wx_strlcpy(ps->why, why, sizeof ps->why);
			}
			pthread_mutex_unlock(&ps->mu);
		}
		return -1;
	}
	ps->stopped_ms = wx_mono_ms();
	pthread_mutex_lock(&ps->mu);
	ps->stopped = true;
	pthread_cond_broadcast(&ps->cv);
	pthread_mutex_unlock(&ps->mu);
	wx_strlcpy(job->rec.phase, WX_PHASE_STREAMING, sizeof job->rec.phase);
	report(ps);
	job_save(job);
	return 0;
}

static void
end_thread(struct presync *ps)
{
	if (!ps->started)
		return;
	pthread_mutex_lock(&ps->mu);
	ps->abort = true;
	pthread_cond_broadcast(&ps->cv);
	pthread_cond_broadcast(&ps->ring_cv);
	pthread_mutex_unlock(&ps->mu);
	pthread_join(ps->thread, NULL);
	ps->started = false;
}

ssize_t
presync_read(struct presync *ps, void *buf, size_t n, bool may_wait, bool settled)
{
	struct job *job = ps->job;
	for (;;) {
		if (ps->eof)
			return 0;
		pthread_mutex_lock(&ps->mu);
		if (ps->len == 0 && !ps->closed && may_wait) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += WAIT_POLL_MS * 1000000L;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			(void)pthread_cond_timedwait(&ps->ring_cv, &ps->mu, &until);
		}
		size_t k = ps->len < n ? ps->len : n;
		if (k > RING_SIZE - ps->head)
			k = RING_SIZE - ps->head;
		if (k > 0) {
			memcpy(buf, ps->ring + ps->head, k);
			ps->head = (ps->head + k) % RING_SIZE;
			ps->len -= k;
			pthread_cond_broadcast(&ps->ring_cv);
		}
		bool ended = ps->len == 0 && ps->closed;
		pthread_mutex_unlock(&ps->mu);
		if (k > 0)
			return (ssize_t)k;
		if (ended) {
			pthread_join(ps->thread, NULL);
			ps->started = false;
			report(ps);
			if (ps->failed || ps->sha_hex[0] == '\0') {
				if (!ps->failed)
					thread_fail(ps, "The pre-sync ended before its final round.");
				return -1;
			}
			ps->eof = true;
			wx_info("pre-sync: the final round was made %lld ms after the server was "
			    "stopped", (long long)(wx_mono_ms() - ps->stopped_ms));
			return 0;
		}
		if (job_should_stop(job))
			return -1;
		report(ps);
		progress_update(job, false);
		if (!may_wait)
			return PRESYNC_LATER;
		pthread_mutex_lock(&ps->mu);
		bool stop = ps->want_stop && !ps->stopped;
		pthread_mutex_unlock(&ps->mu);
		if (stop && !settled)
			return PRESYNC_LATER;
		if (stop && stop_now(ps) < 0)
			return -1;
	}
}

const char *
presync_error(const struct presync *ps)
{
	return ps->why;
}

const char *
presync_sum_sha256(const struct presync *ps)
{
	return ps->sha_hex;
}

void
presync_free(struct presync *ps)
{
	if (ps == NULL)
		return;
	end_thread(ps);
	free(ps->ring);
	if (ps->comp != NULL)
		wx_compressor_free(ps->comp);
	wx_ps_manifest_free(&ps->first);
	wx_ps_manifest_free(&ps->prev);
	if (ps->rootfd >= 0)
		close(ps->rootfd);
	pthread_mutex_destroy(&ps->mu);
	pthread_cond_destroy(&ps->ring_cv);
	pthread_cond_destroy(&ps->cv);
	free(ps);
}
