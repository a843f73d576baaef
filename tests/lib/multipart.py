#!/usr/bin/env python3
"""multipart.py: writes a multipart/form-data body for the destination tests.

  multipart.py [--boundary B] [--no-close] OUT PART...

PART is one of
  name=value                 a field
  name=@FILE                 a file part (filename = basename, octet-stream)
  name=@FILE:cut=N           the same, with only the first N bytes of FILE
The body is written to OUT ("-" for stdout).  --no-close leaves out the
closing boundary (a truncated upload).  The boundary defaults to what Go's
mime/multipart writer makes: 60 hex digits.
"""
import argparse
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--boundary", default="5f2b" * 15)
    ap.add_argument("--no-close", action="store_true")
    ap.add_argument("out")
    ap.add_argument("parts", nargs="*")
    a = ap.parse_args()
    b = a.boundary.encode()
    out = sys.stdout.buffer if a.out == "-" else open(a.out, "wb")
    for spec in a.parts:
        name, _, value = spec.partition("=")
        if value.startswith("@"):
            path, _, opt = value[1:].partition(":cut=")
            with open(path, "rb") as f:
                data = f.read()
            if opt:
                data = data[:int(opt)]
            head = ('Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    'Content-Type: application/octet-stream\r\n' % (name, os.path.basename(path)))
        else:
            data = value.encode()
            head = 'Content-Disposition: form-data; name="%s"\r\n' % name
        out.write(b"--" + b + b"\r\n" + head.encode() + b"\r\n" + data + b"\r\n")
    if not a.no_close:
        out.write(b"--" + b + b"--\r\n")
    out.close()


if __name__ == "__main__":
    main()
