# SPDX-License-Identifier: Apache-2.0
"""The API with curl, as people use it: Firecracker's getting-started flow, and every curl
example of docs/api.md, run in order against a live Ember and compared with the response
the page shows after it.

docs/api.md's conventions, which this file relies on:
  - an example is a ```sh block whose first line starts with `curl`; the fenced block right
    after it is its response: ```json (200 OK with that body) or ```text (the status line,
    then a blank line and the body, if any);
  - in an expected body, the string "..." matches any value, a line "..." any lines, and
    in a text body every number matches any number;
  - `<!-- curl-test: fresh -->` before an example starts a new Ember for it and what follows;
  - the paths in substitutions() stand for the test's own: the socket, the kernel, the log,
    metrics and console files, and the drive images of DRIVE_IMAGES, which the test makes
    (small sparse files); a path under /nonexistent is left alone, to stay missing.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import GUEST, PREFIX, ROOT

DOC = ROOT / "docs" / "api.md"
CURL = shutil.which("curl")
FENCE_RE = re.compile(r"^```([A-Za-z]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
FRESH = "<!-- curl-test: fresh -->"
BOOT_ARGS = "console=ttyS0 reboot=k panic=1 pci=off"
# the drive images docs/api.md names, and the size of the file that stands for each
DRIVE_IMAGES = {"/var/lib/rootfs.ext4": 1 << 20, "/var/lib/scratch.ext4": 64 << 10,
                "/var/lib/scratch-v2.ext4": 128 << 10}


@pytest.fixture(autouse=True, scope="module")
def have_curl():
    assert CURL, "curl is not installed (apt-get install curl)"


def drive_images(tmp_path):
    """[(documented path, the test's file)], the files made (sparse) if missing."""
    out = []
    for doc_path, size in DRIVE_IMAGES.items():
        path = tmp_path / "drives" / doc_path.rsplit("/", 1)[1]
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            with open(path, "wb") as f:
                f.truncate(size)
        out.append((doc_path, str(path)))
    return out


def substitutions(vm, tmp_path):
    return drive_images(tmp_path) + [
        ("/tmp/ember.socket", str(vm.socket_path)),
        ("/path/to/vmlinux", str(GUEST)),
        ("/tmp/ember-metrics.json", str(tmp_path / "ember-metrics.json")),
        ("/tmp/ember-console.log", str(tmp_path / "ember-console.log")),
        ("/tmp/ember.log", str(tmp_path / "ember.log")),
        ("/tmp/ember-vsock.sock", str(tmp_path / "ember-vsock.sock")),
        # a TAP name of this test's own (the kernel makes it at InstanceStart)
        ('"host_dev_name": "tap0"', f'"host_dev_name": "emc{os.getpid() % 100000}"'),
        # the test guest ignores Linux's parameters; exit=hang keeps it running for the
        # examples that follow
        (BOOT_ARGS, BOOT_ARGS + " tests=hello exit=hang"),
    ]


def substitute(text, subs):
    for old, new in subs:
        text = text.replace(old, new)
    return text


# ---- docs/api.md ----

class Example:
    def __init__(self, line, command, lang, expected, fresh):
        self.line = line  # of the command in docs/api.md
        self.command = command
        self.lang = lang
        self.expected = expected
        self.fresh = fresh

    def __repr__(self):
        return f"docs/api.md:{self.line}: {self.command.splitlines()[0][:100]}"


def doc_examples():
    text = DOC.read_text()
    blocks = list(FENCE_RE.finditer(text))
    examples = []
    fresh = False
    prev_end = 0
    for i, m in enumerate(blocks):
        if FRESH in text[prev_end:m.start()]:
            fresh = True
        prev_end = m.end()
        lang, body = m.group(1), m.group(2)
        if lang != "sh" or not body.lstrip().startswith("curl"):
            continue
        line = text.count("\n", 0, m.start()) + 2
        assert i + 1 < len(blocks), f"docs/api.md:{line}: a curl example with no response"
        resp = blocks[i + 1]
        assert text[m.end():resp.start()].strip() == "", \
            f"docs/api.md:{line}: the response block must follow the curl example at once"
        assert resp.group(1) in ("json", "text"), \
            f"docs/api.md:{line}: the response block must be ```json or ```text"
        examples.append(Example(line, body, resp.group(1), resp.group(2), fresh))
        fresh = False
    return examples


def split_http(out):
    """curl -i output -> (status line, body)."""
    out = out.replace("\r\n", "\n")
    while out.startswith("HTTP/1.1 100 "):
        out = out.split("\n\n", 1)[1]
    head, _, body = out.partition("\n\n")
    return head.split("\n", 1)[0].strip(), body


def matches_json(expected, actual):
    if expected == "...":
        return True
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        extra_ok = "..." in expected
        keys = set(expected) - {"..."}
        if not keys <= set(actual) or (not extra_ok and set(actual) != keys):
            return False
        return all(matches_json(expected[k], actual[k]) for k in keys)
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(matches_json(e, a) for e, a in zip(expected, actual)))
    return expected == actual and type(expected) is type(actual)


def matches_text(expected, actual):
    """Each expected line (numbers as wildcards) appears in order; "..." skips lines."""
    lines = actual.splitlines()
    pos = 0
    for want in expected.splitlines():
        if want.strip() in ("", "..."):
            continue
        rx = re.compile("^" + r"\d+".join(re.escape(p) for p in re.split(r"\d+", want)) + "$")
        while pos < len(lines) and not rx.match(lines[pos]):
            pos += 1
        if pos == len(lines):
            return False
        pos += 1
    return True


def check_example(ex, out, subs):
    status, body = split_http(out)
    expected = substitute(ex.expected, subs)
    if ex.lang == "json":
        want_status, want_body = "HTTP/1.1 200 OK", expected
    else:
        want_status, _, want_body = expected.partition("\n")
        want_body = want_body.strip("\n")
    problems = []
    if status != want_status.strip():
        problems.append(f"status {status!r}, documented {want_status.strip()!r}")
    if not want_body.strip():
        if body.strip():
            problems.append(f"a body {body[:200]!r}, documented none")
    else:
        try:
            want = json.loads(want_body)
        except ValueError:
            want = None
        if want is not None:
            try:
                got = json.loads(body)
            except ValueError:
                got = None
            if not matches_json(want, got):
                problems.append(f"body {body[:600]}\ndocumented {json.dumps(want)[:600]}")
        elif not matches_text(want_body, body):
            problems.append(f"body {body[:600]!r}\ndocumented {want_body[:600]!r}")
    return problems


def run_curl(command, subs, timeout=10):
    cmd = substitute(command, subs).replace("curl ", "curl -sS ", 1)
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}\nexit {r.returncode}: {r.stderr}"
    return r.stdout


