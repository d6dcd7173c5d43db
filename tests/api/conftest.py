# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the API suite (tests/api, docs/api.md): a real `build/ember --api-sock`
process per test, driven over its Unix socket, booting the freestanding test guest
(build/tests/guest/guest.elf, docs/test-guest.md).

    ember           an ApiVmm, spawned (no VM configured yet); killed at teardown
    ember_factory   makes ApiVmm objects with extra command-line options
    running_ember   an ApiVmm whose test guest was started with "tests=hello exit=hang"

An ApiVmm has a tiny HTTP/1.1 client over AF_UNIX (stdlib http.client with a connection
class that connects to the socket): `vmm.get("/")`, `vmm.put("/boot-source", {...})`,
`vmm.patch(...)`, `vmm.request(method, path, body)` return a Response with `status`,
`headers`, `body` (bytes), `json` and `fault` (the fault_message). The guest's console
(Ember's stdout) goes to console.log and Ember's log (stderr) to ember.log in the test's
tmp_path; both are shown when a test fails.

Run: /usr/bin/python3 -m pytest -q tests/api   (needs /dev/kvm, `make` and `make guest`).
"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SUPPORT = str(Path(__file__).resolve().parents[1] / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)
from proc_helpers import kill_process_group  # noqa: E402
from pytest_helpers import (EMBER, GUEST, ROOT, Made, OutputFiles,  # noqa: E402,F401
                            failure_report_hook, snapshot_binary, tail)

PREFIX = "EMBER-GUEST: "
HANG_ARGS = "tests=hello exit=hang"
MSG_AFTER_START = "The requested operation is not supported after starting the microVM."
MSG_BEFORE_START = "The requested operation is not supported before starting the microVM."
# the guest's last line; the console may show a line in parts (Ember writes out what the
# guest has sent when its VMM thread gets to it, not only whole lines)
DONE_LINE_RE = re.compile(re.escape(PREFIX) + r"done passed=\d+ failed=\d+\n")
PROM_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*) (-?[0-9]+(?:\.[0-9]+)?)$")
SOCKET_TIMEOUT = 5.0


def pytest_collection_modifyitems(config, items):
    if os.path.exists("/dev/kvm"):
        return
    skip = pytest.mark.skip(reason="no /dev/kvm on this machine")
    for item in items:
        item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def built(tmp_path_factory):
    missing = [str(p) for p in (EMBER, GUEST) if not p.is_file()]
    assert not missing, f"not built (run `make && make guest`): {', '.join(missing)}"
    ApiVmm.binary = snapshot_binary(EMBER, tmp_path_factory.mktemp("bin"))


BOOT_ARGS_MAX = 2047  # the kernel command line, with what Ember appends (docs/api.md)


def serial_boot_args(repeats=250, end="exit=hang"):
    """A guest that prints for a long time: the `serial` test (2.2 KB) run `repeats` times,
    about 10-40 us a byte on this host, i.e. several seconds of steady console output.
    250 repeats keep the line (1765 bytes) under BOOT_ARGS_MAX with room for Ember's own
    arguments."""
    args = "tests=" + ",".join(["serial"] * repeats) + " " + end
    assert len(args) <= BOOT_ARGS_MAX - 100, f"{len(args)} bytes of boot_args"
    return args


# ---- the HTTP client ----

