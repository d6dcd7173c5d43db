#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Restoring a Linux guest: from PUT /snapshot/load to the guest agent's first vsock reply,
against the same request to a warm VM (the one the snapshot was taken of, running).

The guest is the default one (vmlinux, the busybox initramfs, no drives) with the guest agent
(resources/guest/agent) on vsock port 52, MEM_MIB of memory and 1 or 2 vCPUs. A request is:
connect to Ember's vsock socket, CONNECT 52, send "ECHO\\n" and a few bytes, read them back.

  - warm: the booted VM, after a first request; RUNS requests, the median;
  - restore: a fresh `ember --api-sock`, PUT /snapshot/load with resume_vm and a new vsock
    socket (vsock_override), then requests until one is answered. Timed from the load
    request: the load's answer ("running"), and the first reply. Four ways: File, File with
    Ember's working-set prefetch, Uffd (build/ember-uffd-handler), Uffd with the handler's
    prefetch; the working sets were recorded by one restore each that served one request.

The memory file stays in the page cache (as on a FaaS host that restores the same snapshot
again and again), so prefetch here saves page faults, not disk reads. On a host without
vmx/svm the benchmark runs inside the real-KVM bench (tests/bench-vm/run-in-l1): there the
guest runs under TCG, so compare the kinds of restore with each other and with the warm VM,
not with real hardware. Results: bench/results/linux_snapshot.{json,md} and a line in
bench/results/history.jsonl.

    bench/linux_snapshot.py [--runs 10] [--mem 128,1024] [--vcpus 1,2]
