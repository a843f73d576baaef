/*
 * The chunked, resumable upload (docs/protocol.md, version 1), destination
 * side.  One upload carries the body of one single POST /api/transfers in
 * bounded PATCH requests; an assembler process (assemble.c) holding the
 * transfer's lock feeds it from the spool to the single POST's pipeline.
 *
 *   <state>/uploads/<id>.json    the upload's state (struct upload), 0600,
 *                                replaced atomically and durably
 *   <state>/uploads/<id>.lock    flock(2): one writer of the state at a time
 *   <state>/uploads/<id>.writer  the request id of the newest PATCH (a newer
 *                                PATCH preempts an older one)
 *   <state>/uploads/<id>.spool/  acknowledged chunks not yet consumed, one
 *                                file per chunk named by its offset (20
 *                                digits); .tmp-* while a PATCH reads
 *
 *   uploads.c   the HTTP side: create, GET/HEAD, DELETE, and what every
 *               request of an upload checks first
 *   upload_patch.c  PATCH: one chunk
 *   upload_state.c  the state file, ids and secrets
 *   assemble.c  the assembler (wingxfer-destination --assemble ID --lock-fd N)
 */
#ifndef WX_UPLOAD_H
#define WX_UPLOAD_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

struct receiver;
struct wx_config;
struct wx_state;
struct wx_request;

#define UP_ID_LEN 32                    /* hex digits */
#define UP_CHUNK_MAX (96LL << 20)       /* X-Wingxfer-Chunk-Max */
#define UP_SHA_STATE_MAX 512            /* hex digits of the running SHA-256 state */

enum up_state { UP_RECEIVING, UP_FINISHING, UP_COMPLETED, UP_FAILED, UP_CANCELLED };

struct upload {
	char id[UP_ID_LEN + 1];
	char server[37];
	char secret_sha256[65];         /* SHA-256 (hex) of the secret; never the secret */
	char body_type[256];            /* X-Wingxfer-Body-Type */
	int64_t offset;                 /* acknowledged bytes */
	unsigned char sha[UP_SHA_STATE_MAX / 2]; /* SHA-256 state of [0, offset) */
	size_t sha_len;
	enum up_state state;
	int64_t created_at, updated_at, final_at;
	int status;                     /* when failed: the single POST's status */
	char error[1024];
	json_object *result;            /* when completed: the single POST's 200 JSON */
	int64_t chunk_size;             /* the last non-final chunk's length */
	int64_t interruptions;          /* PATCHes that ended without acknowledgement */
	int64_t resumes;                /* acknowledgements following an interruption */
	int64_t restarts;               /* assemblers started again from offset 0 */
	bool interrupted;               /* the last PATCH ended without acknowledgement */
	bool body_checksum;             /* X-Wingxfer-Checksum: body (protocol.md §3.1) */
};

const char *up_state_name(enum up_state s);
bool up_final(enum up_state s);
/* 32 lowercase hex digits. */
bool up_valid_id(const char *s);

/* "<state>/uploads[/<id><suffix>]"; new strings.  up_dir creates it (0700). */
char *up_dir(const struct wx_state *st);
char *up_file(const struct wx_state *st, const char *id, const char *suffix);

/* A new upload for server: random id and secret (64 hex digits into
 * secret), empty hash state, receiving.  0, or -1 (getrandom). */
int up_new(struct upload *up, const char *server, char secret[65]);
/* 0; -1 with errno ENOENT when there is no such upload, else another errno
 * (EINVAL: the file does not hold up). */
int up_load(const struct wx_state *st, const char *id, struct upload *up);
/* Atomic and durable (fsync of the file and of the directory); 0 or -1. */
int up_save(const struct wx_state *st, struct upload *up);
void up_clear(struct upload *up);
/* flock(LOCK_EX) on the upload's lock file, waiting; the fd (close it to
 * unlock) or -1. */
int up_lock(const struct wx_state *st, const char *id);
/* Whether secret is this upload's (constant time over the hashes). */
bool up_secret_ok(const struct upload *up, const char *secret);

/* The running hash: reset, add, and the hex digest of what was added. */
void up_sha_reset(struct upload *up);
void up_sha_add(unsigned char *sha, size_t sha_len, const void *buf, size_t n);
void up_sha_hex(const unsigned char *sha, size_t sha_len, char out[65]);
void up_sha_raw(const unsigned char *sha, size_t sha_len, unsigned char out[32]);

/* The record's extra.chunked (docs/protocol.md §4): upload, acked,
 * chunk_size, interruptions, resumes, restarts; never the secret.  New. */
json_object *up_chunked_json(const struct upload *up);

/*
 * The spool keeps the chunks its assembler consumed as UP_DONE_PREFIX<offset>
 * until the upload ends, so that a new assembler (the old one died) reads
 * the whole body again from this node (assemble.c).  UP_DROPPED in the spool
 * says they were removed for room (free space below disk_reserve +
 * UP_KEEP_MARGIN).  up_spool_whole: the spool holds the body from offset 0
 * (no UP_DROPPED marker).
 */
#define UP_DONE_PREFIX ".done-"
#define UP_DROPPED ".dropped"
#define UP_KEEP_MARGIN (1LL << 30)
bool up_spool_whole(const struct wx_state *st, const char *id);

/*
 * The body bytes the assembler has read so far, at least (the offset of the
 * first acknowledged chunk it has not read to its end; the offset when it
 * read them all, or the upload is final): GET's "consumed", which a source
 * waits on before it stops a server for a pre-sync's final round.
 */
int64_t up_consumed(const struct wx_state *st, const struct upload *up);

/* Sleeps ms milliseconds (a signal may end it early). */
void up_sleep_ms(long ms);
/*
 * Waiting on the spool: a watch of its directory (inotify: entries made,
 * renamed in or out, removed), made before the waiter first looks, so a
 * chunk committed or consumed after the look wakes it at once instead of
 * at its next poll.  -1 when no watch can be made (up_watch_wait then
 * sleeps).  up_watch_wait returns when the directory changed since the
 * last wait, after ms at the latest, or on a signal.
 */
int up_watch_open(const char *dir);
void up_watch_wait(int fd, long ms);
void up_watch_close(int fd);

/* uploads.c, for upload_patch.c: the answers and checks every request of
 * an upload makes (errors: wx_req_error_code).  up_find: the upload of
 * the route and its secret (401/404 answered: false).  up_answer_closed:
 * 409 completed (also while finishing) or 410 cancelled/failed; true when
 * answered.  up_revive: a running upload whose assembler died gets a new
 * one from offset 0 (up reloaded); false when answered (500). */
bool up_find(struct wx_request *req, const struct wx_state **st, struct upload *up);
bool up_answer_closed(struct wx_request *req, const struct upload *up);
bool up_revive(struct wx_request *req, const struct wx_state *st, struct upload *up);

/* uploads.c, upload_patch.c: the routes. */
void dest_upload_create(struct wx_request *req);
void dest_upload_patch(struct wx_request *req);
void dest_upload_get(struct wx_request *req);
void dest_upload_delete(struct wx_request *req);

/* assemble.c: wingxfer-destination --assemble ID --lock-fd N [--config F];
 * the process exit status. */
int dest_assemble_main(int argc, char **argv);
/* Starts the assembler of up with the transfer's lock (lock_fd stays open
 * here: the caller closes its copy).  Its pid, or -1 with err filled. */
int up_spawn_assembler(const struct wx_config *cfg, const char *id, int lock_fd, char *err,
    size_t errsize);

#endif
