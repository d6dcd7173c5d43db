#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Density: how many idle clones of one snapshotted Linux guest fit on a host, and what each
costs.

A 128 MiB Linux guest (vmlinux, the busybox initramfs, the guest agent on vsock) is booted
once and snapshotted (Full, File backend). Then, for each variant and each N, N clones are
restored one after another, each its own `ember` process with its own vsock socket
(vsock_override), and left idle for SETTLE seconds. Reported per N:

  - the time to restore all N (load requests, one after another);
  - host memory per clone: PSS of each Ember process (/proc/PID/smaps_rollup: its own
    memory plus its share of the memory file's page cache), its private part, and what
    `ember --print-memory-stats` counts as guest memory resident;
  - how many clones answer on vsock (the agent's ECHO) after the settle time;
  - the host's MemAvailable before and after.

Variants: plain; ksm (machine-config ksm in the snapshot, the host's ksmd running fast, and
the measure taken once ksmd's pages_sharing has settled); balloon (each clone's balloon
inflated to BALLOON_MIB after its restore, with free page reporting, when the snapshot has a
balloon device - the source is booted with one). It stops growing N at the first clone
that fails to restore or when MemAvailable falls under a reserve, and says what limited it.

Issue 9's target: under 4 MiB of private host memory per idle clone, and at least 500
idle clones of 128 MiB on a 24 GiB host. On a host without vmx/svm this runs inside the
real-KVM bench (tests/bench-vm/run-in-l1, here with EMBER_L1_MEM of L1 memory), whose one
TCG vCPU runs every clone's timer ticks: the clone count it reaches there is bounded by L1's
memory and CPU, not by Ember. Results: bench/results/density.{json,md}, history.jsonl.

    bench/density.py [--counts 50,200,500] [--variants plain,ksm,balloon] [--settle 10]
                     [--budget-min 60] [--merge] [--rerender]
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from linux_boot import Images, environment, on_real_kvm  # noqa: E402
from linux_snapshot import Vm, ask, first_reply  # noqa: E402
from framework.microvm import DEFAULT_BOOT_ARGS  # noqa: E402
from framework.vsock import AGENT_PORT  # noqa: E402

EMBER = os.path.join(ROOT, "build", "ember")
RESULTS = os.path.join(ROOT, "bench", "results")
MEM_MIB = 128
BALLOON_MIB = 64
API_TIMEOUT_S = 120
RESERVE_MIB = 512  # stop adding clones when the host has less than this available
KSM = "/sys/kernel/mm/ksm"


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rollup(pid):
    """(PSS, private) bytes of a process, from smaps_rollup."""
    pss = priv = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "Pss":
                pss = int(v.split()[0]) * 1024
            elif k in ("Private_Clean", "Private_Dirty"):
                priv += int(v.split()[0]) * 1024
    return pss, priv


def make_snapshot(workdir, images, variant):
    vm = Vm(workdir, "source")
    uds = os.path.join(workdir, "source.vsock")
    vm.ok("PUT", "/boot-source", {"kernel_image_path": images.vmlinux,
                                  "initrd_path": images.initramfs,
                                  "boot_args": f"{DEFAULT_BOOT_ARGS} ember_agent={AGENT_PORT}"})
    vm.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": MEM_MIB,
                                     "ksm": variant == "ksm"})
    if variant == "balloon":
        vm.ok("PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": True,
                                  "stats_polling_interval_s": 0, "free_page_reporting": True})
    vm.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": uds})
    vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    first_reply(uds, time.perf_counter(), timeout=300)
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    state, mem = os.path.join(workdir, "fn.state"), os.path.join(workdir, "fn.mem")
    vm.ok("PUT", "/snapshot/create", {"snapshot_path": state, "mem_file_path": mem})
    vm.stop()
    return state, mem


def say(msg):
    print(f"density: {msg}", file=sys.stderr, flush=True)


