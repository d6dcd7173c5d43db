# SPDX-License-Identifier: Apache-2.0
"""The Microvm class: one VMM process (Ember, or QEMU microvm as the peer) running one guest.

A test configures it (Firecracker's config-file schema), spawns it, waits for the guest's
boot-complete signal, talks to the guest over the serial console, and reads how it ended:

    vm = microvm_factory()
    vm.basic_config(vcpu_count=2, mem_size_mib=256, cmd="grep -c ^processor /proc/cpuinfo")
    vm.spawn()
    vm.wait_for_exit()
    assert vm.returncode == 0 and vm.guest_exit == 0 and vm.guest_output.strip() == "2"

The guest's /init contract (resources/guest/init, docs/guest-images.md): the command comes
in base64 on the kernel command line, the console shows "EMBER-INIT: boot-complete" and
"EMBER-INIT: exit=N", then the guest resets. Ember writes the guest's serial port to stdout
and its own log to stderr; both are captured to files in the VM's work directory.
"""
import base64
import json
import os
import pty
import re
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

# tests/support: helpers shared with the other suites (here with the benchmarks, too)
_SUPPORT = str(Path(__file__).resolve().parents[2] / "support")
if _SUPPORT not in sys.path:
    sys.path.insert(0, _SUPPORT)
from proc_helpers import kill_process_group  # noqa: E402

SCALE = float(os.environ.get("EMBER_TEST_TIMEOUT_SCALE", "1"))
BOOT_TIMEOUT = 90 * SCALE
EXIT_TIMEOUT = 180 * SCALE

DEFAULT_BOOT_ARGS = "console=ttyS0 reboot=k panic=1 pci=off"
BOOT_TIME_RE = re.compile(
    r"Guest-boot-time = (\d+) us (\d+) ms, (\d+) CPU us (\d+) CPU ms")
INIT_BOOT = "EMBER-INIT: boot-complete"
# a kernel message can land on the same line right after it (a loaded host's clocksource
# watchdog did): the number ends where the digits do
INIT_EXIT_RE = re.compile(r"^EMBER-INIT: exit=(\d+)(?!\d)", re.M)
PANIC = "Kernel panic - not syncing"
KERNEL_LOG_RE = re.compile(r"^\[\s*\d+\.\d+\] ")


class VmmTimeout(AssertionError):
    """The guest did not get where a test waited for in time; the VMM has been killed."""


class Stream:
    """Collects one output pipe of the VMM into memory and a file, from a reader thread."""

    def __init__(self, fileobj, path, cond):
        self._buf = bytearray()
        self._times = []  # (length of _buf after a chunk, time.monotonic() it arrived)
        self._cond = cond
        self.closed = False
        self._file = open(path, "wb")
        self._thread = threading.Thread(target=self._pump, args=(fileobj,), daemon=True)
        self._thread.start()

    def _pump(self, fileobj):
        while True:
            chunk = os.read(fileobj.fileno(), 65536)
            with self._cond:
                if not chunk:
                    self.closed = True
                    self._cond.notify_all()
                    break
                self._buf += chunk
                self._times.append((len(self._buf), time.monotonic()))
                self._file.write(chunk)
                self._file.flush()
                self._cond.notify_all()
        self._file.close()

    def text(self):
        with self._cond:
            return self._buf.decode(errors="replace").replace("\r", "")

    def time_of(self, needle):
        """When needle (bytes) first arrived complete (time.monotonic()), or None."""
        with self._cond:
            at = self._buf.find(needle)
            if at < 0:
                return None
            end = at + len(needle)
            return next(t for length, t in self._times if length >= end)

    def join(self, timeout):
        self._thread.join(timeout)


