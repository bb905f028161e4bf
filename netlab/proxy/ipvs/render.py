"""IPVS mode: render what kube-proxy would program on one node (pure data and text).

This follows ``pkg/proxy/ipvs/proxier.go`` ``syncProxyRules`` and ``writeIptablesRules`` (and
``ipset.go``) as of Kubernetes 1.31-1.33: the same virtual servers (scheduler ``rr``, real
servers of weight 1, ClientIP affinity as a persistent service), the same addresses on the
``kube-ipvs0`` dummy device, the same ipsets filled with the same entry strings, and the same
companion iptables rules in the order upstream writes them. So ``ipvsadm -Ln``, ``ipset list``
and ``iptables-save`` in a lab node read like they do on a real IPVS node.

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

from netlab.proxy.servicemap import Categorized, EndpointInfo, ProxiedService, categorize

DUMMY_DEVICE = "kube-ipvs0"  # defaultDummyDevice
DEFAULT_SCHEDULER = "rr"  # defaultScheduler

# utilipvs flags (pkg/proxy/ipvs/util/ipvs.go); the kernel adds HASHED to every service it lists.
FLAG_PERSISTENT = 0x1
FLAG_HASHED = 0x2
FLAG_SOURCE_HASH = 0x10  # set for the "mh" scheduler

# Chains (proxier.go constants).
KUBE_SERVICES = "KUBE-SERVICES"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_SOURCE_RANGES_FIREWALL = "KUBE-SOURCE-RANGES-FIREWALL"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_NODE_PORT = "KUBE-NODE-PORT"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_LOAD_BALANCER = "KUBE-LOAD-BALANCER"
KUBE_IPVS_FILTER = "KUBE-IPVS-FILTER"
KUBE_IPVS_OUT_FILTER = "KUBE-IPVS-OUT-FILTER"

# iptablesChains, in upstream order: (table, chain).
IPTABLES_CHAINS: tuple[tuple[str, str], ...] = (
    ("nat", KUBE_SERVICES),
    ("nat", KUBE_POSTROUTING),
    ("nat", KUBE_NODE_PORT),
    ("nat", KUBE_LOAD_BALANCER),
    ("nat", KUBE_MARK_MASQ),
    ("filter", KUBE_FORWARD),
    ("filter", KUBE_NODE_PORT),
    ("filter", KUBE_PROXY_FIREWALL),
    ("filter", KUBE_SOURCE_RANGES_FIREWALL),
    ("filter", KUBE_IPVS_FILTER),
    ("filter", KUBE_IPVS_OUT_FILTER),
)

# iptablesJumpChain, in upstream order: (table, built-in chain, kube chain, comment).
JUMP_CHAINS: tuple[tuple[str, str, str, str], ...] = (
    ("nat", "OUTPUT", KUBE_SERVICES, "kubernetes service portals"),
    ("nat", "PREROUTING", KUBE_SERVICES, "kubernetes service portals"),
    ("nat", "POSTROUTING", KUBE_POSTROUTING, "kubernetes postrouting rules"),
    ("filter", "FORWARD", KUBE_FORWARD, "kubernetes forwarding rules"),
    ("filter", "INPUT", KUBE_NODE_PORT, "kubernetes health check rules"),
    ("filter", "INPUT", KUBE_PROXY_FIREWALL, "kube-proxy firewall rules"),
    ("filter", "FORWARD", KUBE_PROXY_FIREWALL, "kube-proxy firewall rules"),
    ("filter", "INPUT", KUBE_IPVS_FILTER, "kubernetes ipvs access filter"),
    ("filter", "OUTPUT", KUBE_IPVS_OUT_FILTER, "kubernetes ipvs access filter"),
)

# ipset names (ipset.go). IPv6 would prefix "KUBE-6-"; netlab is IPv4-only.
LOOP_BACK = "KUBE-LOOP-BACK"
CLUSTER_IP = "KUBE-CLUSTER-IP"
EXTERNAL_IP = "KUBE-EXTERNAL-IP"
EXTERNAL_IP_LOCAL = "KUBE-EXTERNAL-IP-LOCAL"
LOAD_BALANCER = "KUBE-LOAD-BALANCER"
LOAD_BALANCER_FW = "KUBE-LOAD-BALANCER-FW"
LOAD_BALANCER_LOCAL = "KUBE-LOAD-BALANCER-LOCAL"
LOAD_BALANCER_SOURCE_IP = "KUBE-LOAD-BALANCER-SOURCE-IP"
LOAD_BALANCER_SOURCE_CIDR = "KUBE-LOAD-BALANCER-SOURCE-CIDR"
NODE_PORT_TCP = "KUBE-NODE-PORT-TCP"
NODE_PORT_LOCAL_TCP = "KUBE-NODE-PORT-LOCAL-TCP"
NODE_PORT_UDP = "KUBE-NODE-PORT-UDP"
NODE_PORT_LOCAL_UDP = "KUBE-NODE-PORT-LOCAL-UDP"
NODE_PORT_SCTP = "KUBE-NODE-PORT-SCTP-HASH"
NODE_PORT_LOCAL_SCTP = "KUBE-NODE-PORT-LOCAL-SCTP-HASH"
HEALTH_CHECK_NODE_PORT = "KUBE-HEALTH-CHECK-NODE-PORT"
IPVS_IPS = "KUBE-IPVS-IPS"

HASH_IP = "hash:ip"
HASH_IP_PORT = "hash:ip,port"
HASH_IP_PORT_IP = "hash:ip,port,ip"
HASH_IP_PORT_NET = "hash:ip,port,net"
BITMAP_PORT = "bitmap:port"

# ipsetInfo, in upstream order: (name, type, comment).
IPSET_INFO: tuple[tuple[str, str, str], ...] = (
    (
        LOOP_BACK,
        HASH_IP_PORT_IP,
        "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose",
    ),
    (CLUSTER_IP, HASH_IP_PORT, "Kubernetes service cluster ip + port for masquerade purpose"),
    (
        EXTERNAL_IP,
        HASH_IP_PORT,
        "Kubernetes service external ip + port for masquerade and filter purpose",
    ),
    (
        EXTERNAL_IP_LOCAL,
        HASH_IP_PORT,
        "Kubernetes service external ip + port with externalTrafficPolicy=local",
    ),
    (LOAD_BALANCER, HASH_IP_PORT, "Kubernetes service lb portal"),
    (
        LOAD_BALANCER_FW,
        HASH_IP_PORT,
        "Kubernetes service load balancer ip + port for load balancer with sourceRange",
    ),
    (
        LOAD_BALANCER_LOCAL,
        HASH_IP_PORT,
        "Kubernetes service load balancer ip + port with externalTrafficPolicy=local",
    ),
    (
        LOAD_BALANCER_SOURCE_IP,
        HASH_IP_PORT_IP,
        "Kubernetes service load balancer ip + port + source IP for packet filter purpose",
    ),
    (
        LOAD_BALANCER_SOURCE_CIDR,
        HASH_IP_PORT_NET,
        "Kubernetes service load balancer ip + port + source cidr for packet filter purpose",
    ),
    (NODE_PORT_TCP, BITMAP_PORT, "Kubernetes nodeport TCP port for masquerade purpose"),
    (
        NODE_PORT_LOCAL_TCP,
        BITMAP_PORT,
        "Kubernetes nodeport TCP port with externalTrafficPolicy=local",
    ),
    (NODE_PORT_UDP, BITMAP_PORT, "Kubernetes nodeport UDP port for masquerade purpose"),
    (
        NODE_PORT_LOCAL_UDP,
        BITMAP_PORT,
        "Kubernetes nodeport UDP port with externalTrafficPolicy=local",
    ),
    (
        NODE_PORT_SCTP,
        HASH_IP_PORT,
        "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'",
    ),
    (
        NODE_PORT_LOCAL_SCTP,
        HASH_IP_PORT,
        "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'",
    ),
    (HEALTH_CHECK_NODE_PORT, BITMAP_PORT, "Kubernetes health check node port"),
    (IPVS_IPS, HASH_IP, "Addresses on the ipvs interface"),
)
IPSET_TYPES = {name: kind for name, kind, _ in IPSET_INFO}
IPSET_COMMENTS = {name: comment for name, _, comment in IPSET_INFO}

# ipsetWithIptablesChain, in upstream order: (set, table, from chain, target, match, -p protocol).
# The NodePort "LOCAL" sets must come before their masquerade sets (RETURN first).
IPSET_WITH_IPTABLES_CHAIN: tuple[tuple[str, str, str, str, str, str], ...] = (
    (LOOP_BACK, "nat", KUBE_POSTROUTING, "MASQUERADE", "dst,dst,src", ""),
    (LOAD_BALANCER, "nat", KUBE_SERVICES, KUBE_LOAD_BALANCER, "dst,dst", ""),
    (LOAD_BALANCER_LOCAL, "nat", KUBE_LOAD_BALANCER, "RETURN", "dst,dst", ""),
    (NODE_PORT_LOCAL_TCP, "nat", KUBE_NODE_PORT, "RETURN", "dst", "tcp"),
    (NODE_PORT_TCP, "nat", KUBE_NODE_PORT, KUBE_MARK_MASQ, "dst", "tcp"),
    (NODE_PORT_LOCAL_UDP, "nat", KUBE_NODE_PORT, "RETURN", "dst", "udp"),
    (NODE_PORT_UDP, "nat", KUBE_NODE_PORT, KUBE_MARK_MASQ, "dst", "udp"),
    (NODE_PORT_LOCAL_SCTP, "nat", KUBE_NODE_PORT, "RETURN", "dst,dst", "sctp"),
    (NODE_PORT_SCTP, "nat", KUBE_NODE_PORT, KUBE_MARK_MASQ, "dst,dst", "sctp"),
    (LOAD_BALANCER_FW, "filter", KUBE_PROXY_FIREWALL, KUBE_SOURCE_RANGES_FIREWALL, "dst,dst", ""),
    (LOAD_BALANCER_SOURCE_CIDR, "filter", KUBE_SOURCE_RANGES_FIREWALL, "RETURN", "dst,dst,src", ""),
    (LOAD_BALANCER_SOURCE_IP, "filter", KUBE_SOURCE_RANGES_FIREWALL, "RETURN", "dst,dst,src", ""),
)

# ipset.go createSet defaults (setIPSetDefaults): hash sets and the bitmap:port range.
HASH_SIZE = 1024
MAX_ELEM = 65536
PORT_RANGE = "0-65535"

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
class RealServer:
    """One IPVS destination. The connection counts come only from a kernel listing."""

    ip: str
    port: int
    weight: int = 1
    active_conns: int = field(default=0, compare=False)
    inactive_conns: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class VirtualServer:
    """One IPVS service. ``key`` is what identifies it in the kernel."""

    address: str
    port: int
    protocol: str  # "TCP" | "UDP" | "SCTP"
    scheduler: str = DEFAULT_SCHEDULER
    flags: int = 0
    timeout: int = 0  # persistence timeout (seconds) with FLAG_PERSISTENT
    real_servers: tuple[RealServer, ...] = ()
    service: str = field(default="", compare=False)  # ns/name:port, for display

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.protocol, self.address, self.port)

    @property
    def persistent(self) -> bool:
        return bool(self.flags & FLAG_PERSISTENT)

    def __str__(self) -> str:
        """utilipvs.VirtualServer.String: ``IP:port/PROTO``."""
        return f"{self.address}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class IpSet:
    name: str
    type: str
    comment: str  # used in the iptables rules that match the set (getComment)
    entries: tuple[str, ...] = ()

    def create_line(self) -> str:
        """ipset.go createSet: ``create NAME TYPE <options> -exist``."""
        if self.type == BITMAP_PORT:
            opts = f"range {PORT_RANGE}"
        else:
            opts = f"family inet hashsize {HASH_SIZE} maxelem {MAX_ELEM}"
        return f"create {self.name} {self.type} {opts} -exist"


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
        """The ``ipset restore`` input that leaves every set holding exactly its entries.

        Every set is created with ``-exist`` (ensureIPSet), so repeated syncs are harmless.
        With ``existing`` (set name -> entries, from :func:`parse_ipset_save`) this is
        upstream's syncIPSetEntries: ``del`` the stale entries, ``add`` the missing ones, and
        nothing is ever briefly missing from a set. Without it (a fresh node) each set is
        flushed and filled, which also removes whatever a set held before.
        """
        out: list[str] = []
        for s in self.ipsets:
            out.append(s.create_line())
            if existing is None:
                out.append(f"flush {s.name}")
                out += [f"add {s.name} {e} -exist" for e in s.entries]
                continue
            have = {canonical_entry(e) for e in existing.get(s.name, ())}
            want = {canonical_entry(e): e for e in s.entries}
            out += [f"del {s.name} {e} -exist" for e in sorted(have - set(want))]
            out += [f"add {s.name} {want[e]} -exist" for e in sorted(set(want) - have)]
        return "\n".join(out) + "\n"


def canonical_entry(entry: str) -> str:
    """An entry as ``ipset save`` prints it: first word only, and no ``/32`` on a host net."""
    word = entry.split()[0] if entry.strip() else ""
    return word[:-3] if word.endswith("/32") else word


def parse_ipset_save(text: str) -> dict[str, set[str]]:
    """``ipset save`` output -> set name -> entries (canonical), for every listed set."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "create":
            out.setdefault(words[1], set())
        elif len(words) >= 3 and words[0] == "add":
            out.setdefault(words[1], set()).add(canonical_entry(words[2]))
    return out


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


