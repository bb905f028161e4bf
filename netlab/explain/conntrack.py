"""Connection-tracking entries as ``conntrack -L`` prints them: parsed, judged (DNAT, SNAT) and
named, original and reply direction side by side.

The kernel writes one entry per connection with two tuples: the *original* one, as the first
packet arrived, and the *reply* one, as answers are expected back. When NAT happened the two
disagree: a reply from somewhere other than where the client sent means DNAT; a reply to
somewhere other than where it came from means SNAT (masquerade).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from netlab.explain.addresses import AddressBook


@dataclass(frozen=True)
class Tuple:
    src: str
    dst: str
    sport: int = 0
    dport: int = 0

    def reverse(self) -> Tuple:
        return Tuple(self.dst, self.src, self.dport, self.sport)

    def __str__(self) -> str:
        if not self.sport and not self.dport:
            return f"{self.src} -> {self.dst}"
        return f"{self.src}:{self.sport} -> {self.dst}:{self.dport}"


@dataclass(frozen=True)
class Flow:
    """One conntrack entry."""

    proto: str  # "tcp" | "udp" | "icmp" | ...
    original: Tuple
    reply: Tuple
    state: str = ""  # TCP state (ESTABLISHED, TIME_WAIT, ...); "" for other protocols
    timeout: int = 0
    flags: tuple[str, ...] = ()  # ASSURED, UNREPLIED
    mark: int = 0
    id: int = 0

    @property
    def dnat(self) -> bool:
        """The answer comes from elsewhere than the client dialled."""
        return (self.reply.src, self.reply.sport) != (self.original.dst, self.original.dport)

    @property
    def snat(self) -> bool:
        """The answer goes elsewhere than the client sent from (masquerade)."""
        return (self.reply.dst, self.reply.dport) != (self.original.src, self.original.sport)

    @property
    def nat(self) -> str:
        kinds = [k for k, on in (("DNAT", self.dnat), ("SNAT", self.snat)) if on]
        return "+".join(kinds)

    def involves(self, t: Tuple) -> bool:
        """Whether a packet with tuple ``t`` (either direction) belongs to this connection."""
        own = {self.original, self.reply, self.original.reverse(), self.reply.reverse()}
        return t in own


_HEAD = re.compile(r"^(?:ipv4\s+\d+\s+)?(?P<proto>[a-z0-9]+)\s+(?P<num>\d+)\s+(?P<timeout>\d+)\s")
_KV = re.compile(r"(\w+)=(\S+)")


def parse_flows(text: str) -> list[Flow]:
    """Every entry of ``conntrack -L`` output (optionally ``-o extended,id``)."""
    out: list[Flow] = []
    for line in text.splitlines():
        head = _HEAD.match(line)
        if not head:
            continue
        rest = line[head.end() :]
        words = rest.split()
        state = words[0] if words and "=" not in words[0] and not words[0].startswith("[") else ""
        tuples: list[dict[str, str]] = []
        extra: dict[str, str] = {}
        for key, value in _KV.findall(rest):
            if key == "src":
                tuples.append({})
            if key in ("src", "dst", "sport", "dport") and tuples and len(tuples) <= 2:
                tuples[-1][key] = value
            else:
                extra[key] = value
        if len(tuples) < 2:
            continue
        o, r = (
            Tuple(t["src"], t.get("dst", ""), int(t.get("sport", 0)), int(t.get("dport", 0)))
            for t in tuples[:2]
        )
        out.append(
            Flow(
                proto=head.group("proto"),
                original=o,
                reply=r,
                state=state,
                timeout=int(head.group("timeout")),
                flags=tuple(re.findall(r"\[(\w+)\]", rest)),
                mark=int(extra.get("mark", "0"), 0),
                id=int(extra.get("id", "0")),
            )
        )
    return out


@dataclass(frozen=True)
class NamedFlow:
    """A flow with a name beside every address, for people."""

    flow: Flow
    original_src: str
    original_dst: str
    reply_src: str
    reply_dst: str

    def to_dict(self) -> dict[str, object]:
        f = self.flow
        return {
            "proto": f.proto,
            "state": f.state,
            "nat": f.nat,
            "timeout": f.timeout,
            "flags": list(f.flags),
            "original": {
                "src": f"{f.original.src}:{f.original.sport}",
                "dst": f"{f.original.dst}:{f.original.dport}",
                "src_name": self.original_src,
                "dst_name": self.original_dst,
            },
            "reply": {
                "src": f"{f.reply.src}:{f.reply.sport}",
                "dst": f"{f.reply.dst}:{f.reply.dport}",
                "src_name": self.reply_src,
                "dst_name": self.reply_dst,
            },
        }


def name_flow(flow: Flow, book: AddressBook) -> NamedFlow:
    p = flow.proto
    o, r = flow.original, flow.reply
    return NamedFlow(
        flow,
        book.name(o.src),
        book.name(o.dst, o.dport, p),
        book.name(r.src, r.sport, p),
        book.name(r.dst),
    )


@dataclass
class FlowTable:
    """The NATed flows of one node, as the conntrack view shows them."""

    node: str
    flows: list[NamedFlow] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(protocol/state, original, reply, NAT) per flow, names in parentheses."""
        out = []
        for nf in self.flows:
            f = nf.flow
            proto = f"{f.proto} {f.state}".strip()
            out.append(
                (
                    proto,
                    _side(f.original, nf.original_src, nf.original_dst),
                    _side(f.reply, nf.reply_src, nf.reply_dst),
                    f.nat,
                )
            )
        return out

    def text(self) -> list[str]:
        """Plain text: one line per flow, original and reply side by side."""
        rows = self.rows()
        if not rows:
            return [f"node/{self.node}: no NATed flows"]
        head = (
            "PROTO",
            "ORIGINAL (as the client sent it)",
            "REPLY (as the answer comes back)",
            "NAT",
        )
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(3)]
        lines = [f"node/{self.node}"]
        for r in [head, *rows]:
            lines.append(
                "  " + "  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:3])) + "  " + r[3]
            )
        return [ln.rstrip() for ln in lines]


def _side(t: Tuple, src_name: str, dst_name: str) -> str:
    src = f"{t.src}:{t.sport}" + (f" ({src_name})" if src_name else "")
    dst = f"{t.dst}:{t.dport}" + (f" ({dst_name})" if dst_name else "")
    return f"{src} -> {dst}"


def nat_table(
    node: str, flows: list[Flow], book: AddressBook, service_addresses: set[tuple[str, int]] | None
) -> FlowTable:
    """The NATed flows (DNAT or SNAT) of a node, named; with ``service_addresses`` only those
    dialled at one of them (a Service's ``(address, port)`` pairs, NodePorts included)."""
    table = FlowTable(node)
    for f in flows:
        if not (f.dnat or f.snat):
            continue
        if service_addresses is not None and (f.original.dst, f.original.dport) not in (
            service_addresses
        ):
            continue
        table.flows.append(name_flow(f, book))
    table.flows.sort(key=lambda nf: (nf.flow.proto, str(nf.flow.original)))
    return table
