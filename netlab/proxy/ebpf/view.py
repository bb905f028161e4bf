"""A node's maps as a Cilium user sees them: pure rendering of decoded map entries.

- ``cilium-dbg service list``: ``ID  Frontend  Service Type  Backend``, one row per frontend
  and backend slot (``1 => 10.244.1.5:8080/TCP (active)``), here with the Kubernetes Service
  port and the backend's pod beside them;
- ``cilium-dbg bpf lb list``: ``SERVICE ADDRESS  BACKEND ADDRESS (REVNAT_ID) (SLOT)``, slot 0
  as ``0.0.0.0:0 (ID) (0) [flags]`` (the flags as Cilium's ``ServiceFlags.String`` words);
- ``cilium-dbg bpf ct list global`` and ``cilium-dbg bpf nat list``, with the addresses'
  owners (pods, nodes, Services) named.

The service-list words follow ``pkg/loadbalancer`` (v1.18): types ClusterIP, NodePort,
ExternalIPs, LoadBalancer; ``Local``, ``InternalLocal``, ``two-scopes``, ``sessionAffinity``,
``check source-range``, ``non-routable``; backend states active, terminating, quarantined,
maintenance; an internal-scope frontend printed with ``/i``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from netlab.proxy.ebpf import render as r

BACKEND_STATES = {0: "active", 1: "terminating", 2: "quarantined", 3: "maintenance"}
TCP_FLAGS = ((0x01, "FIN"), (0x02, "SYN"), (0x04, "RST"), (0x08, "PSH"), (0x10, "ACK"))
CT_FLAG_WORDS = (
    ("rx_closing", "RxClosing"),
    ("tx_closing", "TxClosing"),
    ("lb_loopback", "LBLoopback"),
    ("seen_non_syn", "SeenNonSyn"),
    ("node_port", "NodePort"),
    ("proxy_redirect", "ProxyRedirect"),
    ("dsr_internal", "DSR"),
    ("from_l7lb", "FromL7LB"),
    ("from_tunnel", "FromTunnel"),
)
TUPLE_F_IN = 1
TUPLE_F_RELATED = 2
TUPLE_F_SERVICE = 4

Entry = Mapping[str, int | bytes]
FrontendRows = dict[tuple[int, int, int, int], tuple[Entry, dict[int, int]]]


def ip(value: int | bytes) -> str:
    """A network-order address field as text."""
    if isinstance(value, bytes):
        return str(ipaddress.IPv4Address(value))
    return str(ipaddress.IPv4Address(value))


def addr(a: int | bytes, port: int | bytes, proto: int | bytes | None = None) -> str:
    text = f"{ip(a)}:{int(port) if isinstance(port, int) else 0}"
    if isinstance(proto, int) and proto in r.PROTO_NAME:
        text += f"/{r.PROTO_NAME[proto]}"
    return text


def num(entry: Entry, name: str) -> int:
    """An integer field of a decoded entry."""
    v = entry[name]
    return v if isinstance(v, int) else 0


def service_type(flags: int, flags2: int) -> str:
    if flags2 & r.SVC_FLAG_LOCALREDIRECT:
        return "LocalRedirect"
    if flags & r.SVC_FLAG_NODEPORT:
        return "NodePort"
    if flags & r.SVC_FLAG_EXTERNAL_IP:
        return "ExternalIPs"
    if flags & r.SVC_FLAG_LOADBALANCER:
        return "LoadBalancer"
    if flags & r.SVC_FLAG_HOSTPORT:
        return "HostPort"
    return "ClusterIP"


def flag_words(flags: int, flags2: int) -> str:
    """Cilium's ServiceFlags.String()."""
    words = [service_type(flags, flags2)]
    if flags & r.SVC_FLAG_EXT_LOCAL_SCOPE:
        words.append("Local")
    if flags2 & r.SVC_FLAG_INT_LOCAL_SCOPE:
        words.append("InternalLocal")
    if flags2 & r.SVC_FLAG_TWO_SCOPES:
        words.append("two-scopes")
    if flags & r.SVC_FLAG_AFFINITY:
        words.append("sessionAffinity")
    if flags & r.SVC_FLAG_SOURCE_RANGE:
        words.append("check source-range")
    if not flags & r.SVC_FLAG_ROUTABLE:
        words.append("non-routable")
    return ", ".join(words)


