"""Rendered frontends and backends as the bytes of Cilium's maps, and the order to write them.

:class:`Encoder` turns :class:`render.Rendered` into key/value bytes with the codecs read from
the programs' BTF (:mod:`layout`); :func:`plan` compares what a node's maps hold with what they
should hold and orders the writes as Cilium's agent does (``pkg/loadbalancer`` writer,
``pkg/maps/lbmap``): backends first, then reverse-NAT entries and the other per-frontend maps,
then the backend slots, then each frontend's slot 0 with its new count, and only then the stale
entries, frontends (slot 0) before their slots. So a packet never meets a slot 0 whose count
points at a slot or backend not yet written.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from netlab.proxy.ebpf.layout import HOST, MapLayout
from netlab.proxy.ebpf.render import Frontend, Rendered, ip_int

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
        for scope, ids in f.scopes:
            out.masters[self.svc_key(addr, f.port, 0, f.proto, scope)] = self.svc_master(
                f.affinity_timeout, len(ids), f.id, f.flags, f.flags2
            )
            for slot, backend_id in enumerate(ids, start=1):
                out.slots[self.svc_key(addr, f.port, slot, f.proto, scope)] = self.svc_slot(
                    backend_id, f.id
                )
        out.revnat[self.rn_key(f.id)] = self.rn_value(addr, f.port)
        if f.affinity_timeout:
            for _scope, ids in f.scopes:
                for backend_id in ids:
                    out.affinity_match[self.am_key(backend_id, f.id)] = self.am_value(0)
        for cidr in f.source_ranges:
            net = ipaddress.IPv4Network(cidr, strict=False)
            key = self.sr_key(LPM_STATIC_BITS + net.prefixlen, f.id, int(net.network_address))
            out.source_range[key] = self.sr_value(0)

    def rendered(self, r: Rendered) -> Contents:
        out = Contents()
        for f in r.frontends:
            self.frontend(f, out)
        for b in r.backends:
            out.backends[self.be_key(b.id)] = self.be_value(
                ip_int(b.address), b.port, b.proto, b.state
            )
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


def _changed(old: dict[bytes, bytes], new: dict[bytes, bytes]) -> tuple[tuple[bytes, bytes], ...]:
    """New or different entries, in ``new``'s (rendering) order."""
    if not old:
        return tuple(new.items())
    get = old.get
    return tuple((k, v) for k, v in new.items() if get(k) != v)


def _stale(old: dict[bytes, bytes], new: dict[bytes, bytes]) -> tuple[bytes, ...]:
    return tuple(k for k in old if k not in new)


def plan(old: Contents, new: Contents) -> list[Op]:
    """The writes that turn ``old`` into ``new``, in Cilium's order; empty ops are left out."""
    ops = [
        Op(BACKENDS, update=_changed(old.backends, new.backends), what="backends"),
        Op(REVNAT, update=_changed(old.revnat, new.revnat), what="reverse NAT"),
        Op(
            AFFINITY_MATCH, update=_changed(old.affinity_match, new.affinity_match), what="affinity"
        ),
        Op(SOURCE_RANGE, update=_changed(old.source_range, new.source_range), what="source ranges"),
        Op(SERVICES, update=_changed(old.slots, new.slots), what="backend slots"),
        Op(SERVICES, update=_changed(old.masters, new.masters), what="frontends (slot 0)"),
        Op(SERVICES, delete=_stale(old.masters, new.masters), what="stale frontends"),
        Op(SERVICES, delete=_stale(old.slots, new.slots), what="stale slots"),
        Op(SOURCE_RANGE, delete=_stale(old.source_range, new.source_range), what="stale ranges"),
        Op(
            AFFINITY_MATCH,
            delete=_stale(old.affinity_match, new.affinity_match),
            what="stale affinity",
        ),
        Op(REVNAT, delete=_stale(old.revnat, new.revnat), what="stale reverse NAT"),
        Op(BACKENDS, delete=_stale(old.backends, new.backends), what="stale backends"),
    ]
    return [op for op in ops if op.update or op.delete]


def split_services(entries: dict[bytes, bytes], layouts: dict[str, MapLayout]) -> Contents:
    """What a dump of the services map holds, as slot 0 entries and backend slots."""
    key = layouts[SERVICES].key
    slot = key.field("backend_slot")
    out = Contents()
    for k, v in entries.items():
        n = int.from_bytes(k[slot.offset : slot.offset + slot.size], HOST)
        (out.slots if n else out.masters)[k] = v
    return out
