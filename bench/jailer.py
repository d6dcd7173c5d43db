#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The jailer's cost (docs/jailer.md), as root.

  1. Start to API ready, over RUNS runs each, alternating: Ember started bare
     (`ember --api-sock PATH`), and Ember started by `ember-jailer` (with no --cgroup, and
     with two: cpu.shares and pids.max), from just before the spawn to the first GET /
     answered on the API socket (inside the jail for the jailed ones). The ratio of the
     medians is the jailer's overhead.
  2. 1, 10 and 50 jails started in parallel (all spawned at once, then every socket polled):
     the wall time from the first spawn to the last API ready, and each jail's own spawn
     to ready (median over the jails), REPS times each; the number of host mounts
     (lines of /proc/self/mountinfo) before and while the jails are up.
  3. The same start-to-ready with more mounts on the host: step 7 (unshare(CLONE_NEWNS))
     copies the caller's mount table, which is why Firecracker's jail cost grows with the
     host's mounts. The bench re-runs part 1 inside a private mount namespace of its own
     (`unshare -m`) with 0, 1000 and 5000 extra tmpfs mounts, so the host is untouched.

Results go to bench/results/jailer.json and jailer.md, and a line is appended to
bench/results/history.jsonl.

    /usr/bin/python3 bench/jailer.py [--runs N] [--reps N]
"""
import argparse
import ctypes
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from proc_helpers import cgroup_mount_points  # noqa: E402

EMBER_SRC = ROOT / "build" / "ember"
JAILER = ROOT / "build" / "ember-jailer"
RESULTS = ROOT / "bench" / "results"
UID = GID = 10007
PARENT = f"ember-bench-{os.getpid()}"
PARALLEL = (1, 10, 50)
EXTRA_MOUNTS = (0, 1000, 5000)
GET_ROOT = b"GET / HTTP/1.1\r\n\r\n"


def summary(values, scale=1.0):
    v = sorted(x * scale for x in values)
    return {"median": statistics.median(v), "p10": v[(len(v) - 1) // 10],
            "p90": v[(len(v) - 1) * 9 // 10], "min": v[0], "max": v[-1], "n": len(v)}


def answers(path):
    """True when the API socket at path answers GET / with 200."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        s.sendall(GET_ROOT)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return False
            data += chunk
        return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        s.close()


def mounts():
    with open("/proc/self/mountinfo") as f:
        return sum(1 for _ in f)


class Run:
    """One Ember, bare or jailed, spawned now; ready() polls its socket."""

    def __init__(self, work, name, jailed, cgroups=()):
        self.work, self.name, self.jailed = work, name, jailed
        if jailed:
            self.jail_dir = work / "jails" / "ember" / name
            self.sock = self.jail_dir / "root" / "run" / "api.sock"
            cg = [a for c in cgroups for a in ("--cgroup", c)]
            argv = [str(JAILER), "--id", name, "--exec-file", str(work / "ember"),
                    "--uid", str(UID), "--gid", str(GID),
                    "--chroot-base-dir", str(work / "jails"), "--parent-cgroup", PARENT,
                    *cg, "--", "--api-sock", "run/api.sock", "--level", "Warning"]
        else:
            self.sock = work / f"{name}.sock"
            argv = [str(work / "ember"), "--api-sock", str(self.sock), "--level", "Warning"]
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.t_ready = None

    def poll(self):
        if self.t_ready is None and answers(self.sock):
            self.t_ready = time.perf_counter()
        if self.t_ready is None and self.proc.poll() is not None:
            raise SystemExit(f"bench: {self.name} exited with {self.proc.returncode}: "
                             f"{self.proc.stderr.read().decode()}")
        return self.t_ready is not None

    def wait_ready(self, timeout=10):
        deadline = time.perf_counter() + timeout
        while not self.poll():
            if time.perf_counter() > deadline:
                raise SystemExit(f"bench: {self.name} not ready within {timeout} s")
        return self.t_ready - self.t0

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()
        if self.jailed:
            shutil.rmtree(self.jail_dir, ignore_errors=True)
            for mnt in cgroup_mount_points():
                p = Path(mnt) / PARENT / self.name
                if p.is_dir():
                    p.rmdir()


