# SPDX-License-Identifier: Apache-2.0
"""The instance's life through the API: configure, InstanceStart, Paused, Resumed,
SendCtrlAltDel; Firecracker's pre-boot and post-boot rules; --config-file with --api-sock;
what InstanceStart does with a bad kernel; exit codes and the boot timer in API mode."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import (GUEST, HANG_ARGS, MSG_AFTER_START, MSG_BEFORE_START, PREFIX, fd_count,
                      serial_boot_args)
from test_endpoints import DRIVE, NET, VSOCK, assert_fault

BOOT_TIME_RE = re.compile(r"Guest-boot-time = (\d+) us (\d+) ms, (\d+) CPU us (\d+) CPU ms")


def test_full_flow(ember):
    """configure -> InstanceStart -> Paused -> Resumed -> SendCtrlAltDel, and GET / shows
    each state."""
    assert ember.state() == "Not started"
    ember.configure(HANG_ARGS)
    assert ember.state() == "Not started"
    assert ember.console == "", "nothing runs before InstanceStart"
    ember.start()
    assert ember.state() == "Running"
    ember.wait_console(PREFIX + "done passed=1 failed=0")
    ember.ok("PATCH", "/vm", {"state": "Paused"})
    assert ember.state() == "Paused"
    ember.ok("PATCH", "/vm", {"state": "Resumed"})
    assert ember.state() == "Running"
    ember.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    ember.assert_healthy("Running")
    assert ember.get("/machine-config").json["mem_size_mib"] == 64
    assert ember.get("/vm/config").json["boot-source"]["boot_args"] == HANG_ARGS
    ember.signal(signal.SIGTERM)
    assert ember.wait_exit() == 128 + signal.SIGTERM
    assert not ember.socket_path.exists(), "the API socket is removed at exit"


def test_pause_and_resume_are_idempotent(running_ember):
    vm = running_ember
    vm.ok("PATCH", "/vm", {"state": "Resumed"})
    assert vm.state() == "Running"
    for _ in range(2):
        vm.ok("PATCH", "/vm", {"state": "Paused"})
        assert vm.state() == "Paused"
    for _ in range(2):
        vm.ok("PATCH", "/vm", {"state": "Resumed"})
        assert vm.state() == "Running"


def test_second_instance_start_refused(running_ember):
    r = running_ember.put("/actions", {"action_type": "InstanceStart"})
    assert_fault(r, 400, MSG_AFTER_START)
    running_ember.ok("PATCH", "/vm", {"state": "Paused"})
    assert_fault(running_ember.put("/actions", {"action_type": "InstanceStart"}), 400,
                 MSG_AFTER_START)
    running_ember.assert_healthy("Paused")
    assert running_ember.console.count(PREFIX + "boot protocol") == 1


def test_configuration_after_start_refused(running_ember, tmp_path):
    vm = running_ember
    before = vm.get("/vm/config").json
    cases = [
        ("PUT", "/boot-source", {"kernel_image_path": str(GUEST)}),
        ("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 128}),
        ("PATCH", "/machine-config", {"vcpu_count": 2}),
        ("PUT", "/drives/rootfs", DRIVE),
        ("PUT", "/network-interfaces/eth0", NET),
        ("PUT", "/vsock", VSOCK),
        ("PUT", "/logger", {"log_path": str(tmp_path / "late.log")}),
        ("PUT", "/metrics", {"metrics_path": str(tmp_path / "late.json")}),
        ("PUT", "/serial", {"serial_out_path": str(tmp_path / "late.out")}),
    ]
    for method, path, body in cases:
        r = vm.request(method, path, body)
        assert_fault(r, 400, MSG_AFTER_START)
    assert vm.get("/vm/config").json == before, "a refused request changed the config"
    assert not (tmp_path / "late.log").exists() and not (tmp_path / "late.json").exists()
    # a body that is bad in itself is still reported as such
    assert_fault(vm.put("/machine-config", {"vcpu_count": 99, "mem_size_mib": 1}), 400,
                 "vcpu_count")
    vm.assert_healthy("Running")


def test_device_patch_after_start_without_devices(running_ember):
    """PATCH of a drive or interface is a run-time request; with no devices there is no
    device to patch, and the message says so (the body itself is validated first). Drives
    that exist: test_drives.py."""
    r = running_ember.patch("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/x"})
    assert_fault(r, 400, "drive_id", "no drive", "rootfs")
    r = running_ember.patch("/network-interfaces/eth0", {"iface_id": "eth0"})
    assert_fault(r, 400, "iface_id", "eth0")
    running_ember.assert_healthy("Running")


def test_run_time_actions_before_start_refused(ember):
    for method, path, body in [("PUT", "/actions", {"action_type": "SendCtrlAltDel"}),
                               ("PATCH", "/vm", {"state": "Paused"}),
                               ("PATCH", "/vm", {"state": "Resumed"})]:
        assert_fault(ember.request(method, path, body), 400, MSG_BEFORE_START)
    assert ember.state() == "Not started"


def test_instance_start_without_boot_source(ember):
    r = ember.put("/actions", {"action_type": "InstanceStart"})
    assert_fault(r, 400, "InstanceStart", "boot-source")
    ember.assert_healthy("Not started")


def test_config_file_with_api_sock_starts_at_once(ember_factory, tmp_path):
    cfg = {"boot-source": {"kernel_image_path": str(GUEST), "boot_args": HANG_ARGS},
           "machine-config": {"vcpu_count": 2, "mem_size_mib": 64}}
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(cfg))
    vm = ember_factory(["--config-file", str(path)])
    assert vm.state() == "Running"
    vm.wait_console(PREFIX + "done passed=1 failed=0")
    assert_fault(vm.put("/actions", {"action_type": "InstanceStart"}), 400, MSG_AFTER_START)
    assert vm.get("/machine-config").json["vcpu_count"] == 2
    assert vm.get("/vm/config").json["boot-source"]["kernel_image_path"] == str(GUEST)
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    vm.assert_healthy("Paused")


def test_config_file_with_api_sock_bad_config_exits_1(ember_factory, tmp_path):
    path = tmp_path / "vm.json"
    path.write_text(json.dumps({"boot-source": {"kernel_image_path": str(GUEST)},
                                "machine-config": {"vcpu_count": 33, "mem_size_mib": 64}}))
    vm = ember_factory(["--config-file", str(path)], spawn=False)
    vm.spawn(wait=False)
    assert vm.wait_exit() == 1
    assert "vcpu_count" in vm.log and "33" in vm.log, vm.describe()
    assert not vm.socket_path.exists()


def console_size(vm):
    return os.path.getsize(vm.console_path)


def test_guest_stops_running_while_paused(ember):
    """A guest that prints without pause: while Paused, its console and its vCPU's exit
    counters stand still; after Resumed they move again."""
    ember.boot(serial_boot_args(), wait_done=False)
    ember.wait_until(lambda: console_size(ember) > 8000, 10, "8 KB of console output")
    ember.ok("PATCH", "/vm", {"state": "Paused"})
    time.sleep(0.1)  # serial output buffered before the pause is written within ~5 ms
    size, exits = console_size(ember), ember.metrics()["vcpu_exit_io_out"]
    time.sleep(1.0)
    assert console_size(ember) == size, "the guest kept printing while paused"
    assert ember.metrics()["vcpu_exit_io_out"] == exits, "the vCPU kept exiting while paused"
    assert ember.state() == "Paused"
    ember.ok("PATCH", "/vm", {"state": "Resumed"})
    ember.wait_until(lambda: console_size(ember) > size + 4000, 5,
                     "the guest to print again after Resumed")
    assert ember.metrics()["vcpu_exit_io_out"] > exits
    # the output is intact across the pause: every serial block is whole so far
    text = ember.console
    done_blocks = text.count(PREFIX + "serial-end\n")
    assert done_blocks >= 4 and text.count(PREFIX + "PASS serial\n") >= done_blocks - 1
    assert "FAIL" not in text


def test_pause_with_several_vcpus(ember):
    ember.boot(serial_boot_args(), wait_done=False, vcpus=4)
    ember.wait_until(lambda: console_size(ember) > 4000, 10, "console output")
    for _ in range(3):
        ember.ok("PATCH", "/vm", {"state": "Paused"})
        time.sleep(0.05)
        size = console_size(ember)
        time.sleep(0.3)
        assert console_size(ember) == size
        ember.ok("PATCH", "/vm", {"state": "Resumed"})
        ember.wait_until(lambda: console_size(ember) > size, 5, "output after Resumed")


def test_bad_kernel_path_is_400_and_ember_keeps_serving(ember, tmp_path):
    ember.configure(kernel="/nonexistent/vmlinux")
    r = ember.put("/actions", {"action_type": "InstanceStart"})
    assert_fault(r, 400, "InstanceStart", "/nonexistent/vmlinux", "No such file")
    ember.assert_healthy("Not started")
    junk = tmp_path / "junk.elf"
    junk.write_bytes(b"\x7fELF" + b"junk" * 64)
    ember.configure(kernel=junk)
    assert_fault(ember.put("/actions", {"action_type": "InstanceStart"}), 400, "kernel",
                 str(junk))
    ember.assert_healthy("Not started")
    # and once the kernel is right, the same Ember starts it
    ember.configure(kernel=GUEST)
    ember.start()
    ember.wait_console(PREFIX + "done passed=1 failed=0")
    ember.assert_healthy("Running")


def test_missing_initrd_and_serial_path_are_400(ember, tmp_path):
    ember.ok("PUT", "/boot-source", {"kernel_image_path": str(GUEST),
                                     "initrd_path": "/nonexistent/initrd.img",
                                     "boot_args": HANG_ARGS})
    assert_fault(ember.put("/actions", {"action_type": "InstanceStart"}), 400, "InstanceStart",
                 "initrd", "/nonexistent/initrd.img")
    ember.configure()
    ember.ok("PUT", "/serial", {"serial_out_path": "/nonexistent/dir/console.log"})
    assert_fault(ember.put("/actions", {"action_type": "InstanceStart"}), 400, "InstanceStart",
                 "serial_out_path", "/nonexistent/dir/console.log")
    ember.ok("PUT", "/serial", {"serial_out_path": str(tmp_path / "console.log")})
    ember.start()
    ember.wait_until(lambda: PREFIX + "done " in (tmp_path / "console.log").read_text(), 10,
                     "the console in serial_out_path")
    ember.assert_healthy("Running")


def test_many_vcpus_start_and_pause(ember):
    ember.boot(vcpus=32)
    ember.ok("PATCH", "/vm", {"state": "Paused"})
    ember.ok("PATCH", "/vm", {"state": "Resumed"})
    ember.assert_healthy("Running")


@pytest.mark.parametrize("where,why", [("long", "longer than"), ("missing", "cannot bind")])
def test_bad_socket_path_exits_1(ember_factory, tmp_path, where, why):
    vm = ember_factory(spawn=False)
    vm.socket_path = (tmp_path / ("s" * 120) if where == "long"
                      else tmp_path / "no" / "such" / "dir" / "api.sock")
    vm.spawn(wait=False)
    assert vm.wait_exit() == 1
    assert why in vm.log, vm.describe()


def test_failed_starts_leak_no_file_descriptors(ember):
    ember.configure(kernel=GUEST, mem_mib=1)  # the kernel does not fit in 1 MiB
    assert_fault(ember.put("/actions", {"action_type": "InstanceStart"}), 400, "RAM")
    before = fd_count(ember)
    for _ in range(20):
        assert ember.put("/actions", {"action_type": "InstanceStart"}).status == 400
    assert fd_count(ember) <= before, "failed InstanceStarts leaked file descriptors"
    ember.assert_healthy("Not started")


def test_ctrl_alt_del_reaches_the_i8042(running_ember):
    """The test guest halts with interrupts off and never reads the keyboard, so the
    scancodes stay in the controller's 16-byte buffer: Ctrl-Alt-Del is 8 bytes pressed and
    released (scan code set 1), so the third one does not fit. Ember stays up."""
    vm = running_ember
    m0 = vm.metrics()
    vm.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    vm.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    assert vm.metrics()["i8042_missed_write_count"] == m0["i8042_missed_write_count"]
    vm.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    m = vm.metrics()
    assert m["i8042_missed_write_count"] > m0["i8042_missed_write_count"], m
    assert m["i8042_reset_count"] == 0
    vm.assert_healthy("Running")


def test_ctrl_alt_del_while_paused(running_ember):
    running_ember.ok("PATCH", "/vm", {"state": "Paused"})
    running_ember.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    running_ember.assert_healthy("Paused")


def test_guest_reset_exits_0(ember):
    ember.configure("tests=hello exit=reset")
    ember.start()
    assert ember.wait_exit() == 0, ember.describe()
    assert PREFIX + "done passed=1 failed=0" in ember.console


def test_debug_exit_code(ember_factory):
    vm = ember_factory(["--debug-exit"])
    vm.configure("tests=hello exit=port:7")
    vm.start()
    assert vm.wait_exit() == 7, vm.describe()


def test_guest_panic_exits_2(ember):
    ember.configure("tests=hello exit=panic")
    ember.start()
    assert ember.wait_exit() == 2, ember.describe()


@pytest.mark.parametrize("state", ["Not started", "Running", "Paused"])
@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_signal_exit_code(ember, state, signo):
    if state != "Not started":
        ember.boot()
    if state == "Paused":
        ember.ok("PATCH", "/vm", {"state": "Paused"})
    ember.assert_healthy(state)
    ember.signal(signo)
    assert ember.wait_exit() == 128 + signo, ember.describe()
    assert not ember.socket_path.exists()


def test_boot_timer_counts_from_instance_start(ember_factory):
    vm = ember_factory(["--boot-timer"])
    vm.configure("tests=hello,boottimer exit=hang")
    time.sleep(0.7)  # counted from the process start, this would be over 700 ms
    vm.start()
    vm.wait_log("Guest-boot-time")
    m = BOOT_TIME_RE.search(vm.log)
    assert m, vm.describe()
    us = int(m.group(1))
    assert 0 < us < 500_000, f"boot time {us} us includes the wait before InstanceStart"
    assert vm.metrics()["latencies_us_boot_time"] == us


def test_serial_out_path_takes_the_console(ember, tmp_path):
    out = tmp_path / "serial.out"
    ember.ok("PUT", "/serial", {"serial_out_path": str(out)})
    ember.boot(wait_done=False)
    ember.wait_until(lambda: out.exists() and PREFIX + "done " in out.read_text("latin-1"), 10,
                     "the console in serial_out_path")
    assert ember.console == "", "the console went to stdout as well"


def test_second_ember_on_the_same_socket_is_refused(ember, ember_factory):
    other = ember_factory(spawn=False)
    other.socket_path = ember.socket_path
    other.spawn(wait=False)
    assert other.wait_exit() == 1
    assert "in use" in other.log, other.describe()
    ember.assert_healthy("Not started")


def test_stale_socket_file_is_replaced(ember_factory, tmp_path):
    vm = ember_factory(spawn=False)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(vm.socket_path))  # bound, never listening, then abandoned: a stale socket
    s.close()
    vm.spawn()
    vm.assert_healthy("Not started")


def test_open_file_limit_raised_to_the_hard_limit(ember_factory):
    """A VM may need more descriptors than the usual soft limit of 1024 (vsock alone keeps
    up to 1024 connections): Ember raises its soft RLIMIT_NOFILE to the hard limit it was
    given, and no further."""
    vm = ember_factory(spawn=False)
    proc = subprocess.Popen(["prlimit", "--nofile=256:4096", *vm.command],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=vm.workdir, start_new_session=True)
    try:
        vm.proc = proc
        vm.wait_for_socket()  # ember itself is running, past its start-up
        with open(f"/proc/{proc.pid}/limits") as f:
            limits = next(line for line in f if line.startswith("Max open files"))
        assert limits.split()[3:5] == ["4096", "4096"], limits
    finally:
        proc.kill()
        proc.wait()
        vm.proc = None
