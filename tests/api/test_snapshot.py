# SPDX-License-Identifier: Apache-2.0
"""Snapshots with the test guest (docs/snapshot.md): PUT /snapshot/create on a paused VM,
PUT /snapshot/load into a fresh Ember. The guest's `counter` test counts in memory and prints
every COUNTER_STEP: a restored guest goes on from its count. Bad snapshot files get a 400
that says what is wrong, and the Ember stays usable."""
import json
import re
import struct
import time

import pytest

from conftest import GUEST

STEP = 2000  # tests/guest/counter.c
COUNTER_RE = re.compile(r"^EMBER-GUEST: counter (\d+)$", re.M)


def counts(vm):
    return [int(n) for n in COUNTER_RE.findall(vm.console)]


def boot_counter(vm, vcpus=1, mem_mib=64):
    vm.configure("tests=counter", vcpus=vcpus, mem_mib=mem_mib)
    vm.start()
    vm.wait_until(lambda: len(counts(vm)) >= 3, 10, "three counter lines")


def settled_console(vm, quiet=0.5, timeout=10):
    """The console once nothing new has come for `quiet` seconds: a paused guest's last
    lines may still be in Ember's output buffer, or on their way to the test."""
    deadline = time.monotonic() + timeout
    last = vm.console
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = vm.console
        if now == last:
            return now
        last = now
    return last


def paused_count(vm):
    """The count a paused counting guest has reached: the last line it printed, or the one
    after it when the pause caught the guest in the middle of printing that one (its end
    then comes from the restored guest, whose first whole line is the next but one)."""
    console = settled_console(vm)
    whole, _, partial = console.rpartition("\n")
    last = [int(n) for n in COUNTER_RE.findall(whole)][-1]
    return last + STEP if partial else last


def snapshot(vm, tmp_path, name="snap"):
    """Pauses vm, snapshots it; returns (state path, memory path, the last count printed)."""
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    last = paused_count(vm)
    state, mem = tmp_path / f"{name}.state", tmp_path / f"{name}.mem"
    vm.ok("PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": str(state),
                                      "mem_file_path": str(mem)})
    return state, mem, last


def load_body(state, mem, resume=True, **extra):
    return {"snapshot_path": str(state),
            "mem_backend": {"backend_type": "File", "backend_path": str(mem)},
            "resume_vm": resume, **extra}


@pytest.fixture
def snap(ember_factory, tmp_path):
    """A snapshot of the counting guest, its Ember killed afterwards."""
    vm = ember_factory(name="source")
    boot_counter(vm)
    state, mem, last = snapshot(vm, tmp_path)
    vm.kill()
    return state, mem, last


def test_restore_continues_where_it_was(ember_factory, snap):
    """A new Ember loads the snapshot and resumes: the guest prints the counts after the
    last one it printed before the snapshot, in order, none twice and none from zero."""
    state, mem, last = snap
    vm = ember_factory(name="restored")
    vm.ok("PUT", "/snapshot/load", load_body(state, mem))
    assert vm.state() == "Running"
    vm.wait_until(lambda: len(counts(vm)) >= 3, 10, "counting after the restore")
    after = counts(vm)
    assert after[0] == last + STEP, f"before: ...{last}; after: {after[:5]}\n{vm.describe()}"
    assert after == list(range(after[0], after[0] + STEP * len(after), STEP)), after[:10]


def test_load_paused_then_resume(ember_factory, snap):
    """resume_vm false: the VM is Paused and prints nothing until PATCH /vm Resumed."""
    state, mem, last = snap
    vm = ember_factory(name="restored")
    vm.ok("PUT", "/snapshot/load", load_body(state, mem, resume=False))
    assert vm.state() == "Paused"
    time.sleep(0.3)
    assert counts(vm) == [], vm.console
    vm.ok("PATCH", "/vm", {"state": "Resumed"})
    vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting after the resume")
    assert counts(vm)[0] == last + STEP


