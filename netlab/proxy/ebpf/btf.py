"""BTF of the compiled programs, read from their ELF files in pure Python.

The C structs in ``bpf/lib/common.h`` and the map definitions in ``bpf/lib/maps.h`` are the
single source of truth for every byte Python writes into a map: clang records their layout in
the object's ``.BTF`` section, and this module reads it back (type kinds and encodings as the
kernel's ``Documentation/bpf/btf.rst`` specifies them). Nothing here restates an offset or a
size, and nothing here needs root or a kernel.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from netlab.errors import LabError

BTF_MAGIC = 0xEB9F

# btf_kind
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF = 1, 2, 3, 4, 5, 6, 7, 8
VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR, DATASEC = 9, 10, 11, 12, 13, 14, 15
FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = 16, 17, 18, 19

_QUALIFIERS = (TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG)


@dataclass(frozen=True)
class Member:
    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int  # 0: not a bitfield


@dataclass(frozen=True)
class BtfType:
    id: int
    kind: int
    name: str
    size: int  # STRUCT/UNION/INT/ENUM/DATASEC/FLOAT: bytes
    ref: int  # PTR/TYPEDEF/qualifiers/VAR/FUNC: the referenced type
    members: tuple[Member, ...] = ()
    nelems: int = 0  # ARRAY
    elem: int = 0  # ARRAY
    int_bits: int = 0  # INT: number of bits
    int_signed: bool = False
    vars: tuple[tuple[int, int, int], ...] = ()  # DATASEC: (var type id, offset, size)


@dataclass(frozen=True)
class MapDef:
    """A map as ``maps.h`` defines it (libbpf's BTF-defined map)."""

    name: str
    type: int
    key_type: int
    value_type: int
    max_entries: int
    flags: int
    pinning: int


@dataclass
class Btf:
    types: dict[int, BtfType] = field(default_factory=dict)
    symbols: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)

    def by_name(self, name: str, kinds: tuple[int, ...] = (STRUCT, UNION)) -> BtfType:
        for t in self.types.values():
            if t.name == name and t.kind in kinds:
                return t
        raise KeyError(f"no BTF type {name!r}")

    def resolve(self, type_id: int) -> BtfType:
        """Strip typedefs and qualifiers."""
        t = self.types[type_id]
        while t.kind in _QUALIFIERS:
            t = self.types[t.ref]
        return t

    def size_of(self, type_id: int) -> int:
        t = self.resolve(type_id)
        if t.kind == ARRAY:
            return t.nelems * self.size_of(t.elem)
        if t.kind == PTR:
            return 8
        return t.size

    def typedef_name(self, type_id: int) -> str:
        """The outermost typedef's name (``__be32``), or the type's own name."""
        t = self.types[type_id]
        while t.kind in (VOLATILE, CONST, RESTRICT, TYPE_TAG):
            t = self.types[t.ref]
        return t.name

    def datasec(self, section: str) -> dict[str, tuple[int, int]]:
        """Variables of a data section: name -> (offset, size). clang leaves the offsets to
        the loader; the ELF symbol table has them."""
        sec = self.by_name(section, (DATASEC,))
        out: dict[str, tuple[int, int]] = {}
        for var_id, offset, size in sec.vars:
            name = self.types[var_id].name
            sym = self.symbols.get((section, name))
            if sym is not None:
                offset, size = sym
            out[name] = (offset, size or self.size_of(self.types[var_id].ref))
        return out

    def maps(self) -> dict[str, MapDef]:
        """The BTF-defined maps of the ``.maps`` section."""
        out: dict[str, MapDef] = {}
        for var_id, _off, _size in self.by_name(".maps", (DATASEC,)).vars:
            var = self.types[var_id]
            spec = self.resolve(var.ref)
            attrs: dict[str, int] = {}
            for m in spec.members:
                ptr = self.resolve(m.type_id)
                if m.name in ("key", "value"):
                    attrs[m.name] = ptr.ref
                else:  # __uint(name, value): a pointer to an array of ``value`` elements
                    attrs[m.name] = self.resolve(ptr.ref).nelems
            out[var.name] = MapDef(
                name=var.name,
                type=attrs.get("type", 0),
                key_type=attrs.get("key", 0),
                value_type=attrs.get("value", 0),
                max_entries=attrs.get("max_entries", 0),
                flags=attrs.get("map_flags", 0),
                pinning=attrs.get("pinning", 0),
            )
        return out


