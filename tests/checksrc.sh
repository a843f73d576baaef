#!/bin/bash
# Banned functions (c-style.md §2.15): none may appear in the project's C code.
. "$top_srcdir/tests/lib/tap.sh"
cd "$top_srcdir" || exit 1
files=$(git ls-files 'shared/*.c' 'shared/*.h' 'handlers/*.c' 'handlers/*.h' 2>/dev/null || find shared handlers -name '*.[ch]')
for fn in gets sprintf vsprintf strcpy strcat strncpy strtok atoi atol atoll sscanf system popen; do
	hits=$(grep -nE "(^|[^_a-zA-Z0-9.>])$fn[[:space:]]*\(" $files | grep -v '^\s*/\?\*' || true)
	if [ -z "$hits" ]; then ok "no $fn()" true; else ok "no $fn()" false; diag "$hits"; fi
done
done_testing
