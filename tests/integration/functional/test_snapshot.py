# SPDX-License-Identifier: Apache-2.0
"""Snapshots of a real Linux guest (docs/snapshot.md): a process counting in memory and
writing each count to its ext4 root, paused, written out, its Ember killed; a new Ember
loads it and the process goes on from its count, the disk holds every count once, and
vsock works again through the new Ember's socket after the reset. And ten clones of one
snapshot at once, each on its own TAP and vsock socket."""
import re
import socket
import time

import pytest

from framework.microvm import BOOT_TIMEOUT, DEFAULT_BOOT_ARGS
from framework.vsock import AGENT_PORT, host_connect, recv_all

pytestmark = pytest.mark.ember_only  # QEMU's snapshots are another API

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


def take_snapshot(vm, tmp_path):
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    # the last lines the guest printed before the pause may still be on their way
    deadline = time.monotonic() + 10
    seen = vm.console
    while time.monotonic() < deadline:
        time.sleep(1)
        if vm.console == seen:
            break
        seen = vm.console
    last = counts(vm)[-1]
    state, mem = tmp_path / "fn.state", tmp_path / "fn.mem"
    vm.ok("PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": str(state),
                                      "mem_file_path": str(mem)})
    return state, mem, last


def load(vm, state, mem, **extra):
    vm.config = {}  # nothing configured: the snapshot brings its own
    vm.spawn()
    vm.wait_for_socket()
    vm.ok("PUT", "/snapshot/load", {"snapshot_path": str(state),
                                    "mem_backend": {"backend_type": "File",
                                                    "backend_path": str(mem)},
                                    "resume_vm": True, **extra})


def test_restore_goes_on(api_microvm_factory, tmp_path):
    """Pause, snapshot, SIGKILL; a new Ember loads it: the count goes on from where it was,
    the disk has every count once (written before and after), and the guest agent answers
    on the new Ember's vsock socket (the old connection was reset)."""
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
    load(dst, state, mem, vsock_override={"uds_path": str(new_uds)})
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
