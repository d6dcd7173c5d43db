# SPDX-License-Identifier: Apache-2.0
"""Clone safety with a real Linux guest (docs/clone-safety.md): a VM with an entropy device
(virtio-rng) and vsock finds its VM generation ID page where `ember.vmgenid=` on
/proc/cmdline says, and /dev/hwrng gives bytes. It is snapshotted and restored twice: each
clone has an ID of its own (not the original's, not the other clone's) and counter 1; the
guest agent sees the new generation before it serves the host's first connection and
reseeds the kernel RNG from /dev/hwrng, so the two clones' /dev/urandom, identical in the
snapshot, give different bytes."""
import re
import socket
import time

import pytest

from framework.microvm import BOOT_TIMEOUT, DEFAULT_BOOT_ARGS
from framework.vsock import AGENT_PORT, host_connect, recv_all

pytestmark = pytest.mark.ember_only  # the VMGenID page and the snapshot API are Ember's

VMGENID_ADDR = "0xd0100000"  # LAYOUT_VMGENID_ADDR (src/vmm/layout.h)
GENID_RE = re.compile(r"^(\d+) ([0-9a-f]{32})\n$")
HEX_RE = re.compile(r"^[0-9a-f]{64}$")
RESEEDED = ("ember-agent: VM generation 1 (was 0): a clone; reseeded the kernel RNG: "
            "OK hwrng=64 added=RNDADDENTROPY reseed=RNDRESEEDCRNG")
URANDOM_32 = "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'"
HWRNG_32 = "head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \\n'"


def exchange(uds, line):
    """One command to the guest agent through Ember's vsock bridge: its whole answer, or
    None when the connection was refused or reset."""
    try:
        s, ok = host_connect(uds)
        if not ok.startswith("OK "):
            s.close()
            return None
        s.sendall(line.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        out = recv_all(s).decode()
        s.close()
    except ConnectionError:
        return None
    return out or None


def agent(uds, line, retry_for=30):
    """exchange(), retried: right after a restore the guest resets every vsock connection
    when the restored device tells it to (from Ember's loop, once the load has returned),
    and a connection made before that goes too, as a client would see. Every command used
    here answers something."""
    deadline = time.monotonic() + retry_for
    while (out := exchange(uds, line)) is None:
        assert time.monotonic() < deadline, f"no answer from the agent to {line!r}"
        time.sleep(0.5)
    return out


def genid(uds):
    out = agent(uds, "VMGENID")
    m = GENID_RE.match(out)
    assert m, f"VMGENID answered {out!r}"
    return int(m.group(1)), m.group(2)


def boot(vm, entropy=None):
    """Boots vm with vsock, the guest agent and an entropy device (PUT /entropy body)."""
    uds = vm.workdir / "v.sock"
    vm.basic_config(cmd="echo up; sleep 600", mem_size_mib=128,
                    boot_args=f"{DEFAULT_BOOT_ARGS} ember_agent={AGENT_PORT}")
    vm.spawn()
    vm.wait_for_socket()
    vm.put_config()
    vm.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": str(uds)})
    vm.ok("PUT", "/entropy", entropy or {})
    vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    vm.wait_for(lambda: "EMBER-INIT: agent listening" in vm.console, BOOT_TIMEOUT, "the agent")
    return uds


def restore(vm, state, mem):
    uds = vm.workdir / "v.sock"
    vm.config = {}
    vm.spawn()
    vm.wait_for_socket()
    vm.ok("PUT", "/snapshot/load", {"snapshot_path": str(state),
                                    "mem_backend": {"backend_type": "File",
                                                    "backend_path": str(mem)},
                                    "resume_vm": True,
                                    "vsock_override": {"uds_path": str(uds)}})
    return uds


def test_clones_get_new_ids_and_diverging_rngs(api_microvm_factory, tmp_path):
    src = api_microvm_factory("source")
    uds = boot(src)
    cmdline = agent(uds, "EXEC cat /proc/cmdline")
    assert f"ember.vmgenid={VMGENID_ADDR}" in cmdline, cmdline
    gen0, id0 = genid(uds)
    assert gen0 == 0 and id0 != "0" * 32
    # the kernel took virtio-rng as its hardware RNG, and it gives bytes
    assert agent(uds, "EXEC cat /sys/class/misc/hw_random/rng_current").startswith("virtio_rng")
    rng = agent(uds, f"EXEC {HWRNG_32}")
    assert HEX_RE.match(rng) and rng != "0" * 64, rng
    assert agent(uds, "EXEC ember-agent vmgenid") == f"0 {id0}\n"

    state, mem = tmp_path / "c.state", tmp_path / "c.mem"
    src.ok("PATCH", "/vm", {"state": "Paused"})
    src.ok("PUT", "/snapshot/create", {"snapshot_path": str(state), "mem_file_path": str(mem)})
    src.kill()

    clones = []
    for i in range(2):
        vm = api_microvm_factory(f"clone{i}")
        cuds = restore(vm, state, mem)
        gen, ident = genid(cuds)  # the agent reseeds before it serves this
        assert gen == 1 and ident not in (id0, *[c[1] for c in clones]), vm.describe()
        vm.wait_for(lambda: RESEEDED in vm.console, 30, "the agent's reseed line")
        urandom = agent(cuds, f"EXEC {URANDOM_32}")
        assert HEX_RE.match(urandom), urandom
        clones.append((vm, ident, urandom))
    assert clones[0][1] != clones[1][1]
    assert clones[0][2] != clones[1][2], "the clones' /dev/urandom gave the same bytes"
    # an explicit RESEED, and the entropy device still serves after the restore
    for vm, _, _ in clones:
        cuds = vm.workdir / "v.sock"
        assert agent(cuds, "RESEED") == "OK hwrng=64 added=RNDADDENTROPY reseed=RNDRESEEDCRNG\n"
        assert HEX_RE.match(agent(cuds, f"EXEC {HWRNG_32}"))
