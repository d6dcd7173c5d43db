# SPDX-License-Identifier: Apache-2.0
"""Every endpoint of the API (docs/api.md): its happy path, and each documented error with
a fault_message that names the field and the problem. All of it before InstanceStart, on
an Ember with no VM configured; what changes after the start is in test_lifecycle.py, and
drives (PUT and run-time PATCH, with real files) are in test_drives.py."""
import json
import os
import subprocess

import pytest

from conftest import GUEST, MSG_BEFORE_START

KERNEL = str(GUEST)
BOOT = {"kernel_image_path": KERNEL, "boot_args": "tests=hello exit=hang"}
MACHINE = {"vcpu_count": 2, "mem_size_mib": 256}
DRIVE = {"drive_id": "rootfs", "path_on_host": "/var/lib/rootfs.ext4",
         "is_root_device": True, "is_read_only": False}
NET = {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}
VSOCK = {"guest_cid": 3, "uds_path": "/tmp/ember-test-v.sock"}


def assert_fault(r, status, *words):
    """An error response: the status, a JSON body that is exactly {"fault_message": ...},
    and a message that holds each of `words`."""
    assert r.status == status, r
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json
    assert isinstance(body, dict) and list(body) == ["fault_message"], r
    msg = body["fault_message"]
    assert isinstance(msg, str) and msg.strip(), r
    for w in words:
        assert w in msg, f"{w!r} not in fault message {msg!r}"
    return msg


def vm_config(ember):
    r = ember.get("/vm/config")
    assert r.status == 200, r
    return r.json


# ---- happy paths ----

def test_get_instance_info(ember):
    r = ember.get("/")
    assert r.status == 200, r
    assert r.headers["Content-Type"] == "application/json"
    info = r.json
    assert set(info) == {"id", "state", "vmm_version", "app_name"}, info
    assert info["id"] == "anonymous-instance"
    assert info["state"] == "Not started"
    assert info["app_name"] == "Ember"
    assert info["vmm_version"] and info["vmm_version"][0].isdigit(), info


def test_instance_id_comes_from_the_command_line(ember_factory):
    vm = ember_factory(["--id", "fc-test-7"])
    assert vm.get("/").json["id"] == "fc-test-7"


def test_get_version(ember):
    r = ember.get("/version")
    assert r.status == 200, r
    v = r.json
    assert set(v) == {"firecracker_version", "ember_version"}, v
    assert v["firecracker_version"].count(".") == 2
    assert v["ember_version"] == ember.get("/").json["vmm_version"]


def test_query_string_is_ignored(ember):
    assert ember.get("/?x=1").json["state"] == "Not started"


def test_put_boot_source(ember):
    ember.ok("PUT", "/boot-source", {**BOOT, "initrd_path": "/boot/initrd.img"})
    assert vm_config(ember)["boot-source"] == {**BOOT, "initrd_path": "/boot/initrd.img"}
    # a PUT replaces the section: fields not given go back to their defaults
    ember.ok("PUT", "/boot-source", {"kernel_image_path": KERNEL})
    assert vm_config(ember)["boot-source"] == {
        "kernel_image_path": KERNEL, "initrd_path": None, "boot_args": None}


def test_null_counts_as_absent(ember):
    ember.ok("PUT", "/boot-source", {"kernel_image_path": KERNEL, "initrd_path": None,
                                     "boot_args": None})
    assert vm_config(ember)["boot-source"]["initrd_path"] is None


def test_machine_config_defaults_put_get_patch(ember):
    r = ember.get("/machine-config")
    assert r.status == 200, r
    assert r.json == {"vcpu_count": 1, "mem_size_mib": 128, "smt": False,
                      "track_dirty_pages": False, "huge_pages": "None", "ksm": False}
    ember.ok("PUT", "/machine-config", {**MACHINE, "smt": True, "track_dirty_pages": True,
                                        "huge_pages": "None", "cpu_template": "None"})
    assert ember.get("/machine-config").json == {
        "vcpu_count": 2, "mem_size_mib": 256, "smt": True, "track_dirty_pages": True,
        "huge_pages": "None", "ksm": False}
    ember.ok("PATCH", "/machine-config", {"mem_size_mib": 512})
    got = ember.get("/machine-config").json
    assert (got["vcpu_count"], got["mem_size_mib"], got["smt"]) == (2, 512, True), got
    # PUT resets what it does not name
    ember.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
    got = ember.get("/machine-config").json
    assert (got["smt"], got["track_dirty_pages"]) == (False, False), got
    assert vm_config(ember)["machine-config"] == got


