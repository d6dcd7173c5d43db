# SPDX-License-Identifier: Apache-2.0
"""Snapshots of a real Linux guest (docs/snapshot.md): a process counting in memory and
writing each count to its ext4 root, paused, written out, its Ember killed; a new Ember
loads it and the process goes on from its count, the disk holds every count once, and
vsock works again through the new Ember's socket after the reset. And ten clones of one
snapshot at once, each on its own TAP and vsock socket. Both restore backends (the memory file,
and a page-fault handler through userfaultfd), and Diff snapshots merged into their base."""
import hashlib
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from framework.microvm import BOOT_TIMEOUT, DEFAULT_BOOT_ARGS
from framework.vsock import AGENT_PORT, host_connect, recv_all

pytestmark = pytest.mark.ember_only  # QEMU's snapshots are another API

BUILD = Path(__file__).resolve().parents[3] / "build"

COUNT_RE = re.compile(r"^count (\d+)$")
# counts in a shell variable (memory), appends each count to /root/counts and syncs
COUNTER = ("i=0; while :; do i=$((i+1)); echo $i >> /root/counts; sync; echo count $i; "
           "sleep 0.2; done")


def counts(vm):
    """The counts on vm's console (a restored VM's console has no boot markers)."""
    return [int(m.group(1)) for line in vm.console.splitlines()
            if (m := COUNT_RE.match(line.strip()))]


def wait_counts(vm, n, timeout=BOOT_TIMEOUT):
    vm.wait_for(lambda: len(counts(vm)) >= n or vm.exited(), timeout, f"{n} counts")
    assert len(counts(vm)) >= n, vm.describe()


def boot_counter(vm):
    uds = vm.workdir / "v.sock"
    vm.basic_config(cmd=COUNTER, mem_size_mib=128)
    vm.config["boot-source"]["boot_args"] += f" ember_agent={AGENT_PORT}"
    vm.spawn()
    vm.wait_for_socket()
    vm.put_config()
    vm.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": str(uds)})
    vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    return uds


def echo(uds, data=b"are you there?"):
    s, ok = host_connect(uds)
    assert ok.startswith("OK "), ok
    s.sendall(b"ECHO\n" + data)
    s.shutdown(socket.SHUT_WR)
    got = recv_all(s)
    s.close()
    return got


def take_snapshot(vm, tmp_path, kind="Full", name="fn"):
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    # the last lines the guest printed before the pause may still be on their way
    deadline = time.monotonic() + 10
    seen = vm.console
    while time.monotonic() < deadline:
        time.sleep(1)
        if vm.console == seen:
            break
        seen = vm.console
    whole, _, partial = seen.rpartition("\n")
    last = [int(m.group(1)) for line in whole.splitlines()
            if (m := COUNT_RE.match(line.strip()))][-1]
    if partial.strip():  # paused in the middle of printing the next count
        last += 1
    state, mem = tmp_path / f"{name}.state", tmp_path / f"{name}.mem"
    vm.ok("PUT", "/snapshot/create", {"snapshot_type": kind, "snapshot_path": str(state),
                                      "mem_file_path": str(mem)})
    return state, mem, last


def load(vm, state, mem, backend="File", **extra):
    """mem: the memory file, or with backend "Uffd" the page-fault handler's socket."""
    vm.config = {}  # nothing configured: the snapshot brings its own
    vm.spawn()
    vm.wait_for_socket()
    vm.ok("PUT", "/snapshot/load", {"snapshot_path": str(state),
                                    "mem_backend": {"backend_type": backend,
                                                    "backend_path": str(mem)},
                                    "resume_vm": True, **extra})


