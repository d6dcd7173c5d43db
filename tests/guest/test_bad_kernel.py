# SPDX-License-Identifier: Apache-2.0
"""A missing or corrupt kernel is an Ember error: exit code 1, a one-line reason on stderr,
no crash."""

import random
import re
import struct

import pytest

from guestrun import image, make_config, run

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT")


def middle_of_last_segment(elf):
    """A file offset halfway into the last PT_LOAD segment's file bytes (the debug
    sections after it would otherwise hide a cut made at a fixed fraction)."""
    phoff, = struct.unpack_from("<Q", elf, 32)
    phentsize, phnum = struct.unpack_from("<HH", elf, 54)
    cut = None
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", elf, phoff + i * phentsize)
        if p_type == 1 and p_filesz:
            cut = p_offset + p_filesz // 2
    assert cut is not None
    return cut


def corrupt_images(tmp_path):
    elf = image("guest.elf").read_bytes()
    bz = image("guest.bzImage").read_bytes()
    rng = random.Random(1234)
    images = {
        "random": rng.randbytes(64 * 1024),
        "empty": b"",
        "elf-header-only": elf[:64],
        "elf-truncated-in-headers": elf[:100],
        "elf-truncated-in-segment": elf[:middle_of_last_segment(elf)],
        "elf-wrong-magic": b"\x7fELG" + elf[4:],
        "elf-32-bit-class": elf[:4] + b"\x01" + elf[5:],
        "bzimage-truncated": bz[:1024],
    }
    paths = {}
    for name, data in images.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(data)
    paths["missing"] = tmp_path / "does-not-exist"
    paths["directory"] = tmp_path
    return paths


CASES = ["random", "empty", "elf-header-only", "elf-truncated-in-headers",
         "elf-truncated-in-segment", "elf-wrong-magic", "elf-32-bit-class",
         "bzimage-truncated", "missing", "directory"]


@pytest.mark.parametrize("case", CASES)
def test_bad_kernel_is_an_ember_error(tmp_path, case):
    kernel = corrupt_images(tmp_path)[case]
    r = run(config=make_config(kernel, "tests=hello exit=port:0", 1, 64), debug_exit=True)
    assert r.returncode == 1, r.explain()
    reasons = [l for l in r.stderr.splitlines() if l.strip() and not LOG_LINE.match(l)]
    assert len(reasons) == 1, r.explain()
    assert "EMBER-GUEST" not in r.stdout, r.explain()
