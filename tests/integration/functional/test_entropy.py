# SPDX-License-Identifier: Apache-2.0
"""The entropy device (virtio-rng, PUT /entropy) with a real Linux guest: /dev/hwrng gives
random bytes, and the device's rate limiter holds: with a bandwidth bucket of 4 KiB per
100 ms, reading 64 KiB from /dev/hwrng takes the time the bucket allows, where the same
read without a limiter is quick."""
import time

import pytest

from test_clone_safety import agent, boot

pytestmark = pytest.mark.ember_only  # QEMU's virtio-rng has no such limiter API

READ_KIB = 64
BUCKET = {"bandwidth": {"size": 4096, "refill_time": 100}}  # 40 KiB/s


def timed_read(uds):
    """Seconds the guest took to read READ_KIB KiB from /dev/hwrng, by its own clock, and
    how many distinct byte values it saw."""
    out = agent(uds, f"EXEC a=$(cut -d' ' -f1 /proc/uptime); "
                     f"n=$(head -c {READ_KIB * 1024} /dev/hwrng | od -An -v -tu1 | "
                     f"tr -s ' ' '\\n' | sort -u | wc -l); "
                     f"b=$(cut -d' ' -f1 /proc/uptime); echo \"$a $b $n\"")
    a, b, n = out.split()
    return float(b) - float(a), int(n)


def test_hwrng_reads_and_the_rate_limiter_holds(api_microvm_factory):
    free = api_microvm_factory("free")
    took_free, distinct = timed_read(boot(free, {}))
    free.kill()
    assert distinct >= 250, distinct  # 64 KiB of random bytes show (nearly) every value
    limited = api_microvm_factory("limited")
    took, distinct = timed_read(boot(limited, {"rate_limiter": BUCKET}))
    # 64 KiB at 40 KiB/s: at least ~1.5 s (the first 4 KiB come at once)
    want = (READ_KIB * 1024 - BUCKET["bandwidth"]["size"]) / (
        BUCKET["bandwidth"]["size"] / (BUCKET["bandwidth"]["refill_time"] / 1000))
    assert took >= want * 0.9, (took, want, took_free)
    assert took > took_free, (took, took_free)
    assert distinct >= 250, distinct