"""
import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from framework.microvm import DEFAULT_BOOT_ARGS  # noqa: E402
from framework.vsock import AGENT_PORT, host_connect  # noqa: E402
from linux_boot import Images, environment, on_real_kvm, summary  # noqa: E402
from snapshot import HANDLER, http  # noqa: E402

EMBER = os.path.join(ROOT, "build", "ember")
RESULTS = os.path.join(ROOT, "bench", "results")
VARIANTS = ("file", "file+prefetch", "uffd", "uffd+prefetch")
PAYLOAD = b"ping from the host"


class Vm:
    def __init__(self, workdir, name):
        self.workdir, self.name = workdir, name
        self.sock = os.path.join(workdir, name + ".api")
        self.console = open(os.path.join(workdir, name + ".console"), "wb")
        self.proc = subprocess.Popen([EMBER, "--api-sock", self.sock, "--level", "Warning"],
                                     stdin=subprocess.DEVNULL, stdout=self.console,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if http(self.sock, "GET", "/")[0] == 200:
                    return
            except OSError:
                time.sleep(0.002)
        raise RuntimeError("no API socket")

    def ok(self, method, url, body=None):
        status, text = http(self.sock, method, url, body)
        if status not in (200, 204):
            raise RuntimeError(f"{self.name}: {method} {url}: {status} {text}")

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.console.close()


def ask(uds, timeout=1.0):
    """One request to the agent; True when it came back whole."""
    try:
        s, ok = host_connect(uds, AGENT_PORT, timeout=timeout)
    except OSError:
        return False
    try:
        if not ok.startswith("OK "):
            return False
        s.sendall(b"ECHO\n" + PAYLOAD)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while len(got) < len(PAYLOAD):
            b = s.recv(4096)
            if not b:
                break
            got += b
        return got == PAYLOAD
    except OSError:
        return False
    finally:
        s.close()


def first_reply(uds, t0, timeout=60):
    """perf_counter seconds from t0 to the first request answered (retried at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(uds) and ask(uds):
            return time.perf_counter() - t0
        time.sleep(0.0005)
    raise RuntimeError(f"no reply on {uds}")


def boot_source(workdir, images, mem, vcpus):
    vm = Vm(workdir, "source")
    uds = os.path.join(workdir, "source.vsock")
    vm.ok("PUT", "/boot-source", {"kernel_image_path": images.vmlinux,
                                  "initrd_path": images.initramfs,
                                  "boot_args": f"{DEFAULT_BOOT_ARGS} ember_agent={AGENT_PORT}"})
    vm.ok("PUT", "/machine-config", {"vcpu_count": vcpus, "mem_size_mib": mem})
    vm.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": uds})
    vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    first_reply(uds, time.perf_counter(), timeout=300)
    return vm, uds


def warm_requests(uds, runs):
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        if not ask(uds, timeout=30):
            raise RuntimeError("the warm VM did not answer")
        out.append((time.perf_counter() - t0) * 1e3)
    return out


class Handler:
    def __init__(self, sock, memf, *extra):
        self.sock = sock
        self.proc = subprocess.Popen([HANDLER, "--socket", sock, "--mem-file", memf, "--once",
                                      *extra], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the uffd handler did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def restore(workdir, state, memf, variant, ws, name, record=None):
    """(load answer, first reply) in ms from the load request."""
    handler = None
    if variant.startswith("uffd"):
        extra = ["--prefetch", ws] if "prefetch" in variant else []
        if record:
            extra = ["--record", record, "--record-ms", "3000"]
        handler = Handler(os.path.join(workdir, name + ".uffd"), memf, *extra)
    vm = Vm(workdir, name)
    uds = os.path.join(workdir, name + ".vsock")
    body = {"snapshot_path": state, "resume_vm": True, "vsock_override": {"uds_path": uds},
            "mem_backend": {"backend_type": "Uffd" if handler else "File",
                            "backend_path": handler.sock if handler else memf}}
    if variant == "file+prefetch":
        body["prefetch"] = {"working_set_path": ws}
    if record and not handler:
        body["record_working_set"] = {"path": record, "duration_ms": 3000}
    try:
        t0 = time.perf_counter()
        vm.ok("PUT", "/snapshot/load", body)
        loaded = time.perf_counter() - t0
        reply = first_reply(uds, t0)
        if record:  # the recording ends 3 s after the load
            deadline = time.monotonic() + 30
            while not os.path.exists(record) and time.monotonic() < deadline:
                time.sleep(0.05)
        return loaded * 1e3, reply * 1e3
    finally:
        vm.stop()
        if handler:
            if record:
                handler.proc.wait(30)
            handler.stop()


def measure(images, mem, vcpus, runs):
    workdir = tempfile.mkdtemp(prefix="ember-linuxsnap-")
    try:
        vm, uds = boot_source(workdir, images, mem, vcpus)
        warm_requests(uds, 1)
        warm = warm_requests(uds, runs)
        vm.ok("PATCH", "/vm", {"state": "Paused"})
        state, memf = os.path.join(workdir, "fn.state"), os.path.join(workdir, "fn.mem")
        t0 = time.perf_counter()
        vm.ok("PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": state,
                                          "mem_file_path": memf})
        create_ms = (time.perf_counter() - t0) * 1e3
        vm.stop()
        ws = {"file": os.path.join(workdir, "file.ws"), "uffd": os.path.join(workdir, "uffd.ws")}
        restore(workdir, state, memf, "file", None, "rec-file", record=ws["file"])
        restore(workdir, state, memf, "uffd", None, "rec-uffd", record=ws["uffd"])
        res = {v: ([], []) for v in VARIANTS}
        for i in range(runs):
            for v in VARIANTS:
                a, b = restore(workdir, state, memf, v, ws[v.split("+")[0]], f"{v}-{i}")
                res[v][0].append(a)
                res[v][1].append(b)
        return {"mem_mib": mem, "vcpus": vcpus, "create_ms": round(create_ms, 1),
                "mem_allocated_mib": round(os.stat(memf).st_blocks * 512 / 1048576, 1),
                "working_set_mib": {k: round(ws_bytes(p) / 1048576, 1) for k, p in ws.items()},
                "warm_reply_ms": summary(warm),
                "restores": {v: {"load_answer_ms": summary(res[v][0]),
                                 "first_reply_ms": summary(res[v][1])} for v in VARIANTS}}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def ws_bytes(path):
    with open(path, "rb") as f:
        data = f.read()
    nr = int.from_bytes(data[24:28], "little")
    return sum(int.from_bytes(data[32 + 16 * i + 8:32 + 16 * i + 16], "little")
               for i in range(nr))


def write(res):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "linux_snapshot.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    rows = []
    for c in res["cases"]:
        warm = c["warm_reply_ms"]["median"]
        for v in VARIANTS:
            r = c["restores"][v]
            rows.append(f"| {c['mem_mib']} MiB, {c['vcpus']} vCPU | {v} | "
                        f"{r['load_answer_ms']['median']:.1f} | {r['first_reply_ms']['median']:.1f} | "
                        f"{warm:.1f} | {r['first_reply_ms']['median'] / warm:.2f} |")
    sizes = [f"| {c['mem_mib']} MiB, {c['vcpus']} vCPU | {c['create_ms']:.0f} | "
             f"{c['mem_allocated_mib']} | {c['working_set_mib']['file']} / "
             f"{c['working_set_mib']['uffd']} |" for c in res["cases"]]
    md = f"""# Restoring a Linux guest: to the first vsock reply ({res['date']})

`bench/linux_snapshot.py`, Ember {res['commit']}, {res['runs']} runs of each, medians;
environment: {json.dumps(res['environment'])}. The guest: vmlinux, the busybox initramfs,
the guest agent on vsock. "First reply": from PUT /snapshot/load to the agent's answer to
one ECHO request through a new vsock socket. The peer: the same request to the warm VM the
snapshot was taken of. The memory file is in the page cache.

| guest | restore | load answer (ms) | load to first reply (ms) | warm VM's reply (ms) | first reply / warm |
|---|---|---|---|---|---|
{chr(10).join(rows)}

| guest | Full create (ms) | memory file allocated (MiB) | working set File / Uffd (MiB) |
|---|---|---|---|
{chr(10).join(sizes)}

Target (issue 8): restore to first reply within 10% of a warm VM with prefetch on. The
first reply includes the load itself, the guest's vsock transport reset and its reconnect,
and every page fault of the guest's first work after the restore.
"""
    with open(os.path.join(RESULTS, "linux_snapshot.md"), "w") as f:
        f.write(md)
    with open(os.path.join(RESULTS, "history.jsonl"), "a") as f:
        f.write(json.dumps({"bench": "linux_snapshot", "date": res["date"],
                            "commit": res["commit"],
                            "cases": [{"mem_mib": c["mem_mib"], "vcpus": c["vcpus"],
                                       "warm_reply_ms": c["warm_reply_ms"]["median"]} |
                                      {v: c["restores"][v]["first_reply_ms"]["median"]
                                       for v in VARIANTS} for c in res["cases"]]}) + "\n")
    print(md)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "10")))
    ap.add_argument("--mem", default="128,1024")
    ap.add_argument("--vcpus", default="1,2")
    args = ap.parse_args()
    on_real_kvm("linux_snapshot", __file__)
    images = Images(build=False)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    cases = [measure(images, int(m), int(v), args.runs) for m in args.mem.split(",")
             for v in args.vcpus.split(",")]
    write({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": commit, "runs": args.runs, "environment": environment(),
           "cases": cases})


if __name__ == "__main__":
    main()
