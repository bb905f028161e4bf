"""What Kubernetes promises a connection, pinned case by case: externalTrafficPolicy Local from
inside the cluster, trafficDistribution's topology hints, Services kube-proxy ignores."""

from __future__ import annotations

import textwrap

import pytest

from netlab.checks import resolve
from netlab.cluster.build import build_cluster
from netlab.cluster.state import ClusterState, Endpoint
from netlab.errors import ScenarioError
from netlab.proxy.iptables.render import IptablesOptions
from netlab.proxy.iptables.render import render as iptables_render
from netlab.proxy.naming import ServicePortName
from netlab.proxy.nftables.render import NftablesOptions
from netlab.proxy.nftables.render import build as nft_build
from netlab.proxy.servicemap import (
    EndpointInfo,
    ServicePortInfo,
    categorize,
    node_view,
    topology_mode,
)
from netlab.scenario.checkspec import ConnectCheck, ConnectExpect, Destination, Source
from netlab.scenario.load import parse_scenario

MODES = ("iptables", "nftables", "ipvs", "userspace")

# web-a on node-1, web-b on node-2; "local" is a NodePort and LoadBalancer with eTP Local over
# both; "lonely" has its only endpoint on node-1.
SCENARIO = textwrap.dedent("""\
    apiVersion: netlab.dev/v1alpha1
    kind: Lab
    metadata: {name: ex}
    spec:
      nodes: 3
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: web-a, labels: {app: web, only: a}}
    spec:
      nodeName: node-1
      containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: web-b, labels: {app: web}}
    spec:
      nodeName: node-2
      containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: local}
    spec:
      type: LoadBalancer
      externalTrafficPolicy: Local
      externalIPs: [203.0.113.7]
      selector: {app: web}
      ports: [{port: 80, targetPort: http, nodePort: 30090}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: lonely}
    spec:
      type: NodePort
      externalTrafficPolicy: Local
      selector: {only: a}
      ports: [{port: 80, targetPort: http, nodePort: 30091}]
    """)
STATE = build_cluster(parse_scenario(SCENARIO, "ex.yaml"))


def reached(
    state: ClusterState, source: str, dest: Destination, mode: str = "iptables"
) -> list[str]:
    kind, _, rest = source.partition("/")
    ns, _, name = rest.rpartition("/")
    spec = ConnectCheck(
        name="c", source=Source(kind, name, ns), destination=dest, expect=ConnectExpect()
    )
    r = resolve(state, spec, mode)
    assert r.expected is not None
    return sorted(b.pod for b in r.expected)


def node_port(service: str, node: str) -> Destination:
    return Destination(service, via="nodePort", node=node)


# externalTrafficPolicy: Local ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_from_outside_only_the_dialled_nodes_endpoints(mode: str) -> None:
    everyone = ["web-a", "web-b"]
    want = everyone if mode == "userspace" else ["web-a"]
    assert reached(STATE, "external", node_port("local", "node-1"), mode) == want
    assert reached(STATE, "external", node_port("local", "node-2"), mode) == (
        everyone if mode == "userspace" else ["web-b"]
    )
    # node-3 has no local endpoint: nothing answers (a DROP, or IPVS's astray reply).
    assert reached(STATE, "external", node_port("local", "node-3"), mode) == (
        everyone if mode == "userspace" else []
    )
    # Another node's process is outside too: the CNI-less node IP is neither LOCAL nor a pod.
    assert reached(STATE, "node/node-2", node_port("local", "node-1"), mode) == want


@pytest.mark.parametrize("mode", ("iptables", "nftables"))
def test_pods_and_nodes_are_short_circuited_to_every_endpoint(mode: str) -> None:
    """KUBE-EXT "pod traffic for ... external destinations" (-s podCIDR) and "route LOCAL
    traffic for ... external destinations" (--src-type LOCAL) jump to the Cluster chain."""
    every = ["web-a", "web-b"]
    for source in ("pod/netlab/client-node-1", "node/node-1", "pod/netlab/client-node-3"):
        lb = Destination("local", via="loadBalancer")
        assert reached(STATE, source, lb, mode) == every, source
        assert reached(STATE, source, Destination("local", via="externalIP"), mode) == every
    assert reached(STATE, "pod/netlab/client-node-1", node_port("local", "node-1"), mode) == every
    assert reached(STATE, "node/node-3", node_port("local", "node-3"), mode) == every
    assert reached(STATE, "node/node-3", node_port("lonely", "node-3"), mode) == ["web-a"]


