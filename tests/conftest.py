"""Suite-wide wiring: the ``ipvs`` marker and where its tests run.

Tests marked ``ipvs`` need kernel features this project's own machines lack (IPVS, dummy
devices). On a host that has them (for example GitHub's Ubuntu runners) they run directly. On a
host without them they are deselected, not skipped (CI treats a skipped privileged test as a
failure), and ``tests/lab/test_vm.py`` runs them inside a throwaway VM instead, where
``NETLAB_IN_VM=1`` is set so that they are collected normally. See docs/ipvs-vm.md.
"""

from __future__ import annotations

import os

import pytest

IPVS_MARKER = "ipvs"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{IPVS_MARKER}: needs IPVS and dummy devices; run in a throwaway VM on hosts without "
        "them (docs/ipvs-vm.md)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("NETLAB_IN_VM") == "1":
        return
    needs = [item for item in items if item.get_closest_marker(IPVS_MARKER) is not None]
    if not needs:
        return
    from netlab.testing import vm

    if vm.host_has_ipvs() and vm.host_has_dummy():
        return
    config.hook.pytest_deselected(items=needs)
    chosen = set(map(id, needs))
    items[:] = [item for item in items if id(item) not in chosen]
