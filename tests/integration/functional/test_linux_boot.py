# SPDX-License-Identifier: Apache-2.0
"""Ember boots Linux: the default guest (resources/guest) reaches userspace, sees the CPUs
and memory it was given, and ends the way a user expects: exit 0 when it reboots, 2 when it
panics, 1 with a clear message when the configuration is wrong."""
import re

import pytest

MIB = 1024 * 1024


def assert_clean_run(vm):
    assert vm.returncode == 0, f"the VMM exited {vm.returncode}\n" + vm.describe()
    assert vm.guest_exit == 0, "the guest's command failed or never ran\n" + vm.describe()


@pytest.mark.parametrize("vcpus", [1, 2, 4])
def test_boot_with_vcpus(microvm, vcpus):
    """The guest reaches userspace with 1, 2 and 4 vCPUs, sees all of them, powers off."""
    microvm.run("grep -c ^processor /proc/cpuinfo; nproc", vcpu_count=vcpus, mem_size_mib=256)
    assert_clean_run(microvm)
    assert microvm.guest_lines == [str(vcpus), str(vcpus)], microvm.describe()


def system_ram(iomem):
    """The "System RAM" ranges of /proc/iomem, as (start, end inclusive)."""
    return [tuple(int(x, 16) for x in m.groups())
            for m in re.finditer(r"^([0-9a-f]+)-([0-9a-f]+) : System RAM$", iomem, re.M)]


@pytest.mark.parametrize("mem_mib", [128, 1024, 4096])
def test_memory_matches_config(microvm, mem_mib):
    """MemTotal and the RAM map match mem_size_mib, also above 3 GiB, where the RAM is split
    around the 32-bit MMIO gap [0xd0000000, 4 GiB)."""
    microvm.run("grep MemTotal /proc/meminfo; cat /proc/iomem", mem_size_mib=mem_mib)
    assert_clean_run(microvm)
    out = "\n".join(microvm.guest_lines)
    mem_total_kib = int(re.search(r"MemTotal:\s+(\d+) kB", out).group(1))
    ram = system_ram(out)
    ram_bytes = sum(end + 1 - start for start, end in ram)
    # The RAM map misses at most the legacy hole below 1 MiB; MemTotal further misses the
    # kernel's image and reserved memory: struct pages (1.6 % of RAM), and 64 MiB of swiotlb
    # bounce buffers once RAM goes above 4 GiB.
    assert mem_mib * MIB - 1 * MIB <= ram_bytes <= mem_mib * MIB, f"RAM ranges {ram}"
    reserved_kib = mem_mib * 1024 - mem_total_kib
    assert 0 < reserved_kib < 32 * 1024 + mem_mib * 1024 * 0.04, f"MemTotal {mem_total_kib} kB"
    if mem_mib > 3 * 1024:
        assert any(start >= 4 << 30 for start, _ in ram), f"no RAM above 4 GiB: {ram}"
        if microvm.is_ember:
            gap = (0xD0000000, (4 << 30) - 1)
            assert all(end < gap[0] or start > gap[1] for start, end in ram), \
                f"RAM in the gap: {ram}"


@pytest.mark.parametrize("kernel", ["vmlinux", "bzImage"])
def test_kernel_formats(microvm, kernel):
    """An ELF vmlinux (PVH entry) and a bzImage both boot the same ext4 root."""
    microvm.run("uname -r", kernel=kernel)
    assert_clean_run(microvm)
    assert microvm.guest_lines and microvm.guest_lines[0].startswith("6.1."), microvm.describe()


def test_initramfs_only_boot(microvm):
    """With no drive at all, the initramfs is the root filesystem (rdinit=/init)."""
    microvm.run("grep ' / ' /proc/mounts; ls /sys/block | grep vd | wc -l", rootfs=False,
                initrd=True)
    assert_clean_run(microvm)
    assert microvm.guest_lines[0].split()[:3] == ["rootfs", "/", "rootfs"], microvm.describe()
    assert microvm.guest_lines[1] == "0", microvm.describe()


def test_reboot_k_exits_zero(microvm):
    """reboot=k: the guest resets through the i8042 and the VMM exits 0."""
    microvm.run("echo bye")
    assert_clean_run(microvm)
    assert "reboot: Restarting system" in microvm.console
    assert microvm.guest_lines == ["bye"]


def test_command_exit_status_reported(microvm):
    """A failing guest command is reported on the console; the VMM still exits 0."""
    microvm.run("echo out; echo err >&2; exit 7")
    assert microvm.returncode == 0, microvm.describe()
    assert microvm.guest_exit == 7
    assert microvm.guest_lines == ["out", "err"]


@pytest.mark.parametrize("how", ["sysrq", "init-exits"])
def test_guest_panic(microvm, how):
    """A guest kernel panic (panic=1) ends Ember with 2 and says so in the log."""
    if how == "sysrq":
        microvm.run("echo c > /proc/sysrq-trigger")
    else:
        microvm.run("true", end="exit")
    assert microvm.panicked, microvm.describe()
    if microvm.is_ember:
        assert microvm.returncode == 2, microvm.describe()
        assert re.search(r"panic", microvm.log, re.I), \
            "no log line about the panic\n" + microvm.describe()


@pytest.mark.ember_only
def test_boot_timer_logged(microvm):
    """--boot-timer logs Guest-boot-time once the guest writes 123 to 0xd0000000."""
    microvm.basic_config(cmd="true")
    microvm.spawn()
    boot_us = microvm.wait_for_boot()
    microvm.wait_for_exit()
    assert_clean_run(microvm)
    assert 0 < boot_us < 600 * 1000 * 1000, microvm.log
    assert len(re.findall("Guest-boot-time", microvm.log)) == 1, microvm.log


@pytest.mark.ember_only
@pytest.mark.parametrize("bad", ["missing", "not-a-kernel"])
def test_bad_kernel_is_a_clear_error(microvm, tmp_path, bad):
    """A kernel path that does not exist, or a file that is no kernel, ends Ember with 1 and
    a message naming the file."""
    path = tmp_path / "no-such-vmlinux"
    if bad == "not-a-kernel":
        path.write_bytes(b"\x7fELF but not really" + bytes(4096))
    microvm.basic_config(kernel=str(path), cmd="true")
    microvm.spawn()
    assert microvm.wait_for_exit(timeout=30) == 1, microvm.describe()
    assert str(path) in microvm.log or path.name in microvm.log, microvm.describe()
    assert microvm.console == ""


def test_interactive_shell(microvm):
    """With no command, the guest runs a shell on the serial console, driven over stdin."""
    microvm.basic_config(cmd=None, vcpu_count=2)
    microvm.spawn(interactive=True)
    microvm.wait_for_boot()
    assert microvm.shell("echo $((6 * 7))") == (0, "42\n")
    status, _ = microvm.shell("false")
    assert status == 1
    microvm.send("exit 5\n")
    microvm.wait_for_exit()
    assert microvm.returncode == 0, microvm.describe()
    assert microvm.guest_exit == 5