def test_put_logger_metrics_serial(ember, tmp_path):
    log, metrics, serial = tmp_path / "l.log", tmp_path / "m.json", tmp_path / "serial.out"
    ember.ok("PUT", "/logger", {"log_path": str(log), "level": "Warning", "show_level": True,
                                "show_log_origin": False})
    ember.ok("PUT", "/metrics", {"metrics_path": str(metrics)})
    ember.ok("PUT", "/serial", {"serial_out_path": str(serial)})
    cfg = vm_config(ember)
    assert cfg["logger"].items() >= {"log_path": str(log), "level": "Warning",
                                     "show_level": True, "show_log_origin": False}.items()
    assert cfg["metrics"] == {"metrics_path": str(metrics)}
    assert cfg["serial"]["serial_out_path"] == str(serial)
    assert log.exists() and metrics.exists(), "the logger and metrics files are opened at once"


@pytest.mark.parametrize("level", ["Error", "Warning", "Warn", "Info", "Debug", "Trace",
                                   "Off", "info", "DEBUG"])
def test_logger_levels(ember, tmp_path, level):
    ember.ok("PUT", "/logger", {"log_path": str(tmp_path / "l.log"), "level": level})


def test_get_vm_config_has_firecrackers_shape(ember):
    cfg = vm_config(ember)
    for key in ("balloon", "drives", "boot-source", "logger", "machine-config", "metrics",
                "mmds-config", "network-interfaces", "vsock", "entropy"):
        assert key in cfg, f"{key} missing from {cfg}"
    assert cfg["drives"] == [] and cfg["network-interfaces"] == []
    assert cfg["vsock"] is None and cfg["logger"] is None and cfg["metrics"] is None
    # and what it prints parses back as a Firecracker config file would
    json.dumps(cfg)


# ---- network interfaces, vsock: accepted, and the VM starts with them ----
# (drives: test_drives.py; the devices at work with Linux: tests/integration)

RL = {"bandwidth": {"size": 1048576, "one_time_burst": 0, "refill_time": 1000},
      "ops": {"size": 100, "refill_time": 1000}}


def device_cases(tmp_path):
    tap = f"emt{os.getpid() % 100000}"
    uds = str(tmp_path / "v.sock")
    return {
        "net": ("/network-interfaces/eth0", {**NET, "host_dev_name": tap,
                                             "rx_rate_limiter": RL, "tx_rate_limiter": RL},
                "network-interfaces"),
        "net-anti-spoofing": ("/network-interfaces/eth0",
                              {**NET, "host_dev_name": tap,
                               "anti_spoofing": {"ipv4": ["172.16.0.2"], "ipv6": ["fd00::2"]}},
                              "network-interfaces"),
        "vsock": ("/vsock", {**VSOCK, "uds_path": uds, "vsock_id": "vsock0"}, "vsock"),
        "entropy": ("/entropy", {"rate_limiter": RL}, "entropy"),
        "balloon": ("/balloon", {"amount_mib": 16, "deflate_on_oom": True,
                                 "stats_polling_interval_s": 2, "free_page_reporting": True},
                    "balloon"),
    }


@pytest.mark.parametrize("case", ["net", "net-anti-spoofing", "vsock", "entropy", "balloon"])
def test_valid_device_is_kept_and_started(ember, tmp_path, case):
    """A valid network interface, vsock, entropy device or balloon is accepted before the start,
    shown by GET /vm/config, and the VM starts with it (the TAP is made at InstanceStart,
    the vsock's Unix socket is bound then; anti-spoofing's filter is on the TAP then)."""
    path, body, key = device_cases(tmp_path)[case]
    r = ember.put(path, body)
    assert r.status == 204, r
    got = ember.get("/vm/config").json[key]
    shown = got[0] if isinstance(got, list) else got
    for field in ("iface_id", "host_dev_name", "guest_mac", "guest_cid", "uds_path",
                  "anti_spoofing"):
        if field in body:
            assert shown[field] == body[field], got
    if case == "entropy":  # buckets as Firecracker prints them: every field
        assert shown == {"rate_limiter": {"bandwidth": RL["bandwidth"],
                                          "ops": {**RL["ops"], "one_time_burst": 0}}}, got
    if case == "balloon":  # every field of Firecracker's Balloon
        assert shown == {**body, "free_page_hinting": False}, got
    ember.boot()
    ember.assert_healthy("Running")
    if case == "vsock":
        assert os.path.exists(body["uds_path"])
    if case == "net-anti-spoofing":
        tc = subprocess.run(["tc", "filter", "show", "dev", body["host_dev_name"], "ingress"],
                            capture_output=True, text=True)
        assert "bpf" in tc.stdout and "antispoof" in tc.stdout, tc.stdout + tc.stderr


