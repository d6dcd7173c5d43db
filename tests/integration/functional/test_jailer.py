# SPDX-License-Identifier: Apache-2.0
"""A jailed Ember boots Linux (docs/jailer.md): `ember-jailer` builds the jail, the kernel
and a private copy of the ext4 rootfs are hard-linked (or copied) into it, and the VM is
configured through the API socket inside the jail with paths inside the jail. The guest
reaches userspace (its /init runs the test's command) with Ember running as an unprivileged
uid, no capabilities, no_new_privs, in its cgroup, and nothing of the host in sight.

Anti-spoofing in a jail: the jailed Ember cannot attach its tc filter (no CAP_BPF, no
CAP_NET_ADMIN) and enforces the rules itself; the same spoofing guest as test_net.py's
test_anti_spoofing must be stopped all the same.

Runs on the real-KVM bench: `make linux-test LINUX_TEST_ARGS='-k jailer'`. The tests in
tests/security cover the jailer itself with the freestanding test guest.
"""
import os
import shutil
from pathlib import Path

import pytest

import test_net as linux_net  # its helpers (beside this file, on sys.path: pytest's rootdir)
from framework.api_microvm import ApiMicrovm
from framework.microvm import EXIT_TIMEOUT
from proc_helpers import cgroup_mount_points  # tests/support, on sys.path: conftest.py

UID = GID = 10007
PARENT_CGROUP = f"ember-linuxtest-{os.getpid()}"


def pids_cgroup_args():
    """--cgroup pids.max=200 in whichever hierarchy has the pids controller (the host's v1,
    or the L1's v2), or nothing if none does."""
    v2 = None
    with open("/proc/mounts") as f:
        for line in f:
            mnt, fstype, opts = line.split()[1:4]
            if fstype == "cgroup" and "pids" in opts.split(","):
                return ["--cgroup", "pids.max=200"]
            if fstype == "cgroup2":
                v2 = mnt
    if v2 and "pids" in (Path(v2) / "cgroup.controllers").read_text().split():
        return ["--cgroup-version", "2", "--cgroup", "pids.max=200"]
    return []


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy(src, dst)


class JailedMicrovm(ApiMicrovm):
    """An ApiMicrovm whose Ember is started by ember-jailer; put_config() moves the kernel,
    the initrd and the drives into the jail and names them by their paths there."""

    jail_id = "linux-jail"

    @property
    def jailer(self):
        return Path(self.binary).parent / "ember-jailer"

    @property
    def jail_dir(self):
        return self.workdir / "jails" / Path(self.binary).name / self.jail_id

    @property
    def root(self):
        return self.jail_dir / "root"

    @property
    def socket_path(self):
        # <tmp_path>/jails/ember/<id>/root/run/api.sock is longer than sun_path's 108
        # bytes; the jailer exec'd Ember (same pid), whose root is the jail
        return Path(f"/proc/{self.proc.pid}/root/run/api.sock")

    def _command(self):
        netns = ["--netns", f"/var/run/netns/{self.netns}"] if self.netns else []
        return [str(self.jailer), "--id", self.jail_id, "--exec-file", self.binary,
                "--uid", str(UID), "--gid", str(GID),
                "--chroot-base-dir", str(self.workdir / "jails"),
                "--parent-cgroup", PARENT_CGROUP, *pids_cgroup_args(), *netns,
                "--", "--api-sock", "/run/api.sock", "--boot-timer", *self.extra_cli]

    def into_jail(self, host_path, writable=False):
        """Links (or copies) a host file into the jail's root; returns its path there."""
        name = Path(host_path).name
        link_or_copy(host_path, self.root / name)
        if writable:
            os.chown(self.root / name, UID, GID)
        return "/" + name

    def put_config(self):
        boot = self.config["boot-source"]
        boot["kernel_image_path"] = self.into_jail(boot["kernel_image_path"])
        if boot.get("initrd_path"):
            boot["initrd_path"] = self.into_jail(boot["initrd_path"])
        for d in self.config.get("drives", []):
            d["path_on_host"] = self.into_jail(d["path_on_host"],
                                               writable=not d.get("is_read_only"))
        super().put_config()

    def remove(self):
        self.kill()
        shutil.rmtree(self.jail_dir, ignore_errors=True)
        for mnt in cgroup_mount_points():
            for p in (Path(mnt) / PARENT_CGROUP / self.jail_id, Path(mnt) / PARENT_CGROUP):
                if p.is_dir():
                    try:
                        p.rmdir()
                    except OSError:
                        pass


