"""Netlink attributes (type-length-value), packed and walked: pure, shared by the message
layouts of the kernel layer (:mod:`netlab.kernel.netlink`) and of IPVS mode
(:mod:`netlab.proxy.ipvs.wire`)."""

from __future__ import annotations

import struct
from collections.abc import Iterator

NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF


def attr(kind: int, payload: bytes) -> bytes:
    """One attribute: length, type, payload, padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + bytes(-length % 4)


def attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The attributes in ``data``: (type without its flags, payload)."""
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        yield kind & NLA_TYPE_MASK, data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
