"""Cluster DNS: what CoreDNS answers (:mod:`~netlab.workloads.dns.zone`, pure), the messages it
sends (:mod:`~netlab.workloads.dns.wire`) and the servers the agent runs
(:mod:`~netlab.workloads.dns.server`)."""

from netlab.workloads.dns.server import (
    ClusterDNSHandler,
    Handler,
    SocketFactory,
    UpstreamDNS,
    loadbalance,
    serve_tcp,
    serve_udp,
)
from netlab.workloads.dns.wire import fit, formerr, udp_limit
from netlab.workloads.dns.zone import (
    BUILTIN_NAMESPACES,
    KUBE_DNS,
    KUBE_DNS_HOST,
    Answer,
    ClusterDNS,
    Lookup,
    reverse_zones,
)

__all__ = [
    "BUILTIN_NAMESPACES",
    "KUBE_DNS",
    "KUBE_DNS_HOST",
    "Answer",
    "ClusterDNS",
    "ClusterDNSHandler",
    "Handler",
    "Lookup",
    "SocketFactory",
    "UpstreamDNS",
    "fit",
    "formerr",
    "loadbalance",
    "reverse_zones",
    "serve_tcp",
    "serve_udp",
    "udp_limit",
]
