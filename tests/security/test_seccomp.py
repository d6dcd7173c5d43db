# SPDX-License-Identifier: Apache-2.0
"""Seccomp (docs/seccomp.md): every Ember thread runs under the filter for its type; a
system call outside a thread's list kills the process with SIGSYS; --seccomp-filter takes a
file compiled by ember-seccompiler; --no-seccomp turns filtering off, with a warning; the
lists are shorter than Firecracker's."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
EMBER = BUILD / "ember"
TRIGGER = BUILD / "tests" / "security" / "seccomp_trigger"
SECCOMPILER = BUILD / "ember-seccompiler"
RULES = ROOT / "resources" / "seccomp" / "x86_64.json"
GUEST = BUILD / "tests" / "guest" / "guest.elf"
SIGSYS = -signal.SIGSYS

# (thread, call, allowed): calls each thread type may and may not make
CASES = [
    (t, "write", True) for t in ("api", "vmm", "vcpu")
] + [
    # the vDSO falls back to the system call when the clock source is not the TSC
    (t, "clock_gettime", True) for t in ("api", "vmm", "vcpu")
] + [
    (t, "mmap-rw", True) for t in ("api", "vmm", "vcpu")
] + [
    (t, c, False) for t in ("api", "vmm", "vcpu")
    for c in ("getppid", "execve", "mmap-exec", "socket-inet", "ioctl-kvm-create-vm")
] + [
    ("vcpu", "ioctl-kvm-run", True), ("api", "ioctl-kvm-run", False),
    ("vmm", "ioctl-kvm-run", False),
    ("vmm", "openat", True), ("api", "openat", False), ("vcpu", "openat", False),
    ("vmm", "socket-unix", True), ("api", "socket-unix", False),
    ("vcpu", "socket-unix", False),
]


@pytest.mark.parametrize("thread,call,allowed", CASES,
                         ids=[f"{t}-{c}" for t, c, _ in CASES])
def test_forbidden_syscall_kills_with_sigsys(thread, call, allowed):
    """The built-in filter of each thread type, installed by Ember's own code on a thread
    (the test-only trigger binary): an allowed call returns, a forbidden one kills the
    whole process with SIGSYS."""
    r = subprocess.run([str(TRIGGER), thread, call], capture_output=True, text=True,
                       timeout=30)
    if allowed:
        assert r.returncode == 0 and r.stdout == "survived\n", r
    else:
        assert r.returncode == SIGSYS, f"{thread} {call}: {r}"
        assert "survived" not in r.stdout


def thread_status(pid):
    """{tid: (name, Seccomp, NoNewPrivs)} for every Ember thread of pid: the main (VMM)
    thread, "api" and "vcpuN" (the kernel's own tasks in the group, such as KVM's
    kvm-nx-lpage-recovery, are not Ember's)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        status = (task / "status").read_text()
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        name = fields["Name"].strip()
        if int(task.name) == pid or name == "api" or re.fullmatch(r"vcpu\d+", name):
            out[int(task.name)] = (name, fields["Seccomp"].strip(),
                                   fields["NoNewPrivs"].strip())
    return out


def spawn(tmp_path, *extra, vcpus=2):
    config = {"boot-source": {"kernel_image_path": str(GUEST),
                              "boot_args": "tests=hello exit=hang"},
              "machine-config": {"vcpu_count": vcpus, "mem_size_mib": 64}}
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(config))
    sock = tmp_path / "api.sock"
    proc = subprocess.Popen([str(EMBER), "--api-sock", str(sock), "--config-file", str(path),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    return proc, sock


def wait_running(proc, nthreads, timeout=10):
    """Waits for ember's threads (main, api, the vCPUs) to exist and for the guest to
    print its hello; returns their status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        threads = thread_status(proc.pid)
        if len(threads) >= nthreads and all(s[1] == "2" for s in threads.values()):
            return threads
        time.sleep(0.05)
    return thread_status(proc.pid)


def stop(proc):
    proc.kill()
    return proc.communicate(timeout=10)


def test_every_thread_is_filtered(tmp_path):
    """A running Ember (API thread, VMM thread, two vCPUs): every thread is in seccomp
    filter mode (Seccomp 2) with no_new_privs."""
    proc, _ = spawn(tmp_path)
    try:
        threads = wait_running(proc, 4)
    finally:
        stop(proc)
    assert len(threads) == 4, threads
    for tid, (name, mode, nnp) in threads.items():
        assert mode == "2" and nnp == "1", f"thread {tid} ({name}): Seccomp {mode}, " \
                                           f"NoNewPrivs {nnp}"


def test_no_seccomp_warns_and_filters_nothing(tmp_path):
    proc, _ = spawn(tmp_path, "--no-seccomp")
    try:
        deadline = time.monotonic() + 10
        while len(thread_status(proc.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        threads = thread_status(proc.pid)
    finally:
        _, err = stop(proc)
    assert len(threads) == 4, threads
    assert all(mode == "0" for _, mode, _ in threads.values()), threads
    assert "seccomp is off (--no-seccomp)" in err, err


def compile_rules(tmp_path, rules):
    src = tmp_path / "rules.json"
    src.write_text(json.dumps(rules))
    out = tmp_path / "filter.bpf"
    r = subprocess.run([str(SECCOMPILER), str(src), str(out)], capture_output=True, text=True)
    return r, out


def test_custom_filter_is_the_one_used(tmp_path):
    """--seccomp-filter: a file compiled from the built-in rules with KVM_RUN taken out of
    the vCPU's list: the first KVM_RUN kills Ember with SIGSYS. The same rules as they
    are boot the guest."""
    rules = json.loads(RULES.read_text())
    r, same = compile_rules(tmp_path, rules)
    assert r.returncode == 0, r.stderr
    vcpu = rules["vcpu"]["filter"]
    rules["vcpu"]["filter"] = [e for e in vcpu if not any(
        a.get("val") == "KVM_RUN" for a in e.get("args", []))]
    assert len(rules["vcpu"]["filter"]) == len(vcpu) - 1
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    r, no_run = compile_rules(bad_dir, rules)
    assert r.returncode == 0, r.stderr

    proc, _ = spawn(tmp_path, "--seccomp-filter", str(same), vcpus=1)
    try:
        threads = wait_running(proc, 3)
    finally:
        stop(proc)
    assert len(threads) == 3 and all(s[1] == "2" for s in threads.values()), threads

    proc, _ = spawn(bad_dir, "--seccomp-filter", str(no_run), vcpus=1)
    try:
        proc.wait(timeout=10)
    finally:
        out, err = stop(proc)
    assert proc.returncode == SIGSYS, (proc.returncode, out, err)


@pytest.mark.parametrize("content,message", [
    (None, "No such file or directory"),
    (b"", "not a compiled seccomp filter file"),
    (b'{"vcpu": {}}', "not a compiled seccomp filter file"),
    (b"EMBERSC1\x01\x00\x00\x00", "filter 0: cut short"),
], ids=["missing", "empty", "json", "truncated"])
def test_bad_filter_file_is_refused(tmp_path, content, message):
    """A --seccomp-filter file that is not a whole compiled file: Ember says why and exits
    1 before it starts anything."""
    path = tmp_path / "filter.bpf"
    if content is not None:
        path.write_bytes(content)
    config = tmp_path / "vm.json"
    config.write_text(json.dumps({"boot-source": {"kernel_image_path": str(GUEST)}}))
    r = subprocess.run([str(EMBER), "--config-file", str(config), "--seccomp-filter",
                        str(path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r
    assert f"--seccomp-filter {path}" in r.stderr and message in r.stderr, r.stderr
    r = subprocess.run([str(EMBER), "--config-file", str(config), "--seccomp-filter",
                        str(path), "--no-seccomp"], capture_output=True, text=True)
    assert r.returncode == 1 and "contradict" in r.stderr, r


@pytest.mark.parametrize("rules,message", [
    ({"api": {}}, "default_action: must be a string"),
    ({"api": {"default_action": "kill_process", "filter": []}}, "no rules for the vmm thread"),
    ({"io": {}}, "\"io\": not a thread type"),
    ({"api": {"default_action": "explode", "filter": []}}, "\"explode\": must be"),
    ({"api": {"default_action": "kill_process", "filter": [{"syscall": "frobnicate"}]}},
     "unknown syscall \"frobnicate\""),
    ({"api": {"default_action": "kill_process", "filter": [
        {"syscall": "ioctl", "args": [{"index": 1, "type": "dword", "op": "eq",
                                       "val": "KVM_FLY"}]}]}}, "unknown name \"KVM_FLY\""),
    ({"api": {"default_action": "kill_process", "filter": [
        {"syscall": "ioctl", "args": [{"index": 7, "type": "dword", "op": "eq",
                                       "val": 1}]}]}}, "index: must be 0 to 5"),
    ({"api": {"default_action": "kill_process", "filter": [
        {"syscall": "ioctl", "args": [{"index": 1, "type": "dword", "op": "lt",
                                       "val": 1}]}]}}, "op lt works on qword"),
], ids=["no-default", "missing-thread", "bad-thread", "bad-action", "bad-syscall",
        "bad-name", "bad-index", "dword-lt"])
def test_seccompiler_refuses_bad_rules(tmp_path, rules, message):
    r, out = compile_rules(tmp_path, rules)
    assert r.returncode == 1 and message in r.stderr, r
    assert not out.exists()


def test_lists_are_shorter_than_firecrackers():
    """`make seccomp-report`: the syscalls each thread type may make, fewer than
    Firecracker's defaults (vcpu 27, api 31, vmm 50)."""
    r = subprocess.run(["make", "-s", "-C", str(ROOT), "seccomp-report"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    counts = {m[0]: int(m[1]) for m in re.findall(r"^(api|vmm|vcpu)\s+(\d+) syscalls",
                                                  r.stdout, re.M)}
    assert counts.keys() == {"api", "vmm", "vcpu"}, r.stdout
    assert counts["vcpu"] < 27 and counts["api"] < 31 and counts["vmm"] < 50, counts


def test_builtin_rules_do_not_allow_dangerous_calls():
    """No thread type may exec, fork, ptrace, mount, load modules or make executable
    memory, whatever else changes in the rules."""
    rules = json.loads(RULES.read_text())
    banned = {"execve", "execveat", "fork", "vfork", "clone", "clone3", "ptrace", "mount",
              "umount2", "init_module", "finit_module", "kexec_load", "bpf", "setuid",
              "setgid", "chroot", "pivot_root", "unshare", "setns", "mprotect",
              "process_vm_writev", "perf_event_open", "keyctl", "add_key"}
    for thread, t in rules.items():
        assert t["default_action"] == "kill_process", thread
        names = {e["syscall"] for e in t["filter"]}
        assert not names & banned, f"{thread}: {names & banned}"
        for e in t["filter"]:
            if e["syscall"] == "mmap":
                assert any(a.get("mask") == "PROT_EXEC" and a.get("val") == 0
                           for a in e.get("args", [])), e
            if e["syscall"] == "ioctl":
                assert e.get("args"), f"{thread}: ioctl without an argument filter"


def test_console_on_a_tty(tmp_path):
    """With a terminal as stdin Ember puts it in raw mode, and at exit, under the VMM
    thread's filter, checks and restores it: that must not be a forbidden call."""
    import pty

    config = tmp_path / "vm.json"
    config.write_text(json.dumps({"boot-source": {"kernel_image_path": str(GUEST),
                                                  "boot_args": "tests=hello exit=port:0"},
                                  "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}))
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([str(EMBER), "--config-file", str(config), "--no-api",
                                 "--debug-exit"], stdin=slave, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        os.close(slave)
        _, err = proc.communicate(timeout=30)
    finally:
        os.close(master)
    assert proc.returncode == 0, (proc.returncode, err)
