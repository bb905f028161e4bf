"""What Kubernetes promises a connection may reach: a Service port's endpoints as a node's proxy
sees them, narrowed by the traffic policies, and a headless Service's ready endpoints.

Shared by resolution (the expectation of a written check) and derivation (the checks of a
scenario that wrote none), so both follow the same rules.
"""

from __future__ import annotations

from netlab.checks.model import Backend, ResolveError
from netlab.cluster.state import ClusterState, PodInfo
from netlab.proxy.servicemap import EndpointInfo, ProxiedService, node_view
from netlab.scenario.checkspec import Source
from netlab.scenario.k8s import Service, ServicePort
from netlab.scenario.labcheck import did_you_mean


def find_pod(state: ClusterState, src: Source) -> PodInfo:
    if src.namespace:
        try:
            return state.pod(src.namespace, src.name)
        except KeyError:
            raise ResolveError(
                f'pod "{src.namespace}/{src.name}" not found',
                "from",
                choices_hint("pods in this lab", f"{src.namespace}/{src.name}", _pod_keys(state)),
            ) from None
    candidates = [p for p in state.pods if p.name == src.name]
    default = [p for p in candidates if p.namespace == "default"]
    if default:
        return default[0]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        spaces = ", ".join(sorted(p.namespace for p in candidates))
        raise ResolveError(
            f'pod "{src.name}" exists in several namespaces ({spaces})',
            "from",
            "write pod/NAMESPACE/NAME",
        )
    names = [p.name for p in state.pods if p.role != "system"]
    raise ResolveError(
        f'pod "{src.name}" not found',
        "from",
        choices_hint("pods in this lab", src.name, _pod_keys(state), names),
    )


def _pod_keys(state: ClusterState) -> list[str]:
    return sorted(p.key for p in state.pods if p.role != "system")


def choices_hint(what: str, given: str, choices: list[str], near: list[str] | None = None) -> str:
    """A hint naming the valid choices (the first dozen), a close one first if there is one."""
    mean = did_you_mean(given, near if near is not None else choices)
    shown = ", ".join(choices[:12]) + (
        f" and {len(choices) - 12} more" if len(choices) > 12 else ""
    )
    listing = f"{what}: {shown}" if choices else f"there are no {what}"
    return f"{mean} {listing}" if mean else listing


def external_backends(state: ClusterState, port: int) -> tuple[Backend, ...]:
    return tuple(
        Backend(
            pod=s.name, namespace="", ip=s.address, port=port, netns=state.external.netns, node=""
        )
        for s in state.lab.external_servers
    )


def service_port(
    svc: Service, port: int | str | None, protocol: str | None, field_name: str = "to.port"
) -> ServicePort:
    ports = [p for p in svc.ports if protocol is None or p.protocol == protocol]
    listed = [_port_text(p) for p in svc.ports]
    if port is None:
        if len(ports) == 1:
            return ports[0]
        raise ResolveError(
            f"Service {svc.meta.namespace}/{svc.meta.name} has "
            + ("several ports" if ports else f"no {protocol} port"),
            field_name,
            f"name one of them: {', '.join(p.name or str(p.port) for p in svc.ports)}"
            if ports
            else choices_hint(f"ports of {svc.meta.name}", "", listed),
        )
    for p in ports:
        if p.name == port or p.port == port:
            return p
    names = [p.name for p in svc.ports if p.name]
    other = [p.protocol for p in svc.ports if p.name == port or p.port == port]
    raise ResolveError(
        f"Service {svc.meta.namespace}/{svc.meta.name} has no port {port!r}"
        + (f" over {protocol}" if protocol else ""),
        field_name,
        f"port {port} is {' and '.join(other)}: drop protocol, or ask for {other[0]}"
        if other
        else choices_hint(f"ports of {svc.meta.name}", str(port), listed, names),
    )


def _port_text(p: ServicePort) -> str:
    return f"{p.name} ({p.port}/{p.protocol})" if p.name else f"{p.port}/{p.protocol}"


def proxied(state: ClusterState, svc: Service, sp: ServicePort, node: str) -> ProxiedService | None:
    key = (svc.meta.namespace, svc.meta.name, sp.name, sp.protocol)
    for ps in node_view(state, node):
        spn = ps.info.spn
        if (spn.namespace, spn.name, spn.port, spn.protocol) == key:
            return ps
    return None


