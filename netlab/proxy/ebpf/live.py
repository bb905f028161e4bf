"""A live node's eBPF state, read back: its pinned maps decoded and shown as ``cilium-dbg``
shows them (:mod:`view`), or raw, as ``bpftool`` prints the maps and the attachments."""

from __future__ import annotations

import os
import time

from netlab.checks.observations import ConntrackEntry
from netlab.cluster.state import ClusterState, Node
from netlab.errors import LabError
from netlab.kernel import conntrack, process
from netlab.proxy.ebpf import datapath, entries, view
from netlab.proxy.ebpf import render as r
from netlab.proxy.servicemap import node_view


def decoded(pins: str) -> view.Decoded:
    """Every map of the node, decoded with the codecs from BTF."""
    if not os.path.exists(os.path.join(pins, entries.SERVICES)):
        raise LabError(f"no eBPF maps are pinned in {pins}", hint="is the lab up in ebpf mode?")
    lay = datapath.layouts()
    out = view.Decoded()
    with datapath.Maps(pins) as maps:

        def pairs(name: str) -> list[tuple[view.Entry, view.Entry]]:
            codec = lay[name]
            return [
                (codec.key.decode(k), codec.value.decode(v)) for k, v in maps.dump(name).items()
            ]

        out.services = pairs(entries.SERVICES)
        out.backends = {view.num(k, "value"): v for k, v in pairs(entries.BACKENDS)}
        out.revnat = {view.num(k, "value"): v for k, v in pairs(entries.REVNAT)}
        out.ct = pairs(entries.CT_TCP) + pairs(entries.CT_ANY)
        out.nat = pairs(entries.SNAT)
    return out


def names(state: ClusterState, node: Node) -> view.Names:
    """Who every address of the lab is, and which Service port every frontend serves."""
    out = view.Names()
    for ext_name, ext_ip in state.external.clients.items():
        out.addresses[ext_ip] = f"external/{ext_name}"
    out.addresses.setdefault(state.external.router_ip, "external")
    for n in state.nodes:
        out.addresses[n.ip] = f"node/{n.name}"
        out.addresses[n.gateway] = f"node/{n.name} (cni0)"
    for p in state.pods:
        if not p.host_network:
            out.addresses[p.ip] = f"pod/{p.namespace}/{p.name}"
    for ps in node_view(state, node.name):
        info = ps.info
        label = str(info.spn)
        proto = r.IPPROTO[info.spn.protocol]
        out.addresses.setdefault(info.cluster_ip, f"service/{info.spn.namespace}/{info.spn.name}")
        out.frontends[(info.cluster_ip, info.port, proto)] = label
        if info.node_port:
            out.frontends[("0.0.0.0", info.node_port, proto)] = label
            out.frontends[(node.ip, info.node_port, proto)] = label
        for ip in (*info.external_ips, *info.load_balancer_vips):
            out.frontends[(ip, info.port, proto)] = label
            out.addresses.setdefault(ip, f"service/{info.spn.namespace}/{info.spn.name}")
    out.addresses["169.254.42.1"] = "service loopback (hairpin)"
    return out


def _service_ids(
    d: view.Decoded, n: view.Names, service: tuple[str, str]
) -> tuple[set[int], set[str]]:
    """The service IDs of one Service's frontends, and its backends' addresses."""
    prefix = f"{service[0]}/{service[1]}"
    ids: set[int] = set()
    backends: set[str] = set()
    for key, (master, slots) in d.frontends().items():
        label = n.frontends.get((view.ip(key[0]), key[1], key[2]), "")
        if label != prefix and not label.startswith(prefix + ":"):
            continue
        ids.add(view.num(master, "rev_nat_index"))
        for backend_id in slots.values():
            be = d.backends.get(backend_id)
            if be is not None:
                backends.add(view.ip(be["address"]))
    return ids, backends


def cilium_view(
    state: ClusterState,
    node: Node,
    pins: str,
    service: tuple[str, str] | None = None,
    *,
    counters: bool = False,
) -> str:
    d = decoded(pins)
    n = names(state, node)
    ids: set[int] | None = None
    backends: set[str] | None = None
    if service is not None:
        ids, backends = _service_ids(d, n, service)
    now = int(time.monotonic())  # bpf_ktime_get_ns() is CLOCK_MONOTONIC
    parts = (
        ("cilium-dbg service list", view.service_list(d, n, ids)),
        ("cilium-dbg bpf lb list", view.lb_list(d, ids)),
        ("cilium-dbg bpf ct list global", view.ct_list(d, n, now, counters=counters, ids=ids)),
        ("cilium-dbg bpf nat list", view.nat_list(d, n, now, backends)),
    )
    return "".join(f"# {title}\n{body.rstrip() or '(no entries)'}\n" for title, body in parts)