@pytest.mark.parametrize("path,body", [
    ("/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/new.img"}),
    ("/network-interfaces/eth0", {"iface_id": "eth0", "rx_rate_limiter": RL}),
], ids=["drive", "net"])
def test_device_patch_before_start(ember, path, body):
    """PATCH of a drive or interface is a run-time request (Firecracker: "not supported
    before starting"); for an id that no PUT configured Ember may also say that there is no
    such device. (A configured drive: test_drives.py.)"""
    r = ember.patch(path, body)
    msg = assert_fault(r, 400)
    assert MSG_BEFORE_START in msg or "no " in msg, msg


# ---- errors: one table, one Ember ----

LONG_ID = "a" * 65
ERRORS = [
    # unknown fields
    ("PUT", "/boot-source", {**BOOT, "bogus": 1}, 400, ["unknown field", "bogus"]),
    ("PUT", "/machine-config", {**MACHINE, "vcpus": 2}, 400, ["unknown field", "vcpus"]),
    ("PATCH", "/machine-config", {"memory": 2}, 400, ["unknown field", "memory"]),
    ("PUT", "/drives/rootfs", {**DRIVE, "size": 1}, 400, ["unknown field", "size"]),
    ("PUT", "/network-interfaces/eth0", {**NET, "mtu": 1500}, 400, ["unknown field", "mtu"]),
    ("PUT", "/vsock", {**VSOCK, "port": 1}, 400, ["unknown field", "port"]),
    ("PUT", "/logger", {"log_path": "/tmp/x", "colour": True}, 400, ["unknown field", "colour"]),
    ("PUT", "/metrics", {"metrics_path": "/tmp/x", "period": 1}, 400, ["unknown field", "period"]),
    ("PUT", "/serial", {"serial_out_path": "/tmp/x", "baud": 9600}, 400, ["unknown field", "baud"]),
    ("PUT", "/actions", {"action_type": "FlushMetrics", "now": True},
     400, ["unknown field", "now"]),
    ("PATCH", "/vm", {"state": "Paused", "why": "x"}, 400, ["unknown field", "why"]),
    ("PUT", "/drives/rootfs", {**DRIVE, "socket": "/x"}, 400, ["socket", "not supported yet"]),
    ("PUT", "/logger", {"log_path": "/tmp/x", "module": "api"}, 400, ["module", "not supported"]),
    # wrong types
    ("PUT", "/boot-source", {"kernel_image_path": 5},
     400, ["kernel_image_path", "string", "number"]),
    ("PUT", "/boot-source", {**BOOT, "boot_args": ["a"]}, 400, ["boot_args", "string", "array"]),
    ("PUT", "/machine-config", {"vcpu_count": "2", "mem_size_mib": 128},
     400, ["vcpu_count", "integer", "string"]),
    ("PUT", "/machine-config", {**MACHINE, "smt": "yes"}, 400, ["smt", "true or false"]),
    ("PUT", "/machine-config", {**MACHINE, "huge_pages": 2}, 400, ["huge_pages"]),
    ("PUT", "/drives/rootfs", {**DRIVE, "is_root_device": "true"},
     400, ["is_root_device", "true or false"]),
    ("PUT", "/drives/rootfs", {**DRIVE, "cache_type": "Fast"},
     400, ["cache_type", "Unsafe", "Writeback"]),
    ("PUT", "/drives/rootfs", {**DRIVE, "io_engine": "Uring"},
     400, ["io_engine", "Sync", "Async", "Uring"]),
    ("PUT", "/drives/rootfs", {**DRIVE, "is_read_only": 1}, 400, ["is_read_only"]),
    ("PUT", "/drives/rootfs", {**DRIVE, "partuuid": "a b"}, 400, ["partuuid", "white space"]),
    ("PUT", "/drives/rootfs", {**DRIVE, "partuuid": "p" * 73}, 400, ["partuuid"]),
    ("PUT", "/drives/rootfs", {**DRIVE, "rate_limiter": {"ops": {"size": 1}}},
     400, ["rate_limiter.ops.refill_time", "missing"]),
    ("PUT", "/drives/rootfs", {**DRIVE, "rate_limiter": {"iops": {}}},
     400, ["unknown field", "iops"]),
    ("PATCH", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": ""},
     400, ["path_on_host", "empty"]),
    ("PATCH", "/drives/rootfs", {"drive_id": "rootfs", "is_read_only": True},
     400, ["unknown field", "is_read_only"]),
    ("PATCH", "/drives/rootfs", {"drive_id": "other", "path_on_host": "/x"},
     400, ["drive_id", "does not match", "rootfs"]),
    ("PATCH", "/drives/rootfs", {"path_on_host": "/x"}, 400, ["drive_id", "missing"]),
    ("PUT", "/network-interfaces/eth0", {**NET, "guest_mac": 6}, 400, ["guest_mac", "string"]),
    ("PUT", "/network-interfaces/eth0", {**NET, "guest_mac": "zz"},
     400, ["guest_mac", "MAC address"]),
    ("PUT", "/network-interfaces/eth0",
     {"iface_id": "eth0", "host_dev_name": "tap0", "anti_spoofing": {"ipv4": ["10.0.0.2"]}},
     400, ["anti_spoofing", "needs guest_mac"]),
    ("PUT", "/network-interfaces/eth0", {**NET, "anti_spoofing": {"ipv4": ["10.0.0.256"]}},
     400, ["anti_spoofing.ipv4[0]", "IPv4 address", "10.0.0.256"]),
    ("PUT", "/network-interfaces/eth0", {**NET, "anti_spoofing": {"ipv6": ["ff02::1"]}},
     400, ["anti_spoofing.ipv6[0]", "multicast"]),
    ("PATCH", "/network-interfaces/eth0",
     {"iface_id": "eth0", "anti_spoofing": {"ipv4": ["10.0.0.2"]}},
     400, ["unknown field", "anti_spoofing"]),
    ("PUT", "/vsock", {"guest_cid": "3", "uds_path": "/x"}, 400, ["guest_cid", "integer"]),
    ("PUT", "/logger", {"log_path": "/tmp/x", "level": 3}, 400, ["level"]),
    ("PUT", "/logger", {"log_path": "/tmp/x", "level": "Loud"}, 400, ["level", "Loud"]),
    ("PUT", "/logger", {"log_path": "/tmp/x", "show_level": "yes"},
     400, ["show_level", "true or false"]),
    ("PUT", "/actions", {"action_type": 1}, 400, ["action_type", "InstanceStart"]),
    ("PUT", "/actions", {"action_type": "Reboot"},
     400, ["action_type", "InstanceStart", "SendCtrlAltDel", "FlushMetrics"]),
    ("PATCH", "/vm", {"state": True}, 400, ["state", "Paused", "Resumed"]),
    ("PATCH", "/vm", {"state": "Running"}, 400, ["state", "Paused", "Resumed"]),
    # missing required fields
    ("PUT", "/boot-source", {"boot_args": "x"}, 400, ["kernel_image_path", "missing"]),
    ("PUT", "/machine-config", {"vcpu_count": 2}, 400, ["mem_size_mib", "missing"]),
    ("PUT", "/machine-config", {"mem_size_mib": 128}, 400, ["vcpu_count", "missing"]),
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "is_root_device": True},
     400, ["path_on_host", "missing"]),
    ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": "/x"},
     400, ["is_root_device", "missing"]),
    ("PUT", "/drives/rootfs", {"path_on_host": "/x", "is_root_device": True},
     400, ["drive_id", "missing"]),
    ("PUT", "/drives/rootfs", {**DRIVE, "path_on_host": ""}, 400, ["path_on_host", "empty"]),
    ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0"}, 400, ["host_dev_name", "missing"]),
    ("PUT", "/vsock", {"guest_cid": 3}, 400, ["uds_path", "missing"]),
    ("PUT", "/logger", {"level": "Info"}, 400, ["log_path", "missing"]),
    ("PUT", "/metrics", {}, 400, ["metrics_path", "missing"]),
    ("PUT", "/actions", {}, 400, ["action_type"]),
    ("PATCH", "/vm", {}, 400, ["state"]),
    # empty strings
    ("PUT", "/boot-source", {"kernel_image_path": ""}, 400, ["kernel_image_path", "empty"]),
    ("PUT", "/serial", {"serial_out_path": ""}, 400, ["serial_out_path", "empty"]),
    ("PUT", "/logger", {"log_path": ""}, 400, ["log_path", "empty"]),
    # out of range
    ("PUT", "/machine-config", {"vcpu_count": 0, "mem_size_mib": 128},
     400, ["vcpu_count", "1 to 32", "got 0"]),
    ("PUT", "/machine-config", {"vcpu_count": 33, "mem_size_mib": 128},
     400, ["vcpu_count", "1 to 32", "got 33"]),
    ("PUT", "/machine-config", {"vcpu_count": -1, "mem_size_mib": 128},
     400, ["vcpu_count", "got -1"]),
    ("PUT", "/machine-config", {"vcpu_count": 1.5, "mem_size_mib": 128},
     400, ["vcpu_count", "integer", "1.5"]),
    ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 0},
     400, ["mem_size_mib", "got 0"]),
    ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 1048577},
     400, ["mem_size_mib", "1048577"]),
    ("PUT", "/machine-config", {"vcpu_count": 3, "mem_size_mib": 128, "smt": True},
     400, ["smt", "even", "3"]),
    ("PATCH", "/machine-config", {"vcpu_count": 40}, 400, ["vcpu_count", "got 40"]),
    ("PUT", "/machine-config", {**MACHINE, "huge_pages": "4M"},
     400, ["huge_pages", "4M", "\"None\", \"2M\" or \"Transparent\""]),
    ("PUT", "/machine-config", {**MACHINE, "cpu_template": "T2"},
     400, ["cpu_template", "T2", "not supported yet"]),
    ("PUT", "/boot-source", {**BOOT, "boot_args": "x" * 2048}, 400, ["boot_args", "2047", "2048"]),
    ("PUT", "/vsock", {"guest_cid": 2, "uds_path": "/x"}, 400, ["guest_cid", "got 2"]),
    ("PUT", "/entropy", {"rate_limiter": {"ops": {"size": -1, "refill_time": 1}}},
     400, ["rate_limiter.ops.size", "got -1"]),
    ("PUT", "/entropy", {"rate_limiter": {"ops": {"size": 1}}},
     400, ["rate_limiter.ops.refill_time", "missing"]),
    ("PUT", "/entropy", {"rate": 1}, 400, ["entropy", "unknown field", "rate"]),
    ("PUT", "/entropy", {"rate_limiter": []}, 400, ["rate_limiter", "object"]),
    ("PUT", "/network-interfaces/eth0", {**NET, "guest_mac": "01:00:00:00:00:01"},
     400, ["guest_mac", "multicast"]),
    ("PUT", "/network-interfaces/eth0", {**NET, "host_dev_name": "a" * 16},
     400, ["host_dev_name", "interface name"]),
    ("PUT", "/drives/rootfs",
     {**DRIVE, "rate_limiter": {"bandwidth": {"size": -1, "refill_time": 1}}},
     400, ["size"]),
    # bad ids in the path
    ("PUT", "/drives/" + LONG_ID, {**DRIVE, "drive_id": LONG_ID}, 400, ["drive_id", "64", "65"]),
    ("PUT", "/network-interfaces/" + LONG_ID, {**NET, "iface_id": LONG_ID},
     400, ["iface_id", "64", "65"]),
    ("PUT", "/drives/a.b", {**DRIVE, "drive_id": "a.b"}, 400, ["drive_id", "a.b"]),
    ("PATCH", "/drives/a.b", {"drive_id": "a.b", "path_on_host": "/x"}, 400, ["drive_id", "a.b"]),
    ("PUT", "/network-interfaces/e:0", {**NET, "iface_id": "e:0"}, 400, ["iface_id", "e:0"]),
    ("PUT", "/drives/a%20b", {**DRIVE, "drive_id": "a b"}, 400, ["percent-encoding"]),
    ("PUT", "/drives/a/b", {**DRIVE, "drive_id": "a"}, 404, ["/drives/a/b"]),
    ("PUT", "/drives/", DRIVE, 404, ["/drives/"]),
    ("PUT", "/drives", DRIVE, 404, ["/drives"]),
    # the path id and the body id differ
    ("PUT", "/drives/rootfs", {**DRIVE, "drive_id": "other"},
     400, ["drive_id", "does not match", "rootfs"]),
    ("PUT", "/network-interfaces/eth0", {**NET, "iface_id": "eth1"},
     400, ["iface_id", "does not match", "eth0"]),
    # duplicate keys
    ("PUT", "/machine-config", '{"vcpu_count": 1, "vcpu_count": 2, "mem_size_mib": 64}',
     400, ["duplicate", "vcpu_count"]),
    # PATCH with nothing to change
    ("PATCH", "/machine-config", {}, 400, ["empty PATCH"]),
    ("PATCH", "/machine-config", {"vcpu_count": None}, 400, ["empty PATCH"]),
    # paths Firecracker has and Ember does not serve yet
    ("PATCH", "/balloon/hinting/start", {}, 400, ["/balloon/hinting/start", "not supported yet"]),
    ("GET", "/balloon/hinting/status", None, 400, ["not supported yet"]),
    ("PUT", "/mmds", {}, 400, ["/mmds", "not supported yet"]),
    ("PUT", "/mmds/config", {}, 400, ["not supported yet"]),
    ("PUT", "/snapshot/create", {}, 400, ["snapshot/create.snapshot_path", "missing"]),
    ("PUT", "/snapshot/load", {}, 400, ["snapshot/load.snapshot_path", "missing"]),
    ("PUT", "/cpu-config", {}, 400, ["not supported yet"]),
    # unknown paths
    ("GET", "/nosuch", None, 404, ["/nosuch"]),
    ("GET", "/machine-config/x", None, 404, []),
    ("GET", "/version/", None, 404, []),
    ("GET", "/vm/configuration", None, 404, []),
    ("PUT", "/Actions", {"action_type": "InstanceStart"}, 404, []),
]


