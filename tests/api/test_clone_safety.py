# SPDX-License-Identifier: Apache-2.0
"""Clone safety (docs/clone-safety.md) with the test guest: its `vmgenid_watch` test prints
the VM generation ID page's counter and ID, with 16 fresh bytes from the entropy device,
at the start and each time they change. A snapshot restored into a fresh Ember is a clone:
its ID is new and its counter is the snapshot's + 1; two restores of one snapshot get
different IDs; a clone of a clone counts 2; the entropy device goes on serving after each
restore."""
import re

import pytest

from test_snapshot import load_body, settled_console

WATCH_RE = re.compile(r"^EMBER-GUEST: vmgenid-watch gen=(\d+) id=([0-9a-f]{32}) "
                      r"rng=([0-9a-f]{32}|none|failed:\d+)$", re.M)
WATCH_ARGS = "tests=vmgenid,vmgenid_watch exit=hang"


def generations(vm):
    """The watch's lines so far, as (counter, id, rng bytes)."""
    return [(int(g), ident, rng) for g, ident, rng in WATCH_RE.findall(vm.console)]


def wait_generation(vm, gen, timeout=10):
    vm.wait_until(lambda: any(g[0] == gen for g in generations(vm)), timeout,
                  f"the guest to see generation {gen}")
    return [g for g in generations(vm) if g[0] == gen][-1]


def boot_watch(ember_factory, with_entropy=True):
    vm = ember_factory(name="source")
    if with_entropy:
        vm.ok("PUT", "/entropy", {})
    vm.configure(WATCH_ARGS)
    vm.start()
    first = wait_generation(vm, 0)
    assert "PASS vmgenid" in vm.console, vm.describe()
    return vm, first


def snapshot(vm, tmp_path, name):
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    settled_console(vm)
    state, mem = tmp_path / f"{name}.state", tmp_path / f"{name}.mem"
    vm.ok("PUT", "/snapshot/create", {"snapshot_type": "Full", "snapshot_path": str(state),
                                      "mem_file_path": str(mem)})
    return state, mem


def restore(ember_factory, state, mem, name, resume=True):
    vm = ember_factory(name=name)
    vm.ok("PUT", "/snapshot/load", load_body(state, mem, resume=resume))
    return vm


@pytest.fixture
def source(ember_factory, tmp_path):
    """A snapshot of the watching guest with an entropy device: (state, mem, first line)."""
    vm, first = boot_watch(ember_factory)
    state, mem = snapshot(vm, tmp_path, "src")
    vm.kill()
    return state, mem, first


def test_each_restore_is_a_new_generation(ember_factory, source):
    """Two clones of one snapshot: each has counter 1 and an ID of its own, different from
    the original's and from each other's; each clone's entropy device answers."""
    state, mem, (gen0, id0, rng0) = source
    assert gen0 == 0 and rng0 not in ("none",) and not rng0.startswith("failed"), source
    clones = []
    for i in range(2):
        vm = restore(ember_factory, state, mem, f"clone{i}")
        gen, ident, rng = wait_generation(vm, 1)
        assert ident != id0, vm.describe()
        assert re.fullmatch(r"[0-9a-f]{32}", rng) and rng != rng0, vm.describe()
        assert vm.metrics()["entropy_entropy_bytes"] >= 16
        clones.append(ident)
        vm.kill()
    assert clones[0] != clones[1]


def test_clone_of_a_clone_counts_two(ember_factory, source, tmp_path):
    state, mem, (_, id0, _) = source
    vm = restore(ember_factory, state, mem, "clone1")
    _, id1, _ = wait_generation(vm, 1)
    state2, mem2 = snapshot(vm, tmp_path, "clone1")
    vm.kill()
    vm = restore(ember_factory, state2, mem2, "clone2")
    gen, id2, rng = wait_generation(vm, 2)
    assert len({id0, id1, id2}) == 3
    assert re.fullmatch(r"[0-9a-f]{32}", rng), vm.describe()


def test_paused_load_changes_the_generation_before_the_guest_runs(ember_factory, source):
    """resume_vm false: nothing runs until Resumed, and the first thing the guest sees is
    the new generation (its watch prints generation 1, never 0 again)."""
    state, mem, _ = source
    vm = restore(ember_factory, state, mem, "paused", resume=False)
    assert vm.state() == "Paused"
    assert generations(vm) == []
    vm.ok("PATCH", "/vm", {"state": "Resumed"})
    wait_generation(vm, 1)
    assert all(g[0] == 1 for g in generations(vm)), vm.console


def test_without_an_entropy_device(ember_factory, tmp_path):
    """The VMGenID page is always there; without an entropy device the restore still
    gives a new generation."""
    vm, (gen0, id0, rng0) = boot_watch(ember_factory, with_entropy=False)
    assert rng0 == "none"
    state, mem = snapshot(vm, tmp_path, "plain")
    vm.kill()
    vm = restore(ember_factory, state, mem, "clone")
    gen, ident, rng = wait_generation(vm, 1)
    assert (ident != id0, rng) == (True, "none")
    assert vm.get("/vm/config").json["entropy"] is None


def test_snapshot_keeps_the_entropy_config(ember_factory, tmp_path):
    """The entropy device's rate limiter is part of the snapshot's config: GET /vm/config of
    the clone shows it, and the clone's device is limited the same way."""
    vm = ember_factory(name="source")
    limiter = {"bandwidth": None, "ops": {"size": 100, "one_time_burst": 0, "refill_time": 50}}
    vm.ok("PUT", "/entropy", {"rate_limiter": limiter})
    vm.configure(WATCH_ARGS)
    vm.start()
    wait_generation(vm, 0)
    state, mem = snapshot(vm, tmp_path, "limited")
    vm.kill()
    vm = restore(ember_factory, state, mem, "clone")
    assert vm.get("/vm/config").json["entropy"] == {"rate_limiter": limiter}
    _, _, rng = wait_generation(vm, 1)
    assert re.fullmatch(r"[0-9a-f]{32}", rng), vm.describe()