Sections = dict[str, tuple[int, int, int, int, int]]


def _sections(data: bytes) -> tuple[Sections, list[str]]:
    """ELF64 little-endian section headers: name -> (type, offset, size, link, entsize), and
    the section names in index order."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise LabError("not a 64-bit little-endian ELF object")
    e_shoff = struct.unpack_from("<Q", data, 0x28)[0]
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [
        struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + i * e_shentsize) for i in range(e_shnum)
    ]
    strtab_off = headers[e_shstrndx][4]
    out: Sections = {}
    index: list[str] = []
    for name_off, sh_type, _fl, _addr, off, size, link, _info, _al, entsize in headers:
        end = data.index(b"\0", strtab_off + name_off)
        name = data[strtab_off + name_off : end].decode()
        index.append(name)
        out[name] = (sh_type, off, size, link, entsize)
    return out, index


def _symbols(
    data: bytes, sections: Sections, index: list[str]
) -> dict[tuple[str, str], tuple[int, int]]:
    """(section, symbol) -> (value, size) from .symtab."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    if ".symtab" not in sections:
        return out
    _t, off, size, link, entsize = sections[".symtab"]
    str_off = sections[index[link]][1]
    for i in range(size // entsize):
        st_name, _info, _other, shndx, value, sym_size = struct.unpack_from(
            "<IBBHQQ", data, off + i * entsize
        )
        if not st_name or shndx == 0 or shndx >= len(index):
            continue
        end = data.index(b"\0", str_off + st_name)
        out[(index[shndx], data[str_off + st_name : end].decode())] = (value, sym_size)
    return out


def parse(data: bytes) -> Btf:
    """Parse an ELF object's ``.BTF`` section (and its symbol table, for section offsets)."""
    sections, index = _sections(data)
    if ".BTF" not in sections:
        raise LabError("the object has no .BTF section (compile with -g)")
    _t, base, _size, _l, _e = sections[".BTF"]
    magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", data, base)
    if magic != BTF_MAGIC:
        raise LabError("bad BTF magic")
    type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, base + 8)
    strings = data[base + hdr_len + str_off : base + hdr_len + str_off + str_len]

    def name(off: int) -> str:
        return strings[off : strings.index(b"\0", off)].decode()

    btf = Btf(symbols=_symbols(data, sections, index))
    pos = base + hdr_len + type_off
    end = pos + type_len
    type_id = 1
    while pos < end:
        name_off, info, size_or_type = struct.unpack_from("<III", data, pos)
        pos += 12
        kind = (info >> 24) & 0x1F
        vlen = info & 0xFFFF
        kind_flag = info >> 31
        t = BtfType(type_id, kind, name(name_off), size_or_type, size_or_type)
        if kind == INT:
            (enc,) = struct.unpack_from("<I", data, pos)
            pos += 4
            t = BtfType(
                type_id,
                kind,
                t.name,
                size_or_type,
                0,
                int_bits=enc & 0xFF,
                int_signed=bool((enc >> 24) & 1),
            )
        elif kind == ARRAY:
            elem, _index_type, nelems = struct.unpack_from("<III", data, pos)
            pos += 12
            t = BtfType(type_id, kind, t.name, 0, 0, nelems=nelems, elem=elem)
        elif kind in (STRUCT, UNION):
            members = []
            for _ in range(vlen):
                m_name, m_type, m_off = struct.unpack_from("<III", data, pos)
                pos += 12
                bits = m_off >> 24 if kind_flag else 0
                offset = m_off & 0xFFFFFF if kind_flag else m_off
                members.append(Member(name(m_name), m_type, offset, bits))
            t = BtfType(type_id, kind, t.name, size_or_type, 0, members=tuple(members))
        elif kind == ENUM:
            pos += 8 * vlen
        elif kind == ENUM64:
            pos += 12 * vlen
        elif kind == FUNC_PROTO:
            pos += 8 * vlen
        elif kind in (VAR, DECL_TAG):
            pos += 4
        elif kind == DATASEC:
            entries = [struct.unpack_from("<III", data, pos + 12 * i) for i in range(vlen)]
            pos += 12 * vlen
            t = BtfType(type_id, kind, t.name, size_or_type, 0, vars=tuple(entries))
        btf.types[type_id] = t
        type_id += 1
    return btf


def read(path: str) -> Btf:
    with open(path, "rb") as f:
        return parse(f.read())
