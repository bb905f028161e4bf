"""Netlink in bulk: many requests in one ``send``, their acks read together.

pyroute2's sockets send one request and wait for its answer through an asyncio loop, with
pyroute2's message classes encoding and decoding it: about 0.3 ms of Python per request on
these machines. A kube-proxy sync in IPVS mode is thousands of requests (every service, every
real server, every address on kube-ipvs0), and the kernel takes a buffer of many concatenated
requests in one go (``netlink_rcv_skb`` handles them in order and acks each), so such a sync
becomes a few sends instead of thousands of round trips. Dumps cannot be batched (a socket runs
one dump at a time) but are read here without the asyncio round trip. The payloads are made by
the caller (e.g. :mod:`netlab.proxy.ipvs.wire`); this module only moves them.

The socket belongs to the calling thread's network namespace: use it from a worker thread
inside the target namespace (:func:`netlab.kernel.threads.call`).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from netlab.kernel.nlattr import attr, attrs

NETLINK_ROUTE = 0
NETLINK_GENERIC = 16
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10  # acks carry only the request's header, not its payload
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_DUMP = 0x300
HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
CHUNK = 512  # requests per send: their acks (36 bytes each) stay far below the receive buffer
RCVBUF = 4 << 20
# rtnetlink addresses
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, interface index


class NetlinkRefused(OSError):
    """A request the kernel refused: ``errno`` is its error, ``index`` its place in the batch."""

    def __init__(self, code: int, index: int):
        super().__init__(code, f"netlink request {index} refused: {os.strerror(code)}")
        self.index = index


def split(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """The netlink messages in one datagram: (type, flags, sequence, payload)."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, mtype, flags, seq, _ = HEADER.unpack_from(data, offset)
        if length < HEADER.size:
            raise ValueError(f"netlink message of length {length} at offset {offset}")
        yield mtype, flags, seq, data[offset + HEADER.size : offset + length]
        offset += (length + 3) & ~3


def error_code(payload: bytes) -> int:
    """The (positive) errno of an NLMSG_ERROR payload; 0 for an ack."""
    return -int(struct.unpack_from("=i", payload)[0])


class BulkSocket:
    """A plain netlink socket of ``protocol`` in the calling thread's namespace."""

    def __init__(self, protocol: int, sock: Any = None):
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        if sock is None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> BulkSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _message(self, mtype: int, flags: int, payload: bytes) -> tuple[int, bytes]:
        self.seq += 1
        header = HEADER.pack(HEADER.size + len(payload), mtype, flags, self.seq, 0)
        return self.seq, header + payload + bytes(-len(payload) % 4)

    def requests(
        self, mtype: int, payloads: Sequence[bytes], flags: int = 0, tolerate: Iterable[int] = ()
    ) -> None:
        """Send every request (each acked), in order, ``CHUNK`` per send. The first refusal
        not in ``tolerate`` is raised once its chunk is done (the kernel goes on with the rest
        of a chunk after a refused request, as with any batch)."""
        allowed = set(tolerate)
        for start in range(0, len(payloads), CHUNK):
            wanted: dict[int, int] = {}
            buf = bytearray()
            for i, payload in enumerate(payloads[start : start + CHUNK], start):
                seq, data = self._message(mtype, NLM_F_REQUEST | NLM_F_ACK | flags, payload)
                wanted[seq] = i
                buf += data
            self.sock.send(buf)
            failed: list[tuple[int, int]] = []
            while wanted:
                for kind, _, seq, payload in split(self.sock.recv(RCVBUF)):
                    if kind != NLMSG_ERROR or seq not in wanted:
                        continue
                    index = wanted.pop(seq)
                    code = error_code(payload)
                    if code and code not in allowed:
                        failed.append((index, code))
            if failed:
                index, code = min(failed)
                raise NetlinkRefused(code, index)

    def dump(self, mtype: int, payload: bytes) -> list[bytes]:
        """One dump request; the payload of every answer."""
        seq, data = self._message(mtype, NLM_F_REQUEST | NLM_F_DUMP, payload)
        self.sock.send(data)
        out: list[bytes] = []
        while True:
            for kind, _, mseq, answer in split(self.sock.recv(RCVBUF)):
                if mseq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    code = error_code(answer)
                    if code:
                        raise NetlinkRefused(code, 0)
                    continue
                out.append(answer)


def address_request(index: int, ip: str, prefixlen: int = 32) -> bytes:
    """An RTM_NEWADDR / RTM_DELADDR payload for IPv4 ``ip`` on interface ``index``, as
    ``ip addr add IP/LEN dev X`` sends it."""
    raw = socket.inet_aton(ip)
    return (
        IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, 0, index)
        + attr(IFA_LOCAL, raw)
        + attr(IFA_ADDRESS, raw)
    )


def addresses_on(sock: BulkSocket, index: int) -> list[str]:
    """The IPv4 addresses on interface ``index`` (one RTM_GETADDR dump)."""
    out = []
    for payload in sock.dump(RTM_GETADDR, IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)):
        family, _, _, _, ifindex = IFADDRMSG.unpack_from(payload)
        if family != socket.AF_INET or ifindex != index:
            continue
        found = dict(attrs(payload[IFADDRMSG.size :]))
        raw = found.get(IFA_LOCAL) or found.get(IFA_ADDRESS)
        if raw:
            out.append(socket.inet_ntoa(raw[:4]))
    return out
