/*
 * Starting a program detached from the caller (a FastCGI handler starting a
 * transfer worker), as web-servers.md §3.5 measured it: the program runs in
 * its own session, with fds 0-2 on /dev/null and no other fd of the caller
 * (not the FastCGI listen socket, not the request socket, not the web
 * server's pipes) except the ones passed explicitly.  The caller gets no
 * zombie and needs no SIGCHLD handler: the intermediate child is reaped here.
 */
#ifndef WX_SPAWN_H
#define WX_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

/* The fd number at which the first kept fd appears in the program. */
#define WX_SPAWN_FIRST_FD 3
#define WX_SPAWN_MAX_KEEP 4

/*
 * Runs path with argv (environment inherited) detached: fork, setsid, fork
 * again, fds 0-2 on /dev/null, keep[i] duplicated to fd WX_SPAWN_FIRST_FD + i
 * (without close-on-exec), every other fd closed, signal dispositions reset,
 * signal mask cleared, working directory "/", umask 027, execv.
 *
 * Returns the pid of the running program once execv succeeded, or -1 with a
 * one-line reason in err ("cannot run /usr/sbin/wingxfer-push: No such file
 * or directory") when it could not be started.  The caller's fds in keep
 * stay open in the caller; it closes its own copies.
 */
pid_t wx_spawn_detached(const char *path, char *const argv[], const int *keep, size_t nkeep,
    char *err, size_t errsize);

#endif
