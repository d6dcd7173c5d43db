# SPDX-License-Identifier: Apache-2.0
"""How guest memory is backed (machine-config huge_pages and ksm, docs/memory.md): 2 MiB
huge pages boot the test guest when the host has them reserved and fail with a clear 400
when it has not; a 2M-backed guest's snapshot restores through the Uffd backend (and is
refused from a file); Transparent huge pages and KSM are advice the kernel sees on the
guest's mapping (/proc/PID/smaps). And `ember --print-memory-stats`, the host-wide view of
what the guests were given against what they hold."""
import json
import re
import subprocess
from pathlib import Path

import pytest

from test_snapshot import STEP, counts, paused_count
from test_snapshot_uffd import handlers, uffd_body  # noqa: F401 (a fixture)
from test_snapshot import load_body

NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")
EMBER = Path(__file__).resolve().parents[2] / "build" / "ember"
MEM_MIB = 64


@pytest.fixture
def reserved():
    """Sets how many 2 MiB pages the host keeps for hugetlbfs; puts the old count back."""
    old = NR_HUGEPAGES.read_text().strip()

    def reserve(n):
        NR_HUGEPAGES.write_text(f"{n}\n")
        got = int(Path("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read_text())
        if n and got < n:
            pytest.fail(f"asked the host for {n} huge pages, it has {got} free")
    yield reserve
    NR_HUGEPAGES.write_text(old + "\n")


def guest_mappings(pid):
    """[(header line, {field: value})] of pid's mappings of at least MEM_MIB MiB."""
    out, cur = [], None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
        if m:
            size = int(m.group(2), 16) - int(m.group(1), 16)
            cur = (line, {}) if size >= MEM_MIB << 20 else None
            if cur:
                out.append(cur)
        elif cur is not None and ":" in line:
            k, v = line.split(":", 1)
            cur[1][k] = v.strip()
    return out


def boot(vm, **machine):
    vm.configure("tests=counter", mem_mib=MEM_MIB)
    if machine:
        vm.ok("PATCH", "/machine-config", machine)
    return vm.put("/actions", {"action_type": "InstanceStart"})


def test_2m_boots_with_reserved_pages(ember_factory, reserved):
    """With 32 pages reserved the guest boots on them: they are in use while it runs."""
    reserved(MEM_MIB // 2)
    vm = ember_factory()
    r = boot(vm, huge_pages="2M")
    assert r.status == 204, r
    vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting on huge pages")
    pool = Path("/sys/kernel/mm/hugepages/hugepages-2048kB")
    free, resv = (int((pool / f).read_text()) for f in ("free_hugepages", "resv_hugepages"))
    assert free - resv == 0, (free, resv)  # all 32 taken or reserved for the guest, up front
    maps = guest_mappings(vm.proc.pid)
    assert any(m[1].get("KernelPageSize") == "2048 kB" for m in maps), maps


def test_2m_without_reserved_pages_is_a_clear_400(ember_factory, reserved):
    reserved(0)
    vm = ember_factory()
    r = boot(vm, huge_pages="2M")
    assert r.status == 400, r
    assert "needs 32 huge pages of 2 MiB" in r.fault and "nr_hugepages" in r.fault, r.fault
    vm.ok("PATCH", "/machine-config", {"huge_pages": "None"})  # usable: boots without
    vm.start()
    vm.wait_until(lambda: len(counts(vm)) >= 1, 10, "counting")


def test_2m_needs_an_even_size(ember_factory, reserved):
    reserved(MEM_MIB // 2)
    vm = ember_factory()
    vm.configure("tests=counter", mem_mib=63)
    vm.ok("PATCH", "/machine-config", {"huge_pages": "2M"})
    r = vm.put("/actions", {"action_type": "InstanceStart"})
    assert r.status == 400 and "multiple of 2" in r.fault, r


def test_2m_snapshot_restores_through_uffd(ember_factory, reserved, handlers, tmp_path):
    """Huge pages cannot map a file's 4 KiB pages: the File backend is refused with a reason,
    and the Uffd backend restores the guest on fresh huge pages, 2 MiB per fault."""
    reserved(MEM_MIB)  # the source's 32, and the restored VM's 32
    vm = ember_factory(name="source")
    assert boot(vm, huge_pages="2M").status == 204
    vm.wait_until(lambda: len(counts(vm)) >= 3, 10, "counting")
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    last = paused_count(vm)
    state, mem = tmp_path / "s.state", tmp_path / "s.mem"
    vm.ok("PUT", "/snapshot/create", {"snapshot_path": str(state), "mem_file_path": str(mem)})
    vm.kill()
    dst = ember_factory(name="restored")
    r = dst.put("/snapshot/load", load_body(state, mem))
    assert r.status == 400 and "Uffd backend only" in r.fault, r
    h = handlers(tmp_path / "u.sock", mem)
    dst.ok("PUT", "/snapshot/load", uffd_body(state, h.sock))
    dst.wait_until(lambda: len(counts(dst)) >= 2, 10, "counting after the restore")
    assert counts(dst)[0] == last + STEP
    maps = guest_mappings(dst.proc.pid)
    assert any(m[1].get("KernelPageSize") == "2048 kB" for m in maps), maps


def test_transparent_huge_pages_and_ksm_advice(ember_factory):
    """Transparent: the guest memory is advised MADV_HUGEPAGE ("hg" in VmFlags) and 2 MiB
    aligned; ksm: MADV_MERGEABLE ("mg"). Without them, neither."""
    vm = ember_factory(name="advised")
    assert boot(vm, huge_pages="Transparent", ksm=True).status == 204
    vm.wait_until(lambda: len(counts(vm)) >= 1, 10, "counting")
    maps = guest_mappings(vm.proc.pid)
    assert maps, "no guest mapping"
    for header, fields in maps:
        flags = fields["VmFlags"].split()
        assert "hg" in flags and "mg" in flags, (header, flags)
        assert int(header.split("-")[0], 16) % (2 << 20) == 0, header
    plain = ember_factory(name="plain")
    assert boot(plain).status == 204
    plain.wait_until(lambda: len(counts(plain)) >= 1, 10, "counting")
    for header, fields in guest_mappings(plain.proc.pid):
        flags = fields["VmFlags"].split()
        assert "hg" not in flags and "mg" not in flags, (header, flags)


def test_ksm_survives_a_restore(ember_factory, tmp_path):
    """The snapshot keeps machine-config: a restored ksm guest's memory is mergeable too."""
    vm = ember_factory(name="source")
    assert boot(vm, ksm=True).status == 204
    vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting")
    vm.ok("PATCH", "/vm", {"state": "Paused"})
    state, mem = tmp_path / "s.state", tmp_path / "s.mem"
    vm.ok("PUT", "/snapshot/create", {"snapshot_path": str(state), "mem_file_path": str(mem)})
    vm.kill()
    dst = ember_factory(name="restored")
    dst.ok("PUT", "/snapshot/load", load_body(state, mem))
    maps = guest_mappings(dst.proc.pid)
    assert maps and all("mg" in f["VmFlags"].split() for _, f in maps), maps


# ---- overcommit accounting ----

def memory_stats():
    r = subprocess.run([str(EMBER), "--print-memory-stats", "--json"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_print_memory_stats(ember_factory, tmp_path):
    """`ember --print-memory-stats --json` lists every Ember on the host with the memory its
    guest was given, and how much of it is resident: a booted guest's is private; two clones
    restored from one memory file share the file's page cache (resident in both, counted
    as shared). The totals add up, and the overcommit is given against host RAM."""
    a = ember_factory(["--id", "vm-a"], name="a")
    assert boot(a).status == 204
    b = ember_factory(["--id", "vm-b"], name="b")
    b.configure("tests=counter", mem_mib=128)
    b.start()
    b.wait_until(lambda: len(counts(b)) >= 2, 10, "counting")
    b.ok("PATCH", "/vm", {"state": "Paused"})
    state, mem = tmp_path / "s.state", tmp_path / "s.mem"
    b.ok("PUT", "/snapshot/create", {"snapshot_path": str(state), "mem_file_path": str(mem)})
    clones = []
    for name in ("vm-c", "vm-d"):
        vm = ember_factory(["--id", name], name=name)
        vm.ok("PUT", "/snapshot/load", load_body(state, mem))
        clones.append(vm)
    for vm in [a] + clones:
        vm.wait_until(lambda: len(counts(vm)) >= 2, 10, "counting")
    stats = memory_stats()
    vms = {v["pid"]: v for v in stats["vms"]}
    mine = [a, b] + clones
    got = [vms.get(vm.proc.pid) for vm in mine]
    assert all(got), (stats, [vm.proc.pid for vm in mine])
    assert [g["id"] for g in got] == ["vm-a", "vm-b", "vm-c", "vm-d"]
    assert [g["guest_bytes"] for g in got] == [64 << 20] + [128 << 20] * 3
    for g in got:
        assert 0 < g["rss_bytes"] <= g["guest_bytes"], g
        assert g["private_bytes"] + g["shared_bytes"] == g["rss_bytes"], g
    assert got[0]["shared_bytes"] == 0, got[0]
    for g in got[2:]:  # the memory file's pages, mapped by both clones
        assert g["shared_bytes"] > 0 and g["pss_bytes"] < g["rss_bytes"], g
    total = stats["total"]
    for key in ("guest_bytes", "rss_bytes", "pss_bytes"):
        assert total[key] == sum(v[key] for v in stats["vms"]), key
    host = stats["host_mem_bytes"]
    assert host > 0 and abs(stats["overcommit"] - total["guest_bytes"] / host) < 1e-3


def test_print_memory_stats_table_and_refusals():
    r = subprocess.run([str(EMBER), "--print-memory-stats"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("     PID ID"), r
    assert "overcommit" in r.stdout.splitlines()[-1]
    r = subprocess.run([str(EMBER), "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--json goes with --print-memory-stats" in r.stderr, r
