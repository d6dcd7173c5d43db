# SPDX-License-Identifier: Apache-2.0
"""Drives through the API, as a Firecracker user checks them (docs/api.md, PUT and PATCH
/drives/{drive_id}): PUT before the start, shown by GET /vm/config in Firecracker's shape;
the rules (one root device, at most 8 drives, the enums); the file opened at InstanceStart,
a missing one named there; PATCH refused before the start and applied after it (a new
backing file, new rate limits), with the old file kept when the new one cannot be opened;
the "block" metrics; and the drives reaching the test guest."""
import json
import os
import re

import pytest

from conftest import HANG_ARGS, MSG_AFTER_START, MSG_BEFORE_START, PREFIX, fd_count
from test_endpoints import assert_fault
from test_metrics import read_lines

SECTOR = 512
KIB = 1024
# GET /vm/config's drive, with Firecracker's defaults
DEFAULTS = {"partuuid": None, "cache_type": "Unsafe", "is_read_only": False,
            "rate_limiter": None, "io_engine": "Sync", "socket": None}
RL = {"bandwidth": {"size": 1048576, "one_time_burst": 0, "refill_time": 100},
      "ops": {"size": 100, "one_time_burst": 1000, "refill_time": 100}}
VIRTIO_MMIO_RE = re.compile(r"virtio_mmio\.device=4K@0x[0-9a-f]+:\d+")
BLK_LINE_RE = re.compile(re.escape(PREFIX) + r"virtio-blk dev=(\d+) capacity=(\d+) ro=([01]) "
                         r"id=(\S*)\n")


def image(path, size=64 * KIB):
    """A sparse file of `size` bytes; returns its path (resolved, as /proc shows it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)
    return path.resolve()


def host_pattern_image(path, sectors):
    """A disk holding the test guest's host pattern (docs/test-guest.md, virtio-blk tests)."""
    path.write_bytes(b"".join(bytes((s * 7 + k) & 0xFF for k in range(SECTOR))
                              for s in range(sectors)))
    return path.resolve()


def drive(drive_id, path, root=False, **fields):
    return {"drive_id": drive_id, "path_on_host": str(path), "is_root_device": root, **fields}


def shown(drive_id, path, root=False, **fields):
    """The drive as GET /vm/config shows it."""
    return {**DEFAULTS, "drive_id": drive_id, "path_on_host": str(path),
            "is_root_device": root, **fields}


def drives(vm):
    r = vm.get("/vm/config")
    assert r.status == 200, r
    return r.json["drives"]


def put_drive(vm, drive_id, path, root=False, **fields):
    return vm.ok("PUT", f"/drives/{drive_id}", drive(drive_id, path, root, **fields))


def open_files(vm):
    """{path: access mode (os.O_RDONLY, os.O_RDWR ...)} of the files Ember holds open (not
    its sockets, pipes and anonymous inodes)."""
    out = {}
    fd_dir = f"/proc/{vm.proc.pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
            if not target.startswith("/"):
                continue
            with open(f"/proc/{vm.proc.pid}/fdinfo/{fd}") as f:
                flags = next(int(l.split()[1], 8) for l in f if l.startswith("flags:"))
        except (FileNotFoundError, StopIteration):
            continue
        out[target] = flags & os.O_ACCMODE
    return out


def guest_cmdline(vm):
    m = re.search(re.escape(PREFIX) + r"cmdline (.*)\n", vm.console)
    assert m, vm.describe()
    return m.group(1)


def flush_block(vm):
    """FlushMetrics, then the "block" group of the line it wrote (counts since the previous
    line)."""
    vm.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    return read_lines(vm.metrics_path)[-1]["block"]


# ---- PUT before the start ----

def test_put_drive_shows_in_vm_config(ember, tmp_path):
    rootfs = image(tmp_path / "rootfs.ext4")
    put_drive(ember, "rootfs", rootfs, root=True)
    assert drives(ember) == [shown("rootfs", rootfs, root=True)]
    m = ember.metrics()
    assert (m["put_api_requests_drive_count"], m["put_api_requests_drive_fails"]) == (1, 0)
    # the file is not opened before InstanceStart
    assert str(rootfs) not in open_files(ember)


def test_put_drive_with_every_field(ember, tmp_path):
    data = image(tmp_path / "data.img")
    fields = {"is_read_only": True, "partuuid": "0eaa91a0-01", "cache_type": "Writeback",
              "io_engine": "Async",
              "rate_limiter": {"bandwidth": {"size": 1048576, "refill_time": 100},
                               "ops": {"size": 100, "one_time_burst": 1000,
                                       "refill_time": 100}}}
    put_drive(ember, "data", data, **fields)
    assert drives(ember) == [shown("data", data, **{**fields, "rate_limiter": RL})]


