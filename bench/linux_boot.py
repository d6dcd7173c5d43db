#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Linux boot time: Ember against QEMU's microvm, same kernel, same initramfs, same host.

Each run boots the default guest (resources/guest: the PVH vmlinux and the busybox
initramfs) with 1 vCPU and 128 MiB and the command `true`, and measures, from just before
the VMM process is started:
  - boot:  the console line "EMBER-INIT: boot-complete", which the guest's /init prints
           right after its boot-complete write to 0xd0000000 (the same signal for both);
  - exit:  the VMM's exit after the guest resets (reboot=k on Ember, reboot=t on QEMU,
           which has no i8042).
For Ember it also keeps the figure Ember logs itself (--boot-timer: Guest-boot-time).

The time is broken down into VMM set-up, kernel boot and init. VMM set-up is measured on
its own, in the same place: each VMM boots build/tests/guest/exit-now.elf, whose first
instruction writes a byte to the serial port, and build/bench/spawn times that byte
(median of SETUP_RUNS). Kernel boot is from there to the console line "Run /init as init
process"; init is from that line to boot-complete.

Runs alternate between the VMMs so that noise hits both alike. On a host without vmx/svm
the whole benchmark runs inside the real-KVM bench (tests/bench-vm/run-in-l1), where boots
are slower than on real hardware: compare the two VMMs, not the absolute numbers.
Results: bench/results/linux_boot.json and .md.

    bench/linux_boot.py [--runs 10] [--vmm ember,qemu]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from framework.api_microvm import ApiMicrovm  # noqa: E402
from framework.microvm import INIT_BOOT, Microvm, VmmTimeout  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results")
SPAWN = os.path.join(ROOT, "build", "bench", "spawn")
EXIT_NOW = os.path.join(ROOT, "build", "tests", "guest", "exit-now.elf")
KERNEL_DONE = "Run /init as init process"
SETUP_RUNS = 20
BINARIES = {"ember": os.path.join(ROOT, "build", "ember"), "qemu": "qemu-system-x86_64"}
VCPUS, MEM_MIB = 1, 128


class Images:
    def __init__(self, build):
        script = os.path.join(ROOT, "resources", "guest", "guest-images.sh")
        out = subprocess.run([script] + (["--build"] if build else []), stdout=subprocess.PIPE,
                             text=True, check=True).stdout
        paths = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        self.vmlinux = paths["GUEST_VMLINUX"]
        self.bzimage = paths["GUEST_BZIMAGE"]
        self.initramfs = paths["GUEST_INITRAMFS"]
        self.rootfs_ext4 = paths["GUEST_ROOTFS_EXT4"]


def run_to_exit(vm, timeout):
    """Spawns vm and waits up to timeout s for its exit, and kills it in any case. Returns
    None, or a failed run's result if it timed out."""
    try:
        vm.spawn()
        vm.wait_for_exit(timeout)
    except VmmTimeout as e:
        return {"ok": False, "why": str(e).splitlines()[0]}
    finally:
        vm.kill()
    return None


def one_run(vmm, images, workdir, timeout):
    vm = Microvm(vmm, BINARIES[vmm], workdir, images, vmm)
    vm.basic_config(vcpu_count=VCPUS, mem_size_mib=MEM_MIB, cmd="true", initrd=True,
                    rootfs=False)
    timed_out = run_to_exit(vm, timeout)
    if timed_out:
        return timed_out
    boot = vm.console_time(INIT_BOOT)
    exit_s = time.monotonic() - vm._spawned_at  # close enough: wait_for_exit just returned
    if boot is None or vm.returncode != 0 or vm.guest_exit != 0:
        return {"ok": False, "why": f"exit code {vm.returncode}, guest exit {vm.guest_exit}, "
                                    f"boot-complete {'seen' if boot else 'not seen'}"}
    r = {"ok": True, "boot_ms": boot * 1000, "exit_ms": exit_s * 1000}
    kernel_done = vm.console_time(KERNEL_DONE)
    if kernel_done is not None:
        r["kernel_done_ms"] = kernel_done * 1000
        r["init_ms"] = (boot - kernel_done) * 1000
    if vm.boot_time_us is not None:
        r["vmm_boot_timer_ms"] = vm.boot_time_us / 1000
    return r


