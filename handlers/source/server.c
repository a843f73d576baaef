#include "autoconf.h"

#include "source.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "request.h"
#include "uuid.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *
source_server_dir(struct wx_request *req, char uuid[37])
{
	if (wx_uuid_normalize(req->param, uuid) < 0) {
		wx_req_error(req, 404, "The requested resource does not exist on this instance.");
		return NULL;
	}
	wx_log_set_transfer(uuid);
	char *dir = wx_path_join(req->cfg->data_directory, uuid);
	struct stat sb;
	if (stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		if (errno != ENOENT && errno != ENOTDIR)
			wx_warn("cannot stat server directory %s: %s", dir, strerror(errno));
		free(dir);
		wx_req_error(req, 404, "The requested resource does not exist on this instance.");
		return NULL;
	}
	return dir;
}