def start_to_ready(work, runs):
    """Part 1: bare, jailed, jailed with cgroups, alternating; ms medians."""
    kinds = {"bare": (False, ()), "jailed": (True, ()),
             "jailed_cgroups": (True, ("cpu.shares=512", "pids.max=100"))}
    times = {k: [] for k in kinds}
    for i in range(runs + 2):
        for kind, (jailed, cgroups) in kinds.items():
            r = Run(work, f"s{i}-{kind.replace('_', '-')}", jailed, cgroups)
            try:
                t = r.wait_ready()
            finally:
                r.stop()
            if i >= 2:  # warm-up: page cache, first exec
                times[kind].append(t)
    res = {k: summary(v, 1e3) for k, v in times.items()}
    res["ratio_jailed"] = res["jailed"]["median"] / res["bare"]["median"]
    res["ratio_jailed_cgroups"] = res["jailed_cgroups"]["median"] / res["bare"]["median"]
    res["jailer_overhead_ms"] = res["jailed"]["median"] - res["bare"]["median"]
    return res


def parallel(work, n, reps):
    """Part 2: n jails at once, reps times."""
    walls, per_jail, during = [], [], []
    for rep in range(reps):
        runs = []
        try:
            for k in range(n):
                runs.append(Run(work, f"p{n}-{rep}-{k}", True, ("pids.max=100",)))
            pending = list(runs)
            deadline = time.perf_counter() + 60
            while pending:
                pending = [r for r in pending if not r.poll()]
                if time.perf_counter() > deadline:
                    raise SystemExit(f"bench: {len(pending)} of {n} jails not ready in 60 s")
            during.append(mounts())
            walls.append(max(r.t_ready for r in runs) - runs[0].t0)
            per_jail += [r.t_ready - r.t0 for r in runs]
        finally:
            for r in runs:
                r.stop()
    return {"jails": n, "reps": reps, "wall_ms": summary(walls, 1e3),
            "per_jail_ms": summary(per_jail, 1e3), "host_mounts_during": max(during)}


def inner(extra, runs):
    """Part 3, inside `unshare -m`: extra tmpfs mounts, then part 1 (bare and jailed)."""
    libc = ctypes.CDLL(None, use_errno=True)
    mdir = tempfile.mkdtemp(prefix="ember-bench-mnt-")
    made = []
    try:
        for k in range(extra):
            d = os.path.join(mdir, str(k)).encode()
            os.mkdir(d)
            made.append(d)
            if libc.mount(b"none", d, b"tmpfs", 0, b"size=4k"):
                raise OSError(ctypes.get_errno(), f"mount tmpfs on {d}")
        n = mounts()
        with tempfile.TemporaryDirectory(prefix="ember-bench-") as tmp:
            work = Path(tmp)
            shutil.copy2(EMBER_SRC, work / "ember")
            (work / "jails").mkdir()
            res = start_to_ready(work, runs)
    finally:
        for d in made:
            libc.umount2(d, 2)  # MNT_DETACH
        shutil.rmtree(mdir, ignore_errors=True)
        remove_parent_cgroups()
    print(json.dumps({"mounts": n, "extra": extra, "res": res}))


def remove_parent_cgroups():
    for mnt in cgroup_mount_points():
        p = Path(mnt) / PARENT
        if p.is_dir():
            p.rmdir()


