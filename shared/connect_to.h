/*
 * system.transfers.connect_to: HOST:PORT -> ADDRESS:PORT overrides with the
 * meaning of curl's --connect-to.  A request to a URL whose host and port
 * (the scheme's default when the URL has none) equal an override's match
 * connects to its address instead; Host, TLS SNI and certificate
 * verification still use the URL's host.  The entries themselves live in
 * struct wx_config (config.h); this file checks their text and finds the one
 * for a URL.
 */
#ifndef WX_CONNECT_TO_H
#define WX_CONNECT_TO_H

#include <stddef.h>

struct wx_connect_to;
struct wx_connect_to_list;

/*
 * Checks "HOST:PORT": HOST a DNS name, an IPv4 address or an IPv6 address in
 * brackets, PORT 1..65535.  On success returns NULL and writes the
 * normalised form (host lower-cased) to out; else returns what is wrong, in
 * words that follow the quoted value ("has no port", ...).
 */
const char *wx_hostport_check(const char *s, char *out, size_t outsize);

/* The override whose match is url's host:port, or NULL (also for a bad url). */
const struct wx_connect_to *wx_connect_to_find(const struct wx_connect_to_list *l,
    const char *url);

#endif
