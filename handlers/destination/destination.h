/*
 * wingxfer-destination internals: one incoming transfer ("receiver") as it
 * moves through the stages of POST /api/transfers.
 *
 *   receive.c  the POST handler: token, preconditions (all before the body),
 *              installer step, then the stages below; DELETE's sibling
 *   intake.c   the body reader under multipart: download_limit (node-wide),
 *              cancel checks between reads, progress in the record
 *   parts.c    what each multipart part is for (archive, checksums,
 *              backups, install logs)
 *   extract.c  the archive part: SHA-256 + libarchive into staging, with
 *              path, type, owner, mode and disk-space rules
 *   gunzip.c   gzip decoding for extract.c, with the CRC and length checks
 *              libarchive's gzip filter lacks
 *   finish.c   success (checksum rule, hook, rename, record, panel, 200)
 *              and failure (cleanup, record, panel, error answer)
 *   cancel.c   DELETE /api/transfers[/:uuid]
 *   preflight.c  the checks before the body, shared with
 *              POST /api/transfers/preflight (which spends nothing)
 *   sandbox.c  the body's parsing (parts.c, extract.c, gunzip.c) in a child
 *              process without root and confined (confine.h); this process
 *              feeds it the body and takes back its outcome
 *
 * Errors: the first failure is recorded with rx_fail() (HTTP status + a
 * sentence for people) and every stage returns -1 from then on; finish.c
 * turns it into the failure path exactly once.
 */
#ifndef WX_DESTINATION_H
#define WX_DESTINATION_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "gunzip.h"
#include "multipart.h"
#include "ratelimit.h"
#include "record.h"
#include "transfer_jwt.h"

struct wx_config;
struct wx_request;
struct wx_state;

#define RX_READ_CHUNK (256 * 1024)      /* body read size (FCGX_GetStr blocks until full) */
#define RX_CHECKSUM_MAX 128             /* bytes of a checksum part */
#define RX_INSTALL_LOG_MAX (64LL << 20)
#define RX_MAX_CHECKSUMS 4
/* Repeated per-entry notes (skipped entries, libarchive warnings) are named
 * this many times, then only counted and summed up once at the end. */
#define RX_NAMED_REPEATS 5

struct rx_backup {
	char name[WX_MP_NAME_MAX];      /* sanitised file name */
	char *tmp_path;                 /* partial file while receiving; NULL once gone */
	char *final_path;
	char sha256[65];                /* of the bytes received */
	char expected[RX_CHECKSUM_MAX + 1];
	bool received, has_expected;
};

struct receiver {
	struct wx_request *req;
	const struct wx_config *cfg;
	const struct wx_state *st;
	char uuid[37];
	struct wx_transfer_claims claims;
	struct wx_record rec;
	bool started;                   /* the token was spent: failures are reported */
	int64_t started_ms;
	int lock_fd;                    /* the transfer's liveness lock, held throughout */

	char *server_dir;               /* <data>/<uuid> */
	char *staging_root;             /* <data>/.wingxfer-staging */
	char *staging;                  /* <staging_root>/<uuid> */
	int staging_fd;
	int64_t disk_limit;             /* build.disk_space in bytes, 0 = none */

	/* body */
	struct wx_multipart *mp;
	struct wx_ratelimit rl;         /* download_limit, node-wide (ratelimit.h) */
	int64_t last_save_ms, last_log_ms, last_cancel_ms;
	int64_t rate_bytes;             /* bytes_read at the last rate sample */
	bool cancelled;                 /* asked to stop: DELETE, or the watchdog */
	bool stopped_by_watchdog;       /* ... the watchdog (the record says failed) */
	bool body_failed;               /* the web server aborted or cut the body */
	/* Where the body comes from when not from the request (the chunked
	 * upload's assembler reads its spool, upload.h): > 0 bytes, 0 at the
	 * end, -1 after rx_fail.  NULL: the request body. */
	ssize_t (*source)(struct receiver *rx, void *buf, size_t n);
	void *source_ctx;

	/* archive */
	EVP_MD_CTX *sha;
	struct rx_gunzip gz;            /* gzip decoding with CRC checks (gunzip.c) */
	bool have_archive;
	uint64_t archive_bytes;
	char archive_sha256[65];
	/* A chunked upload created with X-Wingxfer-Checksum: body: its body's
	 * SHA-256, verified (Repr-Digest) before its last chunk was
	 * acknowledged, stands for the archive checksum; the archive is not
	 * hashed.  body_sha256: that digest (hex), once the last chunk is in. */
	bool body_checksum;
	char body_sha256[65];
	char checksums[RX_MAX_CHECKSUMS][RX_CHECKSUM_MAX + 1];
	int nchecksums;
	int64_t extracted;              /* bytes charged against the limits */
	int64_t space_left;             /* free space above the reserve, as last measured */
	int64_t space_checked_at;       /* extracted at that measurement */
	int64_t skipped;                /* devices, FIFOs, sockets */
	int64_t warnings;               /* libarchive warnings on entries */

	/* the confined child (sandbox.c) */
	bool in_sandbox;                /* this process is the child: rx_log, rx_progress
	                                 * go to sandbox_fd, cancels are the parent's */
	int sandbox_fd;                 /* child: messages to the parent */
	int64_t sandbox_sent_ms;        /* child: last progress message */
	char *parts_dir;                /* <staging_root>/<uuid>.parts: backups and the
	                                 * install log while receiving; NULL: beside
	                                 * their final place (no sandbox) */
	int parts_fd;                   /* child: the parts directory, or -1 */

