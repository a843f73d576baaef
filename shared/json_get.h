/*
 * Typed reads of JSON object members for the files wingxfer writes and
 * reads back (transfer records, outbox entries).  A member that is absent or
 * null leaves *out unchanged and is not an error for the wx_json_opt_*
 * functions; a member of the wrong type, or a string too long for a fixed
 * buffer, is (-1).  None of them trusts the input: they are fuzzed through
 * the record reader.
 */
#ifndef WX_JSON_GET_H
#define WX_JSON_GET_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

int wx_json_opt_i64(json_object *j, const char *key, int64_t *out);
/* *out becomes a new string (caller frees). */
int wx_json_opt_str(json_object *j, const char *key, char **out);
int wx_json_opt_fixed(json_object *j, const char *key, char *out, size_t size);
/* Like wx_json_opt_fixed, but an absent member is an error too. */
int wx_json_req_fixed(json_object *j, const char *key, char *out, size_t size);

#endif
