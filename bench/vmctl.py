# SPDX-License-Identifier: Apache-2.0
"""The processes the snapshot benchmarks (snapshot.py, linux_snapshot.py, density.py) start
and talk to: an `ember --api-sock` driven over its socket with a tiny HTTP client, and the
uffd page-fault handler (build/ember-uffd-handler). Each benchmark subclasses them for what
it reads from them."""
import json
import os
import socket
import subprocess
import time

from api import read_response


def http(path, method, url, body=None):
    """One request on a fresh connection to the API socket at path: (status, body). A peer
    that closes early raises ConnectionError (api.read_response)."""
    data = json.dumps(body).encode() if body is not None else b""
    req = (f"{method} {url} HTTP/1.1\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(data)}\r\n\r\n").encode() + data
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    try:
        s.sendall(req)
        return read_response(s)[:2]
    finally:
        s.close()


class Ember:
    """`binary --api-sock SOCK --level Warning` with its stdout and stderr as given; returns
    once GET / answers 200 on SOCK (polled every poll_s), or raises RuntimeError after
    timeout s."""

    def __init__(self, binary, sock, stdout, stderr, timeout, poll_s):
        self.sock = sock
        self.proc = subprocess.Popen([binary, "--api-sock", sock, "--level", "Warning"],
                                     stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        deadline = time.monotonic() + timeout
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(poll_s)
        while time.monotonic() < deadline:
            try:
                if http(sock, "GET", "/")[0] == 200:
                    return
            except OSError:
                time.sleep(poll_s)
        raise RuntimeError("no API socket")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class UffdHandler:
    """`binary --socket SOCK --mem-file MEMF --once [extra]`, once it has said "ready" on its
    stdout (a text pipe, for what it says when the VM is done)."""

    def __init__(self, binary, sock, memf, *extra):
        self.sock = sock
        self.proc = subprocess.Popen([binary, "--socket", sock, "--mem-file", memf, "--once",
                                      *extra], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the uffd handler did not start")