def error_id(case):
    method, path, body, status, _ = case
    return f"{method} {path[:40]} {json.dumps(body)[:50] if body is not None else ''}"


def test_errors(ember):
    """Each row of ERRORS gets its status and a fault message with its words; none of them
    changes the configuration."""
    before = vm_config(ember)
    failures = []
    for case in ERRORS:
        method, path, body, status, words = case
        r = ember.request(method, path, body)
        try:
            assert_fault(r, status, *words)
        except AssertionError as e:
            failures.append(f"{error_id(case)}: {e}")
    assert not failures, "\n".join(failures)
    assert vm_config(ember) == before
    ember.assert_healthy("Not started")


def test_errors_are_counted_as_fails(ember):
    r = ember.put("/machine-config", {"vcpu_count": 0, "mem_size_mib": 1})
    assert r.status == 400
    m = ember.metrics()
    assert m["put_api_requests_machine_cfg_count"] == 1
    assert m["put_api_requests_machine_cfg_fails"] == 1


# ---- wrong method: 405 with an Allow header ----

ALLOW = [
    ("/", "GET", ["PUT", "PATCH", "DELETE", "POST"]),
    ("/version", "GET", ["PUT"]),
    ("/boot-source", "PUT", ["GET", "PATCH", "POST"]),
    ("/machine-config", "GET, PUT, PATCH", ["DELETE", "POST"]),
    ("/drives/rootfs", "PUT, PATCH", ["GET", "DELETE"]),
    ("/network-interfaces/eth0", "PUT, PATCH", ["GET", "DELETE"]),
    ("/vsock", "PUT", ["GET", "PATCH"]),
    ("/entropy", "PUT", ["GET", "PATCH"]),
    ("/balloon", "GET, PUT, PATCH", ["DELETE", "POST"]),
    ("/balloon/statistics", "GET, PATCH", ["PUT", "DELETE"]),
    ("/actions", "PUT", ["GET", "POST", "PATCH"]),
    ("/vm", "PATCH", ["GET", "PUT"]),
    ("/vm/config", "GET", ["PUT"]),
    ("/logger", "PUT", ["GET", "PATCH"]),
    ("/metrics", "GET, PUT", ["PATCH", "DELETE"]),
    ("/serial", "PUT", ["GET"]),
]


