"""IPVS's generic netlink messages, byte for byte (pure: no socket, no kernel).

The layout is the kernel's ``include/uapi/linux/ip_vs.h``: a generic netlink header (command,
version 1), then a nested ``IPVS_CMD_ATTR_SERVICE`` and, for real servers, a nested
``IPVS_CMD_ATTR_DEST``. Written here with :mod:`struct` rather than with pyroute2's message
classes because a sync of 10k Services is tens of thousands of messages and pyroute2 spends
milliseconds on each; tests/unit checks every message against pyroute2's encoder and decoder.

What netlab sends is what kube-proxy's libipvs sends: a full service (family, protocol,
address, port, scheduler, flags with an all-ones mask, timeout, netmask) for add and set, only
its key (family, protocol, address, port) to name it otherwise, and real servers with
masquerading forwarding, weight and zero thresholds.
"""

from __future__ import annotations

import socket
import struct

from netlab.kernel.nlattr import NLA_F_NESTED, attr, attrs
from netlab.proxy.ipvs.servers import IpvsOp, RealServer, VirtualServer

GENL_VERSION = 1
# Commands (enum ipvs_cmd)
CMD_NEW_SERVICE, CMD_SET_SERVICE, CMD_DEL_SERVICE, CMD_GET_SERVICE = 1, 2, 3, 4
CMD_NEW_DEST, CMD_SET_DEST, CMD_DEL_DEST, CMD_GET_DEST = 5, 6, 7, 8
# IPVS_CMD_ATTR_*
CMD_ATTR_SERVICE, CMD_ATTR_DEST = 1, 2
# IPVS_SVC_ATTR_*
SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK = 1, 2, 3, 4, 5
SVC_SCHED_NAME, SVC_FLAGS, SVC_TIMEOUT, SVC_NETMASK = 6, 7, 8, 9
# IPVS_DEST_ATTR_*
DEST_ADDR, DEST_PORT, DEST_FWD_METHOD, DEST_WEIGHT = 1, 2, 3, 4
DEST_U_THRESH, DEST_L_THRESH, DEST_ACTIVE_CONNS, DEST_INACT_CONNS = 5, 6, 7, 8
DEST_ADDR_FAMILY = 11

GENL_HEADER = struct.Struct("=BBH")
NLMSG_HEADER_LEN = 16
FWD_MASQ = 0  # IP_VS_CONN_F_MASQ: kube-proxy's real servers masquerade (ipvsadm -m)
ALL_FLAGS = 0xFFFFFFFF  # ip_vs_flags.mask: set the flags exactly as given
PROTOCOL_NUMBERS = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP, "SCTP": 132}
PROTOCOL_NAMES = {n: name for name, n in PROTOCOL_NUMBERS.items()}

SERVICE_COMMANDS = {
    "add-service": CMD_NEW_SERVICE,
    "set-service": CMD_SET_SERVICE,
    "del-service": CMD_DEL_SERVICE,
}
DEST_COMMANDS = {"add-dest": CMD_NEW_DEST, "set-dest": CMD_SET_DEST, "del-dest": CMD_DEL_DEST}


def _u16(v: int) -> bytes:
    return struct.pack("=H", v)


def _u32(v: int) -> bytes:
    return struct.pack("=I", v)


def _be16(v: int) -> bytes:
    return struct.pack(">H", v)


def _key(vs: VirtualServer) -> bytes:
    return (
        attr(SVC_AF, _u16(socket.AF_INET))
        + attr(SVC_PROTOCOL, _u16(PROTOCOL_NUMBERS[vs.protocol]))
        + attr(SVC_ADDR, socket.inet_aton(vs.address))
        + attr(SVC_PORT, _be16(vs.port))
    )


def service_attr(vs: VirtualServer, *, full: bool) -> bytes:
    """``IPVS_CMD_ATTR_SERVICE``: the whole service, or only its key."""
    body = _key(vs)
    if full:
        body += (
            attr(SVC_SCHED_NAME, vs.scheduler.encode() + b"\0")
            + attr(SVC_FLAGS, struct.pack("=II", vs.flags, ALL_FLAGS))
            + attr(SVC_TIMEOUT, _u32(vs.timeout))
            + attr(SVC_NETMASK, socket.inet_aton("255.255.255.255"))
        )
    return attr(CMD_ATTR_SERVICE | NLA_F_NESTED, body)