def service_endpoints(
    state: ClusterState, svc: Service, sp: ServicePort
) -> dict[str, EndpointInfo]:
    ps = proxied(state, svc, sp, state.nodes[0].name)
    return {str(e): e for e in ps.endpoints} if ps else {}


def backend_of(state: ClusterState, ep: EndpointInfo) -> Backend:
    ns, _, name = ep.pod.partition("/")
    pod = state.pod(ns, name)
    return Backend(pod=name, namespace=ns, ip=ep.ip, port=ep.port, netns=pod.netns, node=ep.node)


def reachable(
    state: ClusterState,
    svc: Service,
    sp: ServicePort,
    node: str,
    external: bool,
    mode: str = "iptables",
    *,
    from_node: bool = False,
) -> tuple[tuple[EndpointInfo, ...], bool]:
    """The endpoints Kubernetes says a connection through ``node`` may reach, and whether the
    Service has usable endpoints anywhere (to tell DROP from REJECT).

    ``external``: the connection is to an external address (NodePort, load-balancer IP,
    externalIP), else to the ClusterIP. ``from_node``: it starts on ``node`` itself, from a
    process of the node or from one of its pods. externalTrafficPolicy Local constrains only
    traffic from outside: kube-proxy's iptables and nftables modes send a pod's or the node's
    own traffic to an external address of such a Service to every endpoint (KUBE-EXT's "pod
    traffic for ... external destinations" and "route LOCAL traffic for ... external
    destinations"; nftables' "short-circuit pod traffic" / "short-circuit local traffic"). The
    IPVS mode has no such rules: its external virtual servers hold the node's own endpoints,
    or every endpoint when it has none (syncEndpoint, kubernetes#97081), whoever the client.
    The userspace proxy knew no traffic policies: every ready endpoint, from everywhere.
    """
    ps = proxied(state, svc, sp, node)
    if ps is None:
        return (), False
    if mode == "userspace":
        ready = tuple(e for e in ps.endpoints if e.ready)
        return ready, bool(ready)
    cat = ps.categorize()
    if not external:
        return (cat.local if ps.info.internal_policy_local else cat.cluster), cat.has_any
    if not ps.info.external_policy_local:
        return cat.cluster, cat.has_any
    if mode == "ipvs":
        # Outside traffic to a node without local endpoints is DNATed to a remote pod without
        # masquerade, so the reply goes astray: only a client on the node gets the fallback.
        return (cat.local or (cat.cluster if from_node else ())), cat.has_any
    return (cat.cluster if from_node else cat.local), cat.has_any


def reachable_via_load_balancer(
    state: ClusterState, svc: Service, sp: ServicePort, mode: str = "iptables"
) -> tuple[tuple[EndpointInfo, ...], bool]:
    """Through the cloud load balancer: the union over the nodes it sends to (with Local
    policy, those whose health check answers 200: the ones with local endpoints)."""
    found: dict[str, EndpointInfo] = {}
    has_any = False
    for node in state.nodes:
        eps, any_here = reachable(state, svc, sp, node.name, external=True, mode=mode)
        has_any = has_any or any_here
        found.update((str(e), e) for e in eps)
    return tuple(found.values()), has_any


def load_balancer_nodes(state: ClusterState, svc: Service) -> list[str]:
    """The nodes the cloud load balancer sends a Service's traffic to: every node, or with
    externalTrafficPolicy Local those whose health check passes (kube-proxy's health server
    counts the Service's ready endpoints on the node, in every mode)."""
    if svc.external_traffic_policy != "Local":
        return [n.name for n in state.nodes]
    key = f"{svc.meta.namespace}/{svc.meta.name}"
    ready = {
        ep.node_name for sl in state.slices if sl.service == key for ep in sl.endpoints if ep.ready
    }
    return [n.name for n in state.nodes if n.name in ready]


def ready_endpoints(state: ClusterState, svc: Service, port: ServicePort | None) -> list[Backend]:
    """A headless Service's ready endpoints (what its A records list), for one port if given."""
    out: dict[str, Backend] = {}
    for sl in state.slices_for(svc):
        numbers = [
            p.port
            for p in sl.ports
            if port is None or (p.name, p.protocol) == (port.name, port.protocol)
        ]
        if not numbers:
            continue
        for ep in sl.endpoints:
            if not ep.ready:
                continue
            ns, _, name = ep.pod.partition("/")
            pod = state.pod(ns, name)
            out[ep.address] = Backend(name, ns, ep.address, numbers[0], pod.netns, ep.node_name)
    return list(out.values())
