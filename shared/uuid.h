/*
 * UUIDs as Wings uses them: server UUIDs in paths and JWT subjects, request
 * ids.  Canonical form is 36 lowercase characters 8-4-4-4-12.
 */
#ifndef WX_UUID_H
#define WX_UUID_H

#include <stdbool.h>
#include <stddef.h>

/* True for the canonical 8-4-4-4-12 hex form (either case). */
bool wx_uuid_valid(const char *s);

/*
 * Normalises what Go's uuid.Parse accepts (canonical, {braced},
 * urn:uuid:..., 32 hex digits) into canonical lowercase in out[37].
 * Returns 0, or -1 if s is not a UUID.
 */
int wx_uuid_normalize(const char *s, char out[37]);

/* A random (version 4) UUID in out[37]. */
void wx_uuid_random(char out[37]);

#endif