def _q(text: str) -> str:
    """Quote a comment with spaces, as upstream's ``getComment``/literal quotes do."""
    return f'"{text}"'


def endpoints_for(cat: Categorized, only_local: bool) -> tuple[EndpointInfo, ...]:
    """syncEndpoint's choice of real servers.

    With a Local policy the node's own endpoints are used; if it has none, the cluster's are
    (kubernetes#97081: so pods on this node can still reach the Service; outside traffic
    routed here is answered by a remote pod and its reply is dropped).
    """
    if only_local:
        return cat.local if cat.local else cat.cluster
    return cat.cluster


class _Builder:
    """The state syncProxyRules accumulates while it walks the Service ports."""

    def __init__(self, opts: IpvsOptions) -> None:
        self.opts = opts
        self.entries: dict[str, set[str]] = {name: set() for name, _, _ in IPSET_INFO}
        self.virtual_servers: dict[tuple[str, str, int], VirtualServer] = {}
        self.bind: set[str] = set()
        self.lb_no_node_access: list[tuple[str, str, int]] = []  # (lb ip, proto, port)

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


def render(services: list[ProxiedService], opts: IpvsOptions) -> IpvsRuleSet:
    """syncProxyRules for one node (a full sync): virtual servers, addresses, ipsets, rules."""
    b = _Builder(opts)
    node_ips = tuple(ip for ip in opts.node_ips if _ipv4(ip))
    for svc in services:
        _render_service(b, svc, node_ips)
    b.entries[IPVS_IPS] = set(b.bind)

    ipsets = tuple(
        IpSet(name, kind, comment, tuple(sorted(b.entries[name], key=_entry_key)))
        for name, kind, comment in IPSET_INFO
    )
    nat_rules, filter_rules = _iptables_rules(opts, {s.name: s for s in ipsets}, b)
    return IpvsRuleSet(
        addresses=tuple(sorted(b.bind, key=_entry_key)),
        virtual_servers=tuple(b.virtual_servers.values()),
        ipsets=ipsets,
        nat_chains=tuple(f":{c} - [0:0]" for t, c in IPTABLES_CHAINS if t == "nat"),
        nat_rules=tuple(nat_rules),
        filter_chains=tuple(f":{c} - [0:0]" for t, c in IPTABLES_CHAINS if t == "filter"),
        filter_rules=tuple(filter_rules),
        bootstrap=_bootstrap(),
    )


