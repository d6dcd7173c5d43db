# SPDX-License-Identifier: Apache-2.0
"""virtio-block with a real Linux guest, the way Firecracker users use it: the ext4 root
from a drive, data drives by id, read-only drives, rate limits, a backing file swapped at
run time. What is checked is what a user would check: the bytes in the host file after the
guest wrote and synced them (also after SIGKILL), the guest's view of each drive
(/sys/block/vdX: serial = drive_id, size, ro), and dd's throughput under a rate limiter.
Every test runs with both io_engines (the io_engine fixture, conftest.py)."""
import hashlib
import json
import re
import secrets

import pytest

from framework.microvm import BOOT_TIMEOUT

MIB = 1 << 20
SECTOR = 512

# One line per virtio-blk disk: name, serial (the drive_id), size in sectors, ro flag.
LIST_DRIVES = ("for d in /sys/block/vd*; do n=${d##*/}; "
               "echo \"drive $n $(cat $d/serial) $(cat $d/size) $(cat $d/ro)\"; done")


def drives_seen(vm):
    """{serial: (name, sectors, read_only)} from the guest's LIST_DRIVES lines."""
    out = {}
    for line in vm.guest_lines:
        w = line.split()
        if len(w) == 5 and w[0] == "drive":
            out[w[2]] = (w[1], int(w[3]), w[4] == "1")
    return out


