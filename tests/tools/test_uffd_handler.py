# SPDX-License-Identifier: Apache-2.0
"""build/ember-uffd-handler (tools/README.md) against build/tests/tools/uffd_client, a
stand-in VMM that registers two regions of anonymous memory (the memory file's pages
[0, 32) and [32, 64)) with a userfaultfd and sends them the way Ember and Firecracker do."""
import signal
import subprocess
import time

import pytest

from conftest import (CLIENT, HANDLER, PAGE, handler, memory_file, needs_uffd,  # noqa: F401
                      read_working_set, run_client, write_working_set)

pytestmark = needs_uffd
PAGES = 64


@pytest.fixture
def mem(tmp_path):
    return memory_file(tmp_path / "guest.mem", PAGES)


def ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


def present(lines):
    """The pages of the client's "present:" line."""
    [line] = [x for x in lines if x.startswith("present:")]
    return {int(p) for p in line.split(":")[1].strip().split(",") if p}


@pytest.mark.parametrize("client_args", [(), ("--old-format",), ("--split", 1),
                                         ("--split", 63), ("--close-conn",),
                                         ("--pad", 65536)])
def test_pages_arrive_with_the_memory_files_contents(handler, mem, client_args):
    """Every page the client reads is the memory file's, in either region, with the page
    size named either way; the handler (--once) exits 0 when the client is gone, also when
    the client closed the connection right after its message (as Firecracker does), and
    with a message of 64 KiB."""
    h = handler(mem, "--once")
    ok(run_client(h, mem, *client_args, "--touch", "all"))
    assert h.wait() == 0, h.err
    assert "vm done: 64 faults, 0 pages prefetched" in h.lines


def test_record_lists_the_touched_pages_in_order(handler, mem, tmp_path):
    ws = tmp_path / "rec.ws"
    h = handler(mem, "--once", "--record", ws)
    # 31 and 32 are in different regions but next to each other in the file
    ok(run_client(h, mem, "--touch", "9,10,11,40,2,3,10,31,32,33"))
    assert h.wait() == 0, h.err
    size, ranges = read_working_set(ws)
    assert size == PAGES * PAGE
    assert ranges == [(9 * PAGE, 3 * PAGE), (40 * PAGE, PAGE), (2 * PAGE, 2 * PAGE),
                      (31 * PAGE, 3 * PAGE)]
    assert f"recorded 9 faults: 4 ranges, {9 * PAGE} bytes, to {ws}" in h.lines


def test_record_ms_limits_the_recording(handler, mem, tmp_path):
    """Only the faults of the first --record-ms milliseconds are recorded, and the file is
    there as soon as the window closes, while the VM still runs."""
    ws = tmp_path / "rec.ws"
    h = handler(mem, "--once", "--record", ws, "--record-ms", 300)
    lines = ok(run_client(h, mem, "--touch", "1,2", "--sleep", 800, "--present", "--touch",
                          "30,50"))
    assert h.wait() == 0, h.err
    assert read_working_set(ws)[1] == [(PAGE, 2 * PAGE)]
    assert present(lines) == {1, 2}


def test_prefetch_makes_pages_present_before_they_are_touched(handler, mem, tmp_path):
    """A recorded working set, prefetched by a later handler: those pages (and only those)
    are in memory before the guest touches any; the rest still fault in on demand."""
    ws = tmp_path / "rec.ws"
    h = handler(mem, "--once", "--record", ws)
    ok(run_client(h, mem, "--touch", "20-23,50,5"))
    assert h.wait() == 0, h.err
    h.stop()
    h = handler(mem, "--once", "--prefetch", ws)
    lines = ok(run_client(h, mem, "--sleep", 300, "--present", "--touch", "all"))
    assert h.wait() == 0, h.err
    assert present(lines) == {20, 21, 22, 23, 50, 5}
    assert "prefetched 6 pages" in h.lines
    assert "vm done: 58 faults, 6 pages prefetched" in h.lines


def test_prefetch_across_regions_and_around_present_pages(handler, tmp_path):
    """Ranges that span both regions and need more than one 2 MiB chunk, while the guest
    touches pages of them before the prefetch gets there: every page is copied in once,
    either prefetched or on its fault, and each one is right."""
    pages = 1536  # 6 MiB; the regions split at page 768
    mem = memory_file(tmp_path / "big.mem", pages)
    ws = write_working_set(tmp_path / "py.ws", pages * PAGE, [(700 * PAGE, 200 * PAGE),
                                                              (0, 600 * PAGE)])
    h = handler(mem, "--once", "--prefetch", ws)
    lines = ok(run_client(h, mem, "--touch", "590,599,767,768", "--sleep", 300, "--present",
                          "--touch", "all"))
    assert h.wait() == 0, h.err
    assert present(lines) >= set(range(700, 900)) | set(range(0, 600))
    done = [x for x in h.lines if x.startswith("vm done:")][0].split()
    faults, prefetched = int(done[2]), int(done[4])
    assert faults + prefetched == pages and prefetched >= 790, h.lines


