"""IPVS's generic netlink messages as netlab lays them out (netlab.proxy.ipvs.wire), checked
against pyroute2's independent encoder and decoder and against messages laid out byte by byte as
the kernel sends them."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
from pyroute2 import IPVSService
from pyroute2.netlink.generic import ipvs as ipvs_nl

from netlab.kernel.nlattr import NLA_F_NESTED, attr
from netlab.proxy.ipvs import render as r
from netlab.proxy.ipvs import wire
from netlab.proxy.ipvs.render import IpvsOp, RealServer, VirtualServer

NLMSG = struct.Struct("=IHHII")


def pyroute2_decode(payload: bytes) -> Any:
    """A genl payload as pyroute2 decodes a received message."""
    msg = ipvs_nl.ipvsmsg(NLMSG.pack(NLMSG.size + len(payload), 0x1E, 0, 0, 0) + payload)
    msg.decode()
    return msg


def pyroute2_encode(cmd: int, **attrs: Any) -> bytes:
    """What pyroute2's IPVS socket would send, as a genl payload."""
    msg = ipvs_nl.ipvsmsg()
    msg["cmd"] = cmd
    msg["version"] = ipvs_nl.GENL_VERSION
    msg["attrs"] = list(attrs.items())
    msg.encode()
    return bytes(msg.data[NLMSG.size :])


VS = VirtualServer("10.96.0.10", 53, "UDP", "rr", flags=r.FLAG_PERSISTENT, timeout=10800)
RS = RealServer("10.244.1.5", 5353, weight=1)


def test_commands_are_the_kernels() -> None:
    assert (wire.CMD_NEW_SERVICE, wire.CMD_SET_SERVICE, wire.CMD_DEL_SERVICE) == (
        ipvs_nl.IPVS_CMD_NEW_SERVICE,
        ipvs_nl.IPVS_CMD_SET_SERVICE,
        ipvs_nl.IPVS_CMD_DEL_SERVICE,
    )
    assert (wire.CMD_NEW_DEST, wire.CMD_SET_DEST, wire.CMD_DEL_DEST) == (
        ipvs_nl.IPVS_CMD_NEW_DEST,
        ipvs_nl.IPVS_CMD_SET_DEST,
        ipvs_nl.IPVS_CMD_DEL_DEST,
    )
    assert (wire.CMD_GET_SERVICE, wire.CMD_GET_DEST) == (
        ipvs_nl.IPVS_CMD_GET_SERVICE,
        ipvs_nl.IPVS_CMD_GET_DEST,
    )


@pytest.mark.parametrize(
    ("action", "cmd"),
    [("add-service", ipvs_nl.IPVS_CMD_NEW_SERVICE), ("set-service", ipvs_nl.IPVS_CMD_SET_SERVICE)],
)
def test_a_full_service_as_pyroute2_reads_it(action: str, cmd: int) -> None:
    msg = pyroute2_decode(wire.op_request(IpvsOp(action, VS)))
    assert msg["cmd"] == cmd and msg["version"] == 1
    svc = msg.get("IPVS_CMD_ATTR_SERVICE")
    assert svc.get("IPVS_SVC_ATTR_AF") == socket.AF_INET
    assert svc.get("IPVS_SVC_ATTR_PROTOCOL") == socket.IPPROTO_UDP
    assert svc.get("IPVS_SVC_ATTR_ADDR") == "10.96.0.10"
    assert svc.get("IPVS_SVC_ATTR_PORT") == 53
    assert svc.get("IPVS_SVC_ATTR_SCHED_NAME") == "rr"
    assert svc.get("IPVS_SVC_ATTR_FLAGS") == {"flags": r.FLAG_PERSISTENT, "mask": 0xFFFFFFFF}
    assert svc.get("IPVS_SVC_ATTR_TIMEOUT") == 10800
    assert svc.get("IPVS_SVC_ATTR_NETMASK") == "255.255.255.255"


def test_a_deleted_service_is_named_by_its_key() -> None:
    svc = pyroute2_decode(wire.op_request(IpvsOp("del-service", VS))).get("IPVS_CMD_ATTR_SERVICE")
    assert [name for name, _ in svc["attrs"]] == [
        "IPVS_SVC_ATTR_AF",
        "IPVS_SVC_ATTR_PROTOCOL",
        "IPVS_SVC_ATTR_ADDR",
        "IPVS_SVC_ATTR_PORT",
    ]


@pytest.mark.parametrize("action", ["add-dest", "set-dest", "del-dest"])
def test_a_real_server_masquerades(action: str) -> None:
    msg = pyroute2_decode(wire.op_request(IpvsOp(action, VS, RS)))
    assert msg["cmd"] == wire.DEST_COMMANDS[action]
    key = msg.get("IPVS_CMD_ATTR_SERVICE")
    assert key.get("IPVS_SVC_ATTR_ADDR") == "10.96.0.10"
    assert key.get("IPVS_SVC_ATTR_SCHED_NAME") is None  # by key only
    dest = msg.get("IPVS_CMD_ATTR_DEST")
    assert dest.get("IPVS_DEST_ATTR_ADDR") == "10.244.1.5"
    assert dest.get("IPVS_DEST_ATTR_PORT") == 5353
    assert dest.get("IPVS_DEST_ATTR_FWD_METHOD") == wire.FWD_MASQ == 0  # ipvsadm -m
    assert dest.get("IPVS_DEST_ATTR_WEIGHT") == 1
    assert (dest.get("IPVS_DEST_ATTR_U_THRESH"), dest.get("IPVS_DEST_ATTR_L_THRESH")) == (0, 0)


