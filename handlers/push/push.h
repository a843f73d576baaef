/*
 * wingxfer-push: one outgoing transfer, from the stop hook to the
 * destination's answer.  The job holds everything the phases share; only
 * this process (the holder of the transfer's lock) writes its record and
 * events.
 */
#ifndef WX_PUSH_H
#define WX_PUSH_H

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "answer.h"
#include "compress.h"
#include "record.h"
#include "sha256_state.h"
#include "state.h"

struct wx_config;

/* Why a job is stopping early (polled from every loop). */
enum job_stop {
	JOB_RUNNING = 0,
	JOB_CANCELLED,     /* DELETE /api/servers/:uuid/transfer (the cancel marker) */
	JOB_SIGNALLED,     /* SIGTERM / SIGINT / SIGHUP */
};

struct progress {
	int64_t bytes_total;     /* raw bytes of the regular files, from the size walk */
	int64_t files_total;     /* entries the archive will hold */
	int64_t bytes_read;      /* raw file bytes archived so far */
	int64_t bytes_sent;      /* bytes of the request body on the wire */
	int64_t files;           /* entries archived so far */
	int64_t archive_bytes;   /* compressed archive bytes produced */
	bool streaming;          /* the "Uploading" ticks run */
	int64_t next_tick_ms;    /* monotonic */
	int64_t last_save_ms;
	int64_t rate_ms;         /* last rate sample */
	int64_t rate_bytes;
	int64_t moved;           /* bytes_read + bytes_sent at the last look */
};

/* Paths named in the warning about symlinks left out. */
#define PEER_NAMED 5

/*
 * What the destination can store.  A destination that answers OPTIONS
 * without X-Wingxfer-Capabilities is Go Wings (Pterodactyl, Pelican,
 * FeatherWings), whose extractor turns a hard link, symlink, FIFO or device
 * entry into an empty regular file (docs/panel-integration.md): towards it
 * every hard-linked name is sent as a whole regular file, symlinks are
 * left out and named in a warning, and every regular file's data is counted
 * against its size.
 */
struct peer {
	bool wings;              /* a Go Wings destination (set by upload.c's probe) */
	int64_t walk_symlinks;   /* from the size walk */
	int64_t walk_link_bytes; /* ... bytes of the further names of hard-linked files */
	int64_t symlinks;        /* symlinks left out */
	char *named[PEER_NAMED]; /* ... the first few of them */
	int64_t dirs_odd_mode;   /* directories sent whose mode is not 0755 */
	int64_t empty_dirs;      /* directories sent with nothing sent inside */
	char *open_dir;          /* the last directory sent, while nothing inside it was */
	char *file;              /* the regular file whose data is being sent */
	int64_t file_size, file_sent;
	int64_t files_whole, bytes_whole;  /* regular files sent whole so far */
	bool reported;           /* the warning about symlinks left out was given */
};

struct job {
	struct wx_config *cfg;
	struct wx_state st;
	struct wx_record rec;
	char uuid[37];
	char *server_dir;
	char *token;             /* "Bearer <jwt>" as the panel sent it: never logged or stored */
	char *request_url;       /* the destination URL with credentials (rec.url has them
	                          * redacted): used for the request only; NULL = rec.url */
	json_object *backups;    /* requested backup UUIDs (array of strings) */
	int lock_fd;
	bool tty;                /* run by hand on a terminal: progress there */
	enum wx_compress_format codec;
	struct progress progress;
	enum job_stop stop;
	int stop_signal;
	char cancel_why[WX_CANCEL_WHY_MAX + 1];	/* who asked to stop, "" for a DELETE */
	int64_t next_cancel_check_ms;
	int64_t skipped;         /* sockets, FIFOs, devices left out */
	struct peer peer;
	struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO of the matching override, or NULL */
	bool probed;             /* the preflight asked OPTIONS: caps, caps_why hold the answer */
	struct caps caps;
	char caps_why[300];
	CURL *curl;              /* the preflight's handle, taken over by the upload; or NULL */
	int64_t chunk_size;      /* > 0: the chunked upload with chunks of this size (chunked.c) */
	bool chunk_prefix_digest; /* ... each with X-Wingxfer-Prefix-Digest (the destination named prefix-digest) */
	bool chunk_body_checksum; /* ... the destination named body-checksum (body_checksum_by_digest) */
	int broker_fd;           /* the worker's end of its supervisor's socket (supervise.c), in
	                          * the supervisor its own end; -1 when unsupervised */
	struct presync *presync; /* the server is copied while it runs (presync.h), or NULL */
	bool upload_busy;        /* a request is in flight: the body must not wait (chunked_http.c) */
	int64_t upload_acked;    /* body bytes the destination acknowledged (chunked.c) */
	int64_t upload_consumed; /* ... and had read into its extractor at the last GET */
};

