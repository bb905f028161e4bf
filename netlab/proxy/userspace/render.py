"""userspace mode: the iptables rules that send Service traffic to the proxy's own sockets.

The original kube-proxy opened one listening socket per Service port on every node (its "proxy
port") and copied bytes between clients and endpoints, picked round-robin. iptables only steered
traffic to that socket, exactly as kubernetes/kubernetes ``pkg/proxy/userspace/proxier.go`` wrote
it (v1.25, the last release that had it; ``iptablesInit``, ``openPortal`` and the
``iptables*PortalArgs`` builders, which the functions below follow one for one):

- nat KUBE-PORTALS-CONTAINER (from PREROUTING, i.e. pods): ``-d ClusterIP --dport P
  -j REDIRECT --to-ports <proxy port>``;
- nat KUBE-PORTALS-HOST (from OUTPUT, the node itself): the same but ``-j DNAT --to-destination
  <node IP>:<proxy port>``, because REDIRECT of local traffic answers from the wrong address;
- nat KUBE-NODEPORT-CONTAINER / KUBE-NODEPORT-HOST, jumped to last with ``--dst-type LOCAL``;
- filter KUBE-NODEPORT-NON-LOCAL: ACCEPT new connections to the proxy ports of NodePorts.

Pure rendering; no traffic policies, no source ranges, no REJECT: none of that existed then.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from netlab.cluster.state import ClusterState
from netlab.proxy.iptables.render import LineBuffer
from netlab.proxy.iptables.restore import make_chain_line
from netlab.proxy.servicemap import ProxiedService, node_view

PORTALS_CONTAINER = "KUBE-PORTALS-CONTAINER"
PORTALS_HOST = "KUBE-PORTALS-HOST"
NODEPORT_CONTAINER = "KUBE-NODEPORT-CONTAINER"
NODEPORT_HOST = "KUBE-NODEPORT-HOST"
NODEPORT_NON_LOCAL = "KUBE-NODEPORT-NON-LOCAL"
NAT_CHAINS = (PORTALS_CONTAINER, PORTALS_HOST, NODEPORT_CONTAINER, NODEPORT_HOST)

# The kernel's ephemeral range, where a port bound to 0 lands (what kube-proxy asked for).
PROXY_PORTS = (32768, 60999)


@dataclass(frozen=True)
class UserspaceProxy:
    """One proxy socket: where it listens and where it sends."""

    netns: str
    node: str
    port: int
    protocol: str
    service: str  # ns/name:port
    endpoints: list[tuple[str, int]]
    affinity_seconds: int = 0  # 0 = round-robin; else ClientIP affinity timeout


def port_seed(service_port: str) -> int:
    """Where a Service port's proxy port is first looked for (a stable hash of its name)."""
    return int.from_bytes(hashlib.sha256(service_port.encode()).digest()[:4], "big")


def _probe(seed: int, used: set[int]) -> int:
    """A deterministic stand-in for the random port the kernel gave the proxy socket: the
    first free one from the seed on."""
    lo, hi = PROXY_PORTS
    span = hi - lo + 1
    for i in range(span):
        port = lo + (seed + i) % span
        if port not in used:
            used.add(port)
            return port
    raise ValueError("no proxy port left")


def assign_ports(seeds: Iterable[int]) -> list[int]:
    """Each Service port's proxy port, given their seeds in view order (:func:`portals`): what
    :func:`_probe` gives each in turn, written out because a partial sync redoes it for every
    Service port (10k: a few milliseconds)."""
    lo, hi = PROXY_PORTS
    span = hi - lo + 1
    used: set[int] = set()
    out: list[int] = []
    for seed in seeds:
        port = lo + seed % span
        tries = 0
        while port in used:
            port = port + 1 if port < hi else lo
            tries += 1
            if tries == span:
                raise ValueError("no proxy port left")
        used.add(port)
        out.append(port)
    return out


def portal_name(service: ProxiedService) -> str:
    return f"{service.info.spn}/{service.info.protocol}"


@dataclass(frozen=True)
class Portal:
    """One Service port's proxy socket on a node and the addresses that lead to it."""

    service: ProxiedService
    proxy_port: int


def portals(services: list[ProxiedService]) -> list[Portal]:
    ports = assign_ports(port_seed(portal_name(s)) for s in services)
    return [Portal(s, port) for s, port in zip(services, ports, strict=True)]


