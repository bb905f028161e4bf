"""A fake node for IPVS mode's kernel side: the IPVS table and kube-ipvs0's addresses behind
netlink, and the ipsets behind ``ipset``, so that the proxier's real kernel-facing code (the
netlink messages of :mod:`netlab.proxy.ipvs.wire`, bulk sends and dumps, ``ipset restore`` and
``ipset save`` text) runs against it in a unit test.

Every request is decoded from its bytes with the same parsers netlab reads the kernel's answers
with, and refused as the kernel refuses it (adding what exists, changing or deleting what does
not), so a partial sync that sends a wrong request fails here as it would on a node.
"""

from __future__ import annotations

import errno
import socket
import struct
import subprocess
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from netlab.kernel import netlink, netns, process, rules, threads
from netlab.kernel.nlattr import NLA_F_NESTED, attr, attrs
from netlab.proxy.ipvs import proxier as ipvs_proxier
from netlab.proxy.ipvs import wire
from netlab.proxy.ipvs.ipset import canonical_entry
from netlab.proxy.ipvs.servers import RealServer, VirtualServer
from tests.unit.churn import FakeIptables

FAMILY = 0x42  # the IPVS generic netlink family's id in the fake
DEVICE = 7  # kube-ipvs0's index


@dataclass
class FakeNode:
    """One node namespace as IPVS mode programs it."""

    addresses: set[str] = field(default_factory=set)
    services: dict[tuple[str, str, int], VirtualServer] = field(default_factory=dict)
    dests: dict[tuple[str, str, int], dict[tuple[str, int], RealServer]] = field(
        default_factory=dict
    )
    ipsets: dict[str, set[str]] = field(default_factory=dict)
    iptables: FakeIptables = field(default_factory=FakeIptables)
    read_back: int = 0  # whole-table reads: IPVS service dumps, address dumps, ipset save

    def state(self) -> tuple[object, ...]:
        """Everything a node holds, comparable."""
        table = {
            key: (vs.scheduler, vs.flags, vs.timeout, sorted(self.dests[key].values(), key=str))
            for key, vs in self.services.items()
        }
        return (
            self.addresses,
            table,
            {k: v for k, v in self.ipsets.items()},
            self.iptables.tables,
        )

    # IPVS over generic netlink -----------------------------------------------------------

    def ipvs_dump(self, payload: bytes) -> list[bytes]:
        cmd = payload[0]
        if cmd == wire.CMD_GET_SERVICE:
            self.read_back += 1
            return [
                wire.message(wire.CMD_NEW_SERVICE, wire.service_attr(vs, full=True))
                for vs in self.services.values()
            ]
        assert cmd == wire.CMD_GET_DEST, cmd
        vs = wire.parse_service(payload)
        assert vs is not None
        # The kernel's dump of an unknown service's destinations is empty, not an error.
        return [_dest_answer(vs, rs) for rs in self.dests.get(vs.key, {}).values()]

    def ipvs_request(self, payload: bytes) -> int:
        """Apply one request; its errno (0: done)."""
        cmd = payload[0]
        vs = wire.parse_service(payload)
        assert vs is not None
        key = vs.key
        if cmd == wire.CMD_NEW_SERVICE:
            if key in self.services:
                return errno.EEXIST
            self.services[key] = replace(vs, flags=vs.flags | wire_hashed())
            self.dests[key] = {}
            return 0
        if key not in self.services:
            return errno.ESRCH
        if cmd == wire.CMD_SET_SERVICE:
            self.services[key] = replace(vs, flags=vs.flags | wire_hashed())
            return 0
        if cmd == wire.CMD_DEL_SERVICE:
            del self.services[key], self.dests[key]
            return 0
        rs = wire.parse_dest(payload)
        assert rs is not None
        dests = self.dests[key]
        have = dests.get((rs.ip, rs.port))
        if cmd == wire.CMD_NEW_DEST:
            if have is not None:
                return errno.EEXIST
            dests[(rs.ip, rs.port)] = rs
        elif have is None:
            return errno.ENOENT
        elif cmd == wire.CMD_SET_DEST:
            dests[(rs.ip, rs.port)] = replace(
                have, weight=rs.weight, active_conns=have.active_conns
            )
        else:
            assert cmd == wire.CMD_DEL_DEST, cmd
            del dests[(rs.ip, rs.port)]
        return 0

    # kube-ipvs0's addresses over rtnetlink -------------------------------------------------

    def route_dump(self) -> list[bytes]:
        self.read_back += 1
        return [netlink.address_request(DEVICE, ip) for ip in sorted(self.addresses)]

    def route_request(self, mtype: int, payload: bytes) -> int:
        _, _, _, _, index = netlink.IFADDRMSG.unpack_from(payload)
        assert index == DEVICE
        raw = dict(attrs(payload[netlink.IFADDRMSG.size :]))[netlink.IFA_LOCAL]
        ip = socket.inet_ntoa(raw)
        if mtype == netlink.RTM_NEWADDR:
            if ip in self.addresses:
                return errno.EEXIST
            self.addresses.add(ip)
            return 0
        if ip not in self.addresses:
            return errno.EADDRNOTAVAIL
        self.addresses.remove(ip)
        return 0

    # ipset ------------------------------------------------------------------------------

    def ipset(self, argv: list[str], text: str) -> str:
        if argv == ["ipset", "save"]:
            self.read_back += 1
            out = []
            for name, entries in sorted(self.ipsets.items()):
                out.append(f"create {name} hash:ip family inet")
                out += [f"add {name} {e}" for e in sorted(entries)]
            return "\n".join(out) + "\n"
        assert argv == ["ipset", "restore"], argv
        for line in text.splitlines():
            words = line.split()
            if words[0] == "create":
                self.ipsets.setdefault(words[1], set())
            elif words[0] == "flush":
                self.ipsets[words[1]].clear()
            elif words[0] == "add":
                self.ipsets[words[1]].add(canonical_entry(words[2]))
            else:
                assert words[0] == "del", line
                self.ipsets[words[1]].discard(canonical_entry(words[2]))
        return ""


