# SPDX-License-Identifier: Apache-2.0
"""A Linux guest configured and driven through the API (docs/api.md): boot-source,
machine-config and the root drive over the socket, InstanceStart, boot-complete on the
console, Paused (the guest's clock-driven output stops) and Resumed (it goes on), then
SendCtrlAltDel: the guest's kernel reboots through the i8042 and Ember exits 0.

The test guest suite (tests/api) covers the API itself; this checks it against a real
kernel on real KVM: `make linux-test LINUX_TEST_ARGS='-k api'`. It runs once per kernel
format and I/O engine.
"""
import time

import pytest

from framework.microvm import BOOT_TIMEOUT, EXIT_TIMEOUT, INIT_BOOT

TICK_CMD = "i=0; while true; do echo api-tick-$i; i=$((i+1)); sleep 0.2; done"


def ticks(vm):
    return vm.console.count("api-tick-")


@pytest.mark.ember_only
@pytest.mark.parametrize("kernel", ["vmlinux", "bzImage"])
def test_api_boot_pause_resume_ctrl_alt_del(api_microvm, kernel):
    vm = api_microvm
    cfg = vm.basic_config(kernel=kernel, cmd=TICK_CMD)
    vm.spawn()
    vm.wait_for_socket()
    assert vm.state() == "Not started"
    vm.put_config()
    assert vm.ok("GET", "/vm/config")["boot-source"] == {"initrd_path": None, **cfg["boot-source"]}
    vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    assert vm.state() == "Running"
    boot_us = vm.wait_for_boot()
    assert 0 < boot_us < BOOT_TIMEOUT * 1e6
    vm.wait_for(lambda: INIT_BOOT in vm.console and ticks(vm) >= 3 or vm.exited(),
                BOOT_TIMEOUT, "the guest's command to print")
    assert not vm.exited(), vm.describe()

    vm.ok("PATCH", "/vm", {"state": "Paused"})
    assert vm.state() == "Paused"
    time.sleep(0.3)
    paused_at = ticks(vm)
    time.sleep(2.0)
    assert ticks(vm) == paused_at, "the guest kept printing while paused\n" + vm.describe()
    vm.ok("PATCH", "/vm", {"state": "Resumed"})
    assert vm.state() == "Running"
    vm.wait_for(lambda: ticks(vm) >= paused_at + 3 or vm.exited(), 60,
                "the guest to print again after Resumed")
    assert not vm.exited(), vm.describe()

    vm.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    assert vm.wait_for_exit(EXIT_TIMEOUT) == 0, vm.describe()
    assert not vm.panicked, vm.describe()
    assert vm.guest_exit is None, "the guest's command ended by itself\n" + vm.describe()
