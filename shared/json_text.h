/*
 * Every JSON text wingxfer writes (answers, records, events, outbox files,
 * the watchdog's report) is made here, so it is always valid UTF-8: json-c
 * copies the bytes of a string as they are, and strings may hold bytes from
 * outside (entry names of an archive, errors quoting them, panel answers).
 * Each byte that does not start a well-formed UTF-8 sequence (overlong
 * forms, surrogates and code points past U+10FFFF included) becomes U+FFFD.
 */
#ifndef WX_JSON_TEXT_H
#define WX_JSON_TEXT_H

#include <json-c/json.h>
#include <stddef.h>

/* j serialized with json-c flags, valid UTF-8; malloc'd, length in *len (may be NULL). */
char *wx_json_text(json_object *j, int flags, size_t *len);

/* s[0..len) with ill-formed UTF-8 replaced by U+FFFD; malloc'd, NUL-terminated. */
char *wx_utf8_repair(const char *s, size_t len, size_t *outlen);

#endif
