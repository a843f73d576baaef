#!/usr/bin/env python3
"""Server trees for the tests: make a deterministic game-server-like tree,
and print a manifest of a tree to compare two trees byte for byte.

  trees.py make DIR [--files N] [--seed S] [--big-mib M]
      regular files (0 B to a few MiB, text-like and random), nested and empty
      directories, symlinks (relative, absolute, dangling, to directories), a
      hardlink, odd modes, names with spaces, UTF-8 and 200-character paths,
      fixed mtimes.
  trees.py manifest DIR [--exact]
      one line per entry, sorted: type, mode, size, sha256 or link target,
      mtime (whole seconds), relative path.  Two trees are identical when their
      manifests are.  --exact: mtimes in nanoseconds, and each regular file
      names the first path (sorted) of its hard-link group, so that which
      names share an inode is compared too.
"""
import argparse
import hashlib
import os
import random
import stat
import sys

MTIME = 1700000000


def make(root, files, seed, big_mib):
    rnd = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    dirs = ["", "world", "world/region", "world/DIM-1/region", "plugins",
            "plugins/Essentials", "config", "logs", "libraries/net/minecraftforge",
            "mods", "caché/ünïcode dir", "with space", "empty-dir",
            "empty/nested/deeper"]
    for d in dirs:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    long_dir = os.path.join(root, "deep", *(["d" * 40] * 4))
    os.makedirs(long_dir, exist_ok=True)
    made = 0
    words = [b"spawn", b"level", b"player", b"chunk", b"server", b"true", b"false", b"=", b"\n"]
    for i in range(files):
        d = dirs[i % (len(dirs) - 2)]  # keep the empty dirs empty
        kind = rnd.random()
        if kind < 0.5:
            size = rnd.randint(0, 2048)
        elif kind < 0.98:
            size = rnd.randint(2048, 32 * 1024)
        else:
            size = rnd.randint(32 * 1024, 1024 * 1024)
        if rnd.random() < 0.5:
            data = rnd.randbytes(size)
        else:
            out = bytearray()
            while len(out) < size:
                out += rnd.choice(words)
            data = bytes(out[:size])
        name = "file-%05d.dat" % i if i % 7 else "file %05d ümlaut.txt" % i
        path = os.path.join(root, d, name)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644 if i % 5 else 0o755 if i % 10 else 0o600)
        made += 1
    # 200-character path (relative to the root)
    rel = os.path.join("deep", *(["d" * 40] * 4), "x" * (200 - len(os.path.join("deep", *(["d" * 40] * 4))) - 1))
    with open(os.path.join(root, rel), "wb") as f:
        f.write(b"long path\n")
    if big_mib:
        with open(os.path.join(root, "world/region/big.mca"), "wb") as f:
            block = rnd.randbytes(1024 * 1024)
            for i in range(big_mib):
                f.write(block if i % 2 else bytes(1024 * 1024))
    # symlinks as game servers have them (Forge unix_args.txt, node_modules/.bin)
    os.symlink("libraries/net/minecraftforge/unix_args.txt", os.path.join(root, "unix_args.txt"))
    with open(os.path.join(root, "libraries/net/minecraftforge/unix_args.txt"), "w") as f:
        f.write("-Xmx4G\n")
    os.symlink("../world", os.path.join(root, "plugins/world-link"))
    os.symlink("/usr/share/zoneinfo/UTC", os.path.join(root, "config/localtime"))
    os.symlink("does-not-exist", os.path.join(root, "dangling"))
    os.link(os.path.join(root, "libraries/net/minecraftforge/unix_args.txt"),
            os.path.join(root, "config/hardlinked_args.txt"))
    os.chmod(os.path.join(root, "logs"), 0o750)
    # fixed mtimes, deepest first so directory times stick
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), (MTIME, MTIME), follow_symlinks=False)
    os.utime(root, (MTIME, MTIME))
    return made


def manifest(root, exact=False):
    lines = []
    groups = {}
    if exact:
        for dirpath, dirnames, filenames in os.walk(root):
            for n in filenames:
                st = os.lstat(os.path.join(dirpath, n))
                if stat.S_ISREG(st.st_mode):
                    rel = os.path.relpath(os.path.join(dirpath, n), root)
                    key = (st.st_dev, st.st_ino)
                    groups[key] = min(groups.get(key, rel), rel)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            mode = "%04o" % stat.S_IMODE(st.st_mode)
            mtime = st.st_mtime_ns if exact else int(st.st_mtime)
            if stat.S_ISLNK(st.st_mode):
                lines.append("l - - %s %d %s" % (os.readlink(p), mtime, rel))
            elif stat.S_ISDIR(st.st_mode):
                lines.append("d %s - - %d %s" % (mode, mtime, rel))
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                link = " = " + groups[(st.st_dev, st.st_ino)] if exact else ""
                lines.append("f %s %d %s %d %s%s" % (mode, st.st_size, h.hexdigest(), mtime, rel,
                                                     link))
            else:
                lines.append("? %s - - %d %s" % (mode, mtime, rel))
    for line in sorted(lines):
        print(line)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    m.add_argument("--files", type=int, default=300)
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--big-mib", type=int, default=0)
    s = sub.add_parser("manifest")
    s.add_argument("dir")
    s.add_argument("--exact", action="store_true")
    a = ap.parse_args()
    if a.cmd == "make":
        make(a.dir, a.files, a.seed, a.big_mib)
    else:
        manifest(a.dir, a.exact)


if __name__ == "__main__":
    sys.exit(main())
