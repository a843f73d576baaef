/*
 * peer.c: what is sent to a Go Wings destination (symlinks left out and
 * named, empty directories and directory modes counted) and the whole-file
 * check (a hard link entry or a short file fails, naming the path).
 */
#include "autoconf.h"

#include "push.h"
#include "tap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The job's log (progress.c in the program): the last line of each kind. */
static char logged[2048], warned[2048];

void
job_log(struct job *job, const char *fmt, ...)
{
	(void)job;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(logged, sizeof logged, fmt, ap);
	va_end(ap);
}

void
job_warn(struct job *job, const char *fmt, ...)
{
	(void)job;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(warned, sizeof warned, fmt, ap);
	va_end(ap);
}

static int64_t
extra_int(struct job *job, const char *key)
{
	json_object *v;
	if (job->rec.extra == NULL || !json_object_object_get_ex(job->rec.extra, key, &v))
		return -1;
	return json_object_get_int64(v);
}

static void
job_reset(struct job *job)
{
	peer_free(&job->peer);
	wx_record_clear(&job->rec);
	memset(job, 0, sizeof *job);
	logged[0] = warned[0] = '\0';
}

int
main(void)
{
	struct job job;
	memset(&job, 0, sizeof job);
	struct peer *p = &job.peer;
	char why[512];

	/* A wingxfer destination: links go as links; a hard link entry carries no data. */
	p->walk_symlinks = 3;
	p->walk_link_bytes = 100;
	job.progress.bytes_total = 1000;
	job.progress.files_total = 10;
	peer_decide(&job, false);
	ok(peer_sends(&job, "link", S_IFLNK | 0777), "wingxfer: a symlink is sent");
	is_int(job.progress.bytes_total, 1000, "wingxfer: a hard-linked inode's data counted once");
	is_int(job.progress.files_total, 10, "wingxfer: symlinks counted as entries");
	is_int(peer_file_begin(p, "b.bin", true, 0, 100, why, sizeof why), 0,
	    "wingxfer: a hard link entry is allowed");
	is_int(peer_file_end(p, why, sizeof why), 0, "wingxfer: ... with no data");
	is_int(peer_tree_end(&job, why, sizeof why), 0, "wingxfer: the tree ends");
	ok(peer_warning(p) == NULL && job.rec.warning == NULL, "wingxfer: no warning");
	job_reset(&job);

	/* Go Wings: totals adjusted, symlinks left out and named. */
	p->walk_symlinks = 7;
	p->walk_link_bytes = 100;
	job.progress.bytes_total = 1000;
	job.progress.files_total = 10;
	peer_decide(&job, true);
	is_int(job.progress.bytes_total, 1100, "wings: every name of a hard-linked file counted whole");
	is_int(job.progress.files_total, 3, "wings: symlinks not counted as entries");
	has_str(logged, "hard-linked files are sent whole", "wings: the log says so");
	has_str(logged, "symlinks are left out", "wings: ... and that symlinks are left out");
	const char *links[] = { "s1", "dir/s2", "s\n3", "s4", "s5", "s6", "s7" };
	for (size_t i = 0; i < 7; i++)
		ok(!peer_sends(&job, links[i], S_IFLNK | 0777), "wings: symlink %zu left out", i + 1);
	ok(peer_sends(&job, "f", S_IFREG | 0644) && peer_sends(&job, "d", S_IFDIR | 0755),
	    "wings: files and directories are sent");

	/* Directories: 'a' holds 'a/b' (empty), 'c' holds a file, 'd' is empty. */
	peer_sent(&job, "a", S_IFDIR | 0700);
	peer_sent(&job, "a/b", S_IFDIR | 0755);
	peer_sent(&job, "c", S_IFDIR | 02775);
	peer_sent(&job, "c/x", S_IFREG | 0644);
	peer_sent(&job, "cd", S_IFDIR | 0755);
	peer_sent(&job, "cd/y", S_IFREG | 0644);
	peer_sent(&job, "d", S_IFDIR | 0755);

	/* The whole-file check. */
	is_int(peer_file_begin(p, "data/b.bin", true, 0, 100000, why, sizeof why), -1,
	    "wings: a hard link entry fails");
	has_str(why, "data/b.bin would go to the destination as a hard link", "... naming the path");
	is_int(peer_file_begin(p, "short.bin", false, 10, 100, why, sizeof why), -1,
	    "a header size other than the file's fails");
	has_str(why, "short.bin: its archive entry holds 10 bytes, the file has 100", "... naming both");
	is_int(peer_file_begin(p, "a.bin", false, 100, 100, why, sizeof why), 0, "a whole file begins");
	peer_file_data(p, 60);
	is_int(peer_tree_end(&job, why, sizeof why), -1, "the archive cannot end inside a file");
	has_str(why, "a.bin: the archive ended inside its data", "... naming it");
	is_int(peer_file_end(p, why, sizeof why), -1, "60 of 100 bytes: the file fails");
	has_str(why, "a.bin: 60 of its 100 bytes were sent", "... naming the path and the counts");
	is_int(peer_file_begin(p, "a.bin", false, 100, 100, why, sizeof why), 0, "again");
	peer_file_data(p, 60);
	peer_file_data(p, 40);
	is_int(peer_file_end(p, why, sizeof why), 0, "100 of 100 bytes: whole");
	is_int(peer_file_begin(p, "empty", false, 0, 0, why, sizeof why), 0, "an empty file");
	is_int(peer_file_end(p, why, sizeof why), 0, "... is whole");
	is_int(peer_file_end(p, why, sizeof why), -1, "an end without a start fails");
	is_int(p->files_whole, 2, "2 files sent whole");
	is_int(p->bytes_whole, 100, "100 bytes sent whole");

	is_int(peer_tree_end(&job, why, sizeof why), 0, "the tree ends");
	is_int(p->empty_dirs, 2, "2 empty directories (a/b, d)");
	is_int(p->dirs_odd_mode, 2, "2 directories not 0755 (a, c)");
	has_str(logged, "2 directories with modes other than 0755 arrive 0755; 2 empty directories",
	    "the log says what Go Wings does with them");
	char *w = peer_warning(p);
	is_str(w, "7 symlinks were left out: the destination is Go Wings, which would store each "
	    "as an empty file; recreate them there by hand: s1, dir/s2, s?3, s4, s5 and 2 more",
	    "the warning: count, the first 5 (control characters shown as ?), how many more");
	is_str(job.rec.warning, w, "the record's warning");
	is_str(warned, w, "a warning in the log and the events");
	is_int(extra_int(&job, "symlinks_left_out"), 7, "extra.symlinks_left_out");
	warned[0] = '\0';
	peer_report(&job);
	is_str(warned, "", "reported once");
	is_str(job.rec.warning, w, "... the record's warning not repeated");
	free(w);
	job_reset(&job);

	/* One symlink, a long name cut. */
	peer_decide(&job, true);
	char longname[400];
	memset(longname, 'n', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	ok(!peer_sends(&job, longname, S_IFLNK | 0777), "a symlink with a 399-byte name left out");
	w = peer_warning(p);
	has_str(w, "1 symlink was left out", "singular");
	has_str(w, "recreate it there by hand: nnnn", "... it");
	ok(w != NULL && strlen(w) < 400 && strstr(w, "n...") != NULL, "the long name is cut with ...");
	free(w);
	job_reset(&job);
	return tap_done();
}