@pytest.mark.parametrize("limiter,want", [
    ({"bandwidth": {"size": 0, "refill_time": 100}, "ops": RL["ops"]},
     {"bandwidth": None, "ops": RL["ops"]}),
    ({"bandwidth": RL["bandwidth"], "ops": {"size": 100, "refill_time": 0}},
     {"bandwidth": RL["bandwidth"], "ops": None}),
    ({"bandwidth": {"size": 0, "refill_time": 0}}, None),
    ({}, None),
], ids=["bandwidth-size-0", "ops-refill-0", "all-idle", "empty"])
def test_idle_token_buckets_count_as_absent(ember, tmp_path, limiter, want):
    data = image(tmp_path / "data.img")
    put_drive(ember, "data", data, rate_limiter=limiter)
    assert drives(ember)[0]["rate_limiter"] == want


def test_put_same_id_replaces_the_whole_drive(ember, tmp_path):
    old, new = image(tmp_path / "old.img"), image(tmp_path / "new.img")
    put_drive(ember, "data", old, is_read_only=True, cache_type="Writeback", rate_limiter=RL)
    put_drive(ember, "data", new)
    # one drive, and what the second PUT did not give is back to its default
    assert drives(ember) == [shown("data", new)]


def test_root_device_is_kept_first(ember, tmp_path):
    paths = {name: image(tmp_path / f"{name}.img") for name in ("data", "logs", "rootfs")}
    put_drive(ember, "data", paths["data"])
    put_drive(ember, "logs", paths["logs"])
    put_drive(ember, "rootfs", paths["rootfs"], root=True)
    assert [d["drive_id"] for d in drives(ember)] == ["rootfs", "data", "logs"]
    ember.boot()
    cmdline = guest_cmdline(ember)
    assert len(VIRTIO_MMIO_RE.findall(cmdline)) == 3, cmdline
    assert "root=/dev/vda rw" in cmdline, cmdline


def test_at_most_one_root_device(ember, tmp_path):
    a, b = image(tmp_path / "a.img"), image(tmp_path / "b.img")
    put_drive(ember, "rootfs", a, root=True)
    before = drives(ember)
    r = ember.put("/drives/other", drive("other", b, root=True))
    assert_fault(r, 400, "is_root_device", "'rootfs'", "already the root device")
    assert drives(ember) == before, "a refused PUT changed the drives"
    assert ember.metrics()["put_api_requests_drive_fails"] == 1
    # the root drive itself may be replaced, and stay the root
    put_drive(ember, "rootfs", b, root=True)
    assert drives(ember) == [shown("rootfs", b, root=True)]
    # once it is a plain drive, another may be the root, and goes first
    put_drive(ember, "rootfs", a)
    put_drive(ember, "other", b, root=True)
    assert [(d["drive_id"], d["is_root_device"]) for d in drives(ember)] == \
        [("other", True), ("rootfs", False)]


@pytest.mark.parametrize("partuuid,root_arg", [(None, "root=/dev/vda ro"),
                                               ("0eaa91a0-01", "root=PARTUUID=0eaa91a0-01 ro")],
                         ids=["vda", "partuuid"])
def test_read_only_root_device(ember, tmp_path, partuuid, root_arg):
    rootfs = image(tmp_path / "rootfs.ext4")
    extra = {"partuuid": partuuid} if partuuid else {}
    put_drive(ember, "rootfs", rootfs, root=True, is_read_only=True, **extra)
    ember.boot()
    assert root_arg in guest_cmdline(ember), ember.describe()
    assert open_files(ember).get(str(rootfs)) == os.O_RDONLY, open_files(ember)


@pytest.mark.parametrize("field,value,choices", [
    ("cache_type", "writeback", ["Unsafe", "Writeback"]),
    ("cache_type", "None", ["Unsafe", "Writeback"]),
    ("cache_type", 1, ["Unsafe", "Writeback"]),
    ("io_engine", "async", ["Sync", "Async"]),
    ("io_engine", "Uring", ["Sync", "Async"]),
    ("io_engine", None, None),  # null counts as absent: the default
])
def test_cache_type_and_io_engine_are_checked(ember, tmp_path, field, value, choices):
    data = image(tmp_path / "data.img")
    r = ember.put("/drives/data", drive("data", data, **{field: value}))
    if choices is None:
        assert r.status == 204, r
        assert drives(ember)[0][field] == DEFAULTS[field]
        return
    words = [field, *choices] + ([value] if isinstance(value, str) else [])
    assert_fault(r, 400, *words)
    assert drives(ember) == []


