"""What every proxy mode sees: Service ports and their endpoints, from one node's point of view.

This mirrors kube-proxy's shared tracking (``pkg/proxy``: ServicePortMap, EndpointsMap and
``CategorizeEndpoints``), so each mode's renderer only decides how to express the same facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netlab.cluster.state import ClusterState, EndpointSlice
from netlab.proxy.naming import ServicePortName
from netlab.scenario.k8s import Service

# Services carrying this label belong to another proxy (KEP-2241); kube-proxy ignores them.
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
# v1.IsHeadlessService: the EndpointSlice controller puts it on a headless Service's slices; a
# Service that carries it itself is left alone by kube-proxy as if it were headless.
HEADLESS_LABEL = "service.kubernetes.io/headless"


@dataclass(frozen=True)
class EndpointInfo:
    ip: str
    port: int
    node: str
    pod: str
    is_local: bool
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    zone_hints: tuple[str, ...] = ()  # ZoneHints(): the slice's hints.forZones
    node_hints: tuple[str, ...] = ()  # NodeHints(): hints.forNodes

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePortInfo:
    spn: ServicePortName
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_vips: tuple[str, ...] = ()
    load_balancer_source_ranges: tuple[str, ...] = ()
    session_affinity_client_ip: bool = False
    sticky_max_age_seconds: int = 10800
    external_policy_local: bool = False
    internal_policy_local: bool = False
    health_check_node_port: int = 0

    @property
    def protocol(self) -> str:
        return self.spn.proto

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.load_balancer_vips)

    @property
    def uses_cluster_endpoints(self) -> bool:
        """BaseServicePortInfo.UsesClusterEndpoints: iTP Cluster, or externally accessible at all.

        Even with eTP Local an externally accessible port needs its Cluster endpoints: the
        KUBE-EXT chain's "pod traffic" and "route LOCAL traffic" short-circuits jump to KUBE-SVC.
        """
        return not self.internal_policy_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        return self.internal_policy_local or (
            self.externally_accessible and self.external_policy_local
        )


@dataclass(frozen=True)
class ProxiedService:
    info: ServicePortInfo
    endpoints: tuple[EndpointInfo, ...]
    node: str = ""  # the node whose view this is (what topology hints are matched against)
    zone: str = ""  # that node's topology.kubernetes.io/zone label

    def categorize(self) -> Categorized:
        """CategorizeEndpoints for this node: its name and zone decide topology hints."""
        return categorize(self.info, self.endpoints, node=self.node, zone=self.zone)


def is_proxied(service: Service) -> bool:
    """kube-proxy skips headless and ExternalName Services, and those labelled for another
    proxy or as headless: its informers watch Services and EndpointSlices with the selector
    ``!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless``
    (cmd/kube-proxy/app/server.go), in every mode."""
    if service.type == "ExternalName" or service.headless or not service.cluster_ip:
        return False
    labels = service.meta.labels
    return SERVICE_PROXY_NAME_LABEL not in labels and HEADLESS_LABEL not in labels


def service_ports(service: Service) -> list[ServicePortInfo]:
    out = []
    for p in service.ports:
        spn = ServicePortName(service.meta.namespace, service.meta.name, p.name, p.protocol)
        out.append(
            ServicePortInfo(
                spn=spn,
                cluster_ip=service.cluster_ip,
                port=p.port,
                node_port=p.node_port,
                external_ips=tuple(service.external_ips),
                load_balancer_vips=tuple(service.load_balancer_ingress),
                load_balancer_source_ranges=tuple(service.load_balancer_source_ranges)
                if service.load_balancer_ingress
                else (),
                session_affinity_client_ip=service.session_affinity == "ClientIP",
                sticky_max_age_seconds=service.session_affinity_timeout,
                external_policy_local=service.external_traffic_policy == "Local",
                internal_policy_local=service.internal_traffic_policy == "Local",
                health_check_node_port=service.health_check_node_port,
            )
        )
    return out


def _ip_key(ep: EndpointInfo) -> str:
    """Endpoints sort by their ``IP:port`` string, as upstream's endpointslicecache sorts them
    (so 10.0.0.10 precedes 10.0.0.9 and each gets the --probability line it gets on a node)."""
    return str(ep)


def node_zone(state: ClusterState, node: str) -> str:
    """The node's topology.kubernetes.io/zone label ("" for none, or an unknown node)."""
    return next((n.zone for n in state.nodes if n.name == node), "")


def port_key(spn: ServicePortName) -> tuple[str, str, str, str]:
    """Where a Service port sits in a node's view: ``namespace/name:port/protocol`` order."""
    return (spn.namespace, spn.name, spn.port, spn.protocol)


def service_view(
    service: Service, slices: Iterable[EndpointSlice], node: str, zone: str = ""
) -> list[ProxiedService]:
    """One Service's ports with their endpoints (from ``slices``, the Service's EndpointSlices),
    marked local or not for ``node``: the Service's share of :func:`node_view`, in its order.

    An endpoint in several slices counts once (the one in the slice first by name: upstream's
    endpointSliceCache merges a Service's slices in map order, so any fixed order is as
    faithful, and a fixed one keeps a node's view independent of the order slices were
    written in); endpoints sort by ``IP:port``.
    """
    if not is_proxied(service):
        return []
    slices = sorted(slices, key=lambda sl: sl.name)
    out: list[ProxiedService] = []
    for info in service_ports(service):
        seen: dict[str, EndpointInfo] = {}
        for sl in slices:
            for port in sl.ports:
                if port.name != info.spn.port or port.protocol != info.spn.protocol:
                    continue
                for ep in sl.endpoints:
                    e = EndpointInfo(
                        ip=ep.address,
                        port=port.port,
                        node=ep.node_name,
                        pod=ep.pod,
                        is_local=ep.node_name == node,
                        ready=ep.ready,
                        serving=ep.serving,
                        terminating=ep.terminating,
                        zone_hints=tuple(ep.for_zones),
                        node_hints=tuple(ep.for_nodes),
                    )
                    seen.setdefault(str(e), e)
        out.append(ProxiedService(info, tuple(sorted(seen.values(), key=_ip_key)), node, zone))
    out.sort(key=lambda s: port_key(s.info.spn))
    return out


