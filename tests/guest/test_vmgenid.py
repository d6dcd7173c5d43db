# SPDX-License-Identifier: Apache-2.0
"""The VM generation ID page (docs/clone-safety.md) from the guest's side: the test guest
(tests/guest/vmgenid.c) finds it where `ember.vmgenid=` on its command line says, on every
boot path, reads the ID and counter with every access width, and checks that the rest of
the page reads 0 and that writes change nothing. Snapshots and restores are checked in
tests/api/test_clone_safety.py."""
import re

import pytest

from guestrun import image, make_config, metric_sum, metrics_lines, run

ADDRESS = "0xd0100000"  # LAYOUT_VMGENID_ADDR (src/vmm/layout.h)
LINE_RE = re.compile(r"^vmgenid addr=(0x[0-9a-f]+) id=([0-9a-f]{32}) counter=(\d+)$")


def vmgenid_line(r):
    lines = [m for line in r.lines if (m := LINE_RE.match(line))]
    assert len(lines) == 1, r.explain()
    return lines[0].groups()


@pytest.mark.parametrize("kernel", ["guest.elf", "guest-linux64.elf", "guest.bzImage"])
def test_page_where_the_command_line_says(kernel):
    r = run(kernel=image(kernel), boot_args="tests=vmgenid exit=auto", debug_exit=True)
    assert r.returncode == 0, r.explain()
    r.assert_all_passed(["vmgenid"])
    addr, ident, counter = vmgenid_line(r)
    assert (addr, counter) == (ADDRESS, "0"), r.explain()
    assert f"ember.vmgenid={ADDRESS}" in r.stdout, r.explain()
    assert ident != "0" * 32


def test_each_boot_has_its_own_id():
    ids = set()
    for _ in range(3):
        r = run(boot_args="tests=vmgenid exit=auto", debug_exit=True)
        assert r.returncode == 0, r.explain()
        ids.add(vmgenid_line(r)[1])
    assert len(ids) == 3


def test_page_accesses_are_not_unassigned(tmp_path):
    """Reads and writes of the page belong to it: none counts as unassigned MMIO."""
    metrics = tmp_path / "m.json"
    metrics.touch()
    config = make_config(image("guest.elf"), "tests=vmgenid exit=auto", 1, 128)
    config["metrics"] = {"metrics_path": str(metrics)}
    r = run(config=config, debug_exit=True)
    assert r.returncode == 0, r.explain()
    flushed = metrics_lines(metrics)
    assert metric_sum(flushed, "vmm", "unassigned_mmio_reads") == 0
    assert metric_sum(flushed, "vmm", "unassigned_mmio_writes") == 0
