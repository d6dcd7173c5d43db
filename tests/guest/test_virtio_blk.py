# SPDX-License-Identifier: Apache-2.0
"""virtio-blk from the guest's side: the guest's own driver (tests/guest/virtio.c) reads
the pattern the host wrote, writes its own to sectors 2-3 of each writable drive, and
breaks the queue rules on purpose (virtio_hostile). Afterwards the host checks the files:
the guest's writes landed, read-only drives are untouched, and Ember ran to the end."""

import json

import pytest

from guestrun import (GUEST_PATTERN, SECTOR, disk_pattern, drive, image, make_config, make_disk,
                      run, sector_pattern)

MIB = 1 << 20
VIRTIO_BLK_F_FLUSH = 1 << 9
VIRTIO_BLK_F_RO = 1 << 5
HOSTILE_CASES = ["desc-past-ram", "desc-across-ram-end", "desc-wraps", "chain-loop",
                 "next-out-of-range", "zero-length", "readable-after-writable", "no-status",
                 "avail-idx-jump", "ring-outside-ram", "indirect-partial", "indirect-nested"]


def expected_after_guest(sectors, read_only):
    """A disk's contents after virtio_blk: sectors 2-3 hold the guest's pattern if it could
    write them."""
    data = disk_pattern(sectors)
    if read_only:
        return data
    return (data[:2 * SECTOR] + sector_pattern(2, GUEST_PATTERN)
            + sector_pattern(3, GUEST_PATTERN) + data[4 * SECTOR:])


def devices(r):
    """The guest's `virtio-blk dev=...` lines as {dev: {key: value}}."""
    out = {}
    for words in r.values("virtio-blk"):
        kv = dict(w.split("=", 1) for w in words)
        out.setdefault(int(kv.pop("dev")), {}).update(kv)
    return out


def check_files(disks):
    """disks: (path, sectors, read_only) per drive."""
    for path, sectors, read_only in disks:
        data, want = path.read_bytes(), expected_after_guest(sectors, read_only)
        assert len(data) == len(want), path
        bad = [i for i in range(sectors)
               if data[i * SECTOR:(i + 1) * SECTOR] != want[i * SECTOR:(i + 1) * SECTOR]]
        assert not bad, f"{path}: sectors {bad[:8]} are not what the guest left there"


def run_blk(drives, tests="virtio_blk", exit_code=0):
    r = run(boot_args=f"tests={tests} exit=port:{exit_code}", debug_exit=True, drives=drives)
    assert r.returncode == exit_code, r.explain()
    r.assert_all_passed(tests.split(","))
    return r


