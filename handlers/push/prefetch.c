#include "autoconf.h"

#include "prefetch.h"
#include "util.h"
#include "walk.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

struct prefetch {
	struct walk *walk;
	pthread_t tid;
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* the archiver moved on, or stop */
	bool stop;		/* guarded by mu */
	/* What each side has reached, in regular files and their (capped) bytes; guarded by mu. */
	int64_t hinted_files, hinted_bytes;
	int64_t opened_files, opened_bytes;
};

static int64_t
capped(int64_t size)
{
	return size < PREFETCH_FILE_MAX ? size : PREFETCH_FILE_MAX;
}

static void
hint(const struct walk_entry *e)
{
	int fd = openat(e->dirfd, e->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC | O_NOATIME);
	if (fd < 0)
		return;
	(void)posix_fadvise(fd, 0, capped(e->st.st_size), POSIX_FADV_WILLNEED);
	close(fd);
}

static void *
prefetch_main(void *arg)
{
	struct prefetch *p = arg;
	struct walk_entry e;
	while (walk_next(p->walk, &e) == 1) {
		if (!S_ISREG(e.st.st_mode) || e.st.st_size == 0)
			continue;
		pthread_mutex_lock(&p->mu);
		while (!p->stop && (p->hinted_bytes - p->opened_bytes >= PREFETCH_LEAD_BYTES ||
		    p->hinted_files - p->opened_files >= PREFETCH_LEAD_FILES))
			pthread_cond_wait(&p->cv, &p->mu);
		bool stop = p->stop;
		/* Behind the archiver: this file is being read or was read already. */
		bool behind = p->hinted_files < p->opened_files;
		p->hinted_files++;
		p->hinted_bytes += capped(e.st.st_size);
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		if (!behind)
			hint(&e);
	}
	return NULL;
}

struct prefetch *
prefetch_start(const char *root)
{
	char err[256];
	struct prefetch *p = xcalloc(1, sizeof *p);
	p->walk = walk_open(root, err, sizeof err);
	if (p->walk == NULL) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	/* The thread starts with every signal blocked: handlers stay on the caller. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&p->tid, NULL, prefetch_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->mu);
		walk_close(p->walk);
		free(p);
		return NULL;
	}
	return p;
}

void
prefetch_opened(struct prefetch *p, int64_t size)
{
	if (p == NULL || size == 0)
		return;
	pthread_mutex_lock(&p->mu);
	p->opened_files++;
	p->opened_bytes += capped(size);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void
prefetch_stop(struct prefetch *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->tid, NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	walk_close(p->walk);
	free(p);
}
