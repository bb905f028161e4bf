"""iptables mode: render kube-proxy's ``iptables-restore`` input for one node (pure text).

This follows kubernetes/kubernetes ``pkg/proxy/iptables/proxier.go`` (v1.33), ``syncProxyRules``
rule for rule: the same chains, comments, match order, probabilities and masquerade mark, so
``iptables-save`` in a lab node reads like one on a real node. One difference is deliberate:
kube-proxy installs the jumps from the built-in chains (``-A PREROUTING ... -j KUBE-SERVICES``)
with separate ``iptables -I`` calls; netlab puts them, as ``-I <chain> 1`` lines, into the same
restore transaction on a node's first sync, so every sync is exactly one atomic
``iptables-restore``.

Reading it beside proxier.go: every rule is one ``write`` call with its flag/value pairs grouped
on lines exactly as upstream groups them (so those blocks are kept out of ``ruff format``), in
upstream's order, and each function names the upstream function or block it follows.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field

from netlab.proxy import naming
from netlab.proxy.iptables.restore import (
    LARGE_CLUSTER_ENDPOINTS_THRESHOLD,
    Frame,
    RenderedIptables,
    ServiceRules,
    make_chain_line,
)
from netlab.proxy.servicemap import (
    EndpointInfo,
    ProxiedService,
    ServicePortInfo,
    policy_reach,
    port_key,
)
from netlab.scenario.k8s import Service

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_PROXY_CANARY = "KUBE-PROXY-CANARY"
KUBE_FIREWALL = "KUBE-FIREWALL"  # kubelet's anti-martian chain, duplicated by kube-proxy

# iptablesJumpChains, in upstream order: (table, kube chain, built-in chain, comment, extra args).
_NEW = ("-m", "conntrack", "--ctstate", "NEW")
# fmt: off
JUMP_CHAINS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("filter", KUBE_EXTERNAL_SERVICES, "INPUT",
     "kubernetes externally-visible service portals", _NEW),
    ("filter", KUBE_EXTERNAL_SERVICES, "FORWARD",
     "kubernetes externally-visible service portals", _NEW),
    ("filter", KUBE_NODEPORTS, "INPUT", "kubernetes health check service ports", ()),
    ("filter", KUBE_SERVICES, "FORWARD", "kubernetes service portals", _NEW),
    ("filter", KUBE_SERVICES, "OUTPUT", "kubernetes service portals", _NEW),
    ("filter", KUBE_FORWARD, "FORWARD", "kubernetes forwarding rules", ()),
    ("filter", KUBE_PROXY_FIREWALL, "INPUT", "kubernetes load balancer firewall", _NEW),
    ("filter", KUBE_PROXY_FIREWALL, "OUTPUT", "kubernetes load balancer firewall", _NEW),
    ("filter", KUBE_PROXY_FIREWALL, "FORWARD", "kubernetes load balancer firewall", _NEW),
    ("nat", KUBE_SERVICES, "OUTPUT", "kubernetes service portals", ()),
    ("nat", KUBE_SERVICES, "PREROUTING", "kubernetes service portals", ()),
    ("nat", KUBE_POSTROUTING, "POSTROUTING", "kubernetes postrouting rules", ()),
    # iptablesKubeletJumpChains: no comment.
    ("filter", KUBE_FIREWALL, "INPUT", "", ()),
    ("filter", KUBE_FIREWALL, "OUTPUT", "", ()),
)
# fmt: on


@dataclass(frozen=True)
class IptablesOptions:
    node_ip: str
    cluster_cidr: str  # the local-traffic detector: DetectLocalByCIDR
    masquerade_all: bool = False
    masquerade_bit: int = 14
    localhost_nodeports: bool = True
    # nodePortAddresses.GetNodeIPs; None = MatchAll (every local address: addrtype LOCAL).
    nodeport_ips: tuple[str, ...] | None = None
    random_fully: bool = True
    conntrack_tcp_liberal: bool = False

    @property
    def masquerade_mark(self) -> str:
        """Go's ``fmt.Sprintf("%#08x", 1<<bit)``: eight zero-padded digits after "0x".

        kube-proxy writes ``0x00004000``; ``iptables-save`` prints it back as ``0x4000``.
        """
        return f"0x{1 << self.masquerade_bit:08x}"


def probability(n: int) -> str:
    """computeProbability: 1/n with ten decimals."""
    return f"{1.0 / n:0.10f}"


class LineBuffer:
    """proxyutil.LineBuffer: each ``write`` is one line, its words joined by spaces.

    As in Go, an argument may be a list of words (``natRules.Write(args, "-j", chain)``); it is
    spliced in. Empty words are dropped.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, *args: str | Sequence[str]) -> None:
        words: list[str] = []
        for arg in args:
            if isinstance(arg, str):
                words.append(arg)
            else:
                words.extend(arg)
        self.lines.append(" ".join(w for w in words if w != ""))