def test_one_drive_reads_writes_and_survives_hostile_chains(tmp_path):
    path = make_disk(tmp_path / "d0.img", 4 * MIB // SECTOR)
    r = run_blk([drive("d0", path)], tests="virtio_blk,virtio_hostile")
    dev = devices(r)
    assert list(dev) == [0], r.explain()
    assert dev[0]["capacity"] == str(4 * MIB // SECTOR), r.explain()
    assert (dev[0]["ro"], dev[0]["id"]) == ("0", "d0"), r.explain()
    hostile = [v[0] for v in r.values("virtio-hostile")]
    assert hostile == HOSTILE_CASES, r.explain()
    check_files([(path, 4 * MIB // SECTOR, False)])


@pytest.mark.parametrize("io_engine", ["Sync", "Async"])
@pytest.mark.parametrize("cache_type", ["Unsafe", "Writeback"])
def test_io_engines_and_cache_types(tmp_path, io_engine, cache_type):
    sectors = 3 * MIB // SECTOR + 5
    path = make_disk(tmp_path / "disk.img", sectors)
    r = run_blk([drive("disk", path, cache_type=cache_type, io_engine=io_engine)])
    dev = devices(r)[0]
    assert dev["capacity"] == str(sectors), r.explain()
    flush = int(dev["features"], 16) & VIRTIO_BLK_F_FLUSH
    assert bool(flush) == (cache_type == "Writeback"), r.explain()
    check_files([(path, sectors, False)])


@pytest.mark.parametrize("io_engine", ["Sync", "Async"])
def test_hostile_driver_does_not_stop_ember(tmp_path, io_engine):
    path = make_disk(tmp_path / "d0.img", MIB // SECTOR)
    metrics = tmp_path / "metrics.json"
    metrics.touch()
    config = make_config(image("guest.elf"), "tests=virtio_hostile,hello exit=port:42", 1, 128,
                         [drive("d0", path, io_engine=io_engine)])
    config["metrics"] = {"metrics_path": str(metrics)}
    r = run(config=config, debug_exit=True)
    assert r.returncode == 42, r.explain()
    r.assert_all_passed(["virtio_hostile", "hello"])
    assert [v[0] for v in r.values("virtio-hostile")] == HOSTILE_CASES, r.explain()
    assert path.read_bytes() == disk_pattern(MIB // SECTOR)
    # each broken rule is counted once, in the metrics Ember flushes as it stops
    flushed = [json.loads(line) for line in metrics.read_text().splitlines() if line]
    assert sum(m["virtio"]["needs_reset"] for m in flushed) == len(HOSTILE_CASES), flushed


def test_root_drive_first_and_read_only_drive_untouched(tmp_path):
    data = make_disk(tmp_path / "data.img", 2 * MIB // SECTOR)
    root = make_disk(tmp_path / "root.img", 3 * MIB // SECTOR)
    r = run_blk([drive("data", data, read_only=True), drive("rootfs", root, root=True)])
    dev = devices(r)
    assert sorted(dev) == [0, 1], r.explain()
    assert (dev[0]["id"], dev[0]["ro"], dev[0]["capacity"]) == ("rootfs", "0",
                                                                  str(3 * MIB // SECTOR))
    assert (dev[1]["id"], dev[1]["ro"], dev[1]["capacity"]) == ("data", "1",
                                                                  str(2 * MIB // SECTOR))
    assert int(dev[1]["features"], 16) & VIRTIO_BLK_F_RO, r.explain()
    assert not int(dev[0]["features"], 16) & VIRTIO_BLK_F_RO, r.explain()
    check_files([(root, 3 * MIB // SECTOR, False), (data, 2 * MIB // SECTOR, True)])


def test_eight_drives(tmp_path):
    disks, drives = [], []
    for i in range(8):
        sectors = MIB // SECTOR + 97 * i
        read_only = i % 3 == 2
        path = make_disk(tmp_path / f"d{i}.img", sectors)
        disks.append((path, sectors, read_only))
        drives.append(drive(f"drive{i}", path, read_only=read_only,
                            cache_type=["Unsafe", "Writeback"][i % 2],
                            io_engine=["Sync", "Async"][i // 4]))
    r = run_blk(drives, tests="virtio_blk,virtio_hostile")
    dev = devices(r)
    assert sorted(dev) == list(range(8)), r.explain()
    for i, (path, sectors, read_only) in enumerate(disks):
        assert dev[i]["id"] == f"drive{i}", r.explain()
        assert dev[i]["capacity"] == str(sectors), r.explain()
        assert dev[i]["ro"] == str(int(read_only)), r.explain()
    check_files(disks)


def test_missing_drive_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "nosuch.img"
    r = run(boot_args="tests=virtio_blk exit=port:0", debug_exit=True,
            drives=[drive("d0", missing)])
    assert r.returncode == 1, r.explain()
    assert not r.lines, r.explain()
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.explain()
    assert str(missing) in lines[0] and "No such file" in lines[0], r.explain()


def test_no_drives_fails_cleanly():
    r = run(boot_args="tests=virtio_blk,virtio_hostile exit=auto", debug_exit=True)
    assert r.returncode == 1, r.explain()
    assert "FAIL virtio_blk: no virtio-blk device" in r.lines, r.explain()
    assert "FAIL virtio_hostile: no virtio-blk device" in r.lines, r.explain()
    assert r.summary() == (0, 2), r.explain()
