/*
 * The live pre-sync body (docs/presync.md), source side.  A producer
 * thread makes the rounds (scan, compare, plan, send: shared/presync_*)
 * and writes them as multipart parts into a pipe; body.c reads that pipe
 * in place of the archive part.  Rounds 1..n run while the game server
 * runs; when a round was small enough (presync_threshold), stopped
 * shrinking, or presync_max_rounds were made, the thread waits, the main
 * thread stops the server (stop_via_supervisor, when no request is in
 * flight) and the thread makes the final, authoritative round.
 *
 * The thread only reads the job's config, server_dir and codec; it never
 * logs, saves or polls the job.  Everything it has to say goes through
 * the shared state below, which presync_read hands to the job on the main
 * thread.
 */
#ifndef WX_PUSH_PRESYNC_H
#define WX_PUSH_PRESYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct job;
struct presync;

/* presync_read's "nothing now, and the caller may not wait" (a request is in flight). */
#define PRESYNC_LATER (-2)

/*
 * Whether this job moves its server by pre-sync: system.transfers.presync
 * auto, a supervised worker, a destination that names presync and takes
 * chunks (job->caps from the preflight's probe), and a tree the scan can
 * take (else a log line says why it is stop-then-copy).  Then job->presync
 * holds round 1's scan.
 */
bool presync_choose(struct job *job);
/* Starts the producer (boundary: the body's).  0, or -1 with why set. */
int presync_start(struct presync *ps, const char *boundary, char *why, size_t whysize);
/*
 * Up to n body bytes into buf: > 0; 0 when the rounds are complete (the
 * final one written); -1 when the pre-sync failed (presync_error) or the
 * job must stop (job->stop); PRESYNC_LATER when may_wait is false and no
 * byte is ready.  With may_wait it waits for bytes, and stops the server
 * when the producer asks for it and settled says the destination
 * acknowledged every byte read so far; unsettled, it answers PRESYNC_LATER
 * then, so that what was read goes out first (the downtime then holds only
 * the final round).
 */
ssize_t presync_read(struct presync *ps, void *buf, size_t n, bool may_wait, bool settled);
const char *presync_error(const struct presync *ps);
/* The checksum part (hex): the SHA-256 of every presync_ops and presync_manifest
 * part's bytes (checksum=texts), once presync_read returned 0. */
const char *presync_sum_sha256(const struct presync *ps);
/* Stops the producer and frees everything; NULL is fine. */
void presync_free(struct presync *ps);

#endif