def _entry_key(entry: str) -> tuple[tuple[int, ...], str]:
    """Sort entries by their leading address/port numerically, then as text (stable output)."""
    lead = re.split(r"[,/]", entry, maxsplit=1)[0]
    try:
        return (tuple(int(x) for x in lead.split(".")), entry)
    except ValueError:
        return ((), entry)


def _render_service(b: _Builder, svc: ProxiedService, node_ips: tuple[str, ...]) -> None:
    info = svc.info
    if not _ipv4(info.cluster_ip):
        return
    spn = str(info.spn)
    proto = info.protocol  # lower case: tcp | udp | sctp
    proto_upper = info.spn.protocol.upper()
    port = info.port
    endpoints = tuple(e for e in svc.endpoints if _ipv4(e.ip))
    affinity = (info.session_affinity_client_ip, info.sticky_max_age_seconds)

    # Hairpin: every local endpoint (whatever its state) may reach itself through the Service.
    for e in endpoints:
        if e.is_local:
            b.entries[LOOP_BACK].add(f"{e.ip},{proto}:{e.port},{e.ip}")

    cat = categorize(info, endpoints)
    internal = endpoints_for(cat, info.internal_policy_local)
    external = endpoints_for(cat, info.external_policy_local)

    # ClusterIP: always bound to kube-ipvs0, iTP decides its real servers.
    b.entries[CLUSTER_IP].add(f"{info.cluster_ip},{proto}:{port}")
    b.add_vs(info.cluster_ip, port, proto_upper, affinity, internal, spn)
    b.bind.add(info.cluster_ip)

    for ext_ip in info.external_ips:
        if not _ipv4(ext_ip):
            continue
        entry = f"{ext_ip},{proto}:{port}"
        b.entries[EXTERNAL_IP_LOCAL if info.external_policy_local else EXTERNAL_IP].add(entry)
        b.add_vs(ext_ip, port, proto_upper, affinity, external, spn)
        # Never bind an address the node already has on another interface.
        if ext_ip not in node_ips:
            b.bind.add(ext_ip)

    for lb_ip in info.load_balancer_vips:
        if not _ipv4(lb_ip):
            continue
        entry = f"{lb_ip},{proto}:{port}"
        b.entries[LOAD_BALANCER].add(entry)
        if info.external_policy_local:
            b.entries[LOAD_BALANCER_LOCAL].add(entry)
        if info.load_balancer_source_ranges:
            b.entries[LOAD_BALANCER_FW].add(entry)
            allow_from_node = False
            for cidr in info.load_balancer_source_ranges:
                net = str(ipaddress.ip_network(cidr, strict=False))
                b.entries[LOAD_BALANCER_SOURCE_CIDR].add(f"{lb_ip},{proto}:{port},{net}")
                allow_from_node = allow_from_node or _contains(cidr, b.opts.node_ip)
            if allow_from_node:
                # Traffic to the LB IP from the node itself arrives with the LB IP as source.
                b.entries[LOAD_BALANCER_SOURCE_IP].add(f"{lb_ip},{proto}:{port},{lb_ip}")
            else:
                # kubernetes#119656: the node is not allowed, so block it in OUTPUT.
                b.lb_no_node_access.append((lb_ip, proto, port))
        b.add_vs(lb_ip, port, proto_upper, affinity, external, spn)
        if lb_ip not in node_ips:
            b.bind.add(lb_ip)

    if info.node_port:
        if not node_ips:
            # Upstream skips the NodePort (and, by its `continue`, the health check port).
            return
        if proto == "sctp":
            entries = [f"{ip},sctp:{info.node_port}" for ip in node_ips]
            b.entries[NODE_PORT_SCTP].update(entries)
            if info.external_policy_local:
                b.entries[NODE_PORT_LOCAL_SCTP].update(entries)
        else:
            masq, local = (
                (NODE_PORT_TCP, NODE_PORT_LOCAL_TCP)
                if proto == "tcp"
                else (NODE_PORT_UDP, NODE_PORT_LOCAL_UDP)
            )
            b.entries[masq].add(str(info.node_port))
            if info.external_policy_local:
                b.entries[local].add(str(info.node_port))
        # One virtual server per node address; these are never bound to kube-ipvs0.
        for ip in node_ips:
            b.add_vs(ip, info.node_port, proto_upper, affinity, external, spn)

    # Only eTP=Local Services have a health check node port (NeedsHealthCheck).
    if info.health_check_node_port and info.external_policy_local:
        b.entries[HEALTH_CHECK_NODE_PORT].add(str(info.health_check_node_port))


