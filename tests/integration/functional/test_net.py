# SPDX-License-Identifier: Apache-2.0
"""virtio-net with a real Linux guest, set up the way docs/network.md says: a network
namespace made by the test, a TAP device in it with the host's address, the VMM run inside
the namespace, and the guest's address from `ip=` on the kernel command line. Checked as a
user would: ping both ways, 64 MiB over TCP each way with its SHA-256 intact (busybox nc in
the guest, Python on the host), TX and RX rate limits within 15 %, two interfaces at once,
and anti-spoofing: spoofed frames stopped at the TAP, legitimate ones flowing."""
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


def boot_with_net(vm, netns, cmd, mem_size_mib=256, tx_rate_limiter=None, rx_rate_limiter=None,
                  anti_spoofing=None):
    """Configures a VM in netns with eth0 on tap0: 10.0.0.1 on the host side, 10.0.0.2 in
    the guest (ip=). Returns (host, guest) addresses."""
    host, guest = "10.0.0.1", "10.0.0.2"
    netns.add_tap("tap0", f"{host}/24")
    vm.netns = netns.name
    vm.basic_config(cmd=cmd.replace("HOST", host), mem_size_mib=mem_size_mib,
                    boot_args=f"{DEFAULT_BOOT_ARGS} ip={guest}::{host}:255.255.255.0::eth0:off")
    vm.add_net("eth0", "tap0", MAC, tx_rate_limiter=tx_rate_limiter,
               rx_rate_limiter=rx_rate_limiter, anti_spoofing=anti_spoofing)
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