/* Skipped sockets, FIFOs and devices named in the log; the rest are counted. */
#define JOB_NAMED_SKIPS 5

/* Exit statuses of wingxfer-push. */
enum exit_code { EXIT_COMPLETED = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_CANCELLED = 3 };

/* The command line. */
struct push_opts {
	int lock_fd;             /* --lock-fd (from wingxfer-source), or -1 */
	int token_fd;            /* --token-fd, or -1 */
	const char *token_file;  /* --token-file ("-" = stdin) */
	const char *url;         /* --url */
	json_object *backups;    /* --backup UUIDs, or NULL */
	bool resume;             /* --resume: the recorded chunked upload goes on */
};

/* True when the job must stop now (cancel marker, SIGUSR2, stop signal). */
bool job_should_stop(struct job *job);
/* The same as a wx_ratelimit_take stop function (ctx is the job). */
bool job_pace_stop(void *ctx);

/* A "transfer logs" event in Wings' words; also to the log or the terminal. */
void job_log(struct job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, logged as a warning. */
void job_warn(struct job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A "transfer status" event (processing, cancelling, failure, completed). */
void job_status(struct job *job, const char *status);
/* Sets the record's phase and saves it. */
void job_phase(struct job *job, const char *phase);
/* Writes the record now (progress counters copied in). */
void job_save(struct job *job);

/* --- setup.c --- */
/*
 * The transfer's lock: the inherited --lock-fd (checked to be this
 * transfer's lock file, then stderr goes to <uuid>.log) or taken now.
 * 0, or -1 with the reason logged.
 */
int setup_lock(struct job *job, const struct push_opts *o);
/* The token ("Bearer <jwt>", one line); NULL with the reason logged. */
char *setup_token(const struct push_opts *o, char **url);
/*
 * The record: the handler's "pending" one (--lock-fd), by hand a new one
 * for --url or the last recorded destination, or with --resume the active
 * outgoing one whose chunked upload (extra.resume) goes on.  0, or -1 logged.
 */
int setup_record(struct job *job, const struct push_opts *o);

/* --- outcome.c --- */
enum outcome { OUT_COMPLETED, OUT_FAILED, OUT_STOPPED };
/*
 * Records the outcome and queues a failure report for the panel, which it
 * also delivers while the job has the node token (unsupervised); the exit
 * status.
 */
int outcome_finish(struct job *job, enum outcome out, const char *why);
/* Delivers the queued failure report (wx_panel_report) and records how it went. */
void outcome_tell_panel(struct job *job, const char *reason);
/*
 * In the supervisor, once its worker has exited: delivers the failure
 * report the worker queued but could not send (its record says failed or
 * cancelled with a failure callback and no callback_result).
 */
void outcome_deliver(struct job *job);

/* --- progress.c --- */
/* Marks the start of streaming: the 5 s "Uploading" ticks begin. */
void progress_start_streaming(struct job *job);
/*
 * Called whenever bytes may have moved: updates progress_at and the rate,
 * saves the record at most once a second (always when force), emits the
 * "Uploading [==  ] x / y" event every 5 s.
 */
void progress_update(struct job *job, bool force);
/* "Uploading [=====                    ] 1.2 GiB / 6.0 GiB" (Wings' bar, 25 cells). */
void progress_bar(int64_t done, int64_t total, char *out, size_t size);

/* --- stop.c --- */
/* Runs hooks.stop (and hooks.kill after a timeout).  0, or -1 with why set. */
int stop_server(struct job *job, char *why, size_t whysize);
/*
 * In a supervised worker (broker_fd >= 0): asks the supervisor to run
 * stop_server and waits for its answer (a stop signal meanwhile asks it to
 * kill the hook); the record is read again afterwards and a cancel or stop
 * seen there is the job's.  Unsupervised: stop_server here, then
 * push_sandbox_enter.  0, or -1 with why set or job->stop set.
 */
int stop_via_supervisor(struct job *job, char *why, size_t whysize);
/*
 * In the supervisor, when its socket to the worker is readable: serves one
 * request (runs stop_server on the record as the worker saved it).  false
 * when the worker closed its end (it exited or died).
 */
bool stop_serve(struct job *job);

/* --- sandbox.c --- */
/*
 * Confines the push worker for good (uid 0 with CAP_DAC_READ_SEARCH only;
 * Landlock, seccomp: see sandbox.c).  0, or -1 with err filled: the worker
 * must not go on.
 */
int push_sandbox_enter(struct job *job, char *err, size_t errsize);
/* push_sandbox_enter for the worker: 0, or -1 with why set (and logged). */
int push_confine(struct job *job, char *why, size_t whysize);

/* --- connect_to.c --- */
/*
 * Applies the system.transfers.connect_to entry matching rec.url (if any) to
 * a handle set up for the destination, after its TLS options, into s as
 * WX_CURL_SET does (a refused entry is logged: the caller must not send the
 * request); records where the request connected.  Never for the panel.
 */
struct wx_curl_set;
void connect_to_apply(CURL *c, struct job *job, struct wx_curl_set *s);

/* --- preflight.c --- */
enum preflight_result {
	PREFLIGHT_OK = 0,    /* the destination would take it (or, Go Wings, answers) */
	PREFLIGHT_FAILED,    /* why says what is in the way */
	PREFLIGHT_STOPPED,   /* job->stop is set */
};
/*
 * Before the stop hook: the destination is reachable with TLS verified (the
 * OPTIONS probe, whose answer the upload reuses), and, when its
 * capabilities name preflight, POST /api/transfers/preflight?size=size with
 * the token says it would admit the upload (token, room, nothing in the
 * way) without spending the token.  Connection failures and 502/503/504 are
 * retried briefly (shared/backoff.h, PREFLIGHT_ATTEMPTS).
 */
enum preflight_result preflight_run(struct job *job, int64_t size, char *why, size_t whysize);
/* Waits ms in slices, polling job_should_stop; false when the job must stop. */
bool job_wait_ms(struct job *job, int64_t ms);
/*
 * A CURLOPT_XFERINFOFUNCTION for requests without their own progress (the
 * probe, the preflight): ctx is the job; a cancel or stop signal ends the
 * request within a second.
 */
int job_curl_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow);

/* --- upload.c --- */
/*
 * What every request to the destination shares: wx_curl_setup's options
 * (URL, TLS verification, User-Agent, connect timeout; timeout seconds for
 * the whole request, 0 for none), HTTP/1.1 with TCP keepalive, and
 * system.transfers.connect_to.
 */
void upload_connection_opts(CURL *c, struct job *job, const char *ua, char *errbuf, long timeout,
    struct wx_curl_set *s);
/*
 * Asks the destination what it is (OPTIONS, no credentials): caps says
 * whether a 2xx answer carried X-Wingxfer-Capabilities and what it named;
 * *status is the HTTP status (0 when none came); why (size 300) says why
 * zstd is not to be sent, "" when it named zstd.  Returns the transfer's
 * CURLcode.  Resets c afterwards (its open connection stays for the POST).
 * Polls job_should_stop.
 */
CURLcode upload_probe(struct job *job, CURL *c, const char *ua, struct caps *caps, long *status,
    char *why, size_t whysize);
enum upload_result {
	UPLOAD_PUSHED = 0,   /* the destination answered 200 or 202 */
	UPLOAD_FAILED,       /* why says what went wrong */
	UPLOAD_STOPPED,      /* job->stop is set */
};
/* Archives, compresses and streams the server to rec.url. */
enum upload_result upload_run(struct job *job, char *why, size_t whysize);
/*
 * A restarted worker: the chunked upload of the record (extra.resume: the
 * boundary and codec) goes on (chunked_run with resume).  A pre-sync's
 * (extra.presync) cannot: its upload is deleted and the transfer fails.
 */
enum upload_result upload_resume(struct job *job, char *why, size_t whysize);

/* --- chunked.c: the resumable upload (docs/protocol.md) --- */
struct body;
/*
 * Sends the body (*bodyp, from body_open) as chunks of job->chunk_size to
 * <url>/uploads with c (set up for the destination) until the destination
 * says the upload completed, resuming after interruptions; on a failure or
 * a stop the upload is deleted on the destination.  *bodyp may be replaced
 * (the body made again from its start): body_close it after.
 */
enum upload_result chunked_run(struct job *job, CURL *c, const char *ua, struct body **bodyp,
    bool resume, char *why, size_t whysize);
/*
 * resume: a new worker goes on with the upload its record holds
 * (extra.resume): the offset and prefix_sha256 from the destination, the
 * body (*bodyp, opened with the recorded boundary) made again up to there
 * and checked, then the rest.
 */

/* --- supervise.c --- */
/*
 * Forks the worker and supervises it (restarts a worker killed by a signal
 * while its chunked upload can be resumed).  In a worker: 0 for the first
 * run, 1 for a restart (resume from the record).  In the supervisor, once
 * done: -1 with *exit_code set.
 */
int supervise(struct job *job, int *exit_code);

/* --- body.c: the multipart request body --- */
struct body;
/*
 * Plans the parts (backups and install log found on disk).  boundary: the
 * multipart boundary to use (60 hex digits; the same body again), or NULL
 * for a new random one.  NULL with err.
 */
struct body *body_open(struct job *job, const char *boundary, char *err, size_t errsize);
/* The random multipart boundary (60 hex digits). */
const char *body_boundary(const struct body *b);
/*
 * Whether the body's SHA-256 (the chunked upload's Repr-Digest) stands for
 * the archive checksum (X-Wingxfer-Checksum: body, docs/protocol.md §3.1):
 * chunks to a destination that named body-checksum, of an archive (not
 * pre-sync rounds).  Such a body has no checksum parts and its archive is
 * not hashed.
 */
bool body_checksum_by_digest(const struct job *job);
/*
 * Up to n bytes of the body: > 0, 0 at its end, -1 when it cannot go on
 * (body_error says why, or job->stop is set).  Polls job_should_stop and
 * progress_update while producing.  With a pre-sync (job->presync) and a
 * request in flight (job->upload_busy) it never waits for the producer:
 * CHUNK_SPOOL_LATER when no byte is ready.
 */
ssize_t body_read(struct body *b, void *buf, size_t n);
/* Why body_read failed ("" if it did not). */
const char *body_error(const struct body *b);
void body_close(struct body *b);
/*
 * A mark: a place in the archive part where a new compressed stream begins
 * between two entries, so the body can be made again from there without
 * reading the tree before it (body_open_at).  The chunked upload keeps the
 * last acknowledged one in the record.
 */
struct body_mark {
	int64_t offset;                    /* body offset of the new stream */
	int64_t entries;                   /* walk entries archived before it */
	unsigned char last_sha256[32];     /* SHA-256 of the last one's path (any bytes) */
	struct wx_sha256 archive;          /* the archive part's SHA-256 at offset */
	struct wx_sha256 whole;            /* the body's, from offset 0 (the spool's) */
	int64_t bytes_read, files, archive_bytes, skipped;  /* job->progress there */
};
/*
 * Makes a mark after each `every` bytes of tar (at the next entry
 * boundary).  body_read then never returns bytes past a mark not yet
 * taken, so the reader can take it exactly at its offset.
 */
void body_marks(struct body *b, int64_t every);
/* The mark at body offset `offset`, when one waits there: true and *m filled (whole excepted). */
bool body_mark_take(struct body *b, int64_t offset, struct body_mark *m);
/*
 * The same body (boundary) made from mark m on: body_read returns bytes
 * from m->offset.  NULL with err when the tree no longer matches the mark.
 */
struct body *body_open_at(struct job *job, const char *boundary, const struct body_mark *m,
    char *err, size_t errsize);

/* --- archive.c: the tar.gz producer the upload pulls from --- */
struct tar;
/*
 * Opens the archive of job->server_dir; compressed bytes go to sink.
 * NULL with a reason in err.
 */
struct tar *tar_open(struct job *job, wx_compress_sink sink, void *sink_ctx, char *err,
    size_t errsize);
/*
 * Produces the next piece (an entry's header, or up to 1 MiB of a file):
 * 1 when something was produced, 0 when the archive is complete (end
 * blocks written and the compressor finished), -1 on an error (tar_error).
 */
int tar_step(struct tar *t);
const char *tar_error(const struct tar *t);
void tar_close(struct tar *t);
/* The compression level of the job's codec (compression_level, on zstd's scale for zstd). */
int tar_codec_level(const struct job *job);
/* Whether a mark may be made now: between entries, after at least every tar bytes. */
bool tar_mark_due(const struct tar *t, int64_t every);
/*
 * Ends the compressed stream here (between two entries: all of the tar so
 * far reaches the sink, a gzip member or zstd frame ends) and begins a new
 * one, so the archive can be made again from this point (tar_open_at).
 * *entries: the walk entries consumed; last_sha256: the SHA-256 of the
 * last one's path.
 * 0, or -1 (tar_error).
 */
int tar_mark(struct tar *t, int64_t *entries, unsigned char last_sha256[32]);
/*
 * tar_open, then the first `entries` walk entries passed over without
 * reading their data (hard links remembered as tar_step would); the
 * SHA-256 of the last one's path must be last_sha256.  NULL with a reason
 * in err (the tree changed).
 */
struct tar *tar_open_at(struct job *job, wx_compress_sink sink, void *sink_ctx, int64_t entries,
    const unsigned char last_sha256[32], char *err, size_t errsize);

/* --- peer.c: what a Go Wings destination can store (struct peer) --- */
/*
 * After the OPTIONS probe: wings says whether the destination is Go Wings.
 * Records it ("destination" in the record's extra), adjusts the totals of
 * the size walk (hard links counted whole, symlinks not) and says what
 * happens to each kind of entry.
 */
void peer_decide(struct job *job, bool wings);
/* Whether the entry (walk path and mode) goes into the archive. */
bool peer_sends(struct job *job, const char *path, mode_t mode);
/* An entry was written to the archive (after peer_sends said yes). */
void peer_sent(struct job *job, const char *path, mode_t mode);
/*
 * The whole-file check.  A regular file entry's header: size is the size in
 * the header, st_size the file's size, hardlink whether it is a hard link
 * entry.  Towards Go Wings a hard link entry or a header size other than the
 * file's size fails.  0, or -1 with why set.
 */
int peer_file_begin(struct peer *p, const char *path, bool hardlink, int64_t size,
    int64_t st_size, char *why, size_t whysize);
/* n bytes of the current file's data went into the archive. */
void peer_file_data(struct peer *p, int64_t n);
/* The current file's data ended: fails unless all its bytes were sent. */
int peer_file_end(struct peer *p, char *why, size_t whysize);
/* The archive ended: the totals agree.  0, or -1 with why set. */
int peer_tree_end(struct job *job, char *why, size_t whysize);
/*
 * The warning about symlinks left out ("N symlinks were left out ...: a,
 * b, ... and M more"), or NULL when none were.  Allocated.
 */
char *peer_warning(const struct peer *p);
/*
 * Gives that warning once: the record's warning and extra.symlinks_left_out,
 * a transfer log event and a log warning.  Done at the end of the archive,
 * and by outcome.c for a transfer that fails before it.
 */
void peer_report(struct job *job);
void peer_free(struct peer *p);

#endif
