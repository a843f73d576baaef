/*
 * Runs an admin hook (hooks.stop, hooks.kill, hooks.create_environment):
 * the configured program with its arguments, without a shell, with
 * SERVER_UUID and SERVER_DIR added to a minimal environment, stdin on
 * /dev/null, stdout discarded, stderr kept (its last bytes are returned for
 * error messages).  The hook runs in its own process group; past the timeout
 * the whole group gets SIGTERM, then SIGKILL 5 s later.
 */
#ifndef WX_HOOK_H
#define WX_HOOK_H

#include <stddef.h>
#include <stdint.h>

struct wx_command;

enum wx_hook_result {
	WX_HOOK_OK = 0,        /* exit status 0 */
	WX_HOOK_FAILED,        /* non-zero exit or killed by a signal */
	WX_HOOK_TIMEOUT,       /* still running at the timeout; it was killed */
	WX_HOOK_ERROR,         /* could not be started */
};

/*
 * Runs cmd and waits at most timeout_s seconds.  detail receives a short
 * human description ("exit status 3: <stderr tail>", "timed out after 60 s").
 * cancel, if not NULL, is polled every 100 ms; when it returns non-zero the
 * hook is killed and WX_HOOK_FAILED is returned with detail "cancelled".
 */
enum wx_hook_result wx_hook_run(const struct wx_command *cmd, const char *uuid,
    const char *server_dir, int64_t timeout_s, int (*cancel)(void *), void *cancel_ctx,
    char *detail, size_t detail_size);

#endif
