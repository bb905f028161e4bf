"""Suite-wide wiring: the ``ipvs`` marker, where its tests run, and no silent skips in CI.

Tests marked ``ipvs`` need kernel features this project's own machines lack (IPVS, dummy
devices). On a host that has them (for example GitHub's Ubuntu runners) they run directly and
the VM test (marked ``ipvs_vm``) is deselected. On a host without them they are deselected, not
skipped, and ``tests/lab/test_vm.py`` runs them inside a throwaway VM instead, where
``NETLAB_IN_VM=1`` is set so that they are collected normally. See docs/ipvs-vm.md.

With ``NETLAB_REQUIRE_PRIVILEGED=1`` (CI) every skip is a failure: a missing tool or privilege
must not let a run pass by testing less.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.lab.vm_suite import VMSuite

IPVS_MARKER = "ipvs"
IPVS_VM_MARKER = "ipvs_vm"
REQUIRE_ENV = "NETLAB_REQUIRE_PRIVILEGED"
VM_SUITE = pytest.StashKey["VMSuite"]()


def _required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def _deselect(config: pytest.Config, items: list[pytest.Item], drop: list[pytest.Item]) -> None:
    if not drop:
        return
    config.hook.pytest_deselected(items=drop)
    chosen = set(map(id, drop))
    items[:] = [item for item in items if id(item) not in chosen]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("NETLAB_IN_VM") == "1":
        return
    needs = [item for item in items if item.get_closest_marker(IPVS_MARKER) is not None]
    runners = [item for item in items if item.get_closest_marker(IPVS_VM_MARKER) is not None]
    if not needs and not runners:
        return
    from tests.tooling import vm

    if vm.host_has_ipvs() and vm.host_has_dummy():
        _deselect(config, items, runners)
        return
    _deselect(config, items, needs)
    # The VM runs beside everything else (pytest_collection_finish starts it): its test, which
    # only waits for the verdict, comes last.
    kept = set(map(id, runners))
    items[:] = [i for i in items if id(i) not in kept] + runners
    if needs and not runners:
        message = (
            f"{len(needs)} ipvs test(s) deselected: this kernel has no IPVS. Run them in the "
            "VM with tests/lab/test_vm.py (or nox -s ipvs_vm); see docs/ipvs-vm.md"
        )
        if _required():
            raise pytest.UsageError(f"{REQUIRE_ENV}=1: {message}")
        config.issue_config_time_warning(pytest.PytestWarning(message), stacklevel=2)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the ipvs tests' VM now, if its test is to run (tests/lab/vm_suite.py)."""
    if session.config.option.collectonly:
        return
    if not any(i.get_closest_marker(IPVS_VM_MARKER) for i in session.items):
        return
    from tests.lab.vm_suite import VMSuite

    suite = VMSuite()
    session.config.stash[VM_SUITE] = suite
    suite.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    suite = session.config.stash.get(VM_SUITE, None)
    if suite is not None:
        suite.cancel()


@pytest.fixture
def vm_suite(request: pytest.FixtureRequest) -> VMSuite:
    """The VM run started when collection ended."""
    suite = request.config.stash.get(VM_SUITE, None)
    assert suite is not None, "the ipvs VM was not started (tests/conftest.py)"
    return suite


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.skipped and _required() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_ENV}=1 turns this skip into a failure: {reason}"
    return report