def test_ipvs_uses_local_endpoints_for_every_client() -> None:
    """IPVS has no short-circuit: its external virtual servers hold the node's endpoints, and
    all of them only where the node has none (kubernetes#97081)."""
    lb = Destination("local", via="loadBalancer")
    assert reached(STATE, "pod/netlab/client-node-1", lb, "ipvs") == ["web-a"]
    assert reached(STATE, "node/node-2", lb, "ipvs") == ["web-b"]
    assert reached(STATE, "pod/netlab/client-node-3", lb, "ipvs") == ["web-a", "web-b"]
    assert reached(STATE, "node/node-3", node_port("local", "node-3"), "ipvs") == ["web-a", "web-b"]


def test_the_rules_say_so() -> None:
    """The renderers hold the short-circuit rules the expectation relies on."""
    node = STATE.nodes[2]
    view = node_view(STATE, node.name)
    text = iptables_render(view, IptablesOptions(node.ip, "10.244.0.0/16")).restore_text(
        bootstrap=True
    )
    assert '"pod traffic for default/local external destinations" -s 10.244.0.0/16' in text
    assert '"route LOCAL traffic for default/local external destinations"' in text
    nft = nft_build(view, NftablesOptions(node.ip, "10.244.0.0/16", "10.96.0.0/12"), "kube-proxy")
    tx = nft.transaction(first=True)
    assert "ip saddr 10.244.0.0/16 goto service-" in tx
    assert 'comment "short-circuit pod traffic"' in tx


# Topology hints (trafficDistribution) ----------------------------------------------------------

ZONES = textwrap.dedent("""\
    apiVersion: netlab.dev/v1alpha1
    kind: Lab
    metadata: {name: zones}
    spec:
      nodes:
      - {name: node-1, labels: {topology.kubernetes.io/zone: zone-a}}
      - {name: node-2, labels: {topology.kubernetes.io/zone: zone-a}}
      - {name: node-3, labels: {topology.kubernetes.io/zone: zone-b}}
      - {name: node-4}
      featureGates: {PreferSameTrafficDistribution: true}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      replicas: 3
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
    """)


def zones_lab(distribution: str) -> ClusterState:
    svc = textwrap.dedent(f"""\
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: web}}
        spec:
          {distribution}
          selector: {{app: web}}
          ports: [{{port: 80, targetPort: 8080}}]
        """)
    return build_cluster(parse_scenario(ZONES + svc, "zones.yaml"))


def pods_on(state: ClusterState, *nodes: str) -> list[str]:
    return sorted(p.name for p in state.pods if p.labels.get("app") == "web" and p.node in nodes)


def web_endpoints(state: ClusterState) -> dict[str, Endpoint]:
    return {
        e.node_name: e for sl in state.slices if sl.service == "default/web" for e in sl.endpoints
    }


def test_endpoint_slice_hints() -> None:
    state = zones_lab("trafficDistribution: PreferClose")
    eps = {
        e.node_name: e for sl in state.slices if sl.service == "default/web" for e in sl.endpoints
    }
    assert (eps["node-1"].zone, eps["node-1"].for_zones, eps["node-1"].for_nodes) == (
        "zone-a",
        ["zone-a"],
        [],
    )
    same_node = zones_lab("trafficDistribution: PreferSameNode")
    eps = {
        e.node_name: e
        for sl in same_node.slices
        if sl.service == "default/web"
        for e in sl.endpoints
    }
    assert (eps["node-3"].for_zones, eps["node-3"].for_nodes) == (["zone-b"], ["node-3"])
    none = zones_lab("")
    assert all(not e.for_zones for sl in none.slices for e in sl.endpoints)


@pytest.mark.parametrize("mode", ("iptables", "nftables", "ipvs"))
def test_prefer_same_zone(mode: str) -> None:
    # The 3 replicas spread over node-1, node-2, node-3; node-4 has no zone label.
    for value in ("PreferClose", "PreferSameZone"):
        state = zones_lab(f"trafficDistribution: {value}")
        assert pods_on(state, "node-1", "node-2", "node-3") == pods_on(
            state, "node-1", "node-2", "node-3", "node-4"
        )
        zone_a = pods_on(state, "node-1", "node-2")
        assert len(zone_a) == 2
        web = Destination("web")
        assert reached(state, "pod/netlab/client-node-1", web, mode) == zone_a
        assert reached(state, "pod/netlab/client-node-3", web, mode) == pods_on(state, "node-3")
        # Without a zone label, no hint matches this node's zone: every endpoint.
        assert reached(state, "pod/netlab/client-node-4", web, mode) == pods_on(
            state, "node-1", "node-2", "node-3"
        )


