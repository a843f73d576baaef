/*
 * The rules a server's tree must follow to be transferred, shared by the
 * sending side (wingxfer-push refuses such a tree before sending a byte) and
 * the receiving side (wingxfer-destination refuses such an archive with 422).
 * What one side refuses, the other refuses too.  docs/archive-rules.md says
 * the same for people.
 */
#ifndef WX_TREE_RULES_H
#define WX_TREE_RULES_H

/*
 * Directory levels, the server root counted: the push holds one open
 * directory per level.  A directory entry has at most WX_TREE_MAX_DEPTH - 1
 * path components, any other entry at most WX_TREE_MAX_DEPTH.
 */
#define WX_TREE_MAX_DEPTH 512

#define WX_ENTRY_PATH_MAX 4095      /* bytes of an entry path, as PATH_MAX - 1 on Linux */
#define WX_ENTRY_NAME_MAX 255       /* bytes per path component */

#endif
