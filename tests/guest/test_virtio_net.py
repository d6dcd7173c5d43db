# SPDX-License-Identifier: Apache-2.0
"""virtio-net from the guest's side: the test guest's own driver (tests/guest/virtio_net.c)
on a TAP in a network namespace of the test's own. A peer on the host (an AF_PACKET socket
on the TAP, with virtio-net headers: PACKET_VNET_HDR) sees every frame the guest sends, and
answers each of the guest's pings with frames whose bytes the guest checks and sends back.
The host checks what came out of the TAP: the guest's frames, its checksum and TSO
offloads, and the echoes, byte for byte."""

import select
import socket
import struct
import threading

from guestrun import image, make_config, metric_sum, metrics_lines, run

GUEST_MAC = "06:00:0a:00:00:02"
HOST_MAC = bytes.fromhex("02ee00000001")
TYPE_PING = b"\x88\xb5"
TYPE_ECHO = b"\x88\xb6"
ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
VNET_HDR = struct.Struct("<BBHHHH")  # what AF_PACKET puts in front: no num_buffers
VNET_F_NEEDS_CSUM = 1
VNET_GSO_TCPV4 = 1
TSO_PAYLOAD, TSO_MSS = 4000, 1000
# (frame number, length) the host sends for each phase's ping (tests/guest/virtio_net.c);
# frame 4 is too big for phase 2's buffers and must not arrive
FRAMES = {1: [(0, 60), (1, 1514), (2, 9014)], 2: [(3, 60), (4, 9014), (5, 1514)]}
DELIVERED = {1: [0, 1, 2], 2: [3, 5]}
FEATURES = {"CSUM": 0, "GUEST_CSUM": 1, "MAC": 5, "HOST_TSO4": 11, "MRG_RXBUF": 15,
            "INDIRECT_DESC": 28, "EVENT_IDX": 29, "VERSION_1": 32}


def mac_bytes(mac):
    return bytes.fromhex(mac.replace(":", ""))


def pattern(n, start, end):
    """Bytes start..end of host frame n (virtio_net.c's net_byte())."""
    return bytes((n * 31 + k) & 0xFF for k in range(start, end))


def host_frame(n, length):
    return mac_bytes(GUEST_MAC) + HOST_MAC + TYPE_PING + pattern(n, 14, length)


def ones_sum(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


class TapPeer(threading.Thread):
    """Records what the guest sends on the TAP (virtio-net header, frame) and answers each
    ping with answer(phase, seq): a list of frames."""

    def __init__(self, sock, answer):
        super().__init__(daemon=True)
        self.sock, self.answer = sock, answer
        self.seen = []
        self.error = None
        self.stopping = threading.Event()

    def run(self):
        try:
            while not self.stopping.is_set():
                if not select.select([self.sock], [], [], 0.05)[0]:
                    continue
                data, addr = self.sock.recvfrom(1 << 17)
                if addr[2] == PACKET_OUTGOING:
                    continue
                hdr, frame = VNET_HDR.unpack(data[:VNET_HDR.size]), data[VNET_HDR.size:]
                self.seen.append((hdr, frame))
                ping = parse_ping(frame)
                if ping:
                    for f in self.answer(*ping):
                        self.sock.send(bytes(VNET_HDR.size) + f)
        except Exception as e:  # reported by stop()
            self.error = e

    def stop(self):
        self.stopping.set()
        self.join(5)
        assert self.error is None, f"the TAP peer failed: {self.error!r}"


def parse_ping(frame):
    """(phase, seq) of a guest's ping, else None."""
    if frame[12:14] != TYPE_PING or not frame[14:].startswith(b"EMBER-NET ping "):
        return None
    words = dict(w.split(b"=") for w in frame[14:].rstrip(b"\0").split()[2:])
    return int(words[b"phase"]), int(words[b"seq"])


def tap_socket(ns, tap):
    def make():
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        s.bind((tap, 0))
        return s
    return ns.socket(make)


def run_net(tmp_path, ns, tests, answer, mac=GUEST_MAC, exit_code=0):
    """Ember in ns with eth0 on tap0 (MTU 9000), the peer answering pings; (result, peer,
    metrics flushed)."""
    ns.add_tap("tap0", mtu=9000)
    sock = tap_socket(ns, "tap0")
    metrics = tmp_path / "metrics.json"
    metrics.touch()
    config = make_config(image("guest.elf"), f"tests={tests} exit=port:{exit_code}", 1, 128)
    config["network-interfaces"] = [{"iface_id": "eth0", "host_dev_name": "tap0",
                                     "guest_mac": mac}]
    config["metrics"] = {"metrics_path": str(metrics)}
    peer = TapPeer(sock, answer)
    peer.start()
    try:
        r = run(config=config, debug_exit=True, netns=ns.name)
    finally:
        peer.stop()
        sock.close()
    assert r.returncode == exit_code, r.explain()
    return r, peer, metrics_lines(metrics)


def answer_phases(phase, seq):
    return [host_frame(n, length) for n, length in FRAMES.get(phase, [])]


def check_udp(hdr, frame):
    """The guest's UDP frame, its checksum left to the host: finishing it as the device
    would (sum from csum_start, into csum_start + csum_offset) gives a valid checksum."""
    flags, _, _, _, start, off = hdr
    assert (flags & VNET_F_NEEDS_CSUM, start, off) == (VNET_F_NEEDS_CSUM, 34, 6), hdr
    ip, udp = frame[14:34], frame[34:]
    assert ip[9] == 17 and ip[12:16] == bytes([10, 0, 0, 2]), ip.hex()
    assert ones_sum(ip) == 0xFFFF, "bad IPv4 header checksum"
    assert udp[8:] == b"EMBER-NET udp csum offload"
    done = udp[:6] + struct.pack("!H", 0xFFFF & ~ones_sum(udp)) + udp[8:]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))
    assert ones_sum(pseudo + done) == 0xFFFF, "the finished UDP checksum is wrong"


