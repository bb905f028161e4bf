"""netlab.cluster.changes, replicas and lifecycle: a change written into the desired state and what
the controllers make of it, with time passing (pure: no kernel)."""

from __future__ import annotations

import copy
import textwrap

import pytest

from netlab.cluster import changes
from netlab.cluster.build import build_cluster
from netlab.cluster.changes import ChangeRefused
from netlab.cluster.state import ClusterState, PodInfo
from netlab.scenario.changespec import (
    ApplyChange,
    DeleteChange,
    NodeChange,
    ProxyChange,
    ReadyChange,
    ScaleChange,
)
from netlab.scenario.load import parse_scenario
from netlab.scenario.manifests import parse_manifests

T0 = 1_000_000.0
LAB = """\
apiVersion: netlab.dev/v1alpha1
kind: Lab
metadata: {name: demo}
spec:
  dns: {enabled: false}
  controlPlane: {nodeMonitorGracePeriod: 40s, defaultUnreachableTolerationSeconds: 300}
"""


def web(replicas: int = 3, version: str = "v1", strategy: str = "", grace: int = 5) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: web}}}}
          {strategy or "strategy: {}"}
          template:
            metadata: {{labels: {{app: web, version: {version}}}}}
            spec:
              terminationGracePeriodSeconds: {grace}
              containers: [{{name: c, image: x, ports: [{{name: http, containerPort: 8080}}]}}]
        """
    )


SERVICE = """\
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: dns, port: 53, protocol: UDP}]
"""


def cluster(*docs: str) -> ClusterState:
    text = "\n---\n".join([LAB.rstrip("\n"), *(d.rstrip("\n") for d in docs)])
    return build_cluster(parse_scenario(text + "\n", "demo.yaml"))


def pods(state: ClusterState, owner: str = "Deployment/web") -> list[PodInfo]:
    return [p for p in state.pods if p.owner == owner]


def conditions(state: ClusterState, service: str = "default/web") -> dict[str, tuple[bool, ...]]:
    """Each endpoint's pod -> (ready, serving, terminating)."""
    return {
        ep.pod.split("/")[1]: (ep.ready, ep.serving, ep.terminating)
        for sl in state.slices
        if sl.service == service
        for ep in sl.endpoints
    }


def settle(state: ClusterState, now: float) -> list[str]:
    return [line for p in changes.settle(state, now) for line in p.said]


def apply(state: ClusterState, text: str, now: float = T0) -> list[str]:
    said = changes.apply_change(state, parse_manifests(text, "apply.yaml"), now)
    return said + settle(state, now)


# scale and graceful deletion ------------------------------------------------------------------


def test_scale_down_leaves_terminating_endpoints_until_the_grace_period_ends() -> None:
    state = cluster(web(3), SERVICE)
    said = changes.apply_change(state, ScaleChange(name="web", replicas=1), T0)
    assert said == ["deployment.apps/default/web scaled 3 -> 1"]
    said = settle(state, T0)
    assert said[0].startswith("replicaset default/web-") and said[0].endswith("scaled 3 -> 1")
    going = [p for p in pods(state) if p.terminating]
    assert len(going) == 2 and len(pods(state)) == 3
    # Two pods on node-1 and one on node-2: the ReplicaSet deletes where it has most.
    assert {p.node for p in going} == {"node-1"}
    for p in going:
        assert conditions(state)[p.name] == (False, True, True)  # ready, serving, terminating
    assert changes.next_due(state) == T0 + 5
    assert settle(state, T0 + 4.9) == []
    assert [line.endswith("gone (grace period over)") for line in settle(state, T0 + 5)] == [
        True,
        True,
    ]
    assert len(pods(state)) == 1 and changes.next_due(state) is None


def test_deleting_a_deployment_pod_gets_a_replacement_with_a_new_name_and_address() -> None:
    state = cluster(web(2), SERVICE)
    victim = pods(state)[0]
    changes.apply_change(state, DeleteChange(resource="pod", name=victim.name), T0)
    said = settle(state, T0)
    assert said[0].startswith("pod default/web-") and " created on node-" in said[0]
    new = [p for p in pods(state) if not p.terminating and p.name != victim.name]
    assert len(new) == 2
    fresh = [p for p in new if p.name not in {q.name for q in pods(cluster(web(2)))}]
    assert len(fresh) == 1
    assert fresh[0].ip not in {p.ip for p in pods(cluster(web(2)))}  # host-local moves on
    assert fresh[0].name.startswith("web-") and fresh[0].template_hash in fresh[0].name


