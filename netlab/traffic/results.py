"""What the traffic layer observes: plain data, shared by the probes and the verdicts.

Kept apart from the code that produces it (which runs in namespaces) so that ``checks``, which
only judges, imports no kernel code.
"""

from __future__ import annotations

from dataclasses import dataclass


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
