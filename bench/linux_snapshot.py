#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Restoring a Linux guest: from PUT /snapshot/load to the guest agent's first vsock reply,
against the same request to a warm VM (the one the snapshot was taken of, running).

The guest is the default one (vmlinux, the busybox initramfs, no drives) with the guest agent
(resources/guest/agent) on vsock port 52, MEM_MIB of memory and 1 or 2 vCPUs. A request is:
connect to Ember's vsock socket, CONNECT 52, send "ECHO\\n" and a few bytes, read them back.

  - warm: the booted VM, after a first request; WARM_REQUESTS requests, the median;
  - restore: a fresh `ember --api-sock`, PUT /snapshot/load with resume_vm and a new vsock
    socket (vsock_override), then requests until one is answered, each retried at once
    (a request the guest resets counts as an attempt, and the first failure's kind is
    noted). Timed from the load request: the
    load's answer ("running"), and the first reply. Four ways: File, File with Ember's
    working-set prefetch, Uffd (build/ember-uffd-handler), Uffd with the handler's
    prefetch; the working sets were recorded by one restore each that served one request
    (RECORD_MS from the load; done again when its reply came too late for that window).
    Each restore also notes Ember's page faults from the load's answer to the reply
    (/proc/PID/stat, which counts KVM's faults on guest memory too) and, with Uffd, the
    faults the handler served.
  - the same four with a cold page cache ("cold"): the memory file is a copy on the
    checkout's file system (not tmpfs; in the real-KVM bench it is 9p, so every page read
    goes to the host through QEMU, like network storage) whose cached pages are dropped
    (posix_fadvise DONTNEED, only that file) before each restore. Skipped when the checkout
    is on tmpfs.
  - settled: a File restore whose request waits SETTLE_S after the load: the request alone,
    on a restored VM that has caught up.

Restores alternate, in an order shuffled per run (seeded), so that all kinds see the same
noise. Otherwise the memory file stays in the page cache (as on a FaaS host that restores
the same snapshot again and again), so prefetch there saves page faults, not disk reads. On
a host without vmx/svm the benchmark runs inside the real-KVM bench
(tests/bench-vm/run-in-l1): there the guest runs under TCG, so compare the kinds of restore
with each other and with the warm VM, not with real hardware. Results:
bench/results/linux_snapshot.{json,md} and a line in bench/results/history.jsonl.

    bench/linux_snapshot.py [--runs 10] [--budget-min M] [--mem 128,1024] [--vcpus 1,2]
                            [--no-cold] [--results DIR] [--rerender]

