#include "autoconf.h"

#include "priority.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* <linux/ioprio.h> is not in every libc's headers; the ABI is fixed. */
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_PRIO_CLASS(v) ((v) >> IOPRIO_CLASS_SHIFT)
#define IOPRIO_PRIO_DATA(v) ((v) & ((1 << IOPRIO_CLASS_SHIFT) - 1))
#define IOPRIO_PRIO_VALUE(c, d) (((c) << IOPRIO_CLASS_SHIFT) | (d))
#define IOPRIO_CLASS_NONE 0
#define IOPRIO_CLASS_BE 2
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_BE_LOWEST 7

static int
ioprio_get_self(void)
{
	return (int)syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0);
}

static int
ioprio_set_self(int value)
{
	return (int)syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value);
}

/* Whether the I/O priority cur is already at most the wanted one. */
static bool
io_low_enough(int cur, int want)
{
	int cc = IOPRIO_PRIO_CLASS(cur), wc = IOPRIO_PRIO_CLASS(want);
	if (cc == IOPRIO_CLASS_IDLE)
		return true;
	if (wc == IOPRIO_CLASS_IDLE)
		return false;
	/* Best-effort level 7 is the lowest before idle; NONE follows the niceness. */
	return cc == IOPRIO_CLASS_BE && IOPRIO_PRIO_DATA(cur) >= IOPRIO_PRIO_DATA(want);
}

static void
lower_cpu(const struct wx_config *cfg, struct wx_priority *saved)
{
	int want = (int)cfg->transfers.nice;
	if (want <= 0)
		return;
	errno = 0;
	int cur = getpriority(PRIO_PROCESS, 0);
	if (cur == -1 && errno != 0) {
		wx_warn("cannot read this process's CPU priority: %s; system.transfers.nice %d not "
		    "applied", strerror(errno), want);
		return;
	}
	if (cur >= want)
		return;
	if (setpriority(PRIO_PROCESS, 0, want) < 0) {
		wx_warn("cannot lower the CPU priority to nice %d (system.transfers.nice): %s; "
		    "running at nice %d", want, strerror(errno), cur);
		return;
	}
	saved->nice_changed = true;
	saved->nice = cur;
	wx_debug("CPU priority lowered from nice %d to %d (system.transfers.nice)", cur, want);
}

static void
lower_io(const struct wx_config *cfg, struct wx_priority *saved)
{
	const char *mode = cfg->transfers.io_priority;
	int want;
	if (mode == NULL || strcmp(mode, "normal") == 0)
		return;
	if (strcmp(mode, "idle") == 0)
		want = IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0);
	else
		want = IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, IOPRIO_BE_LOWEST);
	int cur = ioprio_get_self();
	if (cur < 0) {
		wx_warn("cannot read this process's I/O priority: %s; system.transfers.io_priority "
		    "%s not applied", strerror(errno), mode);
		return;
	}
	if (io_low_enough(cur, want))
		return;
	if (ioprio_set_self(want) < 0) {
		wx_warn("cannot lower the I/O priority to %s (system.transfers.io_priority): %s",
		    mode, strerror(errno));
		return;
	}
	saved->io_changed = true;
	saved->ioprio = cur;
	wx_debug("I/O priority lowered to %s (system.transfers.io_priority)", mode);
}

void
wx_priority_lower(const struct wx_config *cfg, struct wx_priority *saved)
{
	memset(saved, 0, sizeof *saved);
	lower_cpu(cfg, saved);
	lower_io(cfg, saved);
}

void
wx_priority_restore(const struct wx_priority *saved)
{
	static bool told;
	if (saved->io_changed && ioprio_set_self(saved->ioprio) < 0)
		wx_warn("cannot restore the I/O priority: %s", strerror(errno));
	if (saved->nice_changed && setpriority(PRIO_PROCESS, 0, saved->nice) < 0 && !told) {
		told = true;
		wx_info("this process stays at the lower CPU priority of system.transfers.nice "
		    "until it exits: raising it again needs CAP_SYS_NICE (%s)", strerror(errno));
	}
}
