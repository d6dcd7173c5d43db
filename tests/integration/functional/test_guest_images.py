# SPDX-License-Identifier: Apache-2.0
"""The guest images themselves (resources/guest), booted on QEMU's microvm machine, the
reference VMM: the ext4 rootfs as root=/dev/vda, the initramfs, and the /init contract. These run whatever --vmm says, so the images are known good on their own."""
import pytest

from framework.microvm import Microvm


@pytest.fixture
def qemu_vm(tmp_path, guest_images, kvm_available):
    vm = Microvm("qemu", "qemu-system-x86_64", tmp_path / "qemu", guest_images, "qemu")
    yield vm
    vm.kill()


def test_ext4_root(qemu_vm):
    """The ext4 image boots as root=/dev/vda; its /sbin/init is the same /init."""
    qemu_vm.run("grep ' / ' /proc/mounts; echo image-ok > /written && sync && echo ok")
    assert qemu_vm.returncode == 0 and qemu_vm.guest_exit == 0, qemu_vm.describe()
    assert qemu_vm.guest_lines[0].startswith("/dev/root / ext4 rw"), qemu_vm.describe()
    assert qemu_vm.guest_lines[1] == "ok"
    assert qemu_vm.read_file_from_rootfs("/written") == b"image-ok\n"


def test_initramfs(qemu_vm):
    """The initramfs boots on its own (rdinit=/init) with the same /init."""
    qemu_vm.run("grep ' / ' /proc/mounts", rootfs=False, initrd=True)
    assert qemu_vm.returncode == 0 and qemu_vm.guest_exit == 0, qemu_vm.describe()
    assert qemu_vm.guest_lines[0].split()[:3] == ["rootfs", "/", "rootfs"], qemu_vm.describe()


def test_init_contract(qemu_vm):
    """ember_cmd_b64 carries any bytes; the command runs with a controlling tty, devtmpfs,
    proc, sysfs, /tmp; the markers frame its output; the exit status is reported."""
    script = "\n".join([
        'printf "%s\\n" "quotes \\"double\\" and \'single\'"',
        "test -c /dev/null && test -d /proc/self && test -d /sys/kernel && echo mounts-ok",
        "tty",
        "exit 3",
    ])
    qemu_vm.run(script)
    assert qemu_vm.returncode == 0, qemu_vm.describe()
    assert qemu_vm.guest_exit == 3
    assert qemu_vm.guest_lines == ["quotes \"double\" and 'single'", "mounts-ok", "/dev/ttyS0"], \
        qemu_vm.describe()


def test_plain_ember_cmd(qemu_vm):
    """ember_cmd="..." on the command line (no base64) works for simple commands."""
    qemu_vm.basic_config(boot_args='console=ttyS0 reboot=k panic=1 ember_cmd="echo a b; exit 4"')
    qemu_vm.spawn()
    qemu_vm.wait_for_exit()
    assert qemu_vm.guest_exit == 4 and qemu_vm.guest_lines == ["a b"], qemu_vm.describe()