def test_at_most_8_drives(ember, tmp_path):
    paths = [image(tmp_path / f"d{i}.img") for i in range(9)]
    for i in range(8):
        put_drive(ember, f"d{i}", paths[i], root=i == 0)
    r = ember.put("/drives/d8", drive("d8", paths[8]))
    assert_fault(r, 400, "drives", "at most 8")
    assert len(drives(ember)) == 8
    # replacing one of the eight is not adding one
    put_drive(ember, "d7", paths[8])
    assert [d["path_on_host"] for d in drives(ember)][7] == str(paths[8])
    ember.boot()
    assert len(VIRTIO_MMIO_RE.findall(guest_cmdline(ember))) == 8, ember.describe()
    opened = open_files(ember)
    assert all(str(p) in opened for p in paths[:7] + paths[8:]), opened
    assert str(paths[7]) not in opened, "the replaced drive's file was opened"


# ---- the file is opened at InstanceStart ----

def test_instance_start_with_a_missing_drive_file(ember, tmp_path):
    """InstanceStart names the missing file; nothing is left behind (the drive that could
    be opened is closed again); the drives can be fixed and the VM started."""
    rootfs = image(tmp_path / "rootfs.ext4")
    missing = tmp_path / "no-such-dir" / "data.img"
    put_drive(ember, "rootfs", rootfs, root=True)
    put_drive(ember, "data", missing)
    ember.configure()
    r = ember.put("/actions", {"action_type": "InstanceStart"})
    msg = assert_fault(r, 400)
    assert msg == f"InstanceStart: drive {missing}: No such file or directory", msg
    files, fds = open_files(ember), fd_count(ember)
    assert str(rootfs) not in files, "a failed InstanceStart left the root drive open"
    for _ in range(10):
        assert ember.put("/actions", {"action_type": "InstanceStart"}).status == 400
    assert open_files(ember) == files and fd_count(ember) <= fds, \
        "failed InstanceStarts leaked file descriptors"
    ember.assert_healthy("Not started")
    assert [d["path_on_host"] for d in drives(ember)] == [str(rootfs), str(missing)]
    # still configurable: fix the path, and the start works
    fixed = image(tmp_path / "data.img")
    put_drive(ember, "data", fixed)
    ember.start()
    ember.wait_done()
    ember.assert_healthy("Running")
    assert {str(rootfs), str(fixed)} <= set(open_files(ember))


@pytest.mark.parametrize("read_only,why", [(False, "Is a directory"),
                                           (True, "not a regular file or a block device")])
def test_instance_start_with_a_directory_as_drive(ember, tmp_path, read_only, why):
    put_drive(ember, "data", tmp_path, is_read_only=read_only)
    ember.configure()
    r = ember.put("/actions", {"action_type": "InstanceStart"})
    assert_fault(r, 400, "InstanceStart", str(tmp_path), why)
    ember.assert_healthy("Not started")


def test_drive_arguments_must_fit_the_kernel_command_line(ember, tmp_path):
    """boot_args may be 2047 bytes, but Ember appends about 40 bytes a drive: a line that
    no longer fits fails InstanceStart clearly (Linux would cut it, losing drives), and a
    shorter boot_args then starts."""
    for i in range(8):
        put_drive(ember, f"d{i}", image(tmp_path / f"d{i}.img"), root=i == 0)
    args = HANG_ARGS + " pad=" + "x" * (2000 - len(HANG_ARGS) - 5)
    ember.configure(args)
    r = ember.put("/actions", {"action_type": "InstanceStart"})
    assert_fault(r, 400, "InstanceStart", "kernel command line is", "at most 2047")
    ember.assert_healthy("Not started")
    ember.boot()
    assert len(VIRTIO_MMIO_RE.findall(guest_cmdline(ember))) == 8, ember.describe()


# ---- PATCH before the start ----

def test_patch_before_start_is_not_supported(ember, tmp_path):
    """As in Firecracker: a drive that was PUT cannot be PATCHed before InstanceStart."""
    data, other = image(tmp_path / "data.img"), image(tmp_path / "other.img")
    put_drive(ember, "data", data)
    before = drives(ember)
    for body in [{"drive_id": "data", "path_on_host": str(other)},
                 {"drive_id": "data", "rate_limiter": RL}]:
        r = ember.patch("/drives/data", body)
        assert assert_fault(r, 400) == MSG_BEFORE_START
    assert drives(ember) == before
    m = ember.metrics()
    assert (m["patch_api_requests_drive_count"], m["patch_api_requests_drive_fails"]) == (2, 2)


