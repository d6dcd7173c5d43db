#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Snapshot benchmarks on this host, with the test guest's `counter` test (it counts in
memory and prints every 2000th count):

  1. Create: pause, PUT /snapshot/create (Full) until its answer; the state file's size and
     the memory file's apparent and allocated sizes (zero pages are holes).
  2. Restore: a fresh `ember --api-sock`, then PUT /snapshot/load (File backend,
     resume_vm) until its answer ("load to running": the vCPU threads run when it comes),
     and until the guest's next counter line on the console; with Ember's own
     latencies_us.load_snapshot.
  3. The peer, measured in the same run: a cold boot of the same guest in a fresh Ember,
     PUT /actions InstanceStart to its first counter line. The ratio restore/boot says what
     a snapshot saves over booting.

For 128 MiB and 1 GiB guests with 1 and 2 vCPUs, RUNS times each, medians. This host's
/dev/kvm runs guest ring-0 code in software, so the guest-side times are slow and noisy;
the VMM-side ones (the answer to PUT /snapshot/load) are Ember's own work. Results:
bench/results/snapshot.{md,json}, and a line in history.jsonl.

    /usr/bin/python3 bench/snapshot.py [--runs N]
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api import GUEST, RESULTS, ROOT, summary  # noqa: E402

EMBER = os.path.join(ROOT, "build", "ember")
COUNTER = b"EMBER-GUEST: counter "
TARGET_LOAD_MS = 2.0  # issue 8: load to running under 2 ms for 128 MiB