def test_prefetch_of_an_empty_working_set(handler, mem, tmp_path):
    ws = write_working_set(tmp_path / "empty.ws", PAGES * PAGE, [])
    h = handler(mem, "--once", "--prefetch", ws)
    ok(run_client(h, mem, "--touch", "0-2"))
    assert h.wait() == 0, h.err
    assert h.lines[-2:] == ["prefetched 0 pages", "vm done: 3 faults, 0 pages prefetched"]


def test_prefetch_of_a_bad_working_set_only_warns(handler, mem, tmp_path):
    ws = write_working_set(tmp_path / "small.ws", 2 * PAGE, [(0, PAGE)])
    h = handler(mem, "--once", "--prefetch", ws)
    ok(run_client(h, mem, "--touch", "all"))
    assert h.wait() == 0, h.err
    assert "warning: no prefetch" in h.err
    assert "expects a 8192-byte memory file" in h.err


def test_remove_events_are_noted(handler, mem):
    """madvise(DONTNEED) on registered memory sends remove events; the pages fault in
    again afterwards with the file's contents."""
    h = handler(mem, "--once")
    ok(run_client(h, mem, "--touch", "0-3", "--remove", "1-2", "--touch", "1-2"))
    assert h.wait() == 0, h.err
    assert "vm done: 6 faults, 0 pages prefetched, 2 remove events" in h.lines
    assert "note: a remove event" in h.err


@pytest.mark.parametrize("bad,message", [
    ("json", "the message is not JSON"),
    ("nofd", "the message carries no file descriptor"),
    ("notuffd", "guest.mem, not a userfaultfd"),
    ("overlap", "regions 0 and 1 overlap in memory"),
    ("outside", "region 1 (offset 262144, size 131072) lies beyond the 262144-byte memory "
                "file"),
    ("big", "the message is not JSON (or longer than 64 KiB)"),
])
def test_bad_message_is_an_error(handler, mem, bad, message):
    h = handler(mem)
    lines = ok(run_client(h, mem, "--bad", bad))
    assert lines == ["hung up"]
    assert h.wait() == 1
    assert message in h.err, h.err


def test_serves_vms_one_after_another_until_sigterm(handler, mem, tmp_path):
    h = handler(mem, "--record", tmp_path / "rec.ws")
    ok(run_client(h, mem, "--touch", "all"))
    ok(run_client(h, mem, "--touch", "7"))
    time.sleep(0.3)
    assert h.proc.poll() is None
    h.proc.send_signal(signal.SIGTERM)
    assert h.wait() == 0, h.err
    assert [x for x in h.lines if x.startswith("vm done")] == [
        "vm done: 64 faults, 0 pages prefetched", "vm done: 1 faults, 0 pages prefetched"]
    assert read_working_set(tmp_path / "rec.ws")[1] == [(7 * PAGE, PAGE)]
    assert not h.sock.exists()


def test_sigterm_while_serving_saves_the_recording(handler, mem, tmp_path):
    ws = tmp_path / "rec.ws"
    h = handler(mem, "--once", "--record", ws)
    client = subprocess.Popen([str(CLIENT), "--socket", str(h.sock), "--mem-file", str(mem),
                               "--touch", "3,4", "--sleep", "10000"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline() == "touched 3,4: ok\n"
        h.proc.send_signal(signal.SIGTERM)
        assert h.wait() == 0, h.err
        assert "(stopped by a signal)" in h.lines[-1]
        assert read_working_set(ws)[1] == [(3 * PAGE, 2 * PAGE)]
    finally:
        client.kill()
        client.wait()


@pytest.mark.parametrize("args,message", [
    (["--socket", "/tmp/x.sock"], "--socket and --mem-file are required"),
    (["--socket", "/tmp/x.sock", "--mem-file", "/nonexistent"], "/nonexistent"),
    (["--socket", "/tmp/x.sock", "--mem-file", "/etc/hostname"], "whole pages"),
    (["--socket", "/tmp/x.sock", "--mem-file", "/etc/hostname", "--record-ms", "5"],
     "--record-ms needs --record"),
])
def test_bad_arguments(args, message):
    r = subprocess.run([str(HANDLER), *args], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1
    assert message in r.stderr, r.stderr
