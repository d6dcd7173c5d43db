# SPDX-License-Identifier: Apache-2.0
"""The guest's serial output arrives intact, and the banner says what the guest saw."""

from guestrun import SERIAL_PATTERN, run


def test_serial_pattern_arrives_byte_for_byte():
    r = run(boot_args="tests=serial,serial exit=port:0", debug_exit=True)
    assert r.returncode == 0, r.explain()
    assert r.stdout.count(SERIAL_PATTERN) == 2, r.explain()
    r.assert_all_passed(["serial", "serial"])


def test_banner_and_command_line():
    args = "tests=hello exit=port:0 some.other=token"
    r = run(boot_args=args, debug_exit=True)
    assert r.lines[0] == "boot protocol=pvh cpu=0", r.explain()
    assert r.lines[1].startswith("cmdline " + args), r.explain()
    r.assert_all_passed(["hello"])


def test_unknown_test_fails_and_others_still_run():
    r = run(boot_args="tests=nosuch,hello exit=port:0", debug_exit=True)
    assert "FAIL nosuch: unknown test" in r.lines, r.explain()
    assert r.passed("hello"), r.explain()
    assert r.summary() == (1, 1), r.explain()
