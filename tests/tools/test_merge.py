# SPDX-License-Identifier: Apache-2.0
"""build/ember-snapshot-merge (tools/README.md): every data extent of a diff memory file, and
nothing else, lands at the same offset of its base; a merge it refuses leaves the base as
it was."""
import os
import subprocess

import pytest

from conftest import MERGE, PAGE, memory_file, page_bytes

PAGES = 16


def diff_file(path, pages, dirty):
    """A sparse diff memory file of `pages` pages holding only `dirty` ({page: bytes})."""
    with open(path, "wb") as f:
        f.truncate(pages * PAGE)
        for page, data in dirty.items():
            assert len(data) == PAGE
            f.seek(page * PAGE)
            f.write(data)
    return path


def data_pages(path):
    """The pages of path that are data, not holes (what SEEK_DATA/SEEK_HOLE say)."""
    pages, pos, size = set(), 0, os.path.getsize(path)
    with open(path, "rb") as f:
        while pos < size:
            try:
                start = os.lseek(f.fileno(), pos, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(f.fileno(), start, os.SEEK_HOLE)
            pages.update(range(start // PAGE, (end + PAGE - 1) // PAGE))
            pos = end
    return pages


def merge(base, diff, base_opt="--base", diff_opt="--diff"):
    return subprocess.run([str(MERGE), base_opt, str(base), diff_opt, str(diff)],
                          capture_output=True, text=True, timeout=60)


def pages_of(path):
    data = path.read_bytes()
    return [data[i:i + PAGE] for i in range(0, len(data), PAGE)]


@pytest.fixture
def base(tmp_path):
    return memory_file(tmp_path / "base.mem", PAGES)


def test_copies_exactly_the_data_extents(base, tmp_path):
    """Dirty pages, an all-zero one among them (written: data, not a hole), replace the
    base's; every other page of the base stays."""
    dirty = {1: b"\x99" * PAGE, 4: bytes(PAGE), 5: b"\x77" * PAGE, 6: b"\x66" * PAGE}
    diff = diff_file(tmp_path / "diff.mem", PAGES, dirty)
    if data_pages(diff) != set(dirty):
        pytest.skip(f"{tmp_path}'s file system does not keep holes")
    r = merge(base, diff)
    assert r.returncode == 0, r.stderr
    assert "copied 4 pages" in r.stdout
    got = pages_of(base)
    for i in range(PAGES):
        assert got[i] == dirty.get(i, page_bytes(i)), f"page {i}"


def test_aliases_and_a_diff_of_holes(base, tmp_path):
    """--memory-path/--diff-path as Firecracker's snapshot-editor names them; a diff with no
    dirty page changes nothing."""
    before = base.read_bytes()
    diff = diff_file(tmp_path / "diff.mem", PAGES, {})
    r = merge(base, diff, "--memory-path", "--diff-path")
    assert r.returncode == 0, r.stderr
    assert "copied 0 pages" in r.stdout
    assert base.read_bytes() == before


def test_two_diffs_in_order(base, tmp_path):
    """Diffs applied in the order they were taken give the latest state."""
    d1 = diff_file(tmp_path / "d1.mem", PAGES, {2: b"A" * PAGE, 3: b"A" * PAGE})
    d2 = diff_file(tmp_path / "d2.mem", PAGES, {3: b"B" * PAGE, 15: b"C" * PAGE})
    assert merge(base, d1).returncode == 0
    assert merge(base, d2).returncode == 0
    got = pages_of(base)
    want = {2: b"A" * PAGE, 3: b"B" * PAGE, 15: b"C" * PAGE}
    for i in range(PAGES):
        assert got[i] == want.get(i, page_bytes(i)), f"page {i}"


def test_large_extent(tmp_path):
    """An extent longer than the tool's 1 MiB copy buffer, at the end of the file."""
    base = memory_file(tmp_path / "base.mem", 600)
    dirty = {p: bytes([p % 256]) * PAGE for p in range(250, 600)}
    diff = diff_file(tmp_path / "diff.mem", 600, dirty)
    r = merge(base, diff)
    assert r.returncode == 0, r.stderr
    got = pages_of(base)
    assert all(got[i] == dirty.get(i, page_bytes(i)) for i in range(600))


@pytest.mark.parametrize("how,message", [
    ("size", "has 65536 bytes and"),
    ("odd", "not a multiple of the 4096-byte page"),
    ("dir", "not a regular file"),
    ("same", "are the same file"),
    ("missing-diff", "No such file or directory"),
    ("missing-base", "No such file or directory"),
    ("no-diff-option", "both --base and --diff are required"),
])
def test_refused_and_base_unchanged(base, tmp_path, how, message):
    before = base.read_bytes()
    diff = diff_file(tmp_path / "diff.mem", PAGES, {0: b"X" * PAGE})
    args = [str(MERGE), "--base", str(base), "--diff", str(diff)]
    if how == "size":
        diff_file(diff, PAGES + 1, {0: b"X" * PAGE})
    elif how == "odd":
        with open(diff, "ab") as f:
            f.write(b"x")
    elif how == "dir":
        args[4] = str(tmp_path)
    elif how == "same":
        args[4] = str(base)
    elif how == "missing-diff":
        args[4] = str(tmp_path / "nothere.mem")
    elif how == "missing-base":
        args[2] = str(tmp_path / "nothere.mem")
    elif how == "no-diff-option":
        args = args[:3]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert message in r.stderr, r.stderr
    assert r.stderr.startswith("ember-snapshot-merge: ")
    assert base.read_bytes() == before
