#!/usr/bin/env python3
"""corpus.py: the hostile-input corpus for a wingxfer node behind a web server.

Every case is one row of CASES: a name, a category, the node program it
targets, the HTTP status each of its requests must get, how many failure
callbacks the panel must receive for it, and what must be on disk after it
("refused": no server directory; "installed": a server directory whose
content the runner checks).  The requests are raw HTTPS written byte by byte
here (a raw client: malformed headers, cut bodies and 64 KiB headers are
what this corpus is about), the hostile archives are generated here
(tarfile and raw tar/gzip bytes).  tests/hostile/corpus.sh runs it.

  corpus.py list                          one tab-separated line per case:
                                          name category target statuses
                                          callbacks outcome disk_mib description
  corpus.py run NAME --ctx FILE.json      sends the case's requests; prints one
                                          line per request: status<TAB>error
  corpus.py setup NAME --ctx FILE.json    prepares the node for the case (before
                                          its snapshot), when it needs to
  corpus.py snapshot DIR... [--skip P]    a manifest of the trees (JSON lines)
  corpus.py diff BEFORE DIR... [--skip P] [--allow RE]
                                          snapshots DIR... again and prints what
                                          changed since BEFORE, except paths
                                          matching RE; exit 1 if anything did
  corpus.py million-files OUT             the 1 000 000-empty-files archive
  corpus.py callbacks PANEL-URL UUID N    the panel emulator's callbacks:
                                          "failures:successes:new" for UUID,
                                          new = all of them beyond the first N
  corpus.py is-json FILE                  exit 0 when FILE holds one JSON value
  corpus.py serve                         the commands above, one per line of
                                          stdin: OUT<TAB>ERR<TAB>COMMAND<TAB>ARG...
                                          (its output to the file OUT, its
                                          errors to ERR; either may be empty:
                                          discarded); answers each with one
                                          line on stdout: its exit status.
                                          corpus.sh runs it as a coprocess: one
                                          python3 start for the whole corpus
                                          instead of ~10 per case (most of the
                                          corpus's CPU time)

The context file (written by the runner) names the node's URL, the CA, the
panel's URL, the node's token, the canary directory, the server UUID of the
case, the source node's server UUID, a work directory and the node's
system.backup_directory.
"""
import gzip
import hashlib
import io
import json
import os
import random
import re
import socket
import ssl
import stat
import subprocess
import sys
import tarfile
import time
import urllib.request
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import hostile  # noqa: E402  tests/lib/hostile.py: add(), add_file()

BOUNDARY = "5f2b" * 15
MTIME = 1700000000
ETC_CANARY = "/etc/wingxfer-hostile-canary"


