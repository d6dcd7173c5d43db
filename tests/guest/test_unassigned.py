# SPDX-License-Identifier: Apache-2.0
"""A guest that touches ports and MMIO no device owns keeps running."""

import pytest

from guestrun import run


@pytest.mark.parametrize("vcpus", [1, 2])
def test_unassigned_accesses_do_not_stop_the_guest(vcpus):
    r = run(boot_args="tests=unassigned,hello exit=port:0", vcpus=vcpus, debug_exit=True)
    assert r.returncode == 0, r.explain()
    r.assert_all_passed(["unassigned", "hello"])
    ports = [v[1] for v in r.values("unassigned") if v[0] == "port"]
    mmio = [v[1] for v in r.values("unassigned") if v[0] == "mmio"]
    assert "0x510" in ports and "0xcf8" in ports and "0x2ff" in ports, r.explain()
    assert mmio == ["0xd0800000", "0xe0000000", "0xfed00000", "0xfed00004"], r.explain()