def api_run(images, workdir, timeout):
    """Ember driven through the API: InstanceStart to boot-complete, as the client sees it
    (the console line's arrival) and as Ember's boot timer counts it (from InstanceStart)."""
    vm = ApiMicrovm("ember", BINARIES["ember"], workdir, images, "ember-api")
    vm.basic_config(vcpu_count=VCPUS, mem_size_mib=MEM_MIB, cmd="true", initrd=True,
                    rootfs=False)
    try:
        vm.spawn()
        vm.wait_for_socket()
        vm.put_config()
        t0 = time.monotonic() - vm._spawned_at
        vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        vm.wait_for_exit(timeout)
    except (VmmTimeout, AssertionError) as e:
        return {"ok": False, "why": str(e).splitlines()[0]}
    finally:
        vm.kill()
    boot = vm.console_time(INIT_BOOT)
    if boot is None or vm.boot_time_us is None:
        return {"ok": False, "why": "no boot-complete"}
    return {"ok": True, "boot_ms": (boot - t0) * 1000, "vmm_boot_timer_ms": vm.boot_time_us / 1000}


def setup_time(vmm, workdir):
    """Median ms from spawn to the first serial byte of the exit-now payload."""
    if vmm == "ember":
        cfg = os.path.join(workdir, "exit-now.json")
        with open(cfg, "w") as f:
            json.dump({"boot-source": {"kernel_image_path": EXIT_NOW},
                       "machine-config": {"vcpu_count": VCPUS, "mem_size_mib": MEM_MIB}}, f)
        argv = [BINARIES["ember"], "--config-file", cfg, "--no-api", "--debug-exit"]
    else:
        argv = [BINARIES["qemu"], "-M", "microvm,acpi=off,x-option-roms=off", "-nodefaults",
                "-no-user-config", "-enable-kvm", "-cpu", "host", "-m", str(MEM_MIB),
                "-display", "none", "-serial", "stdio",
                "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", EXIT_NOW]
    times = []
    for _ in range(SETUP_RUNS):
        out = subprocess.run([SPAWN] + argv, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, check=True).stdout
        r = json.loads(out)
        if r["stdout_bytes"] >= 1:
            times.append(r["first_byte_us"] / 1000)
    return statistics.median(times) if times else None


