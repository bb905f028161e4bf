"""netlab's pytest plugin: a live lab as a fixture, for teams testing their own Services.

Installed with netlab and loaded by pytest through the ``pytest11`` entry point (``-p no:netlab``
turns it off)::

    import pytest

    @pytest.mark.netlab(scenario="web.yaml", mode="nftables")
    def test_web_answers(netlab_lab):
        results = netlab_lab.check()
        assert results.passed, results.report()

- ``netlab_lab`` is a :class:`netlab.Lab` built from the marker's ``scenario`` (a path relative
  to the test file, or absolute) and removed after the test, passed or failed;
- ``--netlab-mode MODE`` runs every marked test in another proxy mode than the marker's;
- ``--netlab-keep-on-failure`` leaves the lab of a failed test up and says, at the end of the
  run, how to reach it (``netlab status``, ``exec``, ``rules``, ``down``).

Each test gets its own lab, named after the scenario's lab plus a short hash of the test's id
(``name=`` in the marker sets it), so a lab kept from a failed test never blocks the next one.
Building a lab needs root, as ``netlab up`` does: without it the test errors with what to do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from netlab.api.lab import Lab

MARKER = "netlab"
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
_KEPT = pytest.StashKey[list[tuple[str, str, str, str]]]()  # test id, lab, a pod, a node
_OPEN = pytest.StashKey[dict[str, "Lab"]]()  # labs up right now, by test id


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netlab", "netlab labs (the netlab_lab fixture)")
    group.addoption(
        "--netlab-mode",
        default=None,
        metavar="MODE",
        help="build every @pytest.mark.netlab lab in this proxy mode (iptables, nftables, "
        "ipvs, userspace), whatever the marker says",
    )
    group.addoption(
        "--netlab-keep-on-failure",
        action="store_true",
        default=False,
        help="leave the lab of a failed test up for inspection and print how to reach it",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "netlab(scenario, mode=None, name=None): the scenario the netlab_lab fixture builds "
        "(a path relative to the test file), its proxy mode and its lab name",
    )
    config.stash[_KEPT] = []
    config.stash[_OPEN] = {}
    mode = config.getoption("netlab_mode", None)
    if mode:
        # Checked once, up front (and only then is netlab's scenario package imported).
        from netlab.scenario.labschema import PROXY_MODES

        if mode not in PROXY_MODES:
            raise pytest.UsageError(
                f"--netlab-mode: unknown proxy mode {mode!r} (one of {', '.join(PROXY_MODES)})"
            )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's report, so the fixture knows at teardown whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _scenario_path(request: pytest.FixtureRequest, marker: pytest.Mark) -> Path:
    scenario = marker.kwargs.get("scenario", marker.args[0] if marker.args else None)
    if not scenario:
        raise pytest.UsageError(
            f"{request.node.nodeid}: @pytest.mark.netlab needs scenario=PATH "
            "(e.g. @pytest.mark.netlab(scenario='web.yaml'))"
        )
    path = Path(scenario)
    if not path.is_absolute():
        path = Path(request.node.path).parent / path
    return path


def _lab_name(base: str, nodeid: str) -> str:
    """The scenario's lab name and six hex digits of the test id, within the 40 a name has."""
    digest = hashlib.sha256(nodeid.encode()).hexdigest()[:6]
    return f"{base[:33].rstrip('-')}-{digest}"


@pytest.fixture
def netlab_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The live lab of the test's ``@pytest.mark.netlab(scenario=...)``, removed afterwards
    (kept if the test failed and ``--netlab-keep-on-failure`` was given)."""
    import netlab

    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        raise pytest.UsageError(
            f"{request.node.nodeid}: the netlab_lab fixture needs "
            "@pytest.mark.netlab(scenario=...) on the test, its class or its module"
        )
    path = _scenario_path(request, marker)
    config = request.config
    mode = config.getoption("netlab_mode") or marker.kwargs.get("mode")
    try:
        name = marker.kwargs.get("name") or _lab_name(
            netlab.load(path).lab.name, request.node.nodeid
        )
        lab = netlab.up(path, mode=mode, name=name)
    except netlab.ScenarioError as exc:
        lines = [d.format() for d in exc.diagnostics + exc.warnings]
        pytest.fail(f"netlab: {path} is not a valid scenario:\n" + "\n".join(lines), pytrace=False)
    except netlab.NetlabError as exc:
        hint = getattr(exc, "hint", "")
        pytest.fail(f"netlab: {exc}" + (f"\nhint: {hint}" if hint else ""), pytrace=False)
    config.stash[_OPEN][request.node.nodeid] = lab
    try:
        yield lab
    finally:
        config.stash[_OPEN].pop(request.node.nodeid, None)
        reports = request.node.stash.get(_REPORTS, {})
        failed = any(r.failed for r in reports.values())
        if failed and config.getoption("netlab_keep_on_failure") and not lab.removed:
            node = f"node/{lab.state.nodes[0].name}"
            config.stash[_KEPT].append((request.node.nodeid, lab.name, _a_pod(lab), node))
        else:
            lab.down()


def _a_pod(lab: Lab) -> str:
    """A pod worth entering first: a client pod if the lab has one."""
    pods = lab.state.pods
    chosen = next((p for p in pods if p.role == "client"), pods[0] if pods else None)
    if chosen is None:
        return "node/" + lab.state.nodes[0].name
    return f"pod/{chosen.name}" if chosen.namespace == "default" else f"pod/{chosen.key}"


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A run cut short (Ctrl-C, a crash in another fixture) still removes the labs it built."""
    for lab in list(session.config.stash.get(_OPEN, {}).values()):
        lab.down()
    session.config.stash.get(_OPEN, {}).clear()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    kept = terminalreporter.config.stash.get(_KEPT, [])
    if not kept:
        return
    terminalreporter.section("netlab: labs kept for inspection")
    for nodeid, lab, target, node in kept:
        terminalreporter.write_line(f"{nodeid} failed; its lab {lab} is still up:")
        for command in (
            f"netlab status {lab}",
            f"netlab exec {lab} {target} -- sh",
            f"netlab get svc {lab} -A",
            f"netlab rules {lab} {node}",
            f"netlab down {lab}",
        ):
            terminalreporter.write_line(f"    sudo {command}")
