"""Trace events as the kernel's tools print them, parsed into hook passes.

The kernel reports a traced packet once per base chain it crosses (a *hook pass*): first the
packet as it is there (``PACKET:`` in ``xtables-monitor --trace``, ``packet:`` in ``nft monitor
trace``), then every rule that decided something, each with its verdict, and the chain's policy
if no rule ended the pass. Events of two packets may interleave; each carries a trace id, and a
rule event belongs to the latest pass of its id.

Both formats come from the tools' own source: iptables ``iptables/xtables-monitor.c``
(``trace_print_packet``, ``trace_print_rule``) and nftables ``src/monitor.c`` / ``src/trace.c``
(``trace_print_packet``, ``trace_print_verdict``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

TCP_FLAGS = ("SYN", "ACK", "FIN", "RST", "PSH", "URG")


@dataclass(frozen=True)
class PacketHeader:
    """The packet as one hook pass saw it."""

    src: str
    dst: str
    proto: str = ""  # "tcp" | "udp" | "icmp" | "" (unknown)
    sport: int = 0
    dport: int = 0
    flags: str = ""  # TCP flags, e.g. "SYN ACK"; for ICMP its type
    iif: str = ""
    oif: str = ""
    ip_id: int = 0
    length: int = 0
    mark: int = 0

    @property
    def tuple4(self) -> tuple[str, int, str, int]:
        return (self.src, self.sport, self.dst, self.dport)

    def describe(self) -> str:
        """``10.244.1.4:40372 -> 10.107.164.13:80 SYN``."""
        if self.sport or self.dport:
            text = f"{self.src}:{self.sport} -> {self.dst}:{self.dport}"
        else:
            text = f"{self.src} -> {self.dst}"
        what = self.flags or self.proto.upper()
        return f"{text} {what}".rstrip()


@dataclass(frozen=True)
class RuleHit:
    """One rule that decided something (or the chain's policy)."""

    table: str
    chain: str
    rule: str  # the rule as the tool printed it; "" for a policy
    verdict: str  # "jump X", "goto X", "accept", "drop", "return", "continue", "queue"
    policy: bool = False


@dataclass(frozen=True)
class HookPass:
    """One packet crossing one base chain: where it was, and what it met."""

    trace_id: str
    table: str  # "nat", "filter", "raw" (xtables) or the nft table ("kube-proxy", ...)
    chain: str  # the base chain: "PREROUTING" or "nat-prerouting"
    header: PacketHeader
    hits: tuple[RuleHit, ...] = field(default=())

    @property
    def hook(self) -> str:
        return f"{self.table} {self.chain}"


# xtables-monitor --trace ---------------------------------------------------------------------

_XT_PACKET = re.compile(r"^PACKET: \d+ (?P<id>[0-9a-f]+) (?P<rest>.*)$")
_XT_TRACE = re.compile(
    r"^\s*TRACE: \d+ (?P<id>[0-9a-f]+) (?P<table>[^:\s]+):(?P<chain>[^:\s]+):"
    r"(?P<kind>rule|policy|return):(?P<rest>.*)$"
)
# NF_RETURN is printed as a number: -5 as an unsigned 32-bit value.
_XT_NUMERIC_VERDICTS = {"0xfffffffb": "return", "0xfffffffd": "jump", "0xfffffffc": "goto"}


def _xt_header(rest: str) -> PacketHeader:
    fields: dict[str, str] = {}
    bare: list[str] = []
    for word in rest.split():
        key, sep, value = word.partition("=")
        if sep:
            fields[key] = value
        else:
            bare.append(word)
    flags = " ".join(w for w in bare if w in TCP_FLAGS)
    proto = fields.get("PROTO", "").lower()
    if not proto and "SPORT" in fields:
        proto = "tcp" if flags else "udp"
    if not proto and "SPORT" not in fields:
        flags = "ICMP or other"  # xtables-monitor prints no ports and no protocol for ICMP
    return PacketHeader(
        src=fields.get("SRC", ""),
        dst=fields.get("DST", ""),
        proto=proto,
        sport=int(fields.get("SPORT", 0)),
        dport=int(fields.get("DPORT", 0)),
        flags=flags,
        iif=fields.get("IN", ""),
        oif=fields.get("OUT", ""),
        ip_id=int(fields.get("ID", 0)),
        length=int(fields.get("LEN", 0)),
        mark=int(fields.get("MARK", "0"), 0),
    )


def _xt_verdict(text: str) -> str:
    head, _, target = text.partition(":")
    head = head.strip()
    if head in _XT_NUMERIC_VERDICTS:
        return _XT_NUMERIC_VERDICTS[head]
    if head in ("JUMP", "GOTO") and target:
        return f"{head.lower()} {target.strip()}"
    return head.lower()


def parse_xtables(text: str) -> list[HookPass]:
    """Every hook pass in ``xtables-monitor --trace`` output, in the order the tool printed
    them (rule events attached to the latest pass of their trace id)."""
    passes: list[HookPass] = []
    latest: dict[str, int] = {}
    for line in text.splitlines():
        m = _XT_PACKET.match(line)
        if m:
            latest[m["id"]] = len(passes)
            passes.append(HookPass(m["id"], "", "", _xt_header(m["rest"])))
            continue
        t = _XT_TRACE.match(line)
        if not t or t["id"] not in latest:
            continue
        i = latest[t["id"]]
        rest = t["rest"]
        if t["kind"] == "rule":  # rule:HANDLE:VERDICT
            rest = re.sub(r"^0x[0-9a-f]+:", "", rest)
        verdict_text, _, rule = rest.partition("  ")
        rule = re.sub(r"^-4 -t \S+ ", "", rule.strip())
        hit = RuleHit(
            table=t["table"],
            chain=t["chain"],
            rule="" if t["kind"] == "policy" else rule,
            verdict=_xt_verdict(verdict_text) if t["kind"] != "return" else "return",
            policy=t["kind"] == "policy",
        )
        p = passes[i]
        # The first event names the pass's table and base chain.
        table, chain = (p.table, p.chain) if p.table else (hit.table, hit.chain)
        passes[i] = replace(p, table=table, chain=chain, hits=(*p.hits, hit))
    return passes


# nft monitor trace ---------------------------------------------------------------------------

_NFT = re.compile(
    r"^trace id (?P<id>[0-9a-f]+) (?P<family>\S+) (?P<table>\S+) (?P<chain>\S+) "
    r"(?P<kind>packet:|rule|policy|verdict)\s*(?P<rest>.*)$"
)
_NFT_VERDICT = re.compile(r"\(verdict (?P<v>[^)]*)\)\s*$")
_ICMP_TYPES = {
    "destination-unreachable": "ICMP unreachable",
    "echo-request": "ICMP echo",
    "echo-reply": "ICMP echo reply",
}


def _nft_header(rest: str) -> PacketHeader:
    def grab(pattern: str) -> str:
        m = re.search(pattern, rest)
        return m.group(1) if m else ""

    proto = ""
    for p in ("tcp", "udp", "icmp"):
        if re.search(rf"(?:^| ){p} ", rest):
            proto = p
            break
    flags = ""
    if proto == "tcp":
        raw = grab(r"tcp flags == (\S+)")
        flags = _nft_tcp_flags(raw)
    elif proto == "icmp":
        kind = grab(r"icmp type (\S+)")
        code = grab(r"icmp code (\S+)")
        flags = _ICMP_TYPES.get(kind, f"ICMP {kind}") + (f" ({code})" if code else "")
    return PacketHeader(
        src=grab(r"ip saddr (\S+)"),
        dst=grab(r"ip daddr (\S+)"),
        proto=proto,
        sport=int(grab(rf"{proto} sport (\d+)") or 0) if proto in ("tcp", "udp") else 0,
        dport=int(grab(rf"{proto} dport (\d+)") or 0) if proto in ("tcp", "udp") else 0,
        flags=flags,
        iif=grab(r'iif "([^"]*)"'),
        oif=grab(r'oif "([^"]*)"'),
        ip_id=int(grab(r"ip id (\d+)") or 0),
        length=int(grab(r"ip length (\d+)") or 0),
        mark=int(grab(r"meta mark (0x[0-9a-f]+)") or "0", 0),
    )


_NFT_FLAG_BITS = (("fin", 0x01), ("syn", 0x02), ("rst", 0x04), ("psh", 0x08), ("ack", 0x10))


def _nft_tcp_flags(raw: str) -> str:
    """``syn``, ``syn|ack`` or ``0x18`` -> ``SYN``, ``SYN ACK``, ``ACK PSH`` (xtables' order)."""
    names: set[str] = set()
    if raw.startswith("0x"):
        value = int(raw, 16)
        names = {n for n, bit in _NFT_FLAG_BITS if value & bit}
    else:
        names = set(raw.split("|")) if raw else set()
    return " ".join(f for f in TCP_FLAGS if f.lower() in names)


def parse_nft(text: str) -> list[HookPass]:
    """Every hook pass in ``nft monitor trace`` output (rule events attached to the latest pass
    of their trace id)."""
    passes: list[HookPass] = []
    latest: dict[str, int] = {}
    for line in text.splitlines():
        m = _NFT.match(line.rstrip())
        if not m:
            continue
        tid, kind, rest = m["id"], m["kind"], m["rest"]
        if kind == "packet:":
            latest[tid] = len(passes)
            passes.append(HookPass(tid, m["table"], m["chain"], _nft_header(rest)))
            continue
        if tid not in latest:
            continue
        if kind == "rule":
            v = _NFT_VERDICT.search(rest)
            rule = rest[: v.start()].rstrip() if v else rest
            hit = RuleHit(m["table"], m["chain"], _squash(rule), v["v"] if v else "continue")
        elif kind == "policy":
            hit = RuleHit(m["table"], m["chain"], "", rest.strip(), policy=True)
        else:  # "verdict": a verdict map or the chain's end, reported on its own
            hit = RuleHit(m["table"], m["chain"], "", rest.strip())
        i = latest[tid]
        passes[i] = replace(passes[i], hits=(*passes[i].hits, hit))
    return passes


def _squash(rule: str) -> str:
    """nft prints two spaces before a ``counter`` statement; one is enough to read."""
    return re.sub(r"\s{2,}", " ", rule)
