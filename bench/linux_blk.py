#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""virtio-blk seen from a Linux guest: Ember against QEMU's microvm with a
virtio-blk-device, the same kernel, root image and data image, on the same host.

Each run boots the default guest (1 vCPU, 256 MiB, the ext4 root from a drive) with a
second, raw data drive of DATA_MIB, and runs busybox dd with O_DIRECT on it:
  - seq-write: dd if=/dev/zero of=/dev/vdb bs=1M count=DATA_MIB oflag=direct conv=fsync
  - seq-read:  dd if=/dev/vdb of=/dev/null bs=1M iflag=direct
  - rand-4k:   dd if=/dev/vdb bs=4k iflag=direct, RAND_READS reads at offsets from a fixed list
               (busybox has no fio; one dd per block, so this is mostly the guest's exec
               cost: it is reported, but read it as a sanity check, not as IOPS)
timed in the guest with /proc/uptime. Each io_engine is compared with QEMU's nearest
backend: Sync with aio=threads, Async with aio=io_uring (cache=writeback for both; Ember's
drive is cache_type Writeback, so FLUSH reaches the host as fdatasync, as in QEMU).

Runs alternate between the VMMs so that noise hits both alike. On a host without vmx/svm
the benchmark runs inside the real-KVM bench (tests/bench-vm/run-in-l1), where the guest's
CPU is emulated by TCG: the absolute MiB/s say little, the ratio says how much each VMM's
device model adds. Results: bench/results/linux_blk.json and .md.

    bench/linux_blk.py [--runs 5] [--engines Sync,Async]
