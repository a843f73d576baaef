/*
 * Destination URLs may carry credentials (https://user:pass@host/...): they
 * are used for the request, never logged or stored.  Everything that logs,
 * records or shows a URL passes it through wx_url_redact first.
 */
#ifndef WX_URL_REDACT_H
#define WX_URL_REDACT_H

#include <stdbool.h>

#define WX_URL_REDACTED "<redacted>"

/* True when url has userinfo ("scheme://userinfo@host..."). */
bool wx_url_has_userinfo(const char *url);

/*
 * A copy of url (malloc'd) with its userinfo replaced by WX_URL_REDACTED:
 * "https://u:p@h:8080/x" -> "https://<redacted>@h:8080/x".  A URL without
 * userinfo is copied as is.
 */
char *wx_url_redact(const char *url);

#endif