def consulted(
    state: ClusterState,
    node: Node,
    pins: str,
    client: tuple[str, int],
    dialled: tuple[str, int],
    protocol: str,
) -> list[str]:
    """What one connection met in a node's maps, as ``cilium-dbg`` prints it: the dialled
    frontend's entries (slot 0 and the backend slots) and the conntrack and NAT entries of the
    client's address and port."""
    if not os.path.exists(os.path.join(pins, entries.SERVICES)):
        return []
    d = decoded(pins)
    n = names(state, node)
    proto = r.IPPROTO.get(protocol.upper(), 0)
    ids = {
        view.num(master, "rev_nat_index")
        for key, (master, _slots) in d.frontends().items()
        if (view.ip(key[0]), key[1], key[2]) == (dialled[0], dialled[1], proto)
    }

    def ours(k: view.Entry) -> bool:
        ends = {
            (view.ip(k["saddr"]), view.num(k, "sport")),
            (view.ip(k["daddr"]), view.num(k, "dport")),
        }
        return view.num(k, "nexthdr") == proto and client in ends

    mine = view.Decoded(
        services=d.services,
        backends=d.backends,
        revnat=d.revnat,
        ct=[kv for kv in d.ct if ours(kv[0])],
        nat=[kv for kv in d.nat if ours(kv[0])],
    )
    now = int(time.monotonic())
    out = []
    if ids:
        out += [
            f"{entries.SERVICES}: {ln.strip()}" for ln in view.lb_list(mine, ids).splitlines()[1:]
        ]
    out += [
        f"{entries.CT_TCP if proto == 6 else entries.CT_ANY}: {ln}"
        for ln in view.ct_list(mine, n, now).splitlines()
    ]
    out += [f"{entries.SNAT}: {ln}" for ln in view.nat_list(mine, n, now).splitlines()]
    return out


def raw(node: Node, pins: str, cgroup_dir: str) -> str:
    """``bpftool`` on the pinned maps, the node's tc attachments and its cgroup."""
    parts = []
    for name in entries.ALL_MAPS:
        path = os.path.join(pins, name)
        out = process.run(None, ["bpftool", "map", "dump", "pinned", path], check=False)
        parts.append((f"bpftool map dump pinned {path}", out.stdout or out.stderr))
    net = process.run(node.netns, ["bpftool", "net", "show"], check=False)
    parts.append((f"bpftool net show  (in {node.netns})", net.stdout or net.stderr))
    cg = process.run(None, ["bpftool", "cgroup", "show", cgroup_dir], check=False)
    parts.append((f"bpftool cgroup show {cgroup_dir}", cg.stdout or cg.stderr))
    return "".join(f"# {title}\n{body.rstrip()}\n" for title, body in parts)


def tracked(pins: str, netns_name: str, protocol: str, source_ip: str) -> list[ConntrackEntry]:
    """A client's connections as Cilium's conntrack holds them (the TUPLE_F_SERVICE entry:
    what the client sent to the frontend, and the backend chosen), joined with netfilter's
    for the connections Cilium did not translate."""
    lay = datapath.layouts()
    name = entries.CT_TCP if protocol == "TCP" else entries.CT_ANY
    with datapath.Maps(pins) as maps:
        ct = [
            (lay[name].key.decode(k), lay[name].value.decode(v)) for k, v in maps.dump(name).items()
        ]
        backends = {
            view.num(lay[entries.BACKENDS].key.decode(k), "value"): lay[
                entries.BACKENDS
            ].value.decode(v)
            for k, v in maps.dump(entries.BACKENDS).items()
        }
    out: dict[int, ConntrackEntry] = {}
    for k, v in ct:
        if not view.num(k, "flags") & view.TUPLE_F_SERVICE or view.ip(k["saddr"]) != source_ip:
            continue
        be = backends.get(view.num(v, "backend_id"))
        if be is None:
            continue
        sport = view.num(k, "sport")
        out[sport] = ConntrackEntry(
            protocol,
            (source_ip, view.ip(k["daddr"]), sport, view.num(k, "dport")),
            (view.ip(be["address"]), source_ip, view.num(be, "port"), sport),
        )
    for e in conntrack.entries(netns_name, protocol, source_ip):
        out.setdefault(e.original[2], e)
    return list(out.values())
