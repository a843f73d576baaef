/*
 * Node-wide bandwidth limits (system.transfers.download_limit on the
 * destination, upload_limit on the source): one token bucket per direction
 * shared by every process of the node, in <state>/bandwidth-<direction>.
 *
 * The bucket holds at most one second of the limit.  A process takes the
 * bytes it is about to move before moving them: the take may start once the
 * bucket is not in debt, and takes the whole amount (it may go into debt);
 * what was not moved is given back.  So whatever the number of processes,
 * the bytes moved by time t since the bucket was full are at most
 * limit * t + one second of the limit + one take.
 *
 * The file is read and written under flock(2), held only for that: a process
 * that dies releases it, and a file that is short or holds nonsense (another
 * boot, a torn write) counts as a full bucket.  When the file cannot be used
 * the process keeps a bucket of its own (warned once): the limit then holds
 * per process only.
 */
#ifndef WX_RATELIMIT_H
#define WX_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* The bucket as stored: tokens in bytes (negative = debt), as of stamp_ms
 * (CLOCK_MONOTONIC, which all processes of a boot share). */
struct wx_bucket {
	int64_t stamp_ms;
	double tokens;
};

/*
 * Brings b up to now_ms at rate bytes/s (> 0): adds what accrued, capped at
 * one second of the rate.  A bucket never used (stamp 0), stamped after
 * now_ms (another boot) or with tokens that are not finite or below minus
 * an hour of the rate starts full.
 */
void wx_bucket_refill(struct wx_bucket *b, int64_t now_ms, double rate);
/* After a refill: 0 when a take may start (tokens >= 0), else the ms until
 * the debt is paid at rate (at least 1). */
int64_t wx_bucket_wait_ms(const struct wx_bucket *b, double rate);

struct wx_ratelimit {
	double rate;             /* bytes/s; 0 = no limit (every call returns at once) */
	int fd;                  /* <state>/bandwidth-<direction>, -1 = the private bucket */
	struct wx_bucket own;    /* the private bucket */
	char *path;
	const char *key;         /* the configuration key, for warnings (not copied) */
};

/*
 * Sets up the limit of mib_per_s MiB/s (0 = none) for direction ("upload"
 * or "download") with its bucket in state_dir.  Never fails: a bucket file
 * that cannot be opened, locked, read or written is warned about (naming
 * it and key, the configuration key, a static string) and the private
 * bucket used from then on.
 */
void wx_ratelimit_open(struct wx_ratelimit *rl, const char *state_dir, const char *direction,
    int64_t mib_per_s, const char *key);
/*
 * Takes n bytes, waiting while the bucket is in debt in slices of at most
 * 100 ms; after each slice stop(ctx) (when not NULL) is asked whether to
 * give up.  0, or -1 when stop said so (nothing taken).
 */
int wx_ratelimit_take(struct wx_ratelimit *rl, int64_t n, bool (*stop)(void *ctx), void *ctx);
/* Gives back n bytes taken but not moved. */
void wx_ratelimit_give(struct wx_ratelimit *rl, int64_t n);
void wx_ratelimit_close(struct wx_ratelimit *rl);

#endif
