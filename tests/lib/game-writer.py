#!/usr/bin/env python3
"""A stand-in for a running game server, for the live pre-sync tests and the
"live" benchmark: until SIGTERM (or --max-seconds), every --interval seconds
it rewrites a 4 KiB sector and the 8 KiB header of a random region file in
place (as Minecraft saves a chunk), appends a line to a log, and every few
turns saves a config the way games do (write a temp file, rename it over),
and creates and removes a scratch file.  On SIGTERM it finishes the turn it
is in and exits 0, so the tree is settled once its stop hook returns.

  game-writer.py DIR --pid-file F [--interval S] [--max-seconds S]
      [--region-glob GLOB] [--regions-per-turn N] [--count-file F]
  game-writer.py --stop F
      what a stop hook runs: SIGTERM to the writer whose pid F holds (if
      any), then waits until it is gone (at most 60 s)

Without --regions-per-turn each region file is saved on a turn with
probability 1/2; with it, N random ones.
"""
import argparse
import glob
import os
import random
import signal
import sys
import time

stop = False


def on_term(sig, frame):
    global stop
    stop = True


def stop_writer(pid_file):
    try:
        pid = int(open(pid_file).read())
    except (OSError, ValueError):
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return 0
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 0
        time.sleep(0.02)
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--stop", metavar="PID_FILE")
    ap.add_argument("--pid-file")
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--max-seconds", type=float, default=900)
    ap.add_argument("--region-glob", default="world/region/*.mca")
    ap.add_argument("--regions-per-turn", type=int, default=0)
    ap.add_argument("--count-file", default=None)
    a = ap.parse_args()
    if a.stop:
        return stop_writer(a.stop)
    if a.dir is None or a.pid_file is None:
        ap.error("DIR and --pid-file are needed")
    signal.signal(signal.SIGTERM, on_term)
    regions = sorted(glob.glob(os.path.join(a.dir, a.region_glob), recursive=True))
    os.makedirs(os.path.join(a.dir, "logs"), exist_ok=True)
    log = os.path.join(a.dir, "logs", "latest.log")
    rnd = random.Random(os.getpid())
    with open(a.pid_file + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(a.pid_file + ".tmp", a.pid_file)
    end = time.monotonic() + a.max_seconds
    turns = 0
    while not stop and time.monotonic() < end:
        turns += 1
        if a.regions_per_turn > 0:
            chosen = rnd.sample(regions, min(a.regions_per_turn, len(regions)))
        else:
            chosen = [r for r in regions if rnd.random() >= 0.5]
        for r in chosen:
            size = os.path.getsize(r)
            with open(r, "r+b") as f:
                f.seek(rnd.randrange(2, max(3, size // 4096)) * 4096)
                f.write(rnd.randbytes(4096))
                f.seek(0)
                f.write(rnd.randbytes(8192))
        with open(log, "a") as f:
            f.write("[%d] turn %d: saved %d regions\n" % (time.time(), turns, len(regions)))
        if turns % 5 == 0:
            cfg = os.path.join(a.dir, "server.properties")
            with open(cfg + ".tmp", "w") as f:
                f.write("motd=turn %d\nmax-players=%d\n" % (turns, rnd.randint(1, 100)))
            os.rename(cfg + ".tmp", cfg)
        scratch = os.path.join(a.dir, "scratch-%d.tmp" % (turns % 3))
        if os.path.exists(scratch):
            os.unlink(scratch)
        else:
            with open(scratch, "wb") as f:
                f.write(rnd.randbytes(rnd.randint(0, 20000)))
        if a.count_file:
            with open(a.count_file, "w") as f:
                f.write("%d\n" % turns)
        # In slices: a SIGTERM ends the wait at once (a game stops promptly).
        wake = time.monotonic() + a.interval
        while not stop and time.monotonic() < wake:
            time.sleep(min(0.02, max(0.0, wake - time.monotonic())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
