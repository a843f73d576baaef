#include "autoconf.h"

#include "connect_to.h"
#include "config.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_HOST 253

static bool
name_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

const char *
wx_hostport_check(const char *s, char *out, size_t outsize)
{
	const char *colon;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL)
			return "has no closing ] after the IPv6 address";
		char addr[64];
		struct in6_addr a6;
		size_t len = (size_t)(close - s - 1);
		if (len == 0 || len >= sizeof addr)
			return "is not an IPv6 address in brackets";
		memcpy(addr, s + 1, len);
		addr[len] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1)
			return "is not an IPv6 address in brackets";
		if (close[1] != ':')
			return "has no port after the address";
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return "has no port";
		if (memchr(s, ':', (size_t)(colon - s)) != NULL)
			return "has more than one colon (an IPv6 address must be in brackets, [::1]:8443)";
		if (colon == s)
			return "has no host before the port";
		if ((size_t)(colon - s) > MAX_HOST)
			return "has a host name longer than 253 characters";
		for (const char *p = s; p < colon; p++)
			if (!name_char(*p))
				return "has a character that cannot be in a host name";
		if (s[0] == '.' || s[0] == '-')
			return "has a host name that starts with a dot or a dash";
	}
	int64_t port;
	if (colon[1] == '\0')
		return "has no port after the colon";
	if (strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    wx_parse_i64(colon + 1, 1, 65535, &port) != NULL)
		return "has a port that is not a number from 1 to 65535";
	if (strlen(s) >= outsize)
		return "is too long";
	for (size_t i = 0; s[i] != '\0'; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[strlen(s)] = '\0';
	/* "0443" and "443" are the same port: keep the number as curl compares it. */
	snprintf(out + (colon - s), outsize - (size_t)(colon - s), ":%lld", (long long)port);
	return NULL;
}

const struct wx_connect_to *
wx_connect_to_find(const struct wx_connect_to_list *l, const char *url)
{
	if (l->count == 0 || url == NULL)
		return NULL;
	CURLU *u = curl_url();
	if (u == NULL)
		return NULL;
	char *host = NULL, *port = NULL;
	const struct wx_connect_to *found = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		char key[MAX_HOST + 16];
		if (wx_snprintf(key, sizeof key, "%s:%s", host, port) == 0) {
			for (int i = 0; i < l->count && found == NULL; i++)
				if (strcasecmp(l->items[i].match, key) == 0)
					found = &l->items[i];
		}
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return found;
}
