# SPDX-License-Identifier: Apache-2.0
"""A Linux guest configured and driven through the API (docs/api.md): boot-source and
machine-config over the socket, InstanceStart, boot-complete on the console, Paused (the
guest's clock-driven output stops) and Resumed (it goes on), then SendCtrlAltDel: the
guest's kernel reboots through the i8042 and Ember exits 0.

The test guest suite (tests/api) covers the API itself; this checks it against a real
kernel on real KVM: `make linux-test LINUX_TEST_ARGS='-k api'`. It runs once per kernel
format, which also gives each of the bench's two shards one test to run.
"""
import http.client
import json
import socket
import time

import pytest

from framework.microvm import BOOT_TIMEOUT, EXIT_TIMEOUT, INIT_BOOT, Microvm

TICK_CMD = "i=0; while true; do echo api-tick-$i; i=$((i+1)); sleep 0.2; done"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class ApiMicrovm(Microvm):
    """A Microvm started with --api-sock instead of --config-file: the test sends the
    configuration (self.config, from basic_config()) over the API."""

    @property
    def socket_path(self):
        return self.workdir / "api.sock"

    def _command(self):
        return [self.binary, "--api-sock", str(self.socket_path), "--boot-timer",
                *self.extra_cli]

    def request(self, method, path, body=None):
        conn = UnixHTTPConnection(self.socket_path)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data,
                         headers={"Content-Type": "application/json"} if data else {})
            r = conn.getresponse()
            text = r.read().decode()
            return r.status, json.loads(text) if text else None
        finally:
            conn.close()

    def ok(self, method, path, body=None):
        status, reply = self.request(method, path, body)
        want = 200 if method == "GET" else 204
        assert status == want, f"{method} {path}: {status} {reply}\n" + self.describe()
        return reply

    def state(self):
        return self.ok("GET", "/")["state"]

    def wait_for_socket(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "ember exited\n" + self.describe()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(self.socket_path))
                return
            except OSError:
                time.sleep(0.01)
            finally:
                s.close()
        raise AssertionError("the API socket never came up\n" + self.describe())

    def ticks(self):
        return self.console.count("api-tick-")


@pytest.fixture
def api_microvm(request, tmp_path, vmm_binary, guest_images, kvm_available):
    vm = ApiMicrovm("ember", vmm_binary, tmp_path / "api-vm", guest_images, "api-vm")
    request.node.ember_microvms = [vm]
    yield vm
    vm.kill()


@pytest.mark.ember_only
@pytest.mark.parametrize("kernel", ["vmlinux", "bzImage"])
def test_api_boot_pause_resume_ctrl_alt_del(api_microvm, kernel):
    vm = api_microvm
    cfg = vm.basic_config(kernel=kernel, cmd=TICK_CMD)
    vm.spawn()
    vm.wait_for_socket()
    assert vm.state() == "Not started"
    vm.ok("PUT", "/boot-source", cfg["boot-source"])
    vm.ok("PUT", "/machine-config", cfg["machine-config"])
    assert vm.ok("GET", "/vm/config")["boot-source"] == {"initrd_path": None, **cfg["boot-source"]}
    vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    assert vm.state() == "Running"
    boot_us = vm.wait_for_boot()
    assert 0 < boot_us < BOOT_TIMEOUT * 1e6
    vm.wait_for(lambda: INIT_BOOT in vm.console and vm.ticks() >= 3 or vm.exited(),
                BOOT_TIMEOUT, "the guest's command to print")
    assert not vm.exited(), vm.describe()

    vm.ok("PATCH", "/vm", {"state": "Paused"})
    assert vm.state() == "Paused"
    time.sleep(0.3)
    paused_at = vm.ticks()
    time.sleep(2.0)
    assert vm.ticks() == paused_at, "the guest kept printing while paused\n" + vm.describe()
    vm.ok("PATCH", "/vm", {"state": "Resumed"})
    assert vm.state() == "Running"
    vm.wait_for(lambda: vm.ticks() >= paused_at + 3 or vm.exited(), 60,
                "the guest to print again after Resumed")
    assert not vm.exited(), vm.describe()

    vm.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    assert vm.wait_for_exit(EXIT_TIMEOUT) == 0, vm.describe()
    assert not vm.panicked, vm.describe()
    assert vm.guest_exit is None, "the guest's command ended by itself\n" + vm.describe()
