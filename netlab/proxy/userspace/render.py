"""userspace mode: the iptables rules that send Service traffic to the proxy's own sockets.

The original kube-proxy opened one listening socket per Service port on every node (its "proxy
port") and copied bytes between clients and endpoints, picked round-robin. iptables only steered
traffic to that socket, exactly as ``pkg/proxy/userspace/proxier.go`` wrote it:

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
from dataclasses import dataclass

from netlab.cluster.state import ClusterState
from netlab.proxy.servicemap import ProxiedService, node_view

PORTALS_CONTAINER = "KUBE-PORTALS-CONTAINER"
PORTALS_HOST = "KUBE-PORTALS-HOST"
NODEPORT_CONTAINER = "KUBE-NODEPORT-CONTAINER"
NODEPORT_HOST = "KUBE-NODEPORT-HOST"
NODEPORT_NON_LOCAL = "KUBE-NODEPORT-NON-LOCAL"

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


def proxy_port(service_port: str, used: set[int]) -> int:
    """A deterministic stand-in for the random port the kernel gave the proxy socket."""
    lo, hi = PROXY_PORTS
    span = hi - lo + 1
    seed = int.from_bytes(hashlib.sha256(service_port.encode()).digest()[:4], "big")
    for i in range(span):
        port = lo + (seed + i) % span
        if port not in used:
            used.add(port)
            return port
    raise ValueError("no proxy port left")


@dataclass(frozen=True)
class Portal:
    """One Service port's proxy socket on a node and the addresses that lead to it."""

    service: ProxiedService
    proxy_port: int


def portals(services: list[ProxiedService]) -> list[Portal]:
    used: set[int] = set()
    return [Portal(s, proxy_port(f"{s.info.spn}/{s.info.protocol}", used)) for s in services]


def _common(comment: str, proto: str, port: int, dest: str | None) -> list[str]:
    """iptablesCommonPortalArgs: comment, protocol, port, then the destination."""
    args = ["-m", "comment", "--comment", comment, "-p", proto, "-m", proto, "--dport", str(port)]
    if dest:
        args += ["-d", f"{dest}/32"]
    return args


def render(ports: list[Portal], node_ip: str, *, bootstrap: bool) -> str:
    """``iptables-restore --noflush`` input: every chain flushed and refilled, and on the first
    sync the jumps iptablesInit installs (portals prepended, NodePort chains appended last)."""
    nat_rules: list[str] = []
    filter_rules: list[str] = []
    for portal in ports:
        info = portal.service.info
        spn, proto, pp = str(info.spn), info.protocol, str(portal.proxy_port)
        for address in (info.cluster_ip, *info.load_balancer_vips):
            common = _common(spn, proto, info.port, address)
            nat_rules.append(
                " ".join(["-A", PORTALS_CONTAINER, *common, "-j", "REDIRECT", "--to-ports", pp])
            )
            nat_rules.append(
                " ".join(
                    [
                        "-A",
                        PORTALS_HOST,
                        *common,
                        "-j",
                        "DNAT",
                        "--to-destination",
                        f"{node_ip}:{pp}",
                    ]
                )
            )
        for address in info.external_ips:
            common = _common(spn, proto, info.port, address)
            nat_rules.append(
                " ".join(
                    [
                        "-A",
                        PORTALS_CONTAINER,
                        *common,
                        "-m",
                        "physdev",
                        "!",
                        "--physdev-is-in",
                        "-j",
                        "REDIRECT",
                        "--to-ports",
                        pp,
                    ]
                )
            )
            nat_rules.append(
                " ".join(
                    [
                        "-A",
                        PORTALS_CONTAINER,
                        *common,
                        "-m",
                        "addrtype",
                        "--dst-type",
                        "LOCAL",
                        "-j",
                        "REDIRECT",
                        "--to-ports",
                        pp,
                    ]
                )
            )
            nat_rules.append(
                " ".join(
                    [
                        "-A",
                        PORTALS_HOST,
                        *common,
                        "-m",
                        "addrtype",
                        "--dst-type",
                        "LOCAL",
                        "-j",
                        "DNAT",
                        "--to-destination",
                        f"{node_ip}:{pp}",
                    ]
                )
            )
        if info.node_port:
            common = _common(spn, proto, info.node_port, None)
            nat_rules.append(
                " ".join(["-A", NODEPORT_CONTAINER, *common, "-j", "REDIRECT", "--to-ports", pp])
            )
            nat_rules.append(
                " ".join(
                    [
                        "-A",
                        NODEPORT_HOST,
                        *common,
                        "-j",
                        "DNAT",
                        "--to-destination",
                        f"{node_ip}:{pp}",
                    ]
                )
            )
            filter_rules.append(
                " ".join(
                    [
                        "-A",
                        NODEPORT_NON_LOCAL,
                        *_common(spn, proto, portal.proxy_port, None),
                        "-m",
                        "state",
                        "--state",
                        "NEW",
                        "-j",
                        "ACCEPT",
                    ]
                )
            )
    out = ["*filter", f":{NODEPORT_NON_LOCAL} - [0:0]"]
    if bootstrap:
        out.append(
            f'-I INPUT 1 -m comment --comment "Ensure that non-local NodePort traffic can '
            f'flow" -j {NODEPORT_NON_LOCAL}'
        )
    out += [*filter_rules, "COMMIT", "*nat"]
    out += [
        f":{c} - [0:0]"
        for c in (PORTALS_CONTAINER, PORTALS_HOST, NODEPORT_CONTAINER, NODEPORT_HOST)
    ]
    if bootstrap:
        portals_comment = '"handle ClusterIPs; NOTE: this must be before the NodePort rules"'
        nodeports = (
            '-m addrtype --dst-type LOCAL -m comment --comment "handle service '
            'NodePorts; NOTE: this must be the last rule in the chain"'
        )
        out += [
            f"-I PREROUTING 1 -m comment --comment {portals_comment} -j {PORTALS_CONTAINER}",
            f"-I OUTPUT 1 -m comment --comment {portals_comment} -j {PORTALS_HOST}",
            f"-A PREROUTING {nodeports} -j {NODEPORT_CONTAINER}",
            f"-A OUTPUT {nodeports} -j {NODEPORT_HOST}",
        ]
    out += [*nat_rules, "COMMIT"]
    return "\n".join(out) + "\n"


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
