#!/usr/bin/env python3
"""go_extractor: what a Go Wings destination makes of a transfer archive.

A stand-in for the extractors of the Go daemons (shared/docs/wings-protocol.md
section 3.5), entry type by entry type, so the tests see what a real
Pterodactyl, Pelican or FeatherWings destination would store:

  flavour       dirs                 symlink            hard link / FIFO / device
  pterodactyl   entry ignored; made  empty regular      empty regular file
  (P11)         0755 as parents      file               (its header mode)
  pelican,      created 0755         empty regular      empty regular file
  featherwings  (existing: kept)     file
  pterodactyl-  created 0755         created as a       left out
  latest (PL)                        symlink

Common to all: names are joined to "/" and cleaned ("..", leading "/"
dropped); only gzip(tar) is read (anything else is "unknown archive");
a regular file gets its data (at most its header size), its header mode
(permissions with setuid/setgid/sticky) under the umask 022 Wings runs with,
kept as it was when the file already exists, and its mtime; tar uid/gid are
ignored; parents are made 0755.  A symlink entry's header mode is usually
0777, so the empty file it becomes is 0755 after the umask.

Usage: go_extractor.py --flavour F ARCHIVE DIR   (prints a JSON summary)
"""
import argparse
import json
import os
import posixpath
import sys
import tarfile

FLAVOURS = ("pterodactyl", "pelican", "featherwings", "pterodactyl-latest")
UMASK = 0o022


def clean(name):
    """filepath.Join("/", name) as a path relative to the root ("" = root)."""
    return posixpath.normpath(posixpath.join("/", name)).lstrip("/")


def mkdir_all(root, rel):
    """MkdirAll(rel, 0755): missing directories only; existing ones are kept."""
    path = root
    for part in [p for p in rel.split("/") if p]:
        path = os.path.join(path, part)
        if not os.path.isdir(path):
            os.mkdir(path, 0o755)


def touch(root, rel, mode):
    """unixFS.Touch(O_RDWR|O_TRUNC|O_CREATE, mode) after making the parents."""
    mkdir_all(root, posixpath.dirname(rel))
    path = os.path.join(root, rel)
    fd = os.open(path, os.O_RDWR | os.O_TRUNC | os.O_CREAT | os.O_NOFOLLOW, mode & 0o7777)
    return os.fdopen(fd, "wb")


def extract(archive, root, flavour):
    """Extracts archive (a path) into root; returns a summary dict."""
    old = os.umask(UMASK)
    summary = {"flavour": flavour, "files": 0, "dirs": 0, "emptied": [], "skipped": [],
               "symlinks": 0, "errors": []}
    try:
        os.makedirs(root, 0o700, exist_ok=True)
        with open(archive, "rb") as f:
            if f.read(2) != b"\x1f\x8b":
                summary["errors"].append("unknown archive format (not gzip)")
                return summary
        with tarfile.open(archive, mode="r:gz") as t:  # gzip members, as Go reads them
            for m in t:
                rel = clean(m.name)
                if rel == "":
                    continue
                if m.isdir():
                    if flavour != "pterodactyl":
                        mkdir_all(root, rel)
                        summary["dirs"] += 1
                    continue
                if m.issym() and flavour == "pterodactyl-latest":
                    mkdir_all(root, posixpath.dirname(rel))
                    try:
                        os.symlink(m.linkname, os.path.join(root, rel))
                    except FileExistsError:
                        pass
                    summary["symlinks"] += 1
                    continue
                if not m.isreg():
                    if flavour == "pterodactyl-latest":
                        summary["skipped"].append(rel)
                        continue
                    # syscallMode drops the type bits: an empty regular file.
                    touch(root, rel, m.mode).close()
                    os.utime(os.path.join(root, rel), (m.mtime, m.mtime), follow_symlinks=False)
                    summary["emptied"].append(rel)
                    continue
                with touch(root, rel, m.mode) as out:
                    src = t.extractfile(m)
                    left = m.size
                    while left > 0:
                        chunk = src.read(min(left, 1 << 20))
                        if not chunk:
                            break
                        out.write(chunk)
                        left -= len(chunk)
                os.utime(os.path.join(root, rel), (m.mtime, m.mtime), follow_symlinks=False)
                summary["files"] += 1
    except (tarfile.TarError, OSError, EOFError) as e:
        summary["errors"].append("extract: %s" % e)
    finally:
        os.umask(old)
    return summary


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--flavour", choices=FLAVOURS, required=True)
    p.add_argument("archive")
    p.add_argument("dir")
    a = p.parse_args()
    s = extract(a.archive, a.dir, a.flavour)
    json.dump(s, sys.stdout)
    sys.stdout.write("\n")
    return 1 if s["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
