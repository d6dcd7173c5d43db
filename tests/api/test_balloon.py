# SPDX-License-Identifier: Apache-2.0
"""The balloon (Firecracker's virtio-balloon device, docs/balloon.md, docs/api.md): PUT
/balloon before the start (and the config file's "balloon"), GET /balloon, PATCH /balloon
after it (a new target the test guest sees in num_pages, with a config interrupt), GET and
PATCH /balloon/statistics (the guest's stats buffer, returned by the timer; statistics
cannot be turned on or off after the start), bad bodies and states as Firecracker answers
them, GET /vm/config, the "balloon" metrics group, and snapshots that keep the target,
actual and the stats buffer."""
import json
import re

import pytest

from conftest import GUEST, MSG_AFTER_START, MSG_BEFORE_START
from test_memory_backing import reserved  # noqa: F401 (a fixture)
from test_snapshot import load_body, settled_console

NO_BALLOON = "No balloon device found."
BALLOON = {"amount_mib": 8, "deflate_on_oom": True, "stats_polling_interval_s": 1}
SHOWN = {"amount_mib": 8, "deflate_on_oom": True, "stats_polling_interval_s": 1,
         "free_page_hinting": False, "free_page_reporting": False}
COUNTERS = ["activate_fails", "inflate_count", "stats_updates_count", "stats_update_fails",
            "deflate_count", "event_fails", "inflated_pages", "bad_pfns", "discarded_bytes",
            "discard_fails", "free_page_reports"]
WATCH_RE = re.compile(r"EMBER-GUEST: virtio-balloon-watch num_pages=(\d+) isr=0x([0-9a-f]+)")
WATCH_ARGS = "tests=virtio_balloon_watch exit=hang"


def watched(vm):
    """[(num_pages, InterruptStatus)] the watching guest has printed."""
    return [(int(n), int(i, 16)) for n, i in WATCH_RE.findall(vm.console)]


def boot_watch(vm, balloon=BALLOON, mem_mib=64):
    vm.configure(WATCH_ARGS, mem_mib=mem_mib)
    vm.ok("PUT", "/balloon", balloon)
    vm.start()
    vm.wait_until(lambda: watched(vm), 10, "the guest watching the balloon")
    return vm


def stats(vm):
    r = vm.get("/balloon/statistics")
    assert r.status == 200, f"{r}\n{vm.describe()}"
    return r.json


def test_put_get_and_vm_config(ember):
    r = ember.get("/balloon")
    assert r.status == 400 and r.fault == NO_BALLOON, r
    assert ember.get("/vm/config").json["balloon"] is None
    ember.ok("PUT", "/balloon", BALLOON)
    assert ember.get("/balloon").json == SHOWN
    assert ember.get("/vm/config").json["balloon"] == SHOWN
    # a PUT replaces the whole device: the fields not given take their defaults
    ember.ok("PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": False,
                                 "free_page_reporting": True})
    assert ember.get("/balloon").json == {
        "amount_mib": 0, "deflate_on_oom": False, "stats_polling_interval_s": 0,
        "free_page_hinting": False, "free_page_reporting": True}
    # what GET /vm/config prints is a config file Ember takes back
    json.dumps(ember.get("/vm/config").json)


BAD = [
    ({"amount_mib": 65, "deflate_on_oom": False},
     ["amount_mib", "at most the guest's memory", "mem_size_mib 64", "got 65"]),
    ({"amount_mib": -1, "deflate_on_oom": False}, ["amount_mib", "integer", "got -1"]),
    ({"amount_mib": 1.5, "deflate_on_oom": False}, ["amount_mib", "integer", "got 1.5"]),
    ({"amount_mib": "8", "deflate_on_oom": False}, ["amount_mib", "a string"]),
    ({"amount_mib": 2 ** 32, "deflate_on_oom": False}, ["amount_mib", "4294967295"]),
    ({"deflate_on_oom": False}, ["amount_mib", "missing"]),
    ({"amount_mib": 1}, ["deflate_on_oom", "missing"]),
    ({"amount_mib": 1, "deflate_on_oom": 1}, ["deflate_on_oom", "true or false"]),
    ({"amount_mib": 1, "deflate_on_oom": False, "stats_polling_interval_s": 65536},
     ["stats_polling_interval_s", "0 to 65535"]),
    ({"amount_mib": 1, "deflate_on_oom": False, "free_page_hinting": True},
     ["free_page_hinting", "not supported yet"]),
    ({"amount_mib": 1, "deflate_on_oom": False, "size": 3}, ["unknown field", "size"]),
    ('{"amount_mib": 1, "amount_mib": 2, "deflate_on_oom": false}', ["duplicate"]),
]


@pytest.mark.parametrize("body,words", BAD, ids=[json.dumps(b)[:60] for b, _ in BAD])
def test_bad_put_bodies(ember, body, words):
    ember.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
    ember.ok("PUT", "/balloon", BALLOON)
    r = ember.put("/balloon", body)
    assert r.status == 400 and all(w in r.fault for w in words), (body, r)
    assert ember.get("/balloon").json == SHOWN  # unchanged


