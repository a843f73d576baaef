#!/bin/bash
# What a Go Wings destination stores (issue 22): wingxfer-push, started through
# wingxfer-source, sends a tree with hard links, symlinks, empty directories
# and odd modes to the recording receiver extracting like the Go daemons
# (tests/receiver/go_extractor.py; OPTIONS without X-Wingxfer-Capabilities).
# Every regular file must arrive whole under each of its names (a hard link
# entry would become an empty file there), symlinks are left out (they would
# become empty 0755 files) with a warning naming the first few and the count
# in the record, the status, the events and the log, and in the panel's
# failure text when the transfer fails.  A wingxfer destination (capabilities
# header) still gets hard links and symlinks as links.
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/panel.sh"
. "$top_srcdir/tests/lib/push.sh"
wx_tmpdir
panel_start
source_node "    stall_timeout: 10
    response_timeout: 30
    connect_timeout: 5"

new_server() { new_source_server "$DATA"; }

# make_tree DIR: hard links (3 names of a 100 kB file, 2 of an empty one),
# 7 symlinks (relative, absolute, dangling, to a directory), empty
# directories, odd file and directory modes, a 3 MiB file and a FIFO.
make_tree() {
	python3 - "$1" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(22)
def w(rel, data, mode=0o644):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, mode)
w("data/a.bin", rnd.randbytes(100000))
os.link(os.path.join(root, "data/a.bin"), os.path.join(root, "data/b.bin"))
os.makedirs(os.path.join(root, "deep/er"))
os.link(os.path.join(root, "data/a.bin"), os.path.join(root, "deep/er/c.bin"))
w("empty.txt", b"")
os.link(os.path.join(root, "empty.txt"), os.path.join(root, "data/empty-link.txt"))
w("world/region/r.0.0.mca", rnd.randbytes(3 << 20))
w("config/x.yml", b"x: 1\n")
w("private/secret.txt", b"secret\n", 0o600)
os.chmod(os.path.join(root, "private"), 0o700)
w("start.sh", b"#!/bin/sh\necho hi\n", 0o750)
w("bin/suid-tool", b"\x7fELF not really\n", 0o4755)
os.makedirs(os.path.join(root, "shared"), exist_ok=True)
os.chmod(os.path.join(root, "shared"), 0o2775)
w("shared/group.txt", b"group\n", 0o664)
os.makedirs(os.path.join(root, "empty-dir"))
os.makedirs(os.path.join(root, "empty/nested/deeper"))
os.makedirs(os.path.join(root, "plugins"))
for link, target in [("plugins/x.yml", "../config/x.yml"), ("unix_args.txt", "config/x.yml"),
                     ("localtime", "/usr/share/zoneinfo/UTC"), ("dangling", "does-not-exist"),
                     ("world-link", "world"), ("plugins/a", "../data/a.bin"),
                     ("deep/er/up", "../../start.sh")]:
    os.symlink(target, os.path.join(root, link))
os.mkfifo(os.path.join(root, "console.fifo"))
PY
}

# files DIR: "sha256 path" of every regular file (each name), sorted.
files() {
	python3 - "$1" <<'PY'
import hashlib, os, stat, sys
root = sys.argv[1]
out = []
for d, dirs, names in os.walk(root):
    for n in names:
        p = os.path.join(d, n)
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode):
            h = hashlib.sha256(open(p, "rb").read()).hexdigest()
            out.append("%s %s" % (h, os.path.relpath(p, root)))
print("\n".join(sorted(out)))
PY
}
# others DIR: every entry that is not a regular file or a directory.
others() { (cd "$1" && find . -mindepth 1 ! -type f ! -type d | sort); }
modes() { (cd "$1" && stat -c '%a %n' private/secret.txt start.sh bin/suid-tool shared/group.txt data/b.bin); }
dirs_of() { (cd "$1" && find . -mindepth 1 -type d -printf '%m %P\n' | sort); }
status_json() {
	local node
	node=$(sed -n 's/^token: //p' "$CFG")
	body_of "$(cgi wingxfer-source "$CFG" GET "/api/servers/$1/transfer" "Bearer $node" </dev/null)"
}

# --- Pterodactyl Wings' extractor -----------------------------------------------
U=$(new_server)
make_tree "$DATA/$U"
recv_start ptero --extract "$WX_TEST_TMP/x-ptero" --flavour pterodactyl
out=$(post_transfer "$CFG" "$U" "$RECV_URL")
is "$(status_of "$out")" 202 "ptero: 202"
ok "ptero: the worker finishes" wait_worker "$STATE" "$U" 120
is "$(rec "$STATE" "$U" '["status"]')" completed "ptero: completed"
is "$(recv_last '["errors"]')" "[]" "ptero: the multipart shape and checksums are right"
is "$(recv_last '["extract"]["errors"]')" "[]" "ptero: the stand-in extracted the archive"
X=$(recv_last '["extracted"]')
is "$(stat -c %s "$X/data/b.bin" 2>&1)" 100000 "ptero: the hard-linked data/b.bin arrives with its 100000 bytes"
is "$(files "$X")" "$(files "$DATA/$U")" \
	"ptero: every regular file, under each of its names, arrives with its content"
is "$(modes "$X" | tr '\n' ' ')" "600 private/secret.txt 750 start.sh 4755 bin/suid-tool 644 shared/group.txt 644 data/b.bin " \
	"ptero: file modes kept (setuid too), but under Wings' umask 022 (0664 arrives 0644)"
