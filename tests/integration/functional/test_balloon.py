# SPDX-License-Identifier: Apache-2.0
"""The balloon with a real Linux guest (docs/balloon.md), on the real-KVM bench: the guest
kernel's virtio_balloon driver (CONFIG_VIRTIO_BALLOON=y) against Ember's device, configured
and driven through the API with a shell on the console.

- Without deflate_on_oom: a 64 MiB target takes 64 MiB off the guest's MemTotal, and
  deflating gives it back; the statistics arrive (total and free memory); amounts over the
  guest's memory, negative or fractional are 400s.
- Free page reporting: the guest fills 128 MiB of tmpfs (Ember's RSS grows by about that)
  and frees it; the guest reports the free pages and Ember gives them back to the host:
  its RSS drops again.
- With deflate_on_oom: a target that leaves the guest little memory takes it off MemFree
  (not MemTotal); a memory hog that needs more than is left survives, because the guest's
  OOM notifier deflates the balloon.

Run: tests/bench-vm/run-in-l1 --timeout 1200 -- /usr/bin/python3 -m pytest -q
tests/integration/functional/test_balloon.py
"""
import re
import pytest

from framework.api_microvm import UnixHTTPConnection

pytestmark = pytest.mark.ember_only  # the API's balloon endpoints; QEMU's balloon differs

MEM_MIB = 256
MIB = 1 << 20
KIB_RE = re.compile(r"^(\w+):\s+(\d+) kB$", re.M)


def boot(vm, balloon, mem_mib=MEM_MIB):
    """An interactive shell on a guest with the balloon, configured through the API."""
    vm.basic_config(cmd=None, mem_size_mib=mem_mib)
    vm.spawn(interactive=True)
    vm.wait_for_socket()
    vm.put_config()
    vm.ok("PUT", "/balloon", balloon)
    vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    vm.wait_for_boot()
    return vm


def sh(vm, command, timeout=120):
    status, out = vm.shell(command, timeout)
    assert status == 0, f"{command!r} failed ({status}): {out}\n{vm.describe()}"
    return out


def meminfo(vm):
    """The guest's /proc/meminfo, in MiB."""
    return {k: int(v) / 1024 for k, v in KIB_RE.findall(sh(vm, "cat /proc/meminfo"))}


def stats(vm):
    return vm.ok("GET", "/balloon/statistics")


def wait_actual(vm, mib, timeout=120):
    vm.wait_for(lambda: stats(vm)["actual_mib"] == mib, timeout, f"the balloon at {mib} MiB")


def rss_mib(vm):
    """Ember's resident memory (guest memory included), from /proc/<pid>/status."""
    with open(f"/proc/{vm.proc.pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB$", f.read(), re.M).group(1)) / 1024


def metrics(vm):
    """GET /metrics' balloon counters (Prometheus text), {name: value}."""
    c = UnixHTTPConnection(vm.socket_path)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^ember_balloon_(\w+) (\d+)$", text, re.M)}


def test_inflate_deflate_statistics_and_bad_amounts(api_microvm):
    vm = boot(api_microvm, {"amount_mib": 0, "deflate_on_oom": False,
                            "stats_polling_interval_s": 1})
    total = meminfo(vm)["MemTotal"]
    vm.ok("PATCH", "/balloon", {"amount_mib": 64})
    wait_actual(vm, 64)
    after = meminfo(vm)["MemTotal"]
    assert 63 <= total - after <= 65, (total, after)
    s = stats(vm)
    assert (s["target_mib"], s["target_pages"], s["actual_pages"]) == (64, 64 * 256, 64 * 256)
    # the guest's statistics, refreshed every second
    vm.wait_for(lambda: "free_memory" in stats(vm), 30, "the guest's statistics")
    s = stats(vm)
    assert abs(s["total_memory"] / MIB - after) < 2, (s, after)
    assert 0 < s["free_memory"] < s["total_memory"], s
    # Linux 6.1 sends these whatever its config (the fault, swap and hugetlb counts need
    # CONFIG_VM_EVENT_COUNTERS, which the default guest kernel does not have)
    assert "available_memory" in s and "disk_caches" in s, s
    # deflate: the memory comes back
    vm.ok("PATCH", "/balloon", {"amount_mib": 0})
    wait_actual(vm, 0)
    assert abs(meminfo(vm)["MemTotal"] - total) < 1, meminfo(vm)
    m = metrics(vm)
    assert m["inflate_count"] >= 1 and m["deflate_count"] >= 1, m
    assert m["inflated_pages"] >= 64 * 256 and m["bad_pfns"] == 0, m
    assert m["discarded_bytes"] >= 64 * MIB and m["discard_fails"] == 0, m
    # bad amounts change nothing
    for body, words in [({"amount_mib": MEM_MIB + 1}, ["at most the guest's memory"]),
                        ({"amount_mib": -64}, ["integer"]), ({"amount_mib": 6.4}, ["integer"]),
                        ({"amount_mib": "64"}, ["a string"]), ({}, ["missing"])]:
        status, reply = vm.request("PATCH", "/balloon", body)
        assert status == 400 and all(w in reply["fault_message"] for w in words), (body, reply)
    assert vm.ok("GET", "/balloon")["amount_mib"] == 0
    sh(vm, "echo alive")


def test_free_page_reporting_gives_memory_back(api_microvm):
    vm = boot(api_microvm, {"amount_mib": 0, "deflate_on_oom": False,
                            "free_page_reporting": True})
    sh(vm, "mount -o remount,size=90% /dev/shm")
    base = rss_mib(vm)
    sh(vm, "dd if=/dev/zero of=/dev/shm/fill bs=1M count=128 2>/dev/null")
    full = rss_mib(vm)
    assert full - base >= 100, (base, full)
    sh(vm, "rm /dev/shm/fill")
    # the guest reports free 2 MiB blocks about 2 s after they are freed
    vm.wait_for(lambda: rss_mib(vm) < full - 64, 120, "Ember's RSS to drop")
    m = metrics(vm)
    assert m["free_page_reports"] >= 1 and m["discarded_bytes"] >= 64 * MIB, m
    assert m["discard_fails"] == 0, m
    # and the guest can use the memory again
    sh(vm, "dd if=/dev/zero of=/dev/shm/fill bs=1M count=128 2>/dev/null && rm /dev/shm/fill")


def test_deflate_on_oom_lets_a_hog_live(api_microvm):
    vm = boot(api_microvm, {"amount_mib": 0, "deflate_on_oom": True,
                            "stats_polling_interval_s": 1})
    before = meminfo(vm)
    target = int(before["MemFree"]) - 40  # leaves the guest about 40 MiB
    vm.ok("PATCH", "/balloon", {"amount_mib": target})
    wait_actual(vm, target, 180)
    after = meminfo(vm)
    assert abs(after["MemTotal"] - before["MemTotal"]) < 1, (before, after)  # not taken off
    assert before["MemFree"] - after["MemFree"] >= target - 8, (before, after)
    # a hog that needs 96 MiB more than is left: the OOM notifier deflates the balloon
    sh(vm, "mount -o remount,size=95% /dev/shm")
    out = sh(vm, "dd if=/dev/zero of=/dev/shm/hog bs=1M count=136 2>&1; ls -l /dev/shm/hog",
             timeout=600)
    assert str(136 * MIB) in out, out
    assert stats(vm)["actual_mib"] < target - 64, stats(vm)
    assert not vm.panicked and "Out of memory: Killed" not in vm.console, vm.describe()
    m = metrics(vm)
    assert m["deflate_count"] >= 1, m
    sh(vm, "rm /dev/shm/hog; echo alive")
    assert vm.state() == "Running"
