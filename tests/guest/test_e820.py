# SPDX-License-Identifier: Apache-2.0
"""The guest sees the memory map it was given, with RAM split around the 32-bit MMIO gap
[0xd0000000, 4 GiB), and can use all of it, including RAM above 4 GiB."""

import pytest

from guestrun import run

MIB = 1 << 20
GAP_START = 0xD0000000
FOUR_GIB = 1 << 32


def expected_ram(mem_mib):
    size = mem_mib * MIB
    ram = [(0, 0x9FC00), (0x100000, min(size, GAP_START))]
    if size > GAP_START:
        ram.append((FOUR_GIB, FOUR_GIB + size - GAP_START))
    return ram


@pytest.mark.parametrize("mem_mib", [64, 3328, 4096])
def test_guest_sees_and_uses_its_ram(mem_mib):
    r = run(boot_args="tests=e820 exit=port:0", mem_mib=mem_mib, debug_exit=True)
    assert r.returncode == 0, r.explain()
    r.assert_all_passed(["e820"])
    entries = [(int(a, 16), int(b, 16), int(t)) for a, b, t in
               (v for v in r.values("e820") if len(v) == 3 and v[0].startswith("0x"))]
    ram = [(a, b) for a, b, t in entries if t == 1]
    assert ram == expected_ram(mem_mib), r.explain()
    for a, b, t in entries:
        assert t == 1 or not (a < GAP_START and b > 0x100000), f"non-RAM in RAM {r.explain()}"
    touched = [(int(v[1], 16), int(v[2], 16)) for v in r.values("e820") if v[0] == "touched"]
    assert touched == [(max(a, 0x100000), b) for a, b in ram if b > 0x100000], r.explain()
    total = [v[0] for v in r.values("e820") if v[0].startswith("ram=")]
    assert total == [f"ram={sum(b - a for a, b in ram)}"], r.explain()