def test_grace_zero_deletes_at_once_and_a_second_delete_only_shortens() -> None:
    state = cluster(web(1), SERVICE)
    (only,) = pods(state)
    changes.apply_change(state, DeleteChange(resource="pod", name=only.name, grace=30), T0)
    assert changes.apply_change(
        state, DeleteChange(resource="pod", name=only.name, grace=60), T0 + 1
    ) == [f"pod {only.key} is already terminating"]
    changes.apply_change(state, DeleteChange(resource="pod", name=only.name, grace=0), T0 + 2)
    assert only.key not in {p.key for p in state.pods}


def test_unknown_objects_are_refused_with_kubectl_wording() -> None:
    state = cluster(web(1), SERVICE)
    with pytest.raises(ChangeRefused, match=r'deployments\.apps "nope" not found'):
        changes.apply_change(state, ScaleChange(name="nope", replicas=1), T0)
    with pytest.raises(ChangeRefused, match='pods "nope" not found'):
        changes.apply_change(state, DeleteChange(resource="pod", name="nope"), T0)
    with pytest.raises(ChangeRefused, match='nodes "node-9" not found'):
        changes.apply_change(state, NodeChange(node="node-9", up=False), T0)
    with pytest.raises(ChangeRefused, match="part of every lab"):
        changes.apply_change(state, DeleteChange(resource="service", name="kubernetes"), T0)


# rollouts ---------------------------------------------------------------------------------------


def rollout(state: ClusterState, text: str) -> list[tuple[int, int, int]]:
    """Apply, then run pass by pass: (old active, new active, available) after each pass."""
    changes.apply_change(state, parse_manifests(text, "v2.yaml"), T0)
    history = []
    for _ in range(50):
        p = changes.run_controllers(state, T0)
        active = [q for q in pods(state) if not q.terminating]
        new = [q for q in active if q.labels.get("version") == "v2"]
        history.append((len(active) - len(new), len(new), len(active)))
        if not p.changed:
            return history
    raise AssertionError("the rollout never ended")


def test_rolling_update_within_max_surge_and_max_unavailable() -> None:
    state = cluster(web(3), SERVICE)
    surge = "strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}"
    history = rollout(state, web(3, "v2", surge))
    assert history[-1] == (0, 3, 3)
    for old, new, _ in history:
        assert old + new <= 4  # replicas + maxSurge
    # The old pods went one at a time, each after a new one became available.
    assert [old for old, _, _ in history] == sorted((old for old, _, _ in history), reverse=True)
    assert len(history) > 4
    assert all(conditions(state)[p.name][0] for p in pods(state) if not p.terminating)
    assert all(not conditions(state)[p.name][0] for p in pods(state) if p.terminating)


def test_default_strategy_is_25_percent_and_a_new_deployment_starts_at_once() -> None:
    state = cluster(web(4), SERVICE)
    history = rollout(state, web(4, "v2"))
    # maxSurge 25% of 4 = 1 (rounded up), maxUnavailable 25% = 1 (rounded down): the first
    # pass starts one new pod and stops one old one.
    assert history[0] == (3, 1, 4) and history[-1] == (0, 4, 4)
    fresh = cluster(SERVICE)
    said = apply(fresh, web(3))
    assert said[0] == "deployment.apps/default/web created"
    assert len([line for line in said if "created on" in line]) == 3


def test_recreate_waits_for_every_old_pod_to_be_gone() -> None:
    state = cluster(web(2, strategy="strategy: {type: Recreate}"), SERVICE)
    history = rollout(state, web(2, "v2", "strategy: {type: Recreate}"))
    assert history[-1] == (0, 0, 0)  # old ones terminating, new ones not yet made
    assert settle(state, T0 + 5)[-1].startswith("pod default/web-")
    assert [p.labels["version"] for p in pods(state)] == ["v2", "v2"]


