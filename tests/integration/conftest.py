# SPDX-License-Identifier: Apache-2.0
"""Fixtures for Ember's integration tests (tests/integration).

    microvm_factory   makes Microvm objects (framework/microvm.py); all are killed at teardown
    microvm           one Microvm
    api_microvm       one ApiMicrovm: configured over the API socket (Ember only)
    netns             a fresh network namespace to put TAP devices and a VMM in
    io_engine         "Sync" or "Async": every test that boots a VM runs once with each
                      (--io-engine picks one), as the drives' io_engine
    guest_images      the cached guest kernel and rootfs (resources/guest/guest-images.sh)
    vmm               "ember" or "qemu" (--vmm, or $EMBER_TEST_VMM)

The tests need /dev/kvm. On a host without vmx/svm, `make linux-test` runs them inside the
real-KVM bench (tests/bench-vm, docs/bench-vm.md). `--vmm=qemu` runs the same tests on QEMU's
microvm machine, as a reference; checks of Ember-only behaviour are then skipped.
"""
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from framework.api_microvm import ApiMicrovm
from framework.microvm import Microvm

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests" / "support") not in sys.path:
    sys.path.insert(0, str(REPO / "tests" / "support"))
from pytest_helpers import Made, failure_report_hook  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--vmm", choices=("ember", "qemu"),
                     default=os.environ.get("EMBER_TEST_VMM", "ember"),
                     help="the VMM under test (default ember; qemu = QEMU microvm, the peer)")
    parser.addoption("--shard", default=None, metavar="I/N",
                     help="run only every N-th test, starting at the I-th (0-based): for "
                          "running the suite in N L1s side by side (tests/bench-vm/run-sharded)")
    parser.addoption("--io-engine", choices=("Sync", "Async", "both"),
                     default=os.environ.get("EMBER_TEST_IO_ENGINE", "both"),
                     help="the drives' io_engine (default both: each test runs with each)")
    parser.addoption("--ember-bin",
                     default=os.environ.get("EMBER_BIN", str(REPO / "build" / "ember")),
                     help="the Ember binary (default build/ember)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "ember_only: checks Ember's own behaviour (skipped with --vmm=qemu)")


def pytest_generate_tests(metafunc):
    """The whole suite runs with both I/O engines: every test that needs io_engine (every
    VM does, through microvm_factory) is parametrized with Sync and Async."""
    if "io_engine" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--io-engine")
        engines = ["Sync", "Async"] if choice == "both" else [choice]
        metafunc.parametrize("io_engine", engines)


def pytest_collection_modifyitems(config, items):
    shard = config.getoption("--shard")
    if shard:
        i, n = (int(x) for x in shard.split("/"))
        keep = items[i::n]
        config.hook.pytest_deselected(items=[t for t in items if t not in keep])
        items[:] = keep
    if config.getoption("--vmm") != "qemu":
        return
    skip = pytest.mark.skip(reason="Ember-only behaviour; not checked on the QEMU peer")
    for item in items:
        if "ember_only" in item.keywords:
            item.add_marker(skip)


@dataclass(frozen=True)
class GuestImages:
    vmlinux: Path
    bzimage: Path
    initramfs: Path
    rootfs_ext4: Path


@pytest.fixture(scope="session")
def guest_images():
    """Builds (first time only) and returns the default guest images. $EMBER_GUEST_VMLINUX,
    $EMBER_GUEST_BZIMAGE, $EMBER_GUEST_INITRAMFS and $EMBER_GUEST_ROOTFS_EXT4 override them."""
    # Inside the real-KVM bench a kernel build would run under TCG for hours: there the
    # images must come from the host's cache (`make linux-test` builds them first).
    in_l1 = os.environ.get("EMBER_IN_L1") == "1"
    cmd = [str(REPO / "resources" / "guest" / "guest-images.sh")] + ([] if in_l1 else ["--build"])
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        pytest.fail(f"finding or building the guest images failed ({' '.join(cmd)})")
    paths = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    pick = {k: Path(os.environ.get("EMBER_" + k, paths[k])) for k in paths}
    images = GuestImages(pick["GUEST_VMLINUX"], pick["GUEST_BZIMAGE"], pick["GUEST_INITRAMFS"],
                         pick["GUEST_ROOTFS_EXT4"])
    for p in (images.vmlinux, images.bzimage, images.initramfs, images.rootfs_ext4):
        if not p.is_file():
            pytest.fail(f"guest image {p} is missing: run `make guest-images` on the host "
                        "(make linux-test does)")
    return images


@pytest.fixture(scope="session")
def vmm(pytestconfig):
    return pytestconfig.getoption("--vmm")


@pytest.fixture(scope="session")
def vmm_binary(pytestconfig, vmm):
    if vmm == "qemu":
        return "qemu-system-x86_64"
    binary = Path(pytestconfig.getoption("--ember-bin"))
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} not found or not executable: run `make` first")
    return binary