# ---- PATCH after the start ----

@pytest.fixture
def started(ember, tmp_path):
    """A running test guest with a root drive and a read-only data drive, and metrics."""
    vm = ember
    vm.metrics_path = tmp_path / "metrics.json"
    vm.ok("PUT", "/metrics", {"metrics_path": str(vm.metrics_path)})
    vm.rootfs = image(tmp_path / "rootfs.ext4", 1024 * KIB)
    vm.data = image(tmp_path / "data.img", 64 * KIB)
    put_drive(vm, "rootfs", vm.rootfs, root=True)
    put_drive(vm, "data", vm.data, is_read_only=True, cache_type="Writeback")
    vm.boot()
    return vm


def test_patch_path_on_host_after_start(started, tmp_path):
    vm = started
    new = image(tmp_path / "data-v2.img", 128 * KIB)
    assert open_files(vm)[str(vm.data)] == os.O_RDONLY
    before = drives(vm)
    flush_block(vm)
    vm.ok("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(new)})
    # the configuration shows the new file, and nothing else changed
    after = drives(vm)
    assert after == [before[0], {**before[1], "path_on_host": str(new)}]
    # the old file is closed, the new one open read-only, as the drive is
    files = open_files(vm)
    assert str(vm.data) not in files and files.get(str(new)) == os.O_RDONLY, files
    assert files.get(str(vm.rootfs)) == os.O_RDWR, files
    vm.wait_log(f"drive data: now backed by {new} (131072 bytes)")
    block = flush_block(vm)
    assert (block["update_count"], block["update_fails"]) == (1, 0), block
    m = vm.metrics()
    assert (m["block_update_count"], m["block_update_fails"]) == (1, 0)
    assert (m["patch_api_requests_drive_count"], m["patch_api_requests_drive_fails"]) == (1, 0)
    vm.assert_healthy("Running")


def test_patch_to_a_missing_file_keeps_the_old_one(started, tmp_path):
    vm = started
    missing = tmp_path / "no-such-dir" / "data.img"
    before = drives(vm)
    flush_block(vm)
    r = vm.patch("/drives/data", {"drive_id": "data", "path_on_host": str(missing)})
    msg = assert_fault(r, 400, "data", str(missing), "No such file or directory")
    assert msg == f"drive {missing}: No such file or directory", msg
    assert drives(vm) == before, "GET /vm/config shows a PATCH that failed"
    assert str(vm.data) in open_files(vm), "the drive lost its old file"
    block = flush_block(vm)
    assert (block["update_count"], block["update_fails"]) == (0, 1), block
    assert vm.metrics()["patch_api_requests_drive_fails"] == 1
    # and the drive can still be patched
    new = image(tmp_path / "data-v2.img")
    vm.ok("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(new)})
    assert drives(vm)[1]["path_on_host"] == str(new)
    vm.assert_healthy("Running")


def test_patch_unknown_drive_after_start(started, tmp_path):
    vm = started
    before = drives(vm)
    r = vm.patch("/drives/nosuch", {"drive_id": "nosuch", "path_on_host": str(vm.data)})
    assert assert_fault(r, 400) == "drive_id: no drive with id 'nosuch'"
    r = vm.patch("/drives/data", {"drive_id": "rootfs", "path_on_host": str(vm.data)})
    assert_fault(r, 400, "drive_id", "does not match", "'data'")
    assert drives(vm) == before
    vm.assert_healthy("Running")


def test_patch_rate_limiter_after_start(started):
    """Each bucket given replaces that bucket, one with size 0 removes it, one not given is
    kept (Firecracker's RateLimiterUpdate)."""
    vm = started
    flush_block(vm)
    patches = [
        ({"ops": {"size": 100, "one_time_burst": 1000, "refill_time": 100}},
         {"bandwidth": None, "ops": RL["ops"]}),
        ({"bandwidth": {"size": 1048576, "refill_time": 100}}, RL),
        ({"bandwidth": {"size": 0, "refill_time": 100}}, {"bandwidth": None, "ops": RL["ops"]}),
        ({"ops": {"size": 0, "refill_time": 0}}, None),
    ]
    for limiter, want in patches:
        vm.ok("PATCH", "/drives/rootfs", {"drive_id": "rootfs", "rate_limiter": limiter})
        got = drives(vm)[0]
        assert got["rate_limiter"] == want, (limiter, got)
        assert got["path_on_host"] == str(vm.rootfs)
    block = flush_block(vm)
    assert (block["update_count"], block["update_fails"]) == (len(patches), 0), block
    vm.assert_healthy("Running")


def test_patch_path_and_rate_limiter_together(started, tmp_path):
    vm = started
    new = image(tmp_path / "data-v2.img")
    vm.ok("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(new),
                                    "rate_limiter": RL})
    got = drives(vm)[1]
    assert (got["path_on_host"], got["rate_limiter"]) == (str(new), RL), got


def test_patch_with_the_id_alone_changes_nothing(started):
    """Firecracker takes {"drive_id": ...} alone (its parse_patch_drive test), and so does
    Ember: a 204 that changes nothing."""
    vm = started
    before = drives(vm)
    vm.ok("PATCH", "/drives/data", {"drive_id": "data"})
    assert drives(vm) == before
    assert str(vm.data) in open_files(vm)


@pytest.mark.parametrize("field,value", [
    ("is_read_only", False), ("is_root_device", True), ("cache_type", "Unsafe"),
    ("io_engine", "Async"), ("partuuid", "0eaa91a0-01"), ("socket", "/run/blk.sock"),
])
def test_patch_of_fields_fixed_at_boot_is_refused(started, field, value):
    vm = started
    before = drives(vm)
    r = vm.patch("/drives/data", {"drive_id": "data", "path_on_host": str(vm.data),
                                  field: value})
    assert_fault(r, 400, "unknown field", field)
    assert drives(vm) == before
    assert vm.metrics()["block_update_count"] == 0, "a refused PATCH reached the drive"


def test_patch_while_paused(started, tmp_path):
    """Firecracker takes a drive PATCH on a paused VM; the guest sees it once resumed."""
    vm = started
    new = image(tmp_path / "data-v2.img")
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    vm.ok("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(new)})
    vm.ok("PATCH", "/vm", {"state": "Resumed"})
    assert drives(vm)[1]["path_on_host"] == str(new)
    vm.assert_healthy("Running")


def test_put_drive_after_start_is_refused(started, tmp_path):
    vm = started
    before = drives(vm)
    r = vm.put("/drives/data", drive("data", image(tmp_path / "other.img")))
    assert assert_fault(r, 400) == MSG_AFTER_START
    r = vm.put("/drives/more", drive("more", vm.data))
    assert assert_fault(r, 400) == MSG_AFTER_START
    assert drives(vm) == before


@pytest.mark.parametrize("length", [1, 20, 21, 64])
def test_patch_drive_with_an_id_of_any_valid_length(ember, tmp_path, length):
    """Drive ids are 1 to 64 characters; each can be PATCHed after the start."""
    drive_id = "d" * length
    old, new = image(tmp_path / "old.img"), image(tmp_path / "new.img")
    put_drive(ember, drive_id, old)
    ember.boot()
    r = ember.patch(f"/drives/{drive_id}", {"drive_id": drive_id, "path_on_host": str(new)})
    assert r.status == 204, r
    assert drives(ember)[0]["path_on_host"] == str(new)


# ---- the guest ----

def test_guest_uses_the_drives_configured_through_the_api(ember, tmp_path):
    """The test guest's virtio_blk test on a writable root drive and a read-only drive put
    through the API: both found in slot order, read, the writable one written."""
    rootfs = host_pattern_image(tmp_path / "rootfs.img", 16)
    data = host_pattern_image(tmp_path / "data.img", 8)
    put_drive(ember, "rootfs", rootfs, root=True, cache_type="Writeback")
    put_drive(ember, "data", data, is_read_only=True)
    ember.boot("tests=virtio_blk exit=hang")
    assert PREFIX + "done passed=1 failed=0\n" in ember.console, ember.describe()
    found = [(int(d), int(c), r, i) for d, c, r, i in BLK_LINE_RE.findall(ember.console)]
    assert found == [(0, 16, "0", "rootfs"), (1, 8, "1", "data")], ember.describe()
    m = ember.metrics()
    assert m["block_read_count"] > 0 and m["block_write_count"] > 0, m
    guest = bytes((2 * 13 + k + 1) & 0xFF for k in range(SECTOR))
    assert rootfs.read_bytes()[2 * SECTOR:3 * SECTOR] == guest, "the guest's write is missing"
    assert data.read_bytes() == host_pattern_image(tmp_path / "want.img", 8).read_bytes()
