"""IPVS virtual and real servers: their data, the changes that reconcile the kernel's table with
the rendered one, and their ipvsadm text.

This follows kubernetes/kubernetes ``pkg/proxy/ipvs/util`` (``VirtualServer``, ``RealServer``,
the flags), and the reconciliation of ``syncService``, ``syncEndpoint``, ``cleanLegacyService``
in ``pkg/proxy/ipvs/proxier.go`` and ``pkg/proxy/ipvs/graceful_termination.go`` (v1.33). Which
virtual servers a node should hold is decided by :mod:`netlab.proxy.ipvs.render`; the proxier
applies the changes over netlink (:mod:`netlab.proxy.ipvs.wire`) or ipvsadm.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_SCHEDULER = "rr"  # defaultScheduler

# utilipvs flags (pkg/proxy/ipvs/util/ipvs.go); the kernel adds HASHED to every service it lists.
FLAG_PERSISTENT = 0x1
FLAG_HASHED = 0x2
FLAG_SOURCE_HASH = 0x10  # set for the "mh" scheduler


@dataclass(frozen=True)
class RealServer:
    """One IPVS destination. The connection counts come only from a kernel listing."""

    ip: str
    port: int
    weight: int = 1
    active_conns: int = field(default=0, compare=False)
    inactive_conns: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class VirtualServer:
    """One IPVS service. ``key`` is what identifies it in the kernel."""

    address: str
    port: int
    protocol: str  # "TCP" | "UDP" | "SCTP"
    scheduler: str = DEFAULT_SCHEDULER
    flags: int = 0
    timeout: int = 0  # persistence timeout (seconds) with FLAG_PERSISTENT
    real_servers: tuple[RealServer, ...] = ()
    service: str = field(default="", compare=False)  # ns/name:port, for display

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.protocol, self.address, self.port)

    @property
    def persistent(self) -> bool:
        return bool(self.flags & FLAG_PERSISTENT)

    def __str__(self) -> str:
        """utilipvs.VirtualServer.String: ``IP:port/PROTO``."""
        return f"{self.address}:{self.port}/{self.protocol}"


# ipvsadm text: for display, and for the ipvsadm apply path.

_PROTO_FLAG = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}


def _service_args(vs: VirtualServer) -> str:
    return f"{_PROTO_FLAG[vs.protocol]} {vs.address}:{vs.port}"


def ipvsadm_service_line(vs: VirtualServer, command: str = "-A") -> str:
    """``-A -t VIP:PORT -s rr`` (``-p TIMEOUT`` for a persistent service), as ipvsadm -S."""
    line = f"{command} {_service_args(vs)} -s {vs.scheduler}"
    if vs.persistent:
        line += f" -p {vs.timeout}"
    return line


def ipvsadm_dest_line(vs: VirtualServer, rs: RealServer, command: str = "-a") -> str:
    """``-a -t VIP:PORT -r RIP:PORT -m -w 1``: a masquerading (NAT) real server."""
    return f"{command} {_service_args(vs)} -r {rs.ip}:{rs.port} -m -w {rs.weight}"


# Reconciling the kernel's table with the rendered one (pure; the proxier applies the result).


@dataclass(frozen=True)
class IpvsOp:
    """One change to the kernel's IPVS table."""

    action: str  # add-service | set-service | del-service | add-dest | set-dest | del-dest
    service: VirtualServer
    dest: RealServer | None = None

    def __str__(self) -> str:
        """The change as an ipvsadm command line (-A/-E/-D, -a/-e/-d)."""
        cmd = {
            "add-service": "-A",
            "set-service": "-E",
            "del-service": "-D",
            "add-dest": "-a",
            "set-dest": "-e",
            "del-dest": "-d",
        }[self.action]
        if self.dest is None:
            if self.action == "del-service":
                return f"-D {_service_args(self.service)}"
            return ipvsadm_service_line(self.service, cmd)
        if self.action == "del-dest":
            return f"-d {_service_args(self.service)} -r {self.dest}"
        return ipvsadm_dest_line(self.service, self.dest, cmd)