def test_memory_and_balloon_must_agree(ember):
    """Whichever changes last, the target must fit the guest's memory."""
    ember.ok("PUT", "/balloon", {"amount_mib": 100, "deflate_on_oom": False})  # 128 MiB
    r = ember.patch("/machine-config", {"mem_size_mib": 64})
    assert r.status == 400, r
    assert "mem_size_mib" in r.fault and "balloon.amount_mib 100" in r.fault, r.fault
    r = ember.put("/machine-config", {"vcpu_count": 1, "mem_size_mib": 99})
    assert r.status == 400 and "got 99" in r.fault, r
    ember.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 100})
    assert ember.get("/machine-config").json["mem_size_mib"] == 100


def test_before_the_start(ember):
    """PATCH and the statistics are run-time only, as in Firecracker; a bad body is still
    reported first."""
    for path, body in [("/balloon", {"amount_mib": 1}),
                       ("/balloon/statistics", {"stats_polling_interval_s": 2})]:
        r = ember.patch(path, body)
        assert r.status == 400 and r.fault == MSG_BEFORE_START, (path, r)
    ember.ok("PUT", "/balloon", BALLOON)
    r = ember.patch("/balloon", {"amount_mib": 1})
    assert r.status == 400 and r.fault == MSG_BEFORE_START, r
    r = ember.get("/balloon/statistics")
    assert r.status == 400 and r.fault == MSG_BEFORE_START, r
    r = ember.patch("/balloon", {"amount_mib": 1, "deflate_on_oom": True})
    assert r.status == 400 and "unknown field" in r.fault, r
    r = ember.patch("/balloon", {})
    assert r.status == 400 and "amount_mib" in r.fault and "missing" in r.fault, r


def test_patch_changes_what_the_guest_sees(ember):
    vm = boot_watch(ember)
    assert watched(vm)[0] == (8 * 256, 0), vm.console
    vm.ok("PATCH", "/balloon", {"amount_mib": 20})
    vm.wait_until(lambda: len(watched(vm)) >= 2, 10, "the guest seeing the new target")
    assert watched(vm)[1] == (20 * 256, 2), vm.console  # with a config interrupt
    assert vm.get("/balloon").json["amount_mib"] == 20
    assert vm.get("/vm/config").json["balloon"]["amount_mib"] == 20
    # the guest wrote actual = num_pages
    vm.wait_until(lambda: stats(vm)["actual_pages"] == 20 * 256, 5, "actual")
    s = stats(vm)
    assert (s["target_pages"], s["target_mib"], s["actual_mib"]) == (5120, 20, 20), s
    # to zero; above the memory is refused and changes nothing
    vm.ok("PATCH", "/balloon", {"amount_mib": 0})
    vm.wait_until(lambda: len(watched(vm)) >= 3, 10, "the guest seeing target 0")
    r = vm.patch("/balloon", {"amount_mib": 65})
    assert r.status == 400 and "at most the guest's memory" in r.fault, r
    assert vm.get("/balloon").json["amount_mib"] == 0
    # PUT after the start: Firecracker's message
    r = vm.put("/balloon", BALLOON)
    assert r.status == 400 and r.fault == MSG_AFTER_START, r


