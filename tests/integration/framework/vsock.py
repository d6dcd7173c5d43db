# SPDX-License-Identifier: Apache-2.0
"""The host's side of Ember's vsock bridge (docs/vsock.md), for tests that talk to the guest
agent (resources/guest/agent) through it."""
import socket

AGENT_PORT = 52


def host_connect(uds, port=AGENT_PORT, timeout=60):
    """A connection to the guest's port through Ember's bridge: (socket, the OK line)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(uds))
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        line += b
    return s, line.decode()


def recv_all(s):
    out = bytearray()
    while True:
        b = s.recv(1 << 16)
        if not b:
            return bytes(out)
        out += b
