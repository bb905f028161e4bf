"""Privileged tests: real labs in real namespaces.

Without root they skip with a reason; with ``NETLAB_REQUIRE_PRIVILEGED=1`` (CI) a missing
privilege is a failure, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from netlab.kernel import netns, threads
from tests.lab.host import HostSnapshot, snapshot


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/lab/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.privileged)


@pytest.fixture(autouse=True)
def _require_root() -> None:
    if os.geteuid() == 0:
        return
    if os.environ.get("NETLAB_REQUIRE_PRIVILEGED") == "1":
        pytest.fail("NETLAB_REQUIRE_PRIVILEGED=1 but not root: privileged tests must run here")
    pytest.skip("needs root (NETLAB_REQUIRE_PRIVILEGED=1 turns this skip into a failure)")


@pytest.fixture
def clean_host() -> Iterator[HostSnapshot]:
    """The host as it was before the test; the test must leave it exactly so."""
    before = snapshot()
    yield before
    after = snapshot()
    assert after == before, before.diff(after)


@pytest.fixture
def scratch_ns(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace of this test's own (made as a lab makes its namespaces), removed."""
    tag = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[-24:].strip("-")
    name = f"labtest-{os.getpid()}-{tag}"
    assert not netns.exists(name)
    try:
        threads.call(netns.create_and_enter, name)
        yield name
    finally:
        netns.remove(name)