# fmt: off
def _common_portal_args(
    dest_ip: str | None,
    add_physical_interface_match: bool,
    add_dst_local_match: bool,
    dest_port: int,
    protocol: str,
    service: str,
) -> list[str]:
    """iptablesCommonPortalArgs: the args common to from-container and from-host rules."""
    args = [
        "-m", "comment",
        "--comment", service,
        "-p", protocol,
        "-m", protocol,
        "--dport", str(dest_port),
    ]

    if dest_ip:
        args += ["-d", f"{dest_ip}/32"]  # utilproxy.ToCIDR

    if add_physical_interface_match:
        args += ["-m", "physdev", "!", "--physdev-is-in"]

    if add_dst_local_match:
        args += ["-m", "addrtype", "--dst-type", "LOCAL"]

    return args


def _container_portal_args(
    dest_ip: str | None,
    add_physical_interface_match: bool,
    add_dst_local_match: bool,
    dest_port: int,
    protocol: str,
    proxy_port: int,
    service: str,
) -> list[str]:
    """iptablesContainerPortalArgs: the proxy listens on 0.0.0.0, so traffic from containers is
    REDIRECTed (to the primary address of the incoming interface)."""
    args = _common_portal_args(
        dest_ip, add_physical_interface_match, add_dst_local_match, dest_port, protocol, service)
    args += ["-j", "REDIRECT", "--to-ports", str(proxy_port)]
    return args


def _host_portal_args(
    dest_ip: str | None,
    add_dst_local_match: bool,
    dest_port: int,
    protocol: str,
    host_ip: str,
    proxy_port: int,
    service: str,
) -> list[str]:
    """iptablesHostPortalArgs (and, with no ``dest_ip``, iptablesHostNodePortArgs): REDIRECT of
    local traffic would answer from the wrong address, so it is DNATed to the host IP."""
    args = _common_portal_args(dest_ip, False, add_dst_local_match, dest_port, protocol, service)
    args += ["-j", "DNAT", "--to-destination", f"{host_ip}:{proxy_port}"]
    return args


def _non_local_node_port_args(proxy_port: int, protocol: str, service: str) -> list[str]:
    """iptablesNonLocalNodePortArgs."""
    args = _common_portal_args(None, False, False, proxy_port, protocol, service)
    args += ["-m", "state", "--state", "NEW", "-j", "ACCEPT"]
    return args


def _iptables_init() -> dict[str, list[str]]:
    """iptablesInit: the jumps from the built-in chains, in its order. Portals are prepended
    (``-I CHAIN 1``), the NodePort chains appended, so they come last."""
    portals = ["-m", "comment", "--comment",
               '"handle ClusterIPs; NOTE: this must be before the NodePort rules"']
    nodeports = ["-m", "addrtype", "--dst-type", "LOCAL",
                 "-m", "comment", "--comment",
                 '"handle service NodePorts; NOTE: this must be the last rule in the chain"']
    non_local = ["-m", "comment", "--comment", '"Ensure that non-local NodePort traffic can flow"']
    nat, flt = LineBuffer(), LineBuffer()
    nat.write("-I", "PREROUTING", "1", portals, "-j", PORTALS_CONTAINER)
    nat.write("-I", "OUTPUT", "1", portals, "-j", PORTALS_HOST)
    nat.write("-A", "PREROUTING", nodeports, "-j", NODEPORT_CONTAINER)
    nat.write("-A", "OUTPUT", nodeports, "-j", NODEPORT_HOST)
    flt.write("-I", "INPUT", "1", non_local, "-j", NODEPORT_NON_LOCAL)
    return {"nat": nat.lines, "filter": flt.lines}


@dataclass(frozen=True)
class PortalRules:
    """One Service port's rules, as (chain, rule) pairs in the order openPortal adds them."""

    nat: tuple[tuple[str, str], ...]
    filter: tuple[tuple[str, str], ...]


def render(ports: list[Portal], node_ip: str, *, bootstrap: bool) -> str:
    """``iptables-restore --noflush`` input: every chain flushed and refilled, and on the first
    sync the jumps iptablesInit installs (portals prepended, NodePort chains appended last)."""
    return restore_text([portal_rules(p, node_ip) for p in ports], bootstrap=bootstrap)


