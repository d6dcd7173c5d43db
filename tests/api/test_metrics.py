# SPDX-License-Identifier: Apache-2.0
"""Metrics: PUT /metrics to a file or a named pipe, one JSON object per flush (FlushMetrics,
and at exit) with Firecracker's group and counter names, counters that move when things
happen; and GET /metrics, Ember's Prometheus text exposition of the same counters."""
import json
import os
import signal
import stat
import time

import pytest

from conftest import parse_prometheus, read_fifo

# Firecracker's groups and the counters of each that Ember keeps (docs/api.md#metrics).
FIRECRACKER_NAMES = {
    "api_server": ["process_startup_time_us", "process_startup_time_cpu_us",
                   "sync_response_fails", "sync_vmm_send_timeout_count"],
    "get_api_requests": ["instance_info_count", "machine_cfg_count", "mmds_count",
                         "vmm_version_count"],
    "put_api_requests": ["actions_count", "actions_fails", "boot_source_count",
                         "boot_source_fails", "drive_count", "drive_fails", "logger_count",
                         "logger_fails", "machine_cfg_count", "machine_cfg_fails",
                         "cpu_cfg_count", "cpu_cfg_fails", "metrics_count", "metrics_fails",
                         "network_count", "network_fails", "mmds_count", "mmds_fails",
                         "vsock_count", "vsock_fails"],
    "patch_api_requests": ["drive_count", "drive_fails", "network_count", "network_fails",
                           "machine_cfg_count", "machine_cfg_fails", "mmds_count",
                           "mmds_fails"],
    "i8042": ["error_count", "missed_read_count", "missed_write_count", "read_count",
              "reset_count", "write_count"],
    "uart": ["error_count", "flush_count", "missed_read_count", "missed_write_count",
             "read_count", "write_count"],
    "block": ["activate_fails", "cfg_fails", "no_avail_buffer", "event_fails",
              "execute_fails", "invalid_reqs_count", "flush_count", "queue_event_count",
              "rate_limiter_event_count", "update_count", "update_fails", "read_bytes",
              "write_bytes", "read_count", "write_count", "rate_limiter_throttled_events",
              "io_engine_throttled_events"],
    "vcpu": ["exit_io_in", "exit_io_out", "exit_mmio_read", "exit_mmio_write", "failures",
             "filter_cpuid"],
    "vmm": ["device_events", "panic_count"],
    "logger": ["missed_metrics_count", "metrics_fails", "missed_log_count", "log_fails"],
    "signals": ["sigbus", "sigsegv", "sigxfsz", "sigxcpu", "sigpipe", "sighup", "sigill"],
    "latencies_us": ["pause_vm", "resume_vm", "vmm_pause_vm", "vmm_resume_vm"],
}


def read_lines(path):
    text = path.read_text()
    assert text == "" or text.endswith("\n"), f"a partial line in {path}: {text[-200:]!r}"
    return [json.loads(line) for line in text.splitlines()]


def flush(vm):
    vm.ok("PUT", "/actions", {"action_type": "FlushMetrics"})


def total(lines, group, name):
    return sum(line[group][name] for line in lines)


@pytest.fixture
def metered(ember, tmp_path):
    """An Ember whose metrics go to tmp_path/metrics.json."""
    ember.metrics_path = tmp_path / "metrics.json"
    ember.ok("PUT", "/metrics", {"metrics_path": str(ember.metrics_path)})
    return ember


def test_flush_writes_one_json_object_per_line_with_firecrackers_names(metered):
    flush(metered)
    flush(metered)
    lines = read_lines(metered.metrics_path)
    assert len(lines) == 2
    for line in lines:
        assert isinstance(line["utc_timestamp_ms"], int)
        assert abs(line["utc_timestamp_ms"] / 1000 - time.time()) < 60
        for group, names in FIRECRACKER_NAMES.items():
            assert group in line, f"group {group} missing"
            for n in names:
                assert isinstance(line[group].get(n), int), f"{group}.{n} missing"
                assert line[group][n] >= 0
    assert lines[1]["utc_timestamp_ms"] >= lines[0]["utc_timestamp_ms"]