def test_doc_has_examples_for_every_endpoint():
    examples = doc_examples()
    assert len(examples) >= 30
    paths = " ".join(e.command for e in examples)
    for p in ("/'", "/version", "/boot-source", "/machine-config", "/drives/",
              "/network-interfaces/", "/vsock", "/actions", "localhost/vm'", "/vm/config",
              "/logger", "/metrics", "/serial"):
        assert p in paths, f"docs/api.md has no curl example for {p}"
    assert examples[0].fresh is False and sum(e.fresh for e in examples) >= 1


def test_doc_curl_examples(ember_factory, tmp_path):
    """Every curl example of docs/api.md, in order, gets the response the page shows."""
    vm = ember_factory()
    subs = substitutions(vm, tmp_path)
    failures = []
    for ex in doc_examples():
        if ex.fresh:
            vm.kill()
            vm = ember_factory()
            subs = substitutions(vm, tmp_path)
        out = run_curl(ex.command, subs)
        for p in check_example(ex, out, subs):
            failures.append(f"{ex!r}\n  {p}")
    assert not failures, "\n".join(failures) + "\n" + vm.describe()
    vm.assert_healthy("Running")


# ---- Firecracker's getting-started flow, verbatim in style ----

def curl(vm, *args):
    r = subprocess.run([CURL, "-sS", "--unix-socket", str(vm.socket_path), "-i", *args],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    status, body = split_http(r.stdout)
    return int(status.split()[1]), body


def test_firecracker_getting_started_flow(ember, tmp_path):
    """The requests of Firecracker's getting-started guide, in its older style (-i, -H on
    each) and its newer one (--data, no Content-Type), against Ember."""
    vm = ember
    log = tmp_path / "firecracker.log"
    rootfs = tmp_path / "ubuntu.ext4"
    with open(rootfs, "wb") as f:
        f.truncate(1 << 20)
    sock = str(vm.socket_path)
    script = f"""
set -e
API_SOCKET="{sock}"
KERNEL="{GUEST}"
KERNEL_BOOT_ARGS="console=ttyS0 reboot=k panic=1 pci=off tests=hello exit=hang"
LOGFILE="{log}"
ROOTFS="{rootfs}"
touch "$LOGFILE"
curl -sS -X PUT --unix-socket "${{API_SOCKET}}" \\
    --data "{{
        \\"log_path\\": \\"${{LOGFILE}}\\",
        \\"level\\": \\"Debug\\",
        \\"show_level\\": true,
        \\"show_log_origin\\": true
    }}" \\
    "http://localhost/logger" -w '%{{http_code}}\\n'
curl -sS -X PUT --unix-socket "${{API_SOCKET}}" \\
    --data "{{
        \\"kernel_image_path\\": \\"${{KERNEL}}\\",
        \\"boot_args\\": \\"${{KERNEL_BOOT_ARGS}}\\"
    }}" \\
    "http://localhost/boot-source" -w '%{{http_code}}\\n'
curl -sS --unix-socket "${{API_SOCKET}}" -i \\
    -X PUT 'http://localhost/machine-config' \\
    -H 'Accept: application/json' \\
    -H 'Content-Type: application/json' \\
    -d '{{
        "vcpu_count": 2,
        "mem_size_mib": 1024
    }}' -o /dev/null -w '%{{http_code}}\\n'
curl -sS -X PUT --unix-socket "${{API_SOCKET}}" \\
    --data "{{
        \\"drive_id\\": \\"rootfs\\",
        \\"path_on_host\\": \\"${{ROOTFS}}\\",
        \\"is_root_device\\": true,
        \\"is_read_only\\": false
    }}" \\
    "http://localhost/drives/rootfs" -o /dev/null -w '%{{http_code}}\\n'
sleep 0.015
curl -sS --unix-socket "${{API_SOCKET}}" -i \\
    -X PUT 'http://localhost/actions' \\
    -H 'Accept: application/json' \\
    -H 'Content-Type: application/json' \\
    -d '{{
        "action_type": "InstanceStart"
    }}' -o /dev/null -w '%{{http_code}}\\n'
"""
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    codes = r.stdout.split()
    # logger, boot-source, machine-config, drive, start
    assert codes == ["204", "204", "204", "204", "204"], r.stdout
    vm.wait_console(PREFIX + "done passed=1 failed=0")
    # the root drive is on the guest's command line, as Firecracker puts it there
    assert "virtio_mmio.device=4K@0xd0001000:5 root=/dev/vda rw" in vm.console, vm.describe()
    drives = json.loads(curl(vm, "http://localhost/vm/config")[1])["drives"]
    assert [(d["drive_id"], d["path_on_host"], d["is_root_device"]) for d in drives] == \
        [("rootfs", str(rootfs), True)], drives
    assert curl(vm, "http://localhost/")[1].count('"state":"Running"') == 1
    assert ":DEBUG:" in log.read_text() or ":INFO:" in log.read_text(), log.read_text()
    for state in ("Paused", "Resumed"):
        status, _ = curl(vm, "-X", "PATCH", "http://localhost/vm", "-d",
                         json.dumps({"state": state}))
        assert status == 204
    status, _ = curl(vm, "-X", "PUT", "http://localhost/actions", "-d",
                     '{"action_type": "SendCtrlAltDel"}')
    assert status == 204
    vm.assert_healthy("Running")


def test_curl_drive_message_is_clear(ember, tmp_path):
    """A drive whose file is missing is accepted pre-boot (the file is opened at
    InstanceStart); InstanceStart then names the file and why, and the fixed drive starts."""
    missing = tmp_path / "no-such-dir" / "r.ext4"
    body = {"drive_id": "rootfs", "path_on_host": str(missing), "is_root_device": True}
    status, _ = curl(ember, "-X", "PUT", "http://localhost/drives/rootfs", "--data",
                     json.dumps(body))
    assert status == 204
    ember.configure()
    status, out = curl(ember, "-X", "PUT", "http://localhost/actions", "--data",
                       '{"action_type": "InstanceStart"}')
    assert status == 400, out
    assert json.loads(out)["fault_message"] == \
        f"InstanceStart: drive {missing}: No such file or directory", out
    missing.parent.mkdir()
    missing.write_bytes(b"\0" * 4096)
    status, out = curl(ember, "-X", "PUT", "http://localhost/actions", "--data",
                       '{"action_type": "InstanceStart"}')
    assert status == 204, out
    ember.wait_console(PREFIX + "done passed=1 failed=0")


def test_curl_network_interface(ember):
    status, body = curl(ember, "-X", "PUT", "http://localhost/network-interfaces/eth0",
                        "--data", '{"iface_id": "eth0", "host_dev_name": "tap0"}')
    assert status == 204, body
    assert ember.get("/vm/config").json["network-interfaces"][0]["host_dev_name"] == "tap0"


def test_curl_large_body_with_expect_100_continue(ember):
    """curl sends Expect: 100-continue for larger bodies; Ember answers it."""
    args = "console=ttyS0 " + "x" * 1900 + " tests=hello exit=hang"  # boot_args: 2047 at most
    status, _ = curl(ember, "-H", "Expect: 100-continue", "-X", "PUT",
                     "http://localhost/boot-source", "-d",
                     json.dumps({"kernel_image_path": str(GUEST), "boot_args": args}))
    assert status == 204
    assert ember.get("/vm/config").json["boot-source"]["boot_args"] == args


def test_curl_default_method_with_data_is_405(ember):
    """curl -d without -X sends POST, which no path takes."""
    status, body = curl(ember, "http://localhost/actions", "-d",
                        '{"action_type": "InstanceStart"}')
    assert status == 405 and "POST" in body
    assert ember.state() == "Not started"