@pytest.mark.parametrize("path,allow,methods", ALLOW, ids=[a[0] for a in ALLOW])
def test_wrong_method_is_405_with_allow(ember, path, allow, methods):
    for m in methods:
        r = ember.request(m, path, {} if m in ("PUT", "PATCH", "POST") else None)
        assert_fault(r, 405, m, "not allowed", allow)
        assert r.headers.get("Allow") == allow, (m, path, r.headers)


def test_unknown_method_token_is_405(ember):
    out = ember.raw(b"BREW / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 405 "), out
    assert b"\r\nAllow: GET\r\n" in out, out


# ---- bodies that are not what the endpoint takes ----

BODY_ENDPOINTS = [("PUT", "/boot-source"), ("PUT", "/machine-config"),
                  ("PATCH", "/machine-config"), ("PUT", "/drives/rootfs"),
                  ("PATCH", "/drives/rootfs"), ("PUT", "/network-interfaces/eth0"),
                  ("PATCH", "/network-interfaces/eth0"), ("PUT", "/vsock"), ("PUT", "/entropy"),
                  ("PUT", "/balloon"), ("PATCH", "/balloon"), ("PATCH", "/balloon/statistics"),
                  ("PUT", "/logger"),
                  ("PUT", "/metrics"), ("PUT", "/serial"), ("PUT", "/actions"),
                  ("PATCH", "/vm")]


