"""``netlab trace``: one real connection through a live lab, and the path the kernel took.

Tracing is switched on in every node namespace for this connection's packets only (the client
socket is bound first, so its address and port are known), a trace monitor runs in each node,
one connection is made, conntrack and IPVS's connection table are read right after it, then
tracing is switched off again. Everything shown comes from those kernel records; the pure
:mod:`netlab.explain.trace` puts them together.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Protocol, runtime_checkable

import yaml

from netlab import checks
from netlab.checks.model import ResolvedConnect
from netlab.cluster.state import ClusterState, Node
from netlab.errors import LabError, PrerequisiteError, UsageError
from netlab.explain.addresses import address_book
from netlab.explain.conntrack import parse_flows
from netlab.explain.trace.events import HookPass, parse_nft, parse_xtables
from netlab.explain.trace.ipvs import parse_connections
from netlab.explain.trace.report import TraceInput, TraceReport, build
from netlab.explain.trace.select import FlowSelect
from netlab.kernel import conntrack, tracing
from netlab.lab.record import LabRecord
from netlab.proxy.base import Proxier
from netlab.scenario.checkspec import (
    ConnectCheck,
    ConnectExpect,
    Destination,
    parse_destination,
    parse_source,
)
from netlab.traffic import dnsquery, probe


class Lab(Protocol):
    """What a trace needs of a live lab (:class:`netlab.lab.lifecycle.Lab` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> ClusterState: ...
    @property
    def proxier(self) -> Proxier: ...
    @property
    def record(self) -> LabRecord: ...


@runtime_checkable
class ConsultsMaps(Protocol):
    """A proxier whose state is maps a connection is looked up in (the ebpf mode)."""

    def maps_consulted(
        self, node: Node, client: tuple[str, int], dialled: tuple[str, int], protocol: str
    ) -> list[str]: ...


GRACE = 0.15  # seconds for the connection's last packets (FIN, ACK) to be reported
SOURCE_HINT = "FROM is pod/NAME, pod/NAMESPACE/NAME, node/NODE, external or external/CLIENT"
DEST_HINT = (
    "TO is service/[NAMESPACE/]NAME[:PORT], IP:PORT, node/NODE:PORT, or a mapping such as "
    "'{service: web, via: nodePort, node: node-2}'"
)


def parse_target(text: str) -> Destination:
    """A TO argument: the strings a check's ``to`` takes, or its mapping form in YAML."""
    value: Any = text
    if text.lstrip().startswith("{"):
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"cannot read {text!r} as a mapping: {exc}", hint=DEST_HINT) from None
        if not isinstance(value, dict):
            raise UsageError(f"{text!r} is not a mapping", hint=DEST_HINT)
    try:
        return parse_destination(value)
    except (ValueError, TypeError, AttributeError):
        raise UsageError(f"unknown destination {text!r}", hint=DEST_HINT) from None


def _resolve(lab: Lab, source: str, destination: str, protocol: str | None) -> ResolvedConnect:
    src = parse_source(source)
    if src.kind not in ("pod", "node", "external") or (src.kind != "external" and not src.name):
        raise UsageError(f"unknown source {source!r}", hint=SOURCE_HINT)
    proto = protocol.upper() if protocol else None
    if proto not in (None, "TCP", "UDP"):
        raise UsageError(f"unknown protocol {protocol!r}", hint="use TCP or UDP")
    spec = ConnectCheck(
        name="trace",
        source=src,
        destination=parse_target(destination),
        protocol=proto,
        connections=1,
        expect=ConnectExpect(endpoints=None),
    )
    try:
        return checks.resolve(lab.state, spec, lab.record.mode)
    except checks.ResolveError as exc:
        raise UsageError(str(exc), hint=exc.hint) from None


def _trace_kind(lab: Lab) -> str:
    mode = lab.record.mode
    if mode == "nftables":
        return "nft"
    if mode not in ("iptables", "ipvs", "userspace", "ebpf"):
        raise UsageError(f"netlab trace does not know the {mode} mode yet")
    if getattr(lab.proxier, "backend", "nft") != "nft":
        raise PrerequisiteError(
            "tracing needs the nft back end of iptables; this lab uses the legacy one",
            hint="the legacy back end reports TRACE only to the kernel log of the host's own "
            "namespace; set spec.proxy.iptablesBackend: nft",
        )
    return "xtables"


MAX_ATTEMPTS = 60  # with --endpoint: 1 in 3 endpoints misses 60 times with p = 3e-11


