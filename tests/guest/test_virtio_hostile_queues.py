# SPDX-License-Identifier: Apache-2.0
"""Hostile drivers on virtio-net and virtio-vsock (tests/guest/virtio_net_hostile.c,
virtio_vsock_hostile.c): bad descriptor chains, indices and rings get the device
DEVICE_NEEDS_RESET, bad frames and packets are dropped (or answered with RST), and after
each the device works again; Ember keeps running to the end and exits as the guest asks.
The host checks what a user would see: nothing malformed came out of the TAP, a spoofed
vsock CID reached no host socket, and the counters say what happened."""

import socket
import tempfile
import threading
from pathlib import Path

import pytest

from guestrun import metric_sum, metrics_lines, run
from test_virtio_net import GUEST_MAC, HOST_MAC, TYPE_PING, mac_bytes, parse_ping, run_net
from test_virtio_vsock import run_vsock

NET_RESET = ["tx-desc-past-ram", "tx-desc-wraps", "tx-absurd-length", "tx-zero-length",
             "tx-chain-loop", "tx-next-out-of-range", "tx-head-out-of-range",
             "tx-avail-idx-jump", "tx-writable-buffer", "tx-indirect-nested",
             "rx-readable-buffer", "rx-shorter-than-header", "rx-desc-past-ram",
             "rx-chain-loop"]
NET_DROP = ["tx-short-header", "tx-header-only", "tx-oversize"]
VSOCK_RESET = ["tx-desc-past-ram", "tx-absurd-length", "tx-zero-length", "tx-chain-loop",
               "tx-next-out-of-range", "tx-head-out-of-range", "tx-avail-idx-jump",
               "rx-chain-loop"]
VSOCK_RST = ["len-beyond-buffer", "bad-op", "bad-type", "rw-unconnected"]
VSOCK_DROP = ["short-header", "wrong-src-cid", "wrong-dst-cid"]
VSOCK_ORDER = VSOCK_RESET + ["short-header"] + VSOCK_RST + ["wrong-src-cid", "wrong-dst-cid",
                                                            "rx-small-buffer"]
NEEDS_RESET = "status=0x4f"  # ACKNOWLEDGE|DRIVER|FEATURES_OK|DRIVER_OK|NEEDS_RESET


def pong(phase, seq):
    body = b"EMBER-NET pong seq=%d" % seq
    return [mac_bytes(GUEST_MAC) + HOST_MAC + TYPE_PING + body + bytes(46 - len(body))]


def by_case(r, keyword):
    return {v[0]: v[1:] for v in r.values(keyword)}


def test_net_hostile_driver(tmp_path, netns):
    r, peer, flushed = run_net(tmp_path, netns, "virtio_net_hostile,hello", pong,
                               exit_code=42)
    r.assert_all_passed(["virtio_net_hostile", "hello"])
    cases = by_case(r, "virtio-net-hostile")
    assert list(cases) == NET_RESET + NET_DROP, r.explain()
    for name in NET_RESET:
        assert cases[name][0] == NEEDS_RESET, (name, r.explain())
    for name in NET_DROP:
        assert cases[name][0] == "dropped", (name, r.explain())
    # nothing but the guest's pings came out of the TAP: no malformed frame, no part of one
    pings = [parse_ping(f) for _, f in peer.seen]
    assert pings == [(0, n) for n in range(len(pings))], [f[:40].hex() for _, f in peer.seen]
    assert len(pings) == len(NET_RESET) + len(NET_DROP) + 4  # + the pings that met bad RX
    assert metric_sum(flushed, "virtio", "needs_reset") == len(NET_RESET)
    assert metric_sum(flushed, "net", "tx_malformed_frames") == len(NET_DROP)


class Listener(threading.Thread):
    """Accepts on <uds_path>_5000 and keeps what each connection sent."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.conns = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            with c:
                c.settimeout(5)
                data = b""
                while chunk := c.recv(4096):
                    data += chunk
                self.conns.append(data)

    def stop(self):
        self.stopping.set()
        self.join(10)
        self.sock.close()


@pytest.fixture
def uds_dir():
    with tempfile.TemporaryDirectory(prefix="evh-", dir="/tmp") as d:
        yield Path(d)


def test_vsock_hostile_driver(uds_dir):
    uds, config, metrics = run_vsock(uds_dir, "virtio_vsock_hostile,hello", exit_code=42)
    listener = Listener(f"{uds}_5000")
    listener.start()
    try:
        r = run(config=config, debug_exit=True)
    finally:
        listener.stop()
    assert r.returncode == 42, r.explain()
    r.assert_all_passed(["virtio_vsock_hostile", "hello"])
    cases = by_case(r, "virtio-vsock-hostile")
    assert list(cases) == VSOCK_ORDER, r.explain()
    for name in VSOCK_RESET:
        assert cases[name][0] == NEEDS_RESET, (name, r.explain())
    for name in VSOCK_RST:
        assert cases[name][0] == "rst", (name, r.explain())
    for name in VSOCK_DROP:
        assert cases[name][0] == "dropped", (name, r.explain())
    assert cases["rx-small-buffer"] == ["returned", "len=0"], r.explain()
    # the REQUESTs with a wrong CID or type reached no host socket; the last, real one did
    assert listener.conns == [b"alive"], listener.conns
    flushed = metrics_lines(metrics)
    assert metric_sum(flushed, "virtio", "needs_reset") == len(VSOCK_RESET)
    # rw-unconnected is a well-formed packet for no connection: answered, not counted
    assert metric_sum(flushed, "vsock", "bad_packets") == len(VSOCK_DROP) + len(VSOCK_RST) - 1
    assert metric_sum(flushed, "vsock", "conns_added") == 1
