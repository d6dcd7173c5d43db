# SPDX-License-Identifier: Apache-2.0
"""Diff snapshots (docs/snapshot.md): with track_dirty_pages, a Diff snapshot's memory file
holds only the pages written since the last snapshot (or the restore); merged into its base
with build/ember-snapshot-merge it restores the VM as it was at the Diff. The test guest's
`counter` test counts in memory: a restored guest goes on from its count."""
import os
import re
import shutil
import subprocess
from pathlib import Path

from test_snapshot import STEP, boot_counter, counts, load_body, paused_count

MERGE = Path(__file__).resolve().parents[2] / "build" / "ember-snapshot-merge"


def create(vm, tmp_path, name, kind):
    """Pauses vm and takes a `kind` snapshot; returns (state, memory, the last count)."""
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    last = paused_count(vm)
    state, mem = tmp_path / f"{name}.state", tmp_path / f"{name}.mem"
    vm.ok("PUT", "/snapshot/create", {"snapshot_type": kind, "snapshot_path": str(state),
                                      "mem_file_path": str(mem)})
    return state, mem, last


def run_more(vm, lines=3):
    """Resumes vm and waits for `lines` more counter lines."""
    n = len(counts(vm))
    vm.ok("PATCH", "/vm", {"state": "Resumed"})
    vm.wait_until(lambda: len(counts(vm)) >= n + lines, 10, f"{lines} more counter lines")


def merge(base, diff, out):
    """A copy of base with diff merged in, as a user would: the base stays for other diffs."""
    shutil.copyfile(base, out)
    r = subprocess.run([str(MERGE), "--base", str(out), "--diff", str(diff)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return out


def allocated(path):
    return os.stat(path).st_blocks * 512


def boot_tracked(vm, mem_mib=64):
    vm.configure("tests=counter", mem_mib=mem_mib)
    vm.ok("PATCH", "/machine-config", {"track_dirty_pages": True})
    vm.start()
    vm.wait_until(lambda: len(counts(vm)) >= 3, 10, "three counter lines")


def restored_first_count(ember_factory, state, mem, name, **extra):
    vm = ember_factory(name=name)
    vm.ok("PUT", "/snapshot/load", load_body(state, mem, **extra))
    vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting after the restore")
    return vm, counts(vm)[0]


def test_diff_merged_into_its_base_restores_the_later_state(ember_factory, tmp_path):
    """Full, run on, Diff: the Diff's memory file is as large as guest memory but holds a
    small part of it; merged into the Full's memory file it restores the guest at the Diff's
    count, not at the Full's."""
    vm = ember_factory(name="source")
    boot_tracked(vm, mem_mib=128)
    full_state, full_mem, full_last = create(vm, tmp_path, "full", "Full")
    run_more(vm)
    diff_state, diff_mem, diff_last = create(vm, tmp_path, "diff", "Diff")
    metrics = vm.ok("GET", "/metrics").text
    vm.kill()
    for name in ("full_create_snapshot", "diff_create_snapshot"):  # Firecracker's latencies
        m = re.search(rf"^ember_latencies_us_{name} (\d+)$", metrics, re.M)
        assert m and int(m.group(1)) > 0, (name, metrics[:2000])
    assert diff_last > full_last
    assert os.path.getsize(diff_mem) == os.path.getsize(full_mem) == 128 << 20
    assert allocated(diff_mem) < allocated(full_mem) / 2, (allocated(diff_mem),
                                                           allocated(full_mem))
    merged = merge(full_mem, diff_mem, tmp_path / "merged.mem")
    _, first = restored_first_count(ember_factory, diff_state, merged, "restored")
    assert first == diff_last + STEP
    # the base alone still restores the earlier state
    _, first = restored_first_count(ember_factory, full_state, full_mem, "base")
    assert first == full_last + STEP


def test_diffs_in_a_row_and_after_a_restore(ember_factory, tmp_path):
    """Each Diff holds what changed since the snapshot before it: Full, Diff 1, Diff 2
    merged in order restore Diff 2's state. A VM loaded with track_dirty_pages has the
    loaded memory as its base: its Diff, merged into that, restores too."""
    vm = ember_factory(name="source")
    boot_tracked(vm)
    _, full_mem, _ = create(vm, tmp_path, "full", "Full")
    run_more(vm)
    _, d1_mem, _ = create(vm, tmp_path, "d1", "Diff")
    run_more(vm)
    d2_state, d2_mem, d2_last = create(vm, tmp_path, "d2", "Diff")
    vm.kill()
    merged = merge(full_mem, d1_mem, tmp_path / "m12.mem")
    subprocess.run([str(MERGE), "--base", str(merged), "--diff", str(d2_mem)], check=True,
                   capture_output=True, timeout=60)
    vm, first = restored_first_count(ember_factory, d2_state, merged, "restored",
                                     track_dirty_pages=True)
    assert first == d2_last + STEP
    # the restored VM's Diff goes onto the memory file it was loaded from
    run_more(vm)
    d3_state, d3_mem, d3_last = create(vm, tmp_path, "d3", "Diff")
    vm.kill()
    merged3 = merge(merged, d3_mem, tmp_path / "m123.mem")
    _, first = restored_first_count(ember_factory, d3_state, merged3, "again")
    assert first == d3_last + STEP


def test_diff_refusals(ember_factory, tmp_path):
    """A Diff needs dirty-page tracking and a base to be a diff of; either missing is a
    400 that says so, no file is written, and the VM goes on."""
    body = {"snapshot_type": "Diff", "snapshot_path": str(tmp_path / "s"),
            "mem_file_path": str(tmp_path / "m")}
    vm = ember_factory(name="untracked")
    boot_counter(vm)
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    r = vm.put("/snapshot/create", body)
    assert r.status == 400 and "track_dirty_pages" in r.fault, r
    vm.kill()
    vm = ember_factory(name="no-base")
    boot_tracked(vm)
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    r = vm.put("/snapshot/create", body)
    assert r.status == 400 and "Full one first" in r.fault, r
    assert not (tmp_path / "s").exists() and not (tmp_path / "m").exists()
    run_more(vm, 1)


def test_full_snapshot_with_tracking_restarts_the_diff(ember_factory, tmp_path):
    """Every snapshot clears the dirty log: a Diff right after a Full (the guest paused in
    between) holds no page the guest wrote - it is nearly empty."""
    vm = ember_factory(name="source")
    boot_tracked(vm)
    _, full_mem, _ = create(vm, tmp_path, "full", "Full")
    diff_state, diff_mem, last = create(vm, tmp_path, "diff", "Diff")
    vm.kill()
    assert allocated(diff_mem) <= 64 << 10, allocated(diff_mem)
    merged = merge(full_mem, diff_mem, tmp_path / "merged.mem")
    _, first = restored_first_count(ember_factory, diff_state, merged, "restored")
    assert first == last + STEP
