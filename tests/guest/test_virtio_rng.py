# SPDX-License-Identifier: Apache-2.0
"""virtio-rng (Firecracker's "entropy" device, docs/clone-safety.md) from the guest's side:
the test guest's own driver (tests/guest/virtio_rng.c) asks for bytes in requests of every
shape and checks they came; virtio_rng_hostile breaks the rules and checks the device
answers with empty chains or DEVICE_NEEDS_RESET, never stopping Ember. The metrics Ember
flushes at exit must count what happened."""

import pytest

from guestrun import drive, image, make_config, make_disk, metric_sum, metrics_lines, run

SMALL, ROUNDS, PART, CAP = 64, 4, 48, 64 * 1024  # tests/guest/virtio_rng.c
F_INDIRECT, F_EVENT_IDX, F_V1 = 1 << 28, 1 << 29, 1 << 32
# what virtio_rng asks for: the small rounds, three buffers, two through an indirect
# table, then 128 KiB of which the device gives its cap
REQUESTS = ROUNDS + 1 + 1 + 1
BYTES = ROUNDS * SMALL + 3 * PART + 2 * PART + CAP
HOSTILE_EMPTY = ["readable-only", "readable-first"]
HOSTILE_RESET = ["past-ram", "mmio-gap", "chain-loop", "zero-length"]


def rng_config(tmp_path, tests, entropy=None, drives=None):
    config = make_config(image("guest.elf"), f"tests={tests} exit=auto", 1, 128, drives)
    config["entropy"] = {} if entropy is None else entropy
    config["metrics"] = {"metrics_path": str(tmp_path / "metrics.json")}
    (tmp_path / "metrics.json").touch()
    return config


def run_rng(tmp_path, tests, **kw):
    r = run(config=rng_config(tmp_path, tests, **kw), debug_exit=True)
    assert r.returncode == 0, r.explain()
    r.assert_all_passed(tests.split(","))
    return r, metrics_lines(tmp_path / "metrics.json")


def devices(r):
    return [dict(w.split("=", 1) for w in words) for words in r.values("virtio-rng")]


def test_guest_driver_gets_random_bytes(tmp_path):
    r, flushed = run_rng(tmp_path, "virtio_rng")
    devs = devices(r)
    assert len(devs) == 1, r.explain()
    features = int(devs[0]["features"], 16)
    assert features & F_V1 and features & F_INDIRECT and features & F_EVENT_IDX, devs
    assert len(devs[0]["bytes"]) == 32 and devs[0]["bytes"] != "0" * 32, devs
    assert metric_sum(flushed, "entropy", "entropy_event_count") == REQUESTS
    assert metric_sum(flushed, "entropy", "entropy_bytes") == BYTES
    for name in ("entropy_event_fails", "host_rng_fails", "activate_fails",
                 "entropy_rate_limiter_throttled"):
        assert metric_sum(flushed, "entropy", name) == 0, name
    assert metric_sum(flushed, "virtio", "needs_reset") == 0


def test_two_boots_get_different_bytes(tmp_path):
    seen = set()
    for i in range(2):
        d = tmp_path / str(i)
        d.mkdir()
        r, _ = run_rng(d, "virtio_rng")
        seen.add(devices(r)[0]["bytes"])
    assert len(seen) == 2


def test_hostile_driver_does_not_stop_ember(tmp_path):
    """Each broken rule is answered as the device's contract says; the device serves a good
    request after each, and again in a full virtio_rng run afterwards."""
    r, flushed = run_rng(tmp_path, "virtio_rng_hostile,virtio_rng")
    cases = [v[0] for v in r.values("virtio-rng-hostile")]
    assert cases == HOSTILE_EMPTY + HOSTILE_RESET, r.explain()
    assert metric_sum(flushed, "virtio", "needs_reset") == len(HOSTILE_RESET)
    assert metric_sum(flushed, "entropy", "entropy_event_fails") == len(cases)
    assert metric_sum(flushed, "entropy", "host_rng_fails") == 0


def test_after_the_drives(tmp_path):
    """The entropy device takes the slot after the drives (and interfaces, vsock), and both
    kinds of device work side by side."""
    disk = make_disk(tmp_path / "d0.img", 2048)
    r, _ = run_rng(tmp_path, "virtio_blk,virtio_rng", drives=[drive("d0", disk)])
    assert [d["dev"] for d in devices(r)] == ["1"], r.explain()
    assert "virtio_mmio.device=4K@0xd0002000:6" in " ".join(
        w for v in r.values("cmdline") for w in v), r.explain()


@pytest.mark.parametrize("bucket", ["ops", "bandwidth"])
def test_rate_limited(tmp_path, bucket):
    """A rate limiter holds requests back (the guest's waits are about a second each, so
    each request must come within that): some are throttled, all complete."""
    limiter = {"ops": {"size": 1, "refill_time": 100}} if bucket == "ops" else \
        {"bandwidth": {"size": 100, "refill_time": 100}}
    r, flushed = run_rng(tmp_path, "virtio_rng", entropy={"rate_limiter": limiter})
    assert metric_sum(flushed, "entropy", "entropy_bytes") == BYTES
    assert metric_sum(flushed, "entropy", "entropy_rate_limiter_throttled") >= 1
    assert metric_sum(flushed, "entropy", "rate_limiter_event_count") >= 1
    # ops: six requests wait 100 ms each; bandwidth: 100 bytes per 100 ms, and a request
    # bigger than the bucket waits for it to be full
    assert r.seconds >= 0.3, r.explain()
