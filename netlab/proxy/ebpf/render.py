"""What one node's Cilium maps hold for the cluster's Services: pure rendering.

From the shared view of each Service port (:mod:`netlab.proxy.servicemap`, the same one the
other modes render from) come Cilium's frontends, as its agent derives them
(``pkg/loadbalancer``: one per ClusterIP, NodePort address and the ``0.0.0.0`` NodePort
surrogate, LoadBalancer address and external IP), each with its service ID (= reverse-NAT
index), flags, scopes and backend slots, and the backends themselves.

- ClusterIP frontends use the internal traffic policy: with ``Local`` only this node's
  endpoints (``SVC_FLAG_INT_LOCAL_SCOPE``).
- External frontends (NodePort, LoadBalancer, external IP) use the external policy in their
  ``EXT`` scope (``Local``: this node's endpoints, ``SVC_FLAG_EXT_LOCAL_SCOPE``); when the
  internal policy differs they get a second, ``INT`` scope for traffic from inside the cluster
  (``SVC_FLAG_TWO_SCOPES``), as kube-proxy sends pod traffic to a NodePort to every endpoint.
- ``loadBalancerSourceRanges`` apply to LoadBalancer frontends (``SVC_FLAG_SOURCE_RANGE``);
  ClientIP affinity sets ``SVC_FLAG_AFFINITY`` and the timeout.

IDs are allocated as Cilium's agent allocates them (first free from 1) and kept for as long as
the frontend (or backend) exists, so a sync changes only what changed.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass, field
from typing import NamedTuple

from netlab.proxy.servicemap import EndpointInfo, ProxiedService

IPPROTO = {"TCP": 6, "UDP": 17, "SCTP": 132}
PROTO_NAME = {v: k for k, v in IPPROTO.items()}

SCOPE_EXT = 0
SCOPE_INT = 1

# lb4_service->flags
SVC_FLAG_EXTERNAL_IP = 1 << 0
SVC_FLAG_NODEPORT = 1 << 1
SVC_FLAG_EXT_LOCAL_SCOPE = 1 << 2
SVC_FLAG_HOSTPORT = 1 << 3
SVC_FLAG_AFFINITY = 1 << 4
SVC_FLAG_LOADBALANCER = 1 << 5
SVC_FLAG_ROUTABLE = 1 << 6
SVC_FLAG_SOURCE_RANGE = 1 << 7
# lb4_service->flags2
SVC_FLAG_LOCALREDIRECT = 1 << 0
SVC_FLAG_INT_LOCAL_SCOPE = 1 << 4
SVC_FLAG_TWO_SCOPES = 1 << 5

BE_STATE_ACTIVE = 0
BE_STATE_TERMINATING = 1

MAX_SERVICE_ID = 0xFFFF  # rev_nat_index is a __u16
MAX_BACKEND_ID = 0xFFFFFFFF

FrontendKey = tuple[str, int, int]  # address, port, IP protocol number
BackendKey = tuple[str, int, int]


class Backend(NamedTuple):
    id: int
    address: str
    port: int
    proto: int
    state: int = BE_STATE_ACTIVE

    @property
    def key(self) -> BackendKey:
        return (self.address, self.port, self.proto)


class Frontend(NamedTuple):
    """One entry of ``cilium-dbg service list``: a frontend and its backend slots per scope."""

    id: int  # service ID = rev_nat_index
    address: str
    port: int
    proto: int
    type: str  # ClusterIP | NodePort | LoadBalancer | ExternalIPs
    service: str  # namespace/name
    port_name: str
    flags: int
    flags2: int = 0
    affinity_timeout: int = 0
    scopes: tuple[tuple[int, tuple[int, ...]], ...] = ()  # (scope, backend IDs in slot order)
    source_ranges: tuple[str, ...] = ()

    @property
    def key(self) -> FrontendKey:
        return (self.address, self.port, self.proto)

    @property
    def routable(self) -> bool:
        return bool(self.flags & SVC_FLAG_ROUTABLE)


@dataclass
class IdAllocator:
    """Cilium's ID allocation: the lowest free ID, kept while its owner exists."""

    limit: int
    ids: dict[tuple[str, int, int], int] = field(default_factory=dict)
    _used: set[int] = field(default_factory=set)
    _next: int = 1

    def __post_init__(self) -> None:
        self._used = set(self.ids.values())

    def get(self, key: tuple[str, int, int]) -> int:
        found = self.ids.get(key)
        if found is not None:
            return found
        while self._next in self._used:
            self._next += 1
        if self._next > self.limit:
            raise OverflowError(f"no free ID below {self.limit}")
        self.ids[key] = self._next
        self._used.add(self._next)
        return self._next

    def release(self, key: tuple[str, int, int]) -> None:
        found = self.ids.pop(key, None)
        if found is not None:
            self._used.discard(found)
            self._next = min(self._next, found)

    def keep_only(self, keys: set[tuple[str, int, int]]) -> None:
        for key in [k for k in self.ids if k not in keys]:
            self.release(key)


@dataclass(frozen=True)
class NodeInfo:
    name: str
    ip: str
    zone: str = ""  # topology.kubernetes.io/zone: what zone hints are matched against
    # The device addresses that get a NodePort frontend (Cilium's --nodeport-addresses picks
    # them; unset, the device's primary address): None = the node IP.
    nodeport_ips: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Rendered:
    """One Service port's frontends and the backends they use."""

    frontends: tuple[Frontend, ...]
    backends: tuple[Backend, ...]