def graceful_termination_needed(protocol: str) -> bool:
    """utilipvs.IsRsGracefulTerminationNeeded: UDP and SCTP real servers go at once (their
    flows are expired on the next packet, expire_nodest_conn=1); TCP ones drain first."""
    return protocol.upper() not in ("UDP", "SCTP")


def reconcile(current: Sequence[VirtualServer], desired: Sequence[VirtualServer]) -> list[IpvsOp]:
    """What to change so the kernel's table (``current``, as listed) becomes ``desired``.

    Mirrors syncService, syncEndpoint, the GracefulTerminationManager and cleanLegacyService:

    * a missing service is added, a changed one (scheduler, flags, timeout) is edited in place,
      so its VIP never goes down; the kernel's HASHED flag is ignored when comparing;
    * a missing real server is added; one whose weight is not 1 (a real server left draining,
      or set by hand) gets weight 1 back;
    * a real server no longer wanted is deleted, unless it is TCP and still has connections:
      then it is quiesced (weight 0) and deleted by a later sync once they are gone;
    * services no longer wanted are deleted last, with their real servers.
    """
    cur = {vs.key: vs for vs in current}
    want = {vs.key: vs for vs in desired}
    ops: list[IpvsOp] = []
    for key, vs in want.items():
        old = cur.get(key)
        if old is None:
            ops.append(IpvsOp("add-service", vs))
            ops += [IpvsOp("add-dest", vs, rs) for rs in vs.real_servers]
            continue
        applied = (old.scheduler, old.flags & ~FLAG_HASHED, old.timeout)
        if applied != (vs.scheduler, vs.flags, vs.timeout):
            ops.append(IpvsOp("set-service", vs))
        have = {(rs.ip, rs.port): rs for rs in old.real_servers}
        for rs in vs.real_servers:
            o = have.pop((rs.ip, rs.port), None)
            if o is None:
                ops.append(IpvsOp("add-dest", vs, rs))
            elif o.weight != rs.weight:
                ops.append(IpvsOp("set-dest", vs, rs))
        for o in have.values():
            draining = o.active_conns + o.inactive_conns > 0
            if graceful_termination_needed(vs.protocol) and draining:
                if o.weight != 0:
                    quiesced = RealServer(o.ip, o.port, 0)
                    ops.append(IpvsOp("set-dest", vs, quiesced))
            else:
                ops.append(IpvsOp("del-dest", vs, o))
    ops += [IpvsOp("del-service", old) for key, old in cur.items() if key not in want]
    return ops


def draining(
    current: Sequence[VirtualServer], desired: Sequence[VirtualServer]
) -> set[tuple[str, str, int]]:
    """The services that :func:`reconcile` leaves holding a real server no longer wanted: a TCP
    one with connections, quiesced until they are gone (the GracefulTerminationManager's list).
    A later sync must look at them again."""
    want = {vs.key: {(rs.ip, rs.port) for rs in vs.real_servers} for vs in desired}
    out: set[tuple[str, str, int]] = set()
    for vs in current:
        wanted = want.get(vs.key)
        if wanted is None or not graceful_termination_needed(vs.protocol):
            continue
        for rs in vs.real_servers:
            if (rs.ip, rs.port) not in wanted and rs.active_conns + rs.inactive_conns > 0:
                out.add(vs.key)
    return out


# Reading ipvsadm -Ln output (for one Service's live view).

_VS_LINE = re.compile(r"^(TCP|UDP|SCTP)\s+(\S+):(\d+)\s")


def filter_ipvsadm_list(text: str, keys: set[tuple[str, str, int]]) -> str:
    """Keep from ``ipvsadm -Ln`` output its header and the blocks of the given services."""
    out: list[str] = []
    keep = True
    for line in text.splitlines():
        m = _VS_LINE.match(line)
        if m:
            keep = (m.group(1), m.group(2), int(m.group(3))) in keys
        elif not line.startswith(" "):
            keep = True  # header lines
        if keep:
            out.append(line)
    return "\n".join(out) + ("\n" if out else "")
