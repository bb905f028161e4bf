"""nftables mode: render kube-proxy's ``nft -f`` transaction for one node (pure text).

This follows ``pkg/proxy/nftables/proxier.go`` (``setupNFTables`` and ``syncProxyRules``) in the
newer layout that upstream's own ``proxier_test.go`` pins (Kubernetes >= 1.31): one table
``ip kube-proxy``; base chains ``${type}-${hook}`` with the pre-DNAT filter chains at priority
-110; dispatch through the verdict maps ``service-ips`` / ``service-nodeports``; the
``no-endpoint-*`` maps checked from the filter hooks; per Service port the chains
``service-`` / ``local-`` / ``external-`` / ``firewall-`` + hashAndTruncate(name) and per endpoint
``endpoint-`` chains and ``affinity-`` sets, with the same rule text kube-proxy writes (knftables'
syntax), so ``nft list table ip kube-proxy`` in a lab node reads like one on a real node.

How a sync is written (as upstream's full sync, in one transaction): the table and every fixed
object are added (``add`` is a no-op for what exists), every chain written is added *and flushed*
and refilled, the six sets/maps kube-proxy owns are flushed and refilled, and service chains and
affinity sets that exist in the kernel (``existing``, listed from the node first, as upstream lists
them) but are no longer wanted are flushed and deleted. Upstream deletes stale chains only a second
later in a separate transaction, a workaround for kernels before 6.2 that do not notice at once
that a flushed map no longer refers to a chain; netlab deletes them in the same transaction (the
lab kernels are newer), so every sync is exactly one atomic ``nft -f``. On the proxier's first sync
upstream also adds and deletes each base chain once, so that a base chain left with other
properties (e.g. another priority) by an older kube-proxy is re-created; ``first=True`` does that.
:meth:`Ruleset.delta` writes upstream's other kind of sync, the partial one (only what changed).

Two layouts render the same behaviour:

``kube-proxy``
    Exactly upstream's objects and rules. Its weak spot is scale: each Service port's endpoint
    choice is ``numgen random mod N vmap { 0 : goto endpoint-A , 1 : goto endpoint-B }``, and each
    such anonymous map is a set object in the kernel's table. With 10k Services that is 10k sets in
    one table, and loading it costs far more than linearly, almost all of it in the kernel
    (see docs/performance.md for the figures). A ``firewall-`` chain's ``ip saddr != { r1 , r2 }``
    is another anonymous set per LoadBalancer with several source ranges (``nft`` itself turns a
    one-element ``{ r }`` into a plain comparison).

``fast``
    The same chains, names, maps, elements and verdicts, with the anonymous sets inside
    per-Service rules replaced by plain rules, so the table holds only kube-proxy's six named
    sets/maps (plus affinity sets, which must stay named because ``update @set`` needs them):

    * Endpoint choice becomes a cascade, as iptables mode's ``statistic`` rules:
      for endpoints ``e_0 .. e_{N-1}`` the chain gets ``numgen random mod (N-i) == 0 goto e_i``
      for ``i < N-1`` and a final unconditional ``goto e_{N-1}``. Each rule draws a fresh random
      number, so ``P(e_i) = prod_{j<i} (1 - 1/(N-j)) * 1/(N-i) = ((N-i)/N) * 1/(N-i) = 1/N``:
      uniform, exactly like ``numgen random mod N vmap``. Every rule ends in ``goto`` (as every
      vmap entry does), so the packet leaves the service chain at the first hit and what follows
      (nothing) is never reached in either form; the session-affinity rules before it are
      unchanged. A single endpoint is a plain ``goto`` (``mod 1`` is always 0).
    * ``ip saddr != { r1 , r2 } drop`` in a ``firewall-`` chain becomes ``ip saddr r1 return``,
      ``ip saddr r2 return``, ``drop``. The chain is entered by ``goto`` from ``firewall-check``'s
      vmap, so ``return`` goes back to the base chain that jumped to ``firewall-check`` -- exactly
      where falling off the end of the original chain goes. Allowed sources continue, the rest
      are dropped, in both forms.

    Nothing else differs, so every packet meets the same verdict (tests/unit pins this with a
    packet tracer over both renderings, on upstream's packet-flow tables and on random Services).
    Connections are only load-balanced on their first packet (conntrack keeps the choice), so a
    per-rule draw instead of one draw per packet changes nothing but the odds' arithmetic.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from netlab.proxy import naming
from netlab.proxy.servicemap import (
    EndpointInfo,
    ProxiedService,
    ServicePortInfo,
    categorize,
    policy_reach,
)

FAMILY = "ip"
TABLE = "kube-proxy"
LAYOUTS = ("kube-proxy", "fast")

# Base chains ("${type}-${hook}") and the regular chains and sets/maps the proxier owns.
FILTER_PREROUTING_PRE_DNAT = "filter-prerouting-pre-dnat"
FILTER_OUTPUT_PRE_DNAT = "filter-output-pre-dnat"
FILTER_INPUT = "filter-input"
FILTER_FORWARD = "filter-forward"
FILTER_OUTPUT = "filter-output"
NAT_PREROUTING = "nat-prerouting"
NAT_OUTPUT = "nat-output"
NAT_POSTROUTING = "nat-postrouting"

SERVICES = "services"
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NODEPORT_IPS = "nodeport-ips"
CLUSTER_IPS = "cluster-ips"
SERVICE_ENDPOINTS_CHECK = "service-endpoints-check"
NODEPORT_ENDPOINTS_CHECK = "nodeport-endpoints-check"
NO_ENDPOINT_SERVICES = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
REJECT_CHAIN = "reject-chain"
CLUSTER_IPS_CHECK = "cluster-ips-check"
FIREWALL_IPS = "firewall-ips"
FIREWALL_CHECK = "firewall-check"
MARK_MASQ = "mark-for-masquerade"
MASQUERADING = "masquerading"

# (name, type, hook, priority). Priorities are written as numbers, as `nft list` shows them:
# dstnat-10 = -110, filter = 0, dstnat = -100, srcnat = 100 (family ip).
BASE_CHAINS: tuple[tuple[str, str, str, int], ...] = (
    (FILTER_PREROUTING_PRE_DNAT, "filter", "prerouting", -110),
    (FILTER_OUTPUT_PRE_DNAT, "filter", "output", -110),
    (FILTER_FORWARD, "filter", "forward", 0),
    (FILTER_INPUT, "filter", "input", 0),
    (FILTER_OUTPUT, "filter", "output", 0),
    (NAT_PREROUTING, "nat", "prerouting", -100),
    (NAT_OUTPUT, "nat", "output", -100),
    (NAT_POSTROUTING, "nat", "postrouting", 100),
)

# nftablesJumpChains, in upstream order: (destination, source base chain, extra match).
# Reject is only valid in input/forward/output, so the endpoint checks are not in prerouting.
JUMP_CHAINS: tuple[tuple[str, str, str], ...] = (
    (NODEPORT_ENDPOINTS_CHECK, FILTER_INPUT, "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, FILTER_INPUT, "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, FILTER_FORWARD, "ct state new"),
    (SERVICE_ENDPOINTS_CHECK, FILTER_OUTPUT, "ct state new"),
    (FIREWALL_CHECK, FILTER_PREROUTING_PRE_DNAT, "ct state new"),
    (FIREWALL_CHECK, FILTER_OUTPUT_PRE_DNAT, "ct state new"),
    (SERVICES, NAT_OUTPUT, ""),
    (SERVICES, NAT_PREROUTING, ""),
    (MASQUERADING, NAT_POSTROUTING, ""),
    (CLUSTER_IPS_CHECK, FILTER_FORWARD, "ct state new"),
    (CLUSTER_IPS_CHECK, FILTER_OUTPUT, "ct state new"),
)

# The sets/maps that every full sync flushes and refills (nftElementStorage.reset).
OWNED_CONTAINERS: tuple[tuple[str, str], ...] = (
    ("set", CLUSTER_IPS),
    ("map", SERVICE_IPS),
    ("map", FIREWALL_IPS),
    ("map", NO_ENDPOINT_SERVICES),
    ("map", NO_ENDPOINT_NODEPORTS),
    ("map", SERVICE_NODEPORTS),
)

ADDR_PROTO_PORT = "ipv4_addr . inet_proto . inet_service"
PROTO_PORT = "inet_proto . inet_service"

# Per-Service-port prefixes (each at most 16 characters, chainNamePrefixLengthMax).
SERVICE_PREFIX = "service-"
LOCAL_PREFIX = "local-"
EXTERNAL_PREFIX = "external-"
FIREWALL_PREFIX = "firewall-"
ENDPOINT_PREFIX = "endpoint-"
AFFINITY_PREFIX = "affinity-"


@dataclass(frozen=True)
class NftablesOptions:
    node_ip: str
    cluster_cidr: str  # the local-traffic detector (DetectLocalByCIDR); "" means none
    service_cidr: str  # ServiceCIDRs, comma-separated as upstream passes them; "" means none
    masquerade_all: bool = False
    masquerade_bit: int = 14
    # The node IPs that --nodeport-addresses selects; empty (the default) means every local
    # address, which kube-proxy expresses as "fib daddr type local" and no nodeport-ips set.
    nodeport_ips: tuple[str, ...] = ()

    @property
    def masquerade_mark(self) -> str:
        """Go's ``fmt.Sprintf("%#08x", 1<<bit)``, as NewProxier formats it: ``0x00004000``."""
        return f"0x{1 << self.masquerade_bit:08x}"