Ember and the handler are copied to a private directory at the start, so that a rebuild in
the shared checkout cannot change or break them mid-run. The full matrix with 40 runs took
37 minutes in the real-KVM bench (--budget-min 40 keeps it near that on a busier host).
"""
import argparse
import atexit
import datetime
import hashlib
import json
import os
import random
import re
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
from snapshot import HANDLER, publish, ws_bytes  # noqa: E402
from vmctl import Ember, UffdHandler, http  # noqa: E402

EMBER = os.path.join(ROOT, "build", "ember")
RESULTS = os.path.join(ROOT, "bench", "results")
COLD_DIR = os.path.join(ROOT, "build", "linux_snapshot-cold")
KINDS = ("file", "file+prefetch", "uffd", "uffd+prefetch")
PAYLOAD = b"ping from the host"
ASK_TIMEOUT_S = 10  # one attempt; a guest that resets a connection does so at once
WARM_REQUESTS = 20
SETTLE_S = 3.0
RECORD_MS = 3000
MIN_RUNS = 3
TARGET = 1.10  # issue 8: first reply within 10% of the warm VM's, with prefetch


def say(msg):
    print(f"linux_snapshot: {msg}", file=sys.stderr, flush=True)


class Vm(Ember):
    """An Ember (this module's EMBER) whose console and log go to workdir/NAME.console."""

    def __init__(self, workdir, name, timeout=10):
        self.workdir, self.name = workdir, name
        self.console = open(os.path.join(workdir, name + ".console"), "wb")
        super().__init__(EMBER, os.path.join(workdir, name + ".api"), self.console,
                         subprocess.STDOUT, timeout=timeout, poll_s=0.002)

    def ok(self, method, url, body=None):
        status, text = http(self.sock, method, url, body)
        if status not in (200, 204):
            raise RuntimeError(f"{self.name}: {method} {url}: {status} {text}")

    def faults(self):
        """(minor, major) page faults of the Ember process so far, all threads."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return int(fields[7]), int(fields[9])

    def stop(self):
        super().stop()
        self.console.close()


def ask(uds, timeout=ASK_TIMEOUT_S):
    """One request to the agent: None when it came back whole, else why it failed:
    "refused" (no OK line: Ember or the guest turned the connection down), "reset after OK"
    (accepted, then closed before the echo came back), "timeout" or "error"."""
    try:
        s, ok = host_connect(uds, AGENT_PORT, timeout=timeout)
    except socket.timeout:
        return "timeout"
    except OSError:
        return "error"
    try:
        if not ok.startswith("OK "):
            return "refused"
        s.sendall(b"ECHO\n" + PAYLOAD)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while len(got) < len(PAYLOAD):
            b = s.recv(4096)
            if not b:
                break
            got += b
        return None if got == PAYLOAD else "reset after OK"
    except socket.timeout:
        return "timeout"
    except OSError:
        return "reset after OK"
    finally:
        s.close()


def first_reply(uds, t0, timeout=60, ask_timeout=ASK_TIMEOUT_S):
    """(seconds from t0 to the first request answered, attempts, seconds from t0 to the
    start of the attempt that was answered, why the first attempt failed or None); each
    failed attempt is retried at once."""
    deadline = time.monotonic() + timeout
    attempts, first_failure = 0, None
    while time.monotonic() < deadline:
        if os.path.exists(uds):
            attempts += 1
            start = time.perf_counter()
            why = ask(uds, ask_timeout)
            if why is None:
                return time.perf_counter() - t0, attempts, start - t0, first_failure
            first_failure = first_failure or why
        time.sleep(0.0005)
    raise RuntimeError(f"no reply on {uds} after {attempts} attempts")


def boot_source(workdir, images, mem, vcpus):
    vm = Vm(workdir, "source")
    uds = os.path.join(workdir, "source.vsock")
    vm.ok("PUT", "/boot-source", {"kernel_image_path": images.vmlinux,
                                  "initrd_path": images.initramfs,
                                  "boot_args": f"{DEFAULT_BOOT_ARGS} ember_agent={AGENT_PORT}"})
    vm.ok("PUT", "/machine-config", {"vcpu_count": vcpus, "mem_size_mib": mem})
    vm.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": uds})
    vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    first_reply(uds, time.perf_counter(), timeout=300, ask_timeout=1.0)
    return vm, uds


def warm_requests(uds, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        why = ask(uds, timeout=30)
        if why:
            raise RuntimeError(f"the warm VM did not answer: {why}")
        out.append((time.perf_counter() - t0) * 1e3)
    return out


class Handler(UffdHandler):
    def __init__(self, sock, memf, *extra):
        self.log = open(sock + ".log", "w+")
        super().__init__(HANDLER, sock, memf, *extra)

    def stop(self):
        """The handler's 'vm done' counts: (faults served, pages prefetched), or None."""
        try:  # --once: it ends by itself once it sees Ember gone (pidfd)
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        m = re.search(r"vm done: (\d+) faults, (\d+) pages prefetched", self.proc.stdout.read())
        self.proc.stdout.close()
        self.log.close()
        return (int(m.group(1)), int(m.group(2))) if m else None


def drop_cache(path):
    """Drops the page cache of one file (clean pages, mapped by nobody: Ember and the
    handler of the previous restore are gone); returns the bytes still cached, if fincore
    can tell."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    try:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", path],
                             capture_output=True, text=True, timeout=30).stdout.split()
        return int(out[0]) if out else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def restore(workdir, state, memf, kind, ws, name, record=None, settle=0.0):
    """One restore: a dict with load_ms, reply_ms (both from the load request), attempts,
    last_start_ms (when the attempt that was answered began), Ember's page faults and,
    with Uffd, the handler's."""
    handler = None
    if kind.startswith("uffd"):
        extra = ["--prefetch", ws] if "prefetch" in kind else []
        if record:
            extra = ["--record", record, "--record-ms", str(RECORD_MS)]
        handler = Handler(os.path.join(workdir, name + ".uffd"), memf, *extra)
    vm = Vm(workdir, name)
    uds = os.path.join(workdir, name + ".vsock")
    body = {"snapshot_path": state, "resume_vm": True, "vsock_override": {"uds_path": uds},
            "mem_backend": {"backend_type": "Uffd" if handler else "File",
                            "backend_path": handler.sock if handler else memf}}
    if kind == "file+prefetch":
        body["prefetch"] = {"working_set_path": ws}
    if record and not handler:
        body["record_working_set"] = {"path": record, "duration_ms": RECORD_MS}
    r = {}
    try:
        t0 = time.perf_counter()
        vm.ok("PUT", "/snapshot/load", body)
        r["load_ms"] = (time.perf_counter() - t0) * 1e3
        minflt, majflt = vm.faults()
        if settle:
            time.sleep(settle)
            t0 = time.perf_counter()
        reply, r["attempts"], last, r["first_failure"] = first_reply(uds, t0)
        r["reply_ms"], r["last_start_ms"] = reply * 1e3, last * 1e3
        r["ember_minflt"], r["ember_majflt"] = (a - b for a, b in zip(vm.faults(),
                                                                      (minflt, majflt)))
        if record:  # the recording ends RECORD_MS after the load
            deadline = time.monotonic() + 30
            while not os.path.exists(record) and time.monotonic() < deadline:
                time.sleep(0.05)
        return r
    finally:
        vm.stop()
        with open(os.path.join(workdir, name + ".console"), errors="replace") as f:
            r["agent_saw_a_clone"] = "ember-agent: VM generation" in f.read()
        if handler:
            done = handler.stop()
            if done:
                r["uffd_faults"], r["uffd_prefetched"] = done


def record_working_set(workdir, state, memf, kind, path, tries=3):
    """Records a working set with one restore that serves one request. The recording covers
    RECORD_MS from the load; a restore whose reply came later than that (a loaded host) would
    leave part of the request out, so it is done again (up to `tries` times). Returns the
    recording restore's reply time in ms and the tries it took."""
    for n in range(1, tries + 1):
        if os.path.exists(path):
            os.unlink(path)
        r = restore(workdir, state, memf, kind, None, f"rec-{kind}-{n}", record=path)
        if r["reply_ms"] < RECORD_MS * 0.8 and os.path.exists(path):
            return {"reply_ms": round(r["reply_ms"]), "tries": n}
        say(f"recording the {kind} working set again: the reply took {r['reply_ms']:.0f} ms "
            f"of the {RECORD_MS} ms recorded")
    raise RuntimeError(f"no {kind} working set recorded within {RECORD_MS} ms")


def cold_copy(memf, workdir_name):
    """A copy of the memory file (holes kept) on the checkout's file system, or None when
    that is tmpfs (no page cache to drop)."""
    os.makedirs(COLD_DIR, exist_ok=True)
    best, fstype = "", None
    with open("/proc/mounts") as f:
        for line in f:
            mnt, typ = line.split()[1:3]
            if (COLD_DIR + "/").startswith(mnt.rstrip("/") + "/") and len(mnt) > len(best):
                best, fstype = mnt, typ
    if fstype in (None, "tmpfs", "ramfs"):
        return None, fstype
    dst = os.path.join(COLD_DIR, workdir_name + ".mem")
    size = os.path.getsize(memf)
    with open(memf, "rb") as src, open(dst, "wb") as out:
        fd, pos = src.fileno(), 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            src.seek(data)
            out.seek(data)
            left = hole - data
            while left:
                chunk = src.read(min(left, 1 << 20))
                out.write(chunk)
                left -= len(chunk)
            pos = hole
        out.truncate(size)
        out.flush()
        os.fsync(out.fileno())
    return dst, fstype


def summarize(rs):
    def pick(key):
        return [r[key] for r in rs if r.get(key) is not None]
    out = {"load_answer_ms": summary(pick("load_ms")),
           "first_reply_ms": summary(pick("reply_ms")),
           "answered_attempt_start_ms": summary(pick("last_start_ms")),
           "attempts": summary(pick("attempts")),
           "runs_with_a_failed_attempt": sum(r["attempts"] > 1 for r in rs),
           "ember_minflt": summary(pick("ember_minflt")),
           "ember_majflt": summary(pick("ember_majflt"))}
    if pick("uffd_faults"):
        out["uffd_faults"] = summary(pick("uffd_faults"))
        out["uffd_prefetched_pages"] = summary(pick("uffd_prefetched"))
    for r in rs:
        if r.get("first_failure"):
            why = out.setdefault("first_attempt_failures", {})
            why[r["first_failure"]] = why.get(r["first_failure"], 0) + 1
    out["agent_saw_a_clone"] = sum(bool(r.get("agent_saw_a_clone")) for r in rs)
    if pick("cached_after_drop"):
        out["cached_bytes_after_drop"] = summary(pick("cached_after_drop"))
    return out


def measure(images, mem, vcpus, runs, cold, budget_s=None):
    """One case; with budget_s, runs stop once that much time is spent (at least
    MIN_RUNS)."""
    workdir = tempfile.mkdtemp(prefix="ember-linuxsnap-")
    cold_mem = None
    try:
        say(f"{mem} MiB, {vcpus} vCPU: booting the source VM")
        vm, uds = boot_source(workdir, images, mem, vcpus)
        warm_requests(uds, 1)
        warm = warm_requests(uds, WARM_REQUESTS)
        vm.ok("PATCH", "/vm", {"state": "Paused"})
        state, memf = os.path.join(workdir, "fn.state"), os.path.join(workdir, "fn.mem")
        t0 = time.perf_counter()
        vm.ok("PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": state,
                                          "mem_file_path": memf})
        create_ms = (time.perf_counter() - t0) * 1e3
        vm.stop()
        ws = {"file": os.path.join(workdir, "file.ws"), "uffd": os.path.join(workdir, "uffd.ws")}
        recordings = {k: record_working_set(workdir, state, memf, k, ws[k]) for k in ws}
        kinds = list(KINDS)
        fstype = None
        if cold:
            cold_mem, fstype = cold_copy(memf, os.path.basename(workdir))
            if cold_mem:
                kinds += [k + " cold" for k in KINDS]
            else:
                say(f"no cold-cache rows: {COLD_DIR} is on {fstype}")
        res = {k: [] for k in kinds + ["settled"]}
        failed = {}
        t_start = time.monotonic()
        for i in range(runs):
            if budget_s is not None and i >= MIN_RUNS and time.monotonic() - t_start > budget_s:
                say(f"{mem} MiB, {vcpus} vCPU: {i} runs fit in its share of the time budget")
                break
            order = kinds + ["settled"]
            random.Random(f"{mem}-{vcpus}-{i}").shuffle(order)
            for k in order:
                base = k.split()[0]
                path = memf
                dropped = None
                if k.endswith(" cold"):
                    path = cold_mem
                    dropped = drop_cache(cold_mem)
                try:
                    r = restore(workdir, state, path, "file" if k == "settled" else base,
                                ws[base.split("+")[0]] if k != "settled" else None,
                                f"{k.replace(' ', '-')}-{i}",
                                settle=SETTLE_S if k == "settled" else 0.0)
                except (RuntimeError, OSError) as e:  # counted, shown, and the runs go on
                    failed.setdefault(k, []).append(f"run {i + 1}: {e}")
                    say(f"{mem} MiB, {vcpus} vCPU, run {i + 1}/{runs}, {k}: FAILED: {e}")
                    continue
                if dropped is not None:
                    r["cached_after_drop"] = dropped
                res[k].append(r)
                say(f"{mem} MiB, {vcpus} vCPU, run {i + 1}/{runs}, {k}: load {r['load_ms']:.0f} "
                    f"ms, first reply {r['reply_ms']:.0f} ms ({r['attempts']} attempts)")
        return {"mem_mib": mem, "vcpus": vcpus, "create_ms": round(create_ms, 1),
                "mem_allocated_mib": round(os.stat(memf).st_blocks * 512 / 1048576, 1),
                "working_set_mib": {k: round(ws_bytes(p) / 1048576, 1) for k, p in ws.items()},
                "cold_fs": fstype if cold_mem else None,
                "recordings": recordings,
                "warm_reply_ms": summary(warm),
                "restores": {k: summarize(res[k]) for k in kinds},
                "settled_reply_ms": summarize(res["settled"])["first_reply_ms"],
                "settled_attempts": summarize(res["settled"])["attempts"],
                "failed": failed,
                "raw": {k: res[k] for k in kinds + ["settled"]}}
    finally:
        if cold_mem:
            os.unlink(cold_mem)
        shutil.rmtree(workdir, ignore_errors=True)


