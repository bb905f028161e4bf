"""The change commands on one live lab, as a user runs them: apply, scale, delete, node, ready.

One lab for the module (iptables mode; the shipped timeline scenarios cover every mode). Each
test leaves the lab as the next expects it; the module ends with ``down`` and a host exactly as
it was before.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netlab.cluster.topology import veth_name
from netlab.kernel import netns
from tests.lab.host import netlab, snapshot

LAB = "chglab"
SCENARIO = """\
apiVersion: netlab.dev/v1alpha1
kind: Lab
metadata: {name: chglab}
spec:
  nodes: 2
  controlPlane: {nodeMonitorGracePeriod: 1s, defaultUnreachableTolerationSeconds: 2}
  checks:
  - {name: web-served, from: pod/client-node-1, to: service/web:http}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    before = snapshot()
    path = tmp_path_factory.mktemp("chg") / "chglab.yaml"
    path.write_text(SCENARIO)
    up = netlab("up", str(path))
    assert up.returncode == 0, up.stderr
    try:
        yield LAB
    finally:
        down = netlab("down", LAB)
        assert down.returncode == 0, down.stderr
    after = snapshot()
    assert after == before, before.diff(after)


def run(*args: str) -> dict[str, Any]:
    proc = netlab(*args, "--json")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def status(lab: str) -> dict[str, Any]:
    return run("status", lab)


def web_pods(lab: str) -> list[dict[str, Any]]:
    return [p for p in status(lab)["pods"] if p["name"].startswith("web-")]


def check_passes(lab: str) -> None:
    proc = netlab("check", lab, "--json")
    assert proc.returncode == 0, proc.stdout


def gone(pod: dict[str, Any]) -> bool:
    """No trace of the pod's sandbox: namespace, /etc/netns files, host-side veth."""
    veth = veth_name(pod["netns"])
    links = netlab("exec", LAB, f"node/{pod['node']}", "--", "ip", "-o", "link").stdout
    return (
        not netns.exists(pod["netns"])
        and not os.path.exists(f"/etc/netns/{pod['netns']}")
        and veth not in links
    )


