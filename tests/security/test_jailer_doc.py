# SPDX-License-Identifier: Apache-2.0
"""docs/jailer.md's worked example, run as it stands (with the substitutions the page
lists): the jailer, the kernel copied into the jail, the API through the socket in the jail,
what the host sees, and the clean-up the operator does."""
import os
import re
import subprocess
from pathlib import Path

from conftest import GUEST, JAILER, PARENT_CGROUP, ROOT, cgroup_mounts

DOC = ROOT / "docs" / "jailer.md"


def example_script():
    text = DOC.read_text()
    section = text.split("### Worked example", 1)[1]
    m = re.search(r"```sh\n(.*?)```", section, re.S)
    assert m, "no ```sh block under '### Worked example' in docs/jailer.md"
    return m.group(1)


def test_worked_example(tmp_path, ember_binary):
    base = tmp_path / "srv-jailer"
    base.mkdir()
    script = example_script()
    subs = [
        ("ember-jailer ", f"{JAILER} "),
        ("/usr/local/bin/ember", str(ember_binary)),
        ("--chroot-base-dir /srv/jailer",
         f"--chroot-base-dir /srv/jailer --parent-cgroup {PARENT_CGROUP}/ember"),
        ("/srv/jailer", str(base)),
        ("/var/lib/ember/vmlinux", str(GUEST)),
        ("panic=1\"", "panic=1 tests=hello exit=hang\""),
    ]
    for ctrl in ("cpu", "pids"):
        mnt = cgroup_mounts()[ctrl]
        subs.append((f"/sys/fs/cgroup/{ctrl}/ember/", f"{mnt}/{PARENT_CGROUP}/ember/"))
    for old, new in subs:
        assert old in script, f"the example no longer has {old!r}"
        script = script.replace(old, new)
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n--- script:\n{script}"
    out = r.stdout
    assert ('{"id":"demo-1","state":"Running","vmm_version":"0.1.0","app_name":"Ember"}'
            in out), out
    assert re.search(r"^Uid:\s+123\s+123\s+123\s+123$", out, re.M), out
    assert re.search(r"^CapEff:\s+0000000000000000$", out, re.M), out
    assert re.search(r"^NoNewPrivs:\s+1$", out, re.M), out
    assert re.search(r"^NSpid:\s+\d+\s+1$", out, re.M), out
    assert re.search(r"^64$", out, re.M), out
    # the example's own clean-up left nothing
    assert not (base / "ember" / "demo-1").exists()
    for ctrl in ("cpu", "pids"):
        assert not (Path(cgroup_mounts()[ctrl]) / PARENT_CGROUP / "ember" / "demo-1").exists()