def wire_hashed() -> int:
    return 0x2  # the kernel lists every service with IP_VS_SVC_F_HASHED


def _dest_answer(vs: VirtualServer, rs: RealServer) -> bytes:
    body = wire.dest_attr(rs)
    inner = dict(attrs(body))[wire.CMD_ATTR_DEST]
    inner += attr(wire.DEST_ACTIVE_CONNS, struct.pack("=I", rs.active_conns))
    inner += attr(wire.DEST_INACT_CONNS, struct.pack("=I", rs.inactive_conns))
    return wire.message(
        wire.CMD_NEW_DEST,
        wire.service_attr(vs, full=False) + attr(wire.CMD_ATTR_DEST | NLA_F_NESTED, inner),
    )


class FakeKernel:
    """Every fake node, by namespace name, and the hooks that route the proxier's calls."""

    def __init__(self) -> None:
        self.nodes: dict[str, FakeNode] = {}
        self.current = ""  # the namespace a worker thread has "entered"

    def node(self, name: str) -> FakeNode:
        return self.nodes.setdefault(name, FakeNode())

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        kernel = self

        def call(fn: Any, *args: Any, netns_name: str | None = None) -> Any:
            kernel.current = netns_name or ""
            return fn(*args)

        class Socket:
            def __init__(self, protocol: int) -> None:
                self.protocol = protocol

            def __enter__(self) -> Socket:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

            def dump(self, mtype: int, payload: bytes) -> list[bytes]:
                node = kernel.node(kernel.current)
                if self.protocol == netlink.NETLINK_ROUTE:
                    return node.route_dump()
                assert mtype == FAMILY
                return node.ipvs_dump(payload)

            def requests(
                self, mtype: int, payloads: Any, flags: int = 0, tolerate: Any = ()
            ) -> None:
                node = kernel.node(kernel.current)
                for i, p in enumerate(payloads):
                    if self.protocol == netlink.NETLINK_ROUTE:
                        code = node.route_request(mtype, p)
                    else:
                        assert mtype == FAMILY
                        code = node.ipvs_request(p)
                    if code and code not in tolerate:
                        raise netlink.NetlinkRefused(code, i)

        class IPRoute:
            def __enter__(self) -> IPRoute:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

            def link_lookup(self, ifname: str) -> list[int]:
                return [DEVICE]

        def run(ns: str, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
            out = kernel.node(ns).ipset(argv, kw.get("input", ""))
            return subprocess.CompletedProcess(argv, 0, out, "")

        def restore(ns: str, text: str, backend: str) -> float:
            kernel.node(ns).iptables.restore(text)
            return 0.0

        monkeypatch.setattr(threads, "call", call)
        monkeypatch.setattr(netns, "assert_not_host", lambda: None)
        monkeypatch.setattr(netlink, "BulkSocket", Socket)
        monkeypatch.setattr(ipvs_proxier, "IPRoute", IPRoute)
        monkeypatch.setattr(ipvs_proxier, "_dummy_index", lambda ipr: DEVICE)
        monkeypatch.setattr(ipvs_proxier, "ipvs_family", lambda: FAMILY)
        monkeypatch.setattr(process, "run", run)
        monkeypatch.setattr(rules, "iptables_restore", restore)
