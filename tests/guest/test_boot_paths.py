# SPDX-License-Identifier: Apache-2.0
"""Each boot path works: PVH ELF, 64-bit ELF (Linux 64-bit boot protocol), bzImage."""

import pytest

from guestrun import SERIAL_PATTERN, image, run

ALL_TESTS = ["hello", "cpuid", "e820", "smp", "unassigned", "serial"]


@pytest.mark.parametrize("name,protocol", [
    ("guest.elf", "pvh"),
    ("guest-linux64.elf", "linux64"),
    ("guest.bzImage", "linux64"),
])
def test_boot_path(name, protocol):
    r = run(image(name), boot_args=f"tests={','.join(ALL_TESTS)} exit=port:0", vcpus=2,
            mem_mib=256, debug_exit=True)
    assert r.returncode == 0, r.explain()
    assert r.lines[0] == f"boot protocol={protocol} cpu=0", r.explain()
    r.assert_all_passed(ALL_TESTS)
    assert SERIAL_PATTERN in r.stdout, r.explain()


def test_exit_now_image():
    r = run(image("exit-now.elf"), boot_args="", debug_exit=True)
    assert r.returncode == 0, r.explain()
    assert r.stdout == "!\n", r.explain()