@pytest.fixture(scope="session")
def kvm_available():
    """Real KVM: /dev/kvm on a CPU with vmx or svm. (A /dev/kvm without them, like this
    project's PVM hosts, emulates guest kernel code and never gets Linux to userspace.)"""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.fail("/dev/kvm is missing or not usable: run these tests through `make linux-test`, "
                    "which uses the real-KVM bench on hosts without vmx/svm")
    with open("/proc/cpuinfo") as f:
        flags = f.read().split()
    if "vmx" not in flags and "svm" not in flags and not os.environ.get("EMBER_TEST_ANY_KVM"):
        pytest.fail("this CPU has neither vmx nor svm, so /dev/kvm here cannot run Linux guests: "
                    "run the tests with `make linux-test`, which goes through the real-KVM bench "
                    "(tests/bench-vm, docs/bench-vm.md); EMBER_TEST_ANY_KVM=1 skips this check")


def vm_factory(request, cls, prefix, vmm, vmm_binary, workdir, guest_images, io_engine):
    """The body of a factory fixture: yields make(name=None), which makes a cls (Microvm or
    ApiMicrovm) named name (default prefix + a count) with its own work directory under
    workdir; each is listed for the failure report and killed at teardown."""
    vms = Made(request, "ember_microvms")

    def make(name=None):
        name = name or f"{prefix}{len(vms)}"
        return vms.add(cls(vmm, vmm_binary, workdir / name, guest_images, name, io_engine))

    yield make
    vms.kill_all()


@pytest.fixture
def microvm_factory(request, tmp_path, vmm, vmm_binary, guest_images, kvm_available, io_engine):
    """Makes Microvm objects, each with its own work directory under the test's tmp_path."""
    yield from vm_factory(request, Microvm, "vm", vmm, vmm_binary, tmp_path, guest_images,
                          io_engine)


@pytest.fixture
def microvm(microvm_factory):
    return microvm_factory()


@pytest.fixture
def api_microvm(request, tmp_path, vmm_binary, guest_images, kvm_available, io_engine):
    """An Ember driven through its API socket (framework/api_microvm.py)."""
    vm = ApiMicrovm("ember", vmm_binary, tmp_path / "api-vm", guest_images, "api-vm", io_engine)
    request.node.ember_microvms = [vm]
    yield vm
    vm.kill()


@pytest.fixture
def api_microvm_factory(request, tmp_path, vmm_binary, guest_images, kvm_available, io_engine):
    """Makes Embers driven through their API sockets (framework/api_microvm.py), each with
    its own work directory: for snapshots, where one Ember writes and others load."""
    yield from vm_factory(request, ApiMicrovm, "api-vm", "ember", vmm_binary, tmp_path,
                          guest_images, io_engine)


# on a failure, attach each spawned VM's console and log tails to the report
pytest_runtest_makereport = failure_report_hook("ember_microvms", lambda vm: f"microvm {vm.name}",
                                                60, spawned_only=True)


class NetNs:
    """A network namespace made for one test (deleted afterwards), with TAP devices in it:
    the set-up docs/network.md describes."""

    def __init__(self, name):
        self.name = name
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.ip("link", "set", "lo", "up")

    def ip(self, *args):
        return subprocess.run(["ip", "-n", self.name, *args], check=True,
                              capture_output=True, text=True).stdout

    def add_tap(self, tap, host_cidr):
        """A TAP device with host_cidr (e.g. 10.0.0.1/24) on the host side, up."""
        self.ip("tuntap", "add", "dev", tap, "mode", "tap")
        self.ip("addr", "add", host_cidr, "dev", tap)
        self.ip("link", "set", tap, "up")

    def run(self, *cmd, **kw):
        """cmd inside the namespace (subprocess.run arguments)."""
        return subprocess.run(["ip", "netns", "exec", self.name, *cmd], **kw)

    def popen(self, *cmd, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], **kw)

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], check=False)


@pytest.fixture
def netns(request):
    ns = NetNs(f"ember-{os.getpid()}-{abs(hash(request.node.nodeid)) % 100000}")
    yield ns
    ns.delete()
