"""Every shipped scenario is a test: ``netlab run`` must pass it and leave the host as it was."""

from __future__ import annotations

import glob
import json
import os

import pytest

from tests.lab.host import REPO, HostSnapshot, netlab

SCENARIOS = sorted(glob.glob(os.path.join(REPO, "scenarios", "*.yaml")))


@pytest.mark.parametrize("path", SCENARIOS, ids=[os.path.basename(p) for p in SCENARIOS])
def test_shipped_scenario_passes(path: str, clean_host: HostSnapshot) -> None:
    proc = netlab("run", path, "--json")
    data = json.loads(proc.stdout)
    failed = [(c["name"], c["failures"]) for c in data["checks"] if not c["passed"]]
    assert proc.returncode == 0, (failed, proc.stderr)
    assert data["passed"] is True
    assert data["summary"]["failed"] == 0
    assert data["summary"]["checks"] == len(data["checks"]) >= 4
    assert data["kept"] is False


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
    assert all(c["derived"] for c in data["checks"])