def service_key(service: Service) -> str:
    """``namespace/name``: how EndpointSlices name their Service (``EndpointSlice.service``)."""
    return f"{service.meta.namespace}/{service.meta.name}"


def slices_by_service(state: ClusterState) -> dict[str, list[EndpointSlice]]:
    """Every EndpointSlice under its ``namespace/name`` Service, in one pass."""
    out: dict[str, list[EndpointSlice]] = {}
    for sl in state.slices:  # one pass, not one scan per Service (10k Services: seconds)
        out.setdefault(sl.service, []).append(sl)
    return out


def node_view(state: ClusterState, node: str) -> list[ProxiedService]:
    """Every proxied Service port with its endpoints, marked local or not for ``node``.

    Ordered by ``namespace/name:port`` so rule dumps read in a stable order (kube-proxy's own
    order comes from a Go map and is random).
    """
    out: list[ProxiedService] = []
    zone = node_zone(state, node)
    by_service = slices_by_service(state)
    for svc in state.services:
        out += service_view(svc, by_service.get(service_key(svc), ()), node, zone)
    out.sort(key=lambda s: port_key(s.info.spn))
    return out


@dataclass(frozen=True)
class Categorized:
    cluster: tuple[EndpointInfo, ...]
    local: tuple[EndpointInfo, ...]
    all_reachable: tuple[EndpointInfo, ...]
    has_any: bool


def topology_mode(endpoints: tuple[EndpointInfo, ...], node: str, zone: str) -> str:
    """topologyModeFromHints (pkg/proxy/topology.go, PreferSameTrafficDistribution on):
    PreferSameNode if every ready endpoint has a node hint and one is for this node; else
    PreferSameZone if every ready endpoint has a zone hint and one is for this node's zone;
    else "" (every endpoint). No fallback happens after this choice."""
    ready = [e for e in endpoints if e.ready]
    if not ready:
        return ""
    if all(e.node_hints for e in ready) and any(node in e.node_hints for e in ready):
        return "PreferSameNode"
    if all(e.zone_hints for e in ready) and any(zone in e.zone_hints for e in ready):
        return "PreferSameZone"
    return ""


def available_for_topology(ep: EndpointInfo, mode: str, node: str, zone: str) -> bool:
    """availableForTopology."""
    if mode == "PreferSameNode":
        return node in ep.node_hints
    if mode == "PreferSameZone":
        return zone in ep.zone_hints
    return mode == ""


def categorize(
    svc: ServicePortInfo, endpoints: tuple[EndpointInfo, ...], *, node: str = "", zone: str = ""
) -> Categorized:
    """proxy.CategorizeEndpoints: ready endpoints, else serving+terminating; the Cluster ones
    narrowed by topology hints for this ``node`` and its ``zone`` when every ready endpoint
    carries them (trafficDistribution).

    Cluster and Local policies fall back to serving-terminating endpoints independently.
    """
    cluster: tuple[EndpointInfo, ...] = ()
    local: tuple[EndpointInfo, ...] = ()
    has_any = False
    topology = ""
    if svc.uses_cluster_endpoints:
        topology = topology_mode(endpoints, node, zone)
        cluster = tuple(
            e for e in endpoints if e.ready and available_for_topology(e, topology, node, zone)
        )
        if not cluster:
            cluster = tuple(e for e in endpoints if e.serving and e.terminating)
        has_any = bool(cluster)
    if not svc.uses_local_endpoints:
        return Categorized(cluster, (), cluster, has_any)
    local_ready = False
    local_terminating = False
    for e in endpoints:
        if e.ready:
            has_any = True
            local_ready = local_ready or e.is_local
        elif e.serving and e.terminating:
            has_any = True
            local_terminating = local_terminating or e.is_local
    serving_terminating = False
    if local_ready:
        local = tuple(e for e in endpoints if e.is_local and e.ready)
    elif local_terminating:
        serving_terminating = True
        local = tuple(e for e in endpoints if e.is_local and e.serving and e.terminating)
    if not svc.uses_cluster_endpoints:
        return Categorized((), local, local, has_any)
    if not topology and not serving_terminating:
        return Categorized(cluster, local, cluster, has_any)
    merged = {str(e): e for e in (*cluster, *local)}
    return Categorized(cluster, local, tuple(sorted(merged.values(), key=_ip_key)), has_any)


@dataclass(frozen=True)
class PolicyReach:
    """Which endpoints internal (ClusterIP) and external (NodePort, LB, external IP) traffic use,
    and whether any are usable: the decisions syncProxyRules makes before writing any rule, in
    every rule-writing mode alike."""

    internal_local: bool  # internal traffic uses the Local-policy endpoints
    external_local: bool
    has_internal: bool  # false: DROP ("has no local endpoints") or REJECT when none at all
    has_external: bool


def policy_reach(info: ServicePortInfo, cat: Categorized) -> PolicyReach:
    has_internal = cat.has_any and (not info.internal_policy_local or bool(cat.local))
    has_external = cat.has_any and (not info.external_policy_local or bool(cat.local))
    return PolicyReach(
        info.internal_policy_local, info.external_policy_local, has_internal, has_external
    )