def trace(
    lab: Lab,
    source: str,
    destination: str,
    protocol: str | None = None,
    timeout: float = 2.0,
    endpoint: str = "",
) -> TraceReport:
    """Make one connection from ``source`` to ``destination`` and report its path. With
    ``endpoint`` (a pod name), connect again until the kernel picks that endpoint (each
    connection is traced afresh; the choice stays the kernel's)."""
    resolved = _resolve(lab, source, destination, protocol)
    if endpoint:
        names = sorted(b.pod for b in resolved.backends)
        wanted = endpoint.removeprefix("pod/").rpartition("/")[2]
        if wanted not in names:
            raise UsageError(
                f"{endpoint} is not an endpoint of {destination}",
                hint=f"endpoints: {', '.join(names) or 'none'}",
            )
        for _ in range(MAX_ATTEMPTS):
            report = _trace_once(lab, resolved, source, timeout)
            if report.answered_by.rpartition("/")[2] == wanted:
                return report
        raise LabError(f"{wanted} did not answer in {MAX_ATTEMPTS} connections")
    return _trace_once(lab, resolved, source, timeout)


def _trace_once(lab: Lab, resolved: ResolvedConnect, source: str, timeout: float) -> TraceReport:
    kind = _trace_kind(lab)
    if lab.record.mode == "ebpf" and resolved.spec.source.kind == "node":
        raise UsageError(
            "netlab trace cannot trace a node's own connection in ebpf mode: socket LB rewrites "
            "connect() of processes in the node's cgroup, before any packet exists to trace",
            hint=f"trace from a pod or external, or run netlab exec {lab.name} {source} -- curl "
            "... and look at netlab rules (cilium-dbg views)",
        )
    state = lab.state
    dest_ip = resolved.dest_ip
    if resolved.dial_name:
        assert resolved.resolv is not None
        answer = dnsquery.resolve(resolved.resolv, resolved.dial_name, "A", timeout=timeout)
        names = answer.data("A") if answer.ok else []
        if not names:
            raise UsageError(f"{resolved.dial_name} does not resolve from {source}")
        dest_ip = names[0]
    proto = resolved.protocol
    sock = probe.bind_client(resolved.source_netns, proto, dest_ip, resolved.bind)
    client_ip, client_port = sock.getsockname()
    select = FlowSelect(
        proto.lower(),
        client_ip,
        client_port,
        tuple(dict.fromkeys((b.ip, b.port) for b in resolved.backends)),
    )
    texts: dict[str, str] = {}
    flows = {}
    ipvs = {}
    maps: dict[str, list[str]] = {}
    try:
        with contextlib.ExitStack() as stack:
            monitors = {}
            for node in state.nodes:
                stack.enter_context(tracing.switched_on(node.netns, kind, select))
                m = tracing.Monitor(lab.name, node.netns, kind)
                stack.callback(m.close)
                m.start()
                monitors[node.name] = m
            obs = probe.connect_once(
                resolved.source_netns, sock, dest_ip, resolved.dest_port, proto, timeout
            )
            time.sleep(GRACE)
            for node in state.nodes:
                flows[node.name] = parse_flows(conntrack.listing(node.netns, proto))
                if lab.record.mode == "ipvs":
                    ipvs[node.name] = parse_connections(tracing.ipvs_connections(node.netns))
                if isinstance(lab.proxier, ConsultsMaps):
                    dialled = (dest_ip, resolved.dest_port)
                    found = lab.proxier.maps_consulted(
                        node, (client_ip, client_port), dialled, proto
                    )
                    if found:
                        maps[node.name] = found
            texts = {name: m.stop() for name, m in monitors.items()}
    finally:
        sock.close()
    parse = parse_nft if kind == "nft" else parse_xtables
    passes: dict[str, list[HookPass]] = {n: parse(t) for n, t in texts.items()}
    book = address_book(state)
    backend = next((b for b in resolved.backends if b.pod == obs.hostname), None)
    src = resolved.spec.source
    client_node = ""
    if src.kind == "pod":
        client_node = checks.find_pod(state, src).node
    elif src.kind == "node":
        client_node = src.name
    inp = TraceInput(
        lab=lab.name,
        mode=lab.record.mode,
        proxy=lab.proxier.describe(),
        source=str(src),
        destination=_destination_label(resolved),
        protocol=proto,
        client=(client_ip, client_port),
        dialled=(dest_ip, resolved.dest_port),
        outcome=obs.outcome,
        error=obs.error,
        answered_by=obs.hostname,
        backend=(backend.ip, backend.port) if backend else None,
        seen=(obs.client_ip, obs.client_port) if obs.outcome == "connected" else None,
        client_where=book.host(client_ip) or str(src),
        client_node=client_node,
        backend_where=(book.host(backend.ip) or backend.pod) if backend else obs.hostname,
        passes=passes,
        flows=flows,
        ipvs=ipvs,
        maps=maps,
    )
    return build(inp, book)


def _destination_label(resolved: ResolvedConnect) -> str:
    dest = resolved.spec.destination
    if dest.service:
        target = resolved.summary.split(" -> ", 1)[-1].split(" (", 1)[0]
        return f"service {target}"
    return str(dest)