def test_what_pyroute2_encodes_parses_back() -> None:
    service = IPVSService(
        addr="10.96.0.10",
        port=53,
        protocol=socket.IPPROTO_UDP,
        sched_name="rr",
        flags={"flags": r.FLAG_PERSISTENT, "mask": 0xFFFFFFFF},
        timeout=10800,
    )
    payload = pyroute2_encode(
        ipvs_nl.IPVS_CMD_NEW_SERVICE, IPVS_CMD_ATTR_SERVICE=service.dump_nla()
    )
    assert wire.parse_service(payload) == VS
    assert wire.parse_service(wire.op_request(IpvsOp("add-service", VS))) == VS
    assert wire.parse_dest(wire.op_request(IpvsOp("add-dest", VS, RS))) == RS


def _kernel(nested: int, *fields: tuple[int, bytes]) -> bytes:
    """A message laid out byte by byte as the kernel sends it (a genl payload)."""
    return struct.pack("=BBH", wire.CMD_NEW_SERVICE, 1, 0) + attr(
        nested | NLA_F_NESTED, b"".join(attr(k, v) for k, v in fields)
    )


def _nf_inet_addr(ip: str) -> bytes:
    """union nf_inet_addr, as the kernel sends every address: 16 bytes, IPv4 in the first 4."""
    return socket.inet_aton(ip) + bytes(12)


def test_kernel_service_with_its_16_byte_address() -> None:
    payload = _kernel(
        wire.CMD_ATTR_SERVICE,
        (wire.SVC_AF, struct.pack("=H", socket.AF_INET)),
        (wire.SVC_PROTOCOL, struct.pack("=H", socket.IPPROTO_UDP)),
        (wire.SVC_ADDR, _nf_inet_addr("10.96.0.10")),
        (wire.SVC_PORT, struct.pack(">H", 53)),
        (wire.SVC_SCHED_NAME, b"rr\0"),
        (wire.SVC_FLAGS, struct.pack("=II", r.FLAG_HASHED, 0xFFFFFFFF)),
        (wire.SVC_TIMEOUT, struct.pack("=I", 0)),
    )
    assert wire.parse_service(payload) == VirtualServer(
        "10.96.0.10", 53, "UDP", "rr", r.FLAG_HASHED, 0
    )
    assert pyroute2_decode(payload).get("IPVS_CMD_ATTR_SERVICE").get("IPVS_SVC_ATTR_PORT") == 53


def test_kernel_dest_with_or_without_its_family() -> None:
    fields = [
        (wire.DEST_ADDR, _nf_inet_addr("10.244.1.5")),
        (wire.DEST_PORT, struct.pack(">H", 5353)),
        (wire.DEST_FWD_METHOD, struct.pack("=I", 0)),
        (wire.DEST_WEIGHT, struct.pack("=I", 1)),
        (wire.DEST_ACTIVE_CONNS, struct.pack("=I", 3)),
        (wire.DEST_INACT_CONNS, struct.pack("=I", 2)),
    ]
    for extra in ([], [(wire.DEST_ADDR_FAMILY, struct.pack("=H", socket.AF_INET))]):
        parsed = wire.parse_dest(_kernel(wire.CMD_ATTR_DEST, *fields, *extra))
        assert parsed == RealServer("10.244.1.5", 5353, 1)
        assert parsed is not None and (parsed.active_conns, parsed.inactive_conns) == (3, 2)


def test_what_netlab_never_makes_is_skipped() -> None:
    """No address, another family, a fwmark service, an unknown protocol: not parsed, so left
    alone by reconcile (as kube-proxy leaves the other family's services alone)."""
    base = [
        (wire.SVC_AF, struct.pack("=H", socket.AF_INET)),
        (wire.SVC_PROTOCOL, struct.pack("=H", socket.IPPROTO_TCP)),
        (wire.SVC_PORT, struct.pack(">H", 80)),
    ]
    addr = (wire.SVC_ADDR, _nf_inet_addr("10.96.0.1"))
    assert wire.parse_service(_kernel(wire.CMD_ATTR_SERVICE, *base)) is None
    assert wire.parse_service(_kernel(wire.CMD_ATTR_SERVICE, *base, addr)) is not None
    v6 = [(wire.SVC_AF, struct.pack("=H", socket.AF_INET6)), *base[1:], addr]
    assert wire.parse_service(_kernel(wire.CMD_ATTR_SERVICE, *v6)) is None
    fwmark = (wire.SVC_FWMARK, struct.pack("=I", 7))
    assert wire.parse_service(_kernel(wire.CMD_ATTR_SERVICE, *base, addr, fwmark)) is None
    gre = [base[0], (wire.SVC_PROTOCOL, struct.pack("=H", 47)), base[2], addr]
    assert wire.parse_service(_kernel(wire.CMD_ATTR_SERVICE, *gre)) is None
    no_addr = _kernel(wire.CMD_ATTR_DEST, (wire.DEST_PORT, struct.pack(">H", 8080)))
    assert wire.parse_dest(no_addr) is None
