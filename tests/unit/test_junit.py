"""``netlab run --junit``: one test case per check, failures that say expected and observed, and
a document every JUnit reader accepts (checked against the schema's rules, tests/unit/junitxml.py);
a timeline's checks grouped by step there and in the run's table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.api.junit import failure_text, junit_xml, write_junit
from netlab.checks.model import CheckResult
from netlab.errors import Diagnostic, LabError, ScenarioError, UsageError
from tests.unit.junitxml import validate_junit


def _passed() -> CheckResult:
    return CheckResult(
        name="pod-to-clusterip",
        passed=True,
        summary="pod/client-node-1 -> default/web:http (10.96.0.20:80/TCP)",
        source="pod/client-node-1",
        destination="10.96.0.20:80",
        protocol="TCP",
        connections=45,
        expected={"result": "connected", "endpoints": ["web-a", "web-b"], "client": "10.244.1.4"},
        observed={"outcomes": {"connected": 45}, "endpoints": {"web-a": 20, "web-b": 25}},
        seconds=0.05,
        description="Every endpoint answers.",
    )


def _failed() -> CheckResult:
    return CheckResult(
        name="node-to-clusterip",
        passed=False,
        summary="node/node-2 -> default/web:http (10.96.0.20:80/TCP)",
        source="node/node-2",
        destination="10.96.0.20:80",
        protocol="TCP",
        connections=45,
        expected={"result": "connected", "endpoints": ["web-a", "web-b"], "source": "client"},
        observed={
            "outcomes": {"connected": 45},
            "endpoints": {"web-a": 45},
            "sources": ["10.244.2.1"],
        },
        failures=[
            "never reached: web-b in 45 connections",
            "expected backends to see the client's own address 192.168.56.12, 45 saw a "
            "translated one (10.244.2.1:40000)",
        ],
        seconds=0.07,
    )


def _dns_failed() -> CheckResult:
    return CheckResult(
        name="headless-answers",
        passed=False,
        summary="pod/solo: A web (search path)",
        source="pod/solo",
        destination="A web",
        protocol="DNS",
        connections=1,
        expected={"rcode": "NOERROR", "answers": ["10.244.1.2"]},
        observed={"server": "10.96.0.10", "rcode": "NXDOMAIN", "answers": []},
        failures=["expected NOERROR, got NXDOMAIN"],
        kind="dns",
    )


def test_one_test_case_per_check_with_counts_that_add_up() -> None:
    results = [_passed(), _failed(), _dns_failed()]
    root = validate_junit(junit_xml(results, suite="web", mode="nftables"))
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "web.nftables"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "2", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r.name for r in results]
    assert {c.get("classname") for c in cases} == {"web.nftables"}
    assert cases[0].find("failure") is None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"mode": "nftables"}


def test_a_failure_says_what_was_expected_and_what_was_observed() -> None:
    root = validate_junit(junit_xml([_failed()], suite="web", mode="iptables"))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("type") == "CheckFailed"
    assert failure.get("message", "").startswith("never reached: web-b in 45 connections; ")
    text = failure.text or ""
    assert text.splitlines()[0] == (
        "node/node-2 -> default/web:http (10.96.0.20:80/TCP), 45 connections"
    )
    assert "- never reached: web-b in 45 connections" in text
    expected = text[text.index("expected:") : text.index("observed:")]
    observed = text[text.index("observed:") :]
    assert "endpoints: [web-a, web-b]" in expected
    assert "source: client" in expected
    assert "endpoints: {web-a: 45}" in observed
    assert "sources: [10.244.2.1]" in observed
    assert failure_text(_failed()) == text


def test_dns_failures_count_no_connections() -> None:
    text = failure_text(_dns_failed())
    assert text.splitlines()[0] == "pod/solo: A web (search path)"
    assert "rcode: NXDOMAIN" in text


def test_a_run_that_could_not_happen_is_an_error_case() -> None:
    for error in (
        LabError("lab web is already up", hint="run: netlab down web"),
        ScenarioError([Diagnostic("Required value: to", file="w.yaml", line=7, col=5)]),
    ):
        root = validate_junit(junit_xml([], suite="web", mode="ipvs", error=error))
        suite = root.find("testsuite")
        assert suite is not None
        assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("1", "1", "0")
        err = root.find("testsuite/testcase/error")
        assert err is not None
        assert err.get("type") == type(error).__name__
        assert str(error) in (err.text or "")
    text = junit_xml(
        [],
        suite="w",
        error=ScenarioError([Diagnostic("Required value: to", file="w.yaml", line=7, col=5)]),
    )
    assert "w.yaml:7:5: error: Required value: to" in text


def test_text_that_xml_cannot_hold_is_replaced_not_written() -> None:
    r = _failed()
    r.failures = ["a tool said \x1b[31mred\x1b[0m and \x00"]
    r.name = 'weird <name> & "quotes"'
    text = junit_xml([r], suite="s")
    root = validate_junit(text)
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == r.name
    assert "\x1b" not in text and "\x00" not in text


def test_write_junit_is_atomic_and_refuses_a_bad_path(tmp_path: Path) -> None:
    out = tmp_path / "report.xml"
    write_junit(out, [_passed()], suite="web")
    validate_junit(out.read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["report.xml"]
    with pytest.raises(UsageError, match="cannot write the JUnit report"):
        write_junit(tmp_path / "missing" / "report.xml", [_passed()], suite="web")


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("<testsuite name='x' tests='0'/>", "the root is <testsuite>"),
        ("<testsuites><testsuite tests='0'/></testsuites>", "lacks required attribute name"),
        (
            "<testsuites><testsuite name='x' tests='1'><testcase name='a'>"
            "<system-out>o</system-out><failure/></testcase></testsuite></testsuites>",
            "out of the schema's order",
        ),
        (
            "<testsuites><testsuite name='x' tests='2'><testcase name='a'/></testsuite>"
            "</testsuites>",
            "tests=2, counted 1",
        ),
        (
            "<testsuites><testsuite name='x' tests='1' flavour='y'><testcase name='a'/>"
            "</testsuite></testsuites>",
            "has attribute flavour",
        ),
        (
            "<testsuites><testsuite name='x' tests='1'><testcase name='a'><bogus/></testcase>"
            "</testsuite></testsuites>",
            "unknown element <bogus>",
        ),
    ],
)
def test_the_checker_itself_refuses_what_the_schema_refuses(document: str, problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        validate_junit(document)


def test_a_timelines_checks_follow_under_their_steps_class_names() -> None:
    from netlab.lab.changes import ChangeReport
    from netlab.lab.timeline import StepResult

    steps = [
        StepResult(
            name="scale-to-zero",
            change="scale deployment/web to 0",
            results=[_failed()],
            report=ChangeReport(change="scale deployment/web to 0", converged=0.0312),
        ),
        StepResult(name="look-again", change="", results=[_dns_failed(), _passed()]),
    ]
    root = validate_junit(junit_xml([_passed()], suite="web", mode="ipvs", steps=steps))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "0")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("web.ipvs", "pod-to-clusterip"),
        ("web.ipvs.step-scale-to-zero", "node-to-clusterip"),
        ("web.ipvs.step-look-again", "headless-answers"),
        ("web.ipvs.step-look-again", "pod-to-clusterip"),
    ]
    said = [(c.findtext("system-out") or "").splitlines()[0] for c in cases]
    assert said[1] == "step scale-to-zero: scale deployment/web to 0 (converged in 0.031s)"
    assert said[2] == "step look-again: no change"
    assert said[0] == _passed().summary


def test_the_wide_table_names_each_checks_step() -> None:
    import io

    from netlab.cli import report
    from netlab.cli.output import Out

    top, first, second = _passed(), _failed(), _dns_failed()
    pipe = io.StringIO()
    report.results(
        Out(pipe),
        [top, first, second],
        wide=True,
        steps=[("scale-to-zero", [first]), ("look-again", [second])],
    )
    lines = pipe.getvalue().splitlines()
    assert lines[0].split()[:3] == ["RESULT", "STEP", "CHECK"]
    assert [line.split()[:3] for line in lines[1:4]] == [
        ["PASS", "-", "pod-to-clusterip"],
        ["FAIL", "scale-to-zero", "node-to-clusterip"],
        ["FAIL", "look-again", "headless-answers"],
    ]
    assert lines[4] == "1/3 checks passed"