def post_mortem(vm):
    """What a clone that failed was doing: its console's end and its threads' wait points."""
    try:
        with open(os.path.join(vm.workdir, vm.name + ".console"), "rb") as f:
            tail = f.read()[-2000:].decode(errors="replace")
        say(f"{vm.name}: console ends:\n{tail}")
        task = f"/proc/{vm.proc.pid}/task"
        for tid in sorted(os.listdir(task)):
            with open(f"{task}/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"{task}/{tid}/wchan") as f:
                wchan = f.read().strip()
            say(f"{vm.name}: thread {tid} {comm}: waits in {wchan}")
    except OSError as e:
        say(f"{vm.name}: no post-mortem: {e}")


def answers(uds, attempts=3):
    """None when the clone's agent answers on vsock within `attempts` requests (as a client
    would retry), else why the last one failed."""
    why = None
    for _ in range(attempts):
        why = ask(uds, timeout=30)
        if why is None:
            return None
        time.sleep(1)
    return why


def heartbeat(period=30):
    """Every period s, a line on stderr with the processes in D state and where they wait:
    a run that stops printing these has a host (L1) that stopped, not a clone that hangs."""
    def beat():
        while True:
            time.sleep(period)
            stuck = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        st = f.read()
                    if st.rpartition(")")[2].split()[0] != "D":
                        continue
                    with open(f"/proc/{pid}/wchan") as f:
                        stuck.append(f"{pid}({st.split('(')[1].split(')')[0]}):{f.read()}")
                except OSError:
                    pass
            say(f"alive {time.strftime('%H:%M:%S')}; in D state: {' '.join(stuck) or '-'}")
    threading.Thread(target=beat, daemon=True).start()


def restore(workdir, state, mem, name, variant):
    vm = Vm(workdir, name, timeout=API_TIMEOUT_S)  # a host busy with N guests starts slowly
    uds = os.path.join(workdir, name + ".vsock")
    try:
        vm.ok("PUT", "/snapshot/load", {"snapshot_path": state, "resume_vm": True,
                                        "mem_backend": {"backend_type": "File",
                                                        "backend_path": mem},
                                        "vsock_override": {"uds_path": uds}})
        if variant == "balloon":
            vm.ok("PATCH", "/balloon", {"amount_mib": BALLOON_MIB})
    except Exception:
        post_mortem(vm)
        vm.stop()
        raise
    return vm, uds


def guest_resident():
    """Bytes of guest memory resident over every Ember (ember --print-memory-stats)."""
    r = subprocess.run([EMBER, "--print-memory-stats", "--json"], capture_output=True,
                       text=True)
    if r.returncode:
        print(f"density: ember --print-memory-stats: {r.stderr.strip()}", file=sys.stderr)
        return None
    return json.loads(r.stdout)["total"]["rss_bytes"]


def ksm_read(name):
    with open(os.path.join(KSM, name)) as f:
        return int(f.read())


def ksm_settle(timeout=900):
    """Starts ksmd fast; once it has made two full scans since (a page is merged on the
    second pass that sees it unchanged), waits until pages_sharing stops growing."""
    for k, v in (("pages_to_scan", "5000"), ("sleep_millisecs", "10"), ("run", "1")):
        with open(os.path.join(KSM, k), "w") as f:
            f.write(v)
    scans0, t0 = ksm_read("full_scans"), time.monotonic()
    last, stable, deadline = -1, 0, t0 + timeout
    while time.monotonic() < deadline and stable < 3:
        time.sleep(2)
        now = ksm_read("pages_sharing")
        if ksm_read("full_scans") < scans0 + 2:
            continue
        stable = stable + 1 if now == last else 0
        last = now
    say(f"ksm: {ksm_read('full_scans') - scans0} full scans in {time.monotonic() - t0:.0f} s, "
        f"pages_sharing {ksm_read('pages_sharing')}, pages_shared {ksm_read('pages_shared')}")
    return ksm_read("pages_sharing")


def ksm_stop():
    try:
        with open(os.path.join(KSM, "run"), "w") as f:
            f.write("2")  # stop and unmerge
    except OSError:
        pass


def measure(workdir, state, mem, n, variant, settle, budget_s):
    avail0 = meminfo("MemAvailable")
    vms, limit, last = [], None, []
    t0 = time.perf_counter()
    for i in range(n):
        if meminfo("MemAvailable") < RESERVE_MIB << 20:
            limit = f"host memory: under {RESERVE_MIB} MiB available after {i} clones"
            break
        if time.perf_counter() - t0 > budget_s:
            limit = (f"time: the {budget_s / 60:.0f} min budget ran out after {i} clones, "
                     f"each restore taking {statistics.median(last):.1f} s by then "
                     "(host CPU)")
            break
        t1 = time.perf_counter()
        try:
            vms.append(restore(workdir, state, mem, f"n{n}-{i}", variant))
        except (RuntimeError, OSError) as e:
            limit = f"clone {i} failed to restore: {e}"
            break
        last = (last + [time.perf_counter() - t1])[-25:]
        if (i + 1) % 25 == 0:
            say(f"{variant}: {i + 1}/{n} restored in {time.perf_counter() - t0:.1f} s, "
                f"{meminfo('MemAvailable') >> 20} MiB available")
    restore_s = time.perf_counter() - t0
    time.sleep(settle)
    sharing = ksm_settle() if variant == "ksm" else None
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        why = list(pool.map(answers, [uds for _, uds in vms]))  # None: answered
    answered = why.count(None)
    failures = {w: why.count(w) for w in set(why) if w is not None}
    per = [rollup(vm.proc.pid) for vm, _ in vms]
    resident = guest_resident()
    avail1 = meminfo("MemAvailable")
    for vm, _ in vms:
        vm.stop()
    if variant == "ksm":
        ksm_stop()
    k = len(vms) or 1
    return {"variant": variant, "asked": n, "restored": len(vms), "answered": answered,
            "limited_by": limit, "restore_all_s": round(restore_s, 2),
            "pss_mib_per_clone": round(sum(p for p, _ in per) / k / 2**20, 2),
            "private_mib_per_clone": round(sum(q for _, q in per) / k / 2**20, 2),
            "guest_resident_mib_per_clone": None if resident is None
            else round(resident / k / 2**20, 2),
            "host_available_drop_mib_per_clone": round((avail0 - avail1) / k / 2**20, 2),
            "ksm_pages_sharing": sharing, "vsock_failures": failures,
            "last_restores_median_s": round(statistics.median(last), 2) if last else None}


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def merged(cases):
    """The cases of bench/results/density.json that this run did not measure again (by
    variant and N), then this run's: runs with different --variants or --counts add up."""
    try:
        with open(os.path.join(RESULTS, "density.json")) as f:
            old = json.load(f)["cases"]
    except (OSError, ValueError, KeyError):
        old = []
    new = {(c["variant"], c["asked"]) for c in cases}
    order = {"plain": 0, "ksm": 1, "balloon": 2}
    return sorted([c for c in old if (c["variant"], c["asked"]) not in new] + cases,
                  key=lambda c: (order.get(c["variant"], 9), c["asked"]))


def write(res, new):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "density.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    rows = [f"| {c['variant']} | {c['asked']} | {c['restored']} | {c['answered']} | "
            f"{c['restore_all_s']} | {c['pss_mib_per_clone']} | {c['private_mib_per_clone']} | "
            f"{c['guest_resident_mib_per_clone']} | {c['host_available_drop_mib_per_clone']} | "
            f"{c['limited_by'] or ''} | {c.get('commit', '')} {c.get('date', '')[:10]} |"
            for c in res["cases"]]
    best = max((c["answered"] for c in res["cases"]), default=0)
    md = f"""# Density: idle clones of one 128 MiB Linux guest ({res['date']})

`bench/density.py`; environment: {json.dumps(res['environment'])}; each case names the
Ember commit and the date it was measured at (`--merge` runs add up).
One snapshot (Full, File backend) of a 128 MiB guest with the agent on vsock; N clones
restored one after another, each its own Ember, idle {res['settle_s']} s, then measured.

| variant | N asked | restored | answer on vsock | restore all (s) | PSS per clone (MiB) | private per clone (MiB) | guest memory resident per clone (MiB) | MemAvailable drop per clone (MiB) | limited by | commit, date |
|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Most clones reached and answering: {best}. Target (issue 9): under 4 MiB private per idle
clone, and 500 idle clones of 128 MiB on a 24 GiB host (2.7 times overcommit). What the
figures mean, and what limited the count here: docs/memory.md, "Density".
"""
    with open(os.path.join(RESULTS, "density.md"), "w") as f:
        f.write(md)
    if new is None:
        print(md)
        return
    with open(os.path.join(RESULTS, "history.jsonl"), "a") as f:
        f.write(json.dumps({"bench": "density", "date": res["date"], "commit": res["commit"],
                            "cases": new}) + "\n")
    print(md)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="50,200,500")
    ap.add_argument("--variants", default="plain,ksm,balloon")
    ap.add_argument("--settle", type=float, default=10)
    ap.add_argument("--budget-min", type=float, default=60,
                    help="stop adding clones to one N after this many minutes, and measure")
    ap.add_argument("--merge", action="store_true",
                    help="keep the cases of bench/results/density.json this run does not redo")
    ap.add_argument("--rerender", action="store_true",
                    help="only write density.md again from density.json")
    args = ap.parse_args()
    if args.rerender:
        with open(os.path.join(RESULTS, "density.json")) as f:
            write(json.load(f), None)
        return
    os.environ.setdefault("EMBER_L1_MEM", "16G")
    # With hundreds of guests, L1's TSC-deadline timer was once left hours in the future
    # (QEMU's TCG SVM, 2 runs of 2 stopped dead); the APIC's own one-shot timer does not.
    os.environ.setdefault("EMBER_L1_APPEND", "lapic=notscdeadline")
    socket.setdefaulttimeout(API_TIMEOUT_S)  # an API request that hangs fails the clone
    on_real_kvm("density", __file__)
    heartbeat()
    images = Images(build=False)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    cases = []
    for variant in args.variants.split(","):
        workdir = tempfile.mkdtemp(prefix="ember-density-")
        try:
            state, mem = make_snapshot(workdir, images, variant)
            for n in (int(x) for x in args.counts.split(",")):
                c = measure(workdir, state, mem, n, variant, args.settle,
                            args.budget_min * 60)
                c.update(commit=commit, date=now())
                cases.append(c)
                print(json.dumps(c), flush=True)
                if c["limited_by"]:
                    break
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    write({"date": now(), "commit": commit, "settle_s": args.settle,
           "environment": environment(), "cases": merged(cases) if args.merge else cases},
          cases)


if __name__ == "__main__":
    main()