@dataclass(frozen=True)
class Existing:
    """What ``nft list chains`` / ``nft list sets`` showed in the node's table before a sync."""

    chains: frozenset[str] = frozenset()
    sets: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Element:
    container: str
    key: tuple[str, ...]
    value: str = ""
    comment: str = ""

    def body(self) -> str:
        """``{ KEY [comment "C"] [: VALUE] }`` as knftables writes an element."""
        text = " . ".join(self.key)
        if self.comment:
            text += f' comment "{self.comment}"'
        if self.value:
            text += f" : {self.value}"
        return "{ " + text + " }"


@dataclass
class ServiceObjects:
    """Everything one Service port owns in the table."""

    namespace: str
    name: str
    key: str  # ns/svc/proto/port: one Service port
    chains: dict[str, list[str]] = field(default_factory=dict)  # chain -> its rules, in order
    affinity_sets: dict[str, int] = field(default_factory=dict)  # set name -> timeout seconds
    elements: list[Element] = field(default_factory=list)

    def chain(self, name: str) -> list[str]:
        """ensureChain: the chain exists (once), and is written from scratch."""
        return self.chains.setdefault(name, [])


@dataclass
class Ruleset:
    """A node's whole kube-proxy table, before it is turned into a transaction."""

    opts: NftablesOptions
    layout: str
    services: list[ServiceObjects]

    def elements(self) -> dict[tuple[str, tuple[str, ...]], Element]:
        """Every set/map element once (ensureElem: one per key; a later Service port claiming
        the same key, e.g. a shared external IP, replaces the earlier one)."""
        return {(e.container, e.key): e for s in self.services for e in s.elements}

    def service_chains(self) -> set[str]:
        return {c for s in self.services for c in s.chains}

    def affinity_sets(self) -> set[str]:
        return {a for s in self.services for a in s.affinity_sets}

    def transaction(self, *, first: bool = True, existing: Existing | None = None) -> str:
        """The full-sync ``nft -f`` input (see the module docstring)."""
        out: list[str] = []
        _setup(self.opts, first, out)
        _write_services(self.services, out)
        out.extend(_element_op("add", e) for e in self.elements().values())
        if existing is not None:
            active, sticky = self.service_chains(), self.affinity_sets()
            _delete_stale(
                sorted(c for c in existing.chains if is_service_chain(c) and c not in active),
                sorted(s for s in existing.sets if is_affinity_set(s) and s not in sticky),
                out,
            )
        return "\n".join(out) + "\n"

    def delta(self, previous: Ruleset) -> str:
        """A partial sync from ``previous`` (what the kernel holds) to this ruleset, as upstream
        writes one when no full sync is due: only the changed Service ports' chains are
        rewritten, set/map elements are added and deleted one by one, and what is gone is
        deleted. Fixed objects are left alone, so the transaction is tiny when little changed.
        """
        if (self.opts, self.layout) != (previous.opts, previous.layout):
            raise ValueError("options or layout changed: a full sync is needed")
        before = {s.key: s for s in previous.services}
        changed = [s for s in self.services if before.get(s.key) != s]
        out: list[str] = []
        _write_services(changed, out)
        old_el, new_el = previous.elements(), self.elements()
        for k, e in old_el.items():
            if new_el.get(k) != e:
                out.append(_element_op("delete", replace(e, value="", comment="")))
        out.extend(_element_op("add", e) for k, e in new_el.items() if old_el.get(k) != e)
        _delete_stale(
            sorted(previous.service_chains() - self.service_chains()),
            sorted(previous.affinity_sets() - self.affinity_sets()),
            out,
        )
        return "\n".join(out) + ("\n" if out else "")