def med(x):
    return x["median"] if x else float("nan")


def write(res, results=RESULTS, history=True):
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "linux_snapshot.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    rows, sizes, verdicts = [], [], []
    for c in res["cases"]:
        warm = med(c["warm_reply_ms"])
        for k, r in c["restores"].items():
            if not r["first_reply_ms"]:
                rows.append(f"| {c['mem_mib']} MiB, {c['vcpus']} vCPU | {k} | every restore "
                            "failed | | | | | | |")
                continue
            fl = (f"{med(r['ember_minflt']):.0f} / {med(r['ember_majflt']):.0f}")
            uf = (f"{med(r['uffd_faults']):.0f} / {med(r['uffd_prefetched_pages']):.0f}"
                  if r.get("uffd_faults") else "-")
            rows.append(f"| {c['mem_mib']} MiB, {c['vcpus']} vCPU | {k} | "
                        f"{med(r['load_answer_ms']):.0f} | {med(r['first_reply_ms']):.0f} "
                        f"({r['first_reply_ms']['p10']:.0f}-{r['first_reply_ms']['p90']:.0f}) | "
                        f"{med(r['first_reply_ms']) / warm:.1f} | "
                        f"{med(r['answered_attempt_start_ms']):.0f} | "
                        f"{r['runs_with_a_failed_attempt']}/{r['first_reply_ms']['n']} | "
                        f"{fl} | {uf} |")
        rows.append(f"| {c['mem_mib']} MiB, {c['vcpus']} vCPU | settled (File, request "
                    f"{SETTLE_S:.0f} s after the load) | - | {med(c['settled_reply_ms']):.0f} "
                    f"({c['settled_reply_ms']['p10']:.0f}-{c['settled_reply_ms']['p90']:.0f}) | "
                    f"{med(c['settled_reply_ms']) / warm:.1f} | - | - | - | - |")
        rows.append(f"| {c['mem_mib']} MiB, {c['vcpus']} vCPU | **warm VM** | - | **{warm:.0f}** "
                    f"({c['warm_reply_ms']['p10']:.0f}-{c['warm_reply_ms']['p90']:.0f}) | 1.0 | "
                    f"- | - | - | - |")
        sizes.append(f"| {c['mem_mib']} MiB, {c['vcpus']} vCPU | {c['create_ms']:.0f} | "
                     f"{c['mem_allocated_mib']} | {c['working_set_mib']['file']} / "
                     f"{c['working_set_mib']['uffd']} |")
        best = min(("file+prefetch", "uffd+prefetch"),
                   key=lambda k: med(c["restores"][k]["first_reply_ms"]))
        verdicts.append((c, best, med(c["restores"][best]["first_reply_ms"]) / warm))
    met = all(v[2] <= TARGET for v in verdicts)
    verdict_lines = "; ".join(
        f"{c['mem_mib']} MiB/{c['vcpus']} vCPU: {best} "
        f"{med(c['restores'][best]['first_reply_ms']):.0f} ms against "
        f"{med(c['warm_reply_ms']):.0f} ms warm ({ratio:.1f}x)" for c, best, ratio in verdicts)
    md = render(res, rows, sizes, met, verdict_lines)
    publish(results, "linux_snapshot", md, history and {
        "bench": "linux_snapshot", "date": res["date"], "commit": res["commit"],
        "runs": res["runs"],
        "cases": [{"mem_mib": c["mem_mib"], "vcpus": c["vcpus"],
                   "warm_reply_ms": med(c["warm_reply_ms"]),
                   "settled_reply_ms": med(c["settled_reply_ms"])} |
                  {k: med(r["first_reply_ms"]) for k, r in c["restores"].items()}
                  for c in res["cases"]]})


