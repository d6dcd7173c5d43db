# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the jailer's tests (tests/security/test_jailer*.py, docs/jailer.md): real
`build/ember-jailer` runs, as root, that jail a private copy of `build/ember` under a tmp
chroot-base-dir and drive it through the API socket inside the jail, booting the
freestanding test guest (build/tests/guest/guest.elf).

    jail_factory   makes Jail objects (not spawned); each is killed and removed at teardown:
                   its process, its jail directory and its cgroups
    jail_base      the test's --chroot-base-dir (empty at the start)

Every jail of the session uses --parent-cgroup PARENT_CGROUP (unique to this pytest
process), removed at the end of the session with everything below it.

Run: make security-test, or /usr/bin/python3 -m pytest -q tests/security (as root, with
/dev/kvm, after `make` and `make guest`).
"""
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SUPPORT = str(Path(__file__).resolve().parents[1] / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)
from pytest_helpers import (BUILD, EMBER, GUEST, ROOT, Made, OutputFiles,  # noqa: E402
                            failure_report_hook, snapshot_binary, tail)

JAILER = Path(os.environ.get("EMBER_JAILER_BIN", BUILD / "ember-jailer"))

# Who the jailed Ember runs as: no account needs to exist for it.
UID = int(os.environ.get("EMBER_JAIL_UID", "10007"))
GID = int(os.environ.get("EMBER_JAIL_GID", "10007"))
PARENT_CGROUP = f"ember-sectest-{os.getpid()}"
CGROUP_ROOT = Path("/sys/fs/cgroup")

PREFIX = "EMBER-GUEST: "
DONE_LINE_RE = re.compile(re.escape(PREFIX) + r"done passed=\d+ failed=\d+\n")

# The HTTP client of the API suite (tests/api/conftest.py), loaded as a plain module.
_spec = importlib.util.spec_from_file_location("api_conftest",
                                               ROOT / "tests" / "api" / "conftest.py")
api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api)


def pytest_collection_modifyitems(config, items):
    reason = None
    if os.geteuid() != 0:
        reason = "the jailer needs root"
    elif not os.path.exists("/dev/kvm"):
        reason = "no /dev/kvm on this machine"
    if reason is None:
        return
    for item in items:
        if "test_jailer" in item.nodeid:
            item.add_marker(pytest.mark.skip(reason=reason))


def cgroup_mounts():
    """{controller or "unified": mount point} from /proc/mounts (v1 controllers, the v2
    hierarchy as "unified")."""
    out = {}
    with open("/proc/mounts") as f:
        for line in f:
            _, mnt, fstype, opts = line.split()[:4]
            if fstype == "cgroup2":
                out["unified"] = mnt
            elif fstype == "cgroup":
                for o in opts.split(","):
                    if o not in ("rw", "ro", "relatime", "nosuid", "nodev", "noexec"):
                        out[o] = mnt
    return out


def cgroup_hierarchies():
    """Every cgroup mount point (v1 and v2), once each."""
    return sorted(set(cgroup_mounts().values()))


def remove_cgroup_tree(path):
    """rmdir a cgroup and everything below it, deepest first (no process may be inside)."""
    path = Path(path)
    if not path.is_dir():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()),
                      key=lambda p: len(p.parts), reverse=True):
        sub.rmdir()
    path.rmdir()


def leftovers(base, jail_id, parent=PARENT_CGROUP):
    """What a failed jailer must not leave: its jail directory, its cgroups."""
    found = []
    if (Path(base) / "ember" / jail_id).exists():
        found.append(str(Path(base) / "ember" / jail_id))
    for mnt in cgroup_hierarchies():
        p = Path(mnt) / parent / jail_id
        if p.exists():
            found.append(str(p))
    return found


@pytest.fixture(scope="session")
def ember_binary(tmp_path_factory):
    missing = [str(p) for p in (JAILER, EMBER, GUEST) if not p.is_file()]
    assert not missing, f"not built (run `make && make guest`): {', '.join(missing)}"
    yield snapshot_binary(EMBER, tmp_path_factory.mktemp("bin"))
    for mnt in cgroup_hierarchies():
        remove_cgroup_tree(Path(mnt) / PARENT_CGROUP)


def proc_status(pid, task=None):
    """/proc/<pid>/status (or a task's) as {field: value}."""
    path = f"/proc/{pid}/status" if task is None else f"/proc/{pid}/task/{task}/status"
    with open(path) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


class Jail(OutputFiles):
    """One ember-jailer run: `ember-jailer --id ID --exec-file <snapshot> --uid --gid
    --chroot-base-dir BASE --parent-cgroup PARENT_CGROUP [jailer_args] -- --api-sock
    run/api.sock [ember_args]`. Ember's stdout (the guest console) goes to console.log and
    its stderr (its log, and the jailer's errors) to jailer.log in the work directory."""

    def __init__(self, workdir, base, jail_id, exec_file, jailer_args=(), ember_args=(),
                 uid=UID, gid=GID, api_sock="run/api.sock"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.base = Path(base)
        self.id = jail_id
        self.exec_file = Path(exec_file)
        self.jailer_args = list(jailer_args)
        self.ember_args = list(ember_args)
        self.uid, self.gid = uid, gid
        self.api_sock = api_sock
        self.console_path = self.workdir / f"{jail_id}-console.log"
        self.log_path = self.workdir / f"{jail_id}-jailer.log"
        self.proc = None
        self.pid = None  # Ember's pid (the jailer's, unless --new-pid-ns)

    @property
    def jail_dir(self):
        return self.base / self.exec_file.name / self.id

    @property
    def root(self):
        return self.jail_dir / "root"

    @property
    def socket_path(self):
        return self.root / self.api_sock

    @property
    def command(self):
        ember = ["--api-sock", self.api_sock] if self.api_sock else []
        return [str(JAILER), "--id", self.id, "--exec-file", str(self.exec_file),
                "--uid", str(self.uid), "--gid", str(self.gid),
                "--chroot-base-dir", str(self.base), "--parent-cgroup", PARENT_CGROUP,
                *self.jailer_args, "--", *ember, *self.ember_args]

    def spawn(self, wait=True, **popen_kw):
        out = open(self.console_path, "wb")
        err = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=err, **popen_kw)
        out.close()
        err.close()
        self.pid = self.proc.pid
        if "--new-pid-ns" in self.jailer_args:
            rc = self.proc.wait(10)
            assert rc == 0, f"the jailer exited with {rc}\n{self.describe()}"
            self.pid = int((self.root / f"{self.exec_file.name}.pid").read_text())
        if wait:
            self.wait_for_socket()
        return self

    def run(self, timeout=10):
        """Runs a jailer that is expected to fail; returns (exit code, stderr)."""
        r = subprocess.run(self.command, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
        return r.returncode, r.stderr

    def alive(self):
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().split(") ")[1][0] != "Z"
        except (FileNotFoundError, TypeError):
            return False

    def wait_for_socket(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"Ember is gone before its API socket was ready\n"
                                     f"{self.describe()}")
            try:
                with api.Client(self.socket_path, timeout=1) as c:
                    if c.request("GET", "/").status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.005)
        raise AssertionError(f"no API socket within {timeout} s\n{self.describe()}")

    # ---- the API inside the jail ----
    def request(self, method, path, body=None):
        with api.Client(self.socket_path) as c:
            return c.request(method, path, body)

    def ok(self, method, path, body=None):
        r = self.request(method, path, body)
        want = 200 if method == "GET" else 204
        assert r.status == want, f"{method} {path} {body!r}: {r}\n{self.describe()}"
        return r

    def state(self):
        return self.ok("GET", "/").json["state"]

    def boot_test_guest(self, boot_args="tests=hello exit=hang", vcpus=1, wait_done=True):
        """Links (or copies) the test guest into the jail, configures it with a path inside
        the jail, starts it and waits for the guest's whole done line."""
        kernel = self.root / "guest.elf"
        try:
            os.link(GUEST, kernel)
        except OSError:
            shutil.copy(GUEST, kernel)
        self.ok("PUT", "/boot-source", {"kernel_image_path": "/guest.elf",
                                        "boot_args": boot_args})
        self.ok("PUT", "/machine-config", {"vcpu_count": vcpus, "mem_size_mib": 64})
        self.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        if not wait_done:
            return
        deadline = time.monotonic() + 10
        while not DONE_LINE_RE.search(self.console) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert DONE_LINE_RE.search(self.console), f"no done line\n{self.describe()}"

    # ---- what came out (console, log: OutputFiles) ----
    def describe(self, lines=25):
        return (f"--- {' '.join(self.command)}\n--- pid {self.pid}\n"
                f"--- console:\n{tail(self.console, lines)}\n--- log:\n{tail(self.log, lines)}")

    # ---- teardown ----
    def kill(self):
        if self.pid is not None and self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        # a --new-pid-ns Ember is not our child: wait until it is reaped
        deadline = time.monotonic() + 10
        while self.pid is not None and os.path.exists(f"/proc/{self.pid}") and \
                time.monotonic() < deadline:
            time.sleep(0.01)

    def remove(self):
        """Removes the jail and its cgroups, as the caller of a jailer must once Ember is
        gone (docs/jailer.md)."""
        self.kill()
        shutil.rmtree(self.jail_dir, ignore_errors=True)
        for mnt in cgroup_hierarchies():
            p = Path(mnt) / PARENT_CGROUP / self.id
            for _ in range(100):  # the cgroup is busy until the killed process is reaped
                try:
                    remove_cgroup_tree(p)
                    break
                except OSError:
                    time.sleep(0.02)


@pytest.fixture
def jail_base(tmp_path):
    base = tmp_path / "jails"
    base.mkdir()
    return base


_counter = [0]


def new_id(prefix="t"):
    _counter[0] += 1
    return f"{prefix}{_counter[0]}-{os.getpid()}"


@pytest.fixture
def jail_factory(request, tmp_path, jail_base, ember_binary):
    jails = Made(request, "jails")

    def make(jailer_args=(), ember_args=(), jail_id=None, exec_file=None, **kw):
        return jails.add(Jail(tmp_path, jail_base, jail_id or new_id(), exec_file or ember_binary,
                              jailer_args, ember_args, **kw))

    yield make
    for j in jails:
        j.remove()


# on a failure, attach each jail's command, console and log tails to the report
pytest_runtest_makereport = failure_report_hook("jails", lambda j: f"jail {j.id}", 40)
