# SPDX-License-Identifier: Apache-2.0
"""How the guest ends becomes Ember's exit code: the debug-exit port's byte, 0 for an
i8042 reset or a triple fault, 2 for a reset with the warm-reset (panic) flag."""

import pytest

from guestrun import run


@pytest.mark.parametrize("code", [0, 1, 7, 255])
def test_debug_exit_code_becomes_ember_exit_code(code):
    r = run(boot_args=f"tests=hello exit=port:{code}", debug_exit=True)
    assert r.returncode == code, r.explain()
    r.assert_all_passed(["hello"])


@pytest.mark.parametrize("args", ["tests=hello exit=reset", "tests=hello"])
def test_i8042_reset_exits_0(args):
    r = run(boot_args=args, debug_exit=True)
    assert r.returncode == 0, r.explain()
    r.assert_all_passed(["hello"])


def test_debug_exit_port_ignored_without_flag_falls_back_to_reset():
    r = run(boot_args="tests=hello exit=port:7")
    assert r.returncode == 0, r.explain()
    r.assert_all_passed(["hello"])


def test_panic_reset_exits_2():
    r = run(boot_args="tests=hello exit=panic")
    assert r.returncode == 2, r.explain()
    r.assert_all_passed(["hello"])


def test_triple_fault_exits_0():
    r = run(boot_args="tests=hello exit=triple")
    assert r.returncode == 0, r.explain()
    r.assert_all_passed(["hello"])


@pytest.mark.parametrize("tests,code", [("hello", 0), ("hello,nosuch", 1)])
def test_auto_exit_reports_failures(tests, code):
    r = run(boot_args=f"tests={tests} exit=auto", debug_exit=True)
    assert r.returncode == code, r.explain()


def test_hanging_guest_keeps_running():
    with pytest.raises(AssertionError, match="did not stop") as e:
        run(boot_args="tests=hello exit=hang", timeout=1.5)
    assert "EMBER-GUEST: done passed=1 failed=0" in str(e.value)


def test_guest_exception_is_reported_and_ends_the_run():
    r = run(boot_args="tests=fault,hello exit=auto", debug_exit=True)
    assert r.returncode == 1, r.explain()
    assert any(l.startswith("exception 6 ") for l in r.lines), r.explain()
    assert any(l.startswith("FAIL fault: exception 6 ") for l in r.lines), r.explain()
    assert r.summary() == (0, 1), r.explain()