def test_counters_move_when_things_happen(metered):
    vm = metered
    flush(vm)
    vm.ok("PUT", "/boot-source", {"kernel_image_path": "/x"})
    assert vm.put("/boot-source", {"kernel_image_path": 5}).status == 400
    assert vm.patch("/machine-config", {"vcpu_count": 0}).status == 400
    vm.get("/")
    vm.get("/")
    vm.get("/version")
    flush(vm)
    line = read_lines(vm.metrics_path)[-1]
    put, get, patch = (line["put_api_requests"], line["get_api_requests"],
                       line["patch_api_requests"])
    assert (put["boot_source_count"], put["boot_source_fails"]) == (2, 1), put
    assert (patch["machine_cfg_count"], patch["machine_cfg_fails"]) == (1, 1), patch
    assert put["actions_count"] == 1, "the first FlushMetrics is counted in the second flush"
    assert get["instance_info_count"] == 2 and get["vmm_version_count"] == 1, get
    assert line["vcpu"]["exit_io_out"] == 0, "no VM yet"

    vm.boot(wait_done=True)
    flush(vm)
    line = read_lines(vm.metrics_path)[-1]
    console_bytes = len(vm.console.encode("latin-1"))
    assert line["uart"]["write_count"] >= console_bytes, (line["uart"], console_bytes)
    assert line["vcpu"]["exit_io_out"] >= line["uart"]["write_count"], line["vcpu"]
    assert line["latencies_us"]["instance_start"] > 0, line["latencies_us"]
    assert line["api_server"]["process_startup_time_us"] >= 0


def test_file_counters_are_deltas_that_sum_to_the_totals(metered):
    vm = metered
    for i in range(3):
        vm.ok("PUT", "/machine-config", {"vcpu_count": 1 + i, "mem_size_mib": 64})
        flush(vm)
        vm.get("/version")
    totals = vm.metrics()  # counts itself only after answering
    flush(vm)
    lines = read_lines(vm.metrics_path)
    assert [l["put_api_requests"]["machine_cfg_count"] for l in lines] == [1, 1, 1, 0]
    for group, name in [("put_api_requests", "machine_cfg_count"),
                        ("get_api_requests", "vmm_version_count"),
                        ("put_api_requests", "actions_count")]:
        assert total(lines, group, name) == totals[f"{group}_{name}"], (group, name)


def test_flush_at_exit(metered):
    vm = metered
    vm.boot()
    flush(vm)
    n = len(read_lines(vm.metrics_path))
    vm.get("/")
    vm.signal(signal.SIGTERM)
    assert vm.wait_exit() == 128 + signal.SIGTERM
    lines = read_lines(vm.metrics_path)
    assert len(lines) == n + 1, "no flush at exit"
    assert lines[-1]["get_api_requests"]["instance_info_count"] == 1


def test_flush_at_guest_reset(metered):
    vm = metered
    vm.configure("tests=hello exit=reset")
    vm.start()
    assert vm.wait_exit() == 0
    lines = read_lines(vm.metrics_path)
    assert len(lines) == 1
    assert lines[0]["i8042"]["reset_count"] == 1, lines[0]["i8042"]
    assert lines[0]["uart"]["write_count"] > 0


def test_flush_metrics_without_metrics_configured(ember):
    r = ember.put("/actions", {"action_type": "FlushMetrics"})
    assert r.status == 400 and "PUT /metrics" in r.fault, r


def test_metrics_to_a_named_pipe(ember, tmp_path):
    fifo = tmp_path / "metrics.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        ember.ok("PUT", "/metrics", {"metrics_path": str(fifo)})
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
        flush(ember)
        ember.ok("PUT", "/boot-source", {"kernel_image_path": "/x"})
        flush(ember)
        data = b""
        deadline = time.monotonic() + 5
        while data.count(b"\n") < 2 and time.monotonic() < deadline:
            try:
                data += os.read(fd, 65536)
            except BlockingIOError:
                time.sleep(0.01)
        lines = [json.loads(l) for l in data.decode().splitlines()]
        assert len(lines) == 2, data[:500]
        assert lines[1]["put_api_requests"]["boot_source_count"] == 1
    finally:
        os.close(fd)


def test_metrics_pipe_nobody_reads_does_not_block(ember, tmp_path):
    """Ember holds the pipe open itself; once the pipe is full, flushes fail with a clear
    message and are counted, and Ember keeps answering at once."""
    fifo = tmp_path / "metrics.fifo"
    os.mkfifo(fifo)
    ember.ok("PUT", "/metrics", {"metrics_path": str(fifo)})
    failed = None
    for _ in range(200):  # ~2.5 KB each: the 64 KiB pipe is full after about 26
        t = time.monotonic()
        r = ember.put("/actions", {"action_type": "FlushMetrics"})
        assert time.monotonic() - t < 1.0
        if r.status != 204:
            failed = r
            break
    assert failed is not None and failed.status == 400, failed
    assert "metrics" in failed.fault, failed
    m = ember.metrics()
    assert m["logger_missed_metrics_count"] >= 1 and m["logger_metrics_fails"] >= 1, m
    ember.assert_healthy("Not started")
    # what did fit went in as whole lines
    data = read_fifo(fifo)
    assert data.endswith(b"\n") and len(data) > 32768, len(data)
    for line in data.splitlines():
        json.loads(line)