def _bootstrap(opts: IptablesOptions) -> dict[str, list[str]]:
    """syncProxyRules (full sync): the canary chains and the jumps from the built-in chains,
    which upstream ensures with EnsureChain and EnsureRule(Prepend) before the restore.

    Prepending each in list order leaves them in reverse order; ``-I CHAIN 1`` reproduces that.
    """
    tables: dict[str, list[str]] = {
        "mangle": [make_chain_line(KUBE_PROXY_CANARY)],
        "filter": [make_chain_line(KUBE_PROXY_CANARY)],
        "nat": [make_chain_line(KUBE_PROXY_CANARY)],
    }
    for table, chain, builtin, comment, extra in JUMP_CHAINS:
        if chain == KUBE_FIREWALL and not opts.localhost_nodeports:
            continue
        args = list(extra)
        if comment:
            args += ["-m", "comment", "--comment", f'"{comment}"']
        args += ["-j", chain]
        tables[table].append(" ".join(["-I", builtin, "1", *args]))
    return tables


@dataclass
class _Proxier:
    """The Proxier fields syncProxyRules reads and writes (its buffers and settings)."""

    opts: IptablesOptions
    large_cluster_mode: bool = False
    filter_chains: LineBuffer = field(default_factory=LineBuffer)
    filter_rules: LineBuffer = field(default_factory=LineBuffer)
    nat_chains: LineBuffer = field(default_factory=LineBuffer)
    nat_rules: LineBuffer = field(default_factory=LineBuffer)

    def if_local(self) -> list[str]:
        """localDetector.IfLocal (DetectLocalByCIDR)."""
        return ["-s", self.opts.cluster_cidr]

    def if_not_local(self) -> list[str]:
        """localDetector.IfNotLocal (DetectLocalByCIDR)."""
        return ["!", "-s", self.opts.cluster_cidr]

    def append_service_comment(self, args: list[str], svc_name: str) -> list[str]:
        """appendServiceCommentLocked: the comment is dropped in large-cluster mode."""
        if self.large_cluster_mode:
            return args
        return [*args, "-m", "comment", "--comment", svc_name]


def render(services: list[ProxiedService], opts: IptablesOptions) -> RenderedIptables:
    """syncProxyRules for one node, as a full sync: each Service port's share in the frame."""
    # The total number of endpoint chains: how big the cluster is.
    total_endpoints = sum(len(s.endpoints) for s in services)
    large_cluster_mode = total_endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD
    return RenderedIptables(
        frame(opts),
        [(port_key(s.info.spn), render_service(s, opts, large_cluster_mode)) for s in services],
        large_cluster_mode,
    )


def render_service(
    svc: ProxiedService, opts: IptablesOptions, large_cluster_mode: bool
) -> ServiceRules:
    """One Service port's share of syncProxyRules' loop "Build rules for each service-port"."""
    proxier = _Proxier(opts, large_cluster_mode)
    _sync_service(proxier, svc)
    return ServiceRules(
        tuple(proxier.filter_rules.lines),
        tuple(proxier.nat_chains.lines),
        tuple(proxier.nat_rules.lines),
        len(svc.endpoints),
    )


