"""nftables mode: render kube-proxy's ``nft -f`` transaction for one node (pure text).

This follows kubernetes/kubernetes ``pkg/proxy/nftables/proxier.go`` (``setupNFTables``,
``syncProxyRules``, ``writeServiceToEndpointRules``; v1.33) in the newer layout with pre-DNAT
filter chains that the proxier_test.go ported in tests/unit pins: one table
``ip kube-proxy``; base chains ``${type}-${hook}`` with the pre-DNAT filter chains at priority
-110; dispatch through the verdict maps ``service-ips`` / ``service-nodeports``; the
``no-endpoint-*`` maps checked from the filter hooks; per Service port the chains
``service-`` / ``local-`` / ``external-`` / ``firewall-`` + hashAndTruncate(name) and per endpoint
``endpoint-`` chains and ``affinity-`` sets, with the same rule text kube-proxy writes (knftables'
syntax), so ``nft list table ip kube-proxy`` in a lab node reads like one on a real node.

Each object and rule is one call shaped like upstream's ``tx.Add(&knftables.Rule{Chain: ...,
Rule: knftables.Concat(...), Comment: ...})``, with upstream's word grouping (those blocks are
kept out of ``ruff format``), so the code reads beside proxier.go rule for rule. This module is
syncProxyRules' per-Service part and the sync as a whole; setupNFTables (the fixed objects) is
:mod:`.setup`, the table's names and knftables' text :mod:`.objects`, and reading the kernel's
table back :mod:`.listing`.

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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from netlab.proxy import naming
from netlab.proxy.nftables.listing import Existing, filter_listing, parse_existing
from netlab.proxy.nftables.objects import (
    AFFINITY_PREFIX,
    CLUSTER_IPS,
    ENDPOINT_PREFIX,
    EXTERNAL_PREFIX,
    FAMILY,
    FIREWALL_IPS,
    FIREWALL_PREFIX,
    LOCAL_PREFIX,
    MARK_MASQ,
    NO_ENDPOINT_NODEPORTS,
    NO_ENDPOINT_SERVICES,
    REJECT_CHAIN,
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    SERVICE_PREFIX,
    TABLE,
    Element,
    Transaction,
    Words,
    concat,
    rule_text,
)
from netlab.proxy.nftables.setup import setup
from netlab.proxy.servicemap import (
    EndpointInfo,
    ProxiedService,
    ServicePortInfo,
    policy_reach,
)

# What callers import from here; the table's names, its fixed part and the reading back of the
# kernel's listing live in .objects, .setup and .listing.
__all__ = [
    "FAMILY",
    "LAYOUTS",
    "TABLE",
    "Element",
    "Existing",
    "NftablesOptions",
    "Ruleset",
    "ServiceObjects",
    "build",
    "chain_names",
    "concat",
    "delete_stale",
    "endpoint_chain_base",
    "filter_listing",
    "is_affinity_set",
    "is_service_chain",
    "parse_existing",
    "render",
    "render_service",
    "service_chain_base",
    "service_objects",
    "write_services",
]

LAYOUTS = ("kube-proxy", "fast")


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

    def add_rule(self, chain: str, *words: Words, comment: str | None = None) -> None:
        """tx.Add(&knftables.Rule{...}) into one of this Service port's (ensured) chains."""
        self.chains[chain].append(rule_text(*words, comment=comment))

    def ensure_elem(self, element: Element) -> None:
        """nftElementStorage.ensureElem: this element belongs in its set or map."""
        self.elements.append(element)


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
        setup(
            out,
            first=first,
            masquerade_mark=self.opts.masquerade_mark,
            service_cidr=self.opts.service_cidr,
            nodeport_ips=self.opts.nodeport_ips,
        )
        write_services(self.services, out)
        tx = Transaction(out)
        for e in self.elements().values():
            tx.element("add", e)
        if existing is not None:
            active, sticky = self.service_chains(), self.affinity_sets()
            delete_stale(
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
        write_services(changed, out)
        tx = Transaction(out)
        old_el, new_el = previous.elements(), self.elements()
        for k, e in old_el.items():
            if new_el.get(k) != e:
                tx.element("delete", replace(e, value="", comment=""))
        for k, e in new_el.items():
            if old_el.get(k) != e:
                tx.element("add", e)
        delete_stale(
            sorted(previous.service_chains() - self.service_chains()),
            sorted(previous.affinity_sets() - self.affinity_sets()),
            out,
        )
        return "\n".join(out) + ("\n" if out else "")


def write_services(services: Iterable[ServiceObjects], out: list[str]) -> None:
    """Chains first (added and flushed), then affinity sets, then rules, so every jump target
    and set exists when a rule names it."""
    tx = Transaction(out)
    services = list(services)
    for svc in services:
        for chain in svc.chains:
            tx.add_chain(chain)
            tx.flush("chain", chain)
    for svc in services:
        for aset, timeout in svc.affinity_sets.items():
            # dynamic: created without it, a set gets it later and re-adding it then fails.
            tx.add_set(aset, "ipv4_addr", flags="dynamic,timeout", timeout=timeout)
    for svc in services:
        for chain, rules in svc.chains.items():
            for rule in rules:
                tx.add_rule(chain, rule)


def delete_stale(chains: list[str], sets: list[str], out: list[str]) -> None:
    tx = Transaction(out)
    # Flush them all first: stale chains may jump to each other or update stale sets.
    for c in chains:
        tx.flush("chain", c)
    for c in chains:
        tx.delete("chain", c)
    for aset in sets:
        tx.delete("set", aset)


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
    return Ruleset(opts, layout, [render_service(svc, opts, layout) for svc in services])


def service_chain_base(info: ServicePortInfo) -> str:
    """servicePortChainNameBase: ``HASH-ns/svc/proto/port``."""
    return naming.hash_and_truncate(naming.nft_service_name(info.spn))


def endpoint_chain_base(info: ServicePortInfo, ep: EndpointInfo) -> str:
    """servicePortEndpointChainNameBase: ``HASH-ns/svc/proto/port__ip/port``."""
    return naming.hash_and_truncate(naming.nft_endpoint_name(info.spn, ep.ip, ep.port))


def _cidr(text: str) -> str:
    """LoadBalancerSourceRanges are parsed (and so normalised) before use, as upstream does."""
    return str(ipaddress.ip_network(text.strip(), strict=False))


# fmt: off
def render_service(svc: ProxiedService, opts: NftablesOptions, layout: str) -> ServiceObjects:
    """syncProxyRules: the body of the loop "Build rules for each service-port"."""
    info = svc.info
    protocol = info.protocol
    svc_port_name_string = str(info.spn)
    ip_x = "ip"
    # This Service port's share of the transaction (its chains, rules, sets and elements).
    tx = ServiceObjects(info.spn.namespace, info.spn.name, naming.nft_service_name(info.spn))
    affinity = info.session_affinity_client_ip

    chain_name_base = service_chain_base(info)
    cluster_policy_chain = SERVICE_PREFIX + chain_name_base
    local_policy_chain = LOCAL_PREFIX + chain_name_base
    # externalTrafficChain eventually jumps to externalPolicyChain
    external_traffic_chain = EXTERNAL_PREFIX + chain_name_base
    fw_chain = FIREWALL_PREFIX + chain_name_base

    def ep_chain(ep: EndpointInfo) -> str:  # endpointInfo.chainName
        return ENDPOINT_PREFIX + endpoint_chain_base(info, ep)

    def ep_affinity(ep: EndpointInfo) -> str:  # endpointInfo.affinitySetName
        return AFFINITY_PREFIX + endpoint_chain_base(info, ep)

    # Figure out the endpoints for Cluster and Local traffic policy.
    cat = svc.categorize()
    has_endpoints = cat.has_any

    # Note the endpoint chains that will be used
    for ep in cat.all_reachable:
        tx.chain(ep_chain(ep))

    # clusterPolicyChain contains the endpoints used with "Cluster" traffic policy
    uses_cluster_policy_chain = bool(cat.cluster) and info.uses_cluster_endpoints
    if uses_cluster_policy_chain:
        tx.chain(cluster_policy_chain)

    # localPolicyChain contains the endpoints used with "Local" traffic policy
    uses_local_policy_chain = bool(cat.local) and info.uses_local_endpoints
    if uses_local_policy_chain:
        tx.chain(local_policy_chain)

    reach = policy_reach(info, cat)
    has_internal_endpoints, has_external_endpoints = reach.has_internal, reach.has_external
    internal_traffic_chain = local_policy_chain if reach.internal_local else cluster_policy_chain
    external_policy_chain = local_policy_chain if reach.external_local else cluster_policy_chain

    # usesExternalTrafficChain is based on hasEndpoints, not hasExternalEndpoints,
    # because we need the local-traffic-short-circuiting rules even when there
    # are no externally-usable endpoints.
    uses_external_traffic_chain = has_endpoints and info.externally_accessible
    if uses_external_traffic_chain:
        tx.chain(external_traffic_chain)

    internal_traffic_filter_verdict = external_traffic_filter_verdict = ""
    if not has_endpoints:
        # The service has no endpoints at all: reject its IPs.
        internal_traffic_filter_verdict = f"goto {REJECT_CHAIN}"
        external_traffic_filter_verdict = f"goto {REJECT_CHAIN}"
    else:
        if not has_internal_endpoints:
            # internalTrafficPolicy "Local" without local endpoints: drop ClusterIP traffic.
            internal_traffic_filter_verdict = "drop"
        if not has_external_endpoints:
            # externalTrafficPolicy "Local" without local endpoints: drop outside traffic.
            external_traffic_filter_verdict = "drop"

    port = str(info.port)

    # Capture the clusterIP.
    tx.ensure_elem(Element(CLUSTER_IPS, key=(info.cluster_ip,)))
    if has_internal_endpoints:
        tx.ensure_elem(Element(
            SERVICE_IPS,
            key=(info.cluster_ip, protocol, port),
            value=f"goto {internal_traffic_chain}"))
    else:
        # No endpoints.
        tx.ensure_elem(Element(
            NO_ENDPOINT_SERVICES,
            key=(info.cluster_ip, protocol, port),
            value=internal_traffic_filter_verdict,
            comment=svc_port_name_string))

    # Capture externalIPs.
    for external_ip in info.external_ips:
        if has_endpoints:
            # Send traffic bound for external IPs to the "external destinations" chain.
            tx.ensure_elem(Element(
                SERVICE_IPS,
                key=(external_ip, protocol, port),
                value=f"goto {external_traffic_chain}"))
        if not has_external_endpoints:
            # No endpoints at all (REJECT), or none for external traffic (DROP what the
            # EXT chain did not short-circuit).
            tx.ensure_elem(Element(
                NO_ENDPOINT_SERVICES,
                key=(external_ip, protocol, port),
                value=external_traffic_filter_verdict,
                comment=svc_port_name_string))

    uses_fw_chain = bool(info.load_balancer_vips) and bool(info.load_balancer_source_ranges)
    if uses_fw_chain:
        tx.chain(fw_chain)

    # Capture load-balancer ingress.
    for lbip in info.load_balancer_vips:
        if has_endpoints:
            tx.ensure_elem(Element(
                SERVICE_IPS,
                key=(lbip, protocol, port),
                value=f"goto {external_traffic_chain}"))

        if uses_fw_chain:
            tx.ensure_elem(Element(
                FIREWALL_IPS,
                key=(lbip, protocol, port),
                value=f"goto {fw_chain}"))
    if not has_external_endpoints:
        # No endpoints at all (REJECT), or none for external traffic (DROP what the EXT
        # chain did not short-circuit).
        for lbip in info.load_balancer_vips:
            tx.ensure_elem(Element(
                NO_ENDPOINT_SERVICES,
                key=(lbip, protocol, port),
                value=external_traffic_filter_verdict,
                comment=svc_port_name_string))

    # Capture nodeports.
    if info.node_port != 0:
        if has_endpoints:
            # Jump to the external destination chain (NodePorts are not subject to
            # loadBalancerSourceRanges).
            tx.ensure_elem(Element(
                SERVICE_NODEPORTS,
                key=(protocol, str(info.node_port)),
                value=f"goto {external_traffic_chain}"))
        if not has_external_endpoints:
            # No endpoints at all (REJECT), or none for external traffic (DROP what the
            # EXT chain did not short-circuit).
            tx.ensure_elem(Element(
                NO_ENDPOINT_NODEPORTS,
                key=(protocol, str(info.node_port)),
                value=external_traffic_filter_verdict,
                comment=svc_port_name_string))

    # Set up internal traffic handling. (The newer layout matches the ClusterIP alone: the
    # chain is only reached through this port's service-ips element.)
    if has_internal_endpoints:
        if opts.masquerade_all:
            tx.add_rule(
                internal_traffic_chain,
                ip_x, "daddr", info.cluster_ip,
                "jump", MARK_MASQ)
        elif opts.cluster_cidr:  # localDetector.IsImplemented()
            # Masquerade off-cluster traffic to a service VIP (a static route to any node
            # bridges into the Service, and that may bounce off-node).
            tx.add_rule(
                internal_traffic_chain,
                ip_x, "daddr", info.cluster_ip,
                f"ip saddr != {opts.cluster_cidr}",  # localDetector.IfNotLocalNFT()
                "jump", MARK_MASQ)

    # Set up external traffic handling: all captured traffic for external destinations
    # jumps to externalTrafficChain, which handles some special cases and then jumps to
    # externalPolicyChain.
    if uses_external_traffic_chain:
        if not info.external_policy_local:
            # Non-local endpoints: masquerade, in case we cross nodes.
            tx.add_rule(
                external_traffic_chain,
                "jump", MARK_MASQ)
        else:
            # Only same-node endpoints: the source IP is kept in most cases.

            if opts.cluster_cidr:  # localDetector.IsImplemented()
                # Pod -> external destination traffic is subject to neither policy, as if
                # it went out to the load balancer and came back.
                tx.add_rule(
                    external_traffic_chain,
                    f"ip saddr {opts.cluster_cidr}",  # localDetector.IfLocalNFT()
                    "goto", cluster_policy_chain,
                    comment="short-circuit pod traffic")

            # Traffic from the node itself still needs masquerade: the LB IP is a local
            # address, so it would be the chosen source IP.
            tx.add_rule(
                external_traffic_chain,
                "fib", "saddr", "type", "local",
                "jump", MARK_MASQ,
                comment="masquerade local traffic")

            # Send src-type=LOCAL -> external destination to the policy=cluster chain.
            tx.add_rule(
                external_traffic_chain,
                "fib", "saddr", "type", "local",
                "goto", cluster_policy_chain,
                comment="short-circuit local traffic")

        # Anything else falls thru to the appropriate policy chain.
        if has_external_endpoints:
            tx.add_rule(
                external_traffic_chain,
                "goto", external_policy_chain)

    if uses_fw_chain:
        sources: list[str] = []
        allow_from_node = False
        for cidr in (_cidr(c) for c in info.load_balancer_source_ranges):
            if sources:
                sources.append(",")
            sources.append(cidr)
            allow_from_node = allow_from_node or _contains(cidr, opts.node_ip)
        # A VIP-like LB's VIP is often a local address, so a request from the node loops
        # back with the VIP as source: allow it.
        if allow_from_node:
            for lbip in info.load_balancer_vips:
                sources += [",", lbip]
        if layout == "fast":
            # The same verdicts without the anonymous set (see the module docstring).
            for source in (s for s in sources if s != ","):
                tx.add_rule(fw_chain, ip_x, "saddr", source, "return")
            tx.add_rule(fw_chain, "drop")
        else:
            tx.add_rule(
                fw_chain,
                ip_x, "saddr", "!=", "{", sources, "}",
                "drop")

    if affinity:
        # Generate the per-endpoint affinity sets
        for ep in cat.all_reachable:
            tx.affinity_sets[ep_affinity(ep)] = info.sticky_max_age_seconds

    # If Cluster policy is in use, create rules jumping from clusterPolicyChain to the
    # clusterEndpoints
    if uses_cluster_policy_chain:
        _write_service_to_endpoint_rules(
            tx, cluster_policy_chain, cat.cluster, affinity, layout, ep_chain, ep_affinity)

    # If Local policy is in use, create rules jumping from localPolicyChain to the
    # localEndpoints
    if uses_local_policy_chain:
        _write_service_to_endpoint_rules(
            tx, local_policy_chain, cat.local, affinity, layout, ep_chain, ep_affinity)

    # Generate the per-endpoint chains
    for ep in cat.all_reachable:
        endpoint_chain = ep_chain(ep)

        # Handle traffic that loops back to the originator with SNAT.
        tx.add_rule(
            endpoint_chain,
            ip_x, "saddr", ep.ip,
            "jump", MARK_MASQ)

        # Handle session affinity
        if affinity:
            tx.add_rule(
                endpoint_chain,
                "update", "@", ep_affinity(ep),
                "{", ip_x, "saddr", "}")

        # DNAT to final destination.
        tx.add_rule(
            endpoint_chain,
            "meta l4proto", protocol,
            "dnat to", str(ep))
    return tx


def _write_service_to_endpoint_rules(
    tx: ServiceObjects,
    svc_chain: str,
    endpoints: tuple[EndpointInfo, ...],
    affinity: bool,
    layout: str,
    ep_chain: Callable[[EndpointInfo], str],
    ep_affinity: Callable[[EndpointInfo], str],
) -> None:
    """writeServiceToEndpointRules: affinity look-ups first, then the random choice."""
    # First write session affinity rules, if applicable.
    if affinity:
        for ep in endpoints:
            tx.add_rule(
                svc_chain,
                "ip", "saddr", "@", ep_affinity(ep),
                "goto", ep_chain(ep))

    if layout == "fast":
        # Uniform cascade (see the module docstring); no anonymous map in the kernel.
        n = len(endpoints)
        for i, ep in enumerate(endpoints):
            cond = ["numgen random mod", str(n - i), "==", "0"] if i < n - 1 else []
            tx.add_rule(svc_chain, cond, "goto", ep_chain(ep))
        return

    # Now write loadbalancing rule
    elements: list[str] = []
    for i, ep in enumerate(endpoints):
        elements += [str(i), ":", "goto", ep_chain(ep)]
        if i != len(endpoints) - 1:
            elements.append(",")
    tx.add_rule(
        svc_chain,
        "numgen random mod", len(endpoints), "vmap",
        "{", elements, "}")
# fmt: on


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