"""
import os
import re
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from framework.microvm import Microvm  # noqa: E402
from linux_boot import (BINARIES, Images, command_line, environment, run_to_exit,  # noqa: E402
                        start, summary, write_json, write_md)

VCPUS, MEM_MIB, DATA_MIB, RAND_READS = 1, 256, 64, 200
QEMU_AIO = {"Sync": "aio=threads", "Async": "aio=io_uring"}


def guest_script():
    t = "$(cut -d' ' -f1 /proc/uptime)"
    blocks = DATA_MIB * 256
    return "; ".join([
        f"t0={t}",
        f"dd if=/dev/zero of=/dev/vdb bs=1M count={DATA_MIB} oflag=direct conv=fsync "
        "2>/dev/null",
        f"t1={t}",
        "echo 3 > /proc/sys/vm/drop_caches",
        f"t2={t}",
        "dd if=/dev/vdb of=/dev/null bs=1M iflag=direct 2>/dev/null",
        f"t3={t}",
        f"i=0; o=0; while [ $i -lt {RAND_READS} ]; do o=$(( (o + 7919) % {blocks} )); "
        "dd if=/dev/vdb of=/dev/null bs=4k count=1 skip=$o iflag=direct 2>/dev/null; "
        "i=$((i + 1)); done",
        f"t4={t}",
        'echo "blk-times $t0 $t1 $t2 $t3 $t4"',
    ])


def one_run(vmm, engine, images, workdir, timeout):
    vm = Microvm(vmm, BINARIES[vmm], workdir, images, vmm, engine)
    vm.basic_config(vcpu_count=VCPUS, mem_size_mib=MEM_MIB, cmd=guest_script())
    data = os.path.join(workdir, "data.img")
    with open(data, "wb") as f:
        f.truncate(DATA_MIB << 20)
    vm.add_drive("data", data, cache_type="Writeback")
    vm.config["drives"][0]["cache_type"] = "Writeback"
    timed_out = run_to_exit(vm, timeout)
    if timed_out:
        return timed_out
    m = re.search(r"^blk-times ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+)$", vm.console, re.M)
    if not m or vm.returncode != 0 or vm.guest_exit != 0:
        return {"ok": False, "why": f"exit code {vm.returncode}, guest exit {vm.guest_exit}: "
                                    + " | ".join(vm.console.splitlines()[-4:])}
    t = [float(x) for x in m.groups()]
    if min(t[1] - t[0], t[3] - t[2], t[4] - t[3]) <= 0:
        return {"ok": False, "why": f"a zero time: {t}"}
    return {"ok": True,
            "seq_write_mib_s": DATA_MIB / (t[1] - t[0]),
            "seq_read_mib_s": DATA_MIB / (t[3] - t[2]),
            "rand_4k_reads_s": RAND_READS / (t[4] - t[3])}


METRICS = [("seq_write_mib_s", "1 MiB sequential write (MiB/s)"),
           ("seq_read_mib_s", "1 MiB sequential read (MiB/s)"),
           ("rand_4k_reads_s", "4 KiB random reads, one dd each (reads/s)")]


def write_results(res):
    write_json("linux_blk", res)
    lines = ["# virtio-blk in a Linux guest: Ember vs QEMU microvm", "",
             f"Default guest, {VCPUS} vCPU, {MEM_MIB} MiB, ext4 root from a drive, and a raw "
             f"{DATA_MIB} MiB data drive (cache Writeback on both VMMs); busybox dd with "
             f"O_DIRECT in the guest, timed with /proc/uptime; {res['runs']} runs per VMM and "
             "engine, alternating. Ember's Sync engine is set beside QEMU's aio=threads, "
             "Async beside aio=io_uring. "
             + ("Measured inside the real-KVM bench (nested, TCG L1), where the guest's CPU "
                "is emulated: compare the VMMs, not the absolute figures."
                if res["environment"]["in_real_kvm_bench"] else ""), "",
             "| engine | workload | Ember median | QEMU median | Ember / QEMU | failed runs |",
             "|---|---|---|---|---|---|"]
    for engine, r in res["engines"].items():
        for key, label in METRICS:
            e, q = r["ember"][key], r["qemu"][key]
            ratio = r["ratio"].get(key)
            lines.append(f"| {engine} | {label} | {e['median'] if e else '-'} | "
                         f"{q['median'] if q else '-'} | {ratio if ratio else '-'} | "
                         f"{r['ember']['failed']} / {r['qemu']['failed']} |")
    lines += ["", "A ratio above 1 means Ember is faster. p10/p90 are in linux_blk.json. The "
                  "sequential runs take about a second each and /proc/uptime counts in 10 ms "
                  "steps, hence the repeated values; differences under about 10 % are within "
                  "that and the bench's noise. The host-side device-model figures are in "
                  "blk.md."]
    for engine, r in res["engines"].items():
        for vmm in ("ember", "qemu"):
            if r[vmm]["failures"]:
                lines += ["", f"{engine} {vmm} failures (first): {r[vmm]['failures'][0]}"]
    write_md("linux_blk", lines)


def main():
    args = command_line("virtio-blk in a Linux guest, Ember vs QEMU", 5, "--engines", "Sync,Async",
                        300)
    engines = args.engines.split(",")
    start("linux_blk", __file__)
    images = Images(build=False)
    res = {"bench": "linux_blk", "runs": args.runs, "vcpus": VCPUS, "mem_mib": MEM_MIB,
           "data_mib": DATA_MIB, "environment": environment(),
           "peer": "qemu-system-x86_64 -M microvm -device virtio-blk-device",
           "engines": {}}
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for engine in engines:
            runs = {"ember": [], "qemu": []}
            for i in range(args.runs):
                for vmm in runs:
                    r = one_run(vmm, engine, images, os.path.join(tmp, f"{engine}-{vmm}-{i}"),
                                args.timeout)
                    runs[vmm].append(r)
                    state = (", ".join(f"{k} {r[k]:.1f}" for k, _ in METRICS) if r["ok"]
                             else f"FAILED: {r['why']}")
                    print(f"linux_blk: {engine} run {i + 1}/{args.runs} {vmm}: {state}",
                          file=sys.stderr)
            out = {"ratio": {}}
            for vmm, rs in runs.items():
                ok = [r for r in rs if r["ok"]]
                failed += len(rs) - len(ok)
                out[vmm] = {key: summary([r[key] for r in ok]) for key, _ in METRICS}
                out[vmm]["failed"] = len(rs) - len(ok)
                out[vmm]["failures"] = [r["why"] for r in rs if not r["ok"]][:3]
            for key, _ in METRICS:
                e, q = out["ember"][key], out["qemu"][key]
                out["ratio"][key] = round(e["median"] / q["median"], 2) if e and q else None
            out["qemu_backend"] = QEMU_AIO[engine]
            res["engines"][engine] = out
    write_results(res)
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
