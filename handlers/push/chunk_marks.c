/*
 * The marks of a chunked upload (chunked.h): those made ahead of the
 * acknowledged offset wait; the last one at or below it is the one a
 * resume starts from, kept in the record as extra.resume.mark.
 */
#include "autoconf.h"

#include "chunked.h"
#include "util.h"

#include <string.h>

void
ch_marks_add(struct ch_marks *k, const struct body_mark *m)
{
	if (k->nwaiting == CH_MARKS_WAITING) {
		/* The oldest waiting one gives way: a resume then starts a little earlier. */
		memmove(&k->waiting[0], &k->waiting[1], (CH_MARKS_WAITING - 1) * sizeof k->waiting[0]);
		k->nwaiting--;
	}
	k->waiting[k->nwaiting++] = *m;
}

bool
ch_marks_settle(struct ch_marks *k, int64_t acked)
{
	int n = 0;
	while (n < k->nwaiting && k->waiting[n].offset <= acked)
		n++;
	if (n == 0)
		return false;
	k->acked = k->waiting[n - 1];
	k->has_acked = true;
	memmove(&k->waiting[0], &k->waiting[n], (size_t)(k->nwaiting - n) * sizeof k->waiting[0]);
	k->nwaiting -= n;
	return true;
}

void
ch_marks_forget(struct ch_marks *k)
{
	k->nwaiting = 0;
	k->has_acked = false;
}

json_object *
ch_mark_json(const struct body_mark *m)
{
	char archive[WX_SHA256_STATE_HEX], whole[WX_SHA256_STATE_HEX], last[65];
	wx_hex(m->last_sha256, sizeof m->last_sha256, last);
	wx_sha256_state_hex(&m->archive, archive);
	wx_sha256_state_hex(&m->whole, whole);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "offset", json_object_new_int64(m->offset));
	json_object_object_add(j, "entries", json_object_new_int64(m->entries));
	json_object_object_add(j, "last_sha256", json_object_new_string(last));
	json_object_object_add(j, "archive_sha256_state", json_object_new_string(archive));
	json_object_object_add(j, "sha256_state", json_object_new_string(whole));
	json_object_object_add(j, "bytes_read", json_object_new_int64(m->bytes_read));
	json_object_object_add(j, "files", json_object_new_int64(m->files));
	json_object_object_add(j, "archive_bytes", json_object_new_int64(m->archive_bytes));
	json_object_object_add(j, "skipped", json_object_new_int64(m->skipped));
	return j;
}

int
ch_mark_parse(json_object *j, struct body_mark *m)
{
	memset(m, 0, sizeof *m);
	const char *last = ch_json_str(j, "last_sha256");
	if (!ch_json_count(j, "offset", &m->offset) || m->offset <= 0 ||
	    !ch_json_count(j, "entries", &m->entries) || m->entries <= 0 ||
	    last == NULL || !wx_is_sha256_hex(last) ||
	    wx_sha256_state_parse(&m->archive, ch_json_str(j, "archive_sha256_state")) < 0 ||
	    wx_sha256_state_parse(&m->whole, ch_json_str(j, "sha256_state")) < 0 ||
	    !ch_json_count(j, "bytes_read", &m->bytes_read) ||
	    !ch_json_count(j, "files", &m->files) ||
	    !ch_json_count(j, "archive_bytes", &m->archive_bytes) ||
	    !ch_json_count(j, "skipped", &m->skipped))
		return -1;
	for (size_t i = 0; i < sizeof m->last_sha256; i++)
		m->last_sha256[i] = (unsigned char)(wx_hex_digit(last[2 * i]) << 4 |
		    wx_hex_digit(last[2 * i + 1]));
	return 0;
}