# --- archives ---------------------------------------------------------------
def tar_bytes(build, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        build(t)
    return buf.getvalue()


def gz(data, level=6):
    return gzip.compress(data, compresslevel=level, mtime=0)


def good_tree(t):
    hostile.add_file(t, "server.properties", b"level-name=world\n")
    hostile.add_file(t, "world/level.dat", bytes(range(256)) * 8)
    hostile.add_file(t, "start.sh", b"#!/bin/sh\nexec java -jar server.jar\n", mode=0o755)


def good_archive():
    return gz(tar_bytes(good_tree))


def archive_with(build, fmt=tarfile.PAX_FORMAT):
    """A gzip tar: the harmless ok.txt first (extraction has begun), then build(t)."""
    def both(t):
        hostile.add_file(t, "ok.txt")
        build(t)
    return gz(tar_bytes(both, fmt))


def random_file_archive(size, seed=7):
    rnd = random.Random(seed)
    return gz(tar_bytes(lambda t: hostile.add_file(t, "blob.bin", rnd.randbytes(size))))


def bad_crc():
    data = bytearray(random_file_archive(200000))
    data[-8] ^= 0xff  # the CRC-32 of the gzip trailer
    return bytes(data)


def truncated_gzip():
    data = random_file_archive(400000)
    return data[:len(data) * 6 // 10]


def trailing_garbage_member():
    return good_archive() + b"\x1f\x8b\x08\x00" + os.urandom(4096)


def huge_entry_header():
    """A regular-file entry that claims 1 TiB and carries no data."""
    ti = tarfile.TarInfo("huge.bin")
    ti.size = 1 << 40
    ti.mtime = MTIME
    return gz(ti.tobuf(tarfile.PAX_FORMAT) + b"\0" * 1024)


def sparse_1tib(work, fmt):
    """A GNU sparse entry whose real size is 1 TiB (GNU tar --sparse)."""
    d = os.path.join(work, "sparse-" + fmt)
    os.makedirs(d, exist_ok=True)
    f = os.path.join(d, "world.img")
    with open(f, "wb") as fh:
        fh.truncate(1 << 40)
        fh.seek(1 << 30)
        fh.write(b"a few real bytes in the middle")
    out = os.path.join(work, "sparse-%s.tar.gz" % fmt)
    fmt_args = ["--format=gnu"] if fmt == "gnu" else ["--format=pax"]
    subprocess.run(["tar", "-C", d, "--sparse"] + fmt_args + ["-czf", out, "world.img"],
                   check=True)
    os.unlink(f)
    with open(out, "rb") as fh:
        return fh.read()


def gzip_bomb(mib_per_file=16, files=64):
    """files x mib_per_file MiB of zeros: 1 GiB that compresses to about 1 MiB."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [comp.compress(b"")]
    zero = bytes(1 << 20)
    for i in range(files):
        ti = tarfile.TarInfo("world/region/r.%d.mca" % i)
        ti.size = mib_per_file << 20
        ti.mtime = MTIME
        out.append(comp.compress(ti.tobuf(tarfile.USTAR_FORMAT)))
        for _ in range(mib_per_file):
            out.append(comp.compress(zero))
    out.append(comp.compress(b"\0" * 1024))
    out.append(comp.flush())
    return b"".join(out)


def ustar_header(name, typeflag=b"0", size=0, mode=0o644):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"%07o\0" % mode
    h[108:116] = b"%07o\0" % os.getuid()
    h[116:124] = b"%07o\0" % os.getgid()
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"%011o\0" % MTIME
    h[148:156] = b" " * 8
    h[156:157] = typeflag
    h[257:265] = b"ustar\x0000"
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def million_files(out, dirs=1000, per_dir=1000):
    """1 000 000 empty files in 1 000 directories, written as raw ustar + gzip."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    with open(out + ".tmp", "wb") as f:
        for d in range(dirs):
            chunk = [ustar_header(b"d%03d/" % d, b"5", mode=0o755)]
            for i in range(per_dir):
                chunk.append(ustar_header(b"d%03d/f%04d" % (d, i)))
            f.write(comp.compress(b"".join(chunk)))
        f.write(comp.compress(b"\0" * 1024))
        f.write(comp.flush())
    os.replace(out + ".tmp", out)


def entry(t, name, kind, link="", mode=0o644):
    hostile.add(t, name, kind, link, mode=mode)


def pax_path_dotdot(t):
    """ustar name harmless, the pax 'path' record (which wins) leaves staging."""
    ti = tarfile.TarInfo("harmless.txt")
    ti.size = 5
    ti.mtime = MTIME
    ti.pax_headers = {"path": "../../escaped-pax"}
    t.addfile(ti, io.BytesIO(b"data\n"))


def dir_then_symlink(outside):
    def build(t):
        ti = tarfile.TarInfo("plugins")
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
        t.addfile(ti)
        entry(t, "plugins", tarfile.SYMTYPE, outside)
        hostile.add_file(t, "plugins/pwned-dir-then-symlink")
    return build


def device_nodes(t):
    hostile.add(t, "dev/null-char", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)
    hostile.add(t, "dev/sda-block", tarfile.BLKTYPE, mode=0o660, devmajor=8, devminor=0)
    hostile.add_file(t, "after-devices.txt")


def fifo(t):
    hostile.add(t, "pipe", tarfile.FIFOTYPE, mode=0o644)
    hostile.add_file(t, "after-fifo.txt")


def setuid(t):
    hostile.add_file(t, "suid-bin", b"#!/bin/sh\n", mode=0o4755)
    hostile.add_file(t, "sgid-bin", b"#!/bin/sh\n", mode=0o2755)
    ti = tarfile.TarInfo("sgid-dir")
    ti.type = tarfile.DIRTYPE
    ti.mode = 0o2775
    ti.mtime = MTIME
    t.addfile(ti)


def hardlink_with_body(size):
    """A hardlink entry that keeps a size and a body (pax allows it): libarchive
    writes the body into the link's target."""
    def build(t):
        hostile.add_file(t, "target.bin", b"x")
        ti = tarfile.TarInfo("alias.bin")
        ti.type = tarfile.LNKTYPE
        ti.linkname = "target.bin"
        ti.size = size
        ti.mtime = MTIME
        ti.pax_headers = {"comment": "a pax header: pax interchange format"}
        t.addfile(ti, io.BytesIO(bytes(size)))
    return build


def tar_tool_hardlinks(work, tool):
    """A file and a second name for it, archived by GNU tar or bsdtar (pax):
    the hardlink entry has size 0, as every tar writes it."""
    d = os.path.join(work, "hardlinks-" + tool)
    os.makedirs(os.path.join(d, "world"), exist_ok=True)
    with open(os.path.join(d, "world", "level.dat"), "wb") as f:
        f.write(bytes(range(256)) * 16)
    alias = os.path.join(d, "world", "level.dat_old")
    if not os.path.exists(alias):
        os.link(os.path.join(d, "world", "level.dat"), alias)
    out = os.path.join(work, "hardlinks-%s.tar.gz" % tool)
    cmd = ["tar", "--format=pax"] if tool == "gnu" else ["bsdtar", "--format=pax"]
    subprocess.run(cmd + ["-C", d, "-czf", out, "world"], check=True)
    with open(out, "rb") as f:
        return f.read()


def deep_file(levels):
    """A file under `levels` nested directories: levels + 1 path components."""
    def build(t):
        hostile.add_file(t, "d/" * levels + "f.txt")
    return build


def dot_root_entries(t):
    """Entries for the server root itself ("./" then "."), with modes 0777 and 01777."""
    for name, mode in (("./", 0o777), (".", 0o1777)):
        ti = tarfile.TarInfo(name)
        ti.type = tarfile.DIRTYPE
        ti.mode = mode
        ti.mtime = MTIME
        t.addfile(ti)
    hostile.add_file(t, "./after-dot.txt")


# --- multipart ----------------------------------------------------------------
def part(name, data, filename=None, headers=()):
    h = 'Content-Disposition: form-data; name="%s"' % name
    if filename:
        h += '; filename="%s"' % filename
    h += "\r\n"
    if filename:
        h += "Content-Type: application/octet-stream\r\n"
    for x in headers:
        h += x + "\r\n"
    return h.encode() + b"\r\n" + data


def multipart(parts, boundary=BOUNDARY, close=True, preamble=b""):
    b = boundary.encode()
    out = [preamble]
    for p in parts:
        out.append(b"--" + b + b"\r\n" + p + b"\r\n")
    if close:
        out.append(b"--" + b + b"--\r\n")
    return b"".join(out)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def upload(archive, checksum=None):
    """The body a source sends: archive, checksum, checksum_archive."""
    s = sha(archive) if checksum is None else checksum
    return multipart([part("archive", archive, "archive.tar.gz"), part("checksum", s.encode()),
                      part("checksum_archive", s.encode())])


MP_TYPE = "multipart/form-data; boundary=" + BOUNDARY


# --- HTTP ---------------------------------------------------------------------
class Ctx:
    def __init__(self, path, name):
        with open(path) as f:
            self.__dict__.update(json.load(f))
        self.name = name
        self.work = os.path.join(self.work_dir, name)
        os.makedirs(self.work, exist_ok=True)

    def panel(self, method, path, obj=None):
        data = None if obj is None else json.dumps(obj).encode()
        req = urllib.request.Request(self.panel_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
        return json.loads(text) if text.strip() else None

    def token(self, **over):
        req = {"server": self.uuid, "node": self.panel_node}
        req.update(over)
        return self.panel("POST", "/_emulator/tokens", req)["token"]


def http_request(ctx, method, path, headers, body=b"", mode="length", cut=None, timeout=120):
    """One raw HTTPS request.  mode: length (Content-Length), chunked, none (no
    length header), abort (announce len(body), send cut bytes, close).
    Returns (status or 0 when no answer, parsed JSON error or the raw start)."""
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % ctx.port,
             "Connection: close", "User-Agent: wingxfer-hostile-corpus"]
    for k, v in headers:
        lines.append("%s: %s" % (k, v) if v is not None else k)
    if mode in ("length", "abort"):
        lines.append("Content-Length: %d" % len(body))
    elif mode == "chunked":
        lines.append("Transfer-Encoding: chunked")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if mode == "chunked":
        chunks = []
        for i in range(0, len(body), 65536):
            c = body[i:i + 65536]
            chunks.append(b"%x\r\n" % len(c) + c + b"\r\n")
        body = b"".join(chunks) + b"0\r\n\r\n"
    tls = ssl.create_default_context(cafile=ctx.ca)
    raw = socket.create_connection(("127.0.0.1", ctx.port), timeout=timeout)
    s = tls.wrap_socket(raw, server_hostname="127.0.0.1")
    try:
        s.sendall(head)
        if mode == "abort":
            s.sendall(body[:cut])
            time.sleep(0.5)
            s.close()
            return 0, "(the client closed the connection mid-body)"
        try:
            view = memoryview(body)
            for i in range(0, len(body), 1 << 20):
                s.sendall(view[i:i + (1 << 20)])
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # an early answer: read it below
        data = b""
        try:
            while True:
                got = s.recv(65536)
                if not got:
                    break
                data += got
        except (ConnectionResetError, ssl.SSLError, socket.timeout):
            pass
    finally:
        s.close()
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    if not m:
        return 0, "(no HTTP answer: %r)" % data[:80]
    status = int(m.group(1))
    head_end = data.find(b"\r\n\r\n")
    resp_head, resp_body = data[:head_end], data[head_end + 4:]
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", resp_head):
        out, rest = b"", resp_body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out, rest = out + rest[:n], rest[n + 2:]
        resp_body = out
    try:
        err = json.loads(resp_body).get("error", "")
    except (ValueError, AttributeError):
        err = resp_body[:200].decode("utf-8", "replace")
    return status, err


def dest_post(ctx, body=None, token=None, auth=None, ctype=MP_TYPE, mode="length", cut=None,
              extra=()):
    """POST /api/transfers: a good upload unless told otherwise."""
    if body is None:
        body = upload(good_archive())
    headers = list(extra)
    if auth is None:
        auth = "Bearer " + (token if token is not None else ctx.token())
    if auth != "":
        headers.append(("Authorization", auth))
    if ctype is not None:
        headers.append(("Content-Type", ctype))
    return http_request(ctx, "POST", "/api/transfers", headers, body, mode, cut)


def src_post(ctx, body, server=None, path=None, auth=None, ctype="application/json"):
    """POST /api/servers/<uuid>/transfer on the same node (its source role)."""
    if path is None:
        path = "/api/servers/%s/transfer" % (server or ctx.source_uuid)
    headers = [("Content-Type", ctype), ("Accept", "application/json")]
    if auth is None:
        auth = "Bearer " + ctx.node_token
    if auth != "":
        headers.append(("Authorization", auth))
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    return http_request(ctx, "POST", path, headers, body)


def src_body(ctx, **over):
    b = {"url": ctx.node_url + "/api/transfers", "token": "Bearer " + ctx.token()}
    for k, v in over.items():
        if v is None:
            b.pop(k, None)
        else:
            b[k] = v
    return b


def raw_jwt(header, payload, key):
    import base64
    import hmac

    def enc(o):
        return base64.urlsafe_b64encode(json.dumps(o, separators=(",", ":")).encode()) \
            .rstrip(b"=").decode()
    si = enc(header) + "." + enc(payload)
    sig = hmac.new(key.encode(), si.encode(), hashlib.sha256).digest()
    return si + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def tampered_payload(ctx):
    """A valid token whose payload was changed (sub) after signing."""
    import base64
    h, p, s = ctx.token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    claims["sub"] = "00000000-0000-4000-8000-000000000001"
    p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return h + "." + p2 + "." + s


# --- the cases ------------------------------------------------------------------
# Each row: name, category, target, statuses (one per request), failure
# callbacks, outcome, the server's build.disk_space in MiB (0 = none),
# description, and the function sending the requests (returns a list of
# (status, error)).
CASES = []


def case(name, category, target, statuses, callbacks, outcome, disk, desc):
    def register(fn):
        CASES.append(dict(name=name, category=category, target=target,
                          statuses=[str(s) for s in statuses], callbacks=callbacks,
                          outcome=outcome, disk=disk, desc=desc, fn=fn))
        return fn
    return register


def jwt_case(name, status, desc, **token_over):
    case(name, "jwt", "destination", [status], 0, "refused", 0, desc)(
        lambda c: [dest_post(c, token=c.token(**token_over))])


# Controls: the same harness sees a good upload succeed.
case("control-upload", "control", "destination", [200], 0, "installed", 0,
     "a good upload with Content-Length (control)")(lambda c: [dest_post(c)])
case("control-chunked", "control", "destination", [200], 0, "installed", 0,
     "a good upload, chunked (control)")(lambda c: [dest_post(c, mode="chunked")])

# JWT
jwt_case("jwt-alg-none", 401, "alg none, no signature", alg="none")
jwt_case("jwt-alg-rs256", 401, "an RS256 header (HMAC bytes as signature)", alg="RS256")
jwt_case("jwt-alg-es256", 401, "an ES256 header", alg="ES256")
jwt_case("jwt-alg-hs512", 401, "an HS512 header", alg="HS512")
jwt_case("jwt-wrong-key", 401, "signed with another key", key="not-this-node")
jwt_case("jwt-expired", 401, "expired a minute ago", exp_offset=-60)
jwt_case("jwt-exp-missing", 401, "no exp claim", claims={"exp": None})
jwt_case("jwt-exp-float", 401, "exp a float", claims={"exp": 4102444800.5})
jwt_case("jwt-exp-string", 401, "exp a string", claims={"exp": "4102444800"})
jwt_case("jwt-nbf-future", 401, "nbf in the future", claims={"nbf": 4102444800})
jwt_case("jwt-exp-min-int64", 401, "exp = -2^63 (its age must not overflow)", claims={"exp": -2**63})
jwt_case("jwt-nbf-max-int64", 401, "nbf = 2^63-1", claims={"nbf": 2**63 - 1})
jwt_case("jwt-exp-max-int64", 401, "exp = 2^63-1 (longer than max_token_lifetime)",
         claims={"exp": 2**63 - 1})
jwt_case("jwt-lifetime-30-days", 401, "valid for 30 days (longer than max_token_lifetime)",
         exp_offset=30 * 86400)
jwt_case("jwt-nbf-string", 401, "nbf a string", claims={"nbf": "0"})
jwt_case("jwt-sub-missing", 401, "no sub claim", claims={"sub": None})
jwt_case("jwt-sub-not-uuid", 401, "sub not a UUID", claims={"sub": "server-1"})
jwt_case("jwt-sub-dotdot", 401, "sub ../../etc", claims={"sub": "../../etc"})
jwt_case("jwt-sub-number", 401, "sub a number", claims={"sub": 12345})
jwt_case("jwt-scope-missing", 403, "no scope claim", scope=None)
jwt_case("jwt-scope-other", 403, "scope websocket", scope="websocket")
jwt_case("jwt-scope-substring", 403, "scope 'transfers' (not the word transfer)",
         scope="transfers")
case("jwt-tampered-payload", "jwt", "destination", [401], 0, "refused", 0,
     "payload changed after signing")(lambda c: [dest_post(c, token=tampered_payload(c))])
case("jwt-replay", "jwt", "destination", [422, 409], 1, "refused", 0,
     "the same token twice (first a bad archive, then a good upload)")(
    lambda c: (lambda t: [dest_post(c, token=t, body=upload(os.urandom(4096))),
                          dest_post(c, token=t)])(c.token()))
case("jwt-bearer-lowercase", "jwt", "destination", [401], 0, "refused", 0,
     "'bearer' in lower case")(lambda c: [dest_post(c, auth="bearer " + c.token())])
case("jwt-bearer-no-space", "jwt", "destination", [401], 0, "refused", 0,
     "'Bearer' without the space")(lambda c: [dest_post(c, auth="Bearer" + c.token())])
case("jwt-bearer-two-spaces", "jwt", "destination", [401], 0, "refused", 0,
     "'Bearer' and two spaces")(lambda c: [dest_post(c, auth="Bearer  " + c.token())])
case("jwt-no-authorization", "jwt", "destination", [401], 0, "refused", 0,
     "no Authorization header")(lambda c: [dest_post(c, auth="")])
case("jwt-basic-scheme", "jwt", "destination", [401], 0, "refused", 0,
     "Basic credentials")(lambda c: [dest_post(c, auth="Basic dXNlcjpwYXNz")])
case("jwt-not-a-jwt", "jwt", "destination", [401], 0, "refused", 0,
     "a bearer value that is not a JWT")(lambda c: [dest_post(c, token="not.a-jwt")])
case("jwt-four-parts", "jwt", "destination", [401], 0, "refused", 0,
     "four dot-separated parts")(lambda c: [dest_post(c, token=c.token() + ".x")])
case("jwt-header-not-json", "jwt", "destination", [401], 0, "refused", 0,
     "a header that is not JSON")(lambda c: [dest_post(c, token="bm90IGpzb24." +
                                                       c.token().split(".", 1)[1])])
case("jwt-raw-node-token", "jwt", "destination", [401], 0, "refused", 0,
     "the node token itself instead of a JWT")(lambda c: [dest_post(c, token=c.node_token)])
case("jwt-unsigned-forged", "jwt", "destination", [401], 0, "refused", 0,
     "a forged HS256 token signed with the empty key")(
    lambda c: [dest_post(c, token=raw_jwt({"alg": "HS256", "typ": "JWT"},
                                          {"sub": c.uuid, "exp": int(time.time()) + 600,
                                           "scope": "transfer"}, ""))])
case("jwt-64k-header", "jwt", "destination", [400], 0, "refused", 0,
     "a 64 KiB Authorization header (the web server refuses it)")(
    lambda c: [dest_post(c, auth="Bearer " + "A" * 65536)])

# multipart
mp = "multipart"
case("mp-no-boundary", mp, "destination", [400], 0, "refused", 0,
     "multipart/form-data without a boundary")(
    lambda c: [dest_post(c, ctype="multipart/form-data")])
case("mp-boundary-71", mp, "destination", [400], 0, "refused", 0,
     "a boundary of 71 characters")(
    lambda c: [dest_post(c, ctype="multipart/form-data; boundary=" + "b" * 71,
                         body=multipart([part("archive", good_archive(), "a.tgz")],
                                        boundary="b" * 71))])
case("mp-boundary-bad-chars", mp, "destination", [400], 0, "refused", 0,
     "a boundary with characters RFC 2046 does not allow")(
    lambda c: [dest_post(c, ctype="multipart/form-data; boundary=\"a{b}<c>\"")])
case("mp-wrong-content-type", mp, "destination", [415], 0, "refused", 0,
     "Content-Type application/json")(lambda c: [dest_post(c, ctype="application/json")])
case("mp-form-urlencoded", mp, "destination", [415], 0, "refused", 0,
     "Content-Type application/x-www-form-urlencoded")(
    lambda c: [dest_post(c, ctype="application/x-www-form-urlencoded")])
case("mp-mixed", mp, "destination", [415], 0, "refused", 0,
     "multipart/mixed")(lambda c: [dest_post(c, ctype="multipart/mixed; boundary=" + BOUNDARY)])
case("mp-no-content-type", mp, "destination", [415], 0, "refused", 0,
     "no Content-Type")(lambda c: [dest_post(c, ctype=None)])
case("mp-no-closing-boundary", mp, "destination", [400], 1, "refused", 0,
     "every part complete, no closing boundary")(
    lambda c: [dest_post(c, body=multipart([part("archive", good_archive(), "a.tgz"),
                                            part("checksum", sha(good_archive()).encode())],
                                           close=False))])
case("mp-cut-mid-part", mp, "destination", [400], 1, "refused", 0,
     "the body ends inside the archive part")(
    lambda c: [dest_post(c, body=upload(random_file_archive(300000))[:150000])])
case("mp-client-abort", mp, "destination", [0], 1, "refused", 0,
     "the client closes the connection mid-body (no answer reaches it)")(
    lambda c: [dest_post(c, body=upload(random_file_archive(3000000)), mode="abort",
                         cut=1000000)])
case("mp-part-header-8k", mp, "destination", [400], 1, "refused", 0,
     "a part header block over 8 KiB")(
    lambda c: [dest_post(c, body=multipart([part("archive", good_archive(), "a.tgz",
                                                 headers=["X-Pad: " + "p" * 9000])]))])
case("mp-10000-empty-parts", mp, "destination", [400], 1, "refused", 0,
     "10 000 empty parts before the archive")(
    lambda c: [dest_post(c, body=multipart([part("x%d" % i, b"") for i in range(10000)] +
                                           [part("archive", good_archive(), "a.tgz")]))])
case("mp-checksum-before-archive", mp, "destination", [200], 0, "installed", 0,
     "the checksum part before the archive part (accepted, verified)")(
    lambda c: [dest_post(c, body=multipart([part("checksum", sha(good_archive()).encode()),
                                            part("archive", good_archive(), "a.tgz")]))])
case("mp-checksum-short", mp, "destination", [422], 1, "refused", 0,
     "a checksum of 63 hex digits")(
    lambda c: [dest_post(c, body=upload(good_archive(), sha(good_archive())[:63]))])
case("mp-checksum-not-hex", mp, "destination", [422], 1, "refused", 0,
     "a checksum of 64 characters that are not hex")(
    lambda c: [dest_post(c, body=upload(good_archive(), "z" * 64))])
case("mp-checksum-mismatch", mp, "destination", [422], 1, "refused", 0,
     "a well-formed checksum of other bytes")(
    lambda c: [dest_post(c, body=upload(good_archive(), sha(b"other")))])
case("mp-checksum-huge", mp, "destination", [400], 1, "refused", 0,
     "a checksum part of 1 MiB")(
    lambda c: [dest_post(c, body=upload(good_archive(), "a" * (1 << 20)))])
case("mp-two-archive-parts", mp, "destination", [400], 1, "refused", 0,
     "two archive parts")(
    lambda c: [dest_post(c, body=multipart([part("archive", good_archive(), "a.tgz"),
                                            part("archive", good_archive(), "b.tgz")]))])
case("mp-no-archive-part", mp, "destination", [400], 1, "refused", 0,
     "only a checksum part")(
    lambda c: [dest_post(c, body=multipart([part("checksum", sha(b"x").encode())]))])
case("mp-empty-body", mp, "destination", [400], 1, "refused", 0,
     "an empty body")(lambda c: [dest_post(c, body=b"")])
case("mp-preamble-over-64k", mp, "destination", [400], 1, "refused", 0,
     "100 KiB of text before the first boundary")(
    lambda c: [dest_post(c, body=multipart([part("archive", good_archive(), "a.tgz")],
                                           preamble=b"x" * 100000 + b"\r\n"))])
case("mp-part-without-name", mp, "destination", [400], 1, "refused", 0,
     "a part whose Content-Disposition has no name")(
    lambda c: [dest_post(c, body=multipart([b"Content-Disposition: form-data\r\n\r\nx"]))])
case("mp-other-boundary-in-body", mp, "destination", [400], 1, "refused", 0,
     "the body uses another boundary than the header")(
    lambda c: [dest_post(c, body=multipart([part("archive", good_archive(), "a.tgz")],
                                           boundary="other-boundary"))])
case("mp-lf-line-endings", mp, "destination", [400], 1, "refused", 0,
     "LF instead of CRLF")(
    lambda c: [dest_post(c, body=upload(good_archive()).replace(b"\r\n", b"\n"))])
case("mp-bad-content-length", mp, "destination", [400], 0, "refused", 0,
     "a Content-Length that is not a number (the web server refuses it)")(
    lambda c: [dest_post(c, mode="none", extra=[("Content-Length", "12abc")])])

# archives
ar = "archive"


def ar_case(name, status, callbacks, outcome, desc, make, disk=0):
    case(name, ar, "destination", [status], callbacks, outcome, disk, desc)(
        lambda c: [dest_post(c, body=upload(make(c)))])


ar_case("ar-not-gzip", 422, 1, "refused", "random bytes", lambda c: os.urandom(65536))
ar_case("ar-zero-bytes", 422, 1, "refused", "an empty archive part", lambda c: b"")
ar_case("ar-truncated-gzip", 422, 1, "refused", "a gzip stream cut at 60 %",
        lambda c: truncated_gzip())
ar_case("ar-bad-crc", 422, 1, "refused", "a gzip trailer with a wrong CRC-32",
        lambda c: bad_crc())
ar_case("ar-garbage-member", 422, 1, "refused", "a second gzip member of garbage",
        lambda c: trailing_garbage_member())
ar_case("ar-dotdot", 422, 1, "refused", "an entry ../x",
        lambda c: archive_with(lambda t: hostile.add_file(t, "../escaped-dotdot")))
ar_case("ar-dotdot-nested", 422, 1, "refused", "an entry a/../../x",
        lambda c: archive_with(lambda t: hostile.add_file(t, "a/../../escaped-nested")))
ar_case("ar-absolute-etc", 422, 1, "refused", "an entry " + ETC_CANARY,
        lambda c: archive_with(lambda t: hostile.add_file(t, ETC_CANARY)))
ar_case("ar-absolute-canary", 422, 1, "refused", "an absolute entry into the canary directory",
        lambda c: archive_with(lambda t: hostile.add_file(t, c.canary + "/pwned-absolute")))
ar_case("ar-symlink-write-through", 422, 1, "refused",
        "a symlink to the canary directory, then a file written through it",
        lambda c: archive_with(lambda t: (entry(t, "lnk", tarfile.SYMTYPE, c.canary),
                                          hostile.add_file(t, "lnk/pwned-symlink"))))
ar_case("ar-symlink-relative-up", 422, 1, "refused",
        "a symlink ../../.., then a file written through it",
        lambda c: archive_with(lambda t: (entry(t, "up", tarfile.SYMTYPE, "../../.."),
                                          hostile.add_file(t, "up/pwned-relative"))))
ar_case("ar-dir-then-symlink", 422, 1, "refused",
        "a directory replaced by a symlink to the canary, then a file under it",
        lambda c: archive_with(dir_then_symlink(c.canary)))
ar_case("ar-hardlink-etc-passwd", 422, 1, "refused", "a hardlink to /etc/passwd",
        lambda c: archive_with(lambda t: entry(t, "passwd", tarfile.LNKTYPE, "/etc/passwd")))
ar_case("ar-hardlink-write-through", 422, 1, "refused",
        "a hardlink to the canary's victim, then data written to it",
        lambda c: archive_with(lambda t: (entry(t, "hl", tarfile.LNKTYPE, c.canary + "/victim"),
                                          hostile.add_file(t, "hl", b"overwritten\n"))))
ar_case("ar-hardlink-dotdot", 422, 1, "refused", "a hardlink to ../../victim",
        lambda c: archive_with(lambda t: entry(t, "hl", tarfile.LNKTYPE, "../../victim")))
ar_case("ar-hardlink-via-symlink", 422, 1, "refused",
        "a symlink to the canary, then a hardlink through it",
        lambda c: archive_with(lambda t: (entry(t, "lnk", tarfile.SYMTYPE, c.canary),
                                          entry(t, "hl", tarfile.LNKTYPE, "lnk/victim"))))
ar_case("ar-pax-path-dotdot", 422, 1, "refused",
        "a harmless ustar name overridden by a pax path ../../x",
        lambda c: archive_with(pax_path_dotdot))
ar_case("ar-gnu-longname-dotdot", 422, 1, "refused", "a GNU long name ../x",
        lambda c: archive_with(lambda t: hostile.add_file(t, "../escaped-" + "x" * 120),
                               tarfile.GNU_FORMAT))
ar_case("ar-path-5000", 422, 1, "refused", "a pax path of 5000 bytes",
        lambda c: archive_with(lambda t: hostile.add_file(t, "/".join(["d" * 99] * 50))))
ar_case("ar-device", 200, 0, "installed", "a character and a block device (skipped)",
        lambda c: archive_with(device_nodes))
ar_case("ar-fifo", 200, 0, "installed", "a FIFO (skipped)", lambda c: archive_with(fifo))
ar_case("ar-setuid", 200, 0, "installed", "setuid and setgid files, a setgid directory "
        "(bits cleared)", lambda c: archive_with(setuid))
ar_case("ar-sparse-1tib-gnu", 413, 1, "refused", "a GNU sparse entry of 1 TiB",
        lambda c: sparse_1tib(c.work, "gnu"), disk=100)
ar_case("ar-sparse-1tib-pax", 413, 1, "refused", "a pax sparse entry of 1 TiB",
        lambda c: sparse_1tib(c.work, "pax"), disk=100)
ar_case("ar-sparse-1tib-no-limit", 507, 1, "refused",
        "a sparse 1 TiB entry, no disk limit (more than the free space)",
        lambda c: sparse_1tib(c.work, "gnu"), disk=0)
ar_case("ar-huge-entry-header", 413, 1, "refused", "a header claiming 1 TiB, no data",
        lambda c: huge_entry_header(), disk=100)
ar_case("ar-gzip-bomb", 413, 1, "refused",
        "1 GiB of zeros in 1 MiB of gzip, beyond build.disk_space (32 MiB)",
        lambda c: gzip_bomb(), disk=32)
ar_case("ar-empty-tar", 200, 0, "installed", "a tar with no entries (an empty server)",
        lambda c: gz(b"\0" * 10240))
case("ar-million-empty-files", ar, "destination", [200], 0, "installed", 0,
     "1 000 000 empty files in 1 000 directories (bounded time and memory)")(
    lambda c: [dest_post(c, body=upload(open(c.million_archive, "rb").read()))])

ar_case("ar-hardlink-with-body", 422, 1, "refused",
        "a hardlink entry carrying a 16 MiB body into its target (build.disk_space 1 MiB)",
        lambda c: archive_with(hardlink_with_body(16 << 20)), disk=1)
ar_case("ar-hardlink-with-body-no-limit", 422, 1, "refused",
        "a hardlink entry carrying a body, no disk limit", lambda c: archive_with(hardlink_with_body(4096)))
ar_case("ar-hardlink-gnu-tar", 200, 0, "installed", "a file and its hardlink as GNU tar "
        "writes them (control)", lambda c: tar_tool_hardlinks(c.work, "gnu"))
ar_case("ar-hardlink-bsdtar", 200, 0, "installed", "a file and its hardlink as bsdtar "
        "writes them (control)", lambda c: tar_tool_hardlinks(c.work, "bsd"))
ar_case("ar-deep-512", 200, 0, "installed", "a file under 511 directories: 512 levels, "
        "the limit both sides share (control)", lambda c: archive_with(deep_file(511)))
ar_case("ar-deep-513", 422, 1, "refused", "a file under 512 directories: one level over "
        "the limit", lambda c: archive_with(deep_file(512)))
ar_case("ar-deep-dir-512", 422, 1, "refused", "an empty directory at 512 levels (the push "
        "refuses such a tree)", lambda c: archive_with(lambda t: hostile.add(
            t, "d/" * 511 + "e", tarfile.DIRTYPE, mode=0o755)))
ar_case("ar-dot-root-mode", 200, 0, "installed", "entries ./ and . with modes 0777 and "
        "01777 (the server root's mode stays ours)", lambda c: archive_with(dot_root_entries))


def backup_upload(c, expected):
    archive = good_archive()
    backup = os.urandom(4096)
    return upload(archive)[:-len(BOUNDARY) - 6] + multipart(
        [part("backup_b1.tar.gz", backup, "b1.tar.gz"),
         part("checksum_backup_b1.tar.gz", expected(backup).encode())])


def existing_backup(c):
    d = os.path.join(c.backups_dir, c.uuid)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "old.tar.gz"), "wb") as f:
        f.write(b"an older backup of this server\n")
    st = os.stat(c.backups_dir)
    for p in (d, os.path.join(d, "old.tar.gz")):
        os.chown(p, st.st_uid, st.st_gid)


