# SPDX-License-Identifier: Apache-2.0
"""The entropy device (virtio-rng, PUT /entropy) with a real Linux guest: /dev/hwrng gives
random bytes, and the device's rate limiter holds: with a bandwidth bucket of 2 KiB per
100 ms, reading 64 KiB from /dev/hwrng takes the ~3 s the bucket allows, where the same
read without a limiter takes well under half of that."""
import time

import pytest

from test_clone_safety import agent, boot

pytestmark = pytest.mark.ember_only  # QEMU's virtio-rng has no such limiter API

READ_KIB = 64
BUCKET = {"bandwidth": {"size": 2048, "refill_time": 100}}  # 20 KiB/s


def timed_read(uds):
    """Seconds the guest took to read READ_KIB KiB from /dev/hwrng (the read alone, by its
    own clock), and how many distinct byte values the bytes hold."""
    out = agent(uds, f"EXEC a=$(cut -d' ' -f1 /proc/uptime); "
                     f"head -c {READ_KIB * 1024} /dev/hwrng > /tmp/rnd; "
                     f"b=$(cut -d' ' -f1 /proc/uptime); "
                     f"n=$(od -An -v -tu1 /tmp/rnd | tr -s ' ' '\\n' | sort -u | wc -l); "
                     f"echo \"$a $b $n\"")
    a, b, n = out.split()
    return float(b) - float(a), int(n)


def test_hwrng_reads_and_the_rate_limiter_holds(api_microvm_factory):
    # 64 KiB at 20 KiB/s: about 3 s (the first 2 KiB come at once)
    want = (READ_KIB * 1024 - BUCKET["bandwidth"]["size"]) / (
        BUCKET["bandwidth"]["size"] / (BUCKET["bandwidth"]["refill_time"] / 1000))
    free = api_microvm_factory("free")
    took_free, distinct = timed_read(boot(free, {}))
    free.kill()
    assert distinct >= 250, distinct  # 64 KiB of random bytes show (nearly) every value
    # without the limiter the read is quick: what holds the limited one back is the limiter
    assert took_free < want / 2, (took_free, want)
    limited = api_microvm_factory("limited")
    took, distinct = timed_read(boot(limited, {"rate_limiter": BUCKET}))
    assert took >= want * 0.9, (took, want, took_free)
    assert distinct >= 250, distinct
