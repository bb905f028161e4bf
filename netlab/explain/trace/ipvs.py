"""IPVS's connection table as ``ipvsadm -Lnc`` prints it: which virtual server a connection
came in through and which real server IPVS chose for it (``ipvsadm/ipvsadm.c``,
``print_conn``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CONN = re.compile(
    r"^(?P<proto>TCP|UDP|SCTP)\s+(?P<expire>\S+)\s+(?P<state>\S+)\s+"
    r"(?P<source>\S+):(?P<sport>\d+)\s+(?P<virtual>\S+):(?P<vport>\d+)\s+"
    r"(?P<dest>\S+):(?P<dport>\d+)\s*$"
)


@dataclass(frozen=True)
class IpvsConnection:
    proto: str
    expire: str  # mm:ss left
    state: str
    source: tuple[str, int]  # the client as IPVS saw it
    virtual: tuple[str, int]  # the virtual server (ClusterIP:port, nodeIP:nodePort, ...)
    destination: tuple[str, int]  # the real server IPVS chose

    def describe(self) -> str:
        s, v, d = self.source, self.virtual, self.destination
        return (
            f"{self.proto} {s[0]}:{s[1]} -> virtual server {v[0]}:{v[1]} -> "
            f"real server {d[0]}:{d[1]} ({self.state})"
        )


def parse_connections(text: str) -> list[IpvsConnection]:
    out = []
    for line in text.splitlines():
        m = _CONN.match(line.strip())
        if m:
            out.append(
                IpvsConnection(
                    m["proto"],
                    m["expire"],
                    m["state"],
                    (m["source"], int(m["sport"])),
                    (m["virtual"], int(m["vport"])),
                    (m["dest"], int(m["dport"])),
                )
            )
    return out