def _write_services(services: Iterable[ServiceObjects], out: list[str]) -> None:
    """Chains first (added and flushed), then affinity sets, then rules, so every jump target
    and set exists when a rule names it."""
    services = list(services)
    for svc in services:
        for chain in svc.chains:
            out.append(f"add chain {FAMILY} {TABLE} {chain}")
            out.append(f"flush chain {FAMILY} {TABLE} {chain}")
    for svc in services:
        for aset, timeout in svc.affinity_sets.items():
            out.append(
                f"add set {FAMILY} {TABLE} {aset} {{ type ipv4_addr ; "
                f"flags dynamic,timeout ; timeout {timeout}s ; }}"
            )
    for svc in services:
        for chain, rules in svc.chains.items():
            out.extend(f"add rule {FAMILY} {TABLE} {chain} {r}" for r in rules)


def _element_op(verb: str, e: Element) -> str:
    return f"{verb} element {FAMILY} {TABLE} {e.container} {e.body()}"


def _delete_stale(chains: list[str], sets: list[str], out: list[str]) -> None:
    # Flush them all first: stale chains may jump to each other or update stale sets.
    out.extend(f"flush chain {FAMILY} {TABLE} {c}" for c in chains)
    out.extend(f"delete chain {FAMILY} {TABLE} {c}" for c in chains)
    out.extend(f"delete set {FAMILY} {TABLE} {s}" for s in sets)