def bridge(lab: str, node: str) -> tuple[str, str]:
    """cni0's MAC and how the kernel got it (/sys addr_assign_type: 3 is set by hand, which a
    bridge never recomputes from its ports)."""
    out = netlab(
        "exec", lab, f"node/{node}", "--", "cat",
        "/sys/class/net/cni0/address", "/sys/class/net/cni0/addr_assign_type",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    mac, kind = out.stdout.split()
    return mac, kind


def test_scale_down_waits_out_the_grace_period_and_removes_the_sandboxes(lab: str) -> None:
    bridges = {n: bridge(lab, n) for n in ("node-1", "node-2")}
    assert {kind for _, kind in bridges.values()} == {"3"}
    before = web_pods(lab)
    assert len(before) == 2
    data = run("scale", lab, "deployment/web", "1")
    first, last = data["phases"][0], data["phases"][-1]
    assert first["events"][0] == "deployment.apps/default/web scaled 2 -> 1"
    assert [s["node"] for s in first["syncs"]] == ["node-1", "node-2"]
    assert first["convergedSeconds"] > 0 and data["convergedSeconds"] == first["convergedSeconds"]
    assert last["at"] >= 1.0 and len(last["podsRemoved"]) == 1
    assert data["pending"] == []
    after = web_pods(lab)
    assert len(after) == 1
    (removed,) = [p for p in before if p["name"] not in {q["name"] for q in after}]
    assert gone(removed)
    # The pods' gateway keeps its MAC when a port leaves the bridge, as with the CNI plugin.
    assert {n: bridge(lab, n) for n in bridges} == bridges
    check_passes(lab)


def test_scale_up_with_no_wait_then_delete_with_grace(lab: str) -> None:
    data = run("scale", lab, "deployment/web", "3", "--no-wait")
    assert len(data["phases"]) == 1 and len(data["phases"][0]["podsAdded"]) == 2
    pods = web_pods(lab)
    assert len(pods) == 3 and all(netns.exists(p["netns"]) for p in pods)
    victim = pods[0]
    data = run("delete", lab, f"pod/{victim['name']}", "--grace", "30", "--no-wait")
    assert data["phases"][0]["events"][0] == (
        f"pod default/{victim['name']} terminating (grace 30s)"
    )
    assert any("created on" in e for e in data["phases"][0]["events"])  # the replacement
    assert data["pending"] == [f"pod default/{victim['name']} terminating, gone in 30s"]
    shown = {p["name"]: p for p in status(lab)["pods"]}
    assert shown[victim["name"]]["terminating"] is True
    # A second delete with grace 0 removes it at once, as --grace-period=0 --force.
    data = run("delete", lab, f"pod/{victim['name']}", "--grace", "0")
    assert data["phases"][0]["podsRemoved"] == [f"default/{victim['name']}"]
    assert gone(victim)
    assert len(web_pods(lab)) == 3
    check_passes(lab)


def test_apply_adds_a_service_and_rolls_out_a_new_template(lab: str, tmp_path: Path) -> None:
    old = {p["name"] for p in web_pods(lab)}
    manifest = tmp_path / "v2.yaml"
    manifest.write_text(
        textwrap.dedent(
            """\
            apiVersion: v1
            kind: Service
            metadata: {name: web-udp}
            spec:
              selector: {app: web}
              ports: [{name: dns, port: 53, protocol: UDP, targetPort: 8080}]
            ---
            """
        )
        # replicas: 3 as the live Deployment has them now (an applied manifest's replicas win
        # over a kubectl scale, as with kubectl apply)
        + SCENARIO.split("---\n")[1]
        .replace("metadata: {labels: {app: web}}", "metadata: {labels: {app: web, v: two}}")
        .replace("replicas: 2", "replicas: 3")
    )
    data = run("apply", lab, str(manifest))
    events = [e for phase in data["phases"] for e in phase["events"]]
    assert events[:2] == [
        "service/default/web-udp created",
        "deployment.apps/default/web configured",
    ]
    assert sum("created on" in e for e in events) == 3
    new = web_pods(lab)
    assert len(new) == 3 and not old & {p["name"] for p in new}
    assert all(p["terminating"] is False for p in new)
    services = {s["name"] for s in status(lab)["services"]}
    assert "web-udp" in services
    check_passes(lab)


def test_node_down_and_up(lab: str) -> None:
    data = run("node", lab, "node-2", "down")
    events = [e for phase in data["phases"] for e in phase["events"]]
    assert events[0].startswith("node node-2 unreachable")
    assert any(e.startswith("node node-2 NotReady") for e in events)
    assert any("evicted from unreachable node node-2" in e for e in events)
    # node-2 is not synced while it is down; node-1 is.
    assert {s["node"] for phase in data["phases"] for s in phase["syncs"]} == {"node-1"}
    shown = status(lab)
    assert [n["reachable"] for n in shown["nodes"]] == [True, False]
    assert all(p["node"] == "node-1" for p in web_pods(lab) if not p["terminating"])
    data = run("node", lab, "node-2", "up")
    assert data["phases"][0]["events"][0] == "node node-2 Ready: its kubelet posts status again"
    assert all(not p["terminating"] for p in status(lab)["pods"])
    check_passes(lab)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("scale", LAB, "deployment/nope", "1"), 'deployments.apps "nope" not found'),
        (("scale", LAB, "pod/web", "1"), "expected deployment/NAME"),
        (("delete", LAB, "service/web", "--grace", "3"), "grace period applies to deleting a pod"),
        (("node", LAB, "node-9", "down"), "no node node-9 in lab chglab"),
    ],
)
def test_refused_changes_exit_2_and_change_nothing(
    lab: str, args: tuple[str, ...], message: str
) -> None:
    before = status(lab)["pods"]
    proc = netlab(*args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert status(lab)["pods"] == before


def test_an_invalid_manifest_is_refused_with_its_position(lab: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n"
        "  clusterIP: 10.96.0.77\n  selector: {app: web}\n  ports: [{port: 80}]\n"
    )
    proc = netlab("apply", lab, str(bad))
    assert proc.returncode == 2
    assert f"{bad}:1:1" in proc.stderr and "may not change once set" in proc.stderr
