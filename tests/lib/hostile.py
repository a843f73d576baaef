#!/usr/bin/env python3
"""hostile.py: archives a destination must not let out of its staging dir.

  hostile.py KIND OUT.tar.gz OUTSIDE

OUTSIDE is a directory outside the destination's data directory that the
archive tries to reach (the test checks afterwards that nothing appeared in
it and that OUTSIDE/victim is unchanged).  KINDs:
  dotdot            "../escaped" and "a/../../escaped"
  absolute          OUTSIDE/pwned-absolute as an absolute entry path
  symlink-through   "lnk" -> OUTSIDE, then the file "lnk/pwned-symlink"
  symlink-relative  "up" -> "../../..", then the file "up/pwned-relative"
  hardlink-outside  hardlink "hl" to OUTSIDE/victim, then data for "hl"
  hardlink-dotdot   hardlink "hl" to "../../victim"
  hardlink-symlink  "lnk" -> OUTSIDE, hardlink "hl" to "lnk/victim", data for "hl"
  device            a character device, a block device and a FIFO among
                    normal files (they must be skipped, the rest extracted)
  setuid            a setuid file and a setgid directory (bits must be cleared)
Every kind starts with a harmless file "ok.txt" so that extraction begins.
"""
import io
import sys
import tarfile
import time


def add_file(t, name, data=b"data\n", mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = int(time.time())
    t.addfile(ti, io.BytesIO(data))


def add(t, name, kind, link="", mode=0o777, devmajor=0, devminor=0):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = link
    ti.mode = mode
    ti.devmajor, ti.devminor = devmajor, devminor
    ti.mtime = int(time.time())
    t.addfile(ti)


def main():
    kind, out, outside = sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/")
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as t:
        add_file(t, "ok.txt")
        if kind == "dotdot":
            add_file(t, "../escaped")
            add_file(t, "a/../../escaped")
        elif kind == "absolute":
            add_file(t, outside + "/pwned-absolute")
        elif kind == "symlink-through":
            add(t, "lnk", tarfile.SYMTYPE, outside)
            add_file(t, "lnk/pwned-symlink")
        elif kind == "symlink-relative":
            add(t, "up", tarfile.SYMTYPE, "../../..")
            add_file(t, "up/pwned-relative")
        elif kind == "hardlink-outside":
            add(t, "hl", tarfile.LNKTYPE, outside + "/victim")
            add_file(t, "hl", b"overwritten\n")
        elif kind == "hardlink-dotdot":
            add(t, "hl", tarfile.LNKTYPE, "../../victim")
            add_file(t, "hl", b"overwritten\n")
        elif kind == "hardlink-symlink":
            add(t, "lnk", tarfile.SYMTYPE, outside)
            add(t, "hl", tarfile.LNKTYPE, "lnk/victim")
            add_file(t, "hl", b"overwritten\n")
        elif kind == "device":
            add(t, "dev/null-char", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)
            add(t, "dev/loop-block", tarfile.BLKTYPE, mode=0o660, devmajor=7, devminor=0)
            add(t, "dev/fifo", tarfile.FIFOTYPE, mode=0o644)
            add_file(t, "after-devices.txt")
        elif kind == "setuid":
            add_file(t, "suid-bin", b"#!/bin/sh\n", mode=0o4755)
            ti = tarfile.TarInfo("sgid-dir")
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o2775
            ti.mtime = int(time.time())
            t.addfile(ti)
            add_file(t, "sgid-dir/file", mode=0o2644)
        else:
            sys.exit("unknown kind " + kind)


if __name__ == "__main__":
    main()