def is_service_chain(name: str) -> bool:
    """isServiceChainName: only per-Service and per-endpoint chain names contain a "/"."""
    return "/" in name


def is_affinity_set(name: str) -> bool:
    return name.startswith(AFFINITY_PREFIX)


def render(
    services: list[ProxiedService],
    opts: NftablesOptions,
    layout: str = "kube-proxy",
    *,
    first: bool = True,
    existing: Existing | None = None,
) -> str:
    """syncProxyRules for one node as a full sync: the input of one ``nft -f`` transaction."""
    return build(services, opts, layout).transaction(first=first, existing=existing)


def build(services: list[ProxiedService], opts: NftablesOptions, layout: str) -> Ruleset:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown nftables layout {layout!r} (layouts: {', '.join(LAYOUTS)})")
    return Ruleset(opts, layout, [_service(svc, opts, layout) for svc in services])


def _setup(opts: NftablesOptions, first: bool, out: list[str]) -> None:
    """setupNFTables: the table, base chains, jump rules, fixed chains, sets and maps."""
    t = f"{FAMILY} {TABLE}"
    mark = opts.masquerade_mark
    out.append(f'add table {t} {{ comment "rules for kube-proxy" ; }}')
    if first:
        # Re-create base chains once so that changed properties (priority) cannot fail the sync.
        for name, _, _, _ in BASE_CHAINS:
            out.append(f"add chain {t} {name}")
            out.append(f"delete chain {t} {name}")
    for name, ctype, hook, prio in BASE_CHAINS:
        out.append(f"add chain {t} {name} {{ type {ctype} hook {hook} priority {prio} ; }}")
        out.append(f"flush chain {t} {name}")

    created: set[str] = set()

    def ensure(chain: str, comment: str = "") -> None:
        if chain in created:
            return
        created.add(chain)
        spec = f' {{ comment "{comment}" ; }}' if comment else ""
        out.append(f"add chain {t} {chain}{spec}")
        out.append(f"flush chain {t} {chain}")

    for dst, src, extra in JUMP_CHAINS:
        ensure(dst)
        out.append(f"add rule {t} {src} {extra + ' ' if extra else ''}jump {dst}")
    for chain in (SERVICES, CLUSTER_IPS_CHECK, MASQUERADING, MARK_MASQ):
        ensure(chain)

    out.append(f"add rule {t} {MARK_MASQ} mark set mark or {mark}")
    out.append(f"add rule {t} {MASQUERADING} mark and {mark} == 0 return")
    out.append(f"add rule {t} {MASQUERADING} mark set mark xor {mark}")
    out.append(f"add rule {t} {MASQUERADING} masquerade fully-random")

    out.append(f'add set {t} {CLUSTER_IPS} {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}')
    out.append(
        f"add rule {t} {CLUSTER_IPS_CHECK} ip daddr @{CLUSTER_IPS} reject "
        'comment "Reject traffic to invalid ports of ClusterIPs"'
    )
    if opts.service_cidr:
        out.append(
            f"add rule {t} {CLUSTER_IPS_CHECK} ip daddr {{ {opts.service_cidr} }} drop "
            'comment "Drop traffic to unallocated ClusterIPs"'
        )

    # nodeport-ips: "add+delete" to make sure it is gone when every address takes NodePorts.
    out.append(
        f"add set {t} {NODEPORT_IPS} {{ type ipv4_addr ; "
        'comment "IPs that accept NodePort traffic" ; }'
    )
    if not opts.nodeport_ips:
        out.append(f"delete set {t} {NODEPORT_IPS}")
    else:
        out.append(f"flush set {t} {NODEPORT_IPS}")
        for ip in opts.nodeport_ips:
            if ipaddress.ip_address(ip).is_loopback:
                continue  # localhost NodePorts are not supported in nftables mode
            out.append(f"add element {t} {NODEPORT_IPS} {{ {ip} }}")

    out.append(
        f"add map {t} {NO_ENDPOINT_SERVICES} {{ type {ADDR_PROTO_PORT} : verdict ; "
        'comment "vmap to drop or reject packets to services with no endpoints" ; }'
    )
    out.append(
        f"add map {t} {NO_ENDPOINT_NODEPORTS} {{ type {PROTO_PORT} : verdict ; "
        'comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }'
    )
    ensure(REJECT_CHAIN, "helper for @no-endpoint-services / @no-endpoint-nodeports")
    out.append(f"add rule {t} {REJECT_CHAIN} reject")
    out.append(
        f"add rule {t} {SERVICE_ENDPOINTS_CHECK} "
        f"ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}"
    )
    if not opts.nodeport_ips:
        out.append(
            f"add rule {t} {NODEPORT_ENDPOINTS_CHECK} "
            f"ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"
        )
    else:
        out.append(
            f"add rule {t} {NODEPORT_ENDPOINTS_CHECK} "
            f"ip daddr @{NODEPORT_IPS} meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"
        )

    out.append(
        f"add map {t} {FIREWALL_IPS} {{ type {ADDR_PROTO_PORT} : verdict ; "
        'comment "destinations that are subject to LoadBalancerSourceRanges" ; }'
    )
    ensure(FIREWALL_CHECK)
    out.append(
        f"add rule {t} {FIREWALL_CHECK} ip daddr . meta l4proto . th dport vmap @{FIREWALL_IPS}"
    )

    out.append(
        f"add map {t} {SERVICE_IPS} {{ type {ADDR_PROTO_PORT} : verdict ; "
        'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }'
    )
    out.append(
        f"add map {t} {SERVICE_NODEPORTS} {{ type {PROTO_PORT} : verdict ; "
        'comment "NodePort traffic" ; }'
    )
    out.append(f"add rule {t} {SERVICES} ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}")
    if not opts.nodeport_ips:
        out.append(
            f"add rule {t} {SERVICES} fib daddr type local ip daddr != 127.0.0.0/8 "
            f"meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"
        )
    else:
        out.append(
            f"add rule {t} {SERVICES} ip daddr @{NODEPORT_IPS} "
            f"meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"
        )

    for kind, name in OWNED_CONTAINERS:
        out.append(f"flush {kind} {t} {name}")


