"""A trace report as a tree of lines: a front end draws it (a tree on a terminal), or prints it
indented (plain text, and the tutorial's generated sections)."""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.explain.trace.report import CLIENT, ORIGINAL, PacketTrace, TraceReport


@dataclass
class TreeNode:
    label: str
    children: list[TreeNode] = field(default_factory=list)

    def add(self, label: str) -> TreeNode:
        child = TreeNode(label)
        self.children.append(child)
        return child

    def lines(self, indent: str = "  ") -> list[str]:
        """Plain text: the label, then every child indented under it."""
        out = [self.label]
        for c in self.children:
            out += [indent + ln for ln in c.lines(indent)]
        return out


def _outcome(r: TraceReport) -> str:
    if r.outcome == "connected":
        how = "masqueraded" if r.masqueraded else "the client's own address"
        return (
            f"connected: answered by {r.answered_by} ({r.backend}), which saw the client as "
            f"{r.seen_source} ({how})"
        )
    text = f"{r.outcome}" + (f" ({r.error})" if r.error else "")
    return text + (f"; {r.decided_by}" if r.decided_by else "")


def _packet_label(p: PacketTrace) -> str:
    way = "first packet" if p.direction == ORIGINAL else "first reply"
    whose = "" if p.connection == CLIENT else "the proxy's connection, "
    return f"node/{p.node}: {whose}{way} {p.packet}"


def report_tree(r: TraceReport) -> TreeNode:
    root = TreeNode(
        f"trace {r.lab}: {r.source} {r.client} -> {r.destination} {r.dialled}/{r.protocol} "
        f"({r.proxy})"
    )
    root.add(_outcome(r))
    if r.path:
        root.add("path: " + " -> ".join(str(h) for h in r.path))
    if r.reply_path:
        root.add("reply: " + " -> ".join(str(h) for h in r.reply_path))
    if r.proxy_path:
        root.add("the proxy's connection: " + " -> ".join(str(h) for h in r.proxy_path))
    for p in r.packets:
        node = root.add(_packet_label(p))
        for ps in p.passes:
            where = ", ".join(
                x for x in (ps.iif and f"in {ps.iif}", ps.oif and f"out {ps.oif}") if x
            )
            head = node.add(f"{ps.hook}" + (f" ({where})" if where else "") + f": {ps.packet}")
            for note in ps.notes:
                head.add(f"* {note}")
            for s in ps.steps:
                head.add(f"{s.rule}  => {s.verdict}" if s.rule else f"{s.chain}: {s.verdict}")
        node.add(f"=> {p.fate}")
    if r.conntrack:
        ct = root.add("conntrack")
        for nf in r.conntrack:
            f = nf.flow
            o, rp = f.flow.original, f.flow.reply
            label = "" if nf.connection == CLIENT else " (the proxy's connection)"
            what = " ".join(x for x in (f.flow.proto, f.flow.state, f.flow.nat or "no NAT") if x)
            entry = ct.add(f"node/{nf.node}: {what}{label}")
            original = f"{_side(o.src, o.sport, f.original_src)} -> "
            entry.add(f"original: {original}{_side(o.dst, o.dport, f.original_dst)}")
            reply = f"{_side(rp.src, rp.sport, f.reply_src)} -> "
            entry.add(f"reply:    {reply}{_side(rp.dst, rp.dport, f.reply_dst)}")
    if r.ipvs:
        ipvs = root.add("IPVS connections")
        for line in r.ipvs:
            ipvs.add(line)
    if r.maps:
        maps = root.add("eBPF map entries met (as cilium-dbg shows them)")
        for line in r.maps:
            maps.add(line)
    if r.more_packets:
        root.add(f"{r.more_packets} more packets of these connections were traced (not shown)")
    return root


def _side(ip: str, port: int, name: str) -> str:
    where = f"{ip}:{port}" if port else ip
    return f"{where} ({name})" if name else where