@pytest.fixture
def jailed_microvm(request, tmp_path, vmm, vmm_binary, guest_images, kvm_available,
                   io_engine):
    if vmm != "ember":
        pytest.skip("the jailer runs Ember")
    if os.geteuid() != 0:
        pytest.skip("the jailer needs root")
    vm = JailedMicrovm("ember", vmm_binary, tmp_path / "jailed-vm", guest_images,
                       "jailed-vm", io_engine)
    assert vm.jailer.is_file(), f"{vm.jailer} is missing: run `make`"
    request.node.ember_microvms = [vm]
    yield vm
    vm.remove()


def status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


@pytest.mark.ember_only
def test_jailed_ember_boots_linux(jailed_microvm):
    vm = jailed_microvm
    vm.basic_config(cmd="echo jailed-userspace-ok; cat /proc/cmdline | grep -c root=")
    vm.spawn()
    vm.wait_for_socket()
    assert vm.state() == "Not started"
    vm.put_config()
    cfg = vm.ok("GET", "/vm/config")
    assert cfg["boot-source"]["kernel_image_path"] == "/vmlinux"
    assert cfg["drives"][0]["path_on_host"] == "/rootfs.ext4"
    vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    assert vm.state() == "Running"

    # the jailed process, while the guest boots
    pid = vm.proc.pid  # the jailer exec'd Ember: the same pid
    assert set(os.listdir(f"/proc/{pid}/root")) == set(os.listdir(vm.root))
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            s = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        assert s["Uid"].split() == [str(UID)] * 4, s["Name"]
        assert int(s["CapEff"], 16) == 0 and int(s["CapBnd"], 16) == 0, s["Name"]
        assert s["NoNewPrivs"] == "1", s["Name"]
    if pids_cgroup_args():
        with open(f"/proc/{pid}/cgroup") as f:
            assert f":/{PARENT_CGROUP}/{vm.jail_id}\n" in f.read()

    vm.wait_for_boot()
    assert vm.wait_for_exit(EXIT_TIMEOUT) == 0, vm.describe()
    assert not vm.panicked, vm.describe()
    assert vm.guest_exit == 0, vm.describe()
    assert vm.guest_output.split() == ["jailed-userspace-ok", "1"], vm.describe()


@pytest.mark.ember_only
def test_jailed_anti_spoofing(jailed_microvm, netns):
    """A jailed Ember with an interface with anti_spoofing: the interface starts (Ember has
    no privilege for the tc filter, and enforces the rules itself in its TX path, as its log
    says), the TAP has no filter, and the spoofing guest is stopped as test_net.py's
    test_anti_spoofing checks with the filter."""
    vm = jailed_microvm
    _, guest = linux_net.boot_with_net(vm, netns, linux_net.SPOOF_SCRIPT,
                                       anti_spoofing={"ipv4": ["10.0.0.2"],
                                                      "ipv6": ["fd00::2"]})

    def start():
        vm.spawn()
        vm.wait_for_socket()
        vm.put_config()
        metrics = vm.root / "metrics.json"
        metrics.touch()
        os.chown(metrics, UID, GID)
        vm.ok("PUT", "/metrics", {"metrics_path": "/metrics.json"})
        for iface in vm.config["network-interfaces"]:
            vm.ok("PUT", f"/network-interfaces/{iface['iface_id']}", iface)
        vm.ok("PUT", "/actions", {"action_type": "InstanceStart"})

    filters = linux_net.check_spoofing(vm, netns, guest, True, start, vm.root / "metrics.json")
    assert filters == "", f"a jailed Ember cannot attach a filter: {filters}"
    assert "anti-spoofing enforced by Ember itself" in vm.log, vm.describe()