def test_same_snapshot_restores_many_times(ember_factory, snap):
    """The snapshot is not changed by a restore (its memory is mapped copy-on-write): five
    Embers restore it one after another, and each guest goes on from the same count."""
    state, mem, last = snap
    before = mem.read_bytes()
    firsts = []
    for i in range(5):
        vm = ember_factory(name=f"clone{i}")
        vm.ok("PUT", "/snapshot/load", load_body(state, mem))
        vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting")
        firsts.append(counts(vm)[0])
        vm.kill()
    assert firsts == [last + STEP] * 5
    assert mem.read_bytes() == before


def test_snapshot_of_a_restored_vm(ember_factory, snap, tmp_path):
    """A restored VM can be snapshotted again, and that snapshot restores too."""
    state, mem, _ = snap
    vm = ember_factory(name="second")
    vm.ok("PUT", "/snapshot/load", load_body(state, mem))
    vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting")
    state2, mem2, last2 = snapshot(vm, tmp_path, "snap2")
    vm.kill()
    vm = ember_factory(name="third")
    vm.ok("PUT", "/snapshot/load", load_body(state2, mem2))
    vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting")
    assert counts(vm)[0] == last2 + STEP


def test_create_needs_a_paused_vm(ember_factory, tmp_path):
    vm = ember_factory()
    body = {"snapshot_path": str(tmp_path / "s"), "mem_file_path": str(tmp_path / "m")}
    r = vm.put("/snapshot/create", body)
    assert r.status == 400 and "not supported before starting" in r.fault, r
    boot_counter(vm)
    r = vm.put("/snapshot/create", body)
    assert r.status == 400 and "only while the microVM is paused" in r.fault, r
    assert not (tmp_path / "s").exists() and not (tmp_path / "m").exists()


def test_load_only_into_a_fresh_ember(ember_factory, snap):
    state, mem, _ = snap
    vm = ember_factory()
    vm.ok("PUT", "/boot-source", {"kernel_image_path": str(GUEST)})
    r = vm.put("/snapshot/load", load_body(state, mem))
    assert r.status == 400 and "fresh Ember" in r.fault, r
    vm = ember_factory(name="running")
    boot_counter(vm)
    r = vm.put("/snapshot/load", load_body(state, mem))
    assert r.status == 400 and "already running" in r.fault, r


