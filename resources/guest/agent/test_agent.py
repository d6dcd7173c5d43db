#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""test_agent.py AGENT: tests ember-agent's protocol on the host, over a Unix socket
(`ember-agent --unix PATH`), which runs the same code as the vsock listener. Run by
resources/guest/selftest.sh (make guest-images-selftest) against the cached agent; about
5 s. Prints one PASS/FAIL line per check and exits 1 if any failed.

The pattern helpers below are the reference for SOURCE's bytes (docs/guest-images.md has
the same code): splitmix64 seeded with the byte count, each output little-endian.
"""
import hashlib
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

_M = (1 << 64) - 1


def ember_pattern_chunks(n, chunk_words=8192):
    """Yields the n bytes that `SOURCE n` sends (and `ember-agent pattern n` writes), in
    pieces: splitmix64 seeded with n, each 64-bit output little-endian, the last cut short."""
    state, left = n, n
    while left:
        words = min(chunk_words, (left + 7) // 8)
        out = []
        for _ in range(words):
            state = (state + 0x9E3779B97F4A7C15) & _M
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M
            out.append(z ^ (z >> 31))
        piece = struct.pack(f"<{words}Q", *out)[:left]
        left -= len(piece)
        yield piece


def ember_pattern(n):
    return b"".join(ember_pattern_chunks(n))


def ember_pattern_sha256(n):
    h = hashlib.sha256()
    for piece in ember_pattern_chunks(n):
        h.update(piece)
    return h.hexdigest()


failed = 0


def check(name, ok, detail=""):
    global failed
    print(f"agent-test: {'PASS' if ok else 'FAIL'} {name}" + ("" if ok else f" {detail}"))
    if not ok:
        failed += 1


def conn(path, timeout=20):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def recv_all(s):
    chunks = []
    while True:
        b = s.recv(1 << 16)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def exchange(path, request, half_close=True):
    """Sends request (in a thread, so big payloads cannot deadlock), half-closes, returns
    everything the agent sent until it closed."""
    s = conn(path)
    err = []

    def send():
        try:
            s.sendall(request)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=send)
    t.start()
    chunks = []
    try:
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            chunks.append(b)
    except ConnectionResetError:
        chunks.append(b"<reset>")
    data = b"".join(chunks)
    t.join()
    s.close()
    return data


def test_echo(path):
    for n in (0, 1, 4096, 100_000, 3 << 20):
        payload = os.urandom(n)
        got = exchange(path, b"ECHO\n" + payload)
        check(f"ECHO {n} bytes", got == payload, f"(got {len(got)} bytes)")
    got = exchange(path, b"ECHO\r\nabc")
    check("ECHO with CRLF", got == b"abc", repr(got))


def test_sink(path):
    for n in (0, 1, 55, 56, 64, 65, 1000, 65536, 1 << 20, (1 << 20) + 7, 5_000_001):
        payload = os.urandom(n)
        got = exchange(path, b"SINK\n" + payload)
        want = f"{n} {hashlib.sha256(payload).hexdigest()}\n".encode()
        check(f"SINK {n} bytes", got == want, f"(got {got!r}, want {want!r})")
    # SINK N stops after N bytes without waiting for EOF (no half-close here)
    payload = os.urandom(300_000)
    got = exchange(path, b"SINK 300000\n" + payload, half_close=False)
    want = f"300000 {hashlib.sha256(payload).hexdigest()}\n".encode()
    check("SINK N without half-close", got == want, repr(got))
    # cross-check with sha256sum for a file
    with tempfile.NamedTemporaryFile() as f:
        f.write(os.urandom((1 << 20) + 3))
        f.flush()
        ref = subprocess.run(["sha256sum", f.name], stdout=subprocess.PIPE, text=True,
                             check=True).stdout.split()[0]
        with open(f.name, "rb") as fh:
            got = exchange(path, b"SINK\n" + fh.read())
        check("SINK agrees with sha256sum", got == f"{(1 << 20) + 3} {ref}\n".encode(), repr(got))


def test_source(path, agent):
    for n in (0, 1, 7, 8, 9, 65536, 1 << 20, (1 << 20) + 5):
        got = exchange(path, f"SOURCE {n}\n".encode())
        check(f"SOURCE {n} bytes", len(got) == n and got == ember_pattern(n), f"(got {len(got)})")
    n = 3_000_003
    got = exchange(path, f"SOURCE {n}\n".encode())
    check(f"SOURCE {n}: sha256 as ember_pattern_sha256()",
          hashlib.sha256(got).hexdigest() == ember_pattern_sha256(n) and len(got) == n)
    out = subprocess.run([agent, "pattern", str(n)], stdout=subprocess.PIPE, check=True).stdout
    check("ember-agent pattern N == SOURCE N", out == got)


def test_exec(path):
    got = exchange(path, b"EXEC echo out; echo err >&2; exit 3\n")
    check("EXEC: stdout and stderr", got == b"out\nerr\n", repr(got))
    got = exchange(path, b"EXEC tr a-z A-Z\nhello agent\n")
    check("EXEC: stdin is the connection", got == b"HELLO AGENT\n", repr(got))
    got = exchange(path, b"EXEC sleep 0.2 & wait; echo rc=$?\n")
    check("EXEC: the shell can wait for its children", got == b"rc=0\n", repr(got))
    got = exchange(path, b"EXEC false; echo rc=$?\n")
    check("EXEC: exit status visible to the shell", got == b"rc=1\n", repr(got))


def test_garbage(path):
    cases = [
        (b"HELLO\n", b"ERR unknown command\n"),
        (b"\n", b"ERR unknown command\n"),
        (b"echo\n", b"ERR unknown command\n"),
        (b"EXEC\n", b"ERR unknown command\n"),
        (b"EXEC \n", b"ERR unknown command\n"),
        (b"SOURCE\n", b"ERR unknown command\n"),
        (b"SOURCE -1\n", b"ERR bad argument\n"),
        (b"SOURCE 99999999999999999999999\n", b"ERR bad argument\n"),
        (b"SOURCE 12x\n", b"ERR bad argument\n"),
        (b"SINK abc\n", b"ERR bad argument\n"),
        (b"ECHO\0\n", b"ERR unknown command\n"),
        (b"no newline at all", b"ERR unknown command\n"),
        (b"", b""),
        (b"A" * 5000 + b"\n", b"ERR line too long\n"),
        (os.urandom(100_000), None),
    ]
    for req, want in cases:
        got = exchange(path, req)
        if want is None:  # random bytes: some error line, or nothing at all on a reset
            ok = got in (b"ERR unknown command\n", b"ERR line too long\n")
        else:
            ok = got == want
        check(f"garbage {req[:24]!r}{'...' if len(req) > 24 else ''}", ok, repr(got[:80]))


def test_concurrency(path, n=300):
    socks = [conn(path, timeout=60) for _ in range(n)]
    for i, s in enumerate(socks):
        s.sendall(b"ECHO\n" if i % 2 else b"SINK\n")
    for i, s in enumerate(socks):
        s.sendall(f"conn {i}\n".encode())
        s.shutdown(socket.SHUT_WR)
    ok = 0
    for i, s in enumerate(socks):
        data = recv_all(s)
        body = f"conn {i}\n".encode()
        want = body if i % 2 else f"{len(body)} {hashlib.sha256(body).hexdigest()}\n".encode()
        ok += data == want
        s.close()
    check(f"{n} concurrent connections", ok == n, f"({ok} right)")


def test_connect(agent, tmp):
    lpath = os.path.join(tmp, "host.sock")
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(lpath)
    ls.listen(1)
    ls.settimeout(10)
    result = {}

    def host():
        c, _ = ls.accept()
        c.settimeout(10)
        data = recv_all(c)  # until the agent half-closes at EOF on its stdin
        result["got"] = data
        c.sendall(b"reply " + str(len(data)).encode() + b"\n")
        c.close()

    t = threading.Thread(target=host)
    t.start()
    r = subprocess.run([agent, "connect", "--unix", lpath, "HELLO", "from", "guest"],
                       input=b"payload", stdout=subprocess.PIPE, timeout=20)
    t.join()
    ls.close()
    check("connect: sends the line, then stdin", result.get("got") == b"HELLO from guest\npayload",
          repr(result.get("got")))
    check("connect: copies the reply to stdout, exits 0",
          r.returncode == 0 and r.stdout == b"reply 24\n", f"rc={r.returncode} {r.stdout!r}")
    r = subprocess.run([agent, "connect", "--unix", os.path.join(tmp, "nobody")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    check("connect: no listener -> exit 1 with a message",
          r.returncode == 1 and b"cannot connect" in r.stderr, r.stderr.decode())


def test_sha256_cli(agent):
    for n in (0, 1, 64, 1 << 20):
        data = os.urandom(n)
        r = subprocess.run([agent, "sha256"], input=data, stdout=subprocess.PIPE, check=True)
        check(f"sha256 CLI {n} bytes",
              r.stdout == f"{n} {hashlib.sha256(data).hexdigest()}\n".encode(), repr(r.stdout))


def test_clone_safety(agent, tmp):
    """VMGENID, RESEED and the listener's watch of the VM generation ID, against files that
    stand in for /proc/cmdline, /dev/mem (the page at 0x2000), /dev/hwrng, /dev/random (a
    regular file: its ioctls fail, so the bytes go to "urandom") and /dev/urandom."""
    files = {k: os.path.join(tmp, k) for k in ("cmdline", "mem", "hwrng", "random", "urandom",
                                               "err")}
    page = 0x2000
    with open(files["cmdline"], "w") as f:
        f.write(f"console=ttyS0 ember.vmgenid={page:#x} reboot=k\n")
    hwrng = os.urandom(64)
    with open(files["hwrng"], "wb") as f:
        f.write(hwrng + os.urandom(64))
    for k in ("random", "urandom"):
        open(files[k], "wb").close()

    def set_page(counter):
        ident = os.urandom(16)
        with open(files["mem"], "r+b" if os.path.exists(files["mem"]) else "wb") as f:
            f.truncate(3 * 4096)
            f.seek(page)
            f.write(ident + struct.pack("<Q", counter))
        return f"{counter} {ident.hex()}\n".encode()

    env = dict(os.environ, EMBER_AGENT_CMDLINE=files["cmdline"], EMBER_AGENT_MEM=files["mem"],
               EMBER_AGENT_HWRNG=files["hwrng"], EMBER_AGENT_RANDOM=files["random"],
               EMBER_AGENT_URANDOM=files["urandom"])
    want = set_page(0)
    path = os.path.join(tmp, "clone.sock")
    with open(files["err"], "wb") as err:
        subprocess.run([agent, "--daemon", "--unix", path], env=env, stderr=err, timeout=10)
    try:
        got = exchange(path, b"VMGENID\n")
        check("VMGENID: counter and ID", got == want, repr(got))
        check("no reseed while the generation stays", os.path.getsize(files["urandom"]) == 0)
        want = set_page(1)  # a restore: the next connection is served after a reseed
        got = exchange(path, b"VMGENID\n")
        check("VMGENID after a restore", got == want, repr(got))
        with open(files["urandom"], "rb") as f:
            check("a new generation reseeds before the connection is served",
                  f.read() == hwrng)
        with open(files["err"]) as f:
            log = f.read()
        check("the reseed is logged",
              "VM generation 1 (was 0): a clone; reseeded the kernel RNG: OK hwrng=64 "
              "added=urandom reseed=none" in log, log)
        got = exchange(path, b"RESEED\n")
        check("RESEED", got == b"OK hwrng=64 added=urandom reseed=none\n", repr(got))
        want = set_page(2)  # no connection: the watch looks once a second
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "VM generation 2" not in open(files["err"]).read():
            time.sleep(0.1)
        check("the watch sees a new generation without a connection",
              "VM generation 2 (was 1)" in open(files["err"]).read())
        r = subprocess.run([agent, "vmgenid"], env=env, stdout=subprocess.PIPE, timeout=10)
        check("vmgenid CLI", r.returncode == 0 and r.stdout == want, repr(r.stdout))
    finally:
        exchange(path, b"EXEC kill $PPID\n")
    bad = dict(env, EMBER_AGENT_CMDLINE=files["hwrng"], EMBER_AGENT_HWRNG="/nonexistent")
    r = subprocess.run([agent, "vmgenid"], env=bad, stdout=subprocess.PIPE, timeout=10)
    check("vmgenid CLI without the parameter: exit 1, ERR",
          r.returncode == 1 and r.stdout.startswith(b"ERR no page-aligned"), repr(r.stdout))
    r = subprocess.run([agent, "reseed"], env=bad, stdout=subprocess.PIPE, timeout=10)
    check("reseed CLI without a hardware RNG: exit 1, ERR",
          r.returncode == 1 and r.stdout.startswith(b"ERR cannot reseed: hwrng:"),
          repr(r.stdout))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_agent.py PATH/TO/ember-agent")
    agent = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "agent.sock")
        # --daemon returns once the socket listens; the daemon's pid is found by its socket
        r = subprocess.run([agent, "--daemon", "--unix", path], timeout=10)
        check("--daemon returns 0 once listening", r.returncode == 0 and os.path.exists(path))
        try:
            test_echo(path)
            test_sink(path)
            test_source(path, agent)
            test_exec(path)
            test_garbage(path)
            test_concurrency(path)
            r = subprocess.run([agent, "--unix", path, "--bogus"], stderr=subprocess.PIPE)
            check("bad arguments: exit 2", r.returncode == 2, r.stderr.decode())
            test_connect(agent, tmp)
            test_sha256_cli(agent)
            test_clone_safety(agent, tmp)
            got = exchange(path, b"ECHO\nstill alive")
            check("the listener survived everything", got == b"still alive")
        finally:
            got = exchange(path, b"EXEC kill $PPID\n")
            time.sleep(0.2)
            try:
                conn(path, timeout=2).close()
                check("listener stopped (EXEC kill $PPID)", False)
            except OSError:
                pass
    print(f"agent-test: {'all checks passed' if not failed else f'{failed} check(s) failed'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
