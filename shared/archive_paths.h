/*
 * Checks on names that come from another node: archive entry paths and
 * hardlink targets (checked before libarchive sees them, in addition to its
 * ARCHIVE_EXTRACT_SECURE_* flags), and file names derived from multipart
 * part names (backup_<name>).  Pure string functions, so a fuzzer can reach
 * them.
 */
#ifndef WX_ARCHIVE_PATHS_H
#define WX_ARCHIVE_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#include "tree_rules.h"

#define WX_SAFE_NAME_MAX 128        /* bytes of a sanitised file name */

/*
 * Whether an entry path (or hardlink target) stays inside the directory it
 * is extracted into: not empty, not absolute, no ".." component, no
 * component longer than 255 bytes, at most 4095 bytes.  "." components and
 * repeated or trailing slashes are fine.  Returns NULL when safe, else a
 * static phrase ("is absolute", "contains a '..' component", ...).
 */
const char *wx_entry_path_problem(const char *path);

/*
 * The number of components of an entry path, "." and empty components not
 * counted: 0 for the root itself ("." or "./"), 1 for "a" or "./a/", 2 for
 * "a/b".  The depth rule (tree_rules.h) applies to it.
 */
size_t wx_entry_path_depth(const char *path);

/*
 * Makes a file name from untrusted text (e.g. "<uuid>.tar.gz" from a
 * backup_<uuid>.tar.gz part): the last '/'-separated component, characters
 * other than [A-Za-z0-9._-] replaced by '_', leading dots replaced by '_',
 * cut to WX_SAFE_NAME_MAX bytes.  Returns 0 with out filled, or -1 when
 * nothing usable remains (empty).  size must be > WX_SAFE_NAME_MAX.
 */
int wx_safe_file_name(const char *in, char *out, size_t size);

#endif
