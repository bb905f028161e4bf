"""Connection tracking inside a namespace: read it (to see whether a connection was NATed) and
delete entries from it (kube-proxy's stale UDP cleanup).

Listing and deleting speak ctnetlink in-process, as kube-proxy does (vishvananda/netlink's
``ConntrackTableList`` and ``ConntrackDeleteFilters``): one dump of the table, then the deletions
in one send, each naming an entry by its original tuple. The layout is the kernel's
``include/uapi/linux/netfilter/nfnetlink_conntrack.h``.
"""

from __future__ import annotations

import errno
import re
import socket
import struct

from netlab.checks.observations import ConntrackEntry as Entry
from netlab.kernel import netlink, process, threads
from netlab.kernel.nlattr import NLA_F_NESTED, attr, attrs

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_DELETE = 1, 2
NFGENMSG = struct.Struct("=BBH")  # family, version (NFNETLINK_V0), resource id
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY = 1, 2
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
PROTOCOLS = {socket.IPPROTO_TCP: "TCP", socket.IPPROTO_UDP: "UDP", 132: "SCTP"}
NUMBERS = {name: number for number, name in PROTOCOLS.items()}

_TUPLE = re.compile(r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)")


def entries(netns_name: str, proto: str, src: str) -> list[Entry]:
    """The table's entries for ``proto`` from ``src`` (``conntrack -L``, as a learner would)."""
    out = process.run(
        netns_name, ["conntrack", "-L", "-p", proto.lower(), "-s", src], check=False
    ).stdout
    found = []
    for line in out.splitlines():
        tuples = _TUPLE.findall(line)
        if len(tuples) >= 2:
            o, r = tuples[0], tuples[1]
            found.append(
                Entry(proto, (o[0], o[1], int(o[2]), int(o[3])), (r[0], r[1], int(r[2]), int(r[3])))
            )
    return found


def _msg_type(command: int) -> int:
    return (NFNL_SUBSYS_CTNETLINK << 8) | command


def tuple_attr(kind: int, proto: str, t: tuple[str, str, int, int]) -> bytes:
    """A nested CTA_TUPLE_ORIG / CTA_TUPLE_REPLY: addresses, then protocol and ports."""
    src, dst, sport, dport = t
    ip = attr(CTA_IP_V4_SRC, socket.inet_aton(src)) + attr(CTA_IP_V4_DST, socket.inet_aton(dst))
    l4 = (
        attr(CTA_PROTO_NUM, struct.pack("=B", NUMBERS[proto]))
        + attr(CTA_PROTO_SRC_PORT, struct.pack("!H", sport))
        + attr(CTA_PROTO_DST_PORT, struct.pack("!H", dport))
    )
    return attr(
        kind | NLA_F_NESTED,
        attr(CTA_TUPLE_IP | NLA_F_NESTED, ip) + attr(CTA_TUPLE_PROTO | NLA_F_NESTED, l4),
    )


def delete_request(entry: Entry) -> bytes:
    """IPCTNL_MSG_CT_DELETE of one entry, named by its original tuple."""
    return NFGENMSG.pack(socket.AF_INET, 0, 0) + tuple_attr(
        CTA_TUPLE_ORIG, entry.proto, entry.original
    )


def _parse_tuple(data: bytes) -> tuple[str, tuple[str, str, int, int]] | None:
    found = dict(attrs(data))
    ip = dict(attrs(found.get(CTA_TUPLE_IP, b"")))
    l4 = dict(attrs(found.get(CTA_TUPLE_PROTO, b"")))
    if CTA_IP_V4_SRC not in ip or CTA_PROTO_NUM not in l4:
        return None
    proto = PROTOCOLS.get(l4[CTA_PROTO_NUM][0], str(l4[CTA_PROTO_NUM][0]))
    sport = struct.unpack("!H", l4[CTA_PROTO_SRC_PORT][:2])[0] if CTA_PROTO_SRC_PORT in l4 else 0
    dport = struct.unpack("!H", l4[CTA_PROTO_DST_PORT][:2])[0] if CTA_PROTO_DST_PORT in l4 else 0
    src = socket.inet_ntoa(ip[CTA_IP_V4_SRC][:4])
    dst = socket.inet_ntoa(ip[CTA_IP_V4_DST][:4])
    return proto, (src, dst, sport, dport)


def parse_entry(payload: bytes) -> Entry | None:
    """One IPv4 entry of a dump (None for another family or an entry without ports)."""
    family = payload[0] if payload else 0
    if family != socket.AF_INET:
        return None
    found = dict(attrs(payload[NFGENMSG.size :]))
    orig = _parse_tuple(found.get(CTA_TUPLE_ORIG, b""))
    reply = _parse_tuple(found.get(CTA_TUPLE_REPLY, b""))
    if orig is None or reply is None:
        return None
    return Entry(orig[0], orig[1], reply[1])


def _dump() -> list[Entry]:
    with netlink.BulkSocket(NETLINK_NETFILTER) as sock:
        answers = sock.dump(_msg_type(IPCTNL_MSG_CT_GET), NFGENMSG.pack(socket.AF_INET, 0, 0))
    return [e for e in (parse_entry(a) for a in answers) if e is not None]


def list_entries(netns_name: str) -> list[Entry]:
    """Every IPv4 entry of the namespace's table (one ctnetlink dump)."""
    return threads.call(_dump, netns_name=netns_name)


def delete_entries(netns_name: str, doomed: list[Entry]) -> int:
    """Delete these entries (those gone meanwhile are no error); how many were asked."""
    if not doomed:
        return 0

    def job() -> None:
        with netlink.BulkSocket(NETLINK_NETFILTER) as sock:
            sock.requests(
                _msg_type(IPCTNL_MSG_CT_DELETE),
                [delete_request(e) for e in doomed],
                tolerate=(errno.ENOENT,),
            )

    threads.call(job, netns_name=netns_name)
    return len(doomed)


def listing(netns_name: str, proto: str | None = None) -> str:
    """The namespace's whole conntrack table as ``conntrack -L`` prints it."""
    argv = ["conntrack", "-L", *(["-p", proto.lower()] if proto else [])]
    return process.run(netns_name, argv, check=False).stdout