def mount_scaling(runs):
    out = []
    for extra in EXTRA_MOUNTS:
        p = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable,
                            __file__, "--inner", str(extra), "--runs", str(runs)],
                           capture_output=True, text=True, check=True)
        r = json.loads(p.stdout.strip().splitlines()[-1])
        out.append({"extra_mounts": extra, "mounts_in_namespace": r["mounts"],
                    "bare_ms": r["res"]["bare"], "jailed_ms": r["res"]["jailed"],
                    "jailer_overhead_ms": r["res"]["jailer_overhead_ms"]})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "30")))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--inner", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: the jailer needs root")
    for p in (EMBER_SRC, JAILER):
        if not p.exists():
            sys.exit(f"bench: {p} is missing; run make")
    if args.inner is not None:
        return inner(args.inner, args.runs)
    load_before = os.getloadavg()
    try:
        with tempfile.TemporaryDirectory(prefix="ember-bench-") as tmp:
            work = Path(tmp)
            shutil.copy2(EMBER_SRC, work / "ember")
            (work / "jails").mkdir()
            before = mounts()
            start = start_to_ready(work, args.runs)
            par = [parallel(work, n, args.reps) for n in PARALLEL]
    finally:
        remove_parent_cgroups()
    scaling = mount_scaling(max(10, args.runs // 3))
    res = {
        "benchmark": "jailer",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": os.uname().nodename,
        "kernel": os.uname().release,
        "cpus": os.cpu_count(),
        "runs": args.runs,
        "host_mounts": before,
        "start_to_api_ready": start,
        "parallel": par,
        "mount_scaling": scaling,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
    write(res)


def cell(d):
    return f"{d['median']:.2f} (p10 {d['p10']:.2f}, p90 {d['p90']:.2f})"


def write(res):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "jailer.json").write_text(json.dumps(res, indent=2) + "\n")
    with open(RESULTS / "history.jsonl", "a") as f:
        f.write(json.dumps(res) + "\n")
    s = res["start_to_api_ready"]
    par = "\n".join(
        f"| {p['jails']} | {p['reps']} | {cell(p['wall_ms'])} | {cell(p['per_jail_ms'])} | "
        f"{p['host_mounts_during']} |" for p in res["parallel"])
    scal = "\n".join(
        f"| {m['extra_mounts']} | {m['mounts_in_namespace']} | {cell(m['bare_ms'])} | "
        f"{cell(m['jailed_ms'])} | {m['jailer_overhead_ms']:.2f} |"
        for m in res["mount_scaling"])
    md = f"""# The jailer's cost ({res['date']}, host {res['host']})

`bench/jailer.py` (`make bench-jailer`), as root, on this host ({res['cpus']} cores shared
with other jobs, Linux {res['kernel']}; {res['host_mounts']} host mounts; load average
{res['loadavg_before'][0]:.2f} before, {res['loadavg_after'][0]:.2f} after). Times in ms,
medians with p10 and p90. The jail's exec-file is a copy of `build/ember`, dynamically
linked, so each jail also gets its loader and six libraries copied in (docs/jailer.md,
step 3).

## Start to API ready ({res['runs']} runs each, alternating)

From just before the spawn to the first `GET /` answered on the API socket.

| | ms | / bare |
|---|---|---|
| `ember --api-sock` (bare) | {cell(s['bare'])} | 1 |
| `ember-jailer ... -- --api-sock run/api.sock` (no cgroups) | {cell(s['jailed'])} | {s['ratio_jailed']:.2f}x |
| the same with `--cgroup cpu.shares=512 --cgroup pids.max=100` | {cell(s['jailed_cgroups'])} | {s['ratio_jailed_cgroups']:.2f}x |

The jailer adds {s['jailer_overhead_ms']:.2f} ms to Ember's start (median against median).

## Jails started in parallel (`--cgroup pids.max=100` each)

All N jailers are spawned at once, then every API socket is polled. Wall: the first spawn
to the last API ready; per jail: each jail's own spawn to its API ready (over all reps).
The host's mount count does not grow with the jails: each jail's bind mount lives in its
own mount namespace.

| jails | reps | wall (ms) | per jail (ms) | host mounts while up |
|---|---|---|---|---|
{par}

## Host mounts

Step 7 (`unshare(CLONE_NEWNS)`) copies the caller's mount table before the jail's root is
pivoted in and the rest detached, so a jail's cost grows with the host's mounts, as
Firecracker's does. Measured in a private mount namespace of the bench's own with extra
tmpfs mounts (the host is untouched), {res['mount_scaling'][0]['bare_ms']['n']} runs each:

| extra mounts | mounts in the namespace | bare (ms) | jailed (ms) | jailer overhead (ms) |
|---|---|---|---|---|
{scal}
"""
    (RESULTS / "jailer.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
