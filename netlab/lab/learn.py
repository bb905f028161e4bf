"""Seeing how a live lab's Services work: explain a Service's rules on a node, its node's NATed
flows, and a picture of the cluster. (Tracing one connection is :mod:`netlab.lab.trace`.)

Each function gathers what the pure :mod:`netlab.explain` needs, from the lab's state (the same
structures the proxier rendered and applied) or from the kernel (conntrack), and returns data;
the CLI and the Python API print or use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from netlab.cluster.state import ClusterState, Node
from netlab.errors import UsageError
from netlab.explain.addresses import address_book
from netlab.explain.conntrack import Flow, FlowTable, Tuple, nat_table, parse_flows
from netlab.explain.rules import ebpf as ebpf_rules
from netlab.explain.rules import iptables as iptables_rules
from netlab.explain.rules import ipvs as ipvs_rules
from netlab.explain.rules import nftables as nftables_rules
from netlab.explain.rules import userspace as userspace_rules
from netlab.explain.rules.lang import LANGS, REASONS, TITLES, say
from netlab.explain.rules.model import Explanation, Item, Section
from netlab.kernel import conntrack
from netlab.lab.trace import Lab
from netlab.proxy.servicemap import SERVICE_PROXY_NAME_LABEL, node_view
from netlab.scenario.k8s import Service
from netlab.traffic.pcap import Tcpdump


def find_service(state: ClusterState, ref: str) -> Service:
    """``service/NS/NAME``, ``service/NAME`` (namespace default), ``NS/NAME`` or ``NAME``."""
    text = ref.removeprefix("service/")
    ns, _, name = text.rpartition("/")
    try:
        return state.service(ns or "default", name)
    except KeyError:
        names = ", ".join(f"{s.meta.namespace}/{s.meta.name}" for s in state.services)
        raise UsageError(f"no Service {ref}", hint=f"Services: {names}") from None


def _node(state: ClusterState, name: str | None) -> Node:
    if not name:
        return state.nodes[0]
    try:
        return state.node(name.removeprefix("node/"))
    except KeyError:
        nodes = ", ".join(n.name for n in state.nodes)
        raise UsageError(f"no node {name}", hint=f"nodes: {nodes}") from None


def _not_proxied(service: Service) -> str:
    if service.type == "ExternalName":
        return "externalname"
    if service.headless or not service.cluster_ip:
        return "headless"
    if SERVICE_PROXY_NAME_LABEL in service.meta.labels:
        return "other-proxy"
    return ""


def explain(lab: Lab, service: str, node: str | None = None, lang: str = "en") -> Explanation:
    """The Service's state on ``node`` (default: the first node) as its mode's renderer built
    it, each rule or object with one line on what it does and why."""
    if lang not in LANGS:
        raise UsageError(f"unknown language {lang!r}", hint=f"languages: {', '.join(LANGS)}")
    state = lab.state
    svc = find_service(state, service)
    n = _node(state, node)
    ns, name, mode = svc.meta.namespace, svc.meta.name, lab.record.mode
    reason = _not_proxied(svc)
    if reason:
        key = f"{ns}/{name}"
        exp = Explanation(
            key, n.name, mode, lang, say(lang, TITLES["title"], service=key, node=n.name, mode=mode)
        )
        text = say(lang, TITLES["none"], reason=say(lang, REASONS[reason]))
        exp.sections = [
            Section(say(lang, TITLES["service"]), [Item(f"{svc.type}", f"{key}", text)])
        ]
        return exp
    proxier = lab.proxier
    view = node_view(state, n.name)
    if mode == "iptables":
        from netlab.proxy.iptables.proxier import IptablesProxier
        from netlab.proxy.iptables.render import render

        assert isinstance(proxier, IptablesProxier)
        return iptables_rules.explain(render(view, proxier.options(n)), ns, name, n.name, lang)
    if mode == "nftables":
        from netlab.proxy.nftables.proxier import NftablesProxier
        from netlab.proxy.nftables.render import build

        assert isinstance(proxier, NftablesProxier)
        ruleset = build(view, proxier.options(n), proxier.layout)
        return nftables_rules.explain(ruleset, ns, name, n.name, lang)
    if mode == "ipvs":
        from netlab.proxy.ipvs.proxier import IpvsProxier

        assert isinstance(proxier, IpvsProxier)
        return ipvs_rules.explain(proxier.ruleset(n, view), ns, name, n.name, lang)
    if mode == "userspace":
        from netlab.proxy.userspace.render import portals

        return userspace_rules.explain(portals(view), n.ip, ns, name, n.name, lang)
    if mode == "ebpf":
        from netlab.proxy.ebpf.proxier import EbpfProxier

        assert isinstance(proxier, EbpfProxier)
        book = address_book(state)
        return ebpf_rules.explain(proxier.rendered(n), book.hosts, ns, name, n.name, lang)
    raise UsageError(f"netlab explain does not know the {mode} mode yet")


def service_addresses(state: ClusterState, svc: Service) -> set[tuple[str, int]]:
    """Every (address, port) a client may dial the Service at: ClusterIP, external and LB IPs,
    and each node's NodePorts (on its own address and cni0's)."""
    out: set[tuple[str, int]] = set()
    vips = [a for a in (svc.cluster_ip,) if a and a != "None"]
    vips += list(svc.external_ips) + list(svc.load_balancer_ingress)
    for p in svc.ports:
        out |= {(a, p.port) for a in vips}
        if p.node_port:
            for node in state.nodes:
                out |= {(node.ip, p.node_port), (node.gateway, p.node_port)}
            out.add(("127.0.0.1", p.node_port))
    return out


def conntrack_view(lab: Lab, node: str, service: str | None = None) -> FlowTable:
    """The node's NATed flows (optionally only those dialled at one Service), named."""
    state = lab.state
    n = _node(state, node)
    wanted = service_addresses(state, find_service(state, service)) if service else None
    flows = parse_flows(conntrack.listing(n.netns))
    if isinstance(lab.proxier, BalancesInMaps):
        # ebpf: the DNAT happens before netfilter sees the packet; Cilium's own conntrack
        # map holds the translation.
        for proto, client, frontend, backend in lab.proxier.lb_connections(n):
            where = "[cilium_ct4_global]" if proto == "TCP" else "[cilium_ct_any4_global]"
            flows.append(
                Flow(
                    proto.lower(),
                    Tuple(client[0], frontend[0], client[1], frontend[1]),
                    Tuple(backend[0], client[0], backend[1], client[1]),
                    state=where,
                )
            )
    return nat_table(n.name, flows, address_book(state), wanted)


@runtime_checkable
class BalancesInMaps(Protocol):
    """A proxier whose translations live in its own maps, not in netfilter's conntrack."""

    def lb_connections(
        self, node: Node
    ) -> list[tuple[str, tuple[str, int], tuple[str, int], tuple[str, int]]]: ...


def default_interface(target: str) -> str:
    """A pod has one interface worth watching (eth0); a node, the fabric and the outside world
    several, so all of them (``any``)."""
    return "eth0" if target.startswith("pod/") else "any"


def capture(
    lab: Lab,
    netns_name: str,
    iface: str,
    *,
    path: str | None = None,
    bpf: str = "",
    count: int | None = None,
    seconds: float | None = None,
    on_ready: Callable[[], None] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> int:
    """Capture in ``netns_name`` until ``count`` packets, ``seconds``, or Ctrl-C; to the pcap
    ``path``, or decoded lines to ``on_line``. Returns how many packets were captured."""
    dump = Tcpdump(lab.name, netns_name, iface, path, bpf, count)
    try:
        if on_ready:
            on_ready()
        if path is None and on_line is not None:
            dump.lines(on_line, seconds)
        else:
            dump.wait(seconds)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a capture is ended
    finally:
        captured = dump.stop()
    return captured
