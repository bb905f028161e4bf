"""Map keys and values as bytes, laid out by the BTF of the compiled programs.

A :class:`Codec` is made from a BTF struct (or scalar) type: every member, also inside
anonymous unions and structs and nested named structs (``common.created``), becomes a field
with the offset, size and bit position BTF gives it. Fields typed ``__be16``/``__be32`` are in
network byte order. So are a few that C declares as plain integers but that hold network-order
data (:data:`NETWORK_ORDER`): the reverse-NAT IDs, which Cilium stores in network order
(``pkg/maps/lbmap``: ``RevNat4Key.ToNetwork``, and every ``rev_nat_index``/``rev_nat_id`` copied
from the service entry), and the addresses a program copies straight from a packet. Everything
else is in host order.

``Codec.packer(names)`` compiles a ``struct.Struct`` for a fixed set of non-overlapping
fields, for the bulk writes of a full sync (tens of thousands of entries).
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from netlab.proxy.ebpf import btf as btfmod

# Declared as plain integers, holding network-order data (see the module docstring): any
# field of these names, and these fields of these structs.
NETWORK_ORDER_NAMES = frozenset({"rev_nat_index", "rev_nat_id"})
NETWORK_ORDER = frozenset({"lb4_src_range_key.addr", "lb4_affinity_key.client_id.client_ip"})

Value = int | bytes
HOST = sys.byteorder  # the kernel keeps host-order fields in the CPU's order


@dataclass(frozen=True)
class Field:
    name: str
    offset: int  # bytes, of the storage unit
    size: int  # bytes of the storage unit (the whole array for arrays)
    big_endian: bool = False
    bit_offset: int = 0  # within the storage unit, for bitfields
    bit_size: int = 0  # 0: the whole unit
    is_bytes: bool = False  # arrays: raw bytes

    @property
    def is_bitfield(self) -> bool:
        return self.bit_size != 0


def _is_big_endian(b: btfmod.Btf, type_id: int, name: str, path: str) -> bool:
    if b.typedef_name(type_id) in ("__be16", "__be32", "__be64"):
        return True
    return name in NETWORK_ORDER_NAMES or path in NETWORK_ORDER


def _fields(
    b: btfmod.Btf, type_id: int, prefix: str, base_bits: int, out: list[Field], owner: str = ""
) -> None:
    t = b.resolve(type_id)
    for m in t.members:
        mt = b.resolve(m.type_id)
        bits = base_bits + m.bit_offset
        name = f"{prefix}{m.name}" if m.name else prefix.rstrip(".")
        if mt.kind in (btfmod.STRUCT, btfmod.UNION):
            _fields(b, m.type_id, f"{name}." if m.name else prefix, bits, out, owner)
            continue
        size = b.size_of(m.type_id)
        if mt.kind == btfmod.ARRAY:
            if size:
                out.append(Field(name, bits // 8, size, is_bytes=True))
            continue
        if m.bitfield_size:
            unit = size
            start = (bits // (unit * 8)) * unit
            out.append(Field(name, start, unit, False, bits - start * 8, m.bitfield_size))
            continue
        big = _is_big_endian(b, m.type_id, m.name, f"{owner}.{name}")
        out.append(Field(name, bits // 8, size, big))


@dataclass(frozen=True)
class Codec:
    """Encode and decode one map key or value type."""

    type_name: str
    size: int
    fields: tuple[Field, ...]

    @classmethod
    def from_btf(cls, b: btfmod.Btf, type_id: int, name_hint: str = "") -> Codec:
        t = b.resolve(type_id)
        size = b.size_of(type_id)
        if t.kind in (btfmod.STRUCT, btfmod.UNION):
            out: list[Field] = []
            _fields(b, type_id, "", 0, out, t.name)
            return cls(t.name, size, tuple(out))
        # A scalar key or value (a backend ID, a reverse-NAT ID, a u8 flag).
        return cls(
            b.typedef_name(type_id) or t.name,
            size,
            (Field("value", 0, size, name_hint in NETWORK_ORDER_NAMES),),
        )

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.type_name} has no field {name!r}")

    def encode(self, values: Mapping[str, Value]) -> bytes:
        buf = bytearray(self.size)
        for name, value in values.items():
            f = self.field(name)
            if f.is_bytes:
                data = bytes(value) if isinstance(value, bytes | bytearray) else b""
                if len(data) != f.size:
                    raise ValueError(f"{self.type_name}.{name} takes {f.size} bytes")
                buf[f.offset : f.offset + f.size] = data
                continue
            if not isinstance(value, int):
                raise TypeError(f"{self.type_name}.{name} takes an integer")
            order = "big" if f.big_endian else HOST
            if f.is_bitfield:
                unit = int.from_bytes(buf[f.offset : f.offset + f.size], HOST)
                mask = ((1 << f.bit_size) - 1) << f.bit_offset
                if value >> f.bit_size:
                    raise ValueError(f"{self.type_name}.{name} is {f.bit_size} bits")
                unit = (unit & ~mask) | (value << f.bit_offset)
                buf[f.offset : f.offset + f.size] = unit.to_bytes(f.size, HOST)
                continue
            buf[f.offset : f.offset + f.size] = value.to_bytes(f.size, order)
        return bytes(buf)

    def decode(self, data: bytes) -> dict[str, Value]:
        if len(data) != self.size:
            raise ValueError(f"{self.type_name} is {self.size} bytes, got {len(data)}")
        out: dict[str, Value] = {}
        for f in self.fields:
            raw = data[f.offset : f.offset + f.size]
            if f.is_bytes:
                out[f.name] = bytes(raw)
            elif f.is_bitfield:
                unit = int.from_bytes(raw, HOST)
                out[f.name] = (unit >> f.bit_offset) & ((1 << f.bit_size) - 1)
            else:
                out[f.name] = int.from_bytes(raw, "big" if f.big_endian else HOST)
        return out

    def packer(self, names: tuple[str, ...]) -> Callable[..., bytes]:
        """A fast encoder for exactly ``names`` (positional, in that order); the other bytes
        are zero. The fields must be whole, non-overlapping integers."""
        chosen = sorted((self.field(n) for n in names), key=lambda f: f.offset)
        fmt = ["="]  # host order, no alignment: the offsets are BTF's
        pos = 0
        codes = {1: "B", 2: "H", 4: "I", 8: "Q"}
        for f in chosen:
            if f.is_bitfield or f.is_bytes or f.offset < pos:
                raise ValueError(f"{self.type_name}.{f.name} cannot be packed directly")
            if f.offset > pos:
                fmt.append(f"{f.offset - pos}x")
            fmt.append(codes[f.size])
            pos = f.offset + f.size
        if pos < self.size:
            fmt.append(f"{self.size - pos}x")
        st = struct.Struct("".join(fmt))
        # One generated call per entry: struct.pack with the network-order fields swapped,
        # in offset order (a Python loop per field would cost more than the packing).
        args = [f"v{i}" for i in range(len(names))]
        by_field = {self.field(n).name: a for n, a in zip(names, args, strict=True)}
        exprs = []
        for f in chosen:
            arg = by_field[f.name]
            exprs.append(f"_sw{f.size}({arg})" if f.big_endian else arg)
        source = f"def pack({', '.join(args)}):\n    return _pack({', '.join(exprs)})\n"
        scope: dict[str, object] = {
            "_pack": st.pack,
            "_sw2": socket.htons,
            "_sw4": socket.htonl,
            "_sw8": _swapper(8),
        }
        exec(compile(source, f"<packer {self.type_name}>", "exec"), scope)
        return scope["pack"]  # type: ignore[return-value]


def _swapper(size: int) -> Callable[[int], int]:
    """Host-order int -> the int whose host-order bytes are the value's big-endian ones."""

    def swap(v: int) -> int:
        return int.from_bytes(v.to_bytes(size, "big"), HOST)

    return swap


@dataclass(frozen=True)
class MapLayout:
    """One map's definition and its key and value codecs, all from BTF."""

    name: str
    map_type: int
    max_entries: int
    flags: int
    key: Codec
    value: Codec


def map_layouts(b: btfmod.Btf) -> dict[str, MapLayout]:
    out: dict[str, MapLayout] = {}
    for name, d in b.maps().items():
        out[name] = MapLayout(
            name,
            d.type,
            d.max_entries,
            d.flags,
            Codec.from_btf(b, d.key_type, "rev_nat_index" if name.endswith("reverse_nat") else ""),
            Codec.from_btf(b, d.value_type),
        )
    return out