def render(res, rows, sizes, met, verdict_lines):
    cases = res["cases"]
    cold = any(c.get("cold_fs") for c in cases)
    fss = ", ".join(sorted({c["cold_fs"] for c in cases if c.get("cold_fs")}))
    cold_note = (' With "cold" it is a copy on the checkout\'s file system (' + fss +
                 ": in the real-KVM bench a 9p share, so every page read goes through QEMU "
                 "to the host, like network storage) whose page cache is dropped before "
                 "each restore (posix_fadvise DONTNEED on that file)." if cold else "")
    sha = f", sha256 {res['ember_sha256']}..." if res.get("ember_sha256") else ""
    fails = [f"{c['mem_mib']} MiB/{c['vcpus']} vCPU {k}: {len(v)} ({v[0]})"
             for c in cases for k, v in c.get("failed", {}).items()]
    failures = ("Failed restores (not in the medians): " + "; ".join(fails) + "." if fails
                else "No restore failed.")
    ns = [len(c["raw"]["settled"]) + len(c.get("failed", {}).get("settled", []))
          for c in cases]
    runs_note = ((f"{ns[0]} runs" if len(set(ns)) == 1 else "runs (" + ", ".join(
        f"{c['mem_mib']} MiB/{c['vcpus']} vCPU: {n}" for c, n in zip(cases, ns)) + ")")
        + " of each kind per case, alternated (a single run proves nothing here: compare the "
        "p10-p90 ranges)")
    return f"""# Restoring a Linux guest: to the first vsock reply ({res['date']})

`bench/linux_snapshot.py`, Ember {res['commit']} (build/ember as built from the working
tree{sha}), {runs_note}, medians with p10-p90 in
brackets; environment: {json.dumps(res['environment'])}. The guest: vmlinux, the busybox
initramfs, the guest agent on vsock. "First reply": from PUT /snapshot/load to the agent's
answer to one ECHO request through a new vsock socket, each attempt retried at once when it
fails. The peer: the same request to the warm VM the snapshot was taken of
({WARM_REQUESTS} requests). Restores alternate in a shuffled order. Without "cold" the
memory file is on tmpfs, always in the page cache.{cold_note}
Inside the real-KVM bench the L1 has one CPU and the guest runs under TCG: the absolute
times are those of a nested, emulated machine; read the ratios. The host's cores may be
shared with other jobs (other L1s, builds): the p10-p90 ranges show how much that moved the
numbers. Full create and the working sets are one measurement per case.

| guest | restore | load answer (ms) | load to first reply (ms) | first reply / warm | start of the answered attempt (ms) | runs with a failed first attempt | Ember's page faults after the answer, minor / major | Uffd faults served / pages prefetched |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

| guest | Full create (ms) | memory file allocated (MiB) | working set File / Uffd (MiB) |
|---|---|---|---|
{chr(10).join(sizes)}

{failures}

Target (issue 8): restore to first reply within 10% of a warm VM with prefetch on:
**{"met" if met else "NOT met"}**. The best prefetching restore per case: {verdict_lines}.

{reading(res)}
"""


