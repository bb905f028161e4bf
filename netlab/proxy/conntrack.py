"""kube-proxy's stale UDP conntrack cleanup, decided (pure; the lab deletes through the kernel).

UDP has no connection to close: a client that keeps sending from one source port keeps matching
the conntrack entry its first datagram made, DNATed to the endpoint chosen then, even after that
endpoint is gone. So after every sync in which a UDP Service's endpoints changed
(``UpdateEndpointsMapResult.ConntrackCleanupRequired``), kube-proxy lists the node's conntrack
table and deletes each UDP entry whose original destination is a Service frontend (ClusterIP,
load-balancer IP or external IP and port, or a NodePort) and whose reply source (address and
port) is not one of that Service's serving endpoints: flows to an endpoint that went away or
changed its port, and flows from the time the Service had no endpoint at all (their reply source
is the Service address itself). The next datagram then finds no entry and is load-balanced afresh.

This is kubernetes/kubernetes ``pkg/proxy/conntrack/cleanup.go`` (``CleanStaleEntries``, v1.33),
called from the iptables, ipvs and nftables proxiers. Services without any serving endpoint are
left alone, and traffic policies, topology and terminating state play no part: a serving
terminating endpoint keeps its flows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from netlab.cluster.state import ClusterState, EndpointSlice
from netlab.proxy.servicemap import is_proxied, service_ports


class Tracked(Protocol):
    """A conntrack entry: its protocol and its original and reply tuples
    (source, destination, source port, destination port)."""

    @property
    def proto(self) -> str: ...
    @property
    def original(self) -> tuple[str, str, int, int]: ...
    @property
    def reply(self) -> tuple[str, str, int, int]: ...


T = TypeVar("T", bound=Tracked)


@dataclass(frozen=True)
class UdpFrontends:
    """Each UDP frontend with its Service's serving endpoint addresses."""

    # (service IP, port) -> the (IP, port) of each serving endpoint
    by_address: dict[tuple[str, int], frozenset[tuple[str, int]]]
    by_node_port: dict[int, frozenset[tuple[str, int]]]


def udp_frontends(state: ClusterState) -> UdpFrontends:
    """``serviceIPEndpoints`` and ``serviceNodePortEndpoints`` of CleanStaleEntries."""
    by_address: dict[tuple[str, int], frozenset[tuple[str, int]]] = {}
    by_node_port: dict[int, frozenset[tuple[str, int]]] = {}
    slices: dict[str, list[EndpointSlice]] = {}
    for sl in state.slices:
        slices.setdefault(sl.service, []).append(sl)
    for svc in state.services:
        if not is_proxied(svc) or not any(p.protocol == "UDP" for p in svc.ports):
            continue
        mine = slices.get(f"{svc.meta.namespace}/{svc.meta.name}", [])
        for info in service_ports(svc):
            if info.spn.protocol != "UDP":
                continue
            serving = frozenset(
                (ep.address, port.port)
                for sl in mine
                for port in sl.ports
                if (port.name, port.protocol) == (info.spn.port, "UDP")
                for ep in sl.endpoints
                if ep.serving
            )
            if not serving:
                continue  # a Service without endpoints needs no cleanup
            for ip in (info.cluster_ip, *info.load_balancer_vips, *info.external_ips):
                by_address[(ip, info.port)] = serving
            if info.node_port:
                by_node_port[info.node_port] = serving
    return UdpFrontends(by_address, by_node_port)


def stale_entries(entries: list[T], frontends: UdpFrontends) -> list[T]:
    """The UDP entries CleanStaleEntries deletes (filterForIPPortNAT, filterForPortNAT)."""
    doomed: list[T] = []
    for entry in entries:
        if entry.proto != "UDP":
            continue
        orig_dst, orig_port = entry.original[1], entry.original[3]
        reply_src = (entry.reply[0], entry.reply[2])
        serving = frontends.by_address.get((orig_dst, orig_port))
        stale = serving is not None and reply_src not in serving
        serving = frontends.by_node_port.get(orig_port)
        stale = stale or (serving is not None and reply_src not in serving)
        if stale:
            doomed.append(entry)
    return doomed


def cleanup_required(state: ClusterState, changed: set[str]) -> bool:
    """``ConntrackCleanupRequired``: a Service whose endpoints changed has a UDP port."""
    for svc in state.services:
        if f"{svc.meta.namespace}/{svc.meta.name}" in changed and any(
            p.protocol == "UDP" for p in svc.ports
        ):
            return True
    return False