def test_pods_that_never_become_ready_stall_the_rollout() -> None:
    state = cluster(web(2), SERVICE)
    unready = web(2, "v2").replace(
        "labels: {app: web, version: v2}",
        'labels: {app: web, version: v2}, annotations: {netlab.dev/ready: "false"}',
    )
    history = rollout(state, unready)
    # maxSurge 25% of 2 = 1 (up), maxUnavailable 25% of 2 = 0 (down): one new pod that never
    # becomes available, and no old pod may go.
    assert history[-1] == (2, 1, 3)


# node lifecycle ---------------------------------------------------------------------------------


def test_node_down_then_not_ready_then_evicted_then_up() -> None:
    state = cluster(web(4), SERVICE)
    on_2 = [p for p in pods(state) if p.node == "node-2"]
    client = state.pod("netlab", "client-node-2")
    said = changes.apply_change(state, NodeChange(node="node-2", up=False), T0)
    assert "nodeMonitorGracePeriod (40s)" in said[0]
    settle(state, T0)
    assert all(conditions(state)[p.name] == (True, True, False) for p in on_2)
    assert changes.next_due(state) == T0 + 40

    said = settle(state, T0 + 40)
    assert said[0].startswith("node node-2 NotReady (Ready Unknown)")
    assert all(conditions(state)[p.name] == (False, False, False) for p in on_2)
    assert not state.node("node-2").schedulable
    assert changes.next_due(state) == T0 + 340

    said = settle(state, T0 + 340)
    evicted = [line for line in said if "evicted" in line]
    assert len(evicted) == 2 and "tolerationSeconds 300" in evicted[0]
    assert all(p.terminating for p in on_2) and not client.terminating
    replacements = [p for p in pods(state) if not p.terminating and p not in on_2]
    assert len(replacements) == 4 and {p.node for p in replacements} == {"node-1"}
    assert all(p in state.pods for p in on_2)  # the kubelet cannot confirm: Terminating
    assert changes.next_due(state) is None

    said = changes.apply_change(state, NodeChange(node="node-2", up=True), T0 + 400)
    assert said[-2:] == [f"pod {p.key} gone (grace period over)" for p in on_2]
    assert all(p not in state.pods for p in on_2)
    assert state.node("node-2").schedulable


def test_a_node_back_within_its_grace_period_changes_nothing_for_services() -> None:
    state = cluster(web(2), SERVICE)
    before = conditions(state)
    changes.apply_change(state, NodeChange(node="node-2", up=False), T0)
    settle(state, T0 + 10)
    changes.apply_change(state, NodeChange(node="node-2", up=True), T0 + 20)
    settle(state, T0 + 60)
    assert conditions(state) == before


# readiness, proxy restart -------------------------------------------------------------------------


def test_ready_change_and_proxy_restart() -> None:
    state = cluster(web(1), SERVICE)
    (only,) = pods(state)
    said = changes.apply_change(state, ReadyChange(name=only.name, ready=False), T0)
    assert said == [f"pod/{only.key} readiness probe fails"]
    assert changes.run_controllers(state, T0).services == {"default/web"}
    assert conditions(state)[only.name] == (False, False, False)
    said = changes.apply_change(state, ProxyChange(conntrack_cleanup=False), T0)
    assert said == ["kube-proxy restarted (conntrackCleanup false)"]
    assert state.lab.proxy.conntrack_cleanup is False


# apply -------------------------------------------------------------------------------------------


def test_apply_creates_a_service_and_keeps_what_an_update_does_not_set() -> None:
    state = cluster(web(1))
    assert apply(state, SERVICE)[0] == "service/default/web created"
    svc = state.service("default", "web")
    assert svc.cluster_ip and all(p.node_port for p in svc.ports)
    # Re-applied without a port and with another selector: the ClusterIP and the remaining
    # port's NodePort stay, the EndpointSlice follows the selector.
    changed = SERVICE.replace(", {name: dns, port: 53, protocol: UDP}", "").replace(
        "selector: {app: web}", "selector: {app: other}"
    )
    assert apply(state, changed) == ["service/default/web configured"]
    after = state.service("default", "web")
    assert after.cluster_ip == svc.cluster_ip
    assert [p.node_port for p in after.ports] == [svc.ports[0].node_port]
    assert conditions(state) == {}
    # As ClusterIP it has no NodePorts any more.
    assert apply(state, changed.replace("type: NodePort", "type: ClusterIP"))
    assert [p.node_port for p in state.service("default", "web").ports] == [0]


