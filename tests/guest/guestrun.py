# SPDX-License-Identifier: Apache-2.0
"""Runs build/ember on the test guest and hands back what happened.

The guest (tests/guest/, docs/test-guest.md) prints lines starting with "EMBER-GUEST: " on
the serial port, which Ember copies to its stdout. `run()` writes a Firecracker-style
config to a temporary directory, runs Ember with a timeout and returns a `Result`.
"""

import ctypes
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("EMBER_BUILD", ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
EMBER = BUILD / "ember"
GUEST_DIR = BUILD / "tests" / "guest"

PREFIX = "EMBER-GUEST: "
# A guest run that takes longer than this is a failure even if it ends well: a typical
# one takes well under a second.
TIMEOUT = 20.0
SLOW = TIMEOUT / 2

# The serial test's pattern (tests/guest/serial.c, docs/test-guest.md).
SERIAL_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SERIAL_PATTERN = (
    PREFIX + "serial " + "".join(chr(c) for c in range(0x20, 0x7F)) + "\n"
    + "".join(SERIAL_ALPHABET[i % len(SERIAL_ALPHABET)] for i in range(2000)) + "\n"
    + PREFIX + "serial-end\n"
)


# The virtio-blk disk patterns (tests/guest/virtio.h, docs/test-guest.md): byte k of
# sector s is (s * mul + add + k) & 0xff. The host fills disks with HOST_PATTERN; the
# virtio_blk test writes GUEST_PATTERN to sectors 2 and 3 of each writable drive.
SECTOR = 512
HOST_PATTERN = (7, 0)
GUEST_PATTERN = (13, 1)
_RAMP = bytes(range(256)) * 2 + bytes(range(256))


def sector_pattern(sector, pattern=HOST_PATTERN):
    """The 512 bytes of `sector` under `pattern` (mul, add)."""
    mul, add = pattern
    start = (sector * mul + add) & 0xFF
    return _RAMP[start:start + SECTOR]


def disk_pattern(sectors, pattern=HOST_PATTERN, first=0):
    """Sectors [first, first + sectors) of a disk filled with `pattern`."""
    return b"".join(sector_pattern(s, pattern) for s in range(first, first + sectors))


def make_disk(path, sectors):
    """Writes a disk image of `sectors` sectors holding the host pattern; returns its path."""
    Path(path).write_bytes(disk_pattern(sectors))
    return Path(path)


def drive(drive_id, path, read_only=False, root=False, cache_type=None, io_engine=None):
    """One entry of the config's "drives" list (Firecracker's schema)."""
    d = {"drive_id": drive_id, "path_on_host": str(path), "is_root_device": root,
         "is_read_only": read_only}
    if cache_type is not None:
        d["cache_type"] = cache_type
    if io_engine is not None:
        d["io_engine"] = io_engine
    return d


def image(name):
    """Path of a guest image in the build directory, e.g. image("guest.elf")."""
    return GUEST_DIR / name


@dataclass
class Result:
    returncode: int
    stdout: str  # decoded as latin-1: one character per byte the guest sent
    stderr: str
    seconds: float
    config: dict = field(default_factory=dict)

    @property
    def lines(self):
        """The guest's report lines, without the prefix."""
        return [l[len(PREFIX):] for l in self.stdout.splitlines() if l.startswith(PREFIX)]

    def values(self, keyword):
        """Lines "<keyword> ..." as lists of words after the keyword."""
        return [l.split()[1:] for l in self.lines if l.split()[:1] == [keyword]]

    def passed(self, test):
        return f"PASS {test}" in self.lines

    def summary(self):
        """(passed, failed) from the final "done" line, or None."""
        for l in self.lines:
            if l.startswith("done "):
                kv = dict(w.split("=", 1) for w in l.split()[1:])
                return int(kv["passed"]), int(kv["failed"])
        return None

    def explain(self):
        return (f"exit code {self.returncode} after {self.seconds:.2f} s\n"
                f"config: {json.dumps(self.config)}\n"
                f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}")

    def assert_all_passed(self, tests):
        """Every test in `tests` passed, nothing failed, and the guest got to the end."""
        for t in tests:
            assert self.passed(t), f"{t} did not pass\n{self.explain()}"
        assert self.summary() == (len(tests), 0), self.explain()


def metrics_lines(path):
    """The JSON objects Ember flushed to a metrics file, one a line."""
    return [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()]


def metric_sum(flushed, group, name):
    """A counter summed over the flushes (each flush holds what happened since the last)."""
    return sum(m[group][name] for m in flushed)


class NetNs:
    """A network namespace of its own (docs/network.md) with TAP devices in it, for Ember to
    run in (`run(..., netns=ns.name)`); IPv6 is off in it, so the host's stack sends the
    guest nothing on its own. Delete it with delete()."""

    CLONE_NEWNET = 0x40000000

    def __init__(self, name):
        self.name = name
        subprocess.run(["ip", "netns", "add", name], check=True)
        try:
            self.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                     "net.ipv6.conf.default.disable_ipv6=1")
            self.ip("link", "set", "lo", "up")
        except BaseException:
            self.delete()
            raise

    def ip(self, *args):
        return subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True,
                              text=True).stdout

    def run(self, *cmd):
        return subprocess.run(["ip", "netns", "exec", self.name, *cmd], check=True,
                              capture_output=True, text=True).stdout

    def add_tap(self, tap, mtu=1500):
        """A TAP device, up, without an address."""
        self.ip("tuntap", "add", "dev", tap, "mode", "tap")
        self.ip("link", "set", tap, "mtu", str(mtu), "up")

    def socket(self, make):
        """make() called inside the namespace: a socket made there stays there."""
        libc = ctypes.CDLL(None, use_errno=True)
        with open(f"/run/netns/{self.name}") as ns, open("/proc/self/ns/net") as home:
            if libc.setns(ns.fileno(), self.CLONE_NEWNET):
                raise OSError(ctypes.get_errno(), "setns")
            try:
                return make()
            finally:
                if libc.setns(home.fileno(), self.CLONE_NEWNET):
                    raise OSError(ctypes.get_errno(), "setns back")

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def make_config(kernel, boot_args, vcpus, mem_mib, drives=None):
    config = {
        "boot-source": {
            "kernel_image_path": str(kernel),
            "boot_args": boot_args,
            "initrd_path": None,
        },
        "machine-config": {"vcpu_count": vcpus, "mem_size_mib": mem_mib},
    }
    if drives is not None:
        config["drives"] = list(drives)
    return config