def host_to_guest(vm, netns, count, rx_rate_limiter=None, poll=0.5):
    """count random bytes from the host (Python, in netns) to busybox nc in the guest,
    which reports the SHA-256 it got, and the times (/proc/uptime) of its first and last
    byte, polled every poll seconds. Returns those times."""
    _, guest = boot_with_net(vm, netns, (
        "(sleep 1000 | nc -l -p 5001 > /tmp/in) & echo listening; t0=; "
        "while :; do n=$(stat -c %s /tmp/in 2>/dev/null || echo 0); "
        "[ -z \"$t0\" ] && [ $n -gt 0 ] && t0=$(cut -d' ' -f1 /proc/uptime); "
        f"[ $n -ge {count} ] && break; sleep {poll}; done; "
        "echo rx-times $t0 $(cut -d' ' -f1 /proc/uptime); sha256sum /tmp/in"),
        mem_size_mib=128 + 2 * count // MIB, rx_rate_limiter=rx_rate_limiter)
    vm.spawn()
    wait_console(vm, "listening")
    r = netns.run("python3", "-c", SENDER, guest, "5001", str(count), capture_output=True,
                  text=True, timeout=600)
    assert r.returncode == 0, r.stderr + vm.describe()
    vm.wait_for_exit()
    sent = json.loads(r.stdout)
    sums = [line.split()[0] for line in vm.guest_lines if line.endswith("/tmp/in")]
    assert sums == [sent["sha256"]], f"{sent} vs {sums}\n" + vm.describe()
    times = [line.split()[1:] for line in vm.guest_lines if line.startswith("rx-times")]
    assert times and len(times[0]) == 2, vm.describe()
    return float(times[0][0]), float(times[0][1])


def test_tcp_64mib_host_to_guest(microvm, netns):
    """64 MiB from the host to the guest over TCP arrive whole, with the same SHA-256."""
    host_to_guest(microvm, netns, 64 * MIB)


@pytest.mark.ember_only
def test_tx_rate_limiter_holds_the_rate(microvm, netns):
    """A TX bandwidth limit holds the guest's TCP throughput to the configured rate
    within 15 %, measured by the receiver on the host. The bucket starts full, so over a
    transfer the limiter lets through its size plus rate x time: the size is taken off."""
    # well below what the guest sends unlimited on the nested bench: bench/linux_net.py
    # measures under 1 MiB/s guest to host there, and a loaded bench gave 180 KiB/s against
    # a 256 KiB/s limit; a bucket of a second's worth, so that TCP's pauses do not waste
    # tokens
    rate = 64 * 1024  # bytes/s
    size = rate
    limiter = {"bandwidth": {"size": size, "refill_time": 1000}}
    got, want = guest_to_host(microvm, netns, 1 * MIB, tx_rate_limiter=limiter)
    assert got["sha256"] == want
    measured = (got["bytes"] - size) / got["seconds"]
    assert abs(measured / rate - 1) <= 0.15, \
        f"{measured:.0f} B/s against {rate} B/s ({got['seconds']:.2f} s)\n" + microvm.describe()


@pytest.mark.ember_only
def test_rx_rate_limiter_holds_the_rate(microvm, netns):
    """An RX bandwidth limit holds what the guest receives over TCP to the configured
    rate within 15 %, timed in the guest from the first byte to the last. As for TX, the
    bucket starts full: its size is taken off."""
    rate = 256 * 1024  # bytes/s
    size = rate
    count = 3 * MIB
    limiter = {"bandwidth": {"size": size, "refill_time": 1000}}
    first, last = host_to_guest(microvm, netns, count, rx_rate_limiter=limiter, poll=0.05)
    seconds = last - first
    measured = (count - size) / seconds
    assert abs(measured / rate - 1) <= 0.15, \
        f"{measured:.0f} B/s against {rate} B/s ({seconds:.2f} s)\n" + microvm.describe()


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


# Host side of the anti-spoofing test, in the namespace: records the ICMP and ICMPv6 echo
# requests that reach the host's IP stack (so passed the TAP's ingress), as source address
# and the payload's pattern byte (ping -p), until stdin closes.
ECHO_WATCHER = r"""
import json, select, socket, sys
v4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
v6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
seen = []
print("watching", flush=True)
while True:
    r, _, _ = select.select([v4, v6, sys.stdin], [], [], 600)
    if sys.stdin in r or not r:
        break
    for s in (v4, v6):
        if s in r:
            b, src = s.recvfrom(65535)
            icmp = b[(b[0] & 15) * 4:] if s is v4 else b
            if icmp[0] in (8, 128) and len(icmp) > 16:  # echo request
                seen.append([src[0], icmp[-1]])
print(json.dumps(seen), flush=True)
"""

MAC_SPOOFED = "06:00:0a:00:00:99"
# The guest's script: each ping carries its own pattern byte; the host sees which arrived.
#   11 legitimate IPv4, 22 from an address the guest added, 33 from a changed MAC,
#   44 legitimate again (MAC restored), 55 legitimate IPv6, 66 from an added IPv6 address.
SPOOF_SCRIPT = (
    # busybox ip has no "nodad": duplicate address detection is turned off instead
    "echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad; "
    "ip -6 addr add fd00::2/64 dev eth0; sleep 1; "
    "ping -c 2 -W 5 -p 11 HOST && echo legit4-ok; "
    "ping6 -c 2 -W 5 -p 55 fd00::1 && echo legit6-ok; "
    "ip addr add 10.0.0.9/24 dev eth0; "
    "ping -c 2 -W 2 -p 22 -I 10.0.0.9 HOST && echo spoof4-answered; "
    "ip -6 addr add fd00::9/64 dev eth0; sleep 1; "
    "ping6 -c 2 -W 2 -p 66 -I fd00::9 fd00::1 && echo spoof6-answered; "
    f"ip link set eth0 address {MAC_SPOOFED}; "
    "ping -c 2 -W 2 -p 33 HOST && echo spoofmac-answered; "
    f"ip link set eth0 address {MAC}; "
    "ping -c 2 -W 5 -p 44 HOST && echo legit4-again-ok; "
    "echo script-done")


def check_spoofing(vm, netns, guest, fenced, start, metrics):
    """The body of the anti-spoofing tests: vm, configured by boot_with_net() with
    SPOOF_SCRIPT (and anti_spoofing if fenced), started by start(), writing its metrics to
    the host file metrics. What the guest sends from an address it gave itself, or after
    changing its MAC, must reach the host only if not fenced, and be counted by reason if
    it is; its configured addresses keep working, before and after. Returns the TAP's tc
    filters while the VM ran."""
    netns.ip("-6", "addr", "add", "fd00::1/64", "dev", "tap0", "nodad")
    watcher = netns.popen("python3", "-c", ECHO_WATCHER, stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
    try:
        assert watcher.stdout.readline().strip() == "watching"
        start()
        wait_console(vm, "legit4-ok")
        filters = tc_filters(netns, "tap0")
        vm.wait_for_exit()
        out, _ = watcher.communicate(input="", timeout=30)
    finally:
        watcher.kill()
    assert vm.returncode == 0, vm.describe()
    seen = {(src, pattern) for src, pattern in json.loads(out)}
    lines = vm.guest_lines
    # the legitimate traffic flows, both families, before and after the spoofing
    for marker in ("legit4-ok", "legit6-ok", "legit4-again-ok", "script-done"):
        assert marker in lines, f"{marker} missing\n" + vm.describe()
    assert {(guest, 0x11), (guest, 0x44), ("fd00::2", 0x55)} <= seen, seen
    spoofed = {("10.0.0.9", 0x22), ("fd00::9", 0x66), (guest, 0x33)}
    net = [m["net"] for m in flushed_metrics(metrics)]
    ip_drops = sum(n["tx_antispoof_ip_drops"] for n in net)
    mac_drops = sum(n["tx_antispoof_mac_drops"] for n in net)
    if fenced:
        assert not spoofed & seen, f"spoofed frames reached the host: {spoofed & seen}"
        assert "spoof4-answered" not in lines and "spoof6-answered" not in lines, \
            vm.describe()
        # two echo requests each from 10.0.0.9 and fd00::9; two from the changed MAC
        assert ip_drops >= 4 and mac_drops >= 2, net
    else:
        assert spoofed <= seen, f"without the filter these should arrive: {spoofed - seen}"
        assert ip_drops == 0 and mac_drops == 0, net
    # Ember takes its filter (if any) off the TAP when it exits
    assert tc_filters(netns, "tap0") == ""
    return filters


@pytest.mark.ember_only
@pytest.mark.parametrize("fenced", [True, False], ids=["anti_spoofing", "open"])
def test_anti_spoofing(microvm, netns, fenced):
    """With anti_spoofing on (Ember has the privilege: its tc filter on the TAP's ingress),
    spoofed frames never reach the host and are counted; without it the same frames do
    reach the host: the filter is what stops them. tests/integration/functional/
    test_jailer.py has the jailed case, where Ember enforces the rules itself."""
    _, guest = boot_with_net(
        microvm, netns, SPOOF_SCRIPT,
        anti_spoofing={"ipv4": ["10.0.0.2"], "ipv6": ["fd00::2"]} if fenced else None)
    metrics = microvm.workdir / "metrics.json"
    metrics.touch()
    microvm.config["metrics"] = {"metrics_path": str(metrics)}
    filters = check_spoofing(microvm, netns, guest, fenced, microvm.spawn, metrics)
    if fenced:
        assert "bpf" in filters and "antispoof" in filters, filters
        assert "anti-spoofing enforced by a tc filter on tap tap0" in microvm.log, \
            microvm.describe()
    else:
        assert filters == "", f"a filter on the TAP without anti_spoofing: {filters}"


def tc_filters(netns, tap):
    r = netns.run("tc", "filter", "show", "dev", tap, "ingress", capture_output=True,
                  text=True)
    return r.stdout.strip()


def flushed_metrics(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