def test_apply_refuses_what_the_api_server_refuses() -> None:
    state = cluster(web(1), SERVICE)
    ip = state.service("default", "web").cluster_ip
    other = "10.96.0.99" if ip != "10.96.0.99" else "10.96.0.98"
    with pytest.raises(ChangeRefused, match="may not change once set") as exc:
        apply(state, SERVICE.replace("type: NodePort", f"type: NodePort\n  clusterIP: {other}"))
    assert exc.value.origin is not None and exc.value.origin.file == "apply.yaml"
    port = state.service("default", "web").ports[0].node_port
    taken = SERVICE.replace("name: web}", "name: web2}").replace(
        "targetPort: http}", f"targetPort: http, nodePort: {port}}}"
    )
    with pytest.raises(ChangeRefused, match=f"{port}: provided port is already allocated"):
        apply(state, taken)
    with pytest.raises(ChangeRefused, match='namespaces "team" not found'):
        apply(state, SERVICE.replace("name: web}", "name: web, namespace: team}"))
    with pytest.raises(ChangeRefused, match=r"spec\.selector: Invalid value"):
        apply(
            state,
            web(1)
            .replace("{matchLabels: {app: web}}", "{matchLabels: {app: x}}")
            .replace("labels: {app: web,", "labels: {app: x,"),
        )
    assert state.service("default", "web").cluster_ip == ip  # nothing was changed


def test_apply_pods_labels_change_spec_does_not() -> None:
    bare = "apiVersion: v1\nkind: Pod\nmetadata: {name: solo, labels: {app: web}}\nspec:\n"
    bare += "  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]\n"
    state = cluster(SERVICE)
    said = apply(state, bare)
    assert said[0].startswith("pod/default/solo created on node-")
    assert "solo" in conditions(state)
    assert apply(state, bare.replace("{app: web}", "{app: gone}")) == [
        "pod/default/solo configured (labels)"
    ]
    assert conditions(state) == {}
    with pytest.raises(ChangeRefused, match="pod updates may not change fields"):
        apply(state, bare.replace("8080", "9090"))


def test_apply_prune_deletes_the_scenarios_objects_the_file_no_longer_lists() -> None:
    state = cluster(web(1), SERVICE)
    change = parse_manifests(SERVICE, "keep.yaml", prune=True)
    said = changes.apply_change(state, change, T0)
    assert 'deployment.apps "default/web" pruned' in said
    settle(state, T0)
    assert all(p.terminating for p in pods(state))
    assert {f"{s.meta.namespace}/{s.meta.name}" for s in state.services} == {
        "default/kubernetes",
        "default/web",
    }


def test_a_refused_apply_changes_nothing() -> None:
    state = cluster(web(1), SERVICE)
    before = copy.deepcopy(state)
    bad = ApplyChange(services=(), pods=(), deployments=())
    changes.apply_change(state, bad, T0)
    with pytest.raises(ChangeRefused):
        apply(state, SERVICE.replace("name: web}", "name: web, namespace: nope}"))
    assert state == before


def test_pods_bound_to_a_lost_node_stay_pending_instead_of_looping() -> None:
    pinned = web(2).replace(
        "terminationGracePeriodSeconds: 5",
        "nodeName: node-2\n      terminationGracePeriodSeconds: 5",
    )
    state = cluster(pinned, SERVICE)
    assert {p.node for p in pods(state)} == {"node-2"}
    changes.apply_change(state, NodeChange(node="node-2", up=False), T0)
    settle(state, T0 + 40)
    said = settle(state, T0 + 340)
    assert sum("evicted" in line for line in said) == 2
    assert not any("created on" in line for line in said)  # the replacements are Pending
    assert changes.next_due(state) is None
    changes.apply_change(state, NodeChange(node="node-2", up=True), T0 + 400)
    said = settle(state, T0 + 400)
    assert sum("created on node-2" in line for line in said) == 2