def service_chain_base(info: ServicePortInfo) -> str:
    """servicePortChainNameBase: ``HASH-ns/svc/proto/port``."""
    return naming.hash_and_truncate(naming.nft_service_name(info.spn))


def endpoint_chain_base(info: ServicePortInfo, ep: EndpointInfo) -> str:
    """servicePortEndpointChainNameBase: ``HASH-ns/svc/proto/port__ip/port``."""
    return naming.hash_and_truncate(naming.nft_endpoint_name(info.spn, ep.ip, ep.port))


def _cidr(text: str) -> str:
    """LoadBalancerSourceRanges are parsed (and so normalised) before use, as upstream does."""
    return str(ipaddress.ip_network(text.strip(), strict=False))


def _service(svc: ProxiedService, opts: NftablesOptions, layout: str) -> ServiceObjects:
    """The per-Service-port body of syncProxyRules."""
    info = svc.info
    spn = info.spn
    proto = info.protocol
    port = str(info.port)
    comment = str(spn)
    out = ServiceObjects(spn.namespace, spn.name, naming.nft_service_name(spn))
    cat = categorize(info, svc.endpoints)
    affinity = info.session_affinity_client_ip

    base = service_chain_base(info)
    cluster_chain = SERVICE_PREFIX + base
    local_chain = LOCAL_PREFIX + base
    external_chain = EXTERNAL_PREFIX + base
    fw_chain = FIREWALL_PREFIX + base

    def ep_chain(ep: EndpointInfo) -> str:
        return ENDPOINT_PREFIX + endpoint_chain_base(info, ep)

    def ep_affinity(ep: EndpointInfo) -> str:
        return AFFINITY_PREFIX + endpoint_chain_base(info, ep)

    for ep in cat.all_reachable:
        out.chain(ep_chain(ep))

    uses_cluster_chain = bool(cat.cluster) and info.uses_cluster_endpoints
    if uses_cluster_chain:
        out.chain(cluster_chain)
    uses_local_chain = bool(cat.local) and info.uses_local_endpoints
    if uses_local_chain:
        out.chain(local_chain)

    reach = policy_reach(info, cat)
    has_internal, has_external = reach.has_internal, reach.has_external
    internal_chain = local_chain if reach.internal_local else cluster_chain
    external_policy_chain = local_chain if reach.external_local else cluster_chain

    # Needed even without externally-usable endpoints, for the local short-circuit rules.
    uses_external_chain = cat.has_any and info.externally_accessible
    if uses_external_chain:
        out.chain(external_chain)

    internal_verdict = external_verdict = ""
    if not cat.has_any:
        internal_verdict = external_verdict = f"goto {REJECT_CHAIN}"
    else:
        if not has_internal:
            internal_verdict = "drop"  # iTP Local without local endpoints
        if not has_external:
            external_verdict = "drop"  # eTP Local without local endpoints

    el = out.elements
    el.append(Element(CLUSTER_IPS, (info.cluster_ip,)))
    if has_internal:
        el.append(Element(SERVICE_IPS, (info.cluster_ip, proto, port), f"goto {internal_chain}"))
    else:
        el.append(
            Element(NO_ENDPOINT_SERVICES, (info.cluster_ip, proto, port), internal_verdict, comment)
        )

    for ext_ip in info.external_ips:
        if cat.has_any:
            el.append(Element(SERVICE_IPS, (ext_ip, proto, port), f"goto {external_chain}"))
        if not has_external:
            el.append(
                Element(NO_ENDPOINT_SERVICES, (ext_ip, proto, port), external_verdict, comment)
            )

    uses_fw_chain = bool(info.load_balancer_vips) and bool(info.load_balancer_source_ranges)
    if uses_fw_chain:
        out.chain(fw_chain)
    for lb_ip in info.load_balancer_vips:
        if cat.has_any:
            el.append(Element(SERVICE_IPS, (lb_ip, proto, port), f"goto {external_chain}"))
        if uses_fw_chain:
            el.append(Element(FIREWALL_IPS, (lb_ip, proto, port), f"goto {fw_chain}"))
    if not has_external:
        for lb_ip in info.load_balancer_vips:
            el.append(
                Element(NO_ENDPOINT_SERVICES, (lb_ip, proto, port), external_verdict, comment)
            )

    if info.node_port:
        node_port = str(info.node_port)
        # NodePorts are not subject to loadBalancerSourceRanges (upstream cannot change that).
        if cat.has_any:
            el.append(Element(SERVICE_NODEPORTS, (proto, node_port), f"goto {external_chain}"))
        if not has_external:
            el.append(Element(NO_ENDPOINT_NODEPORTS, (proto, node_port), external_verdict, comment))

    if has_internal:
        # Masquerade off-cluster traffic to the ClusterIP (it may bounce to another node).
        # The chain is only reached through this port's service-ips element, so the newer
        # layout matches the address alone.
        if opts.masquerade_all:
            out.chain(internal_chain).append(f"ip daddr {info.cluster_ip} jump {MARK_MASQ}")
        elif opts.cluster_cidr:
            out.chain(internal_chain).append(
                f"ip daddr {info.cluster_ip} ip saddr != {opts.cluster_cidr} jump {MARK_MASQ}"
            )

    if uses_external_chain:
        rules = out.chain(external_chain)
        if not info.external_policy_local:
            rules.append(f"jump {MARK_MASQ}")  # non-local endpoints: masquerade
        else:
            if opts.cluster_cidr:
                # Pods reaching an external address are treated as if they had gone out to
                # the load balancer and come back: every endpoint, unmasqueraded.
                rules.append(
                    f"ip saddr {opts.cluster_cidr} goto {cluster_chain} "
                    'comment "short-circuit pod traffic"'
                )
            rules.append(
                f'fib saddr type local jump {MARK_MASQ} comment "masquerade local traffic"'
            )
            rules.append(
                f'fib saddr type local goto {cluster_chain} comment "short-circuit local traffic"'
            )
        if has_external:
            rules.append(f"goto {external_policy_chain}")

    if uses_fw_chain:
        sources = [_cidr(c) for c in info.load_balancer_source_ranges]
        allow_from_node = any(_contains(c, opts.node_ip) for c in sources)
        if allow_from_node:
            # A node reaching a VIP-like LB IP loops back with the LB IP as source.
            sources += list(info.load_balancer_vips)
        rules = out.chain(fw_chain)
        if layout == "fast":
            rules.extend(f"ip saddr {s} return" for s in sources)
            rules.append("drop")
        else:
            rules.append(f"ip saddr != {{ {' , '.join(sources)} }} drop")

    if affinity:
        for ep in cat.all_reachable:
            out.affinity_sets[ep_affinity(ep)] = info.sticky_max_age_seconds

    if uses_cluster_chain:
        _to_endpoints(
            out.chain(cluster_chain), cat.cluster, affinity, layout, ep_chain, ep_affinity
        )
    if uses_local_chain:
        _to_endpoints(out.chain(local_chain), cat.local, affinity, layout, ep_chain, ep_affinity)

    for ep in cat.all_reachable:
        rules = out.chain(ep_chain(ep))
        rules.append(f"ip saddr {ep.ip} jump {MARK_MASQ}")  # hairpin: a pod reaching itself
        if affinity:
            rules.append(f"update @{ep_affinity(ep)} {{ ip saddr }}")
        rules.append(f"meta l4proto {proto} dnat to {ep}")
    return out