def command_line(description, runs, list_option, list_default, timeout):
    """The Linux benchmarks' command line: --runs (default $BENCH_RUNS, else runs), a
    comma-separated list (list_option, e.g. --vmm) and --timeout in seconds; parsed."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", str(runs))))
    ap.add_argument(list_option, default=list_default)
    ap.add_argument("--timeout", type=float, default=timeout)
    return ap.parse_args()


def start(name, script, need_ember=True):
    """on_real_kvm(), then exits if Ember is needed and build/ember is not built."""
    on_real_kvm(name, script)
    if need_ember and not os.access(BINARIES["ember"], os.X_OK):
        sys.exit(f"{name}: build/ember is missing: run make")


def write_json(name, res):
    """bench/results/NAME.json"""
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")


def write_md(name, lines):
    """bench/results/NAME.md, which is also printed."""
    with open(os.path.join(RESULTS, name + ".md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def on_real_kvm(name, script):
    """Builds the guest images on the host, then re-runs script inside the real-KVM bench
    when this host has no vmx/svm (there a kernel build would take hours)."""
    with open("/proc/cpuinfo") as f:
        hw = any(w in f.read().split() for w in ("vmx", "svm"))
    in_l1 = os.environ.get("EMBER_IN_L1") == "1"
    if not in_l1:
        Images(build=True)
    if not hw and not in_l1:
        print(f"{name}: no vmx/svm here: running inside the real-KVM bench (docs/bench-vm.md)",
              file=sys.stderr)
        os.execv(os.path.join(ROOT, "tests", "bench-vm", "run-in-l1"),
                 ["run-in-l1", "--", sys.executable, os.path.abspath(script), *sys.argv[1:]])


def summary(values):
    if not values:
        return None
    values = sorted(values)
    q = statistics.quantiles(values, n=10) if len(values) >= 2 else values * 9
    return {"median": round(statistics.median(values), 1), "p10": round(q[0], 1),
            "p90": round(q[-1], 1), "min": round(values[0], 1), "max": round(values[-1], 1),
            "n": len(values)}


def environment():
    with open("/proc/cpuinfo") as f:
        hw = any(w in f.read().split() for w in ("vmx", "svm"))
    return {"host": platform.node(), "kernel": platform.release(),
            "in_real_kvm_bench": os.environ.get("EMBER_IN_L1") == "1", "cpu_has_vmx_or_svm": hw}


def write_results(res):
    write_json("linux_boot", res)
    lines = ["# Linux boot: Ember vs QEMU microvm", "",
             f"Default guest (resources/guest), {VCPUS} vCPU, {MEM_MIB} MiB, command `true`; "
             f"{res['runs']} runs per VMM, alternating. "
             + ("Measured inside the real-KVM bench (nested, TCG L1): compare the VMMs, not "
                "the absolute times." if res["environment"]["in_real_kvm_bench"] else ""), "",
             "| VMM | boot-complete median (ms) | p10 | p90 | exit median (ms) | failed runs |",
             "|---|---|---|---|---|---|"]
    for vmm, r in res["vmms"].items():
        b, e = r["boot_ms"], r["exit_ms"]
        if b:
            lines.append(f"| {vmm} | {b['median']} | {b['p10']} | {b['p90']} | "
                         f"{e['median']} | {r['failed']} |")
        else:
            lines.append(f"| {vmm} | - | - | - | - | {r['failed']} (all) |")
    if res.get("ratio_boot_ember_over_qemu") is not None:
        lines += ["", "Ember / QEMU, boot-complete medians: "
                      f"**{res['ratio_boot_ember_over_qemu']}** (Ember is "
                      f"**{res['speedup_qemu_over_ember']}x** as fast; the target is 1.3x)"]
    ember = res["vmms"].get("ember", {})
    if ember.get("vmm_boot_timer_ms"):
        lines += ["", "Ember's own Guest-boot-time (median): "
                      f"{ember['vmm_boot_timer_ms']['median']} ms"]
    if all(r.get("setup_ms") is not None for r in res["vmms"].values()):
        lines += ["", "Where the time goes (medians, ms): VMM set-up is process start to the first "
                      "instruction of a trivial guest (exit-now.elf) in the same place; kernel is "
                      "from there to \"Run /init\"; init is from there to boot-complete.", "",
                  "| VMM | VMM set-up | kernel | init | boot-complete |", "|---|---|---|---|---|"]
        for vmm, r in res["vmms"].items():
            if r["boot_ms"] and r.get("kernel_ms") and r.get("init_ms"):
                lines.append(f"| {vmm} | {r['setup_ms']:.1f} | {r['kernel_ms']['median']} | "
                             f"{r['init_ms']['median']} | {r['boot_ms']['median']} |")
        lines += ["", "The same kernel prints the same ~10 KB of boot log on the serial "
                      "console under both. Each byte is two port exits (LSR, THR) either way; "
                      "Ember writes the console out a line at a time (src/vmm/serial.h), "
                      "where QEMU's chardev writes each byte as it comes. On the nested bench, "
                      "where exits and system calls are slow, we take that to be most of the "
                      "kernel phase's difference (not measured apart). "
                      "QEMU's microvm has no i8042, whose probe Ember's guest pays for."]
    api = res.get("ember_api")
    if api and api["instance_start_to_boot_ms"]:
        lines += ["", "Ember driven through the API (--api-sock; PUT boot-source and "
                      "machine-config, then InstanceStart): InstanceStart to boot-complete, "
                      f"median {api['instance_start_to_boot_ms']['median']} ms as the client "
                      f"sees it, {api['vmm_boot_timer_ms']['median']} ms by Ember's boot timer "
                      f"({api['failed']} failed runs)."]
    for vmm, r in res["vmms"].items():
        if r["failures"]:
            lines += ["", f"{vmm} failures (first): {r['failures'][0]}"]
    write_md("linux_boot", lines)


def main():
    args = command_line("Linux boot time, Ember vs QEMU microvm", 10, "--vmm", "ember,qemu", 60)
    vmms = args.vmm.split(",")
    start("linux_boot", __file__, need_ember="ember" in vmms)
    images = Images(build=False)
    for path in (images.vmlinux, images.initramfs):
        if not os.path.isfile(path):
            sys.exit(f"linux_boot: {path} is missing: run make guest-images on the host")
    runs = {v: [] for v in vmms}
    setup = {}
    with tempfile.TemporaryDirectory() as tmp:
        for vmm in vmms:
            setup[vmm] = setup_time(vmm, tmp)
            print(f"linux_boot: {vmm} set-up (exit-now.elf, median of {SETUP_RUNS}): "
                  f"{setup[vmm]:.1f} ms", file=sys.stderr)
        for i in range(args.runs):
            for vmm in vmms:
                r = one_run(vmm, images, os.path.join(tmp, f"{vmm}-{i}"), args.timeout)
                runs[vmm].append(r)
                state = f"boot {r['boot_ms']:.0f} ms" if r["ok"] else f"FAILED: {r['why']}"
                print(f"linux_boot: run {i + 1}/{args.runs} {vmm}: {state}", file=sys.stderr)
    res = {"bench": "linux_boot", "runs": args.runs, "vcpus": VCPUS, "mem_mib": MEM_MIB,
           "environment": environment(), "vmms": {}}
    for vmm, rs in runs.items():
        ok = [r for r in rs if r["ok"]]
        res["vmms"][vmm] = {
            "boot_ms": summary([r["boot_ms"] for r in ok]),
            "exit_ms": summary([r["exit_ms"] for r in ok]),
            "vmm_boot_timer_ms": summary([r["vmm_boot_timer_ms"] for r in ok
                                          if "vmm_boot_timer_ms" in r]),
            "setup_ms": setup.get(vmm),
            "kernel_ms": summary([r["kernel_done_ms"] - setup[vmm] for r in ok
                                  if "kernel_done_ms" in r and setup.get(vmm) is not None]),
            "init_ms": summary([r["init_ms"] for r in ok if "init_ms" in r]),
            "failed": len(rs) - len(ok),
            "failures": [r["why"] for r in rs if not r["ok"]][:3],
        }
    if "ember" in vmms:
        with tempfile.TemporaryDirectory() as tmp:
            api = [api_run(images, os.path.join(tmp, f"api-{i}"), args.timeout)
                   for i in range(args.runs)]
        ok = [r for r in api if r["ok"]]
        res["ember_api"] = {"instance_start_to_boot_ms": summary([r["boot_ms"] for r in ok]),
                            "vmm_boot_timer_ms": summary([r["vmm_boot_timer_ms"] for r in ok]),
                            "failed": len(api) - len(ok)}
    e, q = res["vmms"].get("ember", {}).get("boot_ms"), res["vmms"].get("qemu", {}).get("boot_ms")
    res["ratio_boot_ember_over_qemu"] = round(e["median"] / q["median"], 3) if e and q else None
    res["speedup_qemu_over_ember"] = round(q["median"] / e["median"], 2) if e and q else None
    write_results(res)
    sys.exit(0 if all(r["failed"] == 0 for r in res["vmms"].values()) else 1)


if __name__ == "__main__":
    main()