class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix stream socket; the Host header stays "localhost"."""

    def __init__(self, path, timeout=SOCKET_TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.socket_path)
        self.sock = s


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage: case-insensitive get()
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def fault(self):
        """The fault_message of an error response ("" if the body has none)."""
        try:
            return (self.json or {}).get("fault_message", "")
        except (ValueError, AttributeError):
            return ""

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def encode_body(body):
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


class Client:
    """One keep-alive connection to the API socket."""

    def __init__(self, path, timeout=SOCKET_TIMEOUT):
        self.conn = UnixHTTPConnection(path, timeout)

    def request(self, method, path, body=None, headers=None):
        data = encode_body(body)
        hdrs = {"Accept": "application/json"}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            if self.conn.sock is None:
                raise
            # The server answered early and closed (a 413 on the head alone, a bad request
            # line): its answer is waiting in the socket.
            r = http.client.HTTPResponse(self.conn.sock, method=method)
            r.begin()
            resp = Response(r.status, r.headers, r.read())
            self.conn.close()
            return resp
        r = self.conn.getresponse()
        return Response(r.status, r.headers, r.read())

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw_exchange(path, data, timeout=SOCKET_TIMEOUT, shut_write=False):
    """Sends raw bytes on a new connection and returns everything read until the server
    closes the connection or `timeout` passes without data."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(path))
    out = b""
    try:
        s.sendall(data)
        if shut_write:
            s.shutdown(socket.SHUT_WR)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        # a server that answers early and closes may reset a connection with unread data
        pass
    finally:
        s.close()
    return out


def parse_responses(data):
    """Splits raw bytes into [(status, headers dict (lower-case names), body bytes)]."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError(f"incomplete response head: {data[:200]!r}")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        n = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:n]))
        data = rest[n:]
    return out


def parse_prometheus(text):
    """{name: value} from Prometheus text exposition; checks the format on the way: every
    non-comment line is "name value", and every name has a # TYPE line before it."""
    types, values = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            assert len(parts) == 4, f"bad TYPE line {line!r}"
            assert parts[3] in ("counter", "gauge", "untyped"), f"bad type in {line!r}"
            types[parts[2]] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = PROM_SAMPLE_RE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        name = m.group(1)
        assert name in types, f"{name} has no # TYPE line before it"
        assert name not in values, f"{name} appears twice"
        values[name] = int(float(m.group(2)))
    return values, types


