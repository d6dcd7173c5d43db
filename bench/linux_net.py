#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""virtio-net seen from a Linux guest: Ember against QEMU's microvm with a
virtio-net-device on a TAP (userspace virtio-net, vhost=off), the same kernel, initramfs
and network set-up, on the same host.

Each run makes a network namespace with tap0 (10.0.0.1/24, the set-up of docs/network.md,
through tests/integration's NetNs), runs the VMM in it, and boots the default guest (1 vCPU,
256 MiB, the busybox initramfs, no drives) with eth0 on tap0 and 10.0.0.2 from `ip=`. The
guest first writes G2H_MIB (16) of zeros to /tmp (tmpfs), then, step by step, driven from the
host through the console and a TCP "gate":
  - ping:  the host pings the guest PINGS times, 0.2 s apart (busybox ping); the median
           round trip, the first reply (ARP) left out;
  - g->h:  the guest sends the file with busybox nc to a Python receiver in the namespace,
           which times from the first byte to the last;
  - h->g:  a Python sender in the namespace sends H2G_MIB (64) of zeros to busybox nc -l in the
           guest (output to /dev/null), timed from connect to the guest's close (nc exits on
           EOF), so the last byte has been taken by the guest.
Only the transfers are timed, on the host's clock, not the boot. Besides the times it keeps
what explains them: the TAP's frame counts per direction (the average frame size says
whether TSO/GSO frames went through whole), TCP retransmissions in guest and namespace, the
guest's virtio-net interrupts, the features the guest driver took
(/sys/class/net/eth0/device/features), the VMM process's CPU time per direction (main
thread, where both VMMs run the device, and vCPU threads), and Ember's net/virtio metrics.

Runs alternate between the VMMs, the order swapped every round, so that noise hits both
alike. On a host without vmx/svm the benchmark runs inside the real-KVM bench
(tests/bench-vm/run-in-l1), where the guest's CPU is emulated by TCG and one L1 vCPU runs
the guest, the VMM and the host's end of the transfer: the absolute MiB/s say little, the
ratio says how much each VMM's device model costs. Results: bench/results/linux_net.json
and .md, and a line in bench/results/history.jsonl.

    bench/linux_net.py [--runs 5] [--g2h-mib 16] [--h2g-mib 64] [--ember-bin PATH]
    bench/linux_net.py --rewrite [--pool OLD.json ...] [--notes FILE]   # pool invocations

(Run it with the Python that has pytest, /usr/bin/python3 as `make` does: NetNs comes from
tests/integration/conftest.py.)
"""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from framework.microvm import DEFAULT_BOOT_ARGS, Microvm, VmmTimeout  # noqa: E402
from linux_boot import BINARIES, Images, environment, on_real_kvm, summary  # noqa: E402

try:
    from conftest import NetNs  # noqa: E402
except ImportError as e:  # conftest needs pytest
    sys.exit(f"linux_net: cannot import tests/integration/conftest.py ({e}): run it with "
             "/usr/bin/python3, which has pytest")

RESULTS = os.path.join(ROOT, "bench", "results")
VCPUS, MEM_MIB, PINGS = 1, 256, 20
HOST, GUEST, MAC = "10.0.0.1", "10.0.0.2", "06:00:0a:00:00:02"
PORT_G2H, PORT_H2G, PORT_GATE = 5000, 5001, 5002
MIB = 1 << 20

# Host side, run in the namespace. RECEIVER: listen, then count bytes until count (or EOF);
# the time is from the first byte to the last.
RECEIVER = r"""
import json, socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port)); s.listen(1); s.settimeout(600)
print("listening", flush=True)
c, _ = s.accept(); c.settimeout(600)
got, first = 0, None
buf = bytearray(1 << 20)
while got < count:
    n = c.recv_into(buf)
    if not n:
        break
    first = first or time.monotonic()
    got += n
last = time.monotonic()
c.close()
print(json.dumps({"bytes": got, "seconds": last - (first or last)}), flush=True)
"""
# SENDER: connect (retrying while the guest's nc is not listening yet), send count zero
# bytes, half-close, and wait for the guest to close: from connect to that close.
SENDER = r"""
import json, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
deadline, tries = time.monotonic() + 120, 0
while True:
    tries += 1
    try:
        c = socket.create_connection((host, port), timeout=5); break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