def _backends(
    eps: tuple[EndpointInfo, ...], proto: int, ids: IdAllocator
) -> tuple[list[Backend], tuple[int, ...]]:
    out = []
    for e in eps:
        key = (e.ip, e.port, proto)
        state = BE_STATE_TERMINATING if e.terminating else BE_STATE_ACTIVE
        out.append(Backend(ids.get(key), e.ip, e.port, proto, state))
    return out, tuple(b.id for b in out)


def render_service_port(
    ps: ProxiedService, node: NodeInfo, service_ids: IdAllocator, backend_ids: IdAllocator
) -> Rendered:
    """The frontends of one Service port as ``node`` programs them."""
    info = ps.info
    proto = IPPROTO[info.spn.protocol]
    cat = ps.categorize()  # topology hints for this node and zone, as kube-proxy's modes
    service = f"{info.spn.namespace}/{info.spn.name}"
    common_flags = SVC_FLAG_AFFINITY if info.session_affinity_client_ip else 0
    timeout = info.sticky_max_age_seconds if info.session_affinity_client_ip else 0

    internal = cat.local if info.internal_policy_local else cat.cluster
    external = cat.local if info.external_policy_local else cat.cluster
    int_flags2 = SVC_FLAG_INT_LOCAL_SCOPE if info.internal_policy_local else 0
    ext_flags = SVC_FLAG_EXT_LOCAL_SCOPE if info.external_policy_local else 0
    two_scopes = info.external_policy_local != info.internal_policy_local

    int_list, int_ids = _backends(internal, proto, backend_ids)
    ext_list: list[Backend] = []
    if external is internal:
        ext_ids = int_ids
    else:
        ext_list, ext_ids = _backends(external, proto, backend_ids)
    backends = {b.key: b for b in (*int_list, *ext_list)}
    # Serving terminating endpoints stay in the backends map (Terminating, in no slot) while
    # active ones take the new connections: a connection's conntrack entry finds its backend
    # by ID, so it goes on being served through the grace period (cilium/cilium v1.18
    # pkg/loadbalancer BackendStateTerminating; bpf/lib/lb.h lb4_local).
    for e in ps.endpoints:
        if e.serving and e.terminating:
            key = (e.ip, e.port, proto)
            if key not in backends:
                backends[key] = Backend(
                    backend_ids.get(key), e.ip, e.port, proto, BE_STATE_TERMINATING
                )

    frontends: list[Frontend] = []

    def add(address: str, port: int, kind: str, flags: int, ranges: tuple[str, ...] = ()) -> None:
        key = (address, port, proto)
        sid = service_ids.get(key)
        if kind == "ClusterIP":
            scopes: tuple[tuple[int, tuple[int, ...]], ...] = ((SCOPE_EXT, int_ids),)
            flags2 = int_flags2
        else:
            flags |= ext_flags
            flags2 = int_flags2
            if two_scopes:
                scopes = ((SCOPE_EXT, ext_ids), (SCOPE_INT, int_ids))
                flags2 |= SVC_FLAG_TWO_SCOPES
            else:
                scopes = ((SCOPE_EXT, ext_ids),)
        frontends.append(  # positional: 10k Services make this a hot path
            Frontend(
                sid,
                address,
                port,
                proto,
                kind,
                service,
                info.spn.port,
                flags | common_flags,
                flags2,
                timeout,
                scopes,
                ranges,
            )
        )

    add(info.cluster_ip, info.port, "ClusterIP", 0)
    if info.node_port:
        add("0.0.0.0", info.node_port, "NodePort", SVC_FLAG_NODEPORT)
        for ip in (node.ip,) if node.nodeport_ips is None else node.nodeport_ips:
            add(ip, info.node_port, "NodePort", SVC_FLAG_NODEPORT | SVC_FLAG_ROUTABLE)
    for ip in info.external_ips:
        add(ip, info.port, "ExternalIPs", SVC_FLAG_EXTERNAL_IP | SVC_FLAG_ROUTABLE)
    ranges = info.load_balancer_source_ranges
    for ip in info.load_balancer_vips:
        lb_flags = SVC_FLAG_LOADBALANCER | SVC_FLAG_ROUTABLE
        if ranges:
            lb_flags |= SVC_FLAG_SOURCE_RANGE
        add(ip, info.port, "LoadBalancer", lb_flags, ranges)
    return Rendered(tuple(frontends), tuple(backends.values()))


def render_node(
    view: list[ProxiedService],
    node: NodeInfo,
    service_ids: IdAllocator | None = None,
    backend_ids: IdAllocator | None = None,
) -> list[Rendered]:
    """Every Service port of ``view``; IDs no frontend or backend uses any more are freed."""
    sids = service_ids if service_ids is not None else IdAllocator(MAX_SERVICE_ID)
    bids = backend_ids if backend_ids is not None else IdAllocator(MAX_BACKEND_ID)
    out = [render_service_port(ps, node, sids, bids) for ps in view]
    sids.keep_only({f.key for r in out for f in r.frontends})
    bids.keep_only({b.key for r in out for b in r.backends})
    return out


@functools.lru_cache(maxsize=1 << 16)
def ip_int(address: str) -> int:
    """An IPv4 address (already validated) as the integer whose big-endian bytes are it."""
    return int.from_bytes(socket.inet_aton(address), "big")