is "$(recv_last '["extract"]["emptied"]')" "[]" "ptero: no entry was turned into an empty file"
is "$(others "$X")" "" "ptero: nothing but files and directories arrives (no symlink became a file)"
like "$(dirs_of "$X")" '755 private' "ptero: the extractor makes directories 0755 (its choice)"
unlike "$(dirs_of "$X")" 'empty-dir' "ptero: the extractor creates no empty directory (its choice)"
is "$(rec "$STATE" "$U" '["extra"]["destination"]')" wings "ptero: the record says the destination is Go Wings"
is "$(rec "$STATE" "$U" '["extra"]["symlinks_left_out"]')" 7 "ptero: the record counts 7 symlinks left out"
warning=$(rec "$STATE" "$U" '["warning"]')
like "$warning" '^7 symlinks were left out' "ptero: the record's warning gives the count"
n=0
for p in plugins/x.yml unix_args.txt localtime dangling world-link plugins/a deep/er/up; do
	case "$warning" in *"$p"*) n=$((n + 1)) ;; esac
done
is "$n" 5 "ptero: ... and names the first 5 of the 7 paths"
like "$warning" 'and 2 more' "ptero: ... and says how many more"
st=$(status_json "$U")
is "$(json_get "$st" '["warning"]')" "$warning" "ptero: GET /api/servers/:uuid/transfer shows the warning"
like "$(events "$STATE" "$U")" 'transfer logs: 7 symlinks were left out' "ptero: the warning is a transfer log event"
like "$(cat "$STATE/transfers/$U.log")" 'warn transfer=.*: 7 symlinks were left out' "ptero: ... and in the worker log as a warning"
like "$(events "$STATE" "$U")" 'hard-linked files are sent whole' "ptero: the log says hard links are sent whole"
like "$(cat "$STATE/transfers/$U.log")" 'every regular file was sent whole: 11 files, 3445780 bytes' \
	"ptero: the tree-level check counted every regular file's bytes"
is "$(rec "$STATE" "$U" '["bytes_read"]')" "$(rec "$STATE" "$U" '["bytes_total"]')" \
	"ptero: bytes read = the size walk's total (hard links counted each time)"
is "$(rec "$STATE" "$U" '["files"]')" "$(rec "$STATE" "$U" '["extra"]["files_total"]')" \
	"ptero: entries archived = entries counted (symlinks not counted)"
like "$(events "$STATE" "$U")" '2 directories with modes other than 0755 arrive 0755' \
	"ptero: the log says directory modes become 0755 there"
like "$(events "$STATE" "$U")" '3 empty directories' "ptero: ... and what happens to the empty directories"
is "$(ncb=$(callbacks "$U" | grep -c .); echo "$ncb")" 0 "ptero: no panel callback on success"
stop_pid "$RECV_PID"

# --- Pelican / FeatherWings: directory entries created 0755 -----------------------
for flavour in pelican featherwings pterodactyl-latest; do
	U=$(new_server)
	make_tree "$DATA/$U"
	recv_start "$flavour" --extract "$WX_TEST_TMP/x-$flavour" --flavour "$flavour"
	post_transfer "$CFG" "$U" "$RECV_URL" >/dev/null
	wait_worker "$STATE" "$U" 120
	is "$(rec "$STATE" "$U" '["status"]')" completed "$flavour: completed"
	X=$(recv_last '["extracted"]')
	is "$(files "$X")" "$(files "$DATA/$U")" "$flavour: every regular file arrives whole"
	is "$(others "$X")" "" "$flavour: no symlink (nor anything else) in place of a left-out link"
	is "$(recv_last '["extract"]["skipped"]')" "[]" "$flavour: no entry the extractor drops was sent"
	like "$(dirs_of "$X")" '755 empty-dir' "$flavour: empty directories are created, 0755"
	stop_pid "$RECV_PID"
done

# --- a failing Go Wings destination: the panel's failure text has the warning ------
U=$(new_server)
make_tree "$DATA/$U"
recv_start fail --mode late --status 500 --error "disk quota exceeded"
post_transfer "$CFG" "$U" "$RECV_URL" >/dev/null
wait_worker "$STATE" "$U" 120
is "$(rec "$STATE" "$U" '["status"]')" failed "failing destination: failed"
like "$(rec "$STATE" "$U" '["error"]')" 'HTTP 500: disk quota exceeded.*7 symlinks were left out' \
	"failing destination: the record's error carries the symlink warning"
cb=$(callbacks "$U")
like "$cb" '^failure .*7 symlinks were left out' "failing destination: the panel's failure text names the left-out symlinks"
stop_pid "$RECV_PID"

# --- a wingxfer destination (X-Wingxfer-Capabilities): links stay links -----------
U=$(new_server)
make_tree "$DATA/$U"
recv_start wingxfer --capabilities "gzip"
post_transfer "$CFG" "$U" "$RECV_URL" >/dev/null
wait_worker "$STATE" "$U" 120
is "$(rec "$STATE" "$U" '["status"]')" completed "wingxfer destination: completed"
is "$(rec "$STATE" "$U" '["extra"]["destination"]')" wingxfer "wingxfer destination: recorded as such"
is "$(rec "$STATE" "$U" '["warning"]')" null "wingxfer destination: no warning"
types=$(python3 - "$RECV_DIR/save/0-archive" <<'PY'
import sys, tarfile
ms = tarfile.open(sys.argv[1]).getmembers()
print("sym", sum(m.issym() for m in ms), "hard", sorted(m.name for m in ms if m.islnk()))
PY
)
is "$types" "sym 7 hard ['data/b.bin', 'data/empty-link.txt', 'deep/er/c.bin']" \
	"wingxfer destination: 7 symlinks and the hard links (data once) as today"
is "$(rec "$STATE" "$U" '["bytes_read"]')" $((100000 + (3 << 20) + 5 + 7 + 18 + 16 + 6)) \
	"wingxfer destination: the hard-linked data is read once"
stop_pid "$RECV_PID"

panel_stop
done_testing