def damaged(state, tmp_path, how):
    data = bytearray(state.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "flipped-bit":
        data[len(data) // 3] ^= 0x10
    elif how == "magic":
        data[0:4] = b"XXXX"
    elif how == "newer-major":
        data[8:10] = struct.pack("<H", 99)  # the format's major version follows the magic
    out = tmp_path / f"{how}.state"
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("how,message", [
    ("truncated", "truncated"),
    ("flipped-bit", "damaged"),
    ("magic", "bad magic"),
    ("newer-major", "newer"),
])
def test_bad_state_file(ember_factory, snap, tmp_path, how, message):
    """A damaged state file is refused with a 400 saying how; the Ember stays usable and
    then loads the good snapshot."""
    state, mem, last = snap
    vm = ember_factory()
    r = vm.put("/snapshot/load", load_body(damaged(state, tmp_path, how), mem))
    assert r.status == 400 and message in r.fault, r
    assert vm.state() == "Not started"
    vm.ok("PUT", "/snapshot/load", load_body(state, mem))
    vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting")
    assert counts(vm)[0] == last + STEP


@pytest.mark.parametrize("how", ["short", "long", "missing"])
def test_bad_memory_file(ember_factory, snap, tmp_path, how):
    state, mem, _ = snap
    bad = tmp_path / "bad.mem"
    if how == "short":
        bad.write_bytes(mem.read_bytes()[:-4096])
    elif how == "long":
        bad.write_bytes(mem.read_bytes() + bytes(4096))
    vm = ember_factory()
    r = vm.put("/snapshot/load", load_body(state, bad))
    assert r.status == 400 and "memory file" in r.fault, r
    assert vm.state() == "Not started"


@pytest.mark.parametrize("body,message", [
    ({"mem_backend": {"backend_type": "File", "backend_path": "/x"}}, "snapshot_path"),
    ({"snapshot_path": "/x"}, "mem_backend is required"),
    ({"snapshot_path": "/x", "mem_backend": {"backend_type": "Disk", "backend_path": "/x"}},
     "backend_type"),
    ({"snapshot_path": "/x", "mem_file_path": "/y",
      "mem_backend": {"backend_type": "File", "backend_path": "/x"}}, "not both"),
    ({"snapshot_path": "/x", "mem_file_path": "/y", "resume_vm": "yes"}, "resume_vm"),
    ({"snapshot_path": "/x", "mem_file_path": "/y", "bogus": 1}, "unknown field"),
    ({"snapshot_path": "/x", "mem_file_path": "/y",
      "network_overrides": [{"iface_id": "eth0"}]}, "host_dev_name"),
    ({"snapshot_path": "/nonexistent/s", "mem_file_path": "/y"}, "No such file"),
])
def test_bad_load_requests(ember_factory, body, message):
    vm = ember_factory()
    r = vm.put("/snapshot/load", body)
    assert r.status == 400 and message in r.fault, r


def test_config_mismatch_is_refused(ember_factory, tmp_path):
    """A snapshot of a VM with a drive: when the drive's file is gone, the load is refused
    with a 400 naming it, and nothing runs."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    vm = ember_factory(name="source")
    vm.ok("PUT", "/drives/data", {"drive_id": "data", "path_on_host": str(disk),
                                  "is_root_device": False, "is_read_only": False})
    boot_counter(vm)
    state, mem, _ = snapshot(vm, tmp_path)
    vm.kill()
    disk.unlink()
    vm = ember_factory()
    r = vm.put("/snapshot/load", load_body(state, mem))
    assert r.status == 400 and "disk.img" in r.fault, r
    assert vm.state() == "Not started"


def test_restored_config_is_shown(ember_factory, snap):
    state, mem, _ = snap
    vm = ember_factory()
    vm.ok("PUT", "/snapshot/load", load_body(state, mem))
    cfg = vm.get("/vm/config").json
    assert cfg["boot-source"]["kernel_image_path"] == str(GUEST), json.dumps(cfg)
    assert cfg["machine-config"]["mem_size_mib"] == 64


# ---- a block request parked across a snapshot ----

SECTOR = 512
_RAMP = bytes(range(256)) * 3


def sector_pattern(sector, mul, add):
    """tests/guest/guestrun.py's patterns: the host's (7, 0), the guest's (13, 1)."""
    start = (sector * mul + add) & 0xFF
    return _RAMP[start:start + SECTOR]


def test_block_request_parked_across_a_snapshot(ember_factory, tmp_path):
    """The test guest's virtio_blk test on a drive limited to a few requests a second: the
    snapshot is taken while its requests wait in Ember for tokens. After the restore every
    request completes exactly once: the guest's checks all pass (a request lost would hang
    it, one done twice would break its used-ring bookkeeping) and the disk holds exactly
    what it wrote."""
    sectors = 128
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"".join(sector_pattern(s, 7, 0) for s in range(sectors)))
    vm = ember_factory(name="source")
    vm.ok("PUT", "/drives/data", {
        "drive_id": "data", "path_on_host": str(disk), "is_root_device": False,
        "is_read_only": False,
        "rate_limiter": {"ops": {"size": 1, "refill_time": 300}}})
    vm.configure("tests=virtio_blk exit=hang")
    vm.start()
    vm.wait_until(lambda: "virtio-blk dev=0 features=" in vm.console, 10, "the driver up")
    time.sleep(0.4)  # a request or two in, the next ones waiting for tokens
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    assert "PASS virtio_blk" not in vm.console, "the test ended before the snapshot"
    state, mem = tmp_path / "b.state", tmp_path / "b.mem"
    vm.ok("PUT", "/snapshot/create", {"snapshot_path": str(state), "mem_file_path": str(mem)})
    vm.kill()
    vm = ember_factory(name="restored")
    vm.ok("PUT", "/snapshot/load", load_body(state, mem))
    vm.wait_done(timeout=30)
    assert "EMBER-GUEST: PASS virtio_blk" in vm.console and "failed=0" in vm.console, \
        vm.describe()
    want = (b"".join(sector_pattern(s, 7, 0) for s in range(2)) + sector_pattern(2, 13, 1)
            + sector_pattern(3, 13, 1) + b"".join(sector_pattern(s, 7, 0)
                                                 for s in range(4, sectors)))
    assert disk.read_bytes() == want
