#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Start-up overhead: Ember against QEMU's microvm, in the same run.

Both boot the same PVH payload (build/tests/guest/exit-now.elf), whose first instructions
write one byte to the serial port and then 0 to the debug-exit port 0xf4. A small C
launcher (build/bench/spawn) forks the VMM with its stdout on a pipe and records, from
just before fork(): the first byte on stdout (process start to the first guest
instruction, plus one port exit) and the exit (VM tear-down included), and the peak RSS
from wait4().

Runs alternate between the two VMMs so that machine noise hits both alike. Results go to
bench/results/startup.json and .md, and a line is appended to bench/results/history.jsonl.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBER = os.path.join(ROOT, "build", "ember")
SPAWN = os.path.join(ROOT, "build", "bench", "spawn")
PAYLOAD = os.path.join(ROOT, "build", "tests", "guest", "exit-now.elf")
RESULTS = os.path.join(ROOT, "bench", "results")
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
MEM_MIB = 128
QEMU = ["qemu-system-x86_64", "-M", "microvm,acpi=off,x-option-roms=off", "-nodefaults",
        "-no-user-config", "-enable-kvm", "-m", str(MEM_MIB), "-smp", "1",
        "-display", "none", "-serial", "stdio",
        "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", PAYLOAD]
FIRST_INSN = re.compile(r"guest wrote 0 to the debug-exit port at (\d+) us")


def run(argv):
    """Runs argv under build/bench/spawn; returns its JSON result."""
    p = subprocess.run([SPAWN] + argv, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, check=True)
    return json.loads(p.stdout)


def summary(values):
    values = sorted(values)
    q = statistics.quantiles(values, n=10) if len(values) >= 2 else values * 9
    return {"median": statistics.median(values), "p10": q[0], "p90": q[-1],
            "min": values[0], "max": values[-1], "n": len(values)}


def main():
    for path in (EMBER, PAYLOAD, SPAWN):
        if not os.path.exists(path):
            sys.exit(f"bench: {path} is missing; run make bench")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "vm.json")
        with open(cfg, "w") as f:
            json.dump({"boot-source": {"kernel_image_path": PAYLOAD},
                       "machine-config": {"vcpu_count": 1, "mem_size_mib": MEM_MIB}}, f)
        ember_argv = [EMBER, "--config-file", cfg, "--no-api", "--debug-exit",
                      "--level", "Warning"]
        m = {k: [] for k in ("e_first", "e_exit", "e_rss", "q_first", "q_exit", "q_rss")}
        for i in range(RUNS + 2):
            e = run(ember_argv)
            q = run(QEMU)
            if e["code"] != 0 or e["stdout_bytes"] < 1:
                sys.exit(f"bench: ember failed: {e}")
            if q["code"] != 1 or q["stdout_bytes"] < 1:  # isa-debug-exit: (0 << 1) | 1
                sys.exit(f"bench: qemu failed: {q}")
            if i < 2:
                continue  # warm-up: page cache, first exec
            for k, r in (("e", e), ("q", q)):
                m[k + "_first"].append(r["first_byte_us"] / 1000)
                m[k + "_exit"].append(r["exit_us"] / 1000)
                m[k + "_rss"].append(r["maxrss_kib"] / 1024)
    res = {
        "benchmark": "startup",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": os.uname().nodename,
        "runs": RUNS,
        "guest_mem_mib": MEM_MIB,
        "peer": "qemu-system-x86_64 -M microvm,acpi=off,x-option-roms=off (isa-debug-exit)",
        "ember": {"first_insn_ms": summary(m["e_first"]), "exit_ms": summary(m["e_exit"]),
                  "peak_rss_mib": summary(m["e_rss"])},
        "qemu_microvm": {"first_insn_ms": summary(m["q_first"]),
                         "exit_ms": summary(m["q_exit"]), "peak_rss_mib": summary(m["q_rss"])},
    }
    for k in ("first_insn_ms", "exit_ms", "peak_rss_mib"):
        res["ratio_" + k] = (res["qemu_microvm"][k]["median"] / res["ember"][k]["median"])
    write(res)


def write(res):
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "startup.json"), "w") as f:
        json.dump(res, f, indent=2)
    with open(os.path.join(RESULTS, "history.jsonl"), "a") as f:
        f.write(json.dumps(res) + "\n")
    e, q = res["ember"], res["qemu_microvm"]
    def cell(d):
        return f"{d['median']:.2f} (p10 {d['p10']:.2f}, p90 {d['p90']:.2f})"

    rows = [("process start to first guest instruction (ms)", "first_insn_ms"),
            ("process start to exit (ms)", "exit_ms"),
            ("peak RSS (MiB)", "peak_rss_mib")]
    table = "\n".join(f"| {label} | {cell(e[k])} | {cell(q[k])} | {res['ratio_' + k]:.1f}x |"
                      for label, k in rows)
    md = f"""# Start-up overhead ({res['date']}, {res['runs']} runs each, medians)

Payload: build/tests/guest/exit-now.elf (PVH; its first instructions write one serial byte,
then the debug-exit port). Guest memory {res['guest_mem_mib']} MiB, 1 vCPU.
Peer, in the same run, alternating: {res['peer']}.
"First guest instruction" is the arrival of the payload's first serial byte on the VMM's
stdout, timed by build/bench/spawn from just before fork().

| | Ember | QEMU microvm | QEMU / Ember |
|---|---|---|---|
{table}

Targets: start-up overhead (first row) at least 10x below QEMU's; peak RSS under 3 MiB
plus the guest memory actually touched (Ember's whole RSS, touched guest pages included,
is the figure above). "Exit" includes the kernel's tear-down of the VM, which both VMMs
pay and which on a loaded or nested host varies from a few to tens of milliseconds.
Earlier runs: bench/results/history.jsonl.
"""
    with open(os.path.join(RESULTS, "startup.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
