# SPDX-License-Identifier: Apache-2.0
"""virtio-vsock from the guest's side: the test guest's own driver
(tests/guest/virtio_vsock.c) against a host peer on Ember's Unix sockets, Firecracker's
hybrid design (docs/vsock.md). The guest connects to host port 5000 (<uds_path>_5000) and
the bytes go both ways under the guest's small credit; a guest connection to a port where
nothing listens is reset; then the host connects to guest port 53 (refused: closed without
OK) and 52 (OK, and the guest echoes what the host sends). Both sides check every byte."""

import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from guestrun import image, make_config, metric_sum, metrics_lines, run

CID = 3
PORT_ECHO, PORT_LISTEN, PORT_CLOSED = 5000, 52, 53
TX_SIZES = [1, 3000, 8000, 2 * 4096 + 7]  # the guest's packets on stream 0
HOST_BYTES = 65536  # stream 1
ECHO_BYTES = 5000  # stream 2
GUEST_BUF_ALLOC = 16384
WAIT = 8.0


def stream(s, start, end):
    """Bytes [start, end) of stream s (virtio_vsock.c's vsock_byte())."""
    return bytes((s * 77 + k + (k >> 8) * 3) & 0xFF for k in range(start, end))


def recv_exactly(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def recv_line(sock, limit=64):
    out = bytearray()
    while len(out) < limit and not out.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def connect_uds(path):
    deadline = time.monotonic() + WAIT
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(WAIT)
        try:
            s.connect(str(path))
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class VsockPeer(threading.Thread):
    """The host side of the three parts, in the guest's order; what it saw goes in `got`."""

    def __init__(self, uds):
        super().__init__(daemon=True)
        self.uds = uds
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(f"{uds}_{PORT_ECHO}")
        self.listener.listen(4)
        self.listener.settimeout(WAIT)
        self.got = {}
        self.error = None

    def run(self):
        try:
            self.guest_to_host()
            self.host_to_guest()
        except Exception as e:  # reported by finish()
            self.error = e

    def guest_to_host(self):
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(WAIT)
            self.got["from_guest"] = recv_exactly(conn, sum(TX_SIZES))
            conn.sendall(stream(1, 0, HOST_BYTES))
            conn.shutdown(socket.SHUT_WR)
            self.got["after_shutdown"] = conn.recv(1)  # EOF once the guest shuts down

    def host_to_guest(self):
        with connect_uds(self.uds) as s:
            s.sendall(b"CONNECT %d\n" % PORT_CLOSED)
            self.got["closed_port"] = s.recv(64)  # the guest refuses: EOF, no OK
        with connect_uds(self.uds) as s:
            s.sendall(b"CONNECT %d\n" % PORT_LISTEN)
            self.got["ok_line"] = recv_line(s)
            s.sendall(stream(2, 0, ECHO_BYTES))
            self.got["echo"] = recv_exactly(s, ECHO_BYTES)
            self.got["echo_end"] = s.recv(1)

    def finish(self):
        self.join(WAIT)
        self.listener.close()
        assert not self.is_alive(), "the vsock peer is stuck"
        got = {k: (len(v), v[:32]) for k, v in self.got.items()}
        assert self.error is None, f"the vsock peer failed: {self.error!r} (got {got})"


@pytest.fixture
def uds_dir():
    # a short path: sun_path holds 107 bytes
    with tempfile.TemporaryDirectory(prefix="ev-", dir="/tmp") as d:
        yield Path(d)


def run_vsock(uds_dir, tests, exit_code=0):
    uds = uds_dir / "v.sock"
    metrics = uds_dir / "metrics.json"
    metrics.touch()
    config = make_config(image("guest.elf"), f"tests={tests} exit=port:{exit_code}", 1, 128)
    config["vsock"] = {"guest_cid": CID, "uds_path": str(uds)}
    config["metrics"] = {"metrics_path": str(metrics)}
    return uds, config, metrics


def test_streams_both_ways_with_credit_and_shutdown(uds_dir):
    uds, config, metrics = run_vsock(uds_dir, "virtio_vsock")
    peer = VsockPeer(uds)
    peer.start()
    try:
        r = run(config=config, debug_exit=True)
    finally:
        peer.finish()
    assert r.returncode == 0, r.explain()
    r.assert_all_passed(["virtio_vsock"])
    got = peer.got
    dev = dict(w.split("=", 1) for w in r.values("virtio-vsock")[0][1:])
    assert int(dev["cid"]) == CID, r.explain()
    # guest to host: every byte, in order; then the host's shutdown and the guest's
    assert got["from_guest"] == stream(0, 0, sum(TX_SIZES))
    assert got["after_shutdown"] == b""
    g2h = dict(w.split("=", 1) for w in r.values("virtio-vsock")[1][1:])
    assert (int(g2h["sent"]), int(g2h["received"])) == (sum(TX_SIZES), HOST_BYTES), r.explain()
    # 64 KiB through 16 KiB of credit: the host waited for each of the guest's updates (the
    # guest checks that nothing came while it had no credit left)
    assert int(g2h["credit_updates"]) == HOST_BYTES // GUEST_BUF_ALLOC - 1, r.explain()
    assert ["no-listener", "port=5001", "rst"] in r.values("virtio-vsock"), r.explain()
    # host to guest: refused without OK, then OK <port from 2^30>, and the echo
    assert got["closed_port"] == b""
    ok = got["ok_line"].split()
    assert len(ok) == 2 and ok[0] == b"OK" and got["ok_line"].endswith(b"\n"), got
    requests = [dict(w.split("=", 1) for w in v[1:]) for v in r.values("virtio-vsock")
                if v[0] == "host-request"]
    assert [int(q["port"]) for q in requests] == [PORT_CLOSED, PORT_LISTEN], r.explain()
    assert int(ok[1]) == int(requests[1]["from"]) >= 1 << 30, (got, requests)
    assert got["echo"] == stream(2, 0, ECHO_BYTES)
    assert got["echo_end"] == b""
    assert not uds.exists(), "Ember left its socket behind"
    flushed = metrics_lines(metrics)
    assert metric_sum(flushed, "virtio", "needs_reset") == 0
    assert metric_sum(flushed, "vsock", "bad_packets") == 0
    assert metric_sum(flushed, "vsock", "tx_bytes_count") == sum(TX_SIZES) + ECHO_BYTES
    assert metric_sum(flushed, "vsock", "rx_bytes_count") == HOST_BYTES + ECHO_BYTES


def test_no_vsock_device_fails_cleanly():
    r = run(boot_args="tests=virtio_vsock exit=auto", debug_exit=True)
    assert r.returncode == 1, r.explain()
    assert "FAIL virtio_vsock: no virtio-vsock device" in r.lines, r.explain()