case("mp-backup-bad-checksum", mp, "destination", [422], 1, "refused", 0,
     "a backup whose checksum does not match (no empty backup directory left)")(
    lambda c: [dest_post(c, body=backup_upload(c, lambda b: sha(b"other")))])
case("mp-backup-bad-checksum-existing", mp, "destination", [422], 1, "refused", 0,
     "the same, the server's backup directory existed with a backup (kept)")(
    lambda c: [dest_post(c, body=backup_upload(c, lambda b: sha(b"other")))])
SETUP = {"mp-backup-bad-checksum-existing": existing_backup}

# source initiation (POST /api/servers/<uuid>/transfer with the node token)
sr = "source"


def src_case(name, status, desc, send):
    case(name, sr, "source", [status], 0, "refused", 0, desc)(send)


src_case("src-not-json", 400, "a body that is not JSON",
         lambda c: [src_post(c, b"url=https://x/&token=Bearer y")])
src_case("src-json-array", 400, "a JSON array", lambda c: [src_post(c, [src_body(c)])])
src_case("src-empty-body", 400, "an empty body", lambda c: [src_post(c, b"")])
src_case("src-1mib-body", 400, "a 1 MiB body",
         lambda c: [src_post(c, src_body(c, pad="p" * (1 << 20)))])