@pytest.mark.parametrize("method,path", BODY_ENDPOINTS, ids=[f"{m} {p}" for m, p in BODY_ENDPOINTS])
def test_bad_bodies(ember, method, path):
    """Empty, not an object, invalid JSON, trailing data: each a 400 with a message."""
    cases = [
        (b"", ["empty", "JSON object"]),
        (b"   ", []),
        (b"[]", []), (b"1", []), (b'"x"', []), (b"null", []), (b"true", []),
        (b"{", []), (b"{'a': 1}", []), (b'{"a":}', []), (b'{"a": 1,}', []),
    ]
    if path not in ("/actions", "/vm"):  # those two: test_action_bodies_are_strict
        cases.append((b"{} {}", ["data after"]))
    for body, words in cases:
        r = ember.request(method, path, body)
        msg = assert_fault(r, 400, *words)
        assert "JSON" in msg or "object" in msg or "empty" in msg, (body, msg)
    ember.assert_healthy("Not started")


STRICT = [
    (b'{"action_type": "FlushMetrics"} x', "data after the JSON object"),
    (b'{"action_type": "FlushMetrics"}{"a": 1}', "a second JSON value"),
    (b'{"action_type": "FlushMetrics", "action_type": "Bogus"}', "a duplicate key"),
    (b'{"action_type": "FlushMetrics"\x01}', "a control character"),
]