# fmt: off
def frame(opts: IptablesOptions) -> Frame:
    """syncProxyRules before and after its loop over Service ports: the same for every sync."""
    proxier = _Proxier(opts)
    mark = opts.masquerade_mark

    # Write chain lines for all the "top-level" chains we'll be filling in
    for chain_name in (KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS,
                       KUBE_PROXY_FIREWALL):
        proxier.filter_chains.write(make_chain_line(chain_name))
    for chain_name in (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ):
        proxier.nat_chains.write(make_chain_line(chain_name))

    # Install the kubernetes-specific postrouting rules.
    proxier.nat_rules.write(
        "-A", KUBE_POSTROUTING,
        "-m", "mark", "!", "--mark", f"{mark}/{mark}",
        "-j", "RETURN",
    )
    # Clear the mark to avoid re-masquerading if the packet re-traverses the network stack.
    proxier.nat_rules.write(
        "-A", KUBE_POSTROUTING,
        "-j", "MARK", "--xor-mark", mark,
    )
    masq_rule = [
        "-A", KUBE_POSTROUTING,
        "-m", "comment", "--comment", '"kubernetes service traffic requiring SNAT"',
        "-j", "MASQUERADE",
    ]
    if opts.random_fully:  # iptables.HasRandomFully()
        masq_rule.append("--random-fully")
    proxier.nat_rules.write(masq_rule)

    # Install the kubernetes-specific masquerade mark rule.
    proxier.nat_rules.write(
        "-A", KUBE_MARK_MASQ,
        "-j", "MARK", "--or-mark", mark,
    )

    if opts.localhost_nodeports:
        # route_localnet for localhost NodePorts opens a hole (kubernetes#90259); this closes it.
        proxier.filter_chains.write(make_chain_line(KUBE_FIREWALL))
        proxier.filter_rules.write(
            "-A", KUBE_FIREWALL,
            "-m", "comment", "--comment", '"block incoming localnet connections"',
            "-d", "127.0.0.0/8",
            "!", "-s", "127.0.0.0/8",
            "-m", "conntrack",
            "!", "--ctstate", "RELATED,ESTABLISHED,DNAT",
            "-j", "DROP",
        )

    # (Here upstream counts the endpoints and builds the rules for each service-port:
    # render() and render_service().)
    head = (len(proxier.filter_rules.lines), len(proxier.nat_rules.lines))

    # Finally, tail-call to the nodePorts chain, after all other service portal rules.
    if opts.nodeport_ips is None:  # nodePortAddresses.MatchAll()
        destinations = ["-m", "addrtype", "--dst-type", "LOCAL"]
        # Block localhost nodePorts if they are not supported.
        if not opts.localhost_nodeports:
            destinations += ["!", "-d", "127.0.0.0/8"]
        proxier.nat_rules.write(
            "-A", KUBE_SERVICES,
            "-m", "comment", "--comment",
            '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"',
            destinations,
            "-j", KUBE_NODEPORTS)
    else:
        for ip in opts.nodeport_ips:
            # --nodeport-addresses includes localhost but localhost NodePorts are off: skipped.
            if ipaddress.ip_address(ip).is_loopback and not opts.localhost_nodeports:
                continue
            # create nodeport rules for each IP one by one
            proxier.nat_rules.write(
                "-A", KUBE_SERVICES,
                "-m", "comment", "--comment",
                '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"',
                "-d", ip,
                "-j", KUBE_NODEPORTS)

    # Drop packets in INVALID state (unexpected resets unless nf_conntrack_tcp_be_liberal).
    # Upstream adds an nfacct match when its counter exists; netlab keeps no nfacct counters.
    if not opts.conntrack_tcp_liberal:
        proxier.filter_rules.write(
            "-A", KUBE_FORWARD,
            "-m", "conntrack",
            "--ctstate", "INVALID",
            "-j", "DROP",
        )

    # Forward marked traffic, so NodePorts work even if the FORWARD policy is not ACCEPT.
    proxier.filter_rules.write(
        "-A", KUBE_FORWARD,
        "-m", "comment", "--comment", '"kubernetes forwarding rules"',
        "-m", "mark", "--mark", f"{mark}/{mark}",
        "-j", "ACCEPT",
    )

    # Accept the rest of a connection whose first packet the rule above accepted.
    proxier.filter_rules.write(
        "-A", KUBE_FORWARD,
        "-m", "comment", "--comment", '"kubernetes forwarding conntrack rule"',
        "-m", "conntrack",
        "--ctstate", "RELATED,ESTABLISHED",
        "-j", "ACCEPT",
    )
    filter_rules, nat_rules = proxier.filter_rules.lines, proxier.nat_rules.lines
    return Frame(
        filter_chains=tuple(proxier.filter_chains.lines),
        filter_head=tuple(filter_rules[: head[0]]),
        filter_tail=tuple(filter_rules[head[0] :]),
        nat_chains=tuple(proxier.nat_chains.lines),
        nat_head=tuple(nat_rules[: head[1]]),
        nat_tail=tuple(nat_rules[head[1] :]),
        bootstrap={table: tuple(lines) for table, lines in _bootstrap(opts).items()},
    )


