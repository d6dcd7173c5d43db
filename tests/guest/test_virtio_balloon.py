# SPDX-License-Identifier: Apache-2.0
"""virtio-balloon (Firecracker's balloon device, docs/balloon.md) from the guest's side: the
test guest's own driver (tests/guest/virtio_balloon.c) negotiates what the config offers,
numbers the queues as Linux does, inflates pages it wrote a pattern into (they read as zero
afterwards), deflates them, has its stats buffer returned by the timer and reports a free
2 MiB region; virtio_balloon_hostile breaks the rules and checks the device skips what it
must and resets when it must, never stopping Ember. The metrics Ember flushes at exit must
count what happened."""

import pytest

from guestrun import image, make_config, metric_sum, metrics_lines, run

F_STATS, F_DEFLATE_ON_OOM, F_REPORTING, F_V1 = 1 << 1, 1 << 2, 1 << 5, 1 << 32
PAGE, HUGE = 4096, 2 << 20
# tests/guest/virtio_balloon.c: six pages inflated (four contiguous), a 2 MiB report
INFLATED = 6
HOSTILE_SKIPPED = ["huge-array", "odd-length", "writable-array", "stats-odd-length"]
HOSTILE_RESET = ["array-in-mmio-gap", "array-past-ram", "report-in-mmio-gap"]


def balloon_config(tmp_path, tests, balloon, mem_mib=128):
    config = make_config(image("guest.elf"), f"tests={tests} exit=auto", 1, mem_mib)
    config["balloon"] = balloon
    config["metrics"] = {"metrics_path": str(tmp_path / "metrics.json")}
    (tmp_path / "metrics.json").touch()
    return config


def run_balloon(tmp_path, tests, balloon, **kw):
    r = run(config=balloon_config(tmp_path, tests, balloon, **kw), debug_exit=True)
    assert r.returncode == 0, r.explain()
    r.assert_all_passed(tests.split(","))
    return r, metrics_lines(tmp_path / "metrics.json")


def device(r):
    [words] = r.values("virtio-balloon")
    return dict(w.split("=", 1) for w in words)


FULL = {"amount_mib": 4, "deflate_on_oom": True, "stats_polling_interval_s": 1,
        "free_page_reporting": True}


def test_guest_driver_inflates_deflates_reports(tmp_path):
    r, flushed = run_balloon(tmp_path, "virtio_balloon", FULL)
    dev = device(r)
    features = int(dev["features"], 16)
    assert features == F_V1 | F_STATS | F_DEFLATE_ON_OOM | F_REPORTING, dev
    assert dev["num_pages"] == str(4 * 256) and dev["queues"] == "4", dev
    assert r.values("virtio-balloon-inflate") == [[f"pages={INFLATED}", f"actual={INFLATED}"]]
    assert r.values("virtio-balloon-report") == [[f"bytes={HUGE}"]]
    m = {name: metric_sum(flushed, "balloon", name) for name in flushed[0]["balloon"]}
    assert m["inflate_count"] == 1 and m["deflate_count"] == 1, m
    assert m["inflated_pages"] == INFLATED and m["bad_pfns"] == 0, m
    assert m["discarded_bytes"] == INFLATED * PAGE + HUGE, m
    assert m["free_page_reports"] == 1, m
    # the buffer taken, returned by the timer, and taken again refilled
    assert m["stats_updates_count"] == 2 and m["stats_update_fails"] == 0, m
    assert m["event_fails"] == 0 and m["discard_fails"] == 0 and m["activate_fails"] == 0, m
    assert metric_sum(flushed, "virtio", "needs_reset") == 0


@pytest.mark.parametrize("stats,reporting,oom", [(False, False, False), (False, True, False),
                                                 (True, False, True)])
def test_queues_follow_the_features(tmp_path, stats, reporting, oom):
    """Absent queues are left out of the numbering: with reporting and no statistics the
    reporting queue is queue 2, as Linux's virtio-mmio numbers it."""
    balloon = {"amount_mib": 0, "deflate_on_oom": oom,
               "stats_polling_interval_s": 1 if stats else 0, "free_page_reporting": reporting}
    r, flushed = run_balloon(tmp_path, "virtio_balloon", balloon)
    dev = device(r)
    want = F_V1 | (F_STATS if stats else 0) | (F_REPORTING if reporting else 0) | \
        (F_DEFLATE_ON_OOM if oom else 0)
    assert int(dev["features"], 16) == want, dev
    assert dev["queues"] == str(2 + stats + reporting) and dev["num_pages"] == "0", dev
    assert bool(r.values("virtio-balloon-report")) == reporting, r.explain()
    assert bool(r.values("virtio-balloon-stats")) == stats, r.explain()
    assert metric_sum(flushed, "balloon", "free_page_reports") == int(reporting)


def test_hostile_driver_does_not_stop_ember(tmp_path):
    """Each broken rule is answered as the device's contract says; an inflate works after
    each, and a full virtio_balloon run afterwards."""
    r, flushed = run_balloon(tmp_path, "virtio_balloon_hostile,virtio_balloon", FULL)
    cases = [v[0] for v in r.values("virtio-balloon-hostile")]
    assert cases == ["pfns-outside-ram"] + HOSTILE_SKIPPED + HOSTILE_RESET, r.explain()
    assert metric_sum(flushed, "virtio", "needs_reset") == len(HOSTILE_RESET)
    # four bad pfns, inflated then deflated
    assert metric_sum(flushed, "balloon", "bad_pfns") == 8
    # three skipped pfn buffers, three broken chains
    assert metric_sum(flushed, "balloon", "event_fails") == 3 + len(HOSTILE_RESET)
    assert metric_sum(flushed, "balloon", "stats_update_fails") == 1
    assert metric_sum(flushed, "balloon", "discard_fails") == 0


def test_target_larger_than_memory_is_refused(tmp_path):
    config = balloon_config(tmp_path, "hello", {"amount_mib": 129, "deflate_on_oom": False})
    r = run(config=config)
    assert r.returncode == 1, r.explain()
    assert "balloon.amount_mib: must be at most the guest's memory" in r.stderr, r.explain()
