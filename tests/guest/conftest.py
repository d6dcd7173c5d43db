# SPDX-License-Identifier: Apache-2.0
"""pytest set-up for the test-guest suite: needs /dev/kvm, build/ember and the guest images
(`make guest-test` builds both). Without /dev/kvm the suite is skipped; with it, a missing
build is an error, not a skip."""

import itertools
import os

import pytest

import guestrun

_netns_names = itertools.count()

IMAGES = ("guest.elf", "guest-linux64.elf", "guest.bzImage", "exit-now.elf")


def pytest_collection_modifyitems(config, items):
    if os.path.exists("/dev/kvm"):
        return
    skip = pytest.mark.skip(reason="no /dev/kvm on this machine")
    for item in items:
        item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def built():
    missing = [str(p) for p in [guestrun.EMBER] + [guestrun.image(n) for n in IMAGES]
               if not p.is_file()]
    assert not missing, f"not built (run `make guest-test`): {', '.join(missing)}"


@pytest.fixture
def netns():
    """A network namespace of the test's own (guestrun.NetNs), deleted afterwards."""
    ns = guestrun.NetNs(f"emb-guest-{os.getpid()}-{next(_netns_names)}")
    yield ns
    ns.delete()
