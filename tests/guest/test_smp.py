# SPDX-License-Identifier: Apache-2.0
"""Every vCPU comes up: the guest reads the MP table and starts each AP."""

import pytest

from guestrun import run


@pytest.mark.parametrize("vcpus", [1, 2, 4])
def test_every_vcpu_comes_up(vcpus):
    r = run(boot_args="tests=smp exit=port:0", vcpus=vcpus, debug_exit=True)
    assert r.returncode == 0, r.explain()
    r.assert_all_passed(["smp"])
    mptable = dict(w.split("=", 1) for w in r.values("mptable")[0])
    assert int(mptable["cpus"]) == vcpus, r.explain()
    bsp = int(r.lines[0].split("cpu=")[1])
    aps = [int(v[0].split("=")[1]) for v in r.values("cpu") if v[1:] == ["up"]]
    assert sorted([bsp] + aps) == list(range(vcpus)), r.explain()
    assert f"smp cpus={vcpus} expected={vcpus}" in r.lines, r.explain()