def run(kernel=None, boot_args="tests=hello", vcpus=1, mem_mib=128, debug_exit=False,
        boot_timer=False, extra_args=(), timeout=TIMEOUT, config=None, check_fast=True,
        drives=None, netns=None):
    """Boots `kernel` (default: guest.elf) under Ember and waits for it to stop.

    `drives` is the config's "drives" list (see `drive()`). `config` replaces the generated
    config entirely. `netns` names a network namespace to run Ember in. With `check_fast`, a
    run that takes longer than SLOW seconds fails the calling test."""
    if config is None:
        config = make_config(kernel or image("guest.elf"), boot_args, vcpus, mem_mib, drives)
    args = [str(EMBER)]
    if debug_exit:
        args.append("--debug-exit")
    if boot_timer:
        args.append("--boot-timer")
    args += list(extra_args)
    with tempfile.TemporaryDirectory(prefix="ember-guest-") as tmp:
        path = Path(tmp) / "vm.json"
        path.write_text(json.dumps(config))
        args[1:1] = ["--config-file", str(path), "--no-api"]
        if netns is not None:
            args[0:0] = ["ip", "netns", "exec", netns]
        start = time.monotonic()
        try:
            p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode("latin-1")
            err = (e.stderr or b"").decode("latin-1", "replace")
            raise AssertionError(f"ember did not stop within {timeout} s\n"
                                 f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}")
        seconds = time.monotonic() - start
    r = Result(p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1", "replace"),
               seconds, config)
    assert r.returncode >= 0, f"ember died of signal {-r.returncode}\n{r.explain()}"
    if check_fast:
        assert seconds < SLOW, f"the run took {seconds:.2f} s\n{r.explain()}"
    return r
