"""netlab.cluster.topology: the lab network as a plan (namespaces, bridges, veths, routes)."""

from __future__ import annotations

import re

import pytest

from netlab.cluster.build import build_cluster
from netlab.cluster.state import ClusterState
from netlab.cluster.topology import (
    FABRIC_BRIDGE,
    NODE_BRIDGE,
    AddressPlan,
    BridgePlan,
    NetnsPlan,
    RoutePlan,
    SysctlPlan,
    TopologyPlan,
    VethPlan,
    parse_tag,
    plan,
    tag,
    veth_name,
)
from netlab.scenario.load import parse_scenario

SCENARIO = """\
apiVersion: netlab.dev/v1alpha1
kind: Lab
metadata: {name: topo}
spec:
  dns: {enabled: false}
  external:
    clients: [{name: external}, {name: far, address: 203.0.113.7}]
---
apiVersion: v1
kind: Namespace
metadata: {name: a-rather-long-namespace-name}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: node-2
  containers: [{name: c, image: x}]
---
apiVersion: v1
kind: Pod
metadata: {name: a-pod-with-a-very-long-name-indeed, namespace: a-rather-long-namespace-name}
spec:
  nodeName: node-1
  containers: [{name: c, image: x}]
"""

STATE: ClusterState = build_cluster(parse_scenario(SCENARIO, "topo.yaml"))
LOCALNET = {"net.ipv4.conf.all.route_localnet": "1"}
LONG_NETNS = "topo-a-rather-long-namespace-name.a-pod-with-a-very-long-name-indeed"


@pytest.fixture(name="p")
def fixture_plan() -> TopologyPlan:
    return plan(STATE, LOCALNET)


def test_namespaces_with_roles(p: TopologyPlan) -> None:
    assert p.lab == "topo"
    assert p.namespaces == [
        NetnsPlan("topo-fabric", "fabric"),
        NetnsPlan("topo-node-1", "node"),
        NetnsPlan("topo-node-2", "node"),
        NetnsPlan("topo-external", "external"),
        NetnsPlan("topo-web", "pod"),
        NetnsPlan(LONG_NETNS, "pod"),
        NetnsPlan("topo-netlab.client-node-1", "pod"),
        NetnsPlan("topo-netlab.client-node-2", "pod"),
    ]
    assert [n.name for n in p.pods()] == [
        "topo-web",
        LONG_NETNS,
        "topo-netlab.client-node-1",
        "topo-netlab.client-node-2",
    ]


def test_host_network_pods_get_no_namespace(p: TopologyPlan) -> None:
    apiserver = STATE.pod("kube-system", "kube-apiserver-node-1")
    assert apiserver.host_network
    assert apiserver.netns == "topo-node-1"
    assert [n.role for n in p.namespaces if n.name == "topo-node-1"] == ["node"]


def test_bridges(p: TopologyPlan) -> None:
    assert (FABRIC_BRIDGE, NODE_BRIDGE) == ("fabric", "cni0")
    assert p.bridges == [
        BridgePlan("topo-fabric", "fabric", alias="node network"),
        BridgePlan("topo-node-1", "cni0", "10.244.1.1/24"),
        BridgePlan("topo-node-2", "cni0", "10.244.2.1/24"),
    ]


def test_every_interface_name_fits_the_kernel_limit(p: TopologyPlan) -> None:
    names = [b.name for b in p.bridges]
    names += [v.name for v in p.veths] + [v.peer for v in p.veths]
    assert names
    assert all(1 <= len(n) <= 15 for n in names), [n for n in names if len(n) > 15]


def test_veth_names(p: TopologyPlan) -> None:
    assert all(v.name == "eth0" for v in p.veths)
    for v in p.veths:
        assert re.fullmatch("veth[0-9a-f]{8}", v.peer), v.peer
        assert v.peer == veth_name(v.netns)
    peers = [(v.peer_netns, v.peer) for v in p.veths]
    assert len(set(peers)) == len(peers)
    assert veth_name("topo-web") == veth_name("topo-web")
    assert veth_name("topo-web") != veth_name("topo-web2")
    assert plan(STATE, LOCALNET) == p


def test_nodes_and_external_join_the_fabric(p: TopologyPlan) -> None:
    fabric = [v for v in p.veths if v.peer_netns == "topo-fabric"]
    assert [(v.netns, v.address, v.peer_master, v.peer_alias, v.peer_hairpin) for v in fabric] == [
        ("topo-node-1", "192.168.56.11/24", "fabric", "node-1", False),
        ("topo-node-2", "192.168.56.12/24", "fabric", "node-2", False),
        ("topo-external", "192.168.56.100/24", "fabric", "external", False),
    ]


