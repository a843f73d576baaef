#include "autoconf.h"

#include "url_redact.h"
#include "util.h"

#include <string.h>

/* The userinfo of url: its start in *ui and its length (up to the last '@'
 * of the authority); false when there is none. */
static bool
userinfo(const char *url, const char **ui, size_t *len)
{
	const char *sep = strstr(url, "://");
	if (sep == NULL)
		return false;
	const char *auth = sep + 3;
	size_t alen = strcspn(auth, "/?#");
	const char *at = NULL;
	for (size_t i = 0; i < alen; i++)
		if (auth[i] == '@')
			at = auth + i;
	if (at == NULL)
		return false;
	*ui = auth;
	*len = (size_t)(at - auth);
	return true;
}

bool
wx_url_has_userinfo(const char *url)
{
	const char *ui;
	size_t len;
	return userinfo(url, &ui, &len);
}

char *
wx_url_redact(const char *url)
{
	const char *ui;
	size_t len;
	if (!userinfo(url, &ui, &len))
		return xstrdup(url);
	return xasprintf("%.*s%s%s", (int)(ui - url), url, WX_URL_REDACTED, ui + len);
}