@dataclass
class Names:
    """Who owns an address or a frontend, for the annotations."""

    # "10.244.1.5" -> "pod/default/web-1"; (address, port, IP protocol) -> "default/web:http"
    addresses: dict[str, str] = field(default_factory=dict)
    frontends: dict[tuple[str, int, int], str] = field(default_factory=dict)

    def of(self, address: str) -> str:
        return self.addresses.get(address, "")


@dataclass
class Decoded:
    """The maps of one node, decoded with the BTF codecs."""

    services: list[tuple[Entry, Entry]] = field(default_factory=list)
    backends: dict[int, Entry] = field(default_factory=dict)
    revnat: dict[int, Entry] = field(default_factory=dict)
    ct: list[tuple[Entry, Entry]] = field(default_factory=list)
    nat: list[tuple[Entry, Entry]] = field(default_factory=list)

    def frontends(self) -> FrontendRows:
        """(address, port, proto, scope) -> (slot 0 value, {slot: backend ID})."""
        out: dict[tuple[int, int, int, int], tuple[Entry, dict[int, int]]] = {}
        slots: dict[tuple[int, int, int, int], dict[int, int]] = {}
        for k, v in self.services:
            fkey = (num(k, "address"), num(k, "dport"), num(k, "proto"), num(k, "scope"))
            slot = num(k, "backend_slot")
            if slot == 0:
                out[fkey] = (v, slots.setdefault(fkey, {}))
            else:
                slots.setdefault(fkey, {})[slot] = num(v, "backend_id")
        return out


def _frontend_text(key: tuple[int, int, int, int]) -> str:
    text = addr(key[0], key[1], key[2])
    return text + "/i" if key[3] == r.SCOPE_INT else text


def _rows(
    frontends: FrontendRows,
) -> list[tuple[tuple[int, int, int, int], tuple[Entry, dict[int, int]]]]:
    return sorted(frontends.items(), key=lambda kv: (num(kv[1][0], "rev_nat_index"), kv[0][3]))


def service_list(d: Decoded, names: Names, ids: set[int] | None = None) -> str:
    """``cilium-dbg service list``."""
    rows: list[list[str]] = [["ID", "Frontend", "Service Type", "Backend", ""]]
    for key, (master, slots) in _rows(d.frontends()):
        sid = num(master, "rev_nat_index")
        if ids is not None and sid not in ids:
            continue
        kind = service_type(num(master, "flags"), num(master, "flags2"))
        svc = names.frontends.get((ip(key[0]), key[1], key[2]), "")
        backends = []
        for slot in sorted(slots):
            be = d.backends.get(slots[slot])
            if be is None:
                backends.append((f"{slot} => (missing backend {slots[slot]})", ""))
                continue
            state = BACKEND_STATES.get(num(be, "flags"), "unknown")
            text = f"{slot} => {addr(be['address'], be['port'], be['proto'])} ({state})"
            backends.append((text, names.of(ip(be["address"]))))
        first = backends[0] if backends else ("", "")
        note = " -> ".join(x for x in (svc, first[1]) if x)
        rows.append([str(sid), _frontend_text(key), kind, first[0], _note(note)])
        rows += [["", "", "", text, _note(owner)] for text, owner in backends[1:]]
    return _table(rows)


def _note(text: str) -> str:
    """netlab's annotation beside Cilium's columns: who an address or frontend is."""
    return f"# {text}" if text else ""


def lb_list(d: Decoded, ids: set[int] | None = None) -> str:
    """``cilium-dbg bpf lb list``."""
    rows = [["SERVICE ADDRESS", "BACKEND ADDRESS (REVNAT_ID) (SLOT)"]]
    for key, (master, slots) in _rows(d.frontends()):
        sid = num(master, "rev_nat_index")
        if ids is not None and sid not in ids:
            continue
        words = flag_words(num(master, "flags"), num(master, "flags2"))
        rows.append([_frontend_text(key), f"0.0.0.0:0 ({sid}) (0) [{words}]"])
        for slot in sorted(slots):
            be = d.backends.get(slots[slot])
            shown = addr(be["address"], be["port"], be["proto"]) if be else "<missing>"
            rows.append(["", f"{shown} ({sid}) ({slot})"])
    return _table(rows)