def span(values, fmt="{:.0f}"):
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo} to {hi}"


def reading(res):
    """The paragraphs that explain the numbers, computed from them."""
    cases = res["cases"]

    def m(c, k, key="first_reply_ms"):
        return med(c["restores"][k][key])

    def ratios(a, b, key="first_reply_ms", among=None):
        return [m(c, a, key) / m(c, b, key) for c in (among or cases)
                if a in c["restores"] and b in c["restores"]]

    def word(rs):  # within 5% counts as about the same
        lo, hi = min(rs), max(rs)
        return ("about the same in every case" if lo >= 0.95 and hi <= 1.05
                else "shorter in every case" if hi < 0.95
                else "longer in every case" if lo > 1.05
                else "shorter or about the same in every case" if hi <= 1.05
                else "longer or about the same in every case" if lo >= 0.95
                else "either way, case by case")

    def name(c):
        return f"{c['mem_mib']} MiB/{c['vcpus']} vCPU"

    warm = [med(c["warm_reply_ms"]) for c in cases]
    warm_ratio = [m(c, k) / med(c["warm_reply_ms"]) for c in cases for k in KINDS]
    settled = [med(c["settled_reply_ms"]) / med(c["warm_reply_ms"]) for c in cases]
    restores = [r for c in cases for r in c["restores"].values()]
    n_fail = sum(r["runs_with_a_failed_attempt"] for r in restores)
    n_all = sum(r["first_reply_ms"]["n"] for r in restores)
    modes = {}
    for r in restores:
        for why, n in r.get("first_attempt_failures", {}).items():
            modes[why] = modes.get(why, 0) + n
    if modes:
        how = "; ".join(f"{n} {why}" for why, n in sorted(modes.items(), key=lambda x: -x[1]))
        mode = f"how those first attempts failed: {how}"
    else:
        mode = ("this run did not note how they failed; in the restores examined one by one "
                "while writing this benchmark, each was accepted (Ember's `OK` line came) and "
                "then closed by the guest before the echo")
    answered = [m(c, k, "answered_attempt_start_ms") for c in cases for k in KINDS]
    loads = [m(c, k, "load_answer_ms") for c in cases for k in KINDS]
    own = [m(c, k) - m(c, k, "answered_attempt_start_ms") for c in cases for k in KINDS]
    pf_file, pf_uffd = ratios("file+prefetch", "file"), ratios("uffd+prefetch", "uffd")
    uffd_file = ratios("uffd", "file")
    faults = [m(c, "uffd", "uffd_faults") for c in cases]
    faults_pf = [m(c, "uffd+prefetch", "uffd_faults") for c in cases]
    short = [c for c in cases
             if m(c, "uffd+prefetch", "uffd_prefetched_pages") < 0.5 * m(c, "uffd", "uffd_faults")]
    short_note = "".join(
        f" In {name(c)} the recorded Uffd working set was {c['working_set_mib']['uffd']} MiB: "
        f"the handler prefetched {m(c, 'uffd+prefetch', 'uffd_prefetched_pages'):.0f} pages "
        f"of the {m(c, 'uffd', 'uffd_faults'):.0f} a restore faults in, so that case shows "
        "little of what prefetch does ("
        + (f"its recording restore answered after {c['recordings']['uffd']['reply_ms']} ms)"
           if c.get("recordings") else "this run did not keep its recording restore's reply "
           f"time; a reply later than the {RECORD_MS} ms recording window, on the loaded "
           "host, would explain it)") + "." for c in short)
    full = [c for c in cases if c not in short]
    pf_uffd_full = ratios("uffd+prefetch", "uffd", among=full) if full else pf_uffd
    settled_first = sum(r["attempts"] == 1 for c in cases for r in c["raw"]["settled"])
    settled_n = sum(len(c["raw"]["settled"]) for c in cases)
    clones = sum(r["agent_saw_a_clone"] for r in restores)
    agent = (f", and the agent, seeing a new VM generation ID (it logged so in {clones} of "
             f"{n_all} restores), tries to reseed the kernel RNG before it serves its first "
             "connection" if clones else "")
    text = f"""Reading it. The target is far from met here: the warm VM answers in {span(warm)} ms,
a restore's first reply, with the page cache warm, takes {span(warm_ratio)} times as long,
prefetch or not. The first reply after a restore is made of: the load itself
({span(loads)} ms to the answer); the guest catching up once it runs again, under TCG: it
takes the vsock transport-reset event Ember queued at the load and faults in every page it
touches first (kernel, agent, and the fork the agent makes for each connection){agent}; and
a lost attempt: in {n_fail} of {n_all} restores the first attempt failed ({mode}), so the
attempt that was answered started {span(answered)} ms after the load and took {span(own)} ms
itself. That lost attempt is most likely the guest taking the host's connection request
before the transport-reset event, then resetting the new connection with the old ones:
Ember passes host connection requests to the guest at once after a restore, where
Firecracker holds RX back until the guest has acknowledged the reset event. A request made
{SETTLE_S:.0f} s after the load, once the guest has caught up, was answered at the first
attempt in {settled_first} of {settled_n} restores, in {span(settled, '{:.1f}')} times the warm
VM's time (medians): the rest is most likely the first-touch faults of the request's own
path.

Prefetch, page cache warm: File with prefetch against File, first reply ratio
{span(pf_file, '{:.2f}')} ({word(pf_file)}): the pages are in the page cache already, so
Ember's prefetch saves only the L1's own page faults, not KVM's nested ones, and on the L1's
single CPU its thread runs instead of the vCPU, not beside it. Uffd with prefetch against
Uffd: {span(pf_uffd, '{:.2f}')} ({word(pf_uffd)}{"; " + span(pf_uffd_full, "{:.2f}") +
" where the working set covered the restore" if short else ""}): the handler served
{span(faults)} faults without prefetch and {span(faults_pf)} with it, and each fault it does
not serve is a round trip between the vCPU thread and the handler process saved.{short_note}
Uffd against File, without prefetch: {span(uffd_file, '{:.1f}')} times as long, those round
trips again."""
    cold = [c for c in cases if "file cold" in c["restores"]]
    if cold:
        fc = ratios("file cold", "file", among=cold)
        uc = ratios("uffd cold", "uffd", among=cold)
        fpc = ratios("file+prefetch cold", "file cold", among=cold)
        upc = ratios("uffd+prefetch cold", "uffd cold", among=cold)
        maj = [m(c, "file cold", "ember_majflt") for c in cold]
        maj_pf = [m(c, "file+prefetch cold", "ember_majflt") for c in cold]
        load_pf = [m(c, "file+prefetch cold", "load_answer_ms") for c in cold]
        load_c = [m(c, "file cold", "load_answer_ms") for c in cold]
        best_cold = [min(m(c, "file+prefetch cold"), m(c, "uffd+prefetch cold"))
                     / med(c["warm_reply_ms"]) for c in cold]
        left = [r["cached_bytes_after_drop"]["max"] for c in cold
                for k, r in c["restores"].items() if r.get("cached_bytes_after_drop")]
        cached = ("fincore found none of it cached after the drop" if left and max(left) == 0
                  else f"fincore found at most {max(left)} bytes of it cached after the drop"
                  if left else "fincore could not check the drop")
        text += f"""

Cold page cache (the memory file read again for every restore; {cached}): File cold against
File warm {span(fc, '{:.2f}')}, Uffd cold against Uffd warm {span(uc, '{:.2f}')}. The File
restore took {span(maj)} major faults (reads from the file) after the load's answer, and
{span(maj_pf)} with prefetch; but prefetch against none, cold: File {span(fpc, '{:.2f}')}
({word(fpc)}), Uffd {span(upc, '{:.2f}')} ({word(upc)}); the best cold restore with prefetch
is {span(best_cold)} times the warm VM. File with prefetch answers the load later when cold
({span(load_pf)} ms against {span(load_c)}): its MADV_WILLNEED, meant only to start the reads,
seems to read much of the working set before the answer on this 9p share, so what prefetch
saves in faults it spends before the vCPUs start, on the same single CPU."""
    return text


