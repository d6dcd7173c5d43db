# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the Python suites (tests/api, tests/security, tests/integration) and the
benchmarks (bench/*.py) that need no pytest: the framework and the benchmarks import this
module outside pytest. pytest_helpers.py, beside it, holds what the conftests share."""
import os
import signal


def kill_process_group(proc):
    """SIGKILLs the process group of a subprocess started with start_new_session=True, if it
    is still running, and reaps it. Does nothing for None or a process already gone."""
    if proc is not None and proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def cgroup_mount_points():
    """Every cgroup mount point of this host (v1 and v2, from /proc/mounts), sorted, once
    each."""
    out = set()
    with open("/proc/mounts") as f:
        for line in f:
            if line.split()[2] in ("cgroup", "cgroup2"):
                out.add(line.split()[1])
    return sorted(out)
