"""The lab's network as a plan: namespaces, bridges, veth pairs, addresses, routes, sysctls.

Pure data derived from the cluster state. The kernel layer builds it (``kernel.build``), and the
benchmark turns the very same plan into a shell script of ``ip`` commands for its baseline.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

from netlab.cluster.podfiles import node_resolver, pod_hosts, pod_resolver
from netlab.cluster.state import ClusterState, PodInfo
from netlab.scenario.labschema import lab_name_problem

FABRIC_BRIDGE = "fabric"
NODE_BRIDGE = "cni0"
TAG_PREFIX = "netlab"


def tag(lab: str, role: str) -> str:
    """The ownership tag written into every namespace the lab makes (as ``lo``'s alias)."""
    return f"{TAG_PREFIX} lab={lab} role={role}"


def parse_tag(alias: str) -> tuple[str, str] | None:
    parts = alias.split()
    if len(parts) != 3 or parts[0] != TAG_PREFIX:
        return None
    fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    if "lab" not in fields or "role" not in fields or lab_name_problem(fields["lab"]):
        return None
    return fields["lab"], fields["role"]


def veth_name(key: str) -> str:
    """Host-side veth name: ``veth`` + 8 hex digits, as the CNI bridge plugin names them."""
    return "veth" + hashlib.sha1(key.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class NetnsPlan:
    name: str
    role: str  # "fabric" | "node" | "external" | "pod"


@dataclass(frozen=True)
class BridgePlan:
    netns: str
    name: str
    address: str = ""  # "ip/prefix" or ""
    alias: str = ""


@dataclass(frozen=True)
class VethPlan:
    """A veth pair: ``name`` (with ``address``) in ``netns``; ``peer`` in ``peer_netns``."""

    netns: str
    name: str
    peer_netns: str
    peer: str
    address: str = ""
    peer_master: str = ""  # bridge in peer_netns the peer joins
    peer_alias: str = ""  # readable name for the 15-character peer, e.g. the pod's name
    # Hairpin on the bridge port (the CNI bridge plugin's hairpinMode): with br_netfilter a pod
    # that reaches itself through a Service is DNATed back to itself and *bridged* out of the
    # port it came in on, which a bridge only does with hairpin mode set.
    peer_hairpin: bool = False


@dataclass(frozen=True)
class RoutePlan:
    netns: str
    dst: str  # "default" or a prefix
    gateway: str


@dataclass(frozen=True)
class AddressPlan:
    netns: str
    dev: str
    address: str


@dataclass(frozen=True)
class SysctlPlan:
    netns: str
    key: str  # dotted, e.g. net.ipv4.ip_forward
    value: str


@dataclass(frozen=True)
class FilePlan:
    """A file under /etc/netns/<netns>/, which `ip netns exec` binds over /etc/<name>."""

    netns: str
    name: str  # "resolv.conf" | "hosts"
    content: str


@dataclass
class TopologyPlan:
    lab: str
    namespaces: list[NetnsPlan] = field(default_factory=list)
    bridges: list[BridgePlan] = field(default_factory=list)
    veths: list[VethPlan] = field(default_factory=list)
    addresses: list[AddressPlan] = field(default_factory=list)
    routes: list[RoutePlan] = field(default_factory=list)
    sysctls: list[SysctlPlan] = field(default_factory=list)
    files: list[FilePlan] = field(default_factory=list)

    def pods(self) -> list[NetnsPlan]:
        return [n for n in self.namespaces if n.role == "pod"]


def plan(state: ClusterState, node_sysctls: dict[str, str] | None = None) -> TopologyPlan:
    """The whole lab network. ``node_sysctls`` are the proxy mode's own (e.g. route_localnet)."""
    lab = state.lab.name
    net = ipaddress.IPv4Network(state.lab.network.node_network)
    plen = net.prefixlen
    p = TopologyPlan(lab=lab)
    p.namespaces.append(NetnsPlan(state.fabric_netns, "fabric"))
    p.bridges.append(BridgePlan(state.fabric_netns, FABRIC_BRIDGE, alias="node network"))

    for node in state.nodes:
        p.namespaces.append(NetnsPlan(node.netns, "node"))
        p.veths.append(
            VethPlan(
                netns=node.netns,
                name="eth0",
                address=f"{node.ip}/{plen}",
                peer_netns=state.fabric_netns,
                peer=veth_name(node.netns),
                peer_master=FABRIC_BRIDGE,
                peer_alias=node.name,
            )
        )
        prefix = ipaddress.IPv4Network(node.pod_cidr).prefixlen
        p.bridges.append(BridgePlan(node.netns, NODE_BRIDGE, f"{node.gateway}/{prefix}"))
        for other in state.nodes:
            if other.name != node.name:
                p.routes.append(RoutePlan(node.netns, other.pod_cidr, other.ip))
        p.routes.append(RoutePlan(node.netns, "default", state.external.router_ip))
        sysctls = {
            "net.ipv4.ip_forward": "1",
            # Bridged pod-to-pod replies must cross iptables to be un-DNATed.
            "net.bridge.bridge-nf-call-iptables": "1",
            **(node_sysctls or {}),
        }
        p.sysctls += [SysctlPlan(node.netns, k, v) for k, v in sysctls.items()]

    ext = state.external
    p.namespaces.append(NetnsPlan(ext.netns, "external"))
    p.veths.append(
        VethPlan(
            netns=ext.netns,
            name="eth0",
            address=f"{ext.router_ip}/{plen}",
            peer_netns=state.fabric_netns,
            peer=veth_name(ext.netns),
            peer_master=FABRIC_BRIDGE,
            peer_alias="external",
        )
    )
    for address in ext.clients.values():
        if address != ext.router_ip:
            p.addresses.append(AddressPlan(ext.netns, "lo", f"{address}/32"))
    for server in state.lab.external_servers:
        p.addresses.append(AddressPlan(ext.netns, "lo", f"{server.address}/32"))
    # The stand-in load balancer spreads flows over its next hops by ports too (L4 hash).
    p.sysctls.append(SysctlPlan(ext.netns, "net.ipv4.fib_multipath_hash_policy", "1"))
    upstream = node_resolver(state).render()
    p.files.append(FilePlan(ext.netns, "resolv.conf", upstream))

    _add_pods(p, state, state.pods)
    for node in state.nodes:
        p.files.append(FilePlan(node.netns, "resolv.conf", upstream))
    return p


def pods_plan(state: ClusterState, pods: list[PodInfo]) -> TopologyPlan:
    """What adding ``pods`` to a running lab takes: their namespaces, veths, routes, files."""
    p = TopologyPlan(lab=state.lab.name)
    _add_pods(p, state, pods)
    return p


def _add_pods(p: TopologyPlan, state: ClusterState, pods: list[PodInfo]) -> None:
    nodes = {n.name: n for n in state.nodes}
    for pod in pods:
        if pod.host_network:
            continue
        node = nodes[pod.node]
        prefix = ipaddress.IPv4Network(node.pod_cidr).prefixlen
        p.namespaces.append(NetnsPlan(pod.netns, "pod"))
        p.veths.append(
            VethPlan(
                netns=pod.netns,
                name="eth0",
                address=f"{pod.ip}/{prefix}",
                peer_netns=node.netns,
                peer=veth_name(pod.netns),
                peer_master=NODE_BRIDGE,
                peer_alias=pod.key,
                peer_hairpin=True,
            )
        )
        p.routes.append(RoutePlan(pod.netns, "default", node.gateway))
        p.files += pod_files(state, pod)


def pod_files(state: ClusterState, pod: PodInfo) -> list[FilePlan]:
    """A pod's resolv.conf (for its dnsPolicy) and its kubelet-managed hosts file."""
    return [
        FilePlan(pod.netns, "resolv.conf", pod_resolver(state, pod).render()),
        FilePlan(pod.netns, "hosts", pod_hosts(state, pod).render()),
    ]
