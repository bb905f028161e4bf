"""Every shipped scenario is a test, in every proxy mode: ``netlab run`` must pass it and leave
the host as it was. IPVS runs where the kernel has it (else in the VM, see docs/ipvs-vm.md)."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from netlab.checks import derive
from netlab.checks.validate import load_and_validate
from netlab.lab.lifecycle import Lab
from netlab.lab.timeline import run_scenario
from tests.lab.host import REPO, HostSnapshot, netlab, snapshot

SCENARIOS = sorted(glob.glob(os.path.join(REPO, "scenarios", "*.yaml")))
HOST_MODES = ("iptables", "nftables", "userspace", "ebpf")


def expected_check_names(path: str, mode: str) -> list[str]:
    """The checks ``netlab run`` must run, in order: the Lab document's own, or, for plain
    manifests, those netlab derives from the cluster (for this mode)."""
    scenario, state = load_and_validate(path)
    specs = scenario.lab.checks if scenario.lab.checks is not None else derive(state, mode)
    assert specs or scenario.lab.steps, path
    return [s.name for s in specs]


def expected_steps(path: str) -> list[tuple[str, list[str]]]:
    """The timeline ``netlab run`` must play: each step's name and its checks' names."""
    scenario, _ = load_and_validate(path)
    return [(step.name, [c.name for c in step.checks]) for step in scenario.lab.steps]


@pytest.mark.parametrize("mode", HOST_MODES)
@pytest.mark.parametrize("path", SCENARIOS, ids=[os.path.basename(p) for p in SCENARIOS])
def test_shipped_scenario_passes(
    path: str, mode: str, clean_host: HostSnapshot, tmp_path: Path
) -> None:
    expected = expected_check_names(path, mode)
    steps = expected_steps(path)
    total = len(expected) + sum(len(names) for _, names in steps)
    junit = tmp_path / "run.xml"
    proc = netlab("run", path, "--mode", mode, "--json", "--junit", str(junit))
    data = json.loads(proc.stdout)
    every = data["checks"] + [c for step in data.get("steps", []) for c in step["checks"]]
    failed = [(c["name"], c["failures"]) for c in every if not c["passed"]]
    assert proc.returncode == 0, (failed, proc.stderr)
    assert data["passed"] is True
    assert data["mode"] == mode
    assert data["summary"] == {"checks": total, "passed": total, "failed": 0}
    assert [c["name"] for c in data["checks"]] == expected
    played = [(s["name"], [c["name"] for c in s["checks"]]) for s in data.get("steps", [])]
    assert played == steps
    for step in data.get("steps", []):
        if step["report"] and step["report"]["phases"]:
            assert step["report"]["convergedSeconds"] > 0
    assert data["kept"] is False
    # The JUnit report holds the same checks, each step's under its own class name.
    cases = ET.parse(junit).getroot().iter("testcase")
    by_class: dict[str, list[str]] = {}
    for case in cases:
        assert case.find("failure") is None
        by_class.setdefault(case.get("classname", ""), []).append(case.get("name", ""))
    base = f"{data['lab']}.{mode}"
    assert by_class == {
        **({base: expected} if expected else {}),
        **{f"{base}.step-{name}": names for name, names in steps if names},
    }


@pytest.mark.ipvs
@pytest.mark.parametrize("path", SCENARIOS, ids=[os.path.basename(p) for p in SCENARIOS])
def test_shipped_scenario_passes_in_ipvs_mode(path: str, clean_host: HostSnapshot) -> None:
    """Through the Python API, in pytest's own process: in the VM every interpreter start
    costs seconds (and each scenario gets its own timeout there). The timeline too."""
    scenario, _ = load_and_validate(path)
    lab = Lab.up(scenario, mode="ipvs")
    try:
        results, steps = run_scenario(lab, scenario)
    finally:
        lab.down()
    every = results + [r for step in steps for r in step.results]
    assert every, path
    assert [s.name for s in steps] == [s.name for s in scenario.lab.steps]
    assert [(r.name, r.failures) for r in every if not r.passed] == []


def test_plain_manifests_get_derived_checks(clean_host: HostSnapshot) -> None:
    proc = netlab("run", os.path.join(REPO, "scenarios", "plain-manifests.yaml"), "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stdout
    assert data["derived_checks"] is True
    by_name = {c["name"]: c for c in data["checks"]}
    clusterip = by_name["default/my-service:80 clusterIP from node-1"]
    assert clusterip["expected"]["source"] == "client"
    assert len(clusterip["expected"]["endpoints"]) == 3
    assert clusterip["observed"]["translated"] == 0
    assert sorted(clusterip["observed"]["endpoints"]) == clusterip["expected"]["endpoints"]
    node_ports = [c for c in data["checks"] if "nodePort" in c["name"]]
    assert len(node_ports) == 2
    for c in node_ports:
        assert c["source"] == "external"
        assert c["expected"]["source"] == "masqueraded"
        assert c["observed"]["translated"] == c["connections"]
    dns = [c for c in data["checks"] if c["kind"] == "dns"]
    assert [c["observed"]["answers"] for c in dns] == [["10.96.0.1"], ["10.96.0.1"]]
    assert all(c["derived"] for c in data["checks"])


def _variant(tmp_path: Path, name: str, proxy: str) -> str:
    """A copy of a shipped scenario whose Lab document also says ``proxy: <proxy>``."""
    text = Path(REPO, "scenarios", name).read_text()
    # The Lab document's spec, the only one that starts with a node count.
    assert text.count("\nspec:\n  nodes: 2\n") == 1
    path = tmp_path / name
    path.write_text(
        text.replace("\nspec:\n  nodes: 2\n", f"\nspec:\n  nodes: 2\n  proxy: {proxy}\n")
    )
    return str(path)


def _passed_all(proc: subprocess.CompletedProcess[str], expected: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(proc.stdout)
    failed = [(c["name"], c["failures"]) for c in data["checks"] if not c["passed"]]
    assert proc.returncode == 0, (failed, proc.stderr)
    assert data["passed"] is True
    assert data["summary"] == {"checks": len(expected), "passed": len(expected), "failed": 0}
    assert [c["name"] for c in data["checks"]] == expected
    return data


PORTALS_JUMP = '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'


def _rule_lines(save: str) -> list[str]:
    """iptables-save output without its dated comments and its (moving) chain counters."""
    return [
        ln.split(" [", 1)[0] if ln.startswith(":") else ln
        for ln in save.splitlines()
        if not ln.startswith("#")
    ]


def test_iptables_legacy_backend_runs_the_lab(tmp_path: Path, clean_host: HostSnapshot) -> None:
    """``iptablesBackend: legacy``: every rule (kube-proxy's and the CNI's) goes to the legacy
    back end in each node, the nft side stays empty, and every check passes."""
    path = _variant(tmp_path, "clusterip.yaml", "{iptablesBackend: legacy}")
    expected = expected_check_names(path, "iptables")
    name = "legacy-lab"
    proc = netlab("run", path, "--mode", "iptables", "--name", name, "--json", "--keep")
    try:
        data = _passed_all(proc, expected)
        assert (data["mode"], data["proxy"], data["kept"]) == (
            "iptables",
            "iptables (legacy back end)",
            True,
        )
        for node in ("node-1", "node-2"):
            legacy = netlab("exec", name, f"node/{node}", "--", "iptables-legacy-save")
            assert legacy.returncode == 0, legacy.stderr
            rules = _rule_lines(legacy.stdout)
            assert ":KUBE-SERVICES -" in rules
            assert rules.count(PORTALS_JUMP) == 1
            # `netlab rules` reads the same back end.
            shown = netlab("rules", name, f"node/{node}")
            assert shown.returncode == 0, shown.stderr
            assert _rule_lines(shown.stdout) == rules
            nft_side = netlab("exec", name, f"node/{node}", "--", "iptables-nft-save")
            assert nft_side.returncode == 0, nft_side.stderr
            assert _rule_lines(nft_side.stdout) == []
            ruleset = netlab("exec", name, f"node/{node}", "--", "nft", "list", "ruleset")
            assert (ruleset.returncode, ruleset.stdout) == (0, "")
    finally:
        down = netlab("down", name)
        assert down.returncode == 0, down.stderr
    after = snapshot()
    assert after == clean_host, clean_host.diff(after)


def test_nftables_fast_layout_runs_the_lab(tmp_path: Path, clean_host: HostSnapshot) -> None:
    """``nftablesLayout: fast`` (no anonymous maps) as a whole lab: every check of the NodePort
    scenario passes with the same verdicts as kube-proxy's layout."""
    path = _variant(tmp_path, "nodeport.yaml", "{nftablesLayout: fast}")
    expected = expected_check_names(path, "nftables")
    name = "fast-lab"
    proc = netlab("run", path, "--mode", "nftables", "--name", name, "--json", "--keep")
    try:
        data = _passed_all(proc, expected)
        assert (data["mode"], data["proxy"], data["kept"]) == (
            "nftables",
            "nftables (fast layout)",
            True,
        )
        table = netlab("rules", name, "node/node-1")
        assert table.returncode == 0, table.stderr
        assert table.stdout.startswith("table ip kube-proxy {")
        assert "vmap {" not in table.stdout  # the fast layout has no anonymous maps at all
        # web's two endpoints: numgen picks the first, or falls through to the second.
        web = netlab("rules", name, "node/node-1", "--service", "web")
        assert web.returncode == 0, web.stderr
        picks = re.findall(
            r"^\t\t(numgen random mod 2 0 goto|goto) endpoint-\w+-default/web/tcp/http__",
            web.stdout,
            re.M,
        )
        assert picks == ["numgen random mod 2 0 goto", "goto"], web.stdout
    finally:
        down = netlab("down", name)
        assert down.returncode == 0, down.stderr
    after = snapshot()
    assert after == clean_host, clean_host.diff(after)