def _sync_service(proxier: _Proxier, svc: ProxiedService) -> None:
    """syncProxyRules: the body of the loop "Build rules for each service-port"."""
    opts = proxier.opts
    info = svc.info
    protocol = info.protocol
    svc_port_name_string = str(info.spn)

    # Figure out the endpoints for Cluster and Local traffic policy.
    cat = svc.categorize()
    has_endpoints = cat.has_any

    # clusterPolicyChain contains the endpoints used with "Cluster" traffic policy
    cluster_policy_chain = naming.svc_chain(info.spn)
    uses_cluster_policy_chain = bool(cat.cluster) and info.uses_cluster_endpoints

    # localPolicyChain contains the endpoints used with "Local" traffic policy
    local_policy_chain = naming.svl_chain(info.spn)
    uses_local_policy_chain = bool(cat.local) and info.uses_local_endpoints

    reach = policy_reach(info, cat)
    has_internal_endpoints, has_external_endpoints = reach.has_internal, reach.has_external
    internal_traffic_chain = local_policy_chain if reach.internal_local else cluster_policy_chain
    external_policy_chain = local_policy_chain if reach.external_local else cluster_policy_chain
    external_traffic_chain = naming.ext_chain(info.spn)  # eventually jumps to externalPolicyChain

    # usesExternalTrafficChain is based on hasEndpoints, not hasExternalEndpoints,
    # because we need the local-traffic-short-circuiting rules even when there
    # are no externally-usable endpoints.
    uses_external_traffic_chain = has_endpoints and info.externally_accessible

    # Traffic to LoadBalancer IPs can go directly to externalTrafficChain
    # unless LoadBalancerSourceRanges is in use in which case we will
    # create a firewall chain.
    load_balancer_traffic_chain = external_traffic_chain
    fw_chain = naming.fw_chain(info.spn)
    uses_fw_chain = (has_endpoints and bool(info.load_balancer_vips)
                     and bool(info.load_balancer_source_ranges))
    if uses_fw_chain:
        load_balancer_traffic_chain = fw_chain

    internal_traffic_filter_target = internal_traffic_filter_comment = ""
    external_traffic_filter_target = external_traffic_filter_comment = ""
    if not has_endpoints:
        # The service has no endpoints at all: only "filter" rules rejecting its IPs.
        internal_traffic_filter_target = "REJECT"
        internal_traffic_filter_comment = f'"{svc_port_name_string} has no endpoints"'
        external_traffic_filter_target = "REJECT"
        external_traffic_filter_comment = internal_traffic_filter_comment
    else:
        if not has_internal_endpoints:
            # internalTrafficPolicy "Local" without local endpoints: drop ClusterIP traffic.
            internal_traffic_filter_target = "DROP"
            internal_traffic_filter_comment = f'"{svc_port_name_string} has no local endpoints"'
        if not has_external_endpoints:
            # externalTrafficPolicy "Local" without local endpoints: drop outside traffic.
            external_traffic_filter_target = "DROP"
            external_traffic_filter_comment = f'"{svc_port_name_string} has no local endpoints"'

    filter_rules = proxier.filter_rules
    nat_chains = proxier.nat_chains
    nat_rules = proxier.nat_rules

    # Capture the clusterIP.
    if has_internal_endpoints:
        nat_rules.write(
            "-A", KUBE_SERVICES,
            "-m", "comment", "--comment", f'"{svc_port_name_string} cluster IP"',
            "-m", protocol, "-p", protocol,
            "-d", info.cluster_ip,
            "--dport", str(info.port),
            "-j", internal_traffic_chain)
    else:
        # No endpoints.
        filter_rules.write(
            "-A", KUBE_SERVICES,
            "-m", "comment", "--comment", internal_traffic_filter_comment,
            "-m", protocol, "-p", protocol,
            "-d", info.cluster_ip,
            "--dport", str(info.port),
            "-j", internal_traffic_filter_target,
        )

    # Capture externalIPs.
    for external_ip in info.external_ips:
        if has_endpoints:
            # Send traffic bound for external IPs to the "external destinations" chain.
            nat_rules.write(
                "-A", KUBE_SERVICES,
                "-m", "comment", "--comment", f'"{svc_port_name_string} external IP"',
                "-m", protocol, "-p", protocol,
                "-d", external_ip,
                "--dport", str(info.port),
                "-j", external_traffic_chain)
        if not has_external_endpoints:
            # No endpoints at all (REJECT), or none for external traffic (DROP what the EXT
            # chain did not short-circuit).
            filter_rules.write(
                "-A", KUBE_EXTERNAL_SERVICES,
                "-m", "comment", "--comment", external_traffic_filter_comment,
                "-m", protocol, "-p", protocol,
                "-d", external_ip,
                "--dport", str(info.port),
                "-j", external_traffic_filter_target,
            )

    # Capture load-balancer ingress.
    for lbip in info.load_balancer_vips:
        if has_endpoints:
            nat_rules.write(
                "-A", KUBE_SERVICES,
                "-m", "comment", "--comment", f'"{svc_port_name_string} loadbalancer IP"',
                "-m", protocol, "-p", protocol,
                "-d", lbip,
                "--dport", str(info.port),
                "-j", load_balancer_traffic_chain)
        if uses_fw_chain:
            filter_rules.write(
                "-A", KUBE_PROXY_FIREWALL,
                "-m", "comment", "--comment",
                f'"{svc_port_name_string} traffic not accepted by {fw_chain}"',
                "-m", protocol, "-p", protocol,
                "-d", lbip,
                "--dport", str(info.port),
                "-j", "DROP")
    if not has_external_endpoints:
        # No endpoints at all (REJECT), or none for external traffic (DROP what the EXT
        # chain did not short-circuit).
        for lbip in info.load_balancer_vips:
            filter_rules.write(
                "-A", KUBE_EXTERNAL_SERVICES,
                "-m", "comment", "--comment", external_traffic_filter_comment,
                "-m", protocol, "-p", protocol,
                "-d", lbip,
                "--dport", str(info.port),
                "-j", external_traffic_filter_target,
            )

    # Capture nodeports.
    if info.node_port != 0:
        if has_endpoints:
            # Jump to the external destination chain (NodePorts are not subject to
            # loadBalancerSourceRanges). Upstream first writes a 127.0.0.0/8 copy with an
            # nfacct match when that counter exists; netlab keeps no nfacct counters.
            nat_rules.write(
                "-A", KUBE_NODEPORTS,
                "-m", "comment", "--comment", svc_port_name_string,
                "-m", protocol, "-p", protocol,
                "--dport", str(info.node_port),
                "-j", external_traffic_chain)
        if not has_external_endpoints:
            # No endpoints at all (REJECT), or none for external traffic (DROP what the EXT
            # chain did not short-circuit).
            filter_rules.write(
                "-A", KUBE_EXTERNAL_SERVICES,
                "-m", "comment", "--comment", external_traffic_filter_comment,
                "-m", "addrtype", "--dst-type", "LOCAL",
                "-m", protocol, "-p", protocol,
                "--dport", str(info.node_port),
                "-j", external_traffic_filter_target,
            )

    # Capture healthCheckNodePorts.
    if info.health_check_node_port != 0:
        # Accepted whether or not the node has local endpoints.
        filter_rules.write(
            "-A", KUBE_NODEPORTS,
            "-m", "comment", "--comment", f'"{svc_port_name_string} health check node port"',
            "-m", "tcp", "-p", "tcp",
            "--dport", str(info.health_check_node_port),
            "-j", "ACCEPT",
        )

    # Set up internal traffic handling.
    if has_internal_endpoints:
        args = [
            "-m", "comment", "--comment", f'"{svc_port_name_string} cluster IP"',
            "-m", protocol, "-p", protocol,
            "-d", info.cluster_ip,
            "--dport", str(info.port),
        ]
        if opts.masquerade_all:
            nat_rules.write(
                "-A", internal_traffic_chain,
                args,
                "-j", KUBE_MARK_MASQ)
        else:
            # localDetector.IsImplemented() (always: netlab detects local traffic by CIDR).
            # Masquerade off-cluster traffic to a service VIP (a static route to any node
            # bridges into the Service, and that may bounce off-node).
            nat_rules.write(
                "-A", internal_traffic_chain,
                args,
                proxier.if_not_local(),
                "-j", KUBE_MARK_MASQ)

    # Set up external traffic handling: all captured traffic for external destinations
    # jumps to externalTrafficChain, which handles some special cases and then jumps to
    # externalPolicyChain.
    if uses_external_traffic_chain:
        nat_chains.write(make_chain_line(external_traffic_chain))

        if not info.external_policy_local:
            # Non-local endpoints: masquerade, in case we cross nodes.
            nat_rules.write(
                "-A", external_traffic_chain,
                "-m", "comment", "--comment",
                f'"masquerade traffic for {svc_port_name_string} external destinations"',
                "-j", KUBE_MARK_MASQ)
        else:
            # Only same-node endpoints: the source IP is kept in most cases.
            # (localDetector.IsImplemented(): always.) Pod -> external destination traffic
            # is subject to neither policy, as if it went out to the load balancer and back.
            nat_rules.write(
                "-A", external_traffic_chain,
                "-m", "comment", "--comment",
                f'"pod traffic for {svc_port_name_string} external destinations"',
                proxier.if_local(),
                "-j", cluster_policy_chain)

            # Traffic from the node itself still needs masquerade: the LB IP is a local
            # address, so it would be the chosen source IP.
            nat_rules.write(
                "-A", external_traffic_chain,
                "-m", "comment", "--comment",
                f'"masquerade LOCAL traffic for {svc_port_name_string} external destinations"',
                "-m", "addrtype", "--src-type", "LOCAL",
                "-j", KUBE_MARK_MASQ)

            # Send src-type=LOCAL -> external destination to the policy=cluster chain.
            nat_rules.write(
                "-A", external_traffic_chain,
                "-m", "comment", "--comment",
                f'"route LOCAL traffic for {svc_port_name_string} external destinations"',
                "-m", "addrtype", "--src-type", "LOCAL",
                "-j", cluster_policy_chain)

        # Anything else falls thru to the appropriate policy chain.
        if has_external_endpoints:
            nat_rules.write(
                "-A", external_traffic_chain,
                "-j", external_policy_chain)

    # Set up firewall chain, if needed
    if uses_fw_chain:
        nat_chains.write(make_chain_line(fw_chain))

        # The service firewall rules, from loadBalancerSourceRanges.
        args = [
            "-A", fw_chain,
            "-m", "comment", "--comment", f'"{svc_port_name_string} loadbalancer IP"',
        ]

        # firewall filter based on each source range
        allow_from_node = False
        for cidr in info.load_balancer_source_ranges:
            nat_rules.write(args, "-s", cidr, "-j", external_traffic_chain)
            allow_from_node = allow_from_node or _contains(cidr, opts.node_ip)
        # A VIP-like LB's VIP is often a local address, so a request from the node loops
        # back with the VIP as source: allow it.
        if allow_from_node:
            for lbip in info.load_balancer_vips:
                nat_rules.write(
                    args,
                    "-s", lbip,
                    "-j", external_traffic_chain)
        # A packet reaching the end of the chain was not DNATed: KUBE-PROXY-FIREWALL drops it.
        nat_rules.write(
            "-A", fw_chain,
            "-m", "comment", "--comment",
            f'"other traffic to {svc_port_name_string} will be dropped by KUBE-PROXY-FIREWALL"',
        )

    # If Cluster policy is in use, create the chain and jump from it to clusterEndpoints.
    if uses_cluster_policy_chain:
        nat_chains.write(make_chain_line(cluster_policy_chain))
        _write_service_to_endpoint_rules(
            proxier, svc_port_name_string, info, cluster_policy_chain, cat.cluster)

    # If Local policy is in use, create the chain and jump from it to localEndpoints.
    if uses_local_policy_chain:
        nat_chains.write(make_chain_line(local_policy_chain))
        _write_service_to_endpoint_rules(
            proxier, svc_port_name_string, info, local_policy_chain, cat.local)

    # Generate the per-endpoint chains.
    for ep in cat.all_reachable:
        endpoint_chain = naming.sep_chain(info.spn, str(ep))

        # Create the endpoint chain
        nat_chains.write(make_chain_line(endpoint_chain))

        args = ["-A", endpoint_chain]
        args = proxier.append_service_comment(args, svc_port_name_string)
        # Handle traffic that loops back to the originator with SNAT.
        nat_rules.write(
            args,
            "-s", ep.ip,
            "-j", KUBE_MARK_MASQ)
        # Update client-affinity lists.
        if info.session_affinity_client_ip:
            args += ["-m", "recent", "--name", endpoint_chain, "--set"]
        # DNAT to final destination.
        args += ["-m", protocol, "-p", protocol, "-j", "DNAT", "--to-destination", str(ep)]
        nat_rules.write(args)


