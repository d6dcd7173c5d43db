# SPDX-License-Identifier: Apache-2.0
"""The boot-timer write at 0xd0000000 is logged with --boot-timer, and only then."""

import re

from guestrun import run

BOOT_TIME = re.compile(r"Guest-boot-time = +\d+ us +\d+ ms, +\d+ CPU us +\d+ CPU ms")


def test_boot_time_logged_with_flag():
    r = run(boot_args="tests=boottimer exit=port:0", debug_exit=True, boot_timer=True)
    assert r.returncode == 0, r.explain()
    assert len(BOOT_TIME.findall(r.stderr)) == 1, r.explain()
    r.assert_all_passed(["boottimer"])


def test_boot_time_not_logged_without_flag():
    r = run(boot_args="tests=boottimer exit=port:0", debug_exit=True)
    assert r.returncode == 0, r.explain()
    assert "Guest-boot-time" not in r.stderr + r.stdout, r.explain()
    r.assert_all_passed(["boottimer"])


def test_boot_time_not_logged_when_guest_never_signals():
    r = run(boot_args="tests=hello exit=port:0", debug_exit=True, boot_timer=True)
    assert "Guest-boot-time" not in r.stderr + r.stdout, r.explain()
    r.assert_all_passed(["hello"])