def http(path, method, url, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    req = (f"{method} {url} HTTP/1.1\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(data)}\r\n\r\n").encode() + data
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    try:
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, _, rest = buf.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(rest) < length:
            rest += s.recv(65536)
        return status, rest
    finally:
        s.close()


class Vmm:
    def __init__(self, workdir, name):
        self.sock = os.path.join(workdir, name + ".sock")
        self.proc = subprocess.Popen([EMBER, "--api-sock", self.sock, "--level", "Warning"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.out = b""
        deadline = time.monotonic() + 5
        while not os.path.exists(self.sock) and time.monotonic() < deadline:
            time.sleep(0.001)
        while time.monotonic() < deadline:
            try:
                if http(self.sock, "GET", "/")[0] == 200:
                    return
            except OSError:
                time.sleep(0.001)
        raise RuntimeError("no API socket")

    def ok(self, method, url, body=None):
        status, text = http(self.sock, method, url, body)
        assert status in (200, 204), f"{method} {url}: {status} {text}"
        return text

    def wait_counter(self, n=1, timeout=60):
        """perf_counter time when n whole counter lines have come out on stdout."""
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = self.proc.stdout.read()
            except BlockingIOError:
                chunk = None
            if chunk:
                self.out += chunk
                lines = self.out.split(b"\n")[:-1]
                if sum(line.startswith(COUNTER) for line in lines) >= n:
                    return time.perf_counter()
            time.sleep(0.0002)
        raise RuntimeError("no counter line")

    def metric(self, name):
        status, body = http(self.sock, "GET", "/metrics")
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        return None

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def configure(vm, mem, vcpus):
    vm.ok("PUT", "/boot-source", {"kernel_image_path": GUEST, "boot_args": "tests=counter"})
    vm.ok("PUT", "/machine-config", {"vcpu_count": vcpus, "mem_size_mib": mem})


def make_snapshot(workdir, mem, vcpus):
    vm = Vmm(workdir, "source")
    configure(vm, mem, vcpus)
    vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    vm.wait_counter(3)
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    state, memf = os.path.join(workdir, "s.state"), os.path.join(workdir, "s.mem")
    t0 = time.perf_counter()
    vm.ok("PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": state,
                                      "mem_file_path": memf})
    create = time.perf_counter() - t0
    vm.stop()
    st = os.stat(memf)
    return state, memf, {"create_ms": create * 1e3, "state_bytes": os.path.getsize(state),
                         "mem_apparent_bytes": st.st_size,
                         "mem_allocated_bytes": st.st_blocks * 512}


def restore_once(workdir, state, memf, i):
    vm = Vmm(workdir, f"r{i}")
    try:
        t0 = time.perf_counter()
        vm.ok("PUT", "/snapshot/load", {"snapshot_path": state, "resume_vm": True,
                                        "mem_backend": {"backend_type": "File",
                                                        "backend_path": memf}})
        t1 = time.perf_counter()
        t2 = vm.wait_counter()
        own = vm.metric("ember_latencies_us_load_snapshot")
        return (t1 - t0) * 1e3, (t2 - t0) * 1e3, (own or 0) / 1e3
    finally:
        vm.stop()


def boot_once(workdir, mem, vcpus, i):
    vm = Vmm(workdir, f"b{i}")
    try:
        configure(vm, mem, vcpus)
        t0 = time.perf_counter()
        vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        t2 = vm.wait_counter()
        return (t2 - t0) * 1e3
    finally:
        vm.stop()


def measure(mem, vcpus, runs):
    workdir = tempfile.mkdtemp(prefix="ember-snapbench-")
    try:
        state, memf, created = make_snapshot(workdir, mem, vcpus)
        load, first, own, boot = [], [], [], []
        for i in range(runs):  # alternated, so that both see the same noise
            a, b, c = restore_once(workdir, state, memf, i)
            load.append(a)
            first.append(b)
            own.append(c)
            boot.append(boot_once(workdir, mem, vcpus, i))
        return {"mem_mib": mem, "vcpus": vcpus, **created,
                "load_answer_ms": summary(load), "load_to_first_line_ms": summary(first),
                "ember_load_snapshot_ms": summary(own), "boot_to_first_line_ms": summary(boot)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def write(res):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "snapshot.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    rows = []
    for c in res["cases"]:
        ratio = c["load_to_first_line_ms"]["median"] / c["boot_to_first_line_ms"]["median"]
        rows.append(
            f"| {c['mem_mib']} MiB, {c['vcpus']} vCPU | {c['load_answer_ms']['median']:.2f} | "
            f"{c['ember_load_snapshot_ms']['median']:.2f} | "
            f"{c['load_to_first_line_ms']['median']:.2f} | "
            f"{c['boot_to_first_line_ms']['median']:.2f} | {ratio:.2f} | "
            f"{c['create_ms']:.1f} | {c['state_bytes'] / 1024:.1f} | "
            f"{c['mem_apparent_bytes'] >> 20} / {c['mem_allocated_bytes'] / 1048576:.1f} |")
    small = [c for c in res["cases"] if c["mem_mib"] == 128]
    verdict = "met" if small and all(c["load_answer_ms"]["median"] < TARGET_LOAD_MS
                                     for c in small) else "NOT met"
    md = f"""# Snapshot benchmarks ({res['date']})

`bench/snapshot.py`, Ember {res['commit']}, the test guest's `counter` test, Full snapshots,
File backend, {res['runs']} restores and {res['runs']} cold boots per case, alternated;
medians. The peer is a cold boot of the same guest in the same run: InstanceStart to its
first counter line. This host's /dev/kvm emulates guest ring-0 code in software (guest-side
times are slow and noisy; the load's own answer time is Ember's work), and its 2 cores are
shared with other jobs.

| guest | load answer (ms) | Ember's `load_snapshot` (ms) | load to the guest's next line (ms) | cold boot to first line (ms) | restore / boot | create (ms) | state file (KiB) | memory file MiB apparent / allocated |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Target (issue 8): load to running under {TARGET_LOAD_MS:.0f} ms for 128 MiB: **{verdict}**
("load answer": the 204 comes once the vCPU threads run). Firecracker reports about 3 ms
on Graviton and about 30 ms on x86 m5d (not measured here).

Reading it: the load's answer is Ember's own work (read and check the state file, map the
memory file, make the VM and its devices, restore every state, start the vCPU threads); it
grows a little with memory (the memslots) and with vCPUs. The guest-side columns measure
little here: the test guest prints a counter line every 2000 counts, which at this host's
software-emulated ring 0 takes ~20-30 ms, and the test guest itself boots in a few ms, so
restore and cold boot look alike. The Linux comparison (restore to the agent's first vsock
reply against a booted VM) is issue 8's remaining bench work. Creating a snapshot scans the
whole memory for zero pages (0.4-0.5 s for 1 GiB); skipping pages the guest never touched
(mincore on anonymous memory) is the planned fix.

Not measured yet: the Uffd backend, prefetch, Diff snapshots and the first vsock reply
from a Linux guest (issue 8's remaining work).
"""
    with open(os.path.join(RESULTS, "snapshot.md"), "w") as f:
        f.write(md)
    with open(os.path.join(RESULTS, "history.jsonl"), "a") as f:
        f.write(json.dumps({"bench": "snapshot", "date": res["date"], "commit": res["commit"],
                            "cases": [{k: c[k] for k in ("mem_mib", "vcpus", "create_ms")} |
                                      {"load_answer_ms": c["load_answer_ms"]["median"],
                                       "load_to_first_line_ms":
                                           c["load_to_first_line_ms"]["median"],
                                       "boot_to_first_line_ms":
                                           c["boot_to_first_line_ms"]["median"]}
                                      for c in res["cases"]]}) + "\n")
    print(md)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    cases = [measure(mem, vcpus, args.runs) for mem in (128, 1024) for vcpus in (1, 2)]
    write({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": commit, "runs": args.runs, "cases": cases})


if __name__ == "__main__":
    main()
