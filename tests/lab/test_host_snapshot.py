"""Privileged: the tests' host snapshot itself. A leftover that is not a namespace (a bare file
in /run/netns, what a run killed between naming a namespace and mounting it leaves) is listed
as a change, not a crash of the snapshot: a crash there fails every later test instead of the
one that left it."""

from __future__ import annotations

import os

from tests.lab.host import snapshot


def test_a_bare_file_in_run_netns_is_listed_not_entered(scratch_ns: str) -> None:
    bare = f"/run/netns/{scratch_ns[:40]}-bare"
    before = snapshot()
    fd = os.open(bare, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)  # as a namespace's name starts
    os.close(fd)
    try:
        during = snapshot()
    finally:
        os.unlink(bare)
    assert os.path.basename(bare) in during.netns
    assert during.netns != before.netns
    assert snapshot() == before