def start_handler(mem, sock):
    """build/ember-uffd-handler serving one VM's faults from the memory file."""
    h = subprocess.Popen([str(BUILD / "ember-uffd-handler"), "--socket", str(sock),
                          "--mem-file", str(mem), "--once"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert h.stdout.readline().strip() == "ready", h.stderr.read()
    return h


def agent_exec(uds, cmd):
    """The output of cmd run by the guest agent (its EXEC request)."""
    s, ok = host_connect(uds)
    assert ok.startswith("OK "), ok
    s.sendall(f"EXEC {cmd}\n".encode())
    got = recv_all(s)
    s.close()
    return got.decode(errors="replace")


@pytest.mark.parametrize("backend", ["File", "Uffd"])
def test_restore_goes_on(api_microvm_factory, tmp_path, backend):
    """Pause, snapshot, SIGKILL; a new Ember loads it (its memory from the file, or faulted
    in by ember-uffd-handler): the count goes on from where it was, the disk has every count
    once (written before and after), and the guest agent answers on the new Ember's vsock
    socket (the old connection was reset)."""
    src = api_microvm_factory("source")
    uds = boot_counter(src)
    wait_counts(src, 3)
    assert echo(uds) == b"are you there?"
    held, _ = host_connect(uds)  # open across the snapshot: the guest sees it reset
    state, mem, last = take_snapshot(src, tmp_path)
    src.kill()
    rootfs = src.config["drives"][0]["path_on_host"]

    dst = api_microvm_factory("restored")
    new_uds = dst.workdir / "v2.sock"
    handler = None
    if backend == "Uffd":
        handler = start_handler(mem, tmp_path / "uffd.sock")
        mem = tmp_path / "uffd.sock"
    load(dst, state, mem, backend, vsock_override={"uds_path": str(new_uds)})
    assert dst.state() == "Running"
    wait_counts(dst, 3, timeout=120)
    after = counts(dst)
    assert after[0] == last + 1, f"before ...{last}, after {after[:5]}\n" + dst.describe()
    assert after == list(range(after[0], after[0] + len(after)))
    assert echo(new_uds, b"after the restore") == b"after the restore"
    held.close()
    dst.ok("PATCH", "/vm", {"state": "Paused"})
    final = counts(dst)[-1]
    dst.kill()
    # every count the guest printed was written and synced first, before and after
    text = dst.read_file_from_rootfs("/root/counts", image=rootfs).decode()
    written = [int(x) for x in text.split()]
    assert written[:final] == list(range(1, final + 1)), written[-10:]
    if handler:
        assert handler.wait(30) == 0, handler.stderr.read()


def test_diff_snapshot_merged(api_microvm_factory, tmp_path):
    """With track_dirty_pages: Full snapshot, resume, the guest reads a data disk (the
    device writes those pages, which KVM's dirty log does not see), Diff snapshot. The Diff's
    memory file is a fraction of the Full's; merged into it with ember-snapshot-merge, it
    restores the guest at the Diff's count, and the disk's data, read back from the
    restored guest's page cache, has the right hash. (The Diff is not small here: the 8 MiB
    the device wrote into the page cache are in it, as they must be.)"""
    data = tmp_path / "data.img"
    data.write_bytes(os.urandom(8 << 20))
    want = hashlib.sha256(data.read_bytes()).hexdigest()
    src = api_microvm_factory("source")
    uds = src.workdir / "v.sock"
    src.basic_config(cmd=COUNTER, mem_size_mib=128)
    src.config["boot-source"]["boot_args"] += f" ember_agent={AGENT_PORT}"
    src.config["machine-config"]["track_dirty_pages"] = True
    src.add_drive("data", data, read_only=True)
    src.spawn()
    src.wait_for_socket()
    src.put_config()
    src.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": str(uds)})
    src.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    wait_counts(src, 3)
    _, full_mem, _ = take_snapshot(src, tmp_path, "Full", "full")
    src.ok("PATCH", "/vm", {"state": "Resumed"})
    assert want in agent_exec(uds, "sha256sum /dev/vdb")
    wait_counts(src, len(counts(src)) + 2)
    state, diff_mem, last = take_snapshot(src, tmp_path, "Diff", "diff")
    src.kill()
    full_blocks, diff_blocks = os.stat(full_mem).st_blocks, os.stat(diff_mem).st_blocks
    assert os.path.getsize(diff_mem) == os.path.getsize(full_mem)
    # it holds the 8 MiB the device read into the guest's page cache, and less than all
    assert 8 << 20 <= diff_blocks * 512 < full_blocks * 512, (diff_blocks, full_blocks)
    merged = tmp_path / "merged.mem"
    shutil.copyfile(full_mem, merged)
    r = subprocess.run([str(BUILD / "ember-snapshot-merge"), "--base", str(merged), "--diff",
                        str(diff_mem)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

    dst = api_microvm_factory("restored")
    new_uds = dst.workdir / "v2.sock"
    load(dst, state, merged, vsock_override={"uds_path": str(new_uds)})
    wait_counts(dst, 2, timeout=120)
    assert counts(dst)[0] == last + 1, dst.describe()
    # from the page cache the device filled after the Full snapshot: no disk read now
    out = agent_exec(new_uds, "grep -E '^(Cached|Buffers)' /proc/meminfo; sha256sum /dev/vdb")
    assert want in out, out


def test_ten_clones(api_microvm_factory, tmp_path, netns):
    """One snapshot loaded by ten Embers at once, each with its own TAP (network_overrides)
    and vsock socket (vsock_override): every clone's agent answers on its socket and every
    clone answers a ping through its own TAP."""
    src = api_microvm_factory("source")
    netns.add_tap("tap0", "10.0.0.1/24")
    src.netns = netns.name
    src.basic_config(cmd="echo up; sleep 600", mem_size_mib=128,
                     boot_args=f"{DEFAULT_BOOT_ARGS} ember_agent={AGENT_PORT} "
                               "ip=10.0.0.2::10.0.0.1:255.255.255.0::eth0:off")
    src.spawn()
    src.wait_for_socket()
    src.put_config()
    src.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                               "guest_mac": "06:00:0a:00:00:02"})
    src.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": str(src.workdir / "v.sock")})
    src.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    src.wait_for(lambda: "EMBER-INIT: agent listening" in src.console, BOOT_TIMEOUT, "agent")
    state, mem = tmp_path / "c.state", tmp_path / "c.mem"
    src.ok("PATCH", "/vm", {"state": "Paused"})
    src.ok("PUT", "/snapshot/create", {"snapshot_path": str(state), "mem_file_path": str(mem)})
    src.kill()

    # the clones' TAPs get tap0's MAC: the guests' neighbour caches hold it
    mac = netns.ip("-br", "link", "show", "tap0").split()[2]
    clones = []
    for i in range(10):
        tap = f"tapc{i}"
        netns.ip("tuntap", "add", "dev", tap, "mode", "tap")
        netns.ip("link", "set", tap, "address", mac)
        netns.ip("link", "set", tap, "up")
        vm = api_microvm_factory(f"clone{i}")
        vm.netns = netns.name
        load(vm, state, mem, network_overrides=[{"iface_id": "eth0", "host_dev_name": tap}],
             vsock_override={"uds_path": str(vm.workdir / "v.sock")})
        clones.append((vm, tap))
    for i, (vm, tap) in enumerate(clones):
        assert vm.state() == "Running", vm.describe()
        assert echo(vm.workdir / "v.sock", f"clone {i}".encode()) == f"clone {i}".encode()
    # each clone has the guest's address 10.0.0.2: reach each through its own TAP alone
    for i, (vm, tap) in enumerate(clones):
        netns.ip("addr", "flush", "dev", "tap0")
        for _, other in clones:
            netns.ip("addr", "flush", "dev", other)
        netns.ip("addr", "add", "10.0.0.1/24", "dev", tap)
        netns.ip("neigh", "flush", "all")
        r = netns.run("busybox", "ping", "-c", "2", "-W", "10", "10.0.0.2",
                      capture_output=True, text=True)
        assert r.returncode == 0, f"clone {i} on {tap}: {r.stdout}{r.stderr}\n" + vm.describe()
