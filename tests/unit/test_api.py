"""The public Python API without a lab: what ``import netlab`` costs, what ``__all__`` holds,
scenario validation with errors as data, ad-hoc checks parsed as scenarios parse them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import netlab
from netlab.api.lab import _Terminations
from netlab.api.results import CheckResults
from netlab.checks.model import CheckResult

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"

PUBLIC = {
    "__version__",
    "validate",
    "load",
    "schema",
    "graph",
    "Validation",
    "up",
    "attach",
    "labs",
    "down",
    "cleanup",
    "doctor",
    "parse_check",
    "Lab",
    "DownReport",
    "ChangeReport",
    "StepResult",
    "LabStatus",
    "LabSummary",
    "Listing",
    "CheckResults",
    "CheckResult",
    "junit_xml",
    "write_junit",
    "Scenario",
    "Diagnostic",
    "NetlabError",
    "ScenarioError",
    "UsageError",
    "PrerequisiteError",
    "LabError",
}


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return set(out.stdout.split())


def test_import_netlab_loads_nothing_else() -> None:
    loaded = _modules_after("import netlab")
    assert sorted(m for m in loaded if m.startswith("netlab")) == ["netlab"]
    assert "pyroute2" not in loaded


def test_validating_never_touches_the_kernel_layer() -> None:
    loaded = _modules_after(
        f"import netlab\nassert netlab.validate({str(SCENARIOS / 'dns.yaml')!r}).valid"
    )
    heavy = {m for m in loaded if m.startswith(("pyroute2", "netlab.kernel", "netlab.lab."))}
    assert heavy == set()


def test_all_is_explicit_and_every_name_resolves() -> None:
    assert set(netlab.__all__) == PUBLIC
    for name in netlab.__all__:
        assert getattr(netlab, name) is not None, name
    assert set(dir(netlab)) >= PUBLIC
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = netlab.nope


def test_every_public_name_is_documented() -> None:
    doc = (ROOT / "docs" / "api.md").read_text()
    missing = sorted(n for n in PUBLIC if not re.search(rf"\b{re.escape(n)}\b", doc))
    assert not missing, f"docs/api.md does not mention: {missing}"


BROKEN = """\
apiVersion: netlab.dev/v1alpha1
kind: Lab
metadata: {name: broken}
spec:
  nodes: 2
  checks:
  - name: to-nowhere
    from: pod/ghost
    to: service/web:nope
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""


def test_validate_gives_errors_as_data_with_positions(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text(BROKEN)
    v = netlab.validate(f)
    assert not v.valid and v.scenario is None
    assert v.errors, "a check naming a missing pod must be an error"
    for d in v.errors:
        assert d.file == str(f) and d.line >= 7 and d.col >= 1, d
        assert d.path.startswith("spec.checks[0]"), d
    assert v.to_data()["valid"] is False
    with pytest.raises(netlab.ScenarioError) as caught:
        netlab.load(f)
    assert caught.value.diagnostics == v.errors


def test_validate_a_good_file() -> None:
    v = netlab.validate(SCENARIOS / "clusterip.yaml", name="other-name")
    assert v.valid and v.errors == []
    assert v.scenario is not None and v.scenario.lab.name == "other-name"
    assert v.state is not None and len(v.state.nodes) == 2
    assert v.to_data()["checks"] == 6
    assert netlab.load(SCENARIOS / "clusterip.yaml").lab.name == "clusterip"
    assert netlab.schema()["title"]


def test_ad_hoc_checks_are_parsed_as_scenario_checks() -> None:
    spec = netlab.parse_check({"from": "pod/client-node-1", "to": "service/web:http"})
    assert str(spec.source) == "pod/client-node-1"
    with pytest.raises(netlab.ScenarioError) as caught:
        netlab.parse_check(
            {"from": "pod/x", "to": "nowhere", "expect": {"endpoints": "all", "bogus": 1}}
        )
    paths = sorted(d.path for d in caught.value.diagnostics)
    assert paths == ["expect.bogus", "to"]
    assert all(d.category == "check" and d.line == 0 for d in caught.value.diagnostics)


def test_up_refuses_an_unknown_mode_before_building_anything() -> None:
    with pytest.raises(netlab.UsageError, match="unknown proxy mode 'ebpff'"):
        netlab.up(SCENARIOS / "clusterip.yaml", mode="ebpff")
    scenario = netlab.load(SCENARIOS / "clusterip.yaml")
    with pytest.raises(netlab.UsageError, match="name= applies to a scenario file"):
        netlab.up(scenario, name="elsewhere")


def _result(name: str, passed: bool) -> CheckResult:
    return CheckResult(
        name=name,
        passed=passed,
        summary=f"{name} summary",
        source="external",
        destination="10.0.0.1:80",
        protocol="TCP",
        connections=3,
        expected={"result": "connected"},
        observed={"outcomes": {"connected": 3}, "endpoints": {"web-a": 3}},
        failures=[] if passed else ["never reached: web-b in 3 connections"],
    )


def test_check_results_know_whether_they_passed() -> None:
    good = CheckResults([_result("a", True), _result("b", True)])
    assert good.passed and good.failed == []
    assert good.summary() == {"checks": 2, "passed": 2, "failed": 0}
    bad = CheckResults([_result("a", True), _result("b", False)])
    assert not bad.passed and [r.name for r in bad.failed] == ["b"]
    assert bad.report().splitlines() == [
        "PASS a  a summary",
        "FAIL b  b summary",
        "     - never reached: web-b in 3 connections",
        "1/2 checks passed",
    ]
    assert bad[0].reached == {"web-a": 3}
    assert bad.to_data()[1]["failures"] == ["never reached: web-b in 3 connections"]


def test_a_termination_signal_inside_a_lab_block_unwinds_it() -> None:
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("SIGTERM is handled by someone else here")
    with pytest.raises(KeyboardInterrupt), _Terminations():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted at once by the handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
