"""IPVS mode's companion iptables rules: the chains, the jumps to them, and the rules that match
the ipsets.

This follows kubernetes/kubernetes ``pkg/proxy/ipvs/proxier.go`` (v1.33): ``iptablesChains``,
``iptablesJumpChain``, ``ipsetWithIptablesChain``, ``createAndLinkKubeChain``,
``writeIptablesRules`` and ``acceptIPVSTraffic``, each rule one call with upstream's flag/value
grouping (those blocks are kept out of ``ruff format``), in upstream's order. What the sets hold
is decided by :mod:`netlab.proxy.ipvs.render`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from netlab.proxy.iptables.render import LineBuffer
from netlab.proxy.iptables.restore import make_chain_line
from netlab.proxy.ipvs.ipset import (
    BITMAP_PORT,
    CLUSTER_IP,
    EXTERNAL_IP,
    EXTERNAL_IP_LOCAL,
    HEALTH_CHECK_NODE_PORT,
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
)

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


# fmt: off
def write_iptables_rules(
    ipset_list: Mapping[str, IpSet],
    lb_no_node_access: Sequence[tuple[str, str, int]],
    *,
    masquerade_all: bool,
    cluster_cidr: str,
    masquerade_mark: str,
    random_fully: bool,
) -> tuple[list[str], list[str]]:
    """writeIptablesRules, rule for rule and in its order: (nat rules, filter rules).

    ``lb_no_node_access`` is lbNoNodeAccessIPPortProtocolEntries: (LB IP, protocol, port).
    """
    nat_rules, filter_rules = LineBuffer(), LineBuffer()
    mark = masquerade_mark

    # Dismiss connects to localhost early in the service chain
    nat_rules.write("-A", KUBE_SERVICES, "-s", "127.0.0.0/8", "-j", "RETURN")

    for name, table, from_chain, to, match_type, protocol_match in IPSET_WITH_IPTABLES_CHAIN:
        if not ipset_list[name].is_empty():
            args = ["-A", from_chain]
            if protocol_match != "":
                args += ["-p", protocol_match]
            args += [
                "-m", "comment", "--comment", ipset_list[name].get_comment(),
                "-m", "set", "--match-set", ipset_list[name].name,
                match_type,
            ]
            if table == "filter":
                filter_rules.write(args, "-j", to)
            else:
                nat_rules.write(args, "-j", to)

    if not ipset_list[CLUSTER_IP].is_empty():
        args = [
            "-A", KUBE_SERVICES,
            "-m", "comment", "--comment", ipset_list[CLUSTER_IP].get_comment(),
            "-m", "set", "--match-set", ipset_list[CLUSTER_IP].name,
        ]
        if masquerade_all:
            nat_rules.write(
                args, "dst,dst",
                "-j", KUBE_MARK_MASQ)
        else:
            # localDetector.IsImplemented() (always: netlab detects local traffic by CIDR).
            # Masquerade off-cluster traffic to a service VIP (a static route to any node
            # bridges into the Service, and that may bounce off-node).
            nat_rules.write(
                args, "dst,dst",
                "!", "-s", cluster_cidr,
                "-j", KUBE_MARK_MASQ)

    def external_ip_rules(args: list[str]) -> None:
        """externalIPRules: accept traffic to Service ExternalIPs."""
        # Traffic that comes neither from a bridge (a container) nor from a local process:
        # roughly "all traffic from off-machine".
        external_traffic_only_args = [*args,
            "-m", "physdev", "!", "--physdev-is-in",
            "-m", "addrtype", "!", "--src-type", "LOCAL"]
        nat_rules.write(external_traffic_only_args, "-j", "ACCEPT")
        dst_local_only_args = [*args, "-m", "addrtype", "--dst-type", "LOCAL"]
        # Traffic to external IPs that are local addresses of this node stays local.
        nat_rules.write(dst_local_only_args, "-j", "ACCEPT")

    if not ipset_list[EXTERNAL_IP].is_empty():
        # Build masquerade rules for packets to external IPs.
        args = [
            "-A", KUBE_SERVICES,
            "-m", "comment", "--comment", ipset_list[EXTERNAL_IP].get_comment(),
            "-m", "set", "--match-set", ipset_list[EXTERNAL_IP].name,
            "dst,dst",
        ]
        nat_rules.write(args, "-j", KUBE_MARK_MASQ)
        external_ip_rules(args)

    if not ipset_list[EXTERNAL_IP_LOCAL].is_empty():
        args = [
            "-A", KUBE_SERVICES,
            "-m", "comment", "--comment", ipset_list[EXTERNAL_IP_LOCAL].get_comment(),
            "-m", "set", "--match-set", ipset_list[EXTERNAL_IP_LOCAL].name,
            "dst,dst",
        ]
        external_ip_rules(args)

    # -A KUBE-SERVICES  -m addrtype  --dst-type LOCAL -j KUBE-NODE-PORT
    args = [
        "-A", KUBE_SERVICES,
        "-m", "addrtype", "--dst-type", "LOCAL",
    ]
    nat_rules.write(args, "-j", KUBE_NODE_PORT)

    # mark for masquerading for KUBE-LOAD-BALANCER
    nat_rules.write(
        "-A", KUBE_LOAD_BALANCER,
        "-j", KUBE_MARK_MASQ,
    )

    # drop packets filtered by KUBE-SOURCE-RANGES-FIREWALL
    filter_rules.write(
        "-A", KUBE_SOURCE_RANGES_FIREWALL,
        "-j", "DROP",
    )

    # disable LB access from node (kubernetes#119656); for IPVS src and dst both are the LB IP
    for ip, protocol, port in lb_no_node_access:
        filter_rules.write(
            "-A", KUBE_IPVS_OUT_FILTER,
            "-s", ip,
            "-m", "ipvs", "--vaddr", ip, "--vproto", protocol, "--vport", str(port),
            "-j", "DROP",
        )

    # Accept all traffic with destination of ipvs virtual service; must be the last rules of
    # KUBE-SERVICES.
    accept_ipvs_traffic(nat_rules, ipset_list)

    # Forward marked traffic, so NodePorts work even if the FORWARD policy is not ACCEPT.
    filter_rules.write(
        "-A", KUBE_FORWARD,
        "-m", "comment", "--comment", '"kubernetes forwarding rules"',
        "-m", "mark", "--mark", f"{mark}/{mark}",
        "-j", "ACCEPT",
    )

    # Accept the rest of a connection whose first packet the rule above accepted.
    filter_rules.write(
        "-A", KUBE_FORWARD,
        "-m", "comment", "--comment", '"kubernetes forwarding conntrack rule"',
        "-m", "conntrack",
        "--ctstate", "RELATED,ESTABLISHED",
        "-j", "ACCEPT",
    )

    # Add rule to accept traffic towards health check node port
    filter_rules.write(
        "-A", KUBE_NODE_PORT,
        "-m", "comment", "--comment", ipset_list[HEALTH_CHECK_NODE_PORT].get_comment(),
        "-m", "set", "--match-set", ipset_list[HEALTH_CHECK_NODE_PORT].name, "dst",
        "-j", "ACCEPT",
    )

    # KUBE-IPVS-FILTER (kubernetes#72236): VIPs on kube-ipvs0 are local addresses, so without
    # these any host port would answer on them. Only the Service ports pass.
    filter_rules.write(
        "-A", KUBE_IPVS_FILTER,
        "-m", "set", "--match-set", ipset_list[LOAD_BALANCER].name, "dst,dst", "-j", "RETURN")
    filter_rules.write(
        "-A", KUBE_IPVS_FILTER,
        "-m", "set", "--match-set", ipset_list[CLUSTER_IP].name, "dst,dst", "-j", "RETURN")
    filter_rules.write(
        "-A", KUBE_IPVS_FILTER,
        "-m", "set", "--match-set", ipset_list[EXTERNAL_IP].name, "dst,dst", "-j", "RETURN")
    filter_rules.write(
        "-A", KUBE_IPVS_FILTER,
        "-m", "set", "--match-set", ipset_list[EXTERNAL_IP_LOCAL].name, "dst,dst", "-j", "RETURN")
    filter_rules.write(
        "-A", KUBE_IPVS_FILTER,
        "-m", "set", "--match-set", ipset_list[HEALTH_CHECK_NODE_PORT].name, "dst", "-j", "RETURN")
    filter_rules.write(
        "-A", KUBE_IPVS_FILTER,
        "-m", "conntrack", "--ctstate", "NEW",
        "-m", "set", "--match-set", ipset_list[IPVS_IPS].name, "dst", "-j", "REJECT")

    # Install the kubernetes-specific postrouting rules.
    nat_rules.write(
        "-A", KUBE_POSTROUTING,
        "-m", "mark", "!", "--mark", f"{mark}/{mark}",
        "-j", "RETURN",
    )
    # Clear the mark to avoid re-masquerading if the packet re-traverses the network stack.
    nat_rules.write(
        "-A", KUBE_POSTROUTING,
        # XOR proxier.masqueradeMark to unset it
        "-j", "MARK", "--xor-mark", mark,
    )
    masq_rule = [
        "-A", KUBE_POSTROUTING,
        "-m", "comment", "--comment", '"kubernetes service traffic requiring SNAT"',
        "-j", "MASQUERADE",
    ]
    if random_fully:  # iptables.HasRandomFully()
        masq_rule.append("--random-fully")
    nat_rules.write(masq_rule)

    # Install the kubernetes-specific masquerade mark rule.
    nat_rules.write(
        "-A", KUBE_MARK_MASQ,
        "-j", "MARK", "--or-mark", mark,
    )
    return nat_rules.lines, filter_rules.lines


def accept_ipvs_traffic(nat_rules: LineBuffer, ipset_list: Mapping[str, IpSet]) -> None:
    """acceptIPVSTraffic: accept what goes to a virtual server, whatever other rules say."""
    for name in (CLUSTER_IP, LOAD_BALANCER):
        if not ipset_list[name].is_empty():
            match_type = "dst" if ipset_list[name].type == BITMAP_PORT else "dst,dst"
            nat_rules.write(
                "-A", KUBE_SERVICES,
                "-m", "set", "--match-set", ipset_list[name].name, match_type,
                "-j", "ACCEPT",
            )
# fmt: on


def bootstrap() -> dict[str, tuple[str, ...]]:
    """createAndLinkKubeChain: the jumps from built-in chains, in EnsureRule(Prepend) order.

    Each is prepended, so on a fresh node they end up in reverse list order; ``-I CHAIN 1``
    lines applied in list order reproduce exactly that.
    """
    out: dict[str, list[str]] = {"nat": [], "filter": []}
    for table, from_chain, to, comment in JUMP_CHAINS:
        args = ["-m", "comment", "--comment", f'"{comment}"', "-j", to]
        out[table].append(" ".join(["-I", from_chain, "1", *args]))
    return {t: tuple(lines) for t, lines in out.items()}


def chain_lines(table: str) -> tuple[str, ...]:
    """createAndLinkKubeChain: the chain lines of ``table``'s iptablesChains."""
    return tuple(make_chain_line(c) for t, c in IPTABLES_CHAINS if t == table)
