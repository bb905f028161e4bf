"""Checks: what a scenario expects of its Services, and the verdict on what real packets did.

The shape is that of kube-proxy's own packet-flow tests: a source (pod, node, external client),
a protocol and a destination (a Service's ClusterIP or NodePort, or a raw address), and the
expected outcome: which endpoints answer (all, a named set, none), or REJECT (refused) or DROP
(timeout), and whether the backends saw the client's own address or a masqueraded one.

Everything here is pure: :func:`resolve` turns a check into concrete addresses from the cluster
state, the traffic layer produces observations, and :func:`evaluate` compares.
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from netlab.cluster.build import SYSTEM_SERVICES
from netlab.cluster.state import ClusterState, PodInfo
from netlab.errors import Diagnostic
from netlab.proxy.servicemap import EndpointInfo, ProxiedService, categorize, node_view
from netlab.scenario.k8s import Service, ServicePort
from netlab.scenario.labspec import CLIENT_NAMESPACE, CheckSpec, Destination, Expect, Source
from netlab.traffic.dnsquery import DNSResult, ResolvConf
from netlab.traffic.results import CapturedPacket, ConntrackEntry, Observation

MISS_PROBABILITY = 1e-6  # chance that "all endpoints" misses one by bad luck, per check
DEFAULT_FAILURE_CONNECTIONS = 3


class ResolveError(Exception):
    """A check names something the lab does not have."""

    def __init__(self, message: str, field_name: str = "", hint: str = ""):
        self.field_name = field_name
        self.hint = hint
        super().__init__(message)


@dataclass(frozen=True)
class Backend:
    pod: str  # the pod's name, which is what it answers with
    namespace: str
    ip: str
    port: int
    netns: str
    node: str


@dataclass(frozen=True)
class ResolvedCheck:
    spec: CheckSpec
    source_netns: str
    source_ip: str  # the client's own address
    bind: str | None  # source address to bind (external clients)
    dest_ip: str
    dest_port: int
    protocol: str
    connections: int
    backends: tuple[Backend, ...]  # every endpoint of the Service (for reports and captures)
    expected: tuple[Backend, ...] | None  # who must answer; None = not checked
    summary: str
    dial_name: str = ""  # a DNS name resolved (as the source's resolver would) per connection
    resolv: ResolvConf | None = None  # the source's resolver configuration
    conntrack_netns: str = ""  # where the source's connections are tracked (its node)
    dns: DnsPlan | None = None  # for kind: dns

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class DnsPlan:
    """A dns check's question and what must come back (answers resolved to addresses)."""

    name: str
    qtype: str
    search: bool
    rcode: str
    answers: frozenset[str] | None
    cname: str | None


@dataclass
class CheckResult:
    name: str
    passed: bool
    summary: str
    source: str
    destination: str
    protocol: str
    connections: int
    expected: dict[str, Any]
    observed: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    derived: bool = False
    kind: str = "connect"
    description: str = ""


# Resolution ---------------------------------------------------------------------------------


def find_pod(state: ClusterState, src: Source) -> PodInfo:
    if src.namespace:
        try:
            return state.pod(src.namespace, src.name)
        except KeyError:
            raise ResolveError(f'pod "{src.namespace}/{src.name}" not found', "from") from None
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
    names = ", ".join(sorted(p.key for p in state.pods if p.role != "system")[:8])
    raise ResolveError(f'pod "{src.name}" not found', "from", f"pods in this lab: {names}")


def resolve_source(state: ClusterState, src: Source) -> tuple[str, str, str | None, str]:
    """(netns, client address, bind address, node) for a check's ``from``."""
    if src.kind == "pod":
        pod = find_pod(state, src)
        return pod.netns, pod.ip, None, pod.node
    if src.kind == "node":
        try:
            node = state.node(src.name)
        except KeyError:
            raise ResolveError(
                f'node "{src.name}" not found',
                "from",
                f"nodes: {', '.join(n.name for n in state.nodes)}",
            ) from None
        return node.netns, node.ip, None, node.name
    clients = state.external.clients
    name = src.name or next(iter(clients))
    if name not in clients:
        raise ResolveError(
            f'external client "{name}" not found', "from", f"external clients: {', '.join(clients)}"
        )
    return state.external.netns, clients[name], clients[name], ""


def resolver_config(state: ClusterState, src: Source) -> ResolvConf:
    """What the source's resolver uses: a pod's ClusterFirst config, else the outside world's
    DNS server (nodes and external clients)."""
    dns_ip = next(
        (
            s.cluster_ip
            for s in state.services
            if (s.meta.namespace, s.meta.name) == ("kube-system", "kube-dns")
        ),
        "",
    )
    if src.kind == "pod" and dns_ip:
        pod = find_pod(state, src)
        if not pod.host_network:
            return ResolvConf.for_pod(pod.namespace, dns_ip, state.lab.dns.domain)
    return ResolvConf((state.external.router_ip,))


def _conntrack_netns(state: ClusterState, src: Source) -> str:
    """Connections from a pod or a node are tracked in that node's namespace."""
    if src.kind == "pod":
        return state.node(find_pod(state, src).node).netns
    if src.kind == "node":
        return state.node(src.name).netns
    return ""


def _external_backends(state: ClusterState, port: int) -> tuple[Backend, ...]:
    return tuple(
        Backend(
            pod=s.name, namespace="", ip=s.address, port=port, netns=state.external.netns, node=""
        )
        for s in state.lab.external_servers
    )


def _service_port(svc: Service, port: int | str | None, protocol: str | None) -> ServicePort:
    ports = [p for p in svc.ports if protocol is None or p.protocol == protocol]
    if port is None:
        if len(ports) == 1:
            return ports[0]
        names = ", ".join(p.name or str(p.port) for p in svc.ports)
        raise ResolveError(
            f"Service {svc.meta.namespace}/{svc.meta.name} has several ports",
            "to",
            f"name one of them: {names}",
        )
    for p in ports:
        if p.name == port or p.port == port:
            return p
    raise ResolveError(
        f"Service {svc.meta.namespace}/{svc.meta.name} has no port {port!r}"
        + (f" over {protocol}" if protocol else ""),
        "to",
    )


def _proxied(
    state: ClusterState, svc: Service, sp: ServicePort, node: str
) -> ProxiedService | None:
    key = (svc.meta.namespace, svc.meta.name, sp.name, sp.protocol)
    for ps in node_view(state, node):
        spn = ps.info.spn
        if (spn.namespace, spn.name, spn.port, spn.protocol) == key:
            return ps
    return None


def _backends(state: ClusterState, svc: Service, sp: ServicePort) -> dict[str, EndpointInfo]:
    ps = _proxied(state, svc, sp, state.nodes[0].name)
    return {str(e): e for e in ps.endpoints} if ps else {}


def _backend(state: ClusterState, ep: EndpointInfo) -> Backend:
    ns, _, name = ep.pod.partition("/")
    pod = state.pod(ns, name)
    return Backend(pod=name, namespace=ns, ip=ep.ip, port=ep.port, netns=pod.netns, node=ep.node)


def _reachable(
    state: ClusterState,
    svc: Service,
    sp: ServicePort,
    node: str,
    external: bool,
    mode: str = "iptables",
) -> tuple[tuple[EndpointInfo, ...], bool]:
    """The endpoints Kubernetes says a connection through ``node`` may reach, and whether the
    Service has usable endpoints anywhere (to tell DROP from REJECT). The userspace proxy knew
    no traffic policies: every ready endpoint, from everywhere."""
    ps = _proxied(state, svc, sp, node)
    if ps is None:
        return (), False
    if mode == "userspace":
        ready = tuple(e for e in ps.endpoints if e.ready)
        return ready, bool(ready)
    cat = categorize(ps.info, ps.endpoints)
    local = ps.info.external_policy_local if external else ps.info.internal_policy_local
    return (cat.local if local else cat.cluster), cat.has_any


def _reachable_via_load_balancer(
    state: ClusterState, svc: Service, sp: ServicePort, mode: str = "iptables"
) -> tuple[tuple[EndpointInfo, ...], bool]:
    """Through the cloud load balancer: the union over the nodes it sends to (with Local
    policy, those whose health check answers 200: the ones with local endpoints)."""
    found: dict[str, EndpointInfo] = {}
    has_any = False
    for node in state.nodes:
        eps, any_here = _reachable(state, svc, sp, node.name, external=True, mode=mode)
        has_any = has_any or any_here
        found.update((str(e), e) for e in eps)
    return tuple(found.values()), has_any


def _ready_endpoints(state: ClusterState, svc: Service, port: ServicePort | None) -> list[Backend]:
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


def _default_namespace(state: ClusterState, src: Source, service: str) -> str:
    """A Service named without a namespace: the client pod's namespace if it has one of that
    name (as a short DNS name would resolve), else ``default``."""
    if src.kind == "pod":
        ns = find_pod(state, src).namespace
        if any(s.meta.namespace == ns and s.meta.name == service for s in state.services):
            return ns
    return "default"


def resolve(state: ClusterState, spec: CheckSpec, mode: str = "iptables") -> ResolvedCheck:
    netns, client_ip, bind, client_node = resolve_source(state, spec.source)
    resolv = resolver_config(state, spec.source)
    track = _conntrack_netns(state, spec.source)
    base = ResolvedCheck(
        spec=spec,
        source_netns=netns,
        source_ip=client_ip,
        bind=bind,
        dest_ip="",
        dest_port=0,
        protocol="TCP",
        connections=1,
        backends=(),
        expected=None,
        summary="",
        resolv=resolv,
        conntrack_netns=track,
    )
    if spec.kind == "dns":
        plan = _dns_plan(state, spec)
        how = "" if spec.search else " (no search)"
        return replace(
            base,
            dest_ip="",
            dest_port=53,
            protocol="UDP",
            connections=1,
            backends=(),
            expected=None,
            dns=plan,
            summary=f"{spec.source} looks up {spec.qtype} {spec.query}{how}",
        )
    dest = spec.destination
    expect = spec.expect
    protocol = spec.protocol or "TCP"
    backends: tuple[Backend, ...] = ()
    reachable: tuple[EndpointInfo, ...] = ()
    dial_name = ""
    is_service = False
    if dest.service and dest.via == "name":
        ns = dest.namespace or _default_namespace(state, spec.source, dest.service)
        svc = _find_service(state, ns, dest.service)
        dial_name, dest_port, protocol, backends, expected = _by_service_name(
            state, spec, svc, source_namespace=_source_namespace(state, spec.source), mode=mode
        )
        return replace(
            base,
            dest_ip="",
            dest_port=dest_port,
            protocol=protocol,
            connections=spec.connections or default_connections(expect, expected),
            backends=backends,
            expected=expected,
            dial_name=dial_name,
            summary=f"{spec.source} -> {dial_name}:{dest_port}/{protocol} (by name)",
        )
    if dest.service:
        ns = dest.namespace or _default_namespace(state, spec.source, dest.service)
        svc = _find_service(state, ns, dest.service)
        sp = _service_port(svc, dest.port, spec.protocol)
        protocol = sp.protocol
        all_eps = _backends(state, svc, sp)
        backends = tuple(_backend(state, e) for e in all_eps.values())
        dest_ip, dest_port, via_node, external = _service_address(state, svc, sp, dest, client_node)
        if dest.via == "loadBalancer":
            reachable, _ = _reachable_via_load_balancer(state, svc, sp, mode)
        else:
            reachable, _ = _reachable(state, svc, sp, via_node, external, mode)
        target = f"{ns}/{svc.meta.name}:{sp.name or sp.port}"
        how = "" if dest.via == "clusterIP" else f" via {dest.via}"
        summary = f"{spec.source} -> {target}{how} ({dest_ip}:{dest_port}/{protocol})"
        is_service = True
    elif dest.name:
        assert isinstance(dest.port, int)
        dest_ip, dest_port, dial_name = "", dest.port, dest.name
        pods = tuple(
            Backend(p.name, p.namespace, p.ip, dest_port, p.netns, p.node)
            for p in state.pods
            if p.role != "client"
        )
        backends = _external_backends(state, dest_port) + pods
        summary = f"{spec.source} -> {dest.name}:{dest_port}/{protocol} (by name)"
    else:
        if dest.node:
            try:
                dest_ip = state.node(dest.node).ip
            except KeyError:
                raise ResolveError(f'node "{dest.node}" not found', "to") from None
        else:
            dest_ip = dest.address
        assert isinstance(dest.port, int)
        dest_port = dest.port
        summary = f"{spec.source} -> {dest_ip}:{dest_port}/{protocol}"
        backends = _backends_for_address(state, dest_ip, dest_port, protocol)
    expected = _expected(state, expect, backends, reachable, is_service)
    return replace(
        base,
        dest_ip=dest_ip,
        dest_port=dest_port,
        protocol=protocol,
        connections=spec.connections or default_connections(expect, expected),
        backends=backends,
        expected=expected,
        summary=summary,
        dial_name=dial_name,
    )


def _find_service(state: ClusterState, ns: str, name: str) -> Service:
    try:
        return state.service(ns, name)
    except KeyError:
        raise ResolveError(f'service "{ns}/{name}" not found', "to") from None


def _source_namespace(state: ClusterState, src: Source) -> str:
    return find_pod(state, src).namespace if src.kind == "pod" else ""


def _by_service_name(
    state: ClusterState, spec: CheckSpec, svc: Service, source_namespace: str, mode: str
) -> tuple[str, int, str, tuple[Backend, ...], tuple[Backend, ...] | None]:
    """Dial a Service by its name, as a client in a pod would: ``web`` from its own
    namespace, ``web.<ns>`` from another. What answers depends on the Service's kind: its
    endpoints through the ClusterIP, the pods themselves (headless), or the external server an
    ExternalName points at."""
    dest = spec.destination
    ns = svc.meta.namespace
    name = svc.meta.name if source_namespace == ns else f"{svc.meta.name}.{ns}"
    expect = spec.expect
    if svc.type == "ExternalName":
        if not isinstance(dest.port, int):
            raise ResolveError(
                "an ExternalName Service is dialled with a port number", "to", "add port: N"
            )
        target = svc.external_name.rstrip(".").lower()
        backends = tuple(b for b in _external_backends(state, dest.port) if b.pod == target)
        return (
            name,
            dest.port,
            spec.protocol or "TCP",
            backends,
            _expected(state, expect, backends, (), is_service=False)
            if expect.endpoints
            else (backends if expect.result == "connected" else ()),
        )
    sp = _service_port(svc, dest.port, spec.protocol)
    if svc.headless:
        backends = tuple(_ready_endpoints(state, svc, sp))
        # Headless: the client dials the pods at the port it asked for; no proxy maps ports.
        backends = tuple(replace(b, port=sp.port) for b in backends)
        reach = tuple(
            EndpointInfo(b.ip, b.port, b.node, f"{b.namespace}/{b.pod}", False) for b in backends
        )
        return (
            name,
            sp.port,
            sp.protocol,
            backends,
            _expected(state, expect, backends, reach, is_service=True),
        )
    all_eps = _backends(state, svc, sp)
    backends = tuple(_backend(state, e) for e in all_eps.values())
    src_node = _source_node(state, spec.source)
    reachable, _ = _reachable(state, svc, sp, src_node, external=False, mode=mode)
    return (
        name,
        sp.port,
        sp.protocol,
        backends,
        _expected(state, expect, backends, reachable, is_service=True),
    )


def _source_node(state: ClusterState, src: Source) -> str:
    if src.kind == "pod":
        return find_pod(state, src).node
    if src.kind == "node":
        return src.name
    return state.nodes[0].name


def _dns_plan(state: ClusterState, spec: CheckSpec) -> DnsPlan:
    expect = spec.expect
    answers = None
    if expect.answers is not None:
        found: set[str] = set()
        for token in expect.answers:
            found |= _answer_token(state, spec, token)
        answers = frozenset(found)
    cname = _norm(expect.cname) if expect.cname else None
    return DnsPlan(spec.query, spec.qtype, spec.search, expect.rcode, answers, cname)


def _answer_token(state: ClusterState, spec: CheckSpec, token: str) -> set[str]:
    """``service/…``, ``endpoints/…``, ``pod/…``, ``external/…`` or a literal answer."""
    kind, sep, ref = token.partition("/")
    if not sep or kind not in ("service", "endpoints", "pod", "external") or not ref:
        return {_norm(token)}
    if kind == "external":
        for server in state.lab.external_servers:
            if server.name == ref:
                return {server.address}
        raise ResolveError(f'external server "{ref}" not found', "expect")
    ns, _, name = ref.rpartition("/")
    if kind == "pod":
        return {find_pod(state, Source("pod", name, ns)).ip}
    svc = _find_service(state, ns or _default_namespace(state, spec.source, name), name)
    if kind == "service":
        if not svc.cluster_ip or svc.headless:
            raise ResolveError(
                f"Service {svc.meta.name} has no ClusterIP",
                "expect",
                "use endpoints/NAME for a headless Service",
            )
        return {svc.cluster_ip}
    return {b.ip for b in _ready_endpoints(state, svc, None)}


def _norm(text: str) -> str:
    """Answers compare case-insensitively and without the final dot of a name."""
    return text.strip().rstrip(".").lower()


def _backends_for_address(
    state: ClusterState, ip: str, port: int, protocol: str
) -> tuple[Backend, ...]:
    """For a raw ClusterIP:port or nodeIP:nodePort destination, the Service's endpoints."""
    for svc in state.services:
        for sp in svc.ports:
            if sp.protocol != protocol:
                continue
            local = ip.startswith("127.") or any(n.ip == ip for n in state.nodes)
            node_hit = sp.node_port == port and local
            if (
                (svc.cluster_ip == ip and sp.port == port)
                or node_hit
                or (ip in svc.load_balancer_ingress and sp.port == port)
            ):
                return tuple(_backend(state, e) for e in _backends(state, svc, sp).values())
    return ()


def _service_address(
    state: ClusterState, svc: Service, sp: ServicePort, dest: Destination, client_node: str
) -> tuple[str, int, str, bool]:
    """(address, port, the node whose rules handle it, is it "external" traffic)."""
    first = state.nodes[0].name
    via = dest.via or "clusterIP"
    if via == "clusterIP":
        if svc.headless or not svc.cluster_ip:
            raise ResolveError(
                f"Service {svc.meta.name} has no ClusterIP",
                "to",
                "headless and ExternalName Services are reached by name",
            )
        return svc.cluster_ip, sp.port, client_node or first, False
    if via == "nodePort":
        if not sp.node_port:
            raise ResolveError(
                f"Service {svc.meta.name} port {sp.name or sp.port} has no nodePort",
                "to",
                "use type: NodePort or LoadBalancer",
            )
        node_name = dest.node or first
        try:
            node = state.node(node_name)
        except KeyError:
            raise ResolveError(f'node "{node_name}" not found', "to") from None
        return node.ip, sp.node_port, node.name, True
    if via == "loadBalancer":
        if not svc.load_balancer_ingress:
            raise ResolveError(f"Service {svc.meta.name} has no load-balancer IP", "to")
        return svc.load_balancer_ingress[0], sp.port, client_node or first, True
    if via == "externalIP":
        if not svc.external_ips:
            raise ResolveError(f"Service {svc.meta.name} has no externalIPs", "to")
        return svc.external_ips[0], sp.port, client_node or first, True
    raise ResolveError(f"via {via} is not supported yet", "to")


def _expected(
    state: ClusterState,
    expect: Expect,
    backends: tuple[Backend, ...],
    reachable: tuple[EndpointInfo, ...],
    is_service: bool,
) -> tuple[Backend, ...] | None:
    if expect.result != "connected" or expect.endpoints == "none":
        return ()
    if expect.endpoints is None or expect.endpoints == "all":
        if not is_service and expect.endpoints is None:
            return None  # a raw address: only the outcome is checked unless names are given
        reach = {str(e) for e in reachable} if is_service else None
        return tuple(b for b in backends if reach is None or f"{b.ip}:{b.port}" in reach)
    chosen: list[Backend] = []
    for item in expect.endpoints:
        if item.startswith("node/"):
            node = item.removeprefix("node/")
            chosen += [b for b in backends if b.node == node]
            continue
        match = [b for b in backends if b.pod == item]
        if not match:
            names = ", ".join(sorted(b.pod for b in backends)) or "none"
            raise ResolveError(
                f'"{item}" is not an endpoint of this destination', "expect", f"endpoints: {names}"
            )
        chosen += match
    return tuple(dict.fromkeys(chosen))


def default_connections(expect: Expect, expected: tuple[Backend, ...] | None) -> int:
    """Enough connections that missing one of k expected endpoints by chance is below 1e-6."""
    if expect.result != "connected":
        return DEFAULT_FAILURE_CONNECTIONS
    k = len(expected or ()) or 1
    return max(10, math.ceil(k * math.log(k / MISS_PROBABILITY)))


def resolve_all(
    state: ClusterState, checks: list[CheckSpec], mode: str = "iptables"
) -> tuple[list[ResolvedCheck], list[Diagnostic]]:
    """Resolve every check; each one that names something missing becomes a diagnostic."""
    out: list[ResolvedCheck] = []
    diags: list[Diagnostic] = []
    for spec in checks:
        try:
            out.append(resolve(state, spec, mode))
        except ResolveError as exc:
            o = spec.origin
            path = f"{o.path}.{exc.field_name}" if o and exc.field_name else (o.path if o else "")
            diags.append(
                Diagnostic(
                    message=str(exc),
                    file=o.file if o else "",
                    line=o.line if o else 0,
                    col=o.col if o else 0,
                    path=path,
                    hint=exc.hint,
                    category=f"check {spec.name}",
                )
            )
    return out, diags


# Derived checks ------------------------------------------------------------------------------


def derive(state: ClusterState, mode: str = "iptables") -> list[CheckSpec]:
    """Checks for a scenario that wrote none: every Service port, from a client pod on every
    node to its ClusterIP, and from the external client to every node's NodePort."""
    out: list[CheckSpec] = []
    clients = {p.node: p for p in state.pods if p.role == "client"}
    zone = state.lab.dns.domain
    userspace = mode == "userspace"
    dns_on = any(
        f"{s.meta.namespace}/{s.meta.name}" == "kube-system/kube-dns" for s in state.services
    )
    first_client = next(iter(clients.values()), None)
    if dns_on:
        for node in state.nodes:
            client = clients.get(node.name)
            if client is not None:
                out.append(
                    CheckSpec(
                        name=f"cluster DNS from {node.name}",
                        source=Source("pod", client.name, CLIENT_NAMESPACE),
                        destination=Destination(),
                        kind="dns",
                        query="kubernetes.default",
                        qtype="A",
                        expect=Expect(answers=("service/default/kubernetes",)),
                        derived=True,
                    )
                )
    for svc in state.services:
        if f"{svc.meta.namespace}/{svc.meta.name}" in SYSTEM_SERVICES:
            continue
        fqdn = f"{svc.meta.name}.{svc.meta.namespace}.svc.{zone}"
        client_src = (
            Source("pod", first_client.name, CLIENT_NAMESPACE) if first_client is not None else None
        )
        if svc.type == "ExternalName":
            if dns_on and client_src is not None:
                out.append(_derived_external_name(state, svc, fqdn, client_src))
            continue
        if svc.headless:
            if dns_on and client_src is not None:
                out += _derived_headless(state, svc, fqdn, client_src)
            continue
        for lb_ip in svc.load_balancer_ingress:
            for sp in svc.ports:
                port = sp.name or sp.port
                reach, has_any = _reachable_via_load_balancer(state, svc, sp, mode)
                local = svc.external_traffic_policy == "Local" and not userspace
                out.append(
                    CheckSpec(
                        name=f"{svc.meta.namespace}/{svc.meta.name}:{port} loadBalancer {lb_ip} "
                        "from external",
                        source=Source("external"),
                        destination=Destination(
                            svc.meta.name, svc.meta.namespace, port, via="loadBalancer"
                        ),
                        protocol=sp.protocol,
                        expect=_derived_expect(
                            reach,
                            has_any,
                            "client" if local else "masqueraded",
                            no_route="unreachable" if local else "",
                            userspace=userspace,
                            protocol=sp.protocol,
                        ),
                        derived=True,
                    )
                )
        for sp in svc.ports:
            port = sp.name or sp.port
            label = f"{svc.meta.namespace}/{svc.meta.name}:{port}"
            for node in state.nodes:
                client = clients.get(node.name)
                if client is None:
                    continue
                reach, has_any = _reachable(state, svc, sp, node.name, False, mode)
                out.append(
                    CheckSpec(
                        name=f"{label} clusterIP from {node.name}",
                        source=Source("pod", client.name, CLIENT_NAMESPACE),
                        destination=Destination(svc.meta.name, svc.meta.namespace, port),
                        protocol=sp.protocol,
                        expect=_derived_expect(
                            reach,
                            has_any,
                            "masqueraded" if userspace else "client",
                            userspace=userspace,
                            protocol=sp.protocol,
                        ),
                        derived=True,
                    )
                )
            if not sp.node_port:
                continue
            for node in state.nodes:
                reach, has_any = _reachable(state, svc, sp, node.name, True, mode)
                local = svc.external_traffic_policy == "Local" and not userspace
                out.append(
                    CheckSpec(
                        name=f"{label} nodePort {sp.node_port} on {node.name} from external",
                        source=Source("external"),
                        destination=Destination(
                            svc.meta.name, svc.meta.namespace, port, via="nodePort", node=node.name
                        ),
                        protocol=sp.protocol,
                        expect=_derived_expect(
                            reach,
                            has_any,
                            "client" if local else "masqueraded",
                            userspace=userspace,
                            protocol=sp.protocol,
                        ),
                        derived=True,
                    )
                )
    return out


def _derived_expect(
    reach: tuple[EndpointInfo, ...],
    has_any: bool,
    source: str,
    no_route: str = "",
    *,
    userspace: bool = False,
    protocol: str = "TCP",
) -> Expect:
    """Reached and how; else DROP (timeout) when only the local policy leaves nothing here,
    REJECT (refused) when the Service has no endpoints at all. ``no_route``: what a client sees
    when the load balancer has no healthy node to send to (its route is withdrawn). The
    userspace proxy instead accepts and closes (TCP) or drops (UDP) what it cannot send on."""
    if reach:
        return Expect(result="connected", endpoints="all", source=source)
    if no_route:
        return Expect(result=no_route)
    if userspace:
        return Expect(result="closed" if protocol == "TCP" else "timeout")
    return Expect(result="timeout" if has_any else "refused")


def _derived_external_name(
    state: ClusterState, svc: Service, fqdn: str, source: Source
) -> CheckSpec:
    """An ExternalName resolves to a CNAME to its target (and the target's address when the
    outside world knows it). One that looks like an IPv4 address does not resolve at all:
    CoreDNS does not publish it."""
    target = svc.external_name.rstrip(".").lower()
    try:
        ipaddress.IPv4Address(target)
        expect = Expect(rcode="NXDOMAIN")
    except ValueError:
        known = [s for s in state.lab.external_servers if s.name == target]
        answers = (f"external/{known[0].name}",) if known else None
        expect = Expect(cname=target, answers=answers)
    return CheckSpec(
        name=f"{svc.meta.namespace}/{svc.meta.name} ExternalName resolves",
        source=source,
        destination=Destination(),
        kind="dns",
        query=fqdn + ".",
        qtype="A",
        expect=expect,
        derived=True,
    )


def _derived_headless(
    state: ClusterState, svc: Service, fqdn: str, source: Source
) -> list[CheckSpec]:
    """A headless Service's name lists its ready endpoints (NXDOMAIN with none), and a client
    dialling the name reaches the pods themselves: no DNAT."""
    ready = _ready_endpoints(state, svc, None)
    ns, name = svc.meta.namespace, svc.meta.name
    out = [
        CheckSpec(
            name=f"{ns}/{name} headless A records",
            source=source,
            destination=Destination(),
            kind="dns",
            query=fqdn + ".",
            qtype="A",
            expect=Expect(answers=(f"endpoints/{ns}/{name}",))
            if ready
            else Expect(rcode="NXDOMAIN"),
            derived=True,
        )
    ]
    if ready:
        for sp in svc.ports:
            if not _ready_endpoints(state, svc, sp):
                continue
            out.append(
                CheckSpec(
                    name=f"{ns}/{name}:{sp.name or sp.port} by name reaches pods directly",
                    source=source,
                    destination=Destination(name, ns, sp.name or sp.port, via="name"),
                    protocol=sp.protocol,
                    expect=Expect(endpoints="all", source="client", dnat=False),
                    derived=True,
                )
            )
    return out


# Verdict --------------------------------------------------------------------------------------


def evaluate(
    check: ResolvedCheck,
    observations: list[Observation],
    captures: dict[str, list[CapturedPacket]] | None = None,
    seconds: float = 0.0,
    tracked: dict[int, ConntrackEntry] | None = None,
) -> CheckResult:
    """Compare what the probes saw with what the check expects; list every mismatch."""
    expect = check.spec.expect
    failures: list[str] = []
    outcomes = Counter(o.outcome for o in observations)
    answered = [o for o in observations if o.outcome == "connected"]
    reached = Counter(o.hostname for o in answered)
    sources = sorted({o.client_ip for o in answered})

    if outcomes.get(expect.result, 0) != len(observations):
        wrong = {k: v for k, v in outcomes.items() if k != expect.result}
        errors = sorted({o.error for o in observations if o.outcome != expect.result and o.error})
        failures.append(
            f"expected every connection to be {expect.result}, got "
            + ", ".join(f"{v} {k}" for k, v in sorted(wrong.items()))
            + (f" ({'; '.join(errors[:3])})" if errors else "")
        )
    if check.expected is not None and expect.result == "connected":
        want = {b.pod for b in check.expected}
        got = set(reached)
        if got - want:
            failures.append(f"reached unexpected endpoints: {', '.join(sorted(got - want))}")
        if want - got:
            failures.append(
                f"never reached: {', '.join(sorted(want - got))} in {len(observations)} connections"
            )
    if expect.source and answered:
        kept = [o for o in answered if not o.translated]
        if expect.source == "client" and len(kept) != len(answered):
            seen = sorted({f"{o.client_ip}:{o.client_port}" for o in answered if o.translated})
            failures.append(
                f"expected backends to see the client's own address {check.source_ip}, "
                f"{len(answered) - len(kept)} saw a translated one ({', '.join(seen[:3])})"
            )
        if expect.source == "masqueraded" and kept:
            failures.append(
                f"expected masquerading, but {len(kept)} connections reached the backend "
                f"with the client's own address and port ({check.source_ip})"
            )

    observed: dict[str, Any] = {
        "outcomes": dict(sorted(outcomes.items())),
        "endpoints": dict(sorted(reached.items())),
        "sources": sources,
        "translated": sum(o.translated for o in answered),
    }
    if captures is not None:
        failures += _judge_capture(check, answered, captures, observed)
    if tracked is not None:
        failures += _judge_dnat(check, answered, tracked, observed)

    expected: dict[str, Any] = {"result": expect.result}
    if check.expected is not None:
        expected["endpoints"] = sorted(b.pod for b in check.expected)
    if expect.source:
        expected["source"] = expect.source
    if expect.dnat is not None:
        expected["dnat"] = expect.dnat
    if check.dial_name:
        expected["name"] = check.dial_name
    expected["client"] = check.source_ip
    return CheckResult(
        name=check.name,
        passed=not failures,
        summary=check.summary,
        source=str(check.spec.source),
        destination=f"{check.dest_ip or check.dial_name}:{check.dest_port}",
        protocol=check.protocol,
        connections=len(observations),
        expected=expected,
        observed=observed,
        failures=failures,
        seconds=seconds,
        derived=check.spec.derived,
        kind=check.spec.kind,
        description=check.spec.description,
    )


def _judge_dnat(
    check: ResolvedCheck,
    answered: list[Observation],
    tracked: dict[int, ConntrackEntry],
    observed: dict[str, Any],
) -> list[str]:
    """What connection tracking on the client's node says: was each connection DNATed?"""
    entries = [tracked[o.local_port] for o in answered if o.local_port in tracked]
    dnat = sum(e.dnat for e in entries)
    observed["conntrack"] = {"tracked": len(entries), "dnat": dnat}
    want = check.spec.expect.dnat
    if want is None:
        return []
    if not entries:
        return ["no connection was found in connection tracking on the client's node"]
    if want and dnat != len(entries):
        return [f"{len(entries) - dnat} of {len(entries)} connections were not DNATed"]
    if not want and dnat:
        return [f"{dnat} of {len(entries)} connections were DNATed"]
    return []


def evaluate_dns(check: ResolvedCheck, result: DNSResult, seconds: float = 0.0) -> CheckResult:
    """Compare one lookup with the dns check's expectations."""
    assert check.dns is not None
    plan = check.dns
    failures: list[str] = []
    got = frozenset(_norm(d) for d in result.data())
    if not result.rcode:
        failures.append(f"no answer from {result.server}: {result.error}")
    elif result.rcode != plan.rcode:
        failures.append(f"expected {plan.rcode}, got {result.rcode}")
    if plan.answers is not None and result.rcode and got != plan.answers:
        missing, extra = sorted(plan.answers - got), sorted(got - plan.answers)
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unexpected {', '.join(extra)}"] if extra else []
        failures.append(f"{plan.qtype} answers differ: " + "; ".join(parts))
    targets = [_norm(n) for n in result.cname_chain[1:]]
    if plan.cname is not None and (not targets or targets[0] != plan.cname):
        failures.append(
            f"expected a CNAME to {plan.cname}, got " + (targets[0] if targets else "no CNAME")
        )
    expected: dict[str, Any] = {"rcode": plan.rcode}
    if plan.answers is not None:
        expected["answers"] = sorted(plan.answers)
    if plan.cname is not None:
        expected["cname"] = plan.cname
    observed: dict[str, Any] = {
        "server": result.server,
        "rcode": result.rcode or result.error,
        "answers": sorted(got),
        "cname_chain": [_norm(n) for n in result.cname_chain],
        "tried": list(result.tried),
    }
    return CheckResult(
        name=check.name,
        passed=not failures,
        summary=check.summary,
        source=str(check.spec.source),
        destination=f"{plan.qtype} {plan.name}",
        protocol="DNS",
        connections=1,
        expected=expected,
        observed=observed,
        failures=failures,
        seconds=seconds,
        derived=check.spec.derived,
        kind="dns",
        description=check.spec.description,
    )


def _judge_capture(
    check: ResolvedCheck,
    answered: list[Observation],
    captures: dict[str, list[CapturedPacket]],
    observed: dict[str, Any],
) -> list[str]:
    """For every answered connection, its SYN must have been captured in the pod that answered,
    already DNATed to that pod's own address and target port, from the address the pod reported,
    and in no other pod."""
    syns = {
        pod: [p for p in pkts if p.proto == "TCP" and "S" in p.flags and "A" not in p.flags]
        for pod, pkts in captures.items()
    }
    by_source = {pod: {(p.src, p.sport): p for p in pkts} for pod, pkts in syns.items()}
    problems: list[str] = []
    seen = 0
    example = ""
    for o in answered:
        key = (o.client_ip, o.client_port)
        backend = next((b for b in check.backends if b.pod == o.hostname), None)
        if backend is None:
            problems.append(f"{o.hostname} answered but is not an endpoint")
            continue
        syn = by_source.get(backend.pod, {}).get(key)
        if syn is None:
            problems.append(f"no SYN from {key[0]}:{key[1]} was captured in {backend.pod}")
            continue
        if (syn.dst, syn.dport) != (backend.ip, backend.port):
            problems.append(
                f"the SYN reached {backend.pod} addressed to {syn.dst}:{syn.dport}, "
                f"not its own {backend.ip}:{backend.port}"
            )
            continue
        elsewhere = [pod for pod, table in by_source.items() if pod != backend.pod and key in table]
        if elsewhere:
            problems.append(f"the SYN from {key[0]}:{key[1]} also reached {', '.join(elsewhere)}")
            continue
        seen += 1
        example = example or (
            f"{check.dest_ip}:{check.dest_port} -> {syn.dst}:{syn.dport} in {backend.pod} "
            f"(SYN from {syn.src}:{syn.sport})"
        )
    observed["captured_syns"] = {pod: len(pkts) for pod, pkts in syns.items()}
    observed["dnat_seen"] = f"{seen}/{len(answered)}"
    if example:
        observed["dnat_example"] = example
    if not answered:
        return ["no connection was answered, so no SYN could be matched"]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        return problems[:3] + ([more.strip()] if more else [])
    return []