def _write_service_to_endpoint_rules(
    proxier: _Proxier,
    svc_port_name_string: str,
    info: ServicePortInfo,
    svc_chain: str,
    endpoints: tuple[EndpointInfo, ...],
) -> None:
    """writeServiceToEndpointRules: affinity checks first, then the statistic cascade."""
    nat_rules = proxier.nat_rules
    # First write session affinity rules, if applicable.
    if info.session_affinity_client_ip:
        for ep in endpoints:
            endpoint_chain = naming.sep_chain(info.spn, str(ep))
            comment = f'"{svc_port_name_string} -> {ep}"'

            args = ["-A", svc_chain]
            args = proxier.append_service_comment(args, comment)
            args += [
                "-m", "recent", "--name", endpoint_chain,
                "--rcheck", "--seconds", str(info.sticky_max_age_seconds), "--reap",
                "-j", endpoint_chain,
            ]
            nat_rules.write(args)

    # Now write loadbalancing rules.
    num_endpoints = len(endpoints)
    for i, ep in enumerate(endpoints):
        endpoint_chain = naming.sep_chain(info.spn, str(ep))
        comment = f'"{svc_port_name_string} -> {ep}"'

        args = ["-A", svc_chain]
        args = proxier.append_service_comment(args, comment)
        if i < num_endpoints - 1:
            # Each rule is a probabilistic match.
            args += [
                "-m", "statistic",
                "--mode", "random",
                "--probability", probability(num_endpoints - i)]
        # The final (or only if n == 1) rule is a guaranteed match.
        nat_rules.write(args, "-j", endpoint_chain)