c.settimeout(600)
t0 = time.monotonic()
chunk, left = memoryview(bytes(1 << 20)), count
while left:
    left -= c.send(chunk[:min(left, len(chunk))])
c.shutdown(socket.SHUT_WR)
while c.recv(65536):
    pass
t1 = time.monotonic()
print(json.dumps({"bytes": count, "seconds": t1 - t0, "connect_tries": tries}), flush=True)
"""

# virtio feature bits worth naming (virtio 1.2, 5.1.3 and 6)
FEATURE_NAMES = {0: "CSUM", 1: "GUEST_CSUM", 2: "CTRL_GUEST_OFFLOADS", 3: "MTU", 5: "MAC", 6: "GSO",
                 7: "GUEST_TSO4", 8: "GUEST_TSO6", 9: "GUEST_ECN", 10: "GUEST_UFO",
                 11: "HOST_TSO4", 12: "HOST_TSO6", 13: "HOST_ECN", 14: "HOST_UFO",
                 15: "MRG_RXBUF", 16: "STATUS", 17: "CTRL_VQ", 18: "CTRL_RX",
                 19: "CTRL_VLAN", 21: "GUEST_ANNOUNCE", 22: "MQ", 23: "CTRL_MAC_ADDR",
                 24: "NOTIFY_ON_EMPTY", 27: "ANY_LAYOUT", 28: "INDIRECT_DESC",
                 29: "EVENT_IDX", 32: "VERSION_1", 33: "ACCESS_PLATFORM", 34: "RING_PACKED",
                 35: "IN_ORDER", 36: "ORDER_PLATFORM", 37: "SR_IOV", 38: "NOTIFICATION_DATA"}


def feature_names(bits):
    """/sys/bus/virtio/devices/*/features (a '0'/'1' per bit, bit 0 first) as names."""
    return [FEATURE_NAMES.get(i, str(i)) for i, c in enumerate(bits) if c == "1"]


def guest_script(mib):
    # net-irq N: the virtio-net device's line of /proc/interrupts at step N
    irq = 'echo "net-irq {} $(grep " $d\\$" /proc/interrupts)"'
    return "; ".join([
        f"dd if=/dev/zero of=/tmp/blob bs=1M count={mib} 2>/dev/null",
        "d=$(basename $(readlink /sys/class/net/eth0/device))",
        'echo "net-info $d $(cat /sys/class/net/eth0/device/features)"',
        irq.format(0),
        "echo net-ready",
        # the host pings, then opens and closes the gate
        f"nc -l -p {PORT_GATE} </dev/null >/dev/null",
        irq.format(1),
        f"nc {HOST} {PORT_G2H} </tmp/blob >/dev/null",
        irq.format(2),
        "rm -f /tmp/blob",
        f"nc -l -p {PORT_H2G} </dev/null >/dev/null",
        irq.format(3),
        "grep -e ^Tcp: -e ^TcpExt: /proc/net/snmp /proc/net/netstat -h | "
        "while read l; do echo \"net-snmp $l\"; done",
        'echo "net-rx-dropped $(cat /sys/class/net/eth0/statistics/rx_dropped)"',
        "echo net-done",
    ])


def thread_cpu(pid):
    """{tid: (comm, cpu seconds)} of every thread of pid."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        out[int(tid)] = (comm, (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_split(vmm, pid, before, after):
    """CPU seconds between two thread_cpu() snapshots: the main thread (both VMMs run the
    virtio-net device there: Ember's event loop, QEMU's main loop without an iothread), the
    vCPU threads, and the rest."""
    split = {"main": 0.0, "vcpu": 0.0, "other": 0.0}
    for tid, (comm, t) in after.items():
        d = t - before.get(tid, (comm, 0.0))[1]
        if tid == pid:
            split["main"] += d
        elif (vmm == "qemu" and re.match(r"CPU \d+/KVM", comm)) or vmm == "ember":
            split["vcpu"] += d  # Ember's other threads are its vCPUs (no API thread here)
        else:
            split["other"] += d
    return split


def tap_stats(ns):
    """tap0's counters in the namespace: rx is what the VMM wrote (from the guest), tx what
    it read (to the guest)."""
    s = json.loads(ns.ip("-s", "-j", "link", "show", "tap0"))[0]["stats64"]
    return {"from_guest_frames": s["rx"]["packets"], "from_guest_bytes": s["rx"]["bytes"],
            "to_guest_frames": s["tx"]["packets"], "to_guest_bytes": s["tx"]["bytes"],
            "dropped": s["rx"]["dropped"] + s["tx"]["dropped"]}


def tcp_snmp(lines):
    """The Tcp: and TcpExt: counters of /proc/net/snmp and /proc/net/netstat (each a line
    of names, then a line of values)."""
    out = {}
    for prefix in ("Tcp:", "TcpExt:"):
        rows = [line.split()[1:] for line in lines if line.startswith(prefix)]
        if len(rows) >= 2:
            out.update({k: int(v) for k, v in zip(rows[0], rows[1]) if v.lstrip("-").isdigit()})
    return out


def irq_count(line):
    """The sum of the per-CPU counts in a /proc/interrupts line (' 5:  123  IO-APIC ...')."""
    n = 0
    for tok in line.split()[1:]:
        if not tok.isdigit():
            break
        n += int(tok)
    return n


def ember_metrics(path):
    """Ember's net and virtio counters, summed over the flushes (the file gets deltas)."""
    out = {}
    try:
        with open(path) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return out
    for m in lines:
        for group in ("net", "virtio"):
            for k, v in (m.get(group) or {}).items():
                if isinstance(v, (int, float)):
                    out[f"{group}.{k}"] = out.get(f"{group}.{k}", 0) + v
    return out


def wait_console(vm, text, timeout):
    vm.wait_for(lambda: text in vm.console or vm.exited(), timeout, repr(text))
    if text not in vm.console:
        raise VmmTimeout(f"the VMM exited before {text!r}: " +
                         " | ".join(vm.console.splitlines()[-4:]))


def host_py(ns, script, *args, timeout):
    r = ns.run("python3", "-c", script, *map(str, args), capture_output=True, text=True,
               timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"host side failed: {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def one_run(vmm, binary, images, workdir, mib, timeout, tag):
    """mib: (guest to host, host to guest) MiB."""
    vm = Microvm(vmm, binary, workdir, images, vmm)
    ns = NetNs(f"ember-net-{os.getpid()}-{tag}")
    recv = None
    try:
        ns.add_tap("tap0", f"{HOST}/24")
        vm.netns = ns.name
        vm.basic_config(vcpu_count=VCPUS, mem_size_mib=MEM_MIB, initrd=True, rootfs=False,
                        cmd=guest_script(mib[0]),
                        boot_args=f"{DEFAULT_BOOT_ARGS} ip={GUEST}::{HOST}:255.255.255.0::eth0:off")
        vm.add_net("eth0", "tap0", MAC)
        if not vm.is_ember:
            vm.extra_cli += ["-name", "debug-threads=on"]  # "CPU 0/KVM" and others named
        metrics = os.path.join(workdir, "metrics.json")
        if vm.is_ember:
            vm.config["metrics"] = {"metrics_path": metrics}
        vm.spawn()
        wait_console(vm, "net-ready", timeout)
        pid = vm.proc.pid  # `ip netns exec` execs the VMM: the same process

        # ping, host to guest
        r = ns.run("busybox", "ping", "-c", str(PINGS), "-i", "0.2", "-W", "5", GUEST,
                   capture_output=True, text=True, timeout=60)
        rtts = [float(x) * 1000 for x in re.findall(r"time=([\d.]+) ms", r.stdout)]
        if len(rtts) < PINGS // 2:
            raise RuntimeError(f"ping: {len(rtts)} of {PINGS} replies: {r.stdout[-200:]}")

        # guest to host: the receiver listens, then the gate lets the guest go
        recv = ns.popen("python3", "-c", RECEIVER, str(PORT_G2H), str(mib[0] * MIB),
                        stdout=subprocess.PIPE, text=True)
        if recv.stdout.readline().strip() != "listening":
            raise RuntimeError("the receiver did not start")
        tap0, cpu0 = tap_stats(ns), thread_cpu(pid)
        host_py(ns, SENDER, GUEST, PORT_GATE, 0, timeout=timeout)
        out, _ = recv.communicate(timeout=timeout)
        g2h = json.loads(out.strip().splitlines()[-1])
        tap1, cpu1 = tap_stats(ns), thread_cpu(pid)

        # host to guest
        h2g = host_py(ns, SENDER, GUEST, PORT_H2G, mib[1] * MIB, timeout=timeout)
        tap2, cpu2 = tap_stats(ns), thread_cpu(pid)
        host_snmp = tcp_snmp(ns.run("cat", "/proc/net/snmp", "/proc/net/netstat",
                                    capture_output=True, text=True).stdout.splitlines())
        wait_console(vm, "net-done", timeout)
        vm.wait_for_exit(timeout)
    except (VmmTimeout, RuntimeError, subprocess.SubprocessError, OSError, ValueError,
            KeyError, IndexError) as e:
        first = str(e).splitlines()[0] if str(e) else ""
        return {"ok": False, "why": f"{type(e).__name__}: {first}"}
    finally:
        if recv is not None and recv.poll() is None:
            recv.kill()
        vm.kill()
        ns.delete()
    if (g2h["bytes"] != mib[0] * MIB or h2g["bytes"] != mib[1] * MIB
            or min(g2h["seconds"], h2g["seconds"]) <= 0):
        return {"ok": False, "why": f"short transfer: {g2h} {h2g}"}
    if vm.guest_exit != 0:
        return {"ok": False, "why": f"guest exit {vm.guest_exit}"}

    lines = vm.guest_lines
    info = next((ln.split() for ln in lines if ln.startswith("net-info ")), [])
    feats = info[2] if len(info) > 2 else ""
    irqs = {}
    for ln in lines:
        m = re.match(r"net-irq (\d) (.*)$", ln)
        if m:
            irqs[int(m.group(1))] = irq_count(m.group(2))
    guest_snmp = tcp_snmp([ln[len("net-snmp "):] for ln in lines if ln.startswith("net-snmp ")])

    def frames(a, b, key):
        return b[key] - a[key]

    r = {"ok": True,
         "g2h_mib_s": mib[0] / g2h["seconds"], "h2g_mib_s": mib[1] / h2g["seconds"],
         "g2h_s": g2h["seconds"], "h2g_s": h2g["seconds"],
         "rtt_us": statistics.median(rtts[1:] or rtts), "rtt_min_us": min(rtts),
         "pings": len(rtts),
         "features": feats,
         "features_on": feature_names(feats),
         # the TAP's frames per direction during each transfer (data and ACKs)
         "g2h_data_frames": frames(tap0, tap1, "from_guest_frames"),
         "g2h_ack_frames": frames(tap0, tap1, "to_guest_frames"),
         "h2g_data_frames": frames(tap1, tap2, "to_guest_frames"),
         "h2g_ack_frames": frames(tap1, tap2, "from_guest_frames"),
         "g2h_avg_frame_bytes": frames(tap0, tap1, "from_guest_bytes")
         / max(1, frames(tap0, tap1, "from_guest_frames")),
         "h2g_avg_frame_bytes": frames(tap1, tap2, "to_guest_bytes")
         / max(1, frames(tap1, tap2, "to_guest_frames")),
         "tap_dropped": tap2["dropped"],
         "irqs_g2h": irqs.get(2, 0) - irqs.get(1, 0) if 1 in irqs and 2 in irqs else None,
         "irqs_h2g": irqs.get(3, 0) - irqs.get(2, 0) if 2 in irqs and 3 in irqs else None,
         "guest_tcp_retrans": guest_snmp.get("RetransSegs"),
         "host_tcp_retrans": host_snmp.get("RetransSegs"),
         # why the host (the h->g sender) retransmitted: timeouts, tail-loss probes, and
         # which of them were spurious (nothing had been lost: a stall, not a drop)
         "host_tcp": {k: host_snmp.get(k) for k in (
             "TCPTimeouts", "TCPLossProbes", "TCPSpuriousRTOs", "TCPLostRetransmit",
             "TCPFastRetrans", "TCPDSACKRecv", "TCPLossProbeRecovery")},
         "guest_tcp": {k: guest_snmp.get(k) for k in (
             "TCPTimeouts", "TCPLossProbes", "TCPSpuriousRTOs", "TCPFastRetrans",
             "TCPDSACKOldSent", "TCPOFOQueue", "TCPRcvQDrop", "TCPBacklogDrop")},
         "guest_rx_dropped": next((int(ln.split()[1]) for ln in lines
                                   if ln.startswith("net-rx-dropped ")), None),
         "h2g_connect_tries": h2g.get("connect_tries")}
    for name, a, b, size in (("g2h", cpu0, cpu1, mib[0]), ("h2g", cpu1, cpu2, mib[1])):
        # per frame through the TAP, either way (data and ACKs): what the device costs
        nframes = max(1, r[f"{name}_data_frames"] + r[f"{name}_ack_frames"])
        for k, v in cpu_split(vmm, pid, a, b).items():
            r[f"{name}_cpu_{k}_ms_per_mib"] = v * 1000 / size
            r[f"{name}_cpu_{k}_us_per_frame"] = v * 1e6 / nframes
    r.update({f"host_{k}": v for k, v in r["host_tcp"].items()})
    if vm.is_ember:
        r["ember_metrics"] = ember_metrics(metrics)
    return r


METRICS = [("g2h_mib_s", "TCP guest -> host (MiB/s)", "higher"),
           ("h2g_mib_s", "TCP host -> guest (MiB/s)", "higher"),
           ("rtt_us", "ping host -> guest, median round trip (us)", "lower")]
DETAILS = [("g2h_cpu_main_us_per_frame", "g->h: VMM main-thread CPU per frame, data or ACK (us)"),
           ("h2g_cpu_main_us_per_frame", "h->g: VMM main-thread CPU per frame, data or ACK (us)"),
           ("g2h_cpu_vcpu_us_per_frame", "g->h: vCPU-thread CPU per frame (us)"),
           ("h2g_cpu_vcpu_us_per_frame", "h->g: vCPU-thread CPU per frame (us)"),
           ("g2h_avg_frame_bytes", "g->h: average frame on the TAP (bytes)"),
           ("h2g_avg_frame_bytes", "h->g: average frame on the TAP (bytes)"),
           ("g2h_data_frames", "g->h: frames from the guest"),
           ("g2h_ack_frames", "g->h: ACK frames to the guest"),
           ("h2g_data_frames", "h->g: frames to the guest"),
           ("h2g_ack_frames", "h->g: ACK frames from the guest"),
           ("irqs_g2h", "g->h: guest interrupts (virtio-net)"),
           ("irqs_h2g", "h->g: guest interrupts (virtio-net)"),
           ("g2h_cpu_main_ms_per_mib", "g->h: VMM main-thread CPU (ms/MiB)"),
           ("g2h_cpu_vcpu_ms_per_mib", "g->h: vCPU-thread CPU (ms/MiB)"),
           ("h2g_cpu_main_ms_per_mib", "h->g: VMM main-thread CPU (ms/MiB)"),
           ("h2g_cpu_vcpu_ms_per_mib", "h->g: vCPU-thread CPU (ms/MiB)"),
           ("g2h_cpu_other_ms_per_mib", "g->h: other VMM threads' CPU (ms/MiB)"),
           ("h2g_cpu_other_ms_per_mib", "h->g: other VMM threads' CPU (ms/MiB)"),
           ("guest_tcp_retrans", "TCP retransmissions, guest"),
           ("host_tcp_retrans", "TCP retransmissions, namespace"),
           ("host_TCPTimeouts", "namespace: TCP retransmission timeouts"),
           ("host_TCPLossProbes", "namespace: TCP tail-loss probes"),
           ("host_TCPSpuriousRTOs", "namespace: spurious timeouts (nothing was lost)"),
           ("guest_rx_dropped", "guest eth0 rx_dropped")]


def stats(values):
    """summary() (median, p10, p90, min, max, n) to 0.001: g->h is under 1 MiB/s here."""
    s = summary([v * 100 for v in values])
    return s and {k: (round(v / 100, 3) if k != "n" else v) for k, v in s.items()}


def aggregate(runs):
    out = {}
    for vmm, rs in runs.items():
        ok = [r for r in rs if r["ok"]]
        o = {key: stats([r[key] for r in ok if r.get(key) is not None])
             for key, *_ in METRICS + DETAILS}
        o["failed"] = len(rs) - len(ok)
        o["failures"] = [r["why"] for r in rs if not r["ok"]][:3]
        o["features_on"] = feature_names(ok[0]["features"]) if ok else []
        if vmm == "ember":
            keys = sorted({k for r in ok for k in r.get("ember_metrics", {})})
            o["ember_metrics_median"] = {
                k: statistics.median([r["ember_metrics"].get(k, 0) for r in ok]) for k in keys}
        out[vmm] = o
    out["ratio"] = {}
    for key, *_ in METRICS:  # from the medians before rounding
        e, q = ([r[key] for r in runs[vmm] if r["ok"]] for vmm in ("ember", "qemu"))
        out["ratio"][key] = (round(statistics.median(e) / statistics.median(q), 2)
                             if e and q else None)
    return out


def fmt(d):
    return "-" if not d else f"{d['median']:.3g}" if d["median"] < 10 else f"{d['median']:.0f}"


def write_results(res, history=True):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "linux_net.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    if history:
        with open(os.path.join(RESULTS, "history.jsonl"), "a") as f:
            f.write(json.dumps({k: v for k, v in res.items() if k != "runs_detail"}) + "\n")
    a = res["results"]
    lines = ["# virtio-net in a Linux guest: Ember vs QEMU microvm", "",
             f"{res['date']}, Ember {res['ember_commit']}. Default guest, {VCPUS} vCPU, "
             f"{MEM_MIB} MiB, busybox initramfs, eth0 on a TAP in a network namespace "
             "(docs/network.md); QEMU: `-netdev tap,vhost=off -device virtio-net-device` "
             f"(userspace virtio-net). TCP with busybox nc in the guest and Python in the "
             f"namespace, {res['g2h_mib']} MiB guest to host (a tmpfs file of zeros) and "
             f"{res['h2g_mib']} MiB host to guest (to /dev/null), timed on the host "
             f"(transfer only, not the boot); {PINGS} pings from the namespace. "
             f"{res['runs']} runs per VMM, alternating, the order swapped each round"
             + (f", pooled from {len(res['invocations'])} invocations (one L1 each; the "
                "ratio of each is below)" if res.get("invocations") else "") + ". "
             + ("Measured inside the real-KVM bench (nested, TCG L1 with one vCPU that runs "
                "the guest, the VMM and the host's end): compare the VMMs, not the absolute "
                "figures." if res["environment"]["in_real_kvm_bench"] else ""), "",
             "| workload | Ember median | QEMU median | Ember / QEMU | better | failed runs |",
             "|---|---|---|---|---|---|"]
    for key, label, better in METRICS:
        ratio = a["ratio"].get(key)
        lines.append(f"| {label} | {fmt(a['ember'][key])} | {fmt(a['qemu'][key])} | "
                     f"{ratio if ratio else '-'} | {better} | "
                     f"{a['ember']['failed']} / {a['qemu']['failed']} |")
    if res.get("invocations"):
        lines += ["", "| invocation (UTC) | runs per VMM | g->h ratio | h->g ratio | "
                      "ping ratio |", "|---|---|---|---|---|"]
        for inv in sorted(res["invocations"], key=lambda x: x["date"]):
            r = inv["ratio"]
            lines.append(f"| {inv['date']} | {inv['runs']} | {r.get('g2h_mib_s')} | "
                         f"{r.get('h2g_mib_s')} | {r.get('rtt_us')} |")
    lines += ["", "Where the time goes (medians per run):", "",
              "| | Ember | QEMU |", "|---|---|---|"]
    for key, label in DETAILS:
        lines.append(f"| {label} | {fmt(a['ember'].get(key))} | {fmt(a['qemu'].get(key))} |")
    lines += ["", "Features the guest driver took: Ember `" + " ".join(a["ember"]["features_on"])
              + "`; QEMU `" + " ".join(a["qemu"]["features_on"]) + "`."]
    em = a["ember"].get("ember_metrics_median") or {}
    if em:
        keep = [k for k in ("net.rx_packets_count", "net.tx_packets_count", "net.rx_count",
                            "net.rx_tap_event_count", "net.rx_queue_event_count",
                            "net.tx_queue_event_count", "net.no_rx_avail_buffer",
                            "net.no_tx_avail_buffer", "net.rx_bounced_frames",
                            "net.tx_remaining_reqs_count", "net.rx_fails", "net.tx_fails",
                            "virtio.queue_notifies", "virtio.interrupts") if k in em]
        lines += ["", "Ember's metrics over a whole run (medians): "
                  + ", ".join(f"{k} {em[k]:g}" for k in keep) + "."]
    for vmm in ("ember", "qemu"):
        if a[vmm]["failures"]:
            lines += ["", f"{vmm} failures (first): {a[vmm]['failures'][0]}"]
    if res.get("notes"):
        lines += ["", "## Notes", "", res["notes"].strip()]
    with open(os.path.join(RESULTS, "linux_net.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description="virtio-net in a Linux guest, Ember vs QEMU")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "5")))
    ap.add_argument("--g2h-mib", type=int, default=16,
                    help="MiB from the guest to the host (default 16: the slow direction)")
    ap.add_argument("--h2g-mib", type=int, default=64, help="MiB from the host to the guest")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--ember-bin", default=os.environ.get("EMBER_BIN", BINARIES["ember"]))
    ap.add_argument("--ember-commit", default=None,
                    help="the commit --ember-bin was built from (default: HEAD)")
    ap.add_argument("--notes", default=None, help="a file whose text goes under Notes")
    ap.add_argument("--no-history", action="store_true",
                    help="do not append to bench/results/history.jsonl (trial runs)")
    ap.add_argument("--rewrite", action="store_true",
                    help="only rewrite linux_net.md from linux_net.json (e.g. with --notes)")
    ap.add_argument("--pool", nargs="*", default=[], metavar="JSON",
                    help="with --rewrite: add the runs of these earlier linux_net.json files "
                         "(other invocations) to the medians")
    args = ap.parse_args()
    if args.rewrite:
        with open(os.path.join(RESULTS, "linux_net.json")) as f:
            res = json.load(f)
        for path in args.pool:
            with open(path) as f:
                other = json.load(f)
            res.setdefault("invocations", [{"date": res["date"], "runs": res["runs"],
                                            "ratio": res["results"]["ratio"]}])
            res["invocations"].append({"date": other["date"], "runs": other["runs"],
                                       "ratio": other["results"]["ratio"]})
            for vmm, rs in other["runs_detail"].items():
                res["runs_detail"][vmm] += rs
        res["runs"] = len(res["runs_detail"]["ember"])
        res["results"] = aggregate(res["runs_detail"])
        if args.notes:
            with open(args.notes) as f:
                res["notes"] = f.read()
        write_results(res, history=False)
        return

    on_real_kvm("linux_net", __file__)
    args.ember_bin = os.path.abspath(args.ember_bin)  # the VMM runs in its work directory
    if not os.access(args.ember_bin, os.X_OK):
        sys.exit(f"linux_net: {args.ember_bin} is missing: run make")
    if os.geteuid() != 0:
        sys.exit("linux_net: needs root (network namespaces and TAP devices)")
    images = Images(build=False)
    commit = args.ember_commit or subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
        text=True).stdout.strip()
    binaries = {"ember": args.ember_bin, "qemu": BINARIES["qemu"]}
    runs = {"ember": [], "qemu": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            order = ["ember", "qemu"] if i % 2 == 0 else ["qemu", "ember"]
            for vmm in order:
                r = one_run(vmm, binaries[vmm], images, os.path.join(tmp, f"{vmm}-{i}"),
                            (args.g2h_mib, args.h2g_mib), args.timeout, f"{i}{vmm[0]}")
                runs[vmm].append(r)
                state = (f"g->h {r['g2h_mib_s']:.2f} MiB/s, h->g {r['h2g_mib_s']:.2f} MiB/s, "
                         f"rtt {r['rtt_us']:.0f} us" if r["ok"] else f"FAILED: {r['why']}")
                print(f"linux_net: run {i + 1}/{args.runs} {vmm}: {state}", file=sys.stderr)
    notes = None
    if args.notes:
        with open(args.notes) as f:
            notes = f.read()
    res = {"benchmark": "linux_net",
           "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "ember_commit": commit, "ember_bin": args.ember_bin, "runs": args.runs,
           "g2h_mib": args.g2h_mib, "h2g_mib": args.h2g_mib, "vcpus": VCPUS, "mem_mib": MEM_MIB,
           "host": environment()["host"], "environment": environment(),
           "peer": "qemu-system-x86_64 -M microvm -netdev tap,vhost=off -device virtio-net-device",
           "results": aggregate(runs), "runs_detail": runs, "notes": notes}
    write_results(res, history=not args.no_history)
    sys.exit(0 if all(r["ok"] for rs in runs.values() for r in rs) else 1)


if __name__ == "__main__":
    main()
