# SPDX-License-Identifier: Apache-2.0
"""virtio-net with a real Linux guest, set up the way docs/network.md says: a network
namespace made by the test, a TAP device in it with the host's address, the VMM run inside
the namespace, and the guest's address from `ip=` on the kernel command line. Checked as a
user would: ping both ways, 64 MiB over TCP each way with its SHA-256 intact (busybox nc in
the guest, Python on the host), a TX rate limit within 15 %, two interfaces at once."""
import json
import re
import subprocess

import pytest

from framework.microvm import BOOT_TIMEOUT, DEFAULT_BOOT_ARGS

MIB = 1 << 20
MAC = "06:00:0a:00:00:02"

# Host side of a TCP transfer, run in the namespace: receive (count bytes, report the
# SHA-256 and the time from first to last byte) or send (count pseudo-random bytes).
RECEIVER = r"""
import hashlib, json, socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port)); s.listen(1); s.settimeout(300)
c, _ = s.accept(); c.settimeout(300)
h, got, first = hashlib.sha256(), 0, None
while got < count:
    b = c.recv(1 << 20)
    if not b:
        break
    first = first or time.monotonic()
    got += len(b); h.update(b)
last = time.monotonic()
print(json.dumps({"bytes": got, "sha256": h.hexdigest(), "seconds": last - (first or last)}))
c.close()
"""
SENDER = r"""
import hashlib, json, random, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = random.Random(count).randbytes(count)
deadline = time.monotonic() + 120
while True:
    try:
        c = socket.create_connection((host, port), timeout=5); break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.2)
c.settimeout(300); c.sendall(data); c.close()
print(json.dumps({"bytes": count, "sha256": hashlib.sha256(data).hexdigest()}))
"""


def boot_with_net(vm, netns, cmd, mem_size_mib=256, tx_rate_limiter=None):
    """Configures a VM in netns with eth0 on tap0: 10.0.0.1 on the host side, 10.0.0.2 in
    the guest (ip=). Returns (host, guest) addresses."""
    host, guest = "10.0.0.1", "10.0.0.2"
    netns.add_tap("tap0", f"{host}/24")
    vm.netns = netns.name
    vm.basic_config(cmd=cmd.replace("HOST", host), mem_size_mib=mem_size_mib,
                    boot_args=f"{DEFAULT_BOOT_ARGS} ip={guest}::{host}:255.255.255.0::eth0:off")
    vm.add_net("eth0", "tap0", MAC, tx_rate_limiter=tx_rate_limiter)
    return host, guest


def wait_console(vm, text, timeout=BOOT_TIMEOUT):
    vm.wait_for(lambda: text in vm.console or vm.exited(), timeout, repr(text))
    assert text in vm.console, vm.describe()


