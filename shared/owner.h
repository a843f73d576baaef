/*
 * Which process owns a transfer: the one to signal when the transfer must
 * stop (the DELETE handlers of wingxfer-source and wingxfer-destination, the
 * watchdog).
 *
 * The owner is the live process that holds <state>/transfers/<uuid>.lock
 * open: the push worker (wingxfer-source hands it the lock) or the
 * receiving wingxfer-destination.  The record's pid is only a hint: the
 * source handler writes 0 until the worker writes its own, and a pid can be
 * reused by an unrelated process once the owner is gone.  Holding the lock
 * file open is what proves a pid is the owner (/proc/locks would not do: it
 * names the process that took the lock, not the worker it was handed to).
 */
#ifndef WX_OWNER_H
#define WX_OWNER_H

#include <stdint.h>
#include <sys/types.h>

/* Where wx_transfer_owner may look. */
enum wx_owner_search {
	WX_OWNER_RECORDED,  /* record_pid only: a process that may not have set up its
	                     * signal handlers yet never has its pid recorded */
	WX_OWNER_ANY,       /* record_pid, else the only process in /proc that qualifies */
};

/*
 * The pid of the transfer's owner, or 0 when it cannot be told.  A process
 * qualifies when it is not this process, holds lock_path open, and (when
 * program is not NULL) runs an executable named program (the last component
 * of /proc/<pid>/exe, a " (deleted)" suffix of a replaced binary ignored).
 * record_pid (<= 1: none) is tried first; with WX_OWNER_ANY, when it does
 * not qualify, the only process in /proc that does (none or several: 0).
 * Reading another process's /proc/<pid>/fd needs its uid (or root), which
 * wingxfer's programs share.  Signal only a pid this returns.
 */
pid_t wx_transfer_owner(const char *lock_path, int64_t record_pid, const char *program,
    enum wx_owner_search how);

#endif