src_case("src-deep-json", 400, "JSON nested 32 000 deep (under the 64 KiB limit)",
         lambda c: [src_post(c, b"[" * 32000 + b"]" * 32000)])
src_case("src-url-file", 422, "url file:///etc/passwd",
         lambda c: [src_post(c, src_body(c, url="file:///etc/passwd"))])
src_case("src-url-gopher", 422, "url gopher://",
         lambda c: [src_post(c, src_body(c, url="gopher://127.0.0.1:70/_x"))])
src_case("src-url-no-host", 422, "url http:// without a host",
         lambda c: [src_post(c, src_body(c, url="http:///api/transfers"))])
src_case("src-url-crlf", 422, "url with a line break",
         lambda c: [src_post(c, src_body(c, url="https://x/api\r\nX-Evil: 1"))])
src_case("src-url-not-string", 422, "url a number", lambda c: [src_post(c, src_body(c, url=5))])
src_case("src-token-missing", 422, "no token", lambda c: [src_post(c, src_body(c, token=None))])
src_case("src-token-no-bearer", 422, "a token without 'Bearer '",
         lambda c: [src_post(c, src_body(c, token=c.token()))])
src_case("src-token-crlf", 422, "a token with a line break (header injection)",
         lambda c: [src_post(c, src_body(c, token="Bearer a\r\nX-Evil: 1"))])