def read_fifo(path):
    """What a FIFO holds now, read without blocking (b"" if nothing)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        data = b""
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data


def fd_count(vm):
    """Ember's file descriptors other than sockets (API connections come and go: the one of
    the request before may still be closing)."""
    fd_dir = f"/proc/{vm.proc.pid}/fd"
    n = 0
    for fd in os.listdir(fd_dir):
        try:
            n += not os.readlink(f"{fd_dir}/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass
    return n


# ---- the Ember process ----

class ApiVmm(OutputFiles):
    """One `ember --api-sock` process. Made by the fixtures; killed at teardown."""

    binary = EMBER  # the session's snapshot of it once the `built` fixture has run

    def __init__(self, workdir, extra_args=(), name="ember"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.socket_path = self.workdir / f"{name}.sock"
        self.console_path = self.workdir / f"{name}-console.log"
        self.log_path = self.workdir / f"{name}.log"
        self.extra_args = list(extra_args)
        self.proc = None
        self.returncode = None
        self.spawned_at = None
        self.ready_at = None

    @property
    def command(self):
        return [str(self.binary), "--api-sock", str(self.socket_path), *self.extra_args]

    def spawn(self, wait=True):
        assert self.proc is None, "already spawned"
        out = open(self.console_path, "wb")
        err = open(self.log_path, "wb")
        self.spawned_at = time.monotonic()
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=err, cwd=self.workdir, start_new_session=True)
        out.close()
        err.close()
        if wait:
            self.wait_for_socket()
        return self

    def wait_for_socket(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ember exited with {self.proc.returncode} before its API "
                                     f"socket was ready\n{self.describe()}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(str(self.socket_path))
                s.close()
                self.ready_at = time.monotonic()
                return
            except OSError:
                s.close()
                time.sleep(0.002)
        raise AssertionError(f"the API socket was not ready within {timeout} s\n"
                             + self.describe())

    # ---- requests ----
    def client(self, timeout=SOCKET_TIMEOUT):
        return Client(self.socket_path, timeout)

    def request(self, method, path, body=None, headers=None, timeout=SOCKET_TIMEOUT):
        with self.client(timeout) as c:
            return c.request(method, path, body, headers)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body, **kw)

    def ok(self, method, path, body=None):
        """A request that must succeed (204, or 200 for a GET); returns the response."""
        r = self.request(method, path, body)
        want = 200 if method == "GET" else 204
        assert r.status == want, f"{method} {path} {body!r}: {r}\n{self.describe()}"
        return r

    def raw(self, data, **kw):
        return raw_exchange(self.socket_path, data, **kw)

    def state(self):
        r = self.get("/")
        assert r.status == 200, r
        return r.json["state"]

    def metrics(self):
        """GET /metrics as {name: value} (names without the "ember_" prefix)."""
        r = self.get("/metrics")
        assert r.status == 200, r
        values, _ = parse_prometheus(r.text)
        return {k[len("ember_"):] if k.startswith("ember_") else k: v
                for k, v in values.items()}

    # ---- configuring and starting the test guest ----
    def configure(self, boot_args=HANG_ARGS, kernel=GUEST, vcpus=1, mem_mib=64):
        self.ok("PUT", "/boot-source", {"kernel_image_path": str(kernel),
                                        "boot_args": boot_args})
        self.ok("PUT", "/machine-config", {"vcpu_count": vcpus, "mem_size_mib": mem_mib})

    def start(self):
        return self.ok("PUT", "/actions", {"action_type": "InstanceStart"})

    def boot(self, boot_args=HANG_ARGS, wait_done=True, **kw):
        """Configures and starts the test guest; waits for its whole "done" line."""
        self.configure(boot_args, **kw)
        self.start()
        if wait_done:
            self.wait_done()
        return self

    def wait_done(self, timeout=10.0):
        self.wait_until(lambda: DONE_LINE_RE.search(self.console), timeout,
                        "the guest's whole done line on the console")

    # ---- what came out (console, log: OutputFiles) ----
    def wait_until(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.01)
        if predicate():
            return
        raise AssertionError(f"timed out after {timeout} s waiting for {what}\n"
                             + self.describe())

    def wait_console(self, text, timeout=10.0):
        self.wait_until(lambda: text in self.console, timeout, f"{text!r} on the console")

    def wait_log(self, text, timeout=10.0):
        self.wait_until(lambda: text in self.log, timeout, f"{text!r} in the log")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_healthy(self, state=None):
        """The process is alive and GET / answers, in `state` if given."""
        assert self.alive(), f"ember exited with {self.proc.returncode}\n{self.describe()}"
        r = self.get("/")
        assert r.status == 200, f"GET / gave {r}\n{self.describe()}"
        assert r.json["app_name"] == "Ember"
        if state is not None:
            assert r.json["state"] == state, f"{r.json}\n{self.describe()}"
        return r.json

    def wait_exit(self, timeout=10.0):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"ember did not exit within {timeout} s\n" + self.describe())
        return self.returncode

    def signal(self, signo):
        self.proc.send_signal(signo)

    def kill(self):
        kill_process_group(self.proc)
        if self.proc is not None and self.returncode is None:
            self.returncode = self.proc.returncode

    def describe(self, lines=25):
        rc = self.proc.poll() if self.proc else None
        return (f"--- {self.name}: {' '.join(self.command)}\n--- exit code: {rc}\n"
                f"--- console (last {lines} lines):\n{tail(self.console, lines)}\n"
                f"--- log (last {lines} lines):\n{tail(self.log, lines)}")


@pytest.fixture
def ember_factory(request, tmp_path):
    vmms = Made(request, "api_vmms")

    def make(extra_args=(), spawn=True, name=None):
        vm = vmms.add(ApiVmm(tmp_path, extra_args, name or f"ember{len(vmms)}"))
        if spawn:
            vm.spawn()
        return vm

    yield make
    vmms.kill_all()


@pytest.fixture
def ember(ember_factory):
    return ember_factory()


@pytest.fixture
def running_ember(ember_factory):
    vm = ember_factory()
    vm.boot(HANG_ARGS)
    return vm


# on a failure, attach each spawned Ember's console and log tails to the report
pytest_runtest_makereport = failure_report_hook("api_vmms", lambda vm: f"ember {vm.name}", 40,
                                                spawned_only=True)
