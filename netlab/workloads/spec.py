"""What the agent must serve, derived from the cluster state (pure data, no kernel)."""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.cluster.podfiles import pod_resolver
from netlab.cluster.state import ClusterState
from netlab.proxy.userspace.render import UserspaceProxy, proxies

HEALTHZ_PORT = 10256  # kube-proxy's --healthz-bind-address default port
METRICS_ADDRESS, METRICS_PORT = "127.0.0.1", 10249  # kube-proxy's --metrics-bind-address default
# The modes in which a kube-proxy runs on every node (and serves its ports).
KUBE_PROXY_MODES = ("iptables", "nftables", "ipvs", "userspace")
DNS_PORT = 53
RELOAD_REQUEST = "reload-request"  # the lab writes a nonce here, then sends the agent SIGHUP
RELOADED = "reloaded"  # the agent answers {"nonce", "ok", "error"} here


@dataclass(frozen=True)
class Listener:
    """A pod's (or external server's) port, answered like agnhost netexec."""

    netns: str
    hostname: str
    address: str  # "" = all addresses
    port: int
    protocol: str  # "TCP" | "UDP"


@dataclass(frozen=True)
class DnsServer:
    """A DNS server: the cluster's (a CoreDNS pod) or the outside world's upstream."""

    netns: str
    role: str  # "cluster" | "upstream"
    address: str = ""
    port: int = 53
    upstream: str = ""  # "ip:port", for the cluster role


@dataclass(frozen=True)
class HealthServer:
    """kube-proxy's HTTP servers on a node: its health checks and its metrics port."""

    netns: str
    node: str
    port: int
    kind: str  # "service" (a healthCheckNodePort) | "proxy" (healthz) | "metrics"
    namespace: str = ""
    name: str = ""
    address: str = ""  # "" = every address
    mode: str = ""  # what /proxyMode answers (kind "metrics")


@dataclass
class AgentSpec:
    listeners: list[Listener] = field(default_factory=list)
    dns: list[DnsServer] = field(default_factory=list)
    health: list[HealthServer] = field(default_factory=list)
    proxies: list[UserspaceProxy] = field(default_factory=list)
    upstream_records: dict[str, list[str]] = field(default_factory=dict)


def build_spec(state: ClusterState, mode: str = "iptables") -> AgentSpec:
    """Every socket the lab's agent serves: pods, cluster DNS, the outside world, health, and in
    userspace mode the proxy sockets on every node."""
    spec = AgentSpec()
    if mode == "userspace":
        spec.proxies = proxies(state)
    for pod in state.pods:
        for port in pod.ports:
            if pod.runs == "coredns" and port.container_port == DNS_PORT:
                continue  # served as DNS below
            for proto in ("TCP", "UDP"):
                spec.listeners.append(
                    Listener(
                        pod.netns,
                        pod.name,
                        pod.ip if pod.host_network else "",
                        port.container_port,
                        proto,
                    )
                )
        if pod.runs == "coredns":
            # kubeadm's Corefile: "forward . /etc/resolv.conf", the pod's own (dnsPolicy Default:
            # the node's resolver).
            servers = pod_resolver(state, pod).nameservers or (state.external.router_ip,)
            spec.dns.append(DnsServer(pod.netns, "cluster", upstream=f"{servers[0]}:{DNS_PORT}"))
    ext = state.external
    for server in state.lab.external_servers:
        spec.upstream_records[server.name] = [server.address]
        for number in server.ports:
            for proto in ("TCP", "UDP"):
                spec.listeners.append(
                    Listener(ext.netns, server.name, server.address, number, proto)
                )
    spec.dns.append(DnsServer(ext.netns, "upstream", address=ext.router_ip))
    for node in state.nodes:
        spec.health.append(HealthServer(node.netns, node.name, HEALTHZ_PORT, "proxy"))
        if mode in KUBE_PROXY_MODES:
            spec.health.append(
                HealthServer(
                    node.netns,
                    node.name,
                    METRICS_PORT,
                    "metrics",
                    address=METRICS_ADDRESS,
                    mode=mode,
                )
            )
        for svc in state.services:
            if svc.health_check_node_port:
                spec.health.append(
                    HealthServer(
                        node.netns,
                        node.name,
                        svc.health_check_node_port,
                        "service",
                        svc.meta.namespace,
                        svc.meta.name,
                    )
                )
    # One number declared for TCP and UDP on two container ports is still one socket of each.
    spec.listeners = list(dict.fromkeys(spec.listeners))
    return spec
