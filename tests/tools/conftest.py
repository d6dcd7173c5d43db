# SPDX-License-Identifier: Apache-2.0
"""Helpers for the snapshot tools' tests (tools/README.md): build/ember-snapshot-merge,
build/ember-uffd-handler and its stand-in VMM, build/tests/tools/uffd_client.

    Handler(tmp_path, mem, *options)   the handler on tmp_path/"uffd.sock"; waits for "ready"
    run_client(handler, mem, *actions) the client against it; returns the CompletedProcess
    memory_file(path, pages)           a memory file whose every page differs
    read_working_set / write_working_set   the working-set file (src/vmm/working_set.h)

Run: make tools-test (builds the tools and the client first).
"""
import ctypes
import ctypes.util
import os
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("EMBER_BUILD", ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
MERGE = BUILD / "ember-snapshot-merge"
HANDLER = BUILD / "ember-uffd-handler"
CLIENT = BUILD / "tests" / "tools" / "uffd_client"
PAGE = 4096


def uffd_available():
    if os.geteuid() == 0:
        return True
    try:
        return Path("/proc/sys/vm/unprivileged_userfaultfd").read_text().strip() == "1"
    except OSError:
        return False


needs_uffd = pytest.mark.skipif(not uffd_available(),
                                reason="userfaultfd needs root or vm.unprivileged_userfaultfd=1")


def page_bytes(i):
    """Page i of a test memory file: its number, then a pattern of its own."""
    return struct.pack("<Q", i) + bytes((i * 7 + j) % 251 for j in range(PAGE - 8))


def memory_file(path, pages):
    path.write_bytes(b"".join(page_bytes(i) for i in range(pages)))
    return path


_LZMA = ctypes.CDLL(ctypes.util.find_library("lzma") or "liblzma.so.5")
_LZMA.lzma_crc64.restype = ctypes.c_uint64
_LZMA.lzma_crc64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]


def crc64(data):
    """CRC-64/XZ from liblzma itself, as the format says (lzma_crc64())."""
    return _LZMA.lzma_crc64(data, len(data), 0)


def read_working_set(path):
    """(memory bytes, [(offset, length)]) of a working-set file, every field checked."""
    data = Path(path).read_bytes()
    magic, version, page, mem, nr, reserved = struct.unpack_from("<8sIIQII", data)
    assert (magic, version, page, reserved) == (b"EMBERWS1", 1, PAGE, 0)
    assert len(data) == 32 + 16 * nr + 8
    assert struct.unpack_from("<Q", data, len(data) - 8)[0] == crc64(data[:-8])
    return mem, [struct.unpack_from("<QQ", data, 32 + 16 * i) for i in range(nr)]


def write_working_set(path, mem, ranges):
    data = struct.pack("<8sIIQII", b"EMBERWS1", 1, PAGE, mem, len(ranges), 0)
    data += b"".join(struct.pack("<QQ", o, n) for o, n in ranges)
    Path(path).write_bytes(data + struct.pack("<Q", crc64(data)))
    return path


class Handler:
    """build/ember-uffd-handler on tmp_path/uffd.sock; stdout and stderr go to files."""

    def __init__(self, tmp_path, mem, *options):
        self.sock = tmp_path / "uffd.sock"
        self.out_path, self.err_path = tmp_path / "handler.out", tmp_path / "handler.err"
        self.proc = subprocess.Popen(
            [str(HANDLER), "--socket", str(self.sock), "--mem-file", str(mem), *map(str, options)],
            stdout=subprocess.PIPE, stderr=open(self.err_path, "w"), text=True)
        line = self.proc.stdout.readline()
        assert line == "ready\n", (line, self.err)
        self.lines = []

    @property
    def err(self):
        return self.err_path.read_text()

    def wait(self, timeout=10):
        """The exit code; the handler's stdout lines (after "ready") in self.lines."""
        out, _ = self.proc.communicate(timeout=timeout)
        self.lines = out.splitlines()
        return self.proc.returncode

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def handler(tmp_path):
    """handler(mem, *options) starts one; each is killed at teardown."""
    made = []

    def make(mem, *options):
        made.append(Handler(tmp_path, mem, *options))
        return made[-1]
    yield make
    for h in made:
        h.stop()


def run_client(h, mem, *args, timeout=30):
    return subprocess.run([str(CLIENT), "--socket", str(h.sock), "--mem-file", str(mem),
                           *map(str, args)], capture_output=True, text=True, timeout=timeout)
