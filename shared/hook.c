#include "autoconf.h"

#include "hook.h"
#include "config.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TAIL_MAX 1024

static void
child_exec(const struct wx_command *cmd, const char *uuid, const char *dir, int errfd)
{
	setpgid(0, 0);
	int nul = open("/dev/null", O_RDWR);
	if (nul < 0)
		_exit(126);
	dup2(nul, 0);
	dup2(nul, 1);
	dup2(errfd, 2);
#ifdef HAVE_CLOSE_RANGE
	close_range(3, ~0U, 0);
#else
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
#endif
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < 32; s++)
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	char *e_uuid = xasprintf("SERVER_UUID=%s", uuid);
	char *e_dir = xasprintf("SERVER_DIR=%s", dir);
	char *envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		e_uuid, e_dir, "LANG=C.UTF-8", NULL };
	if (chdir("/") < 0)
		_exit(126);
	execve(cmd->argv[0], cmd->argv, envp);
	dprintf(2, "cannot run %s: %s", cmd->argv[0], strerror(errno));
	_exit(127);
}

/* Appends what is readable on fd to the tail buffer (keeps the last bytes). */
static void
drain(int fd, char *tail, size_t *len)
{
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		if ((size_t)n >= TAIL_MAX) {
			memcpy(tail, buf + n - TAIL_MAX, TAIL_MAX);
			*len = TAIL_MAX;
			continue;
		}
		if (*len + (size_t)n > TAIL_MAX) {
			size_t drop = *len + (size_t)n - TAIL_MAX;
			memmove(tail, tail + drop, *len - drop);
			*len -= drop;
		}
		memcpy(tail + *len, buf, (size_t)n);
		*len += (size_t)n;
	}
}

static void
describe_tail(const char *tail, size_t len, char *out, size_t size)
{
	/* The last non-empty lines, control characters flattened. */
	while (len > 0 && (tail[len - 1] == '\n' || tail[len - 1] == ' '))
		len--;
	size_t from = len > 300 ? len - 300 : 0;
	size_t o = 0;
	for (size_t i = from; i < len && o + 1 < size; i++)
		out[o++] = ((unsigned char)tail[i] < 0x20) ? ' ' : tail[i];
	out[o] = '\0';
}

enum wx_hook_result
wx_hook_run(const struct wx_command *cmd, const char *uuid, const char *server_dir,
    int64_t timeout_s, int (*cancel)(void *), void *cancel_ctx, char *detail, size_t detail_size)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		snprintf(detail, detail_size, "cannot create a pipe: %s", strerror(errno));
		return WX_HOOK_ERROR;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(detail, detail_size, "cannot fork: %s", strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		return WX_HOOK_ERROR;
	}
	if (pid == 0)
		child_exec(cmd, uuid, server_dir, pipefd[1]);
	setpgid(pid, pid); /* also in the parent, so the kill below cannot miss */
	close(pipefd[1]);
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);

	char tail[TAIL_MAX];
	size_t tail_len = 0;
	int64_t deadline = wx_mono_ms() + timeout_s * 1000;
	int64_t kill_at = 0;
	enum wx_hook_result result = WX_HOOK_OK;
	const char *why = NULL;
	int status = 0;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			result = WX_HOOK_ERROR;
			why = "lost track of the hook process";
			break;
		}
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		(void)poll(&pfd, 1, 100);
		drain(pipefd[0], tail, &tail_len);
		int64_t now = wx_mono_ms();
		if (kill_at == 0 && result == WX_HOOK_OK) {
			if (now >= deadline) {
				result = WX_HOOK_TIMEOUT;
			} else if (cancel != NULL && cancel(cancel_ctx)) {
				result = WX_HOOK_FAILED;
				why = "cancelled";
			}
			if (result != WX_HOOK_OK) {
				kill(-pid, SIGTERM);
				kill_at = now + 5000;
			}
		} else if (kill_at != 0 && now >= kill_at) {
			kill(-pid, SIGKILL);
			kill_at = INT64_MAX;
		}
	}
	drain(pipefd[0], tail, &tail_len);
	close(pipefd[0]);
	/* Leftover members of the hook's process group go too. */
	kill(-pid, SIGKILL);

	char text[320];
	describe_tail(tail, tail_len, text, sizeof text);
	if (result == WX_HOOK_TIMEOUT) {
		snprintf(detail, detail_size, "%s did not finish within %lld s and was killed%s%s",
		    cmd->argv[0], (long long)timeout_s, text[0] ? ": " : "", text);
	} else if (why != NULL) {
		snprintf(detail, detail_size, "%s", why);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		snprintf(detail, detail_size, "%s finished", cmd->argv[0]);
		result = WX_HOOK_OK;
	} else if (WIFEXITED(status)) {
		snprintf(detail, detail_size, "%s exited with status %d%s%s", cmd->argv[0],
		    WEXITSTATUS(status), text[0] ? ": " : "", text);
		result = WEXITSTATUS(status) == 127 ? WX_HOOK_ERROR : WX_HOOK_FAILED;
	} else {
		snprintf(detail, detail_size, "%s was killed by signal %d%s%s", cmd->argv[0],
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0, text[0] ? ": " : "", text);
		result = WX_HOOK_FAILED;
	}
	return result;
}
