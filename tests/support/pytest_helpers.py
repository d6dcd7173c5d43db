# SPDX-License-Identifier: Apache-2.0
"""What the pytest suites' conftests share (tests/api, tests/security, tests/integration).
A conftest finds this directory by putting it on sys.path:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
    from pytest_helpers import ...

Helpers that must work without pytest (the benchmarks use them) are in proc_helpers.py."""
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("EMBER_BUILD", ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
EMBER = Path(os.environ.get("EMBER_BIN", BUILD / "ember"))
GUEST = BUILD / "tests" / "guest" / "guest.elf"


def snapshot_binary(src, dst_dir):
    """A private copy of the Ember binary named `ember` (a jail's exec name), so that a
    rebuild of build/ember while the suite runs (make in another terminal) cannot swap the
    binary under a test. Retries while the binary is being rewritten."""
    dst = Path(dst_dir) / "ember"
    for _ in range(50):
        try:
            shutil.copy2(src, dst)
            r = subprocess.run([str(dst), "--version"], capture_output=True, timeout=5)
            if r.returncode == 0 and r.stdout.startswith(b"ember "):
                return dst
        except (OSError, subprocess.SubprocessError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{src} does not run (`make` it again?)")


def tail(text, lines):
    """The last `lines` lines of text, indented for a failure message."""
    return "\n".join("    | " + l for l in text.splitlines()[-lines:])


class OutputFiles:
    """For a process object whose guest console goes to self.console_path and whose log to
    self.log_path: both as text so far ("" before the file exists)."""

    @property
    def console(self):
        try:
            return self.console_path.read_bytes().decode("latin-1")
        except FileNotFoundError:
            return ""

    @property
    def log(self):
        try:
            return self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


class Made(list):
    """What a factory fixture has made, in order. It is also request.node.<attr>, where
    failure_report_hook finds it."""

    def __init__(self, request, attr):
        super().__init__()
        setattr(request.node, attr, self)

    def add(self, obj):
        self.append(obj)
        return obj

    def kill_all(self):
        for obj in self:
            obj.kill()


def failure_report_hook(attr, title, lines, spawned_only=False):
    """A pytest_runtest_makereport hook for a conftest (assign it to that name there): when a
    test's call fails, it attaches obj.describe(lines=lines) under title(obj) for each obj in
    the test item's `attr` list (a Made); with spawned_only, only for those whose process was
    started (obj.proc is not None)."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        report = outcome.get_result()
        if report.when != "call" or not report.failed:
            return
        for obj in getattr(item, attr, []):
            if not spawned_only or obj.proc is not None:
                report.sections.append((title(obj), obj.describe(lines=lines)))

    return pytest_runtest_makereport