def test_action_bodies_are_strict(ember, tmp_path):
    """PUT /actions and PATCH /vm parse their bodies as strictly as every other endpoint
    (and as Firecracker's serde_json): trailing data, a duplicate key or a control character
    is a 400, not silently ignored.

    BUG (Ember): src/api/routes.c one_choice() parses with cJSON_ParseWithLength() alone,
    which stops after the first value and keeps the first of duplicate keys; the other
    endpoints go through config.c's parse_json(), which rejects all of these."""
    ember.ok("PUT", "/metrics", {"metrics_path": str(tmp_path / "m.json")})
    accepted = []
    for body, what in STRICT:
        r = ember.put("/actions", body)
        if r.status != 400:
            accepted.append(f"PUT /actions with {what} {body!r}: {r.status}")
        vm_body = body.replace(b"action_type", b"state").replace(b"FlushMetrics", b"Paused")
        r = ember.patch("/vm", vm_body)
        if MSG_BEFORE_START in r.fault:
            accepted.append(f"PATCH /vm with {what} {vm_body!r} passed the parser")
    assert not accepted, "accepted:\n" + "\n".join(accepted)


def test_body_with_nul_in_string_refused(ember):
    r = ember.put("/boot-source", '{"kernel_image_path": "/a\\u0000b"}')
    assert_fault(r, 400, "kernel_image_path", "NUL")


def test_content_type_is_not_required(ember):
    """curl -d sends application/x-www-form-urlencoded unless told otherwise; Firecracker
    ignores Content-Type, and so does Ember."""
    r = ember.request("PUT", "/boot-source", BOOT,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 204, r


def test_responses_keep_the_connection_alive(ember):
    with ember.client() as c:
        for _ in range(5):
            assert c.request("GET", "/").status == 200
            assert c.request("PUT", "/machine-config", {"vcpu_count": 0}).status == 400
            assert c.request("GET", "/nosuch").status == 404
            assert c.request("PUT", "/machine-config", MACHINE).status == 204