def _to_endpoints(
    rules: list[str],
    endpoints: tuple[EndpointInfo, ...],
    affinity: bool,
    layout: str,
    ep_chain: Callable[[EndpointInfo], str],
    ep_affinity: Callable[[EndpointInfo], str],
) -> None:
    """writeServiceToEndpointRules: affinity look-ups first, then the random choice."""
    if affinity:
        rules.extend(f"ip saddr @{ep_affinity(ep)} goto {ep_chain(ep)}" for ep in endpoints)
    n = len(endpoints)
    if layout == "fast":
        # Uniform cascade (see the module docstring); no anonymous map in the kernel.
        for i, ep in enumerate(endpoints):
            cond = f"numgen random mod {n - i} == 0 " if i < n - 1 else ""
            rules.append(f"{cond}goto {ep_chain(ep)}")
        return
    entries = " , ".join(f"{i} : goto {ep_chain(ep)}" for i, ep in enumerate(endpoints))
    rules.append(f"numgen random mod {n} vmap {{ {entries} }}")


def _contains(cidr: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def service_objects(ruleset: Ruleset, namespace: str, name: str) -> list[ServiceObjects]:
    """The objects of every port of one Service."""
    return [s for s in ruleset.services if (s.namespace, s.name) == (namespace, name)]


def chain_names(objs: Iterable[ServiceObjects]) -> set[str]:
    return {c for s in objs for c in s.chains} | {a for s in objs for a in s.affinity_sets}


# Reading the kernel's side back (pure text functions, as iptables' chains_in_save/filter_save).

_TABLE_HEADER = re.compile(r"^table (\S+) (\S+) \{$")
_OBJECT_HEADER = re.compile(r"^\t(chain|set|map) (\S+) \{$")


def parse_existing(chains_text: str, sets_text: str = "") -> Existing:
    """The chains and sets of ``ip kube-proxy`` in ``nft -t list chains`` / ``list sets`` output
    (what knftables' ``List(ctx, "chains")`` / ``List(ctx, "sets")`` return upstream)."""

    def names(text: str, kinds: tuple[str, ...]) -> frozenset[str]:
        found: set[str] = set()
        ours = False
        for line in text.splitlines():
            head = _TABLE_HEADER.match(line)
            if head:
                ours = (head.group(1), head.group(2)) == (FAMILY, TABLE)
                continue
            obj = _OBJECT_HEADER.match(line)
            if ours and obj and obj.group(1) in kinds:
                found.add(obj.group(2))
        return frozenset(found)

    return Existing(names(chains_text, ("chain",)), names(sets_text, ("set", "map")))


def service_object_pattern(namespace: str, name: str) -> re.Pattern[str]:
    """Names of one Service's chains and affinity sets: ``<prefix>HASH8-ns/name/...``."""
    prefixes = "|".join(
        re.escape(p)
        for p in (
            SERVICE_PREFIX,
            LOCAL_PREFIX,
            EXTERNAL_PREFIX,
            FIREWALL_PREFIX,
            ENDPOINT_PREFIX,
            AFFINITY_PREFIX,
        )
    )
    return re.compile(rf"^(?:{prefixes})[A-Z2-7]{{8}}-{re.escape(namespace)}/{re.escape(name)}/")


def _split_elements(body: str) -> list[str]:
    """Split an ``elements = { ... }`` body on the commas between elements (not in quotes)."""
    items: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in body:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        items.append("".join(cur).strip())
    return items


def filter_listing(text: str, namespace: str, name: str, cluster_ips: Iterable[str] = ()) -> str:
    """Keep from ``nft list table ip kube-proxy`` only one Service: its chains and affinity sets,
    and the set/map elements that mention it (by chain, by comment, or its ClusterIP)."""
    own = service_object_pattern(namespace, name)
    chain_ref = re.compile(
        r"(?:goto|jump) ((?:service|local|external|firewall|endpoint)-\S+?)(?:,|\s|$)"
    )
    comments = (f'comment "{namespace}/{name}"', f'comment "{namespace}/{name}:')
    ips = set(cluster_ips)
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        obj = _OBJECT_HEADER.match(line)
        if not obj:
            if line.startswith("table ") or line == "}":
                out.append(line)
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end] != "\t}":
            end += 1
        block = lines[i : end + 1]
        i = end + 1
        if own.match(obj.group(2)):
            out.extend(block)
            continue
        if obj.group(1) == "chain":
            continue
        # A named set or map: keep the elements that belong to this Service.
        joined = "\n".join(block)
        start = joined.find("elements = {")
        if start < 0:
            continue
        stop = joined.find("}", start)
        kept = []
        for item in _split_elements(joined[start + len("elements = {") : stop]):
            ref = chain_ref.search(item)
            if (ref and own.match(ref.group(1))) or any(c in item for c in comments) or item in ips:
                kept.append(item)
        if not kept:
            continue
        head = [ln for ln in block[1:] if ln.startswith("\t\t") and "elements = {" not in ln]
        head = [
            ln for ln in head if ln.strip().startswith(("type ", "flags ", "comment ", "timeout "))
        ]
        out.append(block[0])
        out.extend(head)
        out.append("\t\telements = { " + ",\n\t\t\t     ".join(kept) + " }")
        out.append("\t}")
    return "\n".join(out) + "\n"