	/* a live pre-sync body instead of an archive (presync.c) */
	struct rx_presync *presync;     /* child: NULL until its first part */
	int64_t presync_rounds;         /* rounds applied (the final one included) */

	/* other parts */
	struct rx_backup *backups;
	int nbackups;
	char *backup_dir_made;          /* <backup_directory>/<uuid> when we created it */
	char *install_log_tmp, *install_log_final;

	/* outcome */
	int status;                     /* HTTP status of the first failure; 0 = none */
	char error[1024];               /* for the answer: says what, never echoes input */
	char detail[1024];              /* for the log and the record: may name entries */
	char panel_outcome[16];         /* notified / queued / rejected */
	json_object *result;            /* without a request (req NULL): the 200 JSON
	                                 * the single POST would have answered */
};

/* Records the first failure; later calls are ignored.  Always returns -1. */
int rx_fail(struct receiver *rx, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Adds the technical detail of the failure (first one wins). */
void rx_detail(struct receiver *rx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "transfer logs" line in the events file and the log. */
void rx_log(struct receiver *rx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Saves the record if a second passed since the last save (or force). */
void rx_progress(struct receiver *rx, bool force);

/*
 * True once a cancel was requested (marker file, or SIGUSR2 + marker); the
 * marker is looked at no more than every 100 ms unless a signal arrived or
 * now is set.  Records the failure on the first detection.
 */
bool rx_cancel_check(struct receiver *rx, bool now);

/* intake.c: the read function handed to the multipart parser. */
ssize_t rx_body_read(void *ctx, void *buf, size_t n);

/* parts.c: consumes every part and the end of the body; 0 or -1. */
int rx_read_parts(struct receiver *rx);
/* Records the multipart parser's error as the failure; -1. */
int rx_mp_failed(struct receiver *rx);
/* Checks received backups against their checksums (the checksum rule); 0 or -1. */
int rx_parts_verify(struct receiver *rx);
/* Removes partial files, and the server's backup directory when this
 * transfer created it and it is empty. */
void rx_parts_cleanup(struct receiver *rx);
int rx_parts_install(struct receiver *rx);    /* renames backups/logs into place */

/* presync.c: whether a part name belongs to a pre-sync body; one such part
 * (in the child); at the end of the body, the check that the final round
 * came (and the data digest as archive_sha256); what it holds.  0 or -1. */
bool rx_presync_part_name(const char *name);
int rx_presync_part(struct receiver *rx, const char *name);
int rx_presync_end(struct receiver *rx);
void rx_presync_free(struct receiver *rx);

/* extract.c: consumes the archive part into staging; 0 or -1. */
int rx_extract(struct receiver *rx);
/* Reserves bytes against build.disk_space and the free space; 0 or -1. */
int rx_charge(struct receiver *rx, int64_t bytes, const char *what);

/* sandbox.c: runs the body's parsing in the confined child; 0 or -1. */
int rx_sandbox_run(struct receiver *rx, const char *boundary);
/* In the child: gives up root for system.user and confines this process to
 * the staging and parts directories (the same call production makes; the
 * tests probe it).  0, or -1 with err filled. */
int rx_sandbox_enter(struct receiver *rx, int parts_fd, char *err, size_t errsize);
/* In the child: one message to the parent (sandbox.c's protocol). */
void rx_sandbox_log(struct receiver *rx, const char *msg);
void rx_sandbox_progress(struct receiver *rx, bool force);

/* finish.c */
void rx_finish(struct receiver *rx);          /* answers the request either way */
void rx_release(struct receiver *rx);         /* frees; closes nothing the request owns */

/* preflight.c: the checks before the body.  Each answers the request itself
 * when it refuses. */
/* The transfer token of Authorization (401/403); true with claims filled. */
bool rx_check_token(struct wx_request *req, struct wx_transfer_claims *claims);
/* Nothing in the way: no unfinished earlier transfer, <data>/<uuid> vacant (409). */
bool rx_check_vacancy(struct wx_request *req, const struct wx_state *st, const char *uuid,
    const char *server_dir);
/*
 * Room for need more bytes above system.transfers.disk_reserve: 0, or 507
 * (msg names the numbers) or 500 (statvfs failed, errno kept).  *free_out
 * is the free space (-1 when unknown).  Answers nothing.
 */
int rx_check_room(const struct wx_config *cfg, int64_t need, int64_t *free_out, char *msg,
    size_t msgsize);
/* POST /api/transfers/preflight */
void dest_preflight(struct wx_request *req);

/* receive.c, shared with the chunked upload's create (uploads.c): the
 * checks up to the spent token and the new record (answers a refusal
 * itself; true to go on), then the steps before the body (reserve,
 * installer step, staging; -1 after rx_fail). */
bool rx_open_transfer(struct receiver *rx);
/* An empty receiver (no fds; req may be NULL: the chunked assembler). */
void rx_init(struct receiver *rx, struct wx_request *req, const struct wx_config *cfg);
/* rx_init, then the transfer token of req (answered when refused: false). */
bool rx_begin(struct receiver *rx, struct wx_request *req);
/* server_dir, staging_root and staging of rx->uuid. */
void rx_set_paths(struct receiver *rx);
int rx_before_body(struct receiver *rx);
/* (Re)creates an empty staging directory owned by system.user; 0 or -1. */
int rx_make_staging(struct receiver *rx);

/* main.c route handlers */
void dest_post_transfer(struct wx_request *req);
void dest_delete_transfer(struct wx_request *req);

#endif
