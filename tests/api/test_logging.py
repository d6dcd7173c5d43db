# SPDX-License-Identifier: Apache-2.0
"""Logging: PUT /logger sends the log to a file, with the level and origin in each line when
asked and only the levels asked for; --log-path to a named pipe that nobody reads never
blocks the vCPUs or the API, and the lines that do not fit are counted
(logger.missed_log_count)."""
import os
import re
import socket
import time

import pytest

from conftest import PREFIX, read_fifo

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}"


def log_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def wait_for_line(vm, path, pattern, timeout=5.0):
    rx = re.compile(pattern)
    vm.wait_until(lambda: any(rx.search(l) for l in log_lines(path)), timeout,
                  f"a line matching {pattern!r} in {path}")
    return next(l for l in log_lines(path) if rx.search(l))


def bad_request(vm):
    """A malformed request: the server logs it as a warning."""
    vm.raw(b"BOGUS\r\n\r\n")


@pytest.mark.parametrize("show_level,show_origin", [(False, False), (True, False),
                                                    (False, True), (True, True)])
def test_put_logger_line_format(ember, tmp_path, show_level, show_origin):
    log = tmp_path / "ember.log"
    ember.ok("PUT", "/logger", {"log_path": str(log), "level": "Info",
                                "show_level": show_level, "show_log_origin": show_origin})
    ember.boot()
    tag = "anonymous-instance:main"
    if show_level:
        tag += ":INFO"
    if show_origin:
        tag += r":src/vmm/[a-z_]+\.c:\d+"
    line = wait_for_line(ember, log, r"instance started in \d+ us$")
    assert re.fullmatch(rf"{STAMP} \[{tag}\] instance started in \d+ us", line), line
    bad_request(ember)
    tag = "anonymous-instance:api" + (":WARN" if show_level else "")
    tag += r":src/api/[a-z_]+\.c:\d+" if show_origin else ""
    line = wait_for_line(ember, log, "bad request")
    assert re.fullmatch(rf"{STAMP} \[{tag}\] API: bad request \(400\): .+", line), line
    assert "instance started" not in ember.log, "the log still went to stderr"


def test_logger_level_filters(ember, tmp_path):
    log = tmp_path / "ember.log"
    ember.ok("PUT", "/logger", {"log_path": str(log), "level": "Warning"})
    ember.boot()
    bad_request(ember)
    wait_for_line(ember, log, "bad request")
    assert not any("instance started" in l for l in log_lines(log)), "an Info line at Warning"


def test_logger_debug_shows_requests(ember, tmp_path):
    log = tmp_path / "ember.log"
    ember.ok("PUT", "/logger", {"log_path": str(log), "level": "Debug", "show_level": True})
    assert ember.get("/nosuch").status == 404
    line = wait_for_line(ember, log, "GET /nosuch")
    assert ":DEBUG]" in line, line


def test_logger_off_writes_nothing(ember, tmp_path):
    log = tmp_path / "ember.log"
    ember.ok("PUT", "/logger", {"log_path": str(log), "level": "Off"})
    ember.boot()
    bad_request(ember)
    ember.assert_healthy("Running")
    assert log_lines(log) == []


def test_log_path_and_id_options(ember_factory, tmp_path):
    log = tmp_path / "cli.log"
    vm = ember_factory(["--log-path", str(log), "--id", "vm-42", "--show-level"])
    vm.boot()
    line = wait_for_line(vm, log, "instance started")
    assert "[vm-42:main:INFO] " in line, line
    assert "instance started" not in vm.log


def test_logger_appends(ember, tmp_path):
    log = tmp_path / "ember.log"
    log.write_text("earlier line\n")
    ember.ok("PUT", "/logger", {"log_path": str(log)})
    bad_request(ember)
    wait_for_line(ember, log, "bad request")
    assert log_lines(log)[0] == "earlier line"


def flood(vm, requests):
    """Pipelines `requests` GET /nosuch on one connection and reads the answers; at Debug
    each request logs two lines."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(vm.socket_path))
    reqs = b"GET /nosuch HTTP/1.1\r\n\r\n" * requests
    got = b""
    sent = 0
    s.setblocking(False)
    deadline = time.monotonic() + 20
    while got.count(b"HTTP/1.1 404 ") < requests and time.monotonic() < deadline:
        if sent < len(reqs):
            try:
                sent += s.send(reqs[sent:sent + 65536])
            except BlockingIOError:
                pass
        try:
            got += s.recv(1 << 20)
        except BlockingIOError:
            time.sleep(0.001)
    s.close()
    assert got.count(b"HTTP/1.1 404 ") == requests, "not every request was answered"


def test_log_to_a_pipe_nobody_reads(ember_factory, tmp_path):
    """The log pipe fills up; Ember drops and counts lines instead of blocking, the API stays
    fast, and a guest whose vCPU logs (unassigned accesses at Debug) runs to the end."""
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    vm = ember_factory(["--log-path", str(fifo), "--level", "Debug"])
    for _ in range(20):
        t = time.monotonic()
        flood(vm, 500)
        assert time.monotonic() - t < 5
        if vm.metrics()["logger_missed_log_count"] > 0:
            break
    missed = vm.metrics()["logger_missed_log_count"]
    assert missed > 0, "the log pipe never filled up"
    t = time.monotonic()
    vm.boot("tests=unassigned,hello exit=hang", wait_done=False)
    vm.wait_console(PREFIX + "done passed=2 failed=0")
    assert time.monotonic() - t < 5
    m = vm.metrics()
    assert m["vmm_unassigned_pio_writes"] > 0
    assert m["logger_missed_log_count"] > missed, "the vCPU's debug lines were not counted"
    vm.assert_healthy("Running")
    # the lines that did fit are whole: one write() per line
    data = read_fifo(fifo)
    assert data.endswith(b"\n") and len(data) > 32768, len(data)
    for line in data.decode().splitlines():
        assert re.match(rf"{STAMP} \[anonymous-instance:(api|main|vcpu0)\] ", line), line