def test_pods_join_cni0_with_hairpin(p: TopologyPlan) -> None:
    pods = [v for v in p.veths if v.peer_master == "cni0"]
    assert pods == [
        VethPlan(
            netns="topo-web",
            name="eth0",
            peer_netns="topo-node-2",
            peer=veth_name("topo-web"),
            address="10.244.2.2/24",
            peer_master="cni0",
            peer_alias="default/web",
            peer_hairpin=True,
        ),
        VethPlan(
            netns=LONG_NETNS,
            name="eth0",
            peer_netns="topo-node-1",
            peer=veth_name(LONG_NETNS),
            address="10.244.1.2/24",
            peer_master="cni0",
            peer_alias="a-rather-long-namespace-name/a-pod-with-a-very-long-name-indeed",
            peer_hairpin=True,
        ),
        VethPlan(
            netns="topo-netlab.client-node-1",
            name="eth0",
            peer_netns="topo-node-1",
            peer=veth_name("topo-netlab.client-node-1"),
            address="10.244.1.3/24",
            peer_master="cni0",
            peer_alias="netlab/client-node-1",
            peer_hairpin=True,
        ),
        VethPlan(
            netns="topo-netlab.client-node-2",
            name="eth0",
            peer_netns="topo-node-2",
            peer=veth_name("topo-netlab.client-node-2"),
            address="10.244.2.3/24",
            peer_master="cni0",
            peer_alias="netlab/client-node-2",
            peer_hairpin=True,
        ),
    ]


def test_routes(p: TopologyPlan) -> None:
    assert p.routes == [
        RoutePlan("topo-node-1", "10.244.2.0/24", "192.168.56.12"),
        RoutePlan("topo-node-1", "default", "192.168.56.100"),
        RoutePlan("topo-node-2", "10.244.1.0/24", "192.168.56.11"),
        RoutePlan("topo-node-2", "default", "192.168.56.100"),
        RoutePlan("topo-web", "default", "10.244.2.1"),
        RoutePlan(LONG_NETNS, "default", "10.244.1.1"),
        RoutePlan("topo-netlab.client-node-1", "default", "10.244.1.1"),
        RoutePlan("topo-netlab.client-node-2", "default", "10.244.2.1"),
    ]


def test_routes_with_three_nodes() -> None:
    text = "apiVersion: netlab.dev/v1alpha1\nkind: Lab\nmetadata: {name: t3}\nspec: {nodes: 3}\n"
    p = plan(build_cluster(parse_scenario(text, "t3.yaml")))
    assert [(r.dst, r.gateway) for r in p.routes if r.netns == "t3-node-2"] == [
        ("10.244.1.0/24", "192.168.56.11"),
        ("10.244.3.0/24", "192.168.56.13"),
        ("default", "192.168.56.100"),
    ]


def test_sysctls(p: TopologyPlan) -> None:
    expected = []
    for node in ("topo-node-1", "topo-node-2"):
        expected += [
            SysctlPlan(node, "net.ipv4.ip_forward", "1"),
            SysctlPlan(node, "net.bridge.bridge-nf-call-iptables", "1"),
            SysctlPlan(node, "net.ipv4.conf.all.route_localnet", "1"),
        ]
    # The stand-in load balancer (the external namespace) hashes flows over ports too.
    expected.append(SysctlPlan("topo-external", "net.ipv4.fib_multipath_hash_policy", "1"))
    assert p.sysctls == expected


def test_sysctls_without_node_sysctls_and_overrides() -> None:
    assert [(s.netns, s.key, s.value) for s in plan(STATE).sysctls] == [
        ("topo-node-1", "net.ipv4.ip_forward", "1"),
        ("topo-node-1", "net.bridge.bridge-nf-call-iptables", "1"),
        ("topo-node-2", "net.ipv4.ip_forward", "1"),
        ("topo-node-2", "net.bridge.bridge-nf-call-iptables", "1"),
        ("topo-external", "net.ipv4.fib_multipath_hash_policy", "1"),
    ]
    # A proxy mode's own value for a key wins over the default.
    p = plan(STATE, {"net.bridge.bridge-nf-call-iptables": "0"})
    assert [s.value for s in p.sysctls if s.key == "net.bridge.bridge-nf-call-iptables"] == [
        "0",
        "0",
    ]


def test_external_client_extra_addresses_on_lo(p: TopologyPlan) -> None:
    assert p.addresses == [AddressPlan("topo-external", "lo", "203.0.113.7/32")]


def test_default_lab_has_no_extra_addresses() -> None:
    text = "apiVersion: netlab.dev/v1alpha1\nkind: Lab\nmetadata: {name: t}\n"
    assert plan(build_cluster(parse_scenario(text, "t.yaml"))).addresses == []


# Tags -------------------------------------------------------------------------------------------


def test_tag_round_trip() -> None:
    assert tag("topo", "node") == "netlab lab=topo role=node"
    for role in ("fabric", "node", "external", "pod"):
        assert parse_tag(tag("my-lab", role)) == ("my-lab", role)


@pytest.mark.parametrize(
    "alias",
    [
        "",
        "node network",
        "default/web",
        "netlab",
        "netlab lab=topo",
        "netlab lab=topo role=node extra",
        "other lab=topo role=node",
        "netlab lab=topo kind=node",
        "netlab lab=topo role",
        "netlab name=topo role=node",
    ],
)
def test_parse_tag_rejects_foreign_aliases(alias: str) -> None:
    assert parse_tag(alias) is None
