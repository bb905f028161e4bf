"""Rendered frontends and backends as the bytes of Cilium's maps, and the order to write them.

:class:`Encoder` turns :class:`render.Rendered` into key/value bytes with the codecs read from
the programs' BTF (:mod:`layout`); :func:`plan` compares what a node's maps hold with what they
should hold and orders the writes as Cilium's agent orders them for a frontend (cilium/cilium
v1.18, ``pkg/loadbalancer/reconciler/bpf_reconciler.go``, ``updateFrontend``): backends and the
backend slots, source ranges and reverse NAT, then slot 0 with its new count (``upsertMaster``),
then the slots past the count (``cleanupSlots``). Here every Service of a sync goes in one bulk
call per map and step, and stale entries of every kind go last, frontends (slot 0) before their
slots, backends after everything that names them; Cilium deletes a frontend's orphaned
backends before its writes. So a packet never meets a slot 0 whose count points at a slot or
backend not yet written, or already deleted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from netlab.proxy.ebpf.layout import HOST, MapLayout
from netlab.proxy.ebpf.render import Backend, BackendKey, Frontend, FrontendKey, Rendered, ip_int

SERVICES = "cilium_lb4_services_v2"
BACKENDS = "cilium_lb4_backends_v3"
REVNAT = "cilium_lb4_reverse_nat"
AFFINITY = "cilium_lb4_affinity"
AFFINITY_MATCH = "cilium_lb_affinity_match"
SOURCE_RANGE = "cilium_lb4_source_range"
CT_TCP = "cilium_ct4_global"
CT_ANY = "cilium_ct_any4_global"
SNAT = "cilium_snat_v4_external"
REVERSE_SK = "cilium_lb4_reverse_sk"

# What a sync owns and writes (the others are the datapath's own state).
SYNCED_MAPS = (SERVICES, BACKENDS, REVNAT, AFFINITY_MATCH, SOURCE_RANGE)
ALL_MAPS = (*SYNCED_MAPS, AFFINITY, CT_TCP, CT_ANY, SNAT, REVERSE_SK)
LPM_STATIC_BITS = 32  # rev_nat_id and pad of lb4_src_range_key, matched whole


@dataclass
class Contents:
    """Key -> value bytes of every synced map; services split into slot 0 and the slots."""

    masters: dict[bytes, bytes] = field(default_factory=dict)
    slots: dict[bytes, bytes] = field(default_factory=dict)
    backends: dict[bytes, bytes] = field(default_factory=dict)
    revnat: dict[bytes, bytes] = field(default_factory=dict)
    affinity_match: dict[bytes, bytes] = field(default_factory=dict)
    source_range: dict[bytes, bytes] = field(default_factory=dict)

    def merge(self, other: Contents) -> None:
        self.masters.update(other.masters)
        self.slots.update(other.slots)
        self.backends.update(other.backends)
        self.revnat.update(other.revnat)
        self.affinity_match.update(other.affinity_match)
        self.source_range.update(other.source_range)

    def size(self) -> int:
        return sum(len(d) for d in self._maps().values())

    def _maps(self) -> dict[str, dict[bytes, bytes]]:
        return {
            "masters": self.masters,
            "slots": self.slots,
            "backends": self.backends,
            "revnat": self.revnat,
            "affinity_match": self.affinity_match,
            "source_range": self.source_range,
        }


class Encoder:
    """Packs rendered Services into map entries; every layout comes from BTF."""

    def __init__(self, layouts: dict[str, MapLayout]):
        svc = layouts[SERVICES]
        self.svc_key = svc.key.packer(("address", "dport", "backend_slot", "proto", "scope"))
        self.svc_master = svc.value.packer(
            ("affinity_timeout", "count", "rev_nat_index", "flags", "flags2")
        )
        self.svc_slot = svc.value.packer(("backend_id", "rev_nat_index"))
        be = layouts[BACKENDS]
        self.be_key = be.key.packer(("value",))
        self.be_value = be.value.packer(("address", "port", "proto", "flags"))
        rn = layouts[REVNAT]
        self.rn_key = rn.key.packer(("value",))
        self.rn_value = rn.value.packer(("address", "port"))
        am = layouts[AFFINITY_MATCH]
        self.am_key = am.key.packer(("backend_id", "rev_nat_id"))
        self.am_value = am.value.packer(("value",))
        sr = layouts[SOURCE_RANGE]
        self.sr_key = sr.key.packer(("lpm_key.prefixlen", "rev_nat_id", "addr"))
        self.sr_value = sr.value.packer(("value",))

    def frontend(self, f: Frontend, out: Contents) -> None:
        addr = ip_int(f.address)
        key, port, proto, sid = self.svc_key, f.port, f.proto, f.id
        masters, slots, slot_value = out.masters, out.slots, self.svc_slot
        for scope, ids in f.scopes:
            masters[key(addr, port, 0, proto, scope)] = self.svc_master(
                f.affinity_timeout, len(ids), sid, f.flags, f.flags2
            )
            for slot, backend_id in enumerate(ids, start=1):
                slots[key(addr, port, slot, proto, scope)] = slot_value(backend_id, sid)
        out.revnat[self.rn_key(sid)] = self.rn_value(addr, port)
        if f.affinity_timeout:
            for _scope, ids in f.scopes:
                for backend_id in ids:
                    out.affinity_match[self.am_key(backend_id, sid)] = self.am_value(0)
        for cidr in f.source_ranges:
            net = ipaddress.IPv4Network(cidr, strict=False)
            k = self.sr_key(LPM_STATIC_BITS + net.prefixlen, sid, int(net.network_address))
            out.source_range[k] = self.sr_value(0)

    def backend(self, b: Backend) -> tuple[bytes, bytes]:
        return self.be_key(b.id), self.be_value(ip_int(b.address), b.port, b.proto, b.state)

    def rendered(self, r: Rendered) -> Contents:
        out = Contents()
        for f in r.frontends:
            self.frontend(f, out)
        for b in r.backends:
            k, v = self.backend(b)
            out.backends[k] = v
        return out

    def all(self, rendered: Iterable[Rendered]) -> Contents:
        out = Contents()
        for r in rendered:
            out.merge(self.rendered(r))
        return out


@dataclass(frozen=True)
class Op:
    """One bulk write: update ``items`` (key, value) or delete ``keys`` in ``map``."""

    map: str
    update: tuple[tuple[bytes, bytes], ...] = ()
    delete: tuple[bytes, ...] = ()
    what: str = ""


# Where each part of Contents lives, and the order Cilium writes them in.
PARTS = ("masters", "slots", "backends", "revnat", "affinity_match", "source_range")
PART_MAP = {
    "masters": SERVICES,
    "slots": SERVICES,
    "backends": BACKENDS,
    "revnat": REVNAT,
    "affinity_match": AFFINITY_MATCH,
    "source_range": SOURCE_RANGE,
}
UPDATE_ORDER = (
    ("backends", "backends"),
    ("revnat", "reverse NAT"),
    ("affinity_match", "affinity"),
    ("source_range", "source ranges"),
    ("slots", "backend slots"),
    ("masters", "frontends (slot 0)"),
)
DELETE_ORDER = (
    ("masters", "stale frontends"),
    ("slots", "stale slots"),
    ("source_range", "stale ranges"),
    ("affinity_match", "stale affinity"),
    ("revnat", "stale reverse NAT"),
    ("backends", "stale backends"),
)


@dataclass
class Delta:
    """Entries to write and to delete, per part of :class:`Contents`, gathered from any
    number of Services before one ordered, bulk application."""

    updates: dict[str, dict[bytes, bytes]] = field(default_factory=lambda: {p: {} for p in PARTS})
    deletes: dict[str, dict[bytes, None]] = field(default_factory=lambda: {p: {} for p in PARTS})

    def diff(self, old: Contents, new: Contents, parts: tuple[str, ...] = PARTS) -> None:
        """Add what turns ``old`` into ``new`` (in the given parts)."""
        for part in parts:
            o, n = getattr(old, part), getattr(new, part)
            up = self.updates[part]
            if not o:
                up.update(n)
                continue
            get = o.get
            for k, v in n.items():
                if get(k) != v:
                    up[k] = v
            dl = self.deletes[part]
            for k in o:
                if k not in n:
                    dl[k] = None

    def merge_new(self, new: Contents) -> None:
        """Add entries that are all new (a node's first sync)."""
        for part in PARTS:
            self.updates[part].update(getattr(new, part))

    def ops(self) -> list[Op]:
        """The writes in Cilium's order; a key written anew is not also deleted."""
        out = [
            Op(PART_MAP[part], update=tuple(self.updates[part].items()), what=what)
            for part, what in UPDATE_ORDER
        ]
        for part, what in DELETE_ORDER:
            written = self.updates[part]
            stale = tuple(k for k in self.deletes[part] if k not in written)
            out.append(Op(PART_MAP[part], delete=stale, what=what))
        return [op for op in out if op.update or op.delete]

    def apply_to(self, contents: Contents) -> None:
        """Bring ``contents`` (what the maps hold) up to date with this delta."""
        for part in PARTS:
            d = getattr(contents, part)
            written = self.updates[part]
            for k in self.deletes[part]:
                if k not in written:
                    d.pop(k, None)
            d.update(written)


def plan(old: Contents, new: Contents) -> list[Op]:
    """The writes that turn ``old`` into ``new``, in Cilium's order; empty ops are left out."""
    delta = Delta()
    delta.diff(old, new)
    return delta.ops()


def split_services(entries: dict[bytes, bytes], layouts: dict[str, MapLayout]) -> Contents:
    """What a dump of the services map holds, as slot 0 entries and backend slots."""
    key = layouts[SERVICES].key
    slot = key.field("backend_slot")
    out = Contents()
    for k, v in entries.items():
        n = int.from_bytes(k[slot.offset : slot.offset + slot.size], HOST)
        (out.slots if n else out.masters)[k] = v
    return out


def recover_ids(
    applied: Contents, layouts: dict[str, MapLayout]
) -> tuple[dict[FrontendKey, int], dict[BackendKey, int]]:
    """Cilium's IDs as the maps hold them: frontend (address, port, protocol) -> service ID
    from the slot-0 entries, backend (address, port, protocol) -> backend ID."""
    key, value = layouts[SERVICES].key, layouts[SERVICES].value
    sids: dict[FrontendKey, int] = {}
    for k, v in applied.masters.items():
        fk, fv = key.decode(k), value.decode(v)
        sids[(_ip(fk["address"]), _i(fk["dport"]), _i(fk["proto"]))] = _i(fv["rev_nat_index"])
    be_key, be_value = layouts[BACKENDS].key, layouts[BACKENDS].value
    bids: dict[BackendKey, int] = {}
    for k, v in applied.backends.items():
        b = be_value.decode(v)
        bids[(_ip(b["address"]), _i(b["port"]), _i(b["proto"]))] = _i(be_key.decode(k)["value"])
    return sids, bids


def _i(value: int | bytes) -> int:
    return value if isinstance(value, int) else int.from_bytes(value, HOST)


def _ip(value: int | bytes) -> str:
    return str(ipaddress.IPv4Address(_i(value) if isinstance(value, int) else value))
