"""Every shipped scenario is a test, in every proxy mode: ``netlab run`` must pass it and leave
the host as it was. IPVS runs where the kernel has it (else in the VM, see docs/ipvs-vm.md)."""

from __future__ import annotations

import glob
import json
import os

import pytest

from netlab.lab import Lab
from netlab.validation import load_and_validate
from tests.lab.host import REPO, HostSnapshot, netlab

SCENARIOS = sorted(glob.glob(os.path.join(REPO, "scenarios", "*.yaml")))
HOST_MODES = ("iptables", "nftables", "userspace")


@pytest.mark.parametrize("mode", HOST_MODES)
@pytest.mark.parametrize("path", SCENARIOS, ids=[os.path.basename(p) for p in SCENARIOS])
def test_shipped_scenario_passes(path: str, mode: str, clean_host: HostSnapshot) -> None:
    proc = netlab("run", path, "--mode", mode, "--json")
    data = json.loads(proc.stdout)
    failed = [(c["name"], c["failures"]) for c in data["checks"] if not c["passed"]]
    assert proc.returncode == 0, (failed, proc.stderr)
    assert data["passed"] is True
    assert data["mode"] == mode
    assert data["summary"]["failed"] == 0
    assert data["summary"]["checks"] == len(data["checks"]) >= 4
    assert data["kept"] is False


@pytest.mark.ipvs
def test_shipped_scenarios_pass_in_ipvs_mode(clean_host: HostSnapshot) -> None:
    """All scenarios in one process: in the VM every interpreter start costs seconds."""
    failures: dict[str, list[tuple[str, list[str]]]] = {}
    for path in SCENARIOS:
        scenario, _ = load_and_validate(path)
        lab = Lab.up(scenario, mode="ipvs")
        try:
            results = lab.run_checks(lab.checks(scenario.lab.checks))
        finally:
            lab.down()
        bad = [(r.name, r.failures) for r in results if not r.passed]
        assert results, path
        if bad:
            failures[os.path.basename(path)] = bad
    assert failures == {}


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
