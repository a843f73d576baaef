/*
 * What a Go Wings destination can store (push.h, struct peer).
 *
 * The Go extractors (shared/docs/wings-protocol.md 3.5) write a hard link,
 * symlink, FIFO or device entry as an empty regular file (Pterodactyl Wings
 * up to 1.11, Pelican Wings, FeatherWings; newer Pterodactyl creates
 * symlinks and drops the others), so towards a destination without
 * X-Wingxfer-Capabilities:
 *   - a hard-linked file is sent whole under each of its names;
 *   - a symlink is left out, counted, and the first PEER_NAMED are named in
 *     a warning (record, status, events, log, failure text);
 *   - directories are sent (Pelican and FeatherWings create them 0755,
 *     Pterodactyl only makes the parents of files, 0755): the log says how
 *     many have another mode and how many are empty;
 *   - every regular file's data is counted against its size, and the
 *     totals at the end of the archive (the whole-file check).
 * Sockets, FIFOs and devices are never sent (archive.c).
 */
#include "autoconf.h"

#include "push.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Longest path quoted in the warning (longer ones are cut with "..."). */
#define NAMED_MAX 160

static void
set_extra(struct job *job, const char *key, json_object *v)
{
	if (job->rec.extra == NULL)
		job->rec.extra = json_object_new_object();
	json_object_object_add(job->rec.extra, key, v);
}

void
peer_decide(struct job *job, bool wings)
{
	struct peer *p = &job->peer;
	p->wings = wings;
	set_extra(job, "destination", json_object_new_string(wings ? "wings" : "wingxfer"));
	if (!wings)
		return;
	set_extra(job, "symlinks_left_out", json_object_new_int64(0));
	job->progress.bytes_total += p->walk_link_bytes;
	job->progress.files_total -= p->walk_symlinks;
	job_log(job, "The destination is not a wingxfer node (no X-Wingxfer-Capabilities): it "
	    "is sent what Go Wings stores: hard-linked files are sent whole under each name%s.",
	    p->walk_symlinks > 0 ? ", symlinks are left out (Go Wings would make each an empty "
	    "file)" : "");
}

bool
peer_sends(struct job *job, const char *path, mode_t mode)
{
	struct peer *p = &job->peer;
	if (!p->wings || !S_ISLNK(mode))
		return true;
	if (p->symlinks < PEER_NAMED)
		p->named[p->symlinks] = xstrdup(path);
	p->symlinks++;
	wx_debug("left out symlink %s: a Go Wings destination would make it an empty file", path);
	return false;
}

void
peer_sent(struct job *job, const char *path, mode_t mode)
{
	struct peer *p = &job->peer;
	if (!p->wings)
		return;
	if (p->open_dir != NULL) {
		size_t n = strlen(p->open_dir);
		if (strncmp(path, p->open_dir, n) != 0 || path[n] != '/')
			p->empty_dirs++;
		free(p->open_dir);
		p->open_dir = NULL;
	}
	if (S_ISDIR(mode)) {
		if ((mode & 07777) != 0755)
			p->dirs_odd_mode++;
		p->open_dir = xstrdup(path);
	}
}

int
peer_file_begin(struct peer *p, const char *path, bool hardlink, int64_t size, int64_t st_size,
    char *why, size_t whysize)
{
	if (hardlink && p->wings) {
		snprintf(why, whysize, "%s would go to the destination as a hard link, which Go Wings "
		    "stores as an empty file: not sent", path);
		return -1;
	}
	if (!hardlink && size != st_size) {
		snprintf(why, whysize, "%s: its archive entry holds %lld bytes, the file has %lld",
		    path, (long long)size, (long long)st_size);
		return -1;
	}
	free(p->file);
	p->file = xstrdup(path);
	p->file_size = hardlink ? 0 : size;
	p->file_sent = 0;
	return 0;
}

void
peer_file_data(struct peer *p, int64_t n)
{
	p->file_sent += n;
}

int
peer_file_end(struct peer *p, char *why, size_t whysize)
{
	if (p->file == NULL) {
		snprintf(why, whysize, "the end of a file's data without its start (a bug)");
		return -1;
	}
	if (p->file_sent != p->file_size) {
		snprintf(why, whysize, "%s: %lld of its %lld bytes were sent: not the whole file",
		    p->file, (long long)p->file_sent, (long long)p->file_size);
		return -1;
	}
	p->files_whole++;
	p->bytes_whole += p->file_sent;
	free(p->file);
	p->file = NULL;
	return 0;
}

void
peer_report(struct job *job)
{
	struct peer *p = &job->peer;
	char *w = p->reported ? NULL : peer_warning(p);
	if (w == NULL)
		return;
	p->reported = true;
	set_extra(job, "symlinks_left_out", json_object_new_int64(p->symlinks));
	wx_record_set_warning(&job->rec, w);
	job_warn(job, "%s", w);
	free(w);
}

int
peer_tree_end(struct job *job, char *why, size_t whysize)
{
	struct peer *p = &job->peer;
	if (p->file != NULL) {
		snprintf(why, whysize, "%s: the archive ended inside its data (a bug)", p->file);
		return -1;
	}
	if (!p->wings)
		return 0;
	if (p->open_dir != NULL) {
		p->empty_dirs++;
		free(p->open_dir);
		p->open_dir = NULL;
	}
	char size[32];
	wx_format_bytes(p->bytes_whole, size, sizeof size);
	wx_info("every regular file was sent whole: %lld files, %lld bytes (%s)",
	    (long long)p->files_whole, (long long)p->bytes_whole, size);
	if (p->dirs_odd_mode > 0 || p->empty_dirs > 0)
		job_log(job, "Go Wings destination: %lld directories with modes other than 0755 arrive "
		    "0755; %lld empty directories are created by Pelican Wings and FeatherWings, not "
		    "by Pterodactyl Wings.", (long long)p->dirs_odd_mode, (long long)p->empty_dirs);
	peer_report(job);
	return 0;
}

/* Appends path to out (at o of size), control characters as '?', cut at NAMED_MAX. */
static size_t
append_path(char *out, size_t size, size_t o, const char *path)
{
	size_t n = 0;
	for (; path[n] != '\0' && n < NAMED_MAX && o + 1 < size; n++) {
		unsigned char c = (unsigned char)path[n];
		out[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (path[n] != '\0' && o + 4 < size) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return o;
}

char *
peer_warning(const struct peer *p)
{
	if (!p->wings || p->symlinks == 0)
		return NULL;
	char names[PEER_NAMED * (NAMED_MAX + 8)] = "";
	size_t o = 0;
	int64_t shown = p->symlinks < PEER_NAMED ? p->symlinks : PEER_NAMED;
	for (int64_t i = 0; i < shown; i++) {
		if (i > 0)
			o = append_path(names, sizeof names, o, ", ");
		o = append_path(names, sizeof names, o, p->named[i]);
	}
	char more[48] = "";
	if (p->symlinks > shown)
		snprintf(more, sizeof more, " and %lld more", (long long)(p->symlinks - shown));
	return xasprintf("%lld symlink%s left out: the destination is Go Wings, which "
	    "would store each as an empty file; recreate %s there by hand: %s%s",
	    (long long)p->symlinks, p->symlinks == 1 ? " was" : "s were",
	    p->symlinks == 1 ? "it" : "them", names, more);
}

void
peer_free(struct peer *p)
{
	for (int i = 0; i < PEER_NAMED; i++)
		free(p->named[i]);
	free(p->open_dir);
	free(p->file);
	memset(p, 0, sizeof *p);
}