def dest_attr(rs: RealServer) -> bytes:
    body = (
        attr(DEST_ADDR, socket.inet_aton(rs.ip))
        + attr(DEST_PORT, _be16(rs.port))
        + attr(DEST_FWD_METHOD, _u32(FWD_MASQ))
        + attr(DEST_WEIGHT, _u32(rs.weight))
        + attr(DEST_U_THRESH, _u32(0))
        + attr(DEST_L_THRESH, _u32(0))
        + attr(DEST_ADDR_FAMILY, _u16(socket.AF_INET))
    )
    return attr(CMD_ATTR_DEST | NLA_F_NESTED, body)


def message(cmd: int, body: bytes = b"") -> bytes:
    """A generic netlink payload (what follows the netlink header)."""
    return GENL_HEADER.pack(cmd, GENL_VERSION, 0) + body


def op_request(op: IpvsOp) -> bytes:
    """The request for one reconcile step (a real server's names its service by key only)."""
    if op.action in SERVICE_COMMANDS:
        full = op.action != "del-service"
        return message(SERVICE_COMMANDS[op.action], service_attr(op.service, full=full))
    assert op.dest is not None, op
    return message(
        DEST_COMMANDS[op.action], service_attr(op.service, full=False) + dest_attr(op.dest)
    )


def dump_services() -> bytes:
    return message(CMD_GET_SERVICE)


def dump_dests(vs: VirtualServer) -> bytes:
    return message(CMD_GET_DEST, service_attr(vs, full=False))


def _nested(payload: bytes, kind: int) -> dict[int, bytes] | None:
    """The attributes of the nested attribute ``kind`` of a genl payload, or None."""
    for k, value in attrs(payload[GENL_HEADER.size :]):
        if k == kind:
            return dict(attrs(value))
    return None


def _address(raw: bytes | None) -> str | None:
    """union nf_inet_addr (16 bytes; IPv4 in the first 4), or a bare 4-byte address."""
    if raw is None or len(raw) < 4:
        return None
    return socket.inet_ntop(socket.AF_INET, raw[:4])


def _int(raw: bytes | None, fmt: str = "=I") -> int:
    return int(struct.unpack_from(fmt, raw)[0]) if raw else 0


def parse_service(payload: bytes) -> VirtualServer | None:
    """A listed service, or None for one netlab never makes (IPv6, fwmark, other protocol):
    those are left alone, as kube-proxy leaves the other family's services alone."""
    a = _nested(payload, CMD_ATTR_SERVICE)
    if a is None or _int(a.get(SVC_AF), "=H") != socket.AF_INET or a.get(SVC_FWMARK):
        return None
    protocol = PROTOCOL_NAMES.get(_int(a.get(SVC_PROTOCOL), "=H"))
    address = _address(a.get(SVC_ADDR))
    if protocol is None or address is None:
        return None
    return VirtualServer(
        address=address,
        port=_int(a.get(SVC_PORT), ">H"),
        protocol=protocol,
        scheduler=(a.get(SVC_SCHED_NAME) or b"").rstrip(b"\0").decode(),
        flags=_int(a.get(SVC_FLAGS)),
        timeout=_int(a.get(SVC_TIMEOUT)),
    )


def parse_dest(payload: bytes) -> RealServer | None:
    a = _nested(payload, CMD_ATTR_DEST)
    address = _address(a.get(DEST_ADDR)) if a is not None else None
    if a is None or address is None:
        return None
    return RealServer(
        ip=address,
        port=_int(a.get(DEST_PORT), ">H"),
        weight=_int(a.get(DEST_WEIGHT)),
        active_conns=_int(a.get(DEST_ACTIVE_CONNS)),
        inactive_conns=_int(a.get(DEST_INACT_CONNS)),
    )
