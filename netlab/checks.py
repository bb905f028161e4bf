"""Checks: what a scenario expects of its Services, and the verdict on what real packets did.

The shape is that of kube-proxy's own packet-flow tests: a source (pod, node, external client),
a protocol and a destination (a Service's ClusterIP or NodePort, or a raw address), and the
expected outcome: which endpoints answer (all, a named set, none), or REJECT (refused) or DROP
(timeout), and whether the backends saw the client's own address or a masqueraded one.

Everything here is pure: :func:`resolve` turns a check into concrete addresses from the cluster
state, the traffic layer produces observations, and :func:`evaluate` compares.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from netlab.cluster.state import ClusterState, PodInfo
from netlab.errors import Diagnostic
from netlab.proxy.servicemap import EndpointInfo, ProxiedService, categorize, node_view
from netlab.scenario.k8s import Service, ServicePort
from netlab.scenario.labspec import CLIENT_NAMESPACE, CheckSpec, Destination, Expect, Source
from netlab.traffic.capture import CapturedPacket
from netlab.traffic.probe import Observation

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

    @property
    def name(self) -> str:
        return self.spec.name


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
    state: ClusterState, svc: Service, sp: ServicePort, node: str, external: bool
) -> tuple[tuple[EndpointInfo, ...], bool]:
    """The endpoints Kubernetes says a connection through ``node`` may reach, and whether the
    Service has usable endpoints anywhere (to tell DROP from REJECT)."""
    ps = _proxied(state, svc, sp, node)
    if ps is None:
        return (), False
    cat = categorize(ps.info, ps.endpoints)
    local = ps.info.external_policy_local if external else ps.info.internal_policy_local
    return (cat.local if local else cat.cluster), cat.has_any


def _default_namespace(state: ClusterState, src: Source, service: str) -> str:
    """A Service named without a namespace: the client pod's namespace if it has one of that
    name (as a short DNS name would resolve), else ``default``."""
    if src.kind == "pod":
        ns = find_pod(state, src).namespace
        if any(s.meta.namespace == ns and s.meta.name == service for s in state.services):
            return ns
    return "default"


def resolve(state: ClusterState, spec: CheckSpec) -> ResolvedCheck:
    netns, client_ip, bind, client_node = resolve_source(state, spec.source)
    dest = spec.destination
    expect = spec.expect
    protocol = spec.protocol or "TCP"
    backends: tuple[Backend, ...] = ()
    reachable: tuple[EndpointInfo, ...] = ()
    if dest.service:
        ns = dest.namespace or _default_namespace(state, spec.source, dest.service)
        try:
            svc = state.service(ns, dest.service)
        except KeyError:
            raise ResolveError(f'service "{ns}/{dest.service}" not found', "to") from None
        sp = _service_port(svc, dest.port, spec.protocol)
        protocol = sp.protocol
        all_eps = _backends(state, svc, sp)
        backends = tuple(_backend(state, e) for e in all_eps.values())
        dest_ip, dest_port, via_node, external = _service_address(state, svc, sp, dest, client_node)
        reachable, _ = _reachable(state, svc, sp, via_node, external)
        target = f"{ns}/{svc.meta.name}:{sp.name or sp.port}"
        how = "" if dest.via == "clusterIP" else f" via {dest.via}"
        summary = f"{spec.source} -> {target}{how} ({dest_ip}:{dest_port}/{protocol})"
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
        reachable = ()
    expected = _expected(state, expect, backends, reachable, bool(dest.service))
    return ResolvedCheck(
        spec=spec,
        source_netns=netns,
        source_ip=client_ip,
        bind=bind,
        dest_ip=dest_ip,
        dest_port=dest_port,
        protocol=protocol,
        connections=spec.connections or default_connections(expect, expected),
        backends=backends,
        expected=expected,
        summary=summary,
    )


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
    state: ClusterState, checks: list[CheckSpec]
) -> tuple[list[ResolvedCheck], list[Diagnostic]]:
    """Resolve every check; each one that names something missing becomes a diagnostic."""
    out: list[ResolvedCheck] = []
    diags: list[Diagnostic] = []
    for spec in checks:
        try:
            out.append(resolve(state, spec))
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


def derive(state: ClusterState) -> list[CheckSpec]:
    """Checks for a scenario that wrote none: every Service port, from a client pod on every
    node to its ClusterIP, and from the external client to every node's NodePort."""
    out: list[CheckSpec] = []
    clients = {p.node: p for p in state.pods if p.role == "client"}
    for svc in state.services:
        if svc.meta.namespace == "default" and svc.meta.name == "kubernetes":
            continue
        if svc.type == "ExternalName" or svc.headless:
            continue
        for sp in svc.ports:
            port = sp.name or sp.port
            label = f"{svc.meta.namespace}/{svc.meta.name}:{port}"
            for node in state.nodes:
                client = clients.get(node.name)
                if client is None:
                    continue
                reach, has_any = _reachable(state, svc, sp, node.name, external=False)
                out.append(
                    CheckSpec(
                        name=f"{label} clusterIP from {node.name}",
                        source=Source("pod", client.name, CLIENT_NAMESPACE),
                        destination=Destination(svc.meta.name, svc.meta.namespace, port),
                        protocol=sp.protocol,
                        expect=_derived_expect(reach, has_any, "client"),
                        derived=True,
                    )
                )
            if not sp.node_port:
                continue
            for node in state.nodes:
                reach, has_any = _reachable(state, svc, sp, node.name, external=True)
                local = svc.external_traffic_policy == "Local"
                out.append(
                    CheckSpec(
                        name=f"{label} nodePort {sp.node_port} on {node.name} from external",
                        source=Source("external"),
                        destination=Destination(
                            svc.meta.name, svc.meta.namespace, port, via="nodePort", node=node.name
                        ),
                        protocol=sp.protocol,
                        expect=_derived_expect(
                            reach, has_any, "client" if local else "masqueraded"
                        ),
                        derived=True,
                    )
                )
    return out


def _derived_expect(reach: tuple[EndpointInfo, ...], has_any: bool, source: str) -> Expect:
    if reach:
        return Expect(result="connected", endpoints="all", source=source)
    return Expect(result="timeout" if has_any else "refused")


# Verdict --------------------------------------------------------------------------------------


def evaluate(
    check: ResolvedCheck,
    observations: list[Observation],
    captures: dict[str, list[CapturedPacket]] | None = None,
    seconds: float = 0.0,
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

    expected: dict[str, Any] = {"result": expect.result}
    if check.expected is not None:
        expected["endpoints"] = sorted(b.pod for b in check.expected)
    if expect.source:
        expected["source"] = expect.source
    expected["client"] = check.source_ip
    return CheckResult(
        name=check.name,
        passed=not failures,
        summary=check.summary,
        source=str(check.spec.source),
        destination=f"{check.dest_ip}:{check.dest_port}",
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