def private_binaries():
    """Copies build/ember and the handler to a directory of this run's own: the checkout is
    shared, and a rebuild in the middle of a long run must not change (or, while the linker
    writes it, break) the binary under test."""
    global EMBER, HANDLER
    d = tempfile.mkdtemp(prefix="ember-linuxsnap-bin-")
    atexit.register(shutil.rmtree, d, True)
    EMBER = shutil.copy2(EMBER, d)
    HANDLER = shutil.copy2(HANDLER, d)
    with open(EMBER, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "10")))
    ap.add_argument("--mem", default="128,1024")
    ap.add_argument("--vcpus", default="1,2")
    ap.add_argument("--budget-min", type=float,
                    help="stop each case's runs early so that all fit in about this many "
                         "minutes (at least 3 runs each)")
    ap.add_argument("--no-cold", action="store_true", help="no cold-page-cache rows")
    ap.add_argument("--results", default=RESULTS,
                    help="where the .json, .md and history line go (for trial runs)")
    ap.add_argument("--rerender", action="store_true",
                    help="rewrite the .md from the .json in --results; measure nothing")
    args = ap.parse_args()
    if args.rerender:
        with open(os.path.join(args.results, "linux_snapshot.json")) as f:
            write(json.load(f), args.results, history=False)
        return
    # the full matrix takes longer than run-in-l1's default 30 min
    os.environ.setdefault("EMBER_L1_TIMEOUT", "7200")
    on_real_kvm("linux_snapshot", __file__)
    images = Images(build=False)
    ember_sha = private_binaries()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    t0 = time.monotonic()
    todo = [(int(m), int(v)) for m in args.mem.split(",") for v in args.vcpus.split(",")]
    cases = []
    for n, (m, v) in enumerate(todo):
        budget = None
        if args.budget_min:  # what is left, shared by the cases left (set-up included)
            budget = (args.budget_min * 60 - (time.monotonic() - t0)) / (len(todo) - n) - 30
        cases.append(measure(images, m, v, args.runs, not args.no_cold, budget))
    say(f"done in {time.monotonic() - t0:.0f} s")
    write({"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": commit, "ember_sha256": ember_sha, "runs": args.runs,
           "environment": environment(),
           "cases": cases}, args.results)


if __name__ == "__main__":
    main()
