"""Bulk netlink (netlab.kernel.netlink) against a fake kernel socket."""

from __future__ import annotations

import errno
import socket
import struct

import pytest

from netlab.kernel import netlink
from netlab.kernel.nlattr import attr, attrs

FAMILY = 0x1E


def nlmsg(mtype: int, seq: int, payload: bytes = b"") -> bytes:
    return netlink.HEADER.pack(16 + len(payload), mtype, 0, seq, 0) + payload


def ack(seq: int, code: int = 0) -> bytes:
    return nlmsg(netlink.NLMSG_ERROR, seq, struct.pack("=i", -code) + bytes(16))


class FakeKernel:
    """Acks every request of a send in order, as netlink_rcv_skb does (``refuse``: request
    number -> errno), handing the acks over in two datagrams; answers a dump with ``answers``
    payloads, then NLMSG_DONE, in separate datagrams."""

    def __init__(self, refuse: dict[int, int] | None = None, answers: list[bytes] | None = None):
        self.refuse = refuse or {}
        self.answers = answers or []
        self.sends: list[list[tuple[int, int, int, bytes]]] = []
        self.queue: list[bytes] = []
        self.handled = 0

    def send(self, data: bytes) -> int:
        msgs = list(netlink.split(bytes(data)))
        self.sends.append(msgs)
        acks = b""
        for _, flags, seq, _ in msgs:
            if flags & netlink.NLM_F_DUMP == netlink.NLM_F_DUMP:
                self.queue += [nlmsg(FAMILY, seq, a) for a in self.answers]
                self.queue.append(nlmsg(netlink.NLMSG_DONE, seq, struct.pack("=i", 0)))
                continue
            assert flags & netlink.NLM_F_ACK and flags & netlink.NLM_F_REQUEST
            acks += ack(seq, self.refuse.get(self.handled, 0))
            self.handled += 1
        if acks:
            half = len(acks) // 2 // 36 * 36
            self.queue += [acks[:half], acks[half:]]
        return len(data)

    def recv(self, size: int) -> bytes:
        return self.queue.pop(0)


def test_requests_go_in_chunks_in_order_each_acked() -> None:
    fake = FakeKernel()
    payloads = [struct.pack("=I", i) for i in range(netlink.CHUNK + 3)]
    netlink.BulkSocket(0, fake).requests(FAMILY, payloads, flags=netlink.NLM_F_CREATE)
    assert [len(s) for s in fake.sends] == [netlink.CHUNK, 3]
    sent = [m for s in fake.sends for m in s]
    assert [seq for _, _, seq, _ in sent] == list(range(1, netlink.CHUNK + 4))
    assert [p for _, _, _, p in sent] == payloads
    assert {t for t, _, _, _ in sent} == {FAMILY}
    assert all(f & netlink.NLM_F_CREATE for _, f, _, _ in sent)
    assert fake.queue == []


def test_the_first_refusal_is_raised_after_its_chunk() -> None:
    fake = FakeKernel(refuse={7: errno.ENOENT, 4: errno.EINVAL})
    with pytest.raises(netlink.NetlinkRefused) as err:
        netlink.BulkSocket(0, fake).requests(FAMILY, [b"x"] * 10)
    assert (err.value.errno, err.value.index) == (errno.EINVAL, 4)
    assert fake.handled == 10 and fake.queue == []


def test_tolerated_refusals_pass() -> None:
    fake = FakeKernel(refuse={1: errno.EEXIST})
    netlink.BulkSocket(0, fake).requests(FAMILY, [b"x"] * 3, tolerate=(errno.EEXIST,))
    assert fake.handled == 3


def test_dump_returns_every_answer_until_done() -> None:
    fake = FakeKernel(answers=[b"aaaa", b"bbbbbbbb"])
    sock = netlink.BulkSocket(0, fake)
    assert sock.dump(FAMILY, b"q") == [b"aaaa", b"bbbbbbbb"]
    ((_, flags, _, payload),) = fake.sends[0]
    assert flags == netlink.NLM_F_REQUEST | netlink.NLM_F_DUMP
    assert payload == b"q"  # the length excludes the padding after it


def test_dump_raises_a_refusal() -> None:
    class Refusing(FakeKernel):
        def send(self, data: bytes) -> int:
            (_, _, seq, _) = next(netlink.split(bytes(data)))
            self.queue.append(ack(seq, errno.EPERM))
            return len(data)

    with pytest.raises(netlink.NetlinkRefused) as err:
        netlink.BulkSocket(0, Refusing()).dump(FAMILY, b"")
    assert err.value.errno == errno.EPERM


def test_address_request_is_what_ip_addr_add_sends() -> None:
    payload = netlink.address_request(7, "10.96.0.10")
    assert netlink.IFADDRMSG.unpack_from(payload) == (socket.AF_INET, 32, 0, 0, 7)
    found = dict(attrs(payload[netlink.IFADDRMSG.size :]))
    assert found == {
        netlink.IFA_LOCAL: socket.inet_aton("10.96.0.10"),
        netlink.IFA_ADDRESS: socket.inet_aton("10.96.0.10"),
    }


def test_addresses_on_one_interface() -> None:
    def answer(family: int, index: int, ip: str) -> bytes:
        raw = socket.inet_aton(ip)
        head = netlink.IFADDRMSG.pack(family, 32, 0, 0, index)
        return head + attr(netlink.IFA_ADDRESS, raw) + attr(netlink.IFA_LOCAL, raw)

    fake = FakeKernel(
        answers=[
            answer(2, 7, "10.96.0.1"),
            answer(2, 3, "192.168.56.11"),
            answer(2, 7, "10.96.0.10"),
        ]
    )
    assert netlink.addresses_on(netlink.BulkSocket(0, fake), 7) == ["10.96.0.1", "10.96.0.10"]