class Microvm:
    """One guest in one VMM process. Made by the microvm_factory fixture."""

    def __init__(self, vmm, binary, workdir, images, name="vm", io_engine="Sync"):
        self.vmm = vmm  # "ember" or "qemu"
        self.io_engine = io_engine  # for the drives: "Sync" or "Async"
        self.netns = None  # a network namespace name: the VMM runs inside it
        self.binary = str(binary)
        self.workdir = Path(workdir)
        self.images = images
        self.name = name
        self.config = None
        self.extra_cli = []
        self.proc = None
        self.returncode = None
        self._cond = threading.Condition()
        self._stdout = self._stderr = None
        self._pty_master = None
        self._spawned_at = None
        self._shell_seq = 0
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def is_ember(self):
        return self.vmm == "ember"

    # ---- configuration ----
    def basic_config(self, vcpu_count=1, mem_size_mib=128, kernel="vmlinux", initrd=False,
                     rootfs=True, boot_args=DEFAULT_BOOT_ARGS, cmd=None, end=None):
        """Firecracker's config-file schema. kernel: "vmlinux", "bzImage" or a path;
        rootfs: True boots a private copy of the ext4 rootfs from virtio-block (drive
        "rootfs", root=/dev/vda, as Firecracker users do), False attaches no root drive;
        initrd: True for the busybox initramfs, False for none, or a path; cmd: a shell
        command for the guest's /init (None: an interactive shell); end: "exit" makes /init
        exit (the kernel then panics) instead of resetting."""
        kernel_path = {"vmlinux": self.images.vmlinux, "bzImage": self.images.bzimage}.get(
            kernel, kernel)
        args = boot_args
        if cmd is not None:
            args += " ember_cmd_b64=" + base64.b64encode(cmd.encode()).decode()
        if end is not None:
            args += f" ember_end={end}"
        self.config = {
            "boot-source": {"kernel_image_path": str(kernel_path), "boot_args": args},
            "machine-config": {"vcpu_count": vcpu_count, "mem_size_mib": mem_size_mib},
            "drives": [],
            "network-interfaces": [],
        }
        if initrd:
            path = self.images.initramfs if initrd is True else initrd
            self.config["boot-source"]["initrd_path"] = str(path)
        if rootfs:
            self.add_drive("rootfs", self.copy_rootfs(), root=True)
        return self.config

    def add_drive(self, drive_id, path, root=False, read_only=False, cache_type=None,
                  io_engine=None, rate_limiter=None):
        """One entry of the config's "drives" (Firecracker's schema). io_engine defaults to
        the one the test runs with (the io_engine fixture: every test runs with both)."""
        drive = {"drive_id": drive_id, "path_on_host": str(path), "is_root_device": root,
                 "is_read_only": read_only, "io_engine": io_engine or self.io_engine}
        if cache_type is not None:
            drive["cache_type"] = cache_type
        if rate_limiter is not None:
            drive["rate_limiter"] = rate_limiter
        self.config["drives"].append(drive)
        return drive

    def add_net(self, iface_id, host_dev_name, guest_mac=None, rx_rate_limiter=None,
                tx_rate_limiter=None, anti_spoofing=None):
        """One entry of the config's "network-interfaces" (Firecracker's schema, and
        Ember's anti_spoofing)."""
        iface = {"iface_id": iface_id, "host_dev_name": host_dev_name}
        if anti_spoofing is not None:
            iface["anti_spoofing"] = anti_spoofing
        if guest_mac is not None:
            iface["guest_mac"] = guest_mac
        if rx_rate_limiter is not None:
            iface["rx_rate_limiter"] = rx_rate_limiter
        if tx_rate_limiter is not None:
            iface["tx_rate_limiter"] = tx_rate_limiter
        self.config["network-interfaces"].append(iface)
        return iface

    @property
    def config_path(self):
        return self.workdir / "vm.json"

    def _command(self):
        if self.is_ember:
            cmd = [self.binary, "--config-file", str(self.config_path), "--no-api",
                   "--boot-timer", *self.extra_cli]
        else:
            cmd = self._qemu_command()
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + cmd

    def _qemu_drives(self):
        """The config's drives as QEMU virtio-blk-device options, and the root= arguments.
        The drive id is the device's serial, as Ember makes it; Sync is aio=threads and
        Async aio=io_uring."""
        cmd, root = [], ""
        drives = self.config.get("drives", [])
        # the first -device is vda, as the first drive is in Ember
        for d in drives:
            opts = [f"id={d['drive_id']}", f"file={d['path_on_host']}", "format=raw", "if=none",
                    "aio=io_uring" if d.get("io_engine") == "Async" else "aio=threads",
                    "cache=unsafe" if d.get("cache_type") == "Unsafe" else "cache=writeback"]
            if d.get("is_read_only"):
                opts.append("readonly=on")
            cmd += ["-drive", ",".join(opts),
                    "-device", f"virtio-blk-device,drive={d['drive_id']},serial={d['drive_id']}"]
        for d in drives:
            if d.get("is_root_device"):
                root = f" root=/dev/vda {'ro' if d.get('is_read_only') else 'rw'}"
        for n in self.config.get("network-interfaces", []):
            cmd += ["-netdev", f"tap,id={n['iface_id']},ifname={n['host_dev_name']},"
                               "script=no,downscript=no,vhost=off",
                    "-device", f"virtio-net-device,netdev={n['iface_id']}"
                               + (f",mac={n['guest_mac']}" if n.get("guest_mac") else "")]
        return cmd, root

    def _qemu_command(self):
        """The same VM on QEMU's microvm machine, the reference and benchmark peer.
        microvm has no i8042, so reboot=k becomes reboot=t."""
        boot = self.config["boot-source"]
        mach = self.config["machine-config"]
        args = boot.get("boot_args", DEFAULT_BOOT_ARGS).replace("reboot=k", "reboot=t")
        drives, root = self._qemu_drives()
        cmd = [self.binary, "-M", "microvm,acpi=off", "-enable-kvm", "-cpu", "host",
               "-smp", str(mach.get("vcpu_count", 1)), "-m", str(mach.get("mem_size_mib", 128)),
               "-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
               "-serial", "stdio", "-no-reboot",
               "-kernel", boot["kernel_image_path"], "-append", args + root]
        if boot.get("initrd_path"):
            cmd += ["-initrd", boot["initrd_path"]]
        return cmd + drives + self.extra_cli

    # ---- life cycle ----
    def spawn(self, interactive=False):
        """Starts the VMM. interactive: give it a pty as stdin (Ember feeds stdin to the
        serial port only when it is a tty) so that shell() can type into the guest."""
        assert self.config is not None, "call basic_config() first"
        assert self.proc is None, "already spawned"
        self.config_path.write_text(json.dumps(self.config, indent=2) + "\n")
        stdin = subprocess.DEVNULL
        slave = None
        if interactive:
            self._pty_master, slave = pty.openpty()
            tty.setraw(slave)
            stdin = slave
        self._spawned_at = time.monotonic()
        self.proc = subprocess.Popen(self._command(), stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=self.workdir,
                                     start_new_session=True)
        if slave is not None:
            os.close(slave)
        self._stdout = Stream(self.proc.stdout, self.workdir / "console.log", self._cond)
        self._stderr = Stream(self.proc.stderr, self.workdir / "vmm.log", self._cond)
        return self

    def run(self, cmd, timeout=EXIT_TIMEOUT, **config):
        """Boots a guest that runs cmd and waits until the VMM exits. Returns self."""
        self.basic_config(cmd=cmd, **config)
        self.spawn()
        self.wait_for_exit(timeout)
        return self

    def wait_for(self, predicate, timeout, what):
        """Waits until predicate() holds; kills the VMM and raises VmmTimeout if not."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.05))
            else:
                return
        self.kill()
        raise VmmTimeout(f"{self.name}: timed out after {timeout:.0f} s waiting for {what}\n"
                         + self.describe())

    def wait_for_boot(self, timeout=BOOT_TIMEOUT):
        """Waits for boot-complete: Ember's boot-timer log line (the console marker for
        QEMU). Returns the boot time in microseconds Ember logged (None with QEMU)."""
        if self.is_ember:
            self.wait_for(lambda: self._boot_match() or self.exited(), timeout,
                          "the Guest-boot-time log line")
            m = self._boot_match()
            assert m, f"{self.name}: the VMM exited before boot-complete\n" + self.describe()
            return int(m.group(1))
        self.wait_for(lambda: INIT_BOOT in self.console or self.exited(), timeout, INIT_BOOT)
        assert INIT_BOOT in self.console, \
            f"{self.name}: exited before boot-complete\n" + self.describe()
        return None

    def exited(self):
        return self.proc is not None and self.proc.poll() is not None and \
            self._stdout.closed and self._stderr.closed

    def wait_for_exit(self, timeout=EXIT_TIMEOUT):
        """Waits for the VMM to exit on its own; returns its exit code."""
        self.wait_for(self.exited, timeout, "the VMM to exit")
        self.returncode = self.proc.wait()
        return self.returncode

    def kill(self):
        """Stops the VMM for good (SIGKILL to its process group) and releases its pty."""
        kill_process_group(self.proc)
        if self.proc is not None and self.returncode is None:
            self.returncode = self.proc.returncode
        for s in (self._stdout, self._stderr):
            if s is not None:
                s.join(5)
        if self._pty_master is not None:
            os.close(self._pty_master)
            self._pty_master = None

    # ---- what came out ----
    @property
    def console(self):
        """Everything the guest wrote to its serial port so far (\\r removed)."""
        return self._stdout.text() if self._stdout else ""

    @property
    def log(self):
        """The VMM's own log (stderr) so far."""
        return self._stderr.text() if self._stderr else ""

    def console_time(self, text):
        """Seconds from spawn() until text first appeared on the console, or None."""
        t = self._stdout.time_of(text.encode()) if self._stdout else None
        return None if t is None else t - self._spawned_at

    def _boot_match(self):
        return BOOT_TIME_RE.search(self.log)

    @property
    def boot_time_us(self):
        m = self._boot_match()
        return int(m.group(1)) if m else None

    @property
    def guest_exit(self):
        """The exit status of the guest's command ("EMBER-INIT: exit=N"), or None."""
        m = INIT_EXIT_RE.search(self.console)
        return int(m.group(1)) if m else None

    @property
    def guest_output(self):
        """What the guest's command printed: the console between the init markers."""
        text = self.console
        start = text.find(INIT_BOOT + "\n")
        if start < 0:
            return ""
        start += len(INIT_BOOT) + 1
        m = INIT_EXIT_RE.search(text, start)
        # /init puts a newline before the exit marker: it is not the command's.
        return text[start:max(start, m.start() - 1) if m else len(text)]

    @property
    def guest_lines(self):
        """guest_output as lines, without kernel log lines ("[    1.234567] ...")."""
        return [line for line in self.guest_output.splitlines()
                if not KERNEL_LOG_RE.match(line)]

    @property
    def panicked(self):
        return PANIC in self.console

    def describe(self, lines=12):
        """The tails of the console and the log, for failure messages. (A failing test's
        report also gets longer tails of every VM: see conftest.py.)"""
        def tail(text):
            return "\n".join("    | " + line for line in text.splitlines()[-lines:])
        rc = self.proc.poll() if self.proc else None
        return (f"--- {self.name}: {self.vmm} {' '.join(self._command()) if self.config else ''}\n"
                f"--- exit code: {rc}; work dir: {self.workdir}\n"
                f"--- console (last {lines} lines):\n{tail(self.console)}\n"
                f"--- {self.vmm} log (last {lines} lines):\n{tail(self.log)}")

    # ---- interactive shell (spawn(interactive=True), no cmd) ----
    def shell(self, command, timeout=60 * SCALE):
        """Types command into the guest's console shell; returns (status, output)."""
        assert self._pty_master is not None, "spawn(interactive=True) first"
        self._shell_seq += 1
        tag = f"EMBER-SH-{self._shell_seq}"
        offset = len(self.console)
        # The guest's tty echoes what is typed; the markers are printed with printf so that
        # the echo (which shows the format string) never matches.
        line = f"printf '%s\\n' {tag}-START; {command}; printf '%s=%d\\n' {tag}-END $?\n"
        os.write(self._pty_master, line.encode())
        end_re = re.compile(rf"^{tag}-END=(\d+)$", re.M)
        self.wait_for(lambda: end_re.search(self.console, offset) or self.exited(), timeout,
                      f"the shell command {command!r}")
        text = self.console[offset:]
        m = end_re.search(text)
        assert m, f"{self.name}: the VMM exited while running {command!r}\n" + self.describe()
        start = text.find(f"\n{tag}-START\n")
        out = text[start + len(tag) + 8:m.start()] if start >= 0 else text[:m.start()]
        return int(m.group(1)), out

    def send(self, text):
        """Types text into the guest's console (spawn(interactive=True))."""
        assert self._pty_master is not None, "spawn(interactive=True) first"
        os.write(self._pty_master, text.encode())

    def copy_rootfs(self, name="rootfs.ext4"):
        """A private, writable copy of the ext4 rootfs (the cached image is the master),
        sparse like the master."""
        dst = self.workdir / name
        subprocess.run(["cp", "--sparse=always", str(self.images.rootfs_ext4), str(dst)],
                       check=True)
        return dst

    def read_file_from_rootfs(self, guest_path, image=None):
        """A file's bytes from an ext4 image on the host, None if the file is not there.
        Use it once the VMM has stopped. It reads a copy after e2fsck has replayed the
        journal (what the guest synced may sit only in the journal after a power-off or a
        kill) and asserts that the file system is consistent."""
        image = Path(image or self.workdir / "rootfs.ext4")
        copy = image.with_name(image.name + ".fsck")
        subprocess.run(["cp", "--sparse=always", str(image), str(copy)], check=True)
        try:
            r = subprocess.run(["e2fsck", "-fy", str(copy)], capture_output=True, text=True)
            # 0: clean, 1: fixed (a journal replay counts): anything more is damage
            assert r.returncode in (0, 1), f"e2fsck {image}: {r.returncode}\n{r.stdout}"
            r = subprocess.run(["debugfs", "-R", f"cat {guest_path}", str(copy)],
                               capture_output=True)
        finally:
            copy.unlink()
        if r.returncode != 0 or b"File not found" in r.stderr:
            return None
        return r.stdout