def test_prefer_same_node() -> None:
    state = zones_lab("trafficDistribution: PreferSameNode")
    web = Destination("web")
    assert reached(state, "pod/netlab/client-node-2", web) == pods_on(state, "node-2")
    # node-4 holds no endpoint: no node hint is for it, so zone hints decide, and node-4 has
    # no zone: every endpoint.
    assert reached(state, "pod/netlab/client-node-4", web) == pods_on(
        state, "node-1", "node-2", "node-3"
    )


def test_userspace_knows_no_topology() -> None:
    state = zones_lab("trafficDistribution: PreferClose")
    assert len(reached(state, "pod/netlab/client-node-1", Destination("web"), "userspace")) == 3


def _ep(
    ip: str, zones: tuple[str, ...] = (), nodes: tuple[str, ...] = (), ready: bool = True
) -> EndpointInfo:
    return EndpointInfo(ip, 80, "", "ns/p", False, ready=ready, zone_hints=zones, node_hints=nodes)


def test_topology_mode_needs_every_ready_endpoint_hinted() -> None:
    """topologyModeFromHints: one ready endpoint without a hint disables topology; unready
    endpoints do not count."""
    a, b = _ep("10.0.0.1", ("a",)), _ep("10.0.0.2", ("b",))
    assert topology_mode((a, b), "n1", "a") == "PreferSameZone"
    assert topology_mode((a, b, _ep("10.0.0.3")), "n1", "a") == ""
    assert topology_mode((a, b, _ep("10.0.0.3", ready=False)), "n1", "a") == "PreferSameZone"
    assert topology_mode((a, b), "n1", "c") == ""  # no endpoint for this zone: all of them
    n = _ep("10.0.0.4", ("a",), ("n1",))
    assert topology_mode((n, _ep("10.0.0.5", ("a",), ("n2",))), "n1", "a") == "PreferSameNode"
    info = ServicePortInfo(ServicePortName("ns", "s", "", "TCP"), "10.96.0.5", 80)
    cat = categorize(info, (a, b), node="n1", zone="a")
    assert [str(e) for e in cat.cluster] == ["10.0.0.1:80"]
    assert [str(e) for e in cat.all_reachable] == ["10.0.0.1:80"]


def test_node_labels_are_validated() -> None:
    bad = ZONES.replace("{topology.kubernetes.io/zone: zone-b}", "{'-bad': zone-b}")
    with pytest.raises(ScenarioError) as err:
        parse_scenario(bad, "zones.yaml")
    text = "\n".join(d.format() for d in err.value.diagnostics)
    assert "spec.nodes[2].labels" in text


# Services kube-proxy does not proxy ---------------------------------------------------------


def test_a_service_labelled_headless_is_not_proxied() -> None:
    text = SCENARIO + textwrap.dedent("""\
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: hidden
          labels: {service.kubernetes.io/headless: ""}
        spec:
          selector: {app: web}
          ports: [{port: 80, targetPort: http}]
        """)
    state = build_cluster(parse_scenario(text, "ex.yaml"))
    assert state.service("default", "hidden").cluster_ip  # it has a ClusterIP...
    names = {ps.info.spn.name for ps in node_view(state, "node-1")}
    assert "hidden" not in names and "local" in names  # ...that no proxy mode programs


def test_unmodelled_fields_are_never_taken_silently() -> None:
    """PreferDualStack and the topology-mode annotation get a warning saying what the lab does
    instead (IPv6 and RequireDualStack are refused, as a single-stack cluster refuses them);
    trafficDistribution without zone labels says every endpoint is used."""
    text = textwrap.dedent("""\
        apiVersion: v1
        kind: Service
        metadata:
          name: s
          annotations: {service.kubernetes.io/topology-mode: Auto}
        spec:
          ipFamilyPolicy: PreferDualStack
          trafficDistribution: PreferClose
          selector: {a: b}
          ports: [{port: 80}]
        """)
    warnings = {d.path: d.message for d in parse_scenario(text, "s.yaml").warnings}
    assert "SingleStack with one IPv4 ClusterIP" in warnings["spec.ipFamilyPolicy"]
    assert "every endpoint is used" in warnings["spec.trafficDistribution"]
    assert "not modelled" in warnings["metadata.annotations.service.kubernetes.io/topology-mode"]
    refused = text.replace("PreferDualStack", "RequireDualStack")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(refused, "s.yaml")
    assert [d.path for d in info.value.diagnostics] == ["spec.ipFamilyPolicy"]
    # With zone labels on the nodes, trafficDistribution is modelled: no warning.
    zoned = ZONES.split("---")[0] + "---\n" + text
    assert "spec.trafficDistribution" not in {
        d.path for d in parse_scenario(zoned, "s.yaml").warnings
    }