def make_disk(path, size, tag):
    """A raw disk whose every sector starts with "tag:sector-number"."""
    with open(path, "wb") as f:
        for i in range(size // SECTOR):
            head = f"{tag}:{i}".encode()
            f.write(head + bytes(SECTOR - len(head)))
    return path


def assert_clean_run(vm):
    assert vm.returncode == 0, f"the VMM exited {vm.returncode}\n" + vm.describe()
    assert vm.guest_exit == 0, "the guest's command failed\n" + vm.describe()


def flushed_metrics(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("cache_type", ["Unsafe", "Writeback"])
def test_write_sync_power_off(microvm, cache_type):
    """The guest writes a file on its ext4 root, syncs and powers off: the host's image
    holds the file, and the file system is consistent. With Writeback the guest is offered
    FLUSH (a volatile write cache) and sync sends it; with Unsafe it is not."""
    token = secrets.token_hex(16)
    microvm.basic_config(cmd=f"echo {token} > /root/token && sync && echo synced; "
                             "cat /sys/block/vda/queue/write_cache")
    microvm.config["drives"][0]["cache_type"] = cache_type
    metrics = microvm.workdir / "metrics.json"
    if microvm.is_ember:
        metrics.touch()
        microvm.config["metrics"] = {"metrics_path": str(metrics)}
    microvm.spawn()
    microvm.wait_for_exit()
    assert_clean_run(microvm)
    assert microvm.guest_lines[0] == "synced", microvm.describe()
    assert microvm.read_file_from_rootfs("/root/token") == f"{token}\n".encode()
    if microvm.is_ember:
        want = "write back" if cache_type == "Writeback" else "write through"
        assert microvm.guest_lines[1] == want, microvm.describe()
        block = [m["block"] for m in flushed_metrics(metrics)]
        assert sum(b["write_bytes"] for b in block) > 0, block
        flushes = sum(b["flush_count"] for b in block)
        assert (flushes > 0) == (cache_type == "Writeback"), block


def test_synced_data_survives_sigkill(microvm):
    """Data the guest synced is in the host files even when Ember is SIGKILLed right
    after: a file on the ext4 root (fsync through the file system) and raw sectors of a
    second drive (O_DIRECT + fsync)."""
    scratch = make_disk(microvm.workdir / "scratch.img", 4 * MIB, "old")
    microvm.basic_config(cmd=(
        "dd if=/dev/urandom of=/root/blob bs=64k count=16 2>/dev/null && sync && "
        "sha256sum /root/blob && "
        "dd if=/dev/urandom of=/tmp/raw bs=64k count=16 2>/dev/null && "
        "dd if=/tmp/raw of=/dev/vdb bs=64k oflag=direct conv=fsync 2>/dev/null && "
        "sha256sum /tmp/raw && echo synced-all && sleep 600"))
    microvm.add_drive("scratch", scratch, cache_type="Writeback")
    microvm.spawn()
    microvm.wait_for(lambda: "synced-all" in microvm.console or microvm.exited(), BOOT_TIMEOUT,
                     "the guest to sync")
    assert "synced-all" in microvm.console, microvm.describe()
    microvm.kill()
    sums = [line.split()[0] for line in microvm.guest_lines if line.endswith(("/root/blob",
                                                                              "/tmp/raw"))]
    assert len(sums) == 2, microvm.describe()
    blob = microvm.read_file_from_rootfs("/root/blob")
    assert blob is not None and hashlib.sha256(blob).hexdigest() == sums[0]
    raw = scratch.read_bytes()
    assert hashlib.sha256(raw[:MIB]).hexdigest() == sums[1]
    assert raw[MIB:MIB + 8] == b"old:2048", "dd wrote past what it was given"


def test_read_only_drive_refuses_writes(microvm):
    """A read-only drive is read-only in the guest: writes fail and the host file is
    unchanged, and its contents read back as they are on the host."""
    data = make_disk(microvm.workdir / "data.img", MIB, "ro")
    before = data.read_bytes()
    microvm.basic_config(cmd=(
        LIST_DRIVES + "; head -c 4 /dev/vdb; echo; "
        "dd if=/dev/zero of=/dev/vdb bs=512 count=1 oflag=direct 2>/dev/null "
        "&& echo write-ok || echo write-failed"))
    microvm.add_drive("data", data, read_only=True)
    microvm.spawn()
    microvm.wait_for_exit()
    assert_clean_run(microvm)
    seen = drives_seen(microvm)
    assert seen["data"] == ("vdb", MIB // SECTOR, True), microvm.describe()
    assert seen["rootfs"][2] is False, microvm.describe()
    assert "ro:0" in microvm.guest_lines, microvm.describe()
    assert microvm.guest_lines[-1] == "write-failed", microvm.describe()
    assert data.read_bytes() == before


def test_read_only_root(microvm):
    """A read-only root device is mounted read-only: the guest cannot write to it."""
    microvm.basic_config(cmd="grep ' / ' /proc/mounts; touch /x 2>&1 || echo touch-failed")
    microvm.config["drives"][0]["is_read_only"] = True
    root = microvm.workdir / "rootfs.ext4"
    before = hashlib.sha256(root.read_bytes()).hexdigest()
    microvm.spawn()
    microvm.wait_for_exit()
    assert_clean_run(microvm)
    mount = microvm.guest_lines[0].split()
    assert mount[1:3] == ["/", "ext4"] and mount[3].split(",")[0] == "ro", microvm.describe()
    assert microvm.guest_lines[-1] == "touch-failed", microvm.describe()
    assert hashlib.sha256(root.read_bytes()).hexdigest() == before


def test_eight_drives(microvm):
    """The root and seven data drives: the guest sees each with its drive_id as serial and
    its size, and a write through each lands in that drive's own file."""
    disks = {f"data{i}": make_disk(microvm.workdir / f"data{i}.img", (i + 1) * MIB, f"d{i}")
             for i in range(7)}
    microvm.basic_config(cmd=(
        LIST_DRIVES + "; for d in /sys/block/vd*; do n=${d##*/}; s=$(cat $d/serial); "
        "[ $s = rootfs ] && continue; "
        "printf 'written-by-guest:%s' $s | dd of=/dev/$n bs=512 seek=1 conv=sync,fsync "
        "2>/dev/null || echo write-failed-$n; done"))
    for name, path in disks.items():
        microvm.add_drive(name, path)
    microvm.spawn()
    microvm.wait_for_exit()
    assert_clean_run(microvm)
    seen = drives_seen(microvm)
    assert sorted(seen) == sorted(["rootfs", *disks]), microvm.describe()
    assert len({name for name, _, _ in seen.values()}) == 8
    if microvm.is_ember:
        assert seen["rootfs"][0] == "vda", microvm.describe()
    for i, (name, path) in enumerate(disks.items()):
        assert seen[name][1:] == ((i + 1) * MIB // SECTOR, False), microvm.describe()
        raw = path.read_bytes()
        want = f"written-by-guest:{name}".encode()
        assert raw[SECTOR:SECTOR + len(want)] == want, f"{name}: {raw[SECTOR:SECTOR + 32]!r}"
        assert raw[:4] == f"d{i}:0".encode()[:4] and raw[2 * SECTOR:2 * SECTOR + 4] == \
            f"d{i}:2".encode()[:4]


def uptime_dd(device, bs, count):
    """A guest command that times a direct-I/O read of the device with /proc/uptime."""
    return (f"t0=$(cut -d' ' -f1 /proc/uptime); "
            f"dd if={device} of=/dev/null bs={bs} count={count} iflag=direct 2>/dev/null; "
            f"t1=$(cut -d' ' -f1 /proc/uptime); echo \"dd-time $t0 $t1\"")


def dd_seconds(vm):
    for line in vm.guest_lines:
        m = re.fullmatch(r"dd-time ([\d.]+) ([\d.]+)", line)
        if m:
            return float(m.group(2)) - float(m.group(1))
    raise AssertionError("no dd-time line\n" + vm.describe())


# (what is limited, the bucket, dd's block size and count); the bucket's initial content
# (size) is small against the whole transfer, so the rate is what dd sees.
RATE_CASES = {
    "bandwidth": ({"bandwidth": {"size": 400 * 1024, "refill_time": 100}}, "64k", 320,
                  4000 * 1024),
    "ops": ({"ops": {"size": 20, "refill_time": 100}}, "4k", 1000, 200),
}


@pytest.mark.ember_only
@pytest.mark.parametrize("case", sorted(RATE_CASES))
def test_rate_limiter_holds_the_rate(microvm, case):
    """A drive's rate limiter holds dd's throughput (bytes or operations per second) to the
    configured rate within 15 %, measured in the guest."""
    limiter, bs, count, rate = RATE_CASES[case]
    data = make_disk(microvm.workdir / "data.img", 32 * MIB, "rl")
    microvm.basic_config(cmd=uptime_dd("/dev/vdb", bs, count))
    microvm.add_drive("data", data, rate_limiter=limiter)
    microvm.spawn()
    microvm.wait_for_exit()
    assert_clean_run(microvm)
    seconds = dd_seconds(microvm)
    block = int(bs[:-1]) * 1024
    measured = (count * block if case == "bandwidth" else count) / seconds
    assert abs(measured / rate - 1) <= 0.15, \
        f"{case}: {measured:.0f}/s against {rate}/s ({seconds:.2f} s)\n" + microvm.describe()


@pytest.mark.ember_only
def test_patch_drive_swaps_backing_file(api_microvm):
    """PATCH /drives/{id} with a new path_on_host while the guest runs: the guest is told
    the new size (config-change interrupt) and reads the new file."""
    vm = api_microvm
    old = make_disk(vm.workdir / "old.img", MIB, "old")
    new = make_disk(vm.workdir / "new.img", 3 * MIB, "new")
    vm.basic_config(cmd=(
        "s0=$(cat /sys/block/vdb/size); echo size0=$s0; echo waiting-for-patch; "
        "while [ $(cat /sys/block/vdb/size) = $s0 ]; do sleep 0.1; done; "
        "echo size1=$(cat /sys/block/vdb/size); "
        "dd if=/dev/vdb bs=512 skip=5000 count=1 iflag=direct 2>/dev/null | head -c 8; echo"))
    data = vm.add_drive("data", old)
    vm.spawn()
    vm.wait_for_socket()
    vm.put_config()
    vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    vm.wait_for(lambda: "waiting-for-patch" in vm.console or vm.exited(), BOOT_TIMEOUT,
                "the guest to read the first size")
    vm.ok("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": str(new)})
    assert vm.wait_for_exit() == 0, vm.describe()
    assert vm.guest_exit == 0, vm.describe()
    assert vm.guest_lines[:2] == [f"size0={MIB // SECTOR}", "waiting-for-patch"], vm.describe()
    assert vm.guest_lines[2:] == [f"size1={3 * MIB // SECTOR}", "new:5000"], vm.describe()
    assert data["path_on_host"] == str(old)