def test_statistics(ember):
    vm = boot_watch(ember)
    vm.wait_until(lambda: "total_memory" in stats(vm), 5, "the guest's statistics")
    s = stats(vm)
    assert s["total_memory"] == 128 << 20, s
    assert s["free_memory"] >= 64 << 20, s
    # only what the guest reported
    assert "swap_in" not in s and "disk_caches" not in s, s
    # the timer returns the buffer every second and the guest refills it
    first = s["free_memory"]
    vm.wait_until(lambda: stats(vm)["free_memory"] > first + 1, 5, "a refilled buffer")
    # a new interval is taken; turning statistics off is not
    vm.ok("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 2})
    assert vm.get("/balloon").json["stats_polling_interval_s"] == 2
    r = vm.patch("/balloon/statistics", {"stats_polling_interval_s": 0})
    assert r.status == 400 and "cannot be turned off" in r.fault, r
    r = vm.patch("/balloon/statistics", {"stats_polling_interval_s": -1})
    assert r.status == 400 and "stats_polling_interval_s" in r.fault, r
    assert vm.get("/balloon").json["stats_polling_interval_s"] == 2
    values = vm.metrics()
    assert values["balloon_stats_updates_count"] >= 2, values
    assert values["balloon_stats_update_fails"] == 0


def test_statistics_off(ember):
    vm = boot_watch(ember, {"amount_mib": 1, "deflate_on_oom": False})
    r = vm.get("/balloon/statistics")
    assert r.status == 400 and "not enabled" in r.fault, r
    r = vm.patch("/balloon/statistics", {"stats_polling_interval_s": 5})
    assert r.status == 400 and "cannot be turned on" in r.fault, r


def test_no_balloon_after_the_start(running_ember):
    for method, path, body in [("GET", "/balloon", None), ("GET", "/balloon/statistics", None),
                               ("PATCH", "/balloon", {"amount_mib": 1}),
                               ("PATCH", "/balloon/statistics",
                                {"stats_polling_interval_s": 1})]:
        r = running_ember.request(method, path, body)
        assert r.status == 400 and r.fault == NO_BALLOON, (method, path, r)


def test_guest_driver_and_metrics(ember, tmp_path):
    metrics = tmp_path / "m.json"
    ember.ok("PUT", "/metrics", {"metrics_path": str(metrics)})
    ember.configure("tests=virtio_balloon,virtio_balloon_hostile exit=hang", mem_mib=64)
    ember.ok("PUT", "/balloon", {**BALLOON, "free_page_reporting": True})
    ember.start()
    ember.wait_done(20)
    assert "PASS virtio_balloon\n" in ember.console and "PASS virtio_balloon_hostile" in \
        ember.console, ember.describe()
    assert "virtio_mmio.device=4K@0xd0001000:5" in ember.console
    values = ember.metrics()
    assert values["balloon_inflated_pages"] >= 6 and values["balloon_bad_pfns"] == 8, values
    assert values["balloon_free_page_reports"] == 1
    ember.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    line = json.loads(metrics.read_text().splitlines()[-1])
    assert list(line["balloon"]) == COUNTERS, line["balloon"]
    assert line["balloon"]["discard_fails"] == 0


def test_huge_pages(ember_factory, reserved):  # noqa: F811 (the fixture)
    """On 2 MiB huge pages (a hugetlb memfd: MADV_REMOVE frees) inflated 4 KiB pages are
    freed only once their whole 2 MiB page is in the balloon; a reported 2 MiB block is
    freed at once. The guest reads zeros there: the memfd's pages are gone. (Under the
    seccomp filters: the VMM thread may madvise MADV_REMOVE.)"""
    reserved(32)
    vm = ember_factory()
    vm.configure("tests=virtio_balloon exit=hang balloon_huge=1", mem_mib=64)
    vm.ok("PATCH", "/machine-config", {"huge_pages": "2M"})
    vm.ok("PUT", "/balloon", {**BALLOON, "free_page_reporting": True})
    vm.start()
    vm.wait_done(20)
    assert "PASS virtio_balloon" in vm.console, vm.describe()
    assert "virtio-balloon-huge-inflate bytes=2097152" in vm.console, vm.console
    values = vm.metrics()
    # the 2 MiB report and the 2 MiB page inflated whole; not the six 4 KiB pages
    assert values["balloon_discarded_bytes"] == 2 * (2 << 20), values
    assert values["balloon_inflated_pages"] == 6 + 512, values


def test_config_file_balloon(ember_factory, tmp_path):
    cfg = {"boot-source": {"kernel_image_path": str(GUEST), "boot_args": WATCH_ARGS},
           "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
           "balloon": {"amount_mib": 3, "deflate_on_oom": False}}
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(cfg))
    vm = ember_factory(["--config-file", str(path)])
    vm.wait_until(lambda: watched(vm), 10, "the guest watching the balloon")
    assert watched(vm)[0] == (3 * 256, 0)
    assert vm.get("/balloon").json["amount_mib"] == 3


def test_snapshot_keeps_target_actual_and_statistics(ember_factory, tmp_path):
    src = boot_watch(ember_factory(name="source"))
    src.ok("PATCH", "/balloon", {"amount_mib": 12})
    src.wait_until(lambda: stats(src)["actual_pages"] == 12 * 256, 10, "actual")
    src.wait_until(lambda: "total_memory" in stats(src), 5, "statistics")
    src.ok("PATCH", "/vm", {"state": "Paused"})
    settled_console(src)
    state, mem = tmp_path / "b.state", tmp_path / "b.mem"
    src.ok("PUT", "/snapshot/create", {"snapshot_path": str(state), "mem_file_path": str(mem)})
    src.kill()
    # an Ember with a balloon configured is not fresh
    busy = ember_factory(name="busy")
    busy.ok("PUT", "/balloon", BALLOON)
    r = busy.put("/snapshot/load", load_body(state, mem))
    assert r.status == 400 and "balloon" in r.fault, r
    vm = ember_factory(name="restored")
    vm.ok("PUT", "/snapshot/load", load_body(state, mem))
    assert vm.get("/balloon").json["amount_mib"] == 12
    s = stats(vm)
    assert (s["target_pages"], s["actual_pages"]) == (12 * 256, 12 * 256), s
    assert s["total_memory"] == 128 << 20, s
    # the restored device goes on: a new target reaches the guest, the buffer comes back
    before = stats(vm)["free_memory"]
    vm.ok("PATCH", "/balloon", {"amount_mib": 5})
    vm.wait_until(lambda: (5 * 256, 2) in watched(vm), 10, "the restored guest's new target")
    vm.wait_until(lambda: stats(vm)["free_memory"] != before, 5, "statistics after restore")
