# SPDX-License-Identifier: Apache-2.0
"""Guest runs are quick: each finishes far inside its timeout. No tight timings here;
bench/ measures them."""

from guestrun import SLOW, image, run


def test_typical_runs_are_fast():
    for kernel, args in [(image("exit-now.elf"), ""),
                         (image("guest.elf"), "tests=hello,cpuid,e820 exit=port:0")]:
        r = run(kernel, boot_args=args, vcpus=2, debug_exit=True)
        assert r.returncode == 0, r.explain()
        assert r.seconds < SLOW / 2, r.explain()