def _iptables_rules(
    opts: IpvsOptions, sets: dict[str, IpSet], b: _Builder
) -> tuple[list[str], list[str]]:
    """writeIptablesRules, line for line and in its order."""
    nat: list[str] = []
    flt: list[str] = []
    mark = opts.masquerade_mark

    def nonempty(name: str) -> bool:
        return bool(sets[name].entries)

    def set_match(name: str, match: str) -> str:
        """Every rule matching a set carries the set's comment (getComment)."""
        return f"-m comment --comment {_q(sets[name].comment)} -m set --match-set {name} {match}"

    # Dismiss connections from localhost early.
    nat.append(f"-A {KUBE_SERVICES} -s 127.0.0.0/8 -j RETURN")

    for name, table, chain, target, match, proto in IPSET_WITH_IPTABLES_CHAIN:
        if not nonempty(name):
            continue
        p = f" -p {proto}" if proto else ""
        (flt if table == "filter" else nat).append(
            f"-A {chain}{p} {set_match(name, match)} -j {target}"
        )

    if nonempty(CLUSTER_IP):
        head = f"-A {KUBE_SERVICES} {set_match(CLUSTER_IP, 'dst,dst')}"
        if opts.masquerade_all:
            nat.append(f"{head} -j {KUBE_MARK_MASQ}")
        else:
            # Off-cluster traffic to a ClusterIP (a static route to a node) is masqueraded.
            nat.append(f"{head} ! -s {opts.cluster_cidr} -j {KUBE_MARK_MASQ}")

    def external_ip_rules(head: str) -> None:
        # Accept traffic from off the machine (not from a bridge port, not local) ...
        nat.append(f"{head} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT")
        # ... and traffic to external IPs that are local addresses of this node.
        nat.append(f"{head} -m addrtype --dst-type LOCAL -j ACCEPT")

    if nonempty(EXTERNAL_IP):
        head = f"-A {KUBE_SERVICES} {set_match(EXTERNAL_IP, 'dst,dst')}"
        nat.append(f"{head} -j {KUBE_MARK_MASQ}")
        external_ip_rules(head)
    if nonempty(EXTERNAL_IP_LOCAL):
        external_ip_rules(f"-A {KUBE_SERVICES} {set_match(EXTERNAL_IP_LOCAL, 'dst,dst')}")

    nat.append(f"-A {KUBE_SERVICES} -m addrtype --dst-type LOCAL -j {KUBE_NODE_PORT}")
    nat.append(f"-A {KUBE_LOAD_BALANCER} -j {KUBE_MARK_MASQ}")
    flt.append(f"-A {KUBE_SOURCE_RANGES_FIREWALL} -j DROP")

    # The node may not reach LB IPs whose source ranges exclude it (src and dst are the LB IP).
    for lb_ip, proto, port in b.lb_no_node_access:
        flt.append(
            f"-A {KUBE_IPVS_OUT_FILTER} -s {lb_ip} -m ipvs --vaddr {lb_ip} --vproto {proto} "
            f"--vport {port} -j DROP"
        )

    # acceptIPVSTraffic: must be the last rules of KUBE-SERVICES.
    for name in (CLUSTER_IP, LOAD_BALANCER):
        if nonempty(name):
            nat.append(f"-A {KUBE_SERVICES} -m set --match-set {name} dst,dst -j ACCEPT")

    flt.append(
        f"-A {KUBE_FORWARD} -m comment --comment {_q('kubernetes forwarding rules')} "
        f"-m mark --mark {mark}/{mark} -j ACCEPT"
    )
    flt.append(
        f"-A {KUBE_FORWARD} -m comment --comment {_q('kubernetes forwarding conntrack rule')} "
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    )
    flt.append(f"-A {KUBE_NODE_PORT} {set_match(HEALTH_CHECK_NODE_PORT, 'dst')} -j ACCEPT")

    # KUBE-IPVS-FILTER (kubernetes#72236): VIPs on kube-ipvs0 are local addresses, so without
    # this any host port would answer on them. Only the Service ports pass.
    for name, match in (
        (LOAD_BALANCER, "dst,dst"),
        (CLUSTER_IP, "dst,dst"),
        (EXTERNAL_IP, "dst,dst"),
        (EXTERNAL_IP_LOCAL, "dst,dst"),
        (HEALTH_CHECK_NODE_PORT, "dst"),
    ):
        flt.append(f"-A {KUBE_IPVS_FILTER} -m set --match-set {name} {match} -j RETURN")
    flt.append(
        f"-A {KUBE_IPVS_FILTER} -m conntrack --ctstate NEW "
        f"-m set --match-set {IPVS_IPS} dst -j REJECT"
    )

    nat.append(f"-A {KUBE_POSTROUTING} -m mark ! --mark {mark}/{mark} -j RETURN")
    # Clear the mark so a packet crossing the stack again is not masqueraded twice.
    nat.append(f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {mark}")
    masq = (
        f"-A {KUBE_POSTROUTING} -m comment --comment "
        f"{_q('kubernetes service traffic requiring SNAT')} -j MASQUERADE"
    )
    nat.append(masq + (" --random-fully" if opts.random_fully else ""))
    nat.append(f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {mark}")
    return nat, flt


def _bootstrap() -> dict[str, tuple[str, ...]]:
    """The jumps from built-in chains, in EnsureRule(Prepend) order.

    Each is prepended, so on a fresh node they end up in reverse list order; ``-I CHAIN 1``
    lines applied in list order reproduce exactly that.
    """
    out: dict[str, list[str]] = {"nat": [], "filter": []}
    for table, builtin, chain, comment in JUMP_CHAINS:
        out[table].append(f"-I {builtin} 1 -m comment --comment {_q(comment)} -j {chain}")
    return {t: tuple(lines) for t, lines in out.items()}


# ---------------------------------------------------------------------------------------------
# ipvsadm text: for display, and for the ipvsadm apply path.

_PROTO_FLAG = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}


def _service_args(vs: VirtualServer) -> str:
    return f"{_PROTO_FLAG[vs.protocol]} {vs.address}:{vs.port}"


def ipvsadm_service_line(vs: VirtualServer, command: str = "-A") -> str:
    """``-A -t VIP:PORT -s rr`` (``-p TIMEOUT`` for a persistent service), as ipvsadm -S."""
    line = f"{command} {_service_args(vs)} -s {vs.scheduler}"
    if vs.persistent:
        line += f" -p {vs.timeout}"
    return line


def ipvsadm_dest_line(vs: VirtualServer, rs: RealServer, command: str = "-a") -> str:
    """``-a -t VIP:PORT -r RIP:PORT -m -w 1``: a masquerading (NAT) real server."""
    return f"{command} {_service_args(vs)} -r {rs.ip}:{rs.port} -m -w {rs.weight}"


def ipvsadm_restore_text(ruleset: IpvsRuleSet) -> str:
    """The ``ipvsadm --restore`` input for the whole table (what ``ipvsadm -S -n`` would print)."""
    out: list[str] = []
    for vs in ruleset.virtual_servers:
        out.append(ipvsadm_service_line(vs))
        out += [ipvsadm_dest_line(vs, rs) for rs in vs.real_servers]
    return "\n".join(out) + ("\n" if out else "")


# ---------------------------------------------------------------------------------------------
# Reconciling the kernel's table with the rendered one (pure; the proxier applies the result).


@dataclass(frozen=True)
class IpvsOp:
    """One change to the kernel's IPVS table."""

    action: str  # add-service | set-service | del-service | add-dest | set-dest | del-dest
    service: VirtualServer
    dest: RealServer | None = None

    def __str__(self) -> str:
        """The change as an ipvsadm command line (-A/-E/-D, -a/-e/-d)."""
        cmd = {
            "add-service": "-A",
            "set-service": "-E",
            "del-service": "-D",
            "add-dest": "-a",
            "set-dest": "-e",
            "del-dest": "-d",
        }[self.action]
        if self.dest is None:
            if self.action == "del-service":
                return f"-D {_service_args(self.service)}"
            return ipvsadm_service_line(self.service, cmd)
        if self.action == "del-dest":
            return f"-d {_service_args(self.service)} -r {self.dest}"
        return ipvsadm_dest_line(self.service, self.dest, cmd)


def graceful_termination_needed(protocol: str) -> bool:
    """utilipvs.IsRsGracefulTerminationNeeded: UDP and SCTP real servers go at once (their
    flows are expired on the next packet, expire_nodest_conn=1); TCP ones drain first."""
    return protocol.upper() not in ("UDP", "SCTP")


def reconcile(current: Sequence[VirtualServer], desired: Sequence[VirtualServer]) -> list[IpvsOp]:
    """What to change so the kernel's table (``current``, as listed) becomes ``desired``.

    Mirrors syncService, syncEndpoint, the GracefulTerminationManager and cleanLegacyService:

    * a missing service is added, a changed one (scheduler, flags, timeout) is edited in place,
      so its VIP never goes down; the kernel's HASHED flag is ignored when comparing;
    * a missing real server is added; one whose weight is not 1 (a real server left draining,
      or set by hand) gets weight 1 back;
    * a real server no longer wanted is deleted, unless it is TCP and still has connections:
      then it is quiesced (weight 0) and deleted by a later sync once they are gone;
    * services no longer wanted are deleted last, with their real servers.
    """
    cur = {vs.key: vs for vs in current}
    want = {vs.key: vs for vs in desired}
    ops: list[IpvsOp] = []
    for key, vs in want.items():
        old = cur.get(key)
        if old is None:
            ops.append(IpvsOp("add-service", vs))
            ops += [IpvsOp("add-dest", vs, rs) for rs in vs.real_servers]
            continue
        if (old.scheduler, old.flags & ~FLAG_HASHED, old.timeout) != (
            vs.scheduler,
            vs.flags,
            vs.timeout,
        ):
            ops.append(IpvsOp("set-service", vs))
        have = {(rs.ip, rs.port): rs for rs in old.real_servers}
        for rs in vs.real_servers:
            o = have.pop((rs.ip, rs.port), None)
            if o is None:
                ops.append(IpvsOp("add-dest", vs, rs))
            elif o.weight != rs.weight:
                ops.append(IpvsOp("set-dest", vs, rs))
        for o in have.values():
            draining = o.active_conns + o.inactive_conns > 0
            if graceful_termination_needed(vs.protocol) and draining:
                if o.weight != 0:
                    quiesced = RealServer(o.ip, o.port, 0)
                    ops.append(IpvsOp("set-dest", vs, quiesced))
            else:
                ops.append(IpvsOp("del-dest", vs, o))
    ops += [IpvsOp("del-service", old) for key, old in cur.items() if key not in want]
    return ops


def bind_changes(current: Iterable[str], desired: Iterable[str]) -> tuple[list[str], list[str]]:
    """Addresses to add to and remove from kube-ipvs0: (missing, superfluous)."""
    have, want = set(current), set(desired)
    return sorted(want - have, key=_entry_key), sorted(have - want, key=_entry_key)


# ---------------------------------------------------------------------------------------------
# Reading ipvsadm -Ln output (for one Service's live view).

_VS_LINE = re.compile(r"^(TCP|UDP|SCTP)\s+(\S+):(\d+)\s")


def filter_ipvsadm_list(text: str, keys: set[tuple[str, str, int]]) -> str:
    """Keep from ``ipvsadm -Ln`` output its header and the blocks of the given services."""
    out: list[str] = []
    keep = True
    for line in text.splitlines():
        m = _VS_LINE.match(line)
        if m:
            keep = (m.group(1), m.group(2), int(m.group(3))) in keys
        elif not line.startswith(" "):
            keep = True  # header lines
        if keep:
            out.append(line)
    return "\n".join(out) + ("\n" if out else "")
