# SPDX-License-Identifier: Apache-2.0
"""A Microvm driven through Ember's API (docs/api.md) instead of a config file: the test or
benchmark sends the configuration from basic_config() over the socket, and InstanceStart."""
import http.client
import json
import socket
import time

from framework.microvm import Microvm


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
        cmd = [self.binary, "--api-sock", str(self.socket_path), "--boot-timer",
               *self.extra_cli]
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + cmd

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

    def put_config(self):
        """Sends self.config (from basic_config() and add_drive()) over the API: boot-source,
        machine-config and each drive."""
        self.ok("PUT", "/boot-source", self.config["boot-source"])
        self.ok("PUT", "/machine-config", self.config["machine-config"])
        for drive in self.config.get("drives", []):
            self.ok("PUT", f"/drives/{drive['drive_id']}", drive)

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