# ---- GET /metrics: Prometheus text ----

def test_prometheus_text_format(running_ember):
    r = running_ember.get("/metrics")
    assert r.status == 200, r
    assert r.text.endswith("\n")
    values, types = parse_prometheus(r.text)
    assert len(values) > 50
    assert set(types) == set(values), "a # TYPE line without a sample"
    for name in values:
        assert name.startswith("ember_"), name
    for group, names in FIRECRACKER_NAMES.items():
        for n in names:
            assert f"ember_{group}_{n}" in values, f"ember_{group}_{n} missing"
    assert values["ember_vcpu_exit_io_out"] > 0
    assert values["ember_api_server_process_startup_time_us"] > 0
    assert types["ember_vcpu_exit_io_out"] == "counter"
    assert types["ember_latencies_us_instance_start"] == "gauge"


def test_prometheus_content_type(ember):
    """GET /metrics is Prometheus text, so its Content-Type must say text/plain
    (text/plain; version=0.0.4), not application/json.

    BUG (Ember): src/api/http.c http__format_head() writes "Content-Type:
    application/json" for every response with a body; struct http_response has no way to
    say otherwise, so routes.c get_metrics_text() cannot set it."""
    r = ember.get("/metrics")
    assert r.status == 200
    assert r.headers.get("Content-Type", "").startswith("text/plain"), \
        f"GET /metrics has Content-Type {r.headers.get('Content-Type')!r}"


def test_prometheus_and_file_have_the_same_counters(metered):
    flush(metered)
    line = read_lines(metered.metrics_path)[0]
    values, _ = parse_prometheus(metered.get("/metrics").text)
    from_file = {f"ember_{g}_{n}" for g, grp in line.items() if isinstance(grp, dict)
                 for n in grp}
    assert from_file == set(values)


def test_prometheus_counters_only_grow(ember):
    vm = ember
    vm.boot("tests=" + ",".join(["hello"] * 40) + " exit=hang", wait_done=False)
    prev_values, types = parse_prometheus(vm.get("/metrics").text)
    for i in range(8):
        vm.get("/")
        vm.put("/machine-config", {"vcpu_count": 0})
        if i == 3:
            vm.ok("PATCH", "/vm", {"state": "Paused"})
            vm.ok("PATCH", "/vm", {"state": "Resumed"})
        time.sleep(0.05)
        values, _ = parse_prometheus(vm.get("/metrics").text)
        for name, v in values.items():
            if types[name] == "counter":
                assert v >= prev_values[name], f"{name} went from {prev_values[name]} to {v}"
        prev_values = values
    assert prev_values["ember_get_api_requests_instance_info_count"] >= 8
    assert prev_values["ember_put_api_requests_machine_cfg_fails"] >= 8


def test_request_latencies_are_reported(ember):
    for _ in range(20):
        ember.get("/")
    m = ember.metrics()
    assert 0 < m["latencies_us_api_request_p50"] <= m["latencies_us_api_request_p99"], m


def test_process_startup_time_in_every_flush(metered):
    """api_server.process_startup_time_us is a value, not a count (Firecracker keeps it as a
    SharedStoreMetric and writes it in every flush): every line of the file must carry it.

    BUG (Ember): src/vmm/metrics.h declares process_startup_time_us and
    process_startup_time_cpu_us in the api_server group, which vmm_metrics.c writes as
    METRICS_COUNTER, so the file gets deltas: the value in the first line, 0 after that
    (and GET /metrics types it "counter")."""
    flush(metered)
    flush(metered)
    lines = read_lines(metered.metrics_path)
    got = [l["api_server"]["process_startup_time_us"] for l in lines]
    assert got[0] > 0 and got[1] == got[0], f"process_startup_time_us per flush: {got}"


def test_pause_latencies_are_reported(running_ember):
    """latencies_us.pause_vm and resume_vm are Firecracker's names for how long the pause
    and resume requests took; after a pause and a resume they must not be 0.

    BUG (Ember): src/vmm/metrics.h has pause_vm and resume_vm in LATENCY_METRICS, but
    nothing ever sets them: src/vmm/vmm_action.c pause_resume() sets only vmm_pause_vm and
    vmm_resume_vm."""
    running_ember.ok("PATCH", "/vm", {"state": "Paused"})
    running_ember.ok("PATCH", "/vm", {"state": "Resumed"})
    m = running_ember.metrics()
    assert m["latencies_us_vmm_pause_vm"] > 0
    assert m["latencies_us_pause_vm"] > 0 and m["latencies_us_resume_vm"] > 0, \
        {k: v for k, v in m.items() if k.startswith("latencies_us")}
