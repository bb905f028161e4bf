"""One traced connection, put together from what the kernel reported.

The inputs are kernel records only: the hook passes each node's trace monitor printed, the
node's conntrack table after the connection, IPVS's connection table, and what the backend
answered (its name and the client address it saw). The report keeps the passes that belong to
the traced connection (by the tuples conntrack recorded for it), groups them into packets, and
shows in full the first packet each way through each node; the rest are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.explain.addresses import AddressBook
from netlab.explain.conntrack import Flow, NamedFlow, Tuple, name_flow
from netlab.explain.trace.events import HookPass, PacketHeader, RuleHit
from netlab.explain.trace.ipvs import IpvsConnection
from netlab.explain.trace.select import NFT_TABLE, TRACE_COMMENT

CLIENT, PROXY = "client", "proxy"
ORIGINAL, REPLY = "original", "reply"


@dataclass(frozen=True)
class Step:
    """A rule or lookup a packet met, as the kernel printed it."""

    chain: str
    rule: str
    verdict: str


@dataclass(frozen=True)
class Pass:
    """One base chain a packet crossed."""

    hook: str  # "nat PREROUTING", "kube-proxy nat-prerouting"
    packet: str  # the packet as it was there
    iif: str
    oif: str
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()  # what changed since the previous pass (DNAT, mark, ...)


@dataclass(frozen=True)
class PacketTrace:
    node: str
    connection: str  # "client": the traced connection; "proxy": the userspace proxy's own
    direction: str  # "original" | "reply"
    packet: str  # the packet as it entered the node
    passes: tuple[Pass, ...]
    fate: str  # "forwarded out eth0", "rejected by ...", ...


@dataclass(frozen=True)
class Hop:
    where: str  # "pod/client-node-1", "node/node-1"
    iif: str = ""
    oif: str = ""

    def __str__(self) -> str:
        ifaces = ", ".join(
            x for x in (self.iif and f"in {self.iif}", self.oif and f"out {self.oif}") if x
        )
        return f"{self.where} ({ifaces})" if ifaces else self.where


@dataclass(frozen=True)
class NodeFlow:
    node: str
    connection: str
    flow: NamedFlow


@dataclass
class TraceReport:
    lab: str
    mode: str
    proxy: str
    source: str
    destination: str
    protocol: str
    client: str  # ip:port the client's socket used
    dialled: str  # ip:port it connected to
    outcome: str  # connected | refused | timeout | closed | unreachable | error
    error: str = ""
    answered_by: str = ""  # the backend pod, when one answered
    backend: str = ""  # its ip:port
    seen_source: str = ""  # the client address the backend saw
    masqueraded: bool = False
    path: list[Hop] = field(default_factory=list)
    reply_path: list[Hop] = field(default_factory=list)
    proxy_path: list[Hop] = field(default_factory=list)
    packets: list[PacketTrace] = field(default_factory=list)
    conntrack: list[NodeFlow] = field(default_factory=list)
    ipvs: list[str] = field(default_factory=list)
    maps: list[str] = field(default_factory=list)  # ebpf: the map entries the connection met
    decided_by: str = ""  # the rule that rejected or dropped the connection
    more_packets: int = 0


@dataclass(frozen=True)
class TraceInput:
    """Everything a trace recorded, and what is known of the lab to read it."""

    lab: str
    mode: str
    proxy: str
    source: str
    destination: str
    protocol: str
    client: tuple[str, int]
    dialled: tuple[str, int]
    outcome: str
    error: str
    answered_by: str  # pod name ("" when nothing answered)
    backend: tuple[str, int] | None  # the answering endpoint
    seen: tuple[str, int] | None  # the client address the backend saw
    client_where: str  # "pod/client-node-1", "node/node-2", "external"
    client_node: str  # the node a pod or node client sits on ("" for external)
    backend_where: str  # "pod/web-..." ("" when nothing answered)
    passes: dict[str, list[HookPass]]  # node -> hook passes, as printed
    flows: dict[str, list[Flow]]  # node -> conntrack entries
    ipvs: dict[str, list[IpvsConnection]] = field(default_factory=dict)
    maps: dict[str, list[str]] = field(default_factory=dict)  # node -> eBPF map entries


def _ours(p: HookPass) -> bool:
    """A pass that only met netlab's own tracing rules (not kube-proxy's)."""
    if p.table == NFT_TABLE:
        return True
    rules = [h for h in p.hits if h.rule]
    return p.table == "raw" and all(TRACE_COMMENT in h.rule for h in rules)


def _tuple(h: PacketHeader) -> Tuple:
    return Tuple(h.src, h.dst, h.sport, h.dport)


@dataclass
class _Conn:
    label: str
    flow: Flow | None
    seeds: tuple[Tuple, ...] = ()

    def direction(self, t: Tuple) -> str:
        if self.flow is not None:
            # Either side may already be translated: between DNAT (PREROUTING, OUTPUT) and
            # SNAT (POSTROUTING) a packet carries one of each.
            f = self.flow
            o, r = f.original, f.reply
            src, dst = (t.src, t.sport), (t.dst, t.dport)
            if src in ((o.src, o.sport), (r.dst, r.dport)) and dst in (
                (o.dst, o.dport),
                (r.src, r.sport),
            ):
                return ORIGINAL if (src, dst) != ((r.src, r.sport), (r.dst, r.dport)) else REPLY
            if src in ((r.src, r.sport), (o.dst, o.dport)) and dst in (
                (r.dst, r.dport),
                (o.src, o.sport),
            ):
                return REPLY
        for s in self.seeds:
            if t == s:
                return ORIGINAL
            if t == s.reverse():
                return REPLY
        return ""


def build(inp: TraceInput, book: AddressBook) -> TraceReport:
    proto = inp.protocol.lower()
    t0 = Tuple(inp.client[0], inp.dialled[0], inp.client[1], inp.dialled[1])
    seen = (
        Tuple(inp.seen[0], inp.backend[0], inp.seen[1], inp.backend[1])
        if inp.seen and inp.backend
        else None
    )
    seeds = (t0,) if seen is None else (t0, seen)
    report = TraceReport(
        lab=inp.lab,
        mode=inp.mode,
        proxy=inp.proxy,
        source=inp.source,
        destination=inp.destination,
        protocol=inp.protocol,
        client=f"{inp.client[0]}:{inp.client[1]}",
        dialled=f"{inp.dialled[0]}:{inp.dialled[1]}",
        outcome=inp.outcome,
        error=inp.error,
        answered_by=inp.backend_where,
        backend=f"{inp.backend[0]}:{inp.backend[1]}" if inp.backend else "",
        seen_source=f"{inp.seen[0]}:{inp.seen[1]}" if inp.seen else "",
        masqueraded=bool(inp.seen) and inp.seen != inp.client,
    )
    # The connections each node tracked for this trace.
    conns: dict[str, list[_Conn]] = {}
    for node, flows in inp.flows.items():
        mine: list[_Conn] = []
        for f in flows:
            if f.proto != proto:
                continue
            if f.involves(t0):
                mine.append(_Conn(CLIENT, f))
            elif seen is not None and f.involves(seen):
                label = PROXY if inp.mode == "userspace" and node == inp.client_node else CLIENT
                mine.append(_Conn(label, f))
        mine.append(_Conn(CLIENT, None, seeds))  # what conntrack did not keep (rejected, dropped)
        conns[node] = mine
        report.conntrack += [
            NodeFlow(node, c.label, name_flow(c.flow, book)) for c in mine if c.flow
        ]
    for node in inp.passes:
        conns.setdefault(node, [_Conn(CLIENT, None, seeds)])
    # conntrack lists entries in hash order: show them in a stable one
    report.conntrack.sort(
        key=lambda nf: (nf.node, nf.connection != CLIENT, str(nf.flow.flow.original))
    )

    # Group each node's passes into packets of a connection and direction.
    packets: dict[tuple[str, str, str], list[list[HookPass]]] = {}
    by_key: dict[tuple[object, ...], list[HookPass]] = {}
    flow_of: dict[int, Flow | None] = {}
    for node, passes in inp.passes.items():
        for p in passes:
            if _ours(p):
                continue
            h = p.header
            label = direction = ""
            flow: Flow | None = None
            for i, c in enumerate(conns[node]):
                direction = c.direction(_tuple(h))
                if direction:
                    label, flow = f"{c.label}:{i}", c.flow
                    break
            # An ICMP error to the client (xtables-monitor prints no protocol for ICMP).
            icmp = h.proto == "icmp" or (not h.proto and not h.sport and not h.dport)
            if not direction and icmp and h.dst == inp.client[0]:
                label, direction, flow = f"{CLIENT}:icmp", REPLY, None
            if not direction:
                continue
            key = (node, label, direction, h.ip_id, h.length, h.flags)
            group = by_key.get(key)
            if group is None:
                group = by_key[key] = []
                flow_of[id(group)] = flow
                packets.setdefault((node, label.split(":")[0], direction), []).append(group)
            group.append(p)

    order = _node_order(inp, packets, t0)
    shown = 0
    total = 0
    for connection in (CLIENT, PROXY):
        for direction in (ORIGINAL, REPLY):
            nodes = order if direction == ORIGINAL else list(reversed(order))
            for node in nodes:
                groups = packets.get((node, connection, direction), [])
                total += len(groups)
                if groups:
                    flow = flow_of[id(groups[0])]
                    report.packets.append(_packet(node, connection, direction, groups[0], flow))
                    shown += 1
    report.more_packets = total - shown
    report.decided_by = _decider(report.packets) if inp.outcome != "connected" else ""
    report.path = _path(inp, report.packets, CLIENT, ORIGINAL)
    report.reply_path = _path(inp, report.packets, CLIENT, REPLY)
    if inp.mode == "userspace":
        report.proxy_path = _path(inp, report.packets, PROXY, ORIGINAL)
    for node, table in sorted(inp.ipvs.items()):
        for entry in table:
            ours = entry.source == inp.client or (inp.seen is not None and entry.source == inp.seen)
            if ours and entry.proto.lower() == proto:
                report.ipvs.append(f"node/{node}: {entry.describe()}")
    for node, lines in sorted(inp.maps.items()):
        report.maps += [f"node/{node}: {line}" for line in lines]
    return report


def _node_order(
    inp: TraceInput, packets: dict[tuple[str, str, str], list[list[HookPass]]], t0: Tuple
) -> list[str]:
    """Nodes in the order the connection's first packet crossed them: the client's own node,
    then those that saw the packet as the client sent it, then the rest."""
    nodes = sorted({n for n, _, _ in packets})

    def rank(node: str) -> tuple[int, str]:
        if node == inp.client_node:
            return (0, node)
        groups = packets.get((node, CLIENT, ORIGINAL), [])
        if groups and _tuple(groups[0][0].header) == t0:
            return (1, node)
        return (2, node)

    return sorted(nodes, key=rank)


def _packet(
    node: str, connection: str, direction: str, group: list[HookPass], flow: Flow | None
) -> PacketTrace:
    out: list[Pass] = []
    prev: PacketHeader | None = None
    for p in group:
        h = p.header
        notes: list[str] = []
        if prev is not None:
            if (h.dst, h.dport) != (prev.dst, prev.dport):
                notes.append(f"DNAT: destination {prev.dst}:{prev.dport} -> {h.dst}:{h.dport}")
            if (h.src, h.sport) != (prev.src, prev.sport):
                notes.append(f"SNAT: source {prev.src}:{prev.sport} -> {h.src}:{h.sport}")
            if h.mark != prev.mark:
                notes.append(f"packet mark {prev.mark:#x} -> {h.mark:#x}")
        steps = tuple(
            Step(hit.chain, hit.rule, _verdict(hit))
            for hit in p.hits
            if TRACE_COMMENT not in hit.rule
        )
        out.append(Pass(p.hook, h.describe(), h.iif, h.oif, steps, tuple(notes)))
        prev = h
    first = group[0].header
    fate = _fate(group)
    masqueraded = any(
        "MASQUERADE" in hit.rule or "masquerade" in hit.rule for p in group for hit in p.hits
    )
    if flow is not None and flow.snat and direction == ORIGINAL and masqueraded:
        r = flow.reply
        fate += f", its source masqueraded to {r.dst}:{r.dport} (conntrack's reply tuple)"
    return PacketTrace(node, connection, direction, first.describe(), tuple(out), fate)


def _verdict(hit: RuleHit) -> str:
    return f"policy {hit.verdict}" if hit.policy else hit.verdict


def _fate(group: list[HookPass]) -> str:
    for p in group:
        for hit in p.hits:
            if hit.verdict == "drop" and not hit.policy:
                if "reject" in hit.rule.lower():
                    return f"rejected by {hit.chain}: {hit.rule}"
                return f"dropped by {hit.chain}: {hit.rule}"
    last = group[-1]
    hooks = {p.chain.lower() for p in group}
    if any("input" in c for c in hooks) and not last.header.oif:
        return "delivered to a socket on the node"
    if last.header.oif:
        return f"sent out {last.header.oif}"
    return "accepted"


def _decider(packets: list[PacketTrace]) -> str:
    for pk in packets:
        if pk.fate.startswith(("rejected", "dropped")):
            return pk.fate
    return ""


def _path(
    inp: TraceInput, packets: list[PacketTrace], connection: str, direction: str
) -> list[Hop]:
    mine = [p for p in packets if p.connection == connection and p.direction == direction]
    if not mine:
        return []
    hops = [Hop(f"node/{p.node}", p.passes[0].iif if p.passes else "", _last_oif(p)) for p in mine]
    client = Hop(inp.client_where, oif="eth0" if inp.client_where.startswith("pod/") else "")
    backend_end = Hop(inp.backend_where, iif="eth0") if inp.backend_where else None
    if connection == PROXY:
        return [*hops, *([backend_end] if backend_end else [])]
    if direction == ORIGINAL:
        ends = hops if client.where in (h.where for h in hops) else [client, *hops]
        if backend_end and inp.mode != "userspace":
            ends.append(backend_end)
        return ends
    start = (
        [Hop(inp.backend_where, oif="eth0")]
        if inp.backend_where and inp.mode != "userspace"
        else []
    )
    end = Hop(inp.client_where, iif="eth0" if inp.client_where.startswith("pod/") else "")
    return [*start, *hops] + ([] if end.where in (h.where for h in hops) else [end])


def _last_oif(p: PacketTrace) -> str:
    for ps in reversed(p.passes):
        if ps.oif:
            return ps.oif
    return ""
