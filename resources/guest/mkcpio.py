#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""mkcpio.py DIR OUT.cpio.gz [--node PATH:c|b:MAJOR:MINOR:MODE]...

Packs DIR into a gzip-compressed cpio archive in the kernel's "newc" initramfs format.
Every entry is owned by root with mtime 0, and the entries are sorted, so the same tree
always gives the same bytes. --node adds a device node (e.g. /dev/console) without
needing root to mknod it on the host.
"""
import argparse
import gzip
import os
import stat
import sys

TRAILER = "TRAILER!!!"


def header(ino, mode, nlink, size, major, minor, name):
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, major, minor, len(name) + 1, 0]
    return b"070701" + b"".join(b"%08x" % f for f in fields)


def pad4(n):
    return b"\0" * ((4 - n % 4) % 4)


def entry(ino, mode, data, name, nlink=1, rdev=(0, 0)):
    name_b = name.encode()
    hdr = header(ino, mode, nlink, len(data), rdev[0], rdev[1], name_b)
    head = hdr + name_b + b"\0"
    return head + pad4(len(head)) + data + pad4(len(data))


def walk(root):
    """Yields (archive name, lstat, data) for every path under root, parents first."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        if rel != ".":
            yield rel, os.lstat(dirpath), b""
        for f in sorted(filenames):
            path = os.path.join(dirpath, f)
            st = os.lstat(path)
            name = os.path.normpath(os.path.join(rel, f))
            if stat.S_ISLNK(st.st_mode):
                data = os.readlink(path).encode()
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    data = fh.read()
            else:
                sys.exit(f"mkcpio: {path}: only files, directories and symlinks are packed")
            yield name, st, data


def parse_node(spec):
    try:
        path, kind, major, minor, mode = spec.split(":")
        fmt = {"c": stat.S_IFCHR, "b": stat.S_IFBLK}[kind]
        return path.lstrip("/"), fmt | int(mode, 8), (int(major), int(minor))
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"bad --node '{spec}', want PATH:c|b:MAJOR:MINOR:MODE")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("out")
    ap.add_argument("--node", action="append", default=[], type=parse_node)
    args = ap.parse_args()

    ino = 1
    with open(args.out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        for name, st, data in walk(args.dir):
            nlink = 2 if stat.S_ISDIR(st.st_mode) else 1
            out.write(entry(ino, st.st_mode, data, name, nlink))
            ino += 1
        for name, mode, rdev in args.node:
            out.write(entry(ino, mode, b"", name, rdev=rdev))
            ino += 1
        out.write(entry(0, 0, b"", TRAILER))


if __name__ == "__main__":
    main()
