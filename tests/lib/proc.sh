# What /proc says about a process the test started (confinement checks).

# field PID KEY: the value of KEY in /proc/PID/status ("Uid", "CapEff", ...).
field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status"; }

# mem_count PID TEXT: how often TEXT is in the process's readable memory
# (mappings over 1 GiB, ASan's shadow, are left out).
mem_count() {
	python3 - "$1" "$2" <<'PY'
import sys
pid, needle = sys.argv[1], sys.argv[2].encode()
n = 0
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
    for line in maps:
        f = line.split()
        a, b = (int(x, 16) for x in f[0].split("-"))
        if "r" not in f[1] or b - a > 1 << 30 or (len(f) > 5 and f[5].startswith("[v")):
            continue
        try:
            mem.seek(a)
            n += mem.read(b - a).count(needle)
        except (OSError, ValueError):
            pass
print(n)
PY
}

# random_token: 48 hex digits no other string in a test contains.
random_token() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }
