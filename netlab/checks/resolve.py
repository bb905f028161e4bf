"""Resolution: a check as written, made concrete against the cluster state (addresses, ports,
endpoints, how many connections), or a located error when it names something the lab lacks."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar, overload

from netlab.checks.model import (
    DEFAULT_FAILURE_CONNECTIONS,
    MISS_PROBABILITY,
    Backend,
    DnsPlan,
    ResolvedCheck,
    ResolvedConnect,
    ResolvedDns,
    ResolvedHttp,
    ResolveError,
    ResolveErrors,
    norm,
)
from netlab.checks.reach import (
    backend_of,
    choices_hint,
    external_backends,
    find_pod,
    load_balancer_nodes,
    reachable,
    reachable_via_load_balancer,
    ready_endpoints,
    service_endpoints,
    service_port,
)
from netlab.cluster.podfiles import HostsFile, node_resolver, pod_resolver, source_hosts
from netlab.cluster.resolvconf import ResolvConf
from netlab.cluster.state import ClusterState, Node
from netlab.errors import Diagnostic
from netlab.proxy.nodeports import local_addresses
from netlab.proxy.servicemap import EndpointInfo, is_proxied
from netlab.scenario.checkspec import (
    CheckSpec,
    ConnectCheck,
    ConnectExpect,
    Destination,
    DnsCheck,
    HttpCheck,
    Source,
)
from netlab.scenario.k8s import Service, ServicePort

T = TypeVar("T")


def resolve_source(state: ClusterState, src: Source) -> tuple[str, str, str | None, str]:
    """(netns, client address, bind address, node) for a check's ``from``."""
    if src.kind == "pod":
        pod = find_pod(state, src)
        return pod.netns, pod.ip, None, pod.node
    if src.kind == "node":
        node = find_node(state, src.name, "from")
        return node.netns, node.ip, None, node.name
    clients = state.external.clients
    name = src.name or next(iter(clients))
    if name not in clients:
        raise ResolveError(
            f'external client "{name}" not found',
            "from",
            choices_hint("external clients", name, list(clients)),
        )
    return state.external.netns, clients[name], clients[name], ""


def resolver_config(state: ClusterState, src: Source) -> ResolvConf:
    """What the source's resolver uses: a pod's resolv.conf as kubelet writes it for its
    dnsPolicy, else the outside world's DNS server (nodes and external clients)."""
    if src.kind == "pod":
        return pod_resolver(state, find_pod(state, src))
    return node_resolver(state)


def hosts_file(state: ClusterState, src: Source) -> HostsFile:
    """The hosts file the source's libc reads before DNS (nsswitch ``hosts: files dns``)."""
    return source_hosts(state, find_pod(state, src) if src.kind == "pod" else None)


def _conntrack_netns(state: ClusterState, src: Source) -> str:
    """Connections from a pod or a node are tracked in that node's namespace."""
    if src.kind == "pod":
        return state.node(find_pod(state, src).node).netns
    if src.kind == "node":
        return state.node(src.name).netns
    return ""


def _default_namespace(state: ClusterState, src: Source, service: str) -> str:
    """A Service named without a namespace: the client pod's namespace if it has one of that
    name (as a short DNS name would resolve), else ``default``."""
    if src.kind == "pod":
        ns = find_pod(state, src).namespace
        if any(s.meta.namespace == ns and s.meta.name == service for s in state.services):
            return ns
    return "default"


@overload
def resolve(state: ClusterState, spec: DnsCheck, mode: str = ...) -> ResolvedDns: ...
@overload
def resolve(state: ClusterState, spec: HttpCheck, mode: str = ...) -> ResolvedHttp: ...
@overload
def resolve(state: ClusterState, spec: ConnectCheck, mode: str = ...) -> ResolvedConnect: ...
@overload
def resolve(state: ClusterState, spec: CheckSpec, mode: str = ...) -> ResolvedCheck: ...


def resolve(state: ClusterState, spec: CheckSpec, mode: str = "iptables") -> ResolvedCheck:
    """The check made concrete against ``state`` as ``mode`` handles it; a :class:`ResolveError`
    when it names something the lab does not have."""
    if isinstance(spec, DnsCheck):
        return _resolve_dns(state, spec)
    if isinstance(spec, HttpCheck):
        return _resolve_http(state, spec, mode)
    return _resolve_connect(state, spec, mode)


def _resolve_http(state: ClusterState, spec: HttpCheck, mode: str) -> ResolvedHttp:
    """An http check dials as a connect check does; any server may answer, so only the
    outcome, the status and the body are judged (one GET unless told otherwise)."""
    as_connect = ConnectCheck(
        name=spec.name,
        source=spec.source,
        destination=spec.destination,
        protocol="TCP",
        connections=spec.connections,
        timeout=spec.timeout,
        expect=ConnectExpect(spec.expect.result),
        description=spec.description,
        derived=spec.derived,
        origin=spec.origin,
    )
    connect = _resolve_connect(state, as_connect, mode)
    expect = spec.expect
    connections = spec.connections or 1
    fields = {f.name: getattr(connect, f.name) for f in dataclasses.fields(connect)}
    fields.update(
        spec=spec,
        connections=connections,
        expected=None,
        sticky=False,
        max_endpoints=None,
        summary=connect.summary.replace(f"/{connect.protocol}", "", 1) + f" GET {spec.path}",
        path=spec.path,
        status=expect.status if expect.status is not None else 200,
        body=expect.body,
    )
    return ResolvedHttp(**fields)


def _resolve_dns(state: ClusterState, spec: DnsCheck) -> ResolvedDns:
    netns, client_ip, _, _ = resolve_source(state, spec.source)
    how = "" if spec.search else " (no search)"
    return ResolvedDns(
        spec=spec,
        source_netns=netns,
        source_ip=client_ip,
        resolv=resolver_config(state, spec.source),
        plan=_dns_plan(state, spec),
        summary=f"{spec.source} looks up {spec.qtype} {spec.query}{how}",
    )


def _resolve_connect(state: ClusterState, spec: ConnectCheck, mode: str) -> ResolvedConnect:
    netns, client_ip, bind, client_node = resolve_source(state, spec.source)
    base = ResolvedConnect(
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
        resolv=resolver_config(state, spec.source),
        hosts=hosts_file(state, spec.source),
        conntrack_netns=_conntrack_netns(state, spec.source),
        node_ips=tuple((n.name, n.ip) for n in state.nodes),
    )
    dest = spec.destination
    entry_node = ""
    expect = spec.expect
    protocol = spec.protocol or "TCP"
    backends: tuple[Backend, ...] = ()
    reach: tuple[EndpointInfo, ...] = ()
    dial_name = ""
    is_service = False
    if (spec.hold or spec.connection) and (dest.via == "name" or dest.name):
        raise ResolveError(
            "a held connection dials an address, not a name",
            "to",
            "dial the Service by its ClusterIP (via: clusterIP) or another address",
        )
    svc: Service | None = None
    nodes_used = 1
    if dest.service and dest.via == "name":
        ns = dest.namespace or _default_namespace(state, spec.source, dest.service)
        svc = find_service(state, ns, dest.service)
        dial_name, dest_port, protocol, backends, expected = _by_service_name(
            state, spec, svc, source_namespace=_source_namespace(state, spec.source), mode=mode
        )
        sticky, max_endpoints = _affinity(expect, svc, nodes_used)
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
            sticky=sticky,
            max_endpoints=max_endpoints,
        )
    if dest.service:
        ns = dest.namespace or _default_namespace(state, spec.source, dest.service)
        svc = find_service(state, ns, dest.service)
        sp = service_port(svc, dest.port, spec.protocol)
        protocol = sp.protocol
        all_eps = service_endpoints(state, svc, sp)
        backends = tuple(backend_of(state, e) for e in all_eps.values())
        dest_ip, dest_port, via_node, external = _service_address(state, svc, sp, dest, client_node)
        entry_node = via_node if dest.via == "nodePort" else ""
        # A pod or process on the node whose rules catch the connection: for a load-balancer
        # IP or externalIP that is the client's own node; for a NodePort, the node dialled.
        from_node = spec.source.kind != "external" and via_node == client_node
        if dest.via == "loadBalancer" and spec.source.kind == "external":
            reach, _ = reachable_via_load_balancer(state, svc, sp, mode)
            nodes_used = len(load_balancer_nodes(state, svc))
        else:
            reach, _ = reachable(state, svc, sp, via_node, external, mode, from_node=from_node)
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
        backends = external_backends(state, dest_port) + pods
        summary = f"{spec.source} -> {dest.name}:{dest_port}/{protocol} (by name)"
    else:
        dest_ip = find_node(state, dest.node, "to.node").ip if dest.node else dest.address
        entry_node = next((n.name for n in state.nodes if n.ip == dest_ip), "")
        assert isinstance(dest.port, int)
        dest_port = dest.port
        summary = f"{spec.source} -> {dest_ip}:{dest_port}/{protocol}"
        svc, backends = _backends_for_address(state, dest_ip, dest_port, protocol)
    expected = _expected(state, expect, backends, reach, is_service)
    if (spec.hold or spec.connection) and expect.endpoints in (None, "all"):
        expected = None  # one connection answers from one endpoint: only the outcome counts
    sticky, max_endpoints = _affinity(expect, svc, nodes_used)
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
        entry_node=entry_node,
        sticky=sticky,
        max_endpoints=max_endpoints,
    )


def _affinity(expect: ConnectExpect, svc: Service | None, nodes: int) -> tuple[bool, int | None]:
    """(sticky, max_endpoints) for connections to ``svc`` through ``nodes`` nodes.

    sessionAffinity ClientIP promises one client one endpoint, the same on every connection
    through the same node until the timeout: every kube-proxy mode keeps that memory per node
    (``recent`` lists, nftables affinity sets, IPVS persistence templates, the userspace
    proxy's table). A client spread over several nodes by a load balancer may meet one
    endpoint per node. A check's own ``sticky`` wins.
    """
    if expect.result != "connected":
        return False, None
    if expect.sticky is not None:
        return expect.sticky, None
    if svc is None or svc.session_affinity != "ClientIP" or not is_proxied(svc):
        return False, None
    if nodes > 1:
        return False, nodes
    return True, None


def find_service(
    state: ClusterState, ns: str, name: str, field_name: str = "to.service"
) -> Service:
    try:
        return state.service(ns, name)
    except KeyError:
        pass
    elsewhere = sorted(s.meta.namespace for s in state.services if s.meta.name == name)
    if elsewhere:
        spaces = ", ".join(elsewhere)
        form = (
            f"service/{elsewhere[0]}/{name}"
            if field_name.startswith("to")
            else (f"{elsewhere[0]}/{name}")
        )
        hint = f"a Service {name} exists in namespace {spaces}: write {form}"
    else:
        here = sorted(s.meta.name for s in state.services if s.meta.namespace == ns)
        hint = choices_hint(f"Services in namespace {ns}", name, here)
    raise ResolveError(f'service "{ns}/{name}" not found', field_name, hint)


def find_node(state: ClusterState, name: str, field_name: str) -> Node:
    try:
        return state.node(name)
    except KeyError:
        raise ResolveError(
            f'node "{name}" not found',
            field_name,
            choices_hint("nodes", name, [n.name for n in state.nodes]),
        ) from None


def _source_namespace(state: ClusterState, src: Source) -> str:
    return find_pod(state, src).namespace if src.kind == "pod" else ""


def _by_service_name(
    state: ClusterState, spec: ConnectCheck, svc: Service, source_namespace: str, mode: str
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
                "an ExternalName Service is dialled with a port number",
                "to.port",
                "an ExternalName has no ports of its own: add port: N",
            )
        target = svc.external_name.rstrip(".").lower()
        backends = tuple(b for b in external_backends(state, dest.port) if b.pod == target)
        return (
            name,
            dest.port,
            spec.protocol or "TCP",
            backends,
            _expected(state, expect, backends, (), is_service=False)
            if expect.endpoints
            else (backends if expect.result == "connected" else ()),
        )
    sp = service_port(svc, dest.port, spec.protocol)
    if svc.headless:
        backends = tuple(ready_endpoints(state, svc, sp))
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
    all_eps = service_endpoints(state, svc, sp)
    backends = tuple(backend_of(state, e) for e in all_eps.values())
    src_node = _source_node(state, spec.source)
    reach, _ = reachable(state, svc, sp, src_node, external=False, mode=mode)
    return (
        name,
        sp.port,
        sp.protocol,
        backends,
        _expected(state, expect, backends, reach, is_service=True),
    )


def _source_node(state: ClusterState, src: Source) -> str:
    if src.kind == "pod":
        return find_pod(state, src).node
    if src.kind == "node":
        return src.name
    return state.nodes[0].name


def _dns_plan(state: ClusterState, spec: DnsCheck) -> DnsPlan:
    expect = spec.expect
    answers = None
    if expect.answers is not None:
        found: set[str] = set()
        problems: list[ResolveError] = []
        for i, token in enumerate(expect.answers):
            try:
                found |= _answer_token(state, spec, token)
            except ResolveError as exc:
                problems += [
                    ResolveError(str(e), f"expect.answers[{i}]", e.hint) for e in exc.errors
                ]
        if problems:
            raise ResolveErrors(problems)
        answers = frozenset(found)
    cname = norm(expect.cname) if expect.cname else None
    return DnsPlan(spec.query, spec.qtype, spec.search, expect.rcode, answers, cname)


def _answer_token(state: ClusterState, spec: DnsCheck, token: str) -> set[str]:
    """``service/…``, ``endpoints/…``, ``pod/…``, ``external/…`` or a literal answer."""
    kind, sep, ref = token.partition("/")
    if not sep or kind not in ("service", "endpoints", "pod", "external") or not ref:
        return {norm(token)}
    if kind == "external":
        for server in state.lab.external_servers:
            if server.name == ref:
                return {server.address}
        raise ResolveError(
            f'external server "{ref}" not found',
            "expect",
            choices_hint("external servers", ref, [s.name for s in state.lab.external_servers]),
        )
    ns, _, name = ref.rpartition("/")
    if kind == "pod":
        return {find_pod(state, Source("pod", name, ns)).ip}
    svc = find_service(state, ns or _default_namespace(state, spec.source, name), name, "expect")
    if kind == "service":
        if not svc.cluster_ip or svc.headless:
            raise ResolveError(
                f"Service {svc.meta.name} has no ClusterIP",
                "expect",
                "use endpoints/NAME for a headless Service",
            )
        return {svc.cluster_ip}
    return {b.ip for b in ready_endpoints(state, svc, None)}


def _backends_for_address(
    state: ClusterState, ip: str, port: int, protocol: str
) -> tuple[Service | None, tuple[Backend, ...]]:
    """For a raw ClusterIP:port or nodeIP:nodePort destination, the Service and its endpoints."""
    for svc in state.services:
        for sp in svc.ports:
            if sp.protocol != protocol:
                continue
            local = ip.startswith("127.") or any(ip in local_addresses(n) for n in state.nodes)
            node_hit = sp.node_port == port and local
            if (
                (svc.cluster_ip == ip and sp.port == port)
                or node_hit
                or (ip in svc.load_balancer_ingress and sp.port == port)
            ):
                return svc, tuple(
                    backend_of(state, e) for e in service_endpoints(state, svc, sp).values()
                )
    return None, ()


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
                "headless and ExternalName Services are reached by name: {service: NAME, via: "
                "name, port: P}",
            )
        return svc.cluster_ip, sp.port, client_node or first, False
    if via == "nodePort":
        if not sp.node_port:
            raise ResolveError(
                f"Service {svc.meta.name} port {sp.name or sp.port} has no nodePort",
                "to.via",
                "use type: NodePort or LoadBalancer",
            )
        node = find_node(state, dest.node or first, "to.node")
        return node.ip, sp.node_port, node.name, True
    if via == "loadBalancer":
        if not svc.load_balancer_ingress:
            raise ResolveError(
                f"Service {svc.meta.name} has no load-balancer IP",
                "to.via",
                "only a Service of type LoadBalancer gets one",
            )
        return svc.load_balancer_ingress[0], sp.port, client_node or first, True
    if via == "externalIP":
        if not svc.external_ips:
            raise ResolveError(
                f"Service {svc.meta.name} has no externalIPs",
                "to.via",
                "add spec.externalIPs to the Service, or dial it another way",
            )
        return svc.external_ips[0], sp.port, client_node or first, True
    raise ResolveError(
        f"via {via} is not supported",
        "to.via",
        "via is clusterIP, nodePort, name, loadBalancer or externalIP",
    )


def _expected(
    state: ClusterState,
    expect: ConnectExpect,
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
    problems: list[ResolveError] = []
    for i, item in enumerate(expect.endpoints):
        if item.startswith("node/"):
            node = item.removeprefix("node/")
            if node not in {n.name for n in state.nodes}:
                problems.append(
                    ResolveError(
                        f'node "{node}" not found',
                        f"expect.endpoints[{i}]",
                        choices_hint("nodes", node, [n.name for n in state.nodes]),
                    )
                )
            chosen += [b for b in backends if b.node == node]
            continue
        match = [b for b in backends if b.pod == item]
        if not match:
            names = sorted(b.pod for b in backends)
            problems.append(
                ResolveError(
                    f'"{item}" is not an endpoint of this destination',
                    f"expect.endpoints[{i}]",
                    choices_hint("endpoints", item, names)
                    + "; node/NODE stands for the endpoints on a node",
                )
            )
        chosen += match
    if problems:
        raise ResolveErrors(problems)
    return tuple(dict.fromkeys(chosen))


def default_connections(expect: ConnectExpect, expected: tuple[Backend, ...] | None) -> int:
    """Enough connections that missing one of k expected endpoints by chance is below 1e-6."""
    if expect.result != "connected":
        return DEFAULT_FAILURE_CONNECTIONS
    k = len(expected or ()) or 1
    return max(10, math.ceil(k * math.log(k / MISS_PROBABILITY)))


def check_references(state: ClusterState, spec: CheckSpec) -> list[ResolveError]:
    """Everything a check names that the lab lacks, looked up one by one (its source, its
    Service, the Service's port, its node), so that a check wrong in two places says both."""
    problems: list[ResolveError] = []

    def attempt(find: Callable[[], T]) -> T | None:
        try:
            return find()
        except ResolveError as exc:
            problems.extend(exc.errors)
            return None

    source_known = attempt(lambda: resolve_source(state, spec.source)) is not None
    if isinstance(spec, ConnectCheck):
        dest = spec.destination
        if dest.service:
            ns = dest.namespace or (
                _default_namespace(state, spec.source, dest.service) if source_known else "default"
            )
            svc = attempt(lambda: find_service(state, ns, dest.service))
            if svc is not None and svc.type != "ExternalName":
                attempt(lambda: service_port(svc, dest.port, spec.protocol, "to.port"))
        if dest.node:
            attempt(lambda: find_node(state, dest.node, "to.node"))
    return problems


def resolve_all(
    state: ClusterState, checks: list[CheckSpec], mode: str = "iptables"
) -> tuple[list[ResolvedCheck], list[Diagnostic]]:
    """Resolve every check; everything a check names that is missing becomes a diagnostic at
    the field that names it, with the valid choices in its hint."""
    out: list[ResolvedCheck] = []
    diags: list[Diagnostic] = []
    for spec in checks:
        try:
            out.append(resolve(state, spec, mode))
        except ResolveError as exc:
            problems = check_references(state, spec) or exc.errors
            diags.extend(located(spec, p) for p in problems)
    return out, diags


def located(spec: CheckSpec, problem: ResolveError, prefix: str = "") -> Diagnostic:
    """A resolution problem as a diagnostic at its field (``prefix`` leads a per-mode field:
    ``modes.ipvs.``)."""
    field_name = prefix + problem.field_name if problem.field_name else ""
    o = spec.origin
    line, col, path = o.at(field_name) if o else (0, 0, "")
    return Diagnostic(
        message=str(problem),
        file=o.file if o else "",
        line=line,
        col=col,
        path=path,
        hint=problem.hint or "see the check kinds in docs/scenarios.md",
        category=f"check {spec.name}",
    )
