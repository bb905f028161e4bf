"""Service ports and endpoints as upstream's proxier tests build them, for every mode's tests.

Upstream's tests (``makeTestService``, ``makeTestEndpointSlice``) feed the proxier through its
ServiceMap and EndpointsMap; netlab's renderers take the same data as :class:`ProxiedService`.
"""

from __future__ import annotations

from typing import Any

from netlab.proxy.naming import ServicePortName
from netlab.proxy.servicemap import EndpointInfo, ProxiedService, ServicePortInfo

TEST_NODE_NAME = "test-node"  # upstream's testHostname


def ep(
    ip: str,
    port: int = 80,
    node: str = "",
    *,
    ready: bool = True,
    serving: bool = True,
    terminating: bool = False,
) -> EndpointInfo:
    """One EndpointSlice endpoint; ``node`` is its NodeName ("" for nil)."""
    return EndpointInfo(
        ip=ip,
        port=port,
        node=node,
        pod="",
        is_local=node == TEST_NODE_NAME,
        ready=ready,
        serving=serving,
        terminating=terminating,
    )


def svc(
    ns: str,
    name: str,
    cluster_ip: str,
    *endpoints: EndpointInfo,
    port_name: str = "p80",
    protocol: str = "TCP",
    port: int = 80,
    **fields: Any,
) -> ProxiedService:
    """One service port with its endpoints, as upstream's EndpointsMap holds them.

    endpointsMapFromEndpointInfo keys endpoints by "IP:port" (a later duplicate replaces an
    earlier one) and sorts them with ``byEndpoint`` (string order).
    """
    by_key = {str(e): e for e in endpoints}
    info = ServicePortInfo(
        ServicePortName(ns, name, port_name, protocol), cluster_ip, port, **fields
    )
    return ProxiedService(info, tuple(sorted(by_key.values(), key=str)))
