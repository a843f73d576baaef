/*
 * Test helpers: build a CGI request from a list of variables and a body,
 * and capture what the handler code writes to stdout.
 */
#ifndef WX_TEST_CGI_CAPTURE_H
#define WX_TEST_CGI_CAPTURE_H

#include "request.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int capture_saved_stdout = -1;
static FILE *capture_file;

/* Initialises req from envp (NULL-terminated "K=V" list); body goes to fd 0. */
static void __attribute__((unused))
capture_request(struct wx_request *req, char **envp, const char *body, size_t bodylen)
{
	int p[2];
	if (pipe(p) < 0)
		exit(99);
	if (bodylen > 0 && write(p[1], body, bodylen) != (ssize_t)bodylen)
		exit(99);
	close(p[1]);
	dup2(p[0], 0);
	close(p[0]);
	char **saved = environ;
	environ = envp;
	wx_req_init(req, NULL);
	environ = saved;
}

static void __attribute__((unused))
capture_start(void)
{
	fflush(stdout);
	capture_file = tmpfile();
	if (capture_file == NULL)
		exit(99);
	capture_saved_stdout = dup(1);
	dup2(fileno(capture_file), 1);
}

/* Returns what was written since capture_start (caller frees). */
static char * __attribute__((unused))
capture_end(void)
{
	fflush(stdout);
	dup2(capture_saved_stdout, 1);
	close(capture_saved_stdout);
	long len = ftell(capture_file);
	if (len < 0)
		len = 0;
	char *buf = xmalloc((size_t)len + 1);
	rewind(capture_file);
	size_t n = fread(buf, 1, (size_t)len, capture_file);
	buf[n] = '\0';
	fclose(capture_file);
	return buf;
}

#endif
