"""setupNFTables: the fixed part of kube-proxy's nftables table, written on every full sync.

This follows kubernetes/kubernetes ``pkg/proxy/nftables/proxier.go`` (v1.33) ``setupNFTables``
and its ``nftablesBaseChains`` / ``nftablesJumpChains``, in the newer layout with the pre-DNAT
filter chains at priority -110, call for call and with upstream's word grouping (kept out of
``ruff format``). The per-Service part is :mod:`netlab.proxy.nftables.render`.
"""

from __future__ import annotations

import ipaddress

from netlab.proxy.nftables.objects import (
    ADDR_PROTO_PORT,
    CLUSTER_IPS,
    CLUSTER_IPS_CHECK,
    FILTER_FORWARD,
    FILTER_INPUT,
    FILTER_OUTPUT,
    FILTER_OUTPUT_PRE_DNAT,
    FILTER_PREROUTING_PRE_DNAT,
    FIREWALL_CHECK,
    FIREWALL_IPS,
    MARK_MASQ,
    MASQUERADING,
    NAT_OUTPUT,
    NAT_POSTROUTING,
    NAT_PREROUTING,
    NO_ENDPOINT_NODEPORTS,
    NO_ENDPOINT_SERVICES,
    NODEPORT_ENDPOINTS_CHECK,
    NODEPORT_IPS,
    PROTO_PORT,
    REJECT_CHAIN,
    SERVICE_ENDPOINTS_CHECK,
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    SERVICES,
    Element,
    Transaction,
)

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


