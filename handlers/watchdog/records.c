/*
 * The transfer records the watchdog walks: <state>/transfers/<uuid>.json.
 */
#include "autoconf.h"

#include "watchdog.h"
#include "state.h"
#include "util.h"
#include "uuid.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

char **
wd_record_uuids(struct wd *w, size_t *count)
{
	*count = 0;
	DIR *d = opendir(w->st->transfers);
	if (d == NULL) {
		wd_error(w, NULL, "cannot read %s: %s", w->st->transfers, strerror(errno));
		return NULL;
	}
	char **uuids = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strlen(de->d_name) != 36 + 5 || strcmp(de->d_name + 36, ".json") != 0)
			continue;
		char uuid[37];
		memcpy(uuid, de->d_name, 36);
		uuid[36] = '\0';
		if (!wx_uuid_valid(uuid))
			continue;
		uuids = xrealloc(uuids, (n + 1) * sizeof *uuids);
		uuids[n++] = xstrdup(uuid);
	}
	closedir(d);
	*count = n;
	return uuids;
}