# fmt: on


def _contains(cidr: str, ip: str) -> bool:
    return ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(cidr, strict=False)


def service_chains(services: list[ProxiedService], service: Service) -> set[str]:
    """Every per-Service chain kube-proxy would make for ``service``."""
    chains: set[str] = set()
    for svc in services:
        spn = svc.info.spn
        if (spn.namespace, spn.name) != (service.meta.namespace, service.meta.name):
            continue
        chains |= {
            naming.svc_chain(spn),
            naming.svl_chain(spn),
            naming.ext_chain(spn),
            naming.fw_chain(spn),
        }
        chains |= {naming.sep_chain(spn, str(ep)) for ep in svc.endpoints}
    return chains


def chains_in_save(text: str) -> set[str]:
    """Chain names declared in ``iptables-save`` output (utiliptables.GetChainsFromTable)."""
    return {line[1:].split(" ", 1)[0] for line in text.splitlines() if line.startswith(":")}


def filter_save(text: str, chains: set[str], service_key: str) -> str:
    """Keep from ``iptables-save`` output only what belongs to one Service: its chains, rules in
    or jumping to them, and rules whose comment names it. Empty tables are dropped."""
    out: list[str] = []
    table: list[str] = []
    kept = False
    names = (f"{service_key}:", f"{service_key} ", f'{service_key}"')
    for line in text.splitlines():
        if line.startswith("*"):
            table, kept = [line], False
            continue
        if line == "COMMIT":
            if kept:
                out += [*table, line]
            table = []
            continue
        if line.startswith(":"):
            if line[1:].split(" ", 1)[0] in chains:
                table.append(line)
                kept = True
            continue
        rule = line.split("] ", 1)[1] if line.startswith("[") else line  # iptables-save -c
        if rule.startswith("-A "):
            words = rule.split()
            chain = words[1]
            target = words[words.index("-j") + 1] if "-j" in words else ""
            if (
                chain in chains
                or target in chains
                or any(n in line for n in names)
                or line.endswith(f"--comment {service_key}")
            ):
                table.append(line)
                kept = True
    return "\n".join(out) + ("\n" if out else "")
