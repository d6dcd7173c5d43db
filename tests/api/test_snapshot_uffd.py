# SPDX-License-Identifier: Apache-2.0
"""The Uffd restore backend and working-set prefetch (docs/snapshot.md), with the test
guest's `counter` test: a restored guest goes on from its count whichever way its memory
arrives - from a page-fault handler (build/ember-uffd-handler), or from the memory file with
a recorded working set read ahead."""
import os
import re
import struct
import subprocess
import time
from pathlib import Path

import pytest

from test_snapshot import STEP, counts, load_body, snap  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
HANDLER = ROOT / "build" / "ember-uffd-handler"


class Handler:
    """build/ember-uffd-handler on a socket, serving one VM's page faults."""

    def __init__(self, sock, mem, *extra):
        self.sock = sock
        self.proc = subprocess.Popen([str(HANDLER), "--socket", str(sock), "--mem-file",
                                      str(mem), "--once", *map(str, extra)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", (line, self.proc.stderr.read())

    def wait(self, timeout=10):
        return self.proc.wait(timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def handlers():
    made = []

    def make(*a):
        h = Handler(*a)
        made.append(h)
        return h
    yield make
    for h in made:
        h.stop()


def uffd_body(state, sock, resume=True, **extra):
    return {"snapshot_path": str(state),
            "mem_backend": {"backend_type": "Uffd", "backend_path": str(sock)},
            "resume_vm": resume, **extra}


def read_working_set(path):
    """(memory bytes, [(offset, length)]) of a working-set file (src/vmm/working_set.h)."""
    data = Path(path).read_bytes()
    magic, version, page, mem, nr, _ = struct.unpack_from("<8sIIQII", data)
    assert (magic, version, page) == (b"EMBERWS1", 1, 4096)
    assert len(data) == 32 + 16 * nr + 8
    return mem, [struct.unpack_from("<QQ", data, 32 + 16 * i) for i in range(nr)]


def test_uffd_restore_continues(ember_factory, snap, handlers, tmp_path):
    """Ember hands its guest memory's userfaultfd to the handler; the guest faults its pages
    in from the handler and goes on from its count. When Ember goes, so does the VM's uffd,
    and the handler (--once) exits cleanly."""
    state, mem, last = snap
    h = handlers(tmp_path / "uffd.sock", mem)
    vm = ember_factory(name="restored")
    vm.ok("PUT", "/snapshot/load", uffd_body(state, h.sock))
    vm.wait_until(lambda: len(counts(vm)) >= 3, 10, "counting after the restore")
    after = counts(vm)
    assert after[0] == last + STEP, f"before: ...{last}; after: {after[:5]}\n{vm.describe()}"
    vm.kill()
    assert h.wait() == 0, h.proc.stderr.read()


def test_uffd_without_a_handler_is_a_400(ember_factory, snap, tmp_path):
    """No handler on the socket: a 400 that says so, nothing half-made, and the same Ember
    then loads the snapshot from its file."""
    state, mem, last = snap
    vm = ember_factory(name="restored")
    r = vm.put("/snapshot/load", uffd_body(state, tmp_path / "nobody.sock"))
    assert r.status == 400 and "no page-fault handler" in r.fault, r
    assert vm.state() == "Not started"
    vm.ok("PUT", "/snapshot/load", load_body(state, mem))
    vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting")
    assert counts(vm)[0] == last + STEP


def test_uffd_record_then_prefetch(ember_factory, snap, handlers, tmp_path):
    """The handler records the pages a restore faults in; a later restore through a handler
    that prefetches that set runs on from the same count."""
    state, mem, last = snap
    ws = tmp_path / "uffd.ws"
    h = handlers(tmp_path / "rec.sock", mem, "--record", ws)
    vm = ember_factory(name="recorded")
    vm.ok("PUT", "/snapshot/load", uffd_body(state, h.sock))
    vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting")
    vm.kill()
    assert h.wait() == 0, h.proc.stderr.read()
    size, ranges = read_working_set(ws)
    assert size == mem.stat().st_size and ranges
    h = handlers(tmp_path / "pre.sock", mem, "--prefetch", ws)
    vm = ember_factory(name="prefetched")
    vm.ok("PUT", "/snapshot/load", uffd_body(state, h.sock))
    vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting")
    assert counts(vm)[0] == last + STEP


# ---- the File backend's working set ----

def crc64(data):
    """CRC-64/XZ, as the working-set file's trailer."""
    crc = 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xC96C5795D7870F42 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def mapping_rss(pid, path):
    """Resident bytes of the mappings of file `path` in process pid."""
    rss, inside = 0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            inside = line.rstrip().endswith(" " + str(path))
        elif inside and line.startswith("Rss:"):
            rss += int(line.split()[1]) * 1024
    return rss


def test_record_then_prefetch_from_the_memory_file(ember_factory, snap, tmp_path):
    """record_working_set writes the pages the restored guest touched in its first
    duration_ms: some of its memory, not all. A restore that prefetches that set, loaded
    paused (so the guest touches nothing), has those pages mapped already, where one without
    prefetch has next to none; resumed, it runs on from the count."""
    state, mem, last = snap
    ws = tmp_path / "file.ws"
    vm = ember_factory(name="recorded")
    vm.ok("PUT", "/snapshot/load",
          load_body(state, mem, record_working_set={"path": str(ws), "duration_ms": 300}))
    vm.wait_until(lambda: ws.exists(), 10, "the working-set file")
    vm.wait_until(lambda: "record_working_set:" in vm.log, 10, "the recording's log line")
    size, ranges = read_working_set(ws)
    ws_bytes = sum(n for _, n in ranges)
    assert size == mem.stat().st_size
    assert 0 < ws_bytes < size // 2, ws_bytes
    vm.kill()

    plain = ember_factory(name="plain")
    plain.ok("PUT", "/snapshot/load", load_body(state, mem, resume=False))
    pre = ember_factory(name="prefetched")
    pre.ok("PUT", "/snapshot/load",
           load_body(state, mem, resume=False, prefetch={"working_set_path": str(ws)}))
    deadline = time.monotonic() + 10
    while mapping_rss(pre.proc.pid, mem) < ws_bytes * 0.9 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mapping_rss(pre.proc.pid, mem) >= ws_bytes * 0.9, (mapping_rss(pre.proc.pid, mem), ws_bytes)
    assert mapping_rss(plain.proc.pid, mem) < ws_bytes / 4, (mapping_rss(plain.proc.pid, mem), ws_bytes)
    pre.ok("PATCH", "/vm", {"state": "Resumed"})
    pre.wait_until(lambda: len(counts(pre)) >= 2, 10, "counting")
    assert counts(pre)[0] == last + STEP


@pytest.mark.parametrize("how, message", [
    ("missing", "No such file"),
    ("garbage", "working set"),
    ("other-size", "memory file"),
])
def test_bad_working_set_is_a_400(ember_factory, snap, tmp_path, how, message):
    """A prefetch file that is missing, damaged, or made for another memory size: a 400 that
    names the problem, no VM, and the same Ember then loads without it."""
    state, mem, last = snap
    ws = tmp_path / "bad.ws"
    if how == "garbage":
        ws.write_bytes(b"EMBERWS1" + os.urandom(64))
    elif how == "other-size":
        body = struct.pack("<8sIIQII", b"EMBERWS1", 1, 4096, 1 << 30, 0, 0)
        ws.write_bytes(body + struct.pack("<Q", crc64(body)))
    vm = ember_factory(name="restored")
    r = vm.put("/snapshot/load", load_body(state, mem, prefetch={"working_set_path": str(ws)}))
    assert r.status == 400 and "prefetch" in r.fault and message in r.fault, r
    assert vm.state() == "Not started"
    vm.ok("PUT", "/snapshot/load", load_body(state, mem))
    vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting")
    assert counts(vm)[0] == last + STEP


def test_working_set_options_are_for_the_file_backend(ember_factory, tmp_path):
    vm = ember_factory()
    for extra in ({"prefetch": {"working_set_path": "/x"}},
                  {"record_working_set": {"path": "/x"}}):
        r = vm.put("/snapshot/load", uffd_body(tmp_path / "s", tmp_path / "u", **extra))
        assert r.status == 400 and "File backend" in r.fault, r
    r = vm.put("/snapshot/load", load_body(tmp_path / "s", tmp_path / "m",
                                           record_working_set={"path": "/x",
                                                               "duration_ms": 0}))
    assert r.status == 400 and "duration_ms" in r.fault, r