src_case("src-backups-path", 422, "a backup id ../../etc/passwd",
         lambda c: [src_post(c, src_body(c, backups=["../../etc/passwd"]))])
src_case("src-unknown-server", 404, "a server this node does not have",
         lambda c: [src_post(c, src_body(c), server=c.uuid)])
src_case("src-server-not-uuid", 404, "a server id that is not a UUID",
         lambda c: [src_post(c, src_body(c), server="my-server")])
src_case("src-server-dotdot", 404, "a server id ../../etc (as sent, not normalised)",
         lambda c: [src_post(c, src_body(c), path="/api/servers/../../etc/transfer")])
src_case("src-server-dotdot-encoded", 404, "a server id ..%2F..%2Fetc",
         lambda c: [src_post(c, src_body(c), path="/api/servers/..%2F..%2Fetc/transfer")])
src_case("src-no-node-token", 401, "no Authorization",
         lambda c: [src_post(c, src_body(c), auth="")])
src_case("src-wrong-node-token", 403, "another node's token",
         lambda c: [src_post(c, src_body(c), auth="Bearer token-other")])
src_case("src-transfer-jwt-as-node-token", 403, "the transfer JWT as the node token",
         lambda c: [src_post(c, src_body(c), auth="Bearer " + c.token())])


# --- snapshots -------------------------------------------------------------------
def snapshot(roots, skip):
    out = []
    skip_re = re.compile(skip) if skip else None
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            keep = []
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if skip_re and skip_re.search(p):
                    continue
                keep.append(d)
            dirnames[:] = keep
            for n in [""] + sorted(dirnames + filenames):
                p = os.path.join(dirpath, n) if n else dirpath
                if skip_re and skip_re.search(p):
                    continue
                try:
                    st = os.lstat(p)
                except FileNotFoundError:
                    continue
                e = {"path": p, "mode": "%o" % st.st_mode, "uid": st.st_uid,
                     "nlink": st.st_nlink if not stat.S_ISDIR(st.st_mode) else 0}
                if stat.S_ISREG(st.st_mode):
                    e["size"] = st.st_size
                    if st.st_size <= (8 << 20):
                        with open(p, "rb") as f:
                            e["sha"] = hashlib.sha256(f.read()).hexdigest()
                elif stat.S_ISLNK(st.st_mode):
                    e["link"] = os.readlink(p)
                out.append(e)
    return out


