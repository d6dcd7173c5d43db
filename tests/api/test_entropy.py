# SPDX-License-Identifier: Apache-2.0
"""PUT /entropy (Firecracker's entropy device: virtio-rng, docs/api.md and
docs/clone-safety.md): configured before the start, shown by GET /vm/config, refused after
it; the test guest's own driver gets bytes from it; its rate limiter holds; its counters
are Firecracker's "entropy" group in the metrics file and in GET /metrics."""
import json

from conftest import GUEST, MSG_AFTER_START

RL = {"ops": {"size": 1, "one_time_burst": 0, "refill_time": 100}}
ENTROPY_COUNTERS = ["activate_fails", "entropy_event_fails", "entropy_event_count",
                    "entropy_bytes", "host_rng_fails", "entropy_rate_limiter_throttled",
                    "rate_limiter_event_count"]
# what the guest's virtio_rng asks for and gets (tests/guest/test_virtio_rng.py)
RNG_REQUESTS, RNG_BYTES = 7, 4 * 64 + 3 * 48 + 2 * 48 + 64 * 1024


def entropy(vm):
    return vm.get("/vm/config").json["entropy"]


def test_put_shown_and_replaced(ember):
    assert entropy(ember) is None
    ember.ok("PUT", "/entropy", {})
    assert entropy(ember) == {"rate_limiter": None}
    ember.ok("PUT", "/entropy", {"rate_limiter": RL})
    assert entropy(ember) == {"rate_limiter": {"bandwidth": None, "ops": RL["ops"]}}
    # a PUT replaces the whole device: no limiter now
    ember.ok("PUT", "/entropy", {"rate_limiter": None})
    assert entropy(ember) == {"rate_limiter": None}
    # a bucket of size 0 limits nothing, and counts as absent
    ember.ok("PUT", "/entropy", {"rate_limiter": {"ops": {"size": 0, "refill_time": 100}}})
    assert entropy(ember) == {"rate_limiter": None}


def test_refused_bodies_change_nothing(ember):
    ember.ok("PUT", "/entropy", {"rate_limiter": RL})
    for body, words in [({"rate_limiter": {"ops": {"size": 1.5, "refill_time": 1}}},
                         ["rate_limiter.ops.size", "integer"]),
                        ({"rate_limiter": RL, "extra": True}, ["unknown field", "extra"]),
                        ('{"rate_limiter": null, "rate_limiter": null}', ["duplicate"]),
                        (b"", ["empty"])]:
        r = ember.put("/entropy", body)
        assert r.status == 400 and all(w in r.fault for w in words), (body, r)
    assert entropy(ember) == {"rate_limiter": {"bandwidth": None, "ops": RL["ops"]}}


def test_guest_gets_bytes_and_metrics_count_them(ember, tmp_path):
    metrics = tmp_path / "m.json"
    ember.ok("PUT", "/metrics", {"metrics_path": str(metrics)})
    ember.ok("PUT", "/entropy", {})
    ember.boot("tests=virtio_rng exit=hang")
    assert "PASS virtio_rng" in ember.console, ember.describe()
    assert "virtio_mmio.device=4K@0xd0001000:5" in ember.console
    values = ember.metrics()
    assert values["entropy_entropy_event_count"] == RNG_REQUESTS
    assert values["entropy_entropy_bytes"] == RNG_BYTES
    assert values["entropy_entropy_event_fails"] == 0
    ember.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    line = json.loads(metrics.read_text().splitlines()[-1])
    assert sorted(line["entropy"]) == sorted(ENTROPY_COUNTERS), line["entropy"]
    assert line["entropy"]["entropy_bytes"] == RNG_BYTES


def test_rate_limited_through_the_api(ember):
    ember.ok("PUT", "/entropy", {"rate_limiter": RL})
    ember.boot("tests=virtio_rng exit=hang")
    assert "PASS virtio_rng" in ember.console, ember.describe()
    values = ember.metrics()
    assert values["entropy_entropy_bytes"] == RNG_BYTES
    assert values["entropy_entropy_rate_limiter_throttled"] >= 1
    assert values["entropy_rate_limiter_event_count"] >= 1


def test_refused_after_the_start(ember):
    ember.ok("PUT", "/entropy", {})
    ember.boot()
    before = ember.get("/vm/config").json
    for body in ({}, {"rate_limiter": RL}):
        r = ember.put("/entropy", body)
        assert r.status == 400 and MSG_AFTER_START in r.fault, r
    assert ember.get("/vm/config").json == before
    # a bad body is still reported as such
    r = ember.put("/entropy", {"rate": 1})
    assert r.status == 400 and "unknown field" in r.fault, r
    ember.assert_healthy("Running")


def test_no_device_without_the_put(ember):
    ember.boot("tests=virtio_rng exit=hang")
    assert "FAIL virtio_rng: no virtio-rng device" in ember.console, ember.describe()
    assert ember.metrics()["entropy_entropy_event_count"] == 0


def test_config_file_entropy(ember_factory, tmp_path):
    """The config file's "entropy" section (Firecracker's key), with the API serving the
    running VM."""
    cfg = {"boot-source": {"kernel_image_path": str(GUEST),
                           "boot_args": "tests=virtio_rng exit=hang"},
           "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
           "entropy": {"rate_limiter": {"bandwidth": {"size": 1 << 20, "refill_time": 10}}}}
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(cfg))
    vm = ember_factory(["--config-file", str(path)])
    vm.wait_done()
    assert "PASS virtio_rng" in vm.console, vm.describe()
    assert entropy(vm)["rate_limiter"]["bandwidth"]["size"] == 1 << 20
    assert vm.put("/entropy", {}).status == 400
