/*
 * Good neighbour: the processes that move a transfer's bytes (the push
 * worker, the destination while it receives) run at a lower CPU and I/O
 * priority than the game servers on the node, as system.transfers.nice and
 * system.transfers.io_priority say.
 *
 * Linux keeps both per thread: lower before starting threads (they, and any
 * child process such as a hook, inherit what the caller has then).
 */
#ifndef WX_PRIORITY_H
#define WX_PRIORITY_H

#include <stdbool.h>

struct wx_config;

/* What wx_priority_lower changed, for wx_priority_restore. */
struct wx_priority {
	bool nice_changed;
	int nice;            /* the niceness before */
	bool io_changed;
	int ioprio;          /* the ioprio_get(2) value before */
};

/*
 * Lowers the calling thread's priority: niceness to at least
 * system.transfers.nice (never raises it; 0 = leave it), I/O priority to
 * io_priority ("low": best-effort level 7, "idle": the idle class,
 * "normal": leave it; never raised either).  A change that cannot be made is
 * logged as a warning naming the key; the caller goes on regardless.
 */
void wx_priority_lower(const struct wx_config *cfg, struct wx_priority *saved);

/* Puts back what wx_priority_lower changed, as far as allowed (raising the
 * CPU priority again needs CAP_SYS_NICE: without it the process stays nice
 * until it exits, said once at info level). */
void wx_priority_restore(const struct wx_priority *saved);

#endif
