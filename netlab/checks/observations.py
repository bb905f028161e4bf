"""What the traffic layer observes: plain data, shared by the probes and the verdicts (connections,
captured packets, conntrack entries, DNS replies).

Kept apart from the code that produces it (which runs in namespaces) so that ``checks``, which
only judges, imports no kernel code.
"""

from __future__ import annotations

from dataclasses import dataclass

Record = tuple[str, str, int, str]  # (name, type, ttl, data), data as in a zone file


@dataclass(frozen=True)
class Observation:
    outcome: str  # "connected" | "refused" | "timeout" | "unreachable" | "error"
    hostname: str = ""
    client_ip: str = ""
    client_port: int = 0
    local_ip: str = ""  # the probe socket's own address: the client as it left
    local_port: int = 0
    error: str = ""
    seconds: float = 0.0

    @property
    def translated(self) -> bool:
        """Whether the backend saw another address or port than the socket sent from (SNAT).

        The address alone is not enough: a node masquerading towards another node rewrites the
        source to its own address, which may be the address it sent from, with a new port.
        """
        return (self.client_ip, self.client_port) != (self.local_ip, self.local_port)


@dataclass(frozen=True)
class HttpObservation:
    """One HTTP GET: its outcome (as a connection's) and, when answered, the status and body."""

    outcome: str  # "connected" | "refused" | "timeout" | "unreachable" | "closed" | "error"...
    status: int = 0  # 0 when nothing answered
    body: str = ""
    error: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class CapturedPacket:
    src: str
    dst: str
    sport: int
    dport: int
    proto: str
    flags: str
    summary: str


@dataclass(frozen=True)
class ConntrackEntry:
    proto: str
    original: tuple[str, str, int, int]  # src, dst, sport, dport as the client sent it
    reply: tuple[str, str, int, int]  # as the answer comes back

    @property
    def dnat(self) -> bool:
        """The answer comes from elsewhere than the client dialled: destination NAT."""
        return (self.reply[0], self.reply[2]) != (self.original[1], self.original[3])

    @property
    def snat(self) -> bool:
        return (self.reply[1], self.reply[3]) != (self.original[0], self.original[2])


@dataclass(frozen=True)
class DNSResult:
    """One DNS reply, flattened for checks and reports.

    ``rcode`` is "" when no reply came (``error`` then says why: "timeout", "connection
    refused"). ``cname_chain`` starts with the name asked and follows each CNAME in the answer.
    ``resolve`` fills ``tried`` (every name queried, in order) and ``herrno`` (glibc's verdict;
    "" on success).
    """

    server: str
    name: str
    qtype: str
    rcode: str = ""
    error: str = ""
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()
    cname_chain: tuple[str, ...] = ()
    flags: frozenset[str] = frozenset()
    tcp: bool = False
    tried: tuple[str, ...] = ()
    herrno: str = ""

    @property
    def ok(self) -> bool:
        """A positive answer, as glibc counts one: NOERROR with at least one answer record."""
        return self.rcode == "NOERROR" and bool(self.answers)

    @property
    def nodata(self) -> bool:
        return self.rcode == "NOERROR" and not self.answers

    @property
    def canonical(self) -> str:
        """The name at the end of the CNAME chain."""
        return self.cname_chain[-1] if self.cname_chain else self.name

    def data(self, rtype: str | None = None) -> list[str]:
        """The answers' data owned by the canonical name (of ``rtype``, default: the query's).

        A CNAME is owned by the name asked, not by the end of the chain: a ``CNAME`` question's
        answer is that name's CNAME target."""
        want = (rtype or self.qtype).upper()
        owner = (self.name if want == "CNAME" else self.canonical).lower()
        return [d for n, t, _, d in self.answers if t == want and n.lower() == owner]