def restore_text(shares: Iterable[PortalRules], *, bootstrap: bool) -> str:
    """The full sync's input from each Service port's rules, in view order."""
    nat: list[str] = []
    filt: list[str] = []
    for share in shares:
        nat += [f"-A {chain} {rule}" for chain, rule in share.nat]
        filt += [f"-A {chain} {rule}" for chain, rule in share.filter]
    init = _iptables_init() if bootstrap else {"nat": [], "filter": []}
    out = ["*filter", make_chain_line(NODEPORT_NON_LOCAL), *init["filter"], *filt, "COMMIT"]
    out += ["*nat", *(make_chain_line(c) for c in NAT_CHAINS), *init["nat"], *nat, "COMMIT"]
    return "\n".join(out) + "\n"


def portal_rules(portal: Portal, node_ip: str) -> PortalRules:
    """openPortal for one Service port: openOnePortal for the ClusterIP, load-balancer and
    external IPs, then openNodePort. (openPortal opens external IPs before load-balancer IPs;
    netlab writes them after. Each rule matches its own destination, so no verdict depends on
    that order.)"""
    nat_rules, filter_rules = LineBuffer(), LineBuffer()
    info = portal.service.info
    service, protocol, proxy_port = str(info.spn), info.protocol, portal.proxy_port

    # openOnePortal, for portals that are not external: the ClusterIP and LB ingress IPs.
    for portal_ip in (info.cluster_ip, *info.load_balancer_vips):
        # Handle traffic from containers.
        nat_rules.write(
            "-A", PORTALS_CONTAINER,
            _container_portal_args(
                portal_ip, False, False, info.port, protocol, proxy_port, service))
        # Handle traffic from the host.
        nat_rules.write(
            "-A", PORTALS_HOST,
            _host_portal_args(
                portal_ip, False, info.port, protocol, node_ip, proxy_port, service))

    # openOnePortal, for external IPs (portal.isExternal).
    for portal_ip in info.external_ips:
        # Handle traffic from containers (not from a bridge port).
        nat_rules.write(
            "-A", PORTALS_CONTAINER,
            _container_portal_args(
                portal_ip, True, False, info.port, protocol, proxy_port, service))
        # ... and local traffic to it.
        nat_rules.write(
            "-A", PORTALS_CONTAINER,
            _container_portal_args(
                portal_ip, False, True, info.port, protocol, proxy_port, service))
        # Handle traffic from the host to it, if it is a local address.
        nat_rules.write(
            "-A", PORTALS_HOST,
            _host_portal_args(
                portal_ip, True, info.port, protocol, node_ip, proxy_port, service))

    # openNodePort
    if info.node_port:
        # Handle traffic from containers.
        nat_rules.write(
            "-A", NODEPORT_CONTAINER,
            _container_portal_args(
                None, False, False, info.node_port, protocol, proxy_port, service))
        # Handle traffic from the host (iptablesHostNodePortArgs).
        nat_rules.write(
            "-A", NODEPORT_HOST,
            _host_portal_args(
                None, False, info.node_port, protocol, node_ip, proxy_port, service))
        # Handle traffic not local to the host.
        filter_rules.write(
            "-A", NODEPORT_NON_LOCAL,
            _non_local_node_port_args(proxy_port, protocol, service))
    return PortalRules(_split(nat_rules.lines), _split(filter_rules.lines))


def _split(lines: list[str]) -> tuple[tuple[str, str], ...]:
    """``-A CHAIN RULE`` lines as (chain, rule) pairs."""
    return tuple((w[1], w[2]) for w in (line.split(" ", 2) for line in lines))


# fmt: on


def proxies(state: ClusterState) -> list[UserspaceProxy]:
    """Every node's proxy sockets. The userspace proxier knew no traffic policies: every ready
    endpoint is used from every node."""
    out = []
    for node in state.nodes:
        for portal in portals(node_view(state, node.name)):
            info = portal.service.info
            ready = [(e.ip, e.port) for e in portal.service.endpoints if e.ready]
            out.append(
                UserspaceProxy(
                    netns=node.netns,
                    node=node.name,
                    port=portal.proxy_port,
                    protocol=info.spn.protocol,
                    service=str(info.spn),
                    endpoints=ready,
                    affinity_seconds=info.sticky_max_age_seconds
                    if info.session_affinity_client_ip
                    else 0,
                )
            )
    return out