def _tcp_flags(v: int) -> str:
    return f"{v:#04x}"


def ct_list(
    d: Decoded, names: Names, now: int, *, counters: bool = False, ids: set[int] | None = None
) -> str:
    """``cilium-dbg bpf ct list global``; ``counters`` adds each entry's packets and bytes."""
    lines = []
    for k, v in sorted(d.ct, key=lambda kv: (num(kv[0], "flags"), num(kv[0], "sport"))):
        rev = num(v, "rev_nat_index")
        if ids is not None and rev not in ids:
            continue
        proto = r.PROTO_NAME.get(num(k, "nexthdr"), str(num(k, "nexthdr")))
        flags = num(k, "flags")
        src, dst = ip(k["saddr"]), ip(k["daddr"])
        direction = "SVC" if flags & TUPLE_F_SERVICE else ("IN" if flags & TUPLE_F_IN else "OUT")
        text = f"{proto} {direction} {src}:{num(k, 'sport')} -> {dst}:{num(k, 'dport')} "
        if flags & TUPLE_F_RELATED:
            text += "related "
        lifetime = num(v, "lifetime")
        text += f"expires={lifetime} (remaining: {max(lifetime - now, 0)} sec(s))"
        if counters:
            text += f" Packets={num(v, 'packets')} Bytes={num(v, 'bytes')}"
        words = [w for name, w in CT_FLAG_WORDS if num(v, name)]
        text += (
            f" RxFlagsSeen={_tcp_flags(num(v, 'rx_flags_seen'))}"
            f" TxFlagsSeen={_tcp_flags(num(v, 'tx_flags_seen'))}"
            f" Flags=[ {' '.join(words)}{' ' if words else ''}] RevNAT={rev}"
            f" BackendID={num(v, 'backend_id')}"
        )
        who = " -> ".join(x for x in (names.of(src) or src, names.of(dst) or dst))
        lines.append(f"{text}  # {who}")
    return "\n".join(lines) + ("\n" if lines else "")


Endpoint = tuple[str, int]  # address, port


def service_connections(d: Decoded) -> list[tuple[str, Endpoint, Endpoint, Endpoint]]:
    """Cilium's load-balanced connections, one per ``TUPLE_F_SERVICE`` conntrack entry:
    (protocol, the client, the frontend it dialled, the backend the entry points at)."""
    out = []
    for k, v in d.ct:
        if not num(k, "flags") & TUPLE_F_SERVICE:
            continue
        be = d.backends.get(num(v, "backend_id"))
        if be is None:
            continue
        proto = r.PROTO_NAME.get(num(k, "nexthdr"), str(num(k, "nexthdr")))
        out.append(
            (
                proto,
                (ip(k["saddr"]), num(k, "sport")),
                (ip(k["daddr"]), num(k, "dport")),
                (ip(be["address"]), num(be, "port")),
            )
        )
    return sorted(out)


def nat_list(d: Decoded, names: Names, now: int, backends: set[str] | None = None) -> str:
    """``cilium-dbg bpf nat list``."""
    lines = []
    for k, v in sorted(d.nat, key=lambda kv: (num(kv[0], "flags"), num(kv[0], "sport"))):
        src, dst = ip(k["saddr"]), ip(k["daddr"])
        inbound = num(k, "flags") & TUPLE_F_IN
        if backends is not None and (src if inbound else dst) not in backends:
            continue
        proto = r.PROTO_NAME.get(num(k, "nexthdr"), str(num(k, "nexthdr")))
        to = addr(v["to_saddr"], v["to_sport"])
        kind = "IN" if inbound else "OUT"
        xlate = "XLATE_DST" if inbound else "XLATE_SRC"
        created = max(now - num(v, "common.created"), 0)
        text = (
            f"{proto} {kind} {src}:{num(k, 'sport')} -> {dst}:{num(k, 'dport')} "
            f"{xlate} {to} Created={created}sec ago NeedsCT={num(v, 'common.needs_ct')}"
        )
        who = " -> ".join(x for x in (names.of(src) or src, names.of(dst) or dst))
        lines.append(f"{text}  # {who}")
    return "\n".join(lines) + ("\n" if lines else "")


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        out.append("   ".join(cells).rstrip())
    return "\n".join(out) + "\n"