def serve():
    """Runs main() for each command line of stdin; see the docstring."""
    import contextlib
    import traceback
    for line in sys.stdin:
        fields = line.rstrip("\n").split("\t")
        if len(fields) < 3:
            print(2, flush=True)
            continue
        out, err, args = fields[0], fields[1], fields[2:]
        with open(out or os.devnull, "w") as o, open(err or os.devnull, "w") as e:
            with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
                try:
                    main(args)
                    rc = 0
                except SystemExit as x:
                    if x.code is None or isinstance(x.code, int):
                        rc = x.code or 0
                    else:
                        print(x.code, file=sys.stderr)
                        rc = 1
                except Exception:  # one command's failure; the next still runs
                    traceback.print_exc()
                    rc = 1
        print(rc, flush=True)


def panel_callbacks(panel_url, uuid, before):
    with urllib.request.urlopen(panel_url + "/_emulator/callbacks", timeout=30) as r:
        cbs = json.load(r)
    mine = [c["kind"] for c in cbs if c["server"] == uuid]
    return "%d:%d:%d" % (mine.count("failure"), mine.count("success"), len(cbs) - before)


def main(args=None):
    args = sys.argv[1:] if args is None else list(args)
    if not args:
        sys.exit(__doc__)
    cmd = args.pop(0)
    if cmd == "list":
        for c in CASES:
            print("\t".join([c["name"], c["category"], c["target"], ",".join(c["statuses"]),
                             str(c["callbacks"]), c["outcome"], str(c["disk"]), c["desc"]]))
    elif cmd == "run":
        name = args[0]
        ctx = Ctx(args[args.index("--ctx") + 1], name)
        c = next(x for x in CASES if x["name"] == name)
        for status, err in c["fn"](ctx):
            print("%d\t%s" % (status, " ".join(str(err).split())[:300]))
    elif cmd == "setup":
        name = args[0]
        if name in SETUP:
            SETUP[name](Ctx(args[args.index("--ctx") + 1], name))
    elif cmd == "snapshot":
        skip = None
        if "--skip" in args:
            i = args.index("--skip")
            skip = args[i + 1]
            del args[i:i + 2]
        for e in snapshot(args, skip):
            print(json.dumps(e, sort_keys=True))
    elif cmd == "diff":
        opts = {}
        for k in ("--allow", "--skip"):
            if k in args:
                i = args.index(k)
                opts[k] = args[i + 1]
                del args[i:i + 2]
        before, after = args[0], args[1:]
        allow = re.compile(opts["--allow"]) if "--allow" in opts else None
        with open(before) as fh:
            a = {e["path"]: e for e in map(json.loads, fh)}
        b = {e["path"]: e for e in snapshot(after, opts.get("--skip"))}
        changed = []
        for p in sorted(set(a) | set(b)):
            if a.get(p) == b.get(p) or (allow and allow.search(p)):
                continue
            what = "appeared" if p not in a else "disappeared" if p not in b else "changed"
            changed.append("%s %s" % (what, p))
        for line in changed[:20]:
            print(line)
        if len(changed) > 20:
            print("... and %d more" % (len(changed) - 20))
        sys.exit(1 if changed else 0)
    elif cmd == "million-files":
        million_files(args[0])
    elif cmd == "callbacks":
        print(panel_callbacks(args[0], args[1], int(args[2])))
    elif cmd == "is-json":
        with open(args[0]) as f:
            json.load(f)
    elif cmd == "serve":
        serve()
    else:
        sys.exit("corpus.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