def test_ping_both_ways(microvm, netns):
    """The guest has its ip= address and MAC; it pings the host and the host pings it."""
    _, guest = boot_with_net(microvm, netns, "ip addr show eth0; ping -c 3 -W 5 HOST && "
                                              "echo ping-ok; echo ready; sleep 600")
    microvm.spawn()
    wait_console(microvm, "ready")
    out = "\n".join(microvm.guest_lines)
    assert f"inet {guest}/24" in out and f"link/ether {MAC}" in out, microvm.describe()
    assert "ping-ok" in out, microvm.describe()
    r = netns.run("busybox", "ping", "-c", "3", "-W", "5", guest, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr + microvm.describe()
    assert re.search(r"3 packets transmitted, 3 (packets )?received", r.stdout), r.stdout


def guest_to_host(vm, netns, count, tx_rate_limiter=None):
    """count random bytes from the guest (busybox nc) to a receiver in netns: returns the
    receiver's report and the SHA-256 the guest computed."""
    boot_with_net(vm, netns, (
        f"dd if=/dev/urandom of=/tmp/blob bs=1M count={count // MIB} 2>/dev/null; "
        "sha256sum /tmp/blob; nc HOST 5000 < /tmp/blob; echo sent"),
        mem_size_mib=128 + 2 * count // MIB, tx_rate_limiter=tx_rate_limiter)
    recv = netns.popen("python3", "-c", RECEIVER, "5000", str(count), stdout=subprocess.PIPE,
                       text=True)
    try:
        vm.spawn()
        out, _ = recv.communicate(timeout=600)
    finally:
        recv.kill()
    vm.wait_for_exit()
    sums = [line.split()[0] for line in vm.guest_lines if line.endswith("/tmp/blob")]
    assert sums, vm.describe()
    return json.loads(out), sums[0]


def test_tcp_64mib_guest_to_host(microvm, netns):
    """64 MiB from the guest to the host over TCP arrive whole, with the same SHA-256."""
    got, want = guest_to_host(microvm, netns, 64 * MIB)
    assert got["bytes"] == 64 * MIB and got["sha256"] == want, f"{got} vs {want}"


def test_tcp_64mib_host_to_guest(microvm, netns):
    """64 MiB from the host to the guest over TCP arrive whole, with the same SHA-256."""
    count = 64 * MIB
    _, guest = boot_with_net(microvm, netns, (
        "(sleep 1000 | nc -l -p 5001 > /tmp/in) & echo listening; "
        f"while [ $(stat -c %s /tmp/in 2>/dev/null || echo 0) -lt {count} ]; do sleep 0.5; done; "
        "sha256sum /tmp/in"), mem_size_mib=128 + 2 * count // MIB)
    microvm.spawn()
    wait_console(microvm, "listening")
    r = netns.run("python3", "-c", SENDER, guest, "5001", str(count), capture_output=True,
                  text=True, timeout=600)
    assert r.returncode == 0, r.stderr + microvm.describe()
    microvm.wait_for_exit()
    sent = json.loads(r.stdout)
    sums = [line.split()[0] for line in microvm.guest_lines if line.endswith("/tmp/in")]
    assert sums == [sent["sha256"]], f"{sent} vs {sums}\n" + microvm.describe()


@pytest.mark.ember_only
def test_tx_rate_limiter_holds_the_rate(microvm, netns):
    """A TX bandwidth limit holds the guest's TCP throughput to the configured rate
    within 15 %, measured by the receiver on the host. The bucket starts full, so over a
    transfer the limiter lets through its size plus rate x time: the size is taken off."""
    # well below what the guest sends unlimited on the nested bench (a few MB/s); a bucket
    # of a second's worth, so that TCP's pauses do not waste tokens
    rate = 256 * 1024  # bytes/s
    size = rate
    limiter = {"bandwidth": {"size": size, "refill_time": 1000}}
    got, want = guest_to_host(microvm, netns, 3 * MIB, tx_rate_limiter=limiter)
    assert got["sha256"] == want
    measured = (got["bytes"] - size) / got["seconds"]
    assert abs(measured / rate - 1) <= 0.15, \
        f"{measured:.0f} B/s against {rate} B/s ({got['seconds']:.2f} s)\n" + microvm.describe()


def test_two_interfaces(microvm, netns):
    """Two interfaces on two TAPs: the guest reaches the host through each."""
    _, _ = boot_with_net(microvm, netns, (
        "ip link set eth1 up; ip addr add 10.0.1.2/24 dev eth1; "
        "ping -c 2 -W 5 HOST && echo ping0-ok; ping -c 2 -W 5 10.0.1.1 && echo ping1-ok; "
        "cat /sys/class/net/eth1/address"))
    netns.add_tap("tap1", "10.0.1.1/24")
    microvm.add_net("eth1", "tap1", "06:00:0a:00:01:02")
    microvm.spawn()
    microvm.wait_for_exit()
    assert microvm.returncode == 0 and microvm.guest_exit == 0, microvm.describe()
    lines = microvm.guest_lines
    assert "ping0-ok" in lines and "ping1-ok" in lines, microvm.describe()
    assert lines[-1] == "06:00:0a:00:01:02", microvm.describe()