def check_tso(hdr, frame):
    """One TCP segment of TSO_PAYLOAD bytes that the host is to cut at TSO_MSS."""
    flags, gso_type, _, gso_size, start, off = hdr
    assert (gso_type, gso_size) == (VNET_GSO_TCPV4, TSO_MSS), hdr
    assert (flags & VNET_F_NEEDS_CSUM, start, off) == (VNET_F_NEEDS_CSUM, 34, 16), hdr
    assert len(frame) == 14 + 20 + 20 + TSO_PAYLOAD
    assert frame[54:] == bytes((99 * 31 + k) & 0xFF for k in range(TSO_PAYLOAD))


def check_echo(frame, n, length):
    assert frame[:14] == HOST_MAC + mac_bytes(GUEST_MAC) + TYPE_ECHO, frame[:14].hex()
    assert len(frame) == length, f"echo of frame {n}: {len(frame)} bytes, sent {length}"
    assert frame[14:] == pattern(n, 14, length), f"echo of frame {n} differs"


def test_frames_both_ways_with_offloads_and_mergeable_buffers(tmp_path, netns):
    r, peer, flushed = run_net(tmp_path, netns, "virtio_net", answer_phases)
    r.assert_all_passed(["virtio_net"])
    first = r.values("virtio-net")[0]
    kv = dict(w.split("=", 1) for w in first)
    assert kv["mac"] == GUEST_MAC, r.explain()
    features = int(kv["features"], 16)
    for name, bit in FEATURES.items():
        assert features >> bit & 1, f"{name} not negotiated: {r.explain()}"
    # what the guest received: every byte checked in the guest; the 9014-byte frame took
    # two 4608-byte mergeable buffers
    rx = [dict(w.split("=", 1) for w in v[1:]) for v in r.values("virtio-net")
          if v[:1] == ["rx"] and v[1].startswith("frame=")]
    assert [(int(x["frame"]), int(x["len"]), int(x["bufs"])) for x in rx] == \
        [(0, 60, 1), (1, 1514, 1), (2, 9014, 2), (3, 60, 1), (5, 1514, 1)], r.explain()
    # what the host saw, in order
    lengths = dict(FRAMES[1] + FRAMES[2])
    seen = list(peer.seen)
    assert len(seen) == 3 + len(DELIVERED[1]) + 1 + len(DELIVERED[2]), \
        [f[:40].hex() for _, f in seen]
    check_udp(*seen[0])
    check_tso(*seen[1])
    for hdr, frame in seen[2:]:
        assert frame[6:12] == mac_bytes(GUEST_MAC), frame[:14].hex()
    assert parse_ping(seen[2][1]) == (1, 0)
    assert seen[2][1][:6] == b"\xff" * 6
    for (_, frame), n in zip(seen[3:6], DELIVERED[1]):
        check_echo(frame, n, lengths[n])
    assert parse_ping(seen[6][1]) == (2, 1)
    for (_, frame), n in zip(seen[7:], DELIVERED[2]):
        check_echo(frame, n, lengths[n])
    assert metric_sum(flushed, "virtio", "needs_reset") == 0
    assert metric_sum(flushed, "net", "tx_malformed_frames") == 0
    assert metric_sum(flushed, "net", "rx_packets_count") == 5
    assert metric_sum(flushed, "net", "tx_packets_count") == len(seen)
    assert metric_sum(flushed, "net", "tx_spoofed_mac_count") == 0


def test_no_interface_fails_cleanly():
    r = run(boot_args="tests=virtio_net exit=auto", debug_exit=True)
    assert r.returncode == 1, r.explain()
    assert "FAIL virtio_net: no virtio-net device" in r.lines, r.explain()