# fmt: off
def setup(
    out: list[str],
    *,
    first: bool,
    masquerade_mark: str,
    service_cidr: str,
    nodeport_ips: tuple[str, ...],
) -> None:
    """setupNFTables: the table, base chains, jump rules, fixed chains, sets and maps."""
    tx = Transaction(out)
    ip_x, ipv_x_addr = "ip", "ipv4_addr"
    no_localhost = "ip daddr != 127.0.0.0/8"
    mark = masquerade_mark

    tx.add_table(comment="rules for kube-proxy")

    # Do an extra "add+delete" once to ensure all previous base chains in the table
    # will be recreated. Otherwise, altering properties (e.g. priority) of these
    # chains would fail the transaction.
    if first:
        for name, _, _, _ in BASE_CHAINS:
            tx.add_chain(name)
            tx.delete("chain", name)

    # Create and flush base chains
    for name, chain_type, hook, priority in BASE_CHAINS:
        tx.add_chain(name, base=(chain_type, hook, priority))
        tx.flush("chain", name)

    # Create and flush ordinary chains and add rules jumping to them
    created_chains: set[str] = set()

    def ensure_chain(chain: str, comment: str | None = None) -> None:
        """ensureChain: add and flush a chain, once per transaction."""
        if chain in created_chains:
            return
        created_chains.add(chain)
        tx.add_chain(chain, comment=comment)
        tx.flush("chain", chain)

    for dst_chain, src_chain, extra_args in JUMP_CHAINS:
        ensure_chain(dst_chain)
        tx.add_rule(
            src_chain,
            extra_args,
            "jump", dst_chain)

    # Ensure all of our other "top-level" chains exist
    for chain in (SERVICES, CLUSTER_IPS_CHECK, MASQUERADING, MARK_MASQ):
        ensure_chain(chain)

    # Add the rules in the mark-for-masquerade and masquerading chains
    tx.add_rule(
        MARK_MASQ,
        "mark", "set", "mark", "or", mark)

    tx.add_rule(
        MASQUERADING,
        "mark", "and", mark, "==", "0",
        "return")
    tx.add_rule(
        MASQUERADING,
        "mark", "set", "mark", "xor", mark)
    tx.add_rule(MASQUERADING, "masquerade fully-random")

    # add cluster-ips set.
    tx.add_set(CLUSTER_IPS, ipv_x_addr, comment="Active ClusterIPs")

    # reject traffic to invalid ports of ClusterIPs.
    tx.add_rule(
        CLUSTER_IPS_CHECK,
        ip_x, "daddr", "@", CLUSTER_IPS, "reject",
        comment="Reject traffic to invalid ports of ClusterIPs")

    # drop traffic to unallocated ClusterIPs.
    if service_cidr:
        tx.add_rule(
            CLUSTER_IPS_CHECK,
            ip_x, "daddr", "{", service_cidr, "}",
            "drop",
            comment="Drop traffic to unallocated ClusterIPs")

    # Fill in nodeport-ips set if needed (or delete it if not). ("add+delete" because a plain
    # "delete" fails if the set does not exist.)
    tx.add_set(NODEPORT_IPS, ipv_x_addr, comment="IPs that accept NodePort traffic")
    if not nodeport_ips:  # nodePortAddresses.MatchAll()
        tx.delete("set", NODEPORT_IPS)
    else:
        tx.flush("set", NODEPORT_IPS)
        for ip in nodeport_ips:
            if ipaddress.ip_address(ip).is_loopback:
                continue  # localhost NodePorts are not supported in nftables mode
            tx.element("add", Element(NODEPORT_IPS, (ip,)))

    # Set up "no endpoints" drop/reject handling
    tx.add_map(NO_ENDPOINT_SERVICES, f"{ADDR_PROTO_PORT} : verdict",
               comment="vmap to drop or reject packets to services with no endpoints")
    tx.add_map(NO_ENDPOINT_NODEPORTS, f"{PROTO_PORT} : verdict",
               comment="vmap to drop or reject packets to service nodeports with no endpoints")

    ensure_chain(REJECT_CHAIN, comment="helper for @no-endpoint-services / @no-endpoint-nodeports")
    tx.add_rule(REJECT_CHAIN, "reject")

    tx.add_rule(
        SERVICE_ENDPOINTS_CHECK,
        ip_x, "daddr", ".", "meta l4proto", ".", "th dport",
        "vmap", "@", NO_ENDPOINT_SERVICES)

    if not nodeport_ips:
        tx.add_rule(
            NODEPORT_ENDPOINTS_CHECK,
            no_localhost,
            "meta l4proto . th dport",
            "vmap", "@", NO_ENDPOINT_NODEPORTS)
    else:
        tx.add_rule(
            NODEPORT_ENDPOINTS_CHECK,
            ip_x, "daddr", "@", NODEPORT_IPS,
            "meta l4proto . th dport",
            "vmap", "@", NO_ENDPOINT_NODEPORTS)

    # Set up LoadBalancerSourceRanges firewalling
    tx.add_map(FIREWALL_IPS, f"{ADDR_PROTO_PORT} : verdict",
               comment="destinations that are subject to LoadBalancerSourceRanges")

    ensure_chain(FIREWALL_CHECK)
    tx.add_rule(
        FIREWALL_CHECK,
        ip_x, "daddr", ".", "meta l4proto", ".", "th dport",
        "vmap", "@", FIREWALL_IPS)

    # Set up service dispatch
    tx.add_map(SERVICE_IPS, f"{ADDR_PROTO_PORT} : verdict",
               comment="ClusterIP, ExternalIP and LoadBalancer IP traffic")
    tx.add_map(SERVICE_NODEPORTS, f"{PROTO_PORT} : verdict", comment="NodePort traffic")
    tx.add_rule(
        SERVICES,
        ip_x, "daddr", ".", "meta l4proto", ".", "th dport",
        "vmap", "@", SERVICE_IPS)
    if not nodeport_ips:
        tx.add_rule(
            SERVICES,
            "fib daddr type local",
            no_localhost,
            "meta l4proto . th dport",
            "vmap", "@", SERVICE_NODEPORTS)
    else:
        tx.add_rule(
            SERVICES,
            ip_x, "daddr @nodeport-ips",
            "meta l4proto . th dport",
            "vmap", "@", SERVICE_NODEPORTS)

    # read or flush containers (nftElementStorage.readOrReset: netlab flushes and refills them)
    for kind, name in OWNED_CONTAINERS:
        tx.flush(kind, name)
# fmt: on
