"""IPVS mode: render what kube-proxy would program on one node (pure data and text).

This follows kubernetes/kubernetes ``pkg/proxy/ipvs/proxier.go`` (v1.33): ``syncProxyRules``,
``writeIptablesRules``, ``acceptIPVSTraffic`` and ``createAndLinkKubeChain``: the same virtual
servers (scheduler ``rr``, real servers of weight 1, ClientIP affinity as a persistent service),
the same addresses on the ``kube-ipvs0`` dummy device, the same ipsets filled with the same entry
strings, and the same companion iptables rules in the order upstream writes them. So ``ipvsadm
-Ln``, ``ipset list`` and ``iptables-save`` in a lab node read like they do on a real IPVS node.

This module walks the Service ports (syncProxyRules' loop) and decides what the node holds; the
parts live beside it: the ipsets in :mod:`netlab.proxy.ipvs.ipset`, the companion iptables rules
in :mod:`netlab.proxy.ipvs.iptables_rules`, and the virtual and real servers, with their
reconciliation against the kernel's table, in :mod:`netlab.proxy.ipvs.servers`. The names
callers use from those are importable from here as well (``__all__``).

Deliberate differences, each for a reason:

* Upstream installs the jumps from built-in chains with separate ``iptables -I`` calls; here they
  are ``-I <chain> 1`` lines in the first sync's ``iptables-restore``, as netlab's iptables mode
  does, so every sync stays one iptables transaction.
* Upstream syncs ipset entries with one ``ipset add``/``del`` process per changed entry; here a
  sync is one ``ipset restore`` (see :meth:`IpvsRuleSet.ipset_restore_text`).
* netlab is IPv4-only: IPv6 addresses and endpoints are skipped, as upstream's IPv4 proxier skips
  the other family. ``--nodeport-addresses`` is not modelled: the NodePort addresses are
  ``IpvsOptions.node_ips`` (upstream's default: every local address except kube-ipvs0's).

Everything here is plain data; :mod:`netlab.proxy.ipvs.proxier` applies it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from netlab.proxy.ipvs import iptables_rules
from netlab.proxy.ipvs.ipset import (
    CLUSTER_IP,
    EXTERNAL_IP,
    EXTERNAL_IP_LOCAL,
    HEALTH_CHECK_NODE_PORT,
    IPSET_INFO,
    IPVS_IPS,
    LOAD_BALANCER,
    LOAD_BALANCER_FW,
    LOAD_BALANCER_LOCAL,
    LOAD_BALANCER_SOURCE_CIDR,
    LOAD_BALANCER_SOURCE_IP,
    LOOP_BACK,
    NODE_PORT_LOCAL_SCTP,
    NODE_PORT_LOCAL_TCP,
    NODE_PORT_LOCAL_UDP,
    NODE_PORT_SCTP,
    NODE_PORT_TCP,
    NODE_PORT_UDP,
    IpSet,
    canonical_entry,
    parse_ipset_save,
    restore_text,
)
from netlab.proxy.ipvs.servers import (
    DEFAULT_SCHEDULER,
    FLAG_HASHED,
    FLAG_PERSISTENT,
    FLAG_SOURCE_HASH,
    IpvsOp,
    RealServer,
    VirtualServer,
    filter_ipvsadm_list,
    ipvsadm_dest_line,
    ipvsadm_service_line,
    reconcile,
)
from netlab.proxy.servicemap import Categorized, EndpointInfo, ProxiedService, categorize

__all__ = [
    "CLUSTER_IP",
    "DEFAULT_SCHEDULER",
    "DUMMY_DEVICE",
    "EXTERNAL_IP",
    "EXTERNAL_IP_LOCAL",
    "FLAG_HASHED",
    "FLAG_PERSISTENT",
    "FLAG_SOURCE_HASH",
    "HEALTH_CHECK_NODE_PORT",
    "IPVS_IPS",
    "LOAD_BALANCER",
    "LOAD_BALANCER_FW",
    "LOAD_BALANCER_LOCAL",
    "LOAD_BALANCER_SOURCE_CIDR",
    "LOAD_BALANCER_SOURCE_IP",
    "LOOP_BACK",
    "NODE_PORT_LOCAL_SCTP",
    "NODE_PORT_LOCAL_TCP",
    "NODE_PORT_LOCAL_UDP",
    "NODE_PORT_SCTP",
    "NODE_PORT_TCP",
    "NODE_PORT_UDP",
    "IpSet",
    "IpvsOp",
    "IpvsOptions",
    "IpvsRuleSet",
    "IpvsShare",
    "RealServer",
    "VirtualServer",
    "assemble",
    "bind_changes",
    "canonical_entry",
    "companion_rules",
    "endpoints_for",
    "entry_key",
    "filter_ipvsadm_list",
    "ipvs_sysctls",
    "ipvsadm_restore_text",
    "parse_ipset_save",
    "reconcile",
    "render",
    "render_service",
]

DUMMY_DEVICE = "kube-ipvs0"  # defaultDummyDevice

# Kernels on which NewProxier sets conn_reuse_mode=0 (utilkernel: >= 4.1 and < 5.9).
CONN_REUSE_MIN_KERNEL = (4, 1)
CONN_REUSE_FIXED_KERNEL = (5, 9)


def ipvs_sysctls(kernel_release: str) -> dict[str, str]:
    """The sysctls NewProxier ensures (without --ipvs-strict-arp).

    ``conn_reuse_mode=0`` is set only on kernels from 4.1 up to (not including) 5.9: there the
    default made a connection that reused a source port of an old one wait about a second.
    5.9 fixed that in the kernel, so newer kernels are left as they are (kubernetes#93297).
    """
    out = {
        "net.ipv4.vs.conntrack": "1",
        "net.ipv4.vs.expire_nodest_conn": "1",
        "net.ipv4.vs.expire_quiescent_template": "1",
        "net.ipv4.ip_forward": "1",
    }
    version = _kernel_version(kernel_release)
    if CONN_REUSE_MIN_KERNEL <= version < CONN_REUSE_FIXED_KERNEL:
        out["net.ipv4.vs.conn_reuse_mode"] = "0"
    return out


def _kernel_version(release: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


@dataclass(frozen=True)
class IpvsOptions:
    node_ip: str  # the node's primary IP: loadBalancerSourceRanges "allow from node" check
    cluster_cidr: str  # the local-traffic detector: DetectLocalByCIDR
    # Addresses that get NodePort virtual servers, and that externalIPs/LB IPs are not bound
    # over: upstream's "every local address except those on kube-ipvs0" (loopback excluded).
    node_ips: tuple[str, ...] = ()
    masquerade_all: bool = False
    masquerade_bit: int = 14
    random_fully: bool = True
    scheduler: str = DEFAULT_SCHEDULER

    @property
    def masquerade_mark(self) -> str:
        """Go's ``fmt.Sprintf("%#08x", 1<<bit)``, as in iptables mode: ``0x00004000``."""
        return f"0x{1 << self.masquerade_bit:08x}"


@dataclass(frozen=True)
class IpvsRuleSet:
    addresses: tuple[str, ...]  # bound to kube-ipvs0
    virtual_servers: tuple[VirtualServer, ...]
    ipsets: tuple[IpSet, ...]
    nat_chains: tuple[str, ...]
    nat_rules: tuple[str, ...]
    filter_chains: tuple[str, ...]
    filter_rules: tuple[str, ...]
    bootstrap: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def ipset(self, name: str) -> IpSet:
        for s in self.ipsets:
            if s.name == name:
                return s
        raise KeyError(name)

    def iptables_restore_text(self, *, bootstrap: bool) -> str:
        """The ``iptables-restore --noflush`` input, nat then filter as upstream writes it.

        With ``bootstrap`` (a node's first sync) the jumps from the built-in chains are included
        as ``-I CHAIN 1`` lines; later syncs leave them alone, as EnsureRule finds them present.
        """
        out = ["*nat", *self.nat_chains]
        if bootstrap:
            out += self.bootstrap.get("nat", ())
        out += [*self.nat_rules, "COMMIT", "*filter", *self.filter_chains]
        if bootstrap:
            out += self.bootstrap.get("filter", ())
        out += [*self.filter_rules, "COMMIT"]
        return "\n".join(out) + "\n"

    def ipset_restore_text(self, existing: Mapping[str, Iterable[str]] | None = None) -> str:
        """The ``ipset restore`` input for every set (see :func:`.ipset.restore_text`)."""
        return restore_text(self.ipsets, existing)


def _ipv4(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 4
    except ValueError:
        return False


def _contains(cidr: str, ip: str) -> bool:
    try:
        return ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(cidr, strict=False)
    except ValueError:
        return False


def endpoints_for(cat: Categorized, only_local: bool) -> tuple[EndpointInfo, ...]:
    """syncEndpoint's choice of real servers.

    With a Local policy the node's own endpoints are used; if it has none, the cluster's are
    (kubernetes#97081: so pods on this node can still reach the Service; outside traffic
    routed here is answered by a remote pod and its reply is dropped).
    """
    if only_local:
        return cat.local if cat.local else cat.cluster
    return cat.cluster


@dataclass(frozen=True)
class IpvsShare:
    """One Service port's share of a node's IPVS state: what the body of syncProxyRules' loop
    "Build IPVS rules for each service" adds for it."""

    entries: tuple[tuple[str, str], ...]  # (ipset, entry)
    virtual_servers: tuple[VirtualServer, ...]  # the first per key, in the order added
    bind: tuple[str, ...]  # addresses for kube-ipvs0
    lb_no_node_access: tuple[tuple[str, str, int], ...]  # (lb ip, proto, port)


class _Builder:
    """What syncProxyRules accumulates while it walks one Service port."""

    def __init__(self, opts: IpvsOptions) -> None:
        self.opts = opts
        self.entries: dict[tuple[str, str], None] = {}
        self.virtual_servers: dict[tuple[str, str, int], VirtualServer] = {}
        self.bind: dict[str, None] = {}
        self.lb_no_node_access: list[tuple[str, str, int]] = []

    def entry(self, ipset: str, entry: str) -> None:
        self.entries[(ipset, entry)] = None

    def bind_address(self, ip: str) -> None:
        """The address goes on kube-ipvs0."""
        self.bind[ip] = None

    def add_vs(
        self,
        address: str,
        port: int,
        info_protocol: str,
        affinity: tuple[bool, int],
        endpoints: tuple[EndpointInfo, ...],
        service: str,
    ) -> None:
        flags = timeout = 0
        if affinity[0]:
            flags, timeout = FLAG_PERSISTENT, affinity[1]
        if self.opts.scheduler == "mh":
            flags |= FLAG_SOURCE_HASH
        vs = VirtualServer(
            address=address,
            port=port,
            protocol=info_protocol,
            scheduler=self.opts.scheduler,
            flags=flags,
            timeout=timeout,
            real_servers=tuple(RealServer(e.ip, e.port) for e in endpoints),
            service=service,
        )
        # The kernel holds one service per key; a second Service port on it would fight over
        # its real servers every sync. Keep the first, as a stable order makes it deterministic.
        self.virtual_servers.setdefault(vs.key, vs)

    def share(self) -> IpvsShare:
        return IpvsShare(
            tuple(self.entries),
            tuple(self.virtual_servers.values()),
            tuple(self.bind),
            tuple(self.lb_no_node_access),
        )


def render(services: list[ProxiedService], opts: IpvsOptions) -> IpvsRuleSet:
    """syncProxyRules for one node (a full sync): virtual servers, addresses, ipsets, rules."""
    return assemble([render_service(svc, opts) for svc in services], opts)


def render_service(svc: ProxiedService, opts: IpvsOptions) -> IpvsShare:
    """One Service port's share."""
    b = _Builder(opts)
    _render_service(b, svc, tuple(ip for ip in opts.node_ips if _ipv4(ip)))
    return b.share()


def assemble(shares: Iterable[IpvsShare], opts: IpvsOptions) -> IpvsRuleSet:
    """The node's whole state from its Service ports' shares, in view order: the first share
    claiming a virtual server's key has it."""
    entries: dict[str, set[str]] = {name: set() for name, _, _ in IPSET_INFO}
    virtual_servers: dict[tuple[str, str, int], VirtualServer] = {}
    bind: set[str] = set()
    lb_no_node_access: list[tuple[str, str, int]] = []
    for share in shares:
        for name, entry in share.entries:
            entries[name].add(entry)
        for vs in share.virtual_servers:
            virtual_servers.setdefault(vs.key, vs)
        bind.update(share.bind)
        lb_no_node_access += share.lb_no_node_access
    entries[IPVS_IPS] = set(bind)
    ipsets = tuple(
        IpSet(name, kind, comment, tuple(sorted(entries[name], key=entry_key)))
        for name, kind, comment in IPSET_INFO
    )
    nat_rules, filter_rules = companion_rules(
        {s.name: not s.is_empty() for s in ipsets}, lb_no_node_access, opts
    )
    return IpvsRuleSet(
        addresses=tuple(sorted(bind, key=entry_key)),
        virtual_servers=tuple(virtual_servers.values()),
        ipsets=ipsets,
        nat_chains=iptables_rules.chain_lines("nat"),
        nat_rules=tuple(nat_rules),
        filter_chains=iptables_rules.chain_lines("filter"),
        filter_rules=tuple(filter_rules),
        bootstrap=iptables_rules.bootstrap(),
    )


def companion_rules(
    filled: Mapping[str, bool],
    lb_no_node_access: Sequence[tuple[str, str, int]],
    opts: IpvsOptions,
) -> tuple[list[str], list[str]]:
    """writeIptablesRules for sets that are ``filled`` (name -> holds anything) or not."""
    return iptables_rules.write_iptables_rules(
        {
            name: IpSet(name, kind, comment, ("",) if filled.get(name) else ())
            for name, kind, comment in IPSET_INFO
        },
        lb_no_node_access,
        masquerade_all=opts.masquerade_all,
        cluster_cidr=opts.cluster_cidr,
        masquerade_mark=opts.masquerade_mark,
        random_fully=opts.random_fully,
    )


def entry_key(entry: str) -> tuple[tuple[int, ...], str]:
    """Sort entries by their leading address/port numerically, then as text (stable output)."""
    lead = re.split(r"[,/]", entry, maxsplit=1)[0]
    try:
        return (tuple(int(x) for x in lead.split(".")), entry)
    except ValueError:
        return ((), entry)


def _render_service(b: _Builder, svc: ProxiedService, node_ips: tuple[str, ...]) -> None:
    """syncProxyRules: the body of the loop "Build IPVS rules for each service"."""
    info = svc.info
    if not _ipv4(info.cluster_ip):
        return
    spn = str(info.spn)
    proto = info.protocol  # lower case: tcp | udp | sctp
    proto_upper = info.spn.protocol.upper()
    port = info.port
    endpoints = tuple(e for e in svc.endpoints if _ipv4(e.ip))
    affinity = (info.session_affinity_client_ip, info.sticky_max_age_seconds)

    # Handle traffic that loops back to the originator with SNAT: every local endpoint
    # (whatever its state) may reach itself through the Service.
    for e in endpoints:
        if e.is_local:
            b.entry(LOOP_BACK, f"{e.ip},{proto}:{e.port},{e.ip}")

    cat = categorize(info, endpoints, node=svc.node, zone=svc.zone)
    internal = endpoints_for(cat, info.internal_policy_local)
    external = endpoints_for(cat, info.external_policy_local)

    # Capture the clusterIP: always bound to kube-ipvs0, iTP decides its real servers.
    b.entry(CLUSTER_IP, f"{info.cluster_ip},{proto}:{port}")
    b.add_vs(info.cluster_ip, port, proto_upper, affinity, internal, spn)
    b.bind_address(info.cluster_ip)

    # Capture externalIPs.
    for ext_ip in info.external_ips:
        if not _ipv4(ext_ip):
            continue
        entry = f"{ext_ip},{proto}:{port}"
        b.entry(EXTERNAL_IP_LOCAL if info.external_policy_local else EXTERNAL_IP, entry)
        b.add_vs(ext_ip, port, proto_upper, affinity, external, spn)
        # Never bind an address the node already has on another interface.
        if ext_ip not in node_ips:
            b.bind_address(ext_ip)

    # Capture load-balancer ingress.
    for lb_ip in info.load_balancer_vips:
        if not _ipv4(lb_ip):
            continue
        entry = f"{lb_ip},{proto}:{port}"
        b.entry(LOAD_BALANCER, entry)
        if info.external_policy_local:
            b.entry(LOAD_BALANCER_LOCAL, entry)
        if info.load_balancer_source_ranges:
            b.entry(LOAD_BALANCER_FW, entry)
            allow_from_node = False
            for cidr in info.load_balancer_source_ranges:
                net = str(ipaddress.ip_network(cidr, strict=False))
                b.entry(LOAD_BALANCER_SOURCE_CIDR, f"{lb_ip},{proto}:{port},{net}")
                allow_from_node = allow_from_node or _contains(cidr, b.opts.node_ip)
            if allow_from_node:
                # Traffic to the LB IP from the node itself arrives with the LB IP as source.
                b.entry(LOAD_BALANCER_SOURCE_IP, f"{lb_ip},{proto}:{port},{lb_ip}")
            else:
                # kubernetes#119656: the node is not allowed, so block it in OUTPUT.
                b.lb_no_node_access.append((lb_ip, proto, port))
        b.add_vs(lb_ip, port, proto_upper, affinity, external, spn)
        if lb_ip not in node_ips:
            b.bind_address(lb_ip)

    # Capture NodePort.
    if info.node_port:
        if not node_ips:
            # Upstream skips the NodePort (and, by its `continue`, the health check port).
            return
        if proto == "sctp":
            entries = [f"{ip},sctp:{info.node_port}" for ip in node_ips]
            for entry in entries:
                b.entry(NODE_PORT_SCTP, entry)
            if info.external_policy_local:
                for entry in entries:
                    b.entry(NODE_PORT_LOCAL_SCTP, entry)
        else:
            masq, local = (
                (NODE_PORT_TCP, NODE_PORT_LOCAL_TCP)
                if proto == "tcp"
                else (NODE_PORT_UDP, NODE_PORT_LOCAL_UDP)
            )
            b.entry(masq, str(info.node_port))
            if info.external_policy_local:
                b.entry(local, str(info.node_port))
        # One virtual server per node address; these are never bound to kube-ipvs0.
        for ip in node_ips:
            b.add_vs(ip, info.node_port, proto_upper, affinity, external, spn)

    # Capture healthCheckNodePort: only eTP=Local Services have one (NeedsHealthCheck).
    if info.health_check_node_port and info.external_policy_local:
        b.entry(HEALTH_CHECK_NODE_PORT, str(info.health_check_node_port))


def ipvsadm_restore_text(ruleset: IpvsRuleSet) -> str:
    """The ``ipvsadm --restore`` input for the whole table (what ``ipvsadm -S -n`` would print)."""
    out: list[str] = []
    for vs in ruleset.virtual_servers:
        out.append(ipvsadm_service_line(vs))
        out += [ipvsadm_dest_line(vs, rs) for rs in vs.real_servers]
    return "\n".join(out) + ("\n" if out else "")


def bind_changes(current: Iterable[str], desired: Iterable[str]) -> tuple[list[str], list[str]]:
    """Addresses to add to and remove from kube-ipvs0: (missing, superfluous)."""
    have, want = set(current), set(desired)
    return sorted(want - have, key=entry_key), sorted(have - want, key=entry_key)
