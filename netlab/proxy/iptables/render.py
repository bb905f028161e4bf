"""iptables mode: render kube-proxy's ``iptables-restore`` input for one node (pure text).

This follows ``pkg/proxy/iptables/proxier.go`` ``syncProxyRules`` rule for rule: the same chains,
comments, match order, probabilities and masquerade mark, so ``iptables-save`` in a lab node reads
like one on a real node. One difference is deliberate: kube-proxy installs the jumps from the
built-in chains (``-A PREROUTING ... -j KUBE-SERVICES``) with separate ``iptables -I`` calls; netlab
puts them, as ``-I <chain> 1`` lines, into the same restore transaction on a node's first sync, so
every sync is exactly one atomic ``iptables-restore``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from netlab.proxy import naming
from netlab.proxy.servicemap import (
    EndpointInfo,
    ProxiedService,
    ServicePortInfo,
    categorize,
    policy_reach,
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

LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000

# iptablesJumpChains, in upstream order: (table, kube chain, built-in chain, comment, extra args).
_NEW = ("-m", "conntrack", "--ctstate", "NEW")
JUMP_CHAINS: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    (
        "filter",
        KUBE_EXTERNAL_SERVICES,
        "INPUT",
        "kubernetes externally-visible service portals",
        _NEW,
    ),
    (
        "filter",
        KUBE_EXTERNAL_SERVICES,
        "FORWARD",
        "kubernetes externally-visible service portals",
        _NEW,
    ),
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


@dataclass(frozen=True)
class IptablesOptions:
    node_ip: str
    cluster_cidr: str  # the local-traffic detector: DetectLocalByCIDR
    masquerade_all: bool = False
    masquerade_bit: int = 14
    localhost_nodeports: bool = True
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


def q(text: str) -> str:
    """Quote a comment the way proxier.go writes it (its formats with spaces are quoted)."""
    return f'"{text}"'


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, *args: str) -> None:
        self.lines.append(" ".join(a for a in args if a != ""))


@dataclass
class RenderedIptables:
    filter_chains: list[str]
    filter_rules: list[str]
    nat_chains: list[str]
    nat_rules: list[str]
    bootstrap: dict[str, list[str]]  # table -> chain lines and -I jumps for a node's first sync
    large_cluster: bool

    def active_nat_chains(self) -> set[str]:
        return {_chain_of(line) for line in self.nat_chains}

    def restore_text(self, *, bootstrap: bool, existing_nat_chains: Iterable[str] = ()) -> str:
        """The ``iptables-restore --noflush`` input; with the first-sync jumps if ``bootstrap``.

        Service chains in ``existing_nat_chains`` (what ``iptables-save -t nat`` listed) that
        this sync no longer writes are flushed and deleted, as syncProxyRules deletes them.
        """
        active = self.active_nat_chains()
        stale = sorted(
            c for c in existing_nat_chains if naming.is_service_chain(c) and c not in active
        )
        return self._text(bootstrap, stale, unchanged=set())

    def partial_text(self, previous: RenderedIptables) -> str:
        """A partial sync from ``previous`` (what the node holds), as syncProxyRules writes one
        when no full sync is due: the top-level chains and the filter table are rewritten
        whole, but a Service chain whose rules did not change is left out (so it keeps its
        packet counters), and the Service chains ``previous`` had that are gone are deleted."""
        before, after = _rules_by_chain(previous.nat_rules), _rules_by_chain(self.nat_rules)
        had, active = previous.active_nat_chains(), self.active_nat_chains()
        unchanged = {
            c for c in active & had if naming.is_service_chain(c) and before.get(c) == after.get(c)
        }
        stale = sorted(c for c in had - active if naming.is_service_chain(c))
        return self._text(False, stale, unchanged)

    def _text(self, bootstrap: bool, stale: list[str], unchanged: set[str]) -> str:
        out: list[str] = []
        if bootstrap and self.bootstrap.get("mangle"):
            out += ["*mangle", *self.bootstrap["mangle"], "COMMIT"]
        out.append("*filter")
        out += self.filter_chains
        if bootstrap:
            out += self.bootstrap.get("filter", [])
        out += self.filter_rules
        out.append("COMMIT")
        out.append("*nat")
        out += [ln for ln in self.nat_chains if _chain_of(ln) not in unchanged]
        out += [f":{c} - [0:0]" for c in stale]
        if bootstrap:
            out += self.bootstrap.get("nat", [])
        out += [ln for ln in self.nat_rules if _chain_of(ln) not in unchanged]
        out += [f"-X {c}" for c in stale]
        out.append("COMMIT")
        return "\n".join(out) + "\n"


def _chain_of(line: str) -> str:
    """The chain a ``:CHAIN - [0:0]`` or ``-A CHAIN ...`` line is about."""
    return line[1:].split(" ", 1)[0] if line.startswith(":") else line.split(" ", 2)[1]


def _rules_by_chain(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in lines:
        out.setdefault(_chain_of(line), []).append(line)
    return out


def _bootstrap(opts: IptablesOptions) -> dict[str, list[str]]:
    """The canary chains and the jumps from built-in chains, prepended as EnsureRule(Prepend) does.

    Prepending each in list order leaves them in reverse order; ``-I CHAIN 1`` reproduces that.
    """
    tables: dict[str, list[str]] = {
        "mangle": [f":{KUBE_PROXY_CANARY} - [0:0]"],
        "filter": [f":{KUBE_PROXY_CANARY} - [0:0]"],
        "nat": [f":{KUBE_PROXY_CANARY} - [0:0]"],
    }
    for table, chain, builtin, comment, extra in JUMP_CHAINS:
        if chain == KUBE_FIREWALL and not opts.localhost_nodeports:
            continue
        args = ["-I", builtin, "1", *extra]
        if comment:
            args += ["-m", "comment", "--comment", q(comment)]
        args += ["-j", chain]
        tables[table].append(" ".join(args))
    return tables


def render(services: list[ProxiedService], opts: IptablesOptions) -> RenderedIptables:
    """syncProxyRules for one node, as a full sync."""
    filter_chains = _Lines()
    filter_rules = _Lines()
    nat_chains = _Lines()
    nat_rules = _Lines()
    mark = opts.masquerade_mark
    for chain in (
        KUBE_SERVICES,
        KUBE_EXTERNAL_SERVICES,
        KUBE_FORWARD,
        KUBE_NODEPORTS,
        KUBE_PROXY_FIREWALL,
    ):
        filter_chains.write(f":{chain} - [0:0]")
    for chain in (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ):
        nat_chains.write(f":{chain} - [0:0]")

    nat_rules.write(
        "-A", KUBE_POSTROUTING, "-m", "mark", "!", "--mark", f"{mark}/{mark}", "-j", "RETURN"
    )
    nat_rules.write("-A", KUBE_POSTROUTING, "-j", "MARK", "--xor-mark", mark)
    nat_rules.write(
        "-A",
        KUBE_POSTROUTING,
        "-m",
        "comment",
        "--comment",
        q("kubernetes service traffic requiring SNAT"),
        "-j",
        "MASQUERADE",
        "--random-fully" if opts.random_fully else "",
    )
    nat_rules.write("-A", KUBE_MARK_MASQ, "-j", "MARK", "--or-mark", mark)

    if opts.localhost_nodeports:
        filter_chains.write(f":{KUBE_FIREWALL} - [0:0]")
        filter_rules.write(
            "-A",
            KUBE_FIREWALL,
            "-m",
            "comment",
            "--comment",
            q("block incoming localnet connections"),
            "-d",
            "127.0.0.0/8",
            "!",
            "-s",
            "127.0.0.0/8",
            "-m",
            "conntrack",
            "!",
            "--ctstate",
            "RELATED,ESTABLISHED,DNAT",
            "-j",
            "DROP",
        )

    total_endpoints = sum(len(s.endpoints) for s in services)
    large = total_endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD

    def comment(text: str) -> tuple[str, ...]:
        """appendServiceCommentLocked: dropped in large-cluster mode."""
        return () if large else ("-m", "comment", "--comment", text)

    if_local = ("-s", opts.cluster_cidr)
    if_not_local = ("!", "-s", opts.cluster_cidr)

    for svc in services:
        _render_service(
            svc, opts, filter_rules, nat_chains, nat_rules, comment, if_local, if_not_local
        )

    nat_rules.write(
        "-A",
        KUBE_SERVICES,
        "-m",
        "comment",
        "--comment",
        q("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
        "-m",
        "addrtype",
        "--dst-type",
        "LOCAL",
        *(() if opts.localhost_nodeports else ("!", "-d", "127.0.0.0/8")),
        "-j",
        KUBE_NODEPORTS,
    )

    if not opts.conntrack_tcp_liberal:
        filter_rules.write(
            "-A", KUBE_FORWARD, "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"
        )
    filter_rules.write(
        "-A",
        KUBE_FORWARD,
        "-m",
        "comment",
        "--comment",
        q("kubernetes forwarding rules"),
        "-m",
        "mark",
        "--mark",
        f"{mark}/{mark}",
        "-j",
        "ACCEPT",
    )
    filter_rules.write(
        "-A",
        KUBE_FORWARD,
        "-m",
        "comment",
        "--comment",
        q("kubernetes forwarding conntrack rule"),
        "-m",
        "conntrack",
        "--ctstate",
        "RELATED,ESTABLISHED",
        "-j",
        "ACCEPT",
    )
    return RenderedIptables(
        filter_chains.lines,
        filter_rules.lines,
        nat_chains.lines,
        nat_rules.lines,
        _bootstrap(opts),
        large,
    )


def _render_service(
    svc: ProxiedService,
    opts: IptablesOptions,
    filter_rules: _Lines,
    nat_chains: _Lines,
    nat_rules: _Lines,
    comment: Callable[[str], tuple[str, ...]],
    if_local: tuple[str, ...],
    if_not_local: tuple[str, ...],
) -> None:
    info = svc.info
    spn = str(info.spn)
    proto = info.protocol
    cat = categorize(info, svc.endpoints)

    cluster_chain = naming.svc_chain(info.spn)
    local_chain = naming.svl_chain(info.spn)
    ext_chain = naming.ext_chain(info.spn)
    fw_chain = naming.fw_chain(info.spn)
    uses_cluster_chain = bool(cat.cluster) and info.uses_cluster_endpoints
    uses_local_chain = bool(cat.local) and info.uses_local_endpoints

    reach = policy_reach(info, cat)
    has_internal, has_external = reach.has_internal, reach.has_external
    internal_chain = local_chain if reach.internal_local else cluster_chain
    external_policy_chain = local_chain if reach.external_local else cluster_chain
    uses_ext_chain = cat.has_any and info.externally_accessible
    lb_chain = ext_chain
    uses_fw_chain = (
        cat.has_any and bool(info.load_balancer_vips) and bool(info.load_balancer_source_ranges)
    )
    if uses_fw_chain:
        lb_chain = fw_chain

    internal_target = internal_comment = external_target = external_comment = ""
    if not cat.has_any:
        internal_target = external_target = "REJECT"
        internal_comment = external_comment = q(f"{spn} has no endpoints")
    else:
        if not has_internal:
            internal_target, internal_comment = "DROP", q(f"{spn} has no local endpoints")
        if not has_external:
            external_target, external_comment = "DROP", q(f"{spn} has no local endpoints")

    match = ("-m", proto, "-p", proto)
    port = str(info.port)

    # ClusterIP capture, or the filter verdict when it has no (local) endpoints.
    if has_internal:
        nat_rules.write(
            "-A",
            KUBE_SERVICES,
            "-m",
            "comment",
            "--comment",
            q(f"{spn} cluster IP"),
            *match,
            "-d",
            info.cluster_ip,
            "--dport",
            port,
            "-j",
            internal_chain,
        )
    else:
        filter_rules.write(
            "-A",
            KUBE_SERVICES,
            "-m",
            "comment",
            "--comment",
            internal_comment,
            *match,
            "-d",
            info.cluster_ip,
            "--dport",
            port,
            "-j",
            internal_target,
        )

    for ext_ip in info.external_ips:
        if cat.has_any:
            nat_rules.write(
                "-A",
                KUBE_SERVICES,
                "-m",
                "comment",
                "--comment",
                q(f"{spn} external IP"),
                *match,
                "-d",
                ext_ip,
                "--dport",
                port,
                "-j",
                ext_chain,
            )
        if not has_external:
            filter_rules.write(
                "-A",
                KUBE_EXTERNAL_SERVICES,
                "-m",
                "comment",
                "--comment",
                external_comment,
                *match,
                "-d",
                ext_ip,
                "--dport",
                port,
                "-j",
                external_target,
            )

    for lb_ip in info.load_balancer_vips:
        if cat.has_any:
            nat_rules.write(
                "-A",
                KUBE_SERVICES,
                "-m",
                "comment",
                "--comment",
                q(f"{spn} loadbalancer IP"),
                *match,
                "-d",
                lb_ip,
                "--dport",
                port,
                "-j",
                lb_chain,
            )
        if uses_fw_chain:
            filter_rules.write(
                "-A",
                KUBE_PROXY_FIREWALL,
                "-m",
                "comment",
                "--comment",
                q(f"{spn} traffic not accepted by {fw_chain}"),
                *match,
                "-d",
                lb_ip,
                "--dport",
                port,
                "-j",
                "DROP",
            )
    if not has_external:
        for lb_ip in info.load_balancer_vips:
            filter_rules.write(
                "-A",
                KUBE_EXTERNAL_SERVICES,
                "-m",
                "comment",
                "--comment",
                external_comment,
                *match,
                "-d",
                lb_ip,
                "--dport",
                port,
                "-j",
                external_target,
            )

    if info.node_port:
        node_port = str(info.node_port)
        if cat.has_any:
            nat_rules.write(
                "-A",
                KUBE_NODEPORTS,
                "-m",
                "comment",
                "--comment",
                spn,
                *match,
                "--dport",
                node_port,
                "-j",
                ext_chain,
            )
        if not has_external:
            filter_rules.write(
                "-A",
                KUBE_EXTERNAL_SERVICES,
                "-m",
                "comment",
                "--comment",
                external_comment,
                "-m",
                "addrtype",
                "--dst-type",
                "LOCAL",
                *match,
                "--dport",
                node_port,
                "-j",
                external_target,
            )

    if info.health_check_node_port:
        filter_rules.write(
            "-A",
            KUBE_NODEPORTS,
            "-m",
            "comment",
            "--comment",
            q(f"{spn} health check node port"),
            "-m",
            "tcp",
            "-p",
            "tcp",
            "--dport",
            str(info.health_check_node_port),
            "-j",
            "ACCEPT",
        )

    if has_internal:
        args = (
            "-m",
            "comment",
            "--comment",
            q(f"{spn} cluster IP"),
            *match,
            "-d",
            info.cluster_ip,
            "--dport",
            port,
        )
        if opts.masquerade_all:
            nat_rules.write("-A", internal_chain, *args, "-j", KUBE_MARK_MASQ)
        else:
            nat_rules.write("-A", internal_chain, *args, *if_not_local, "-j", KUBE_MARK_MASQ)

    if uses_ext_chain:
        nat_chains.write(f":{ext_chain} - [0:0]")
        if not info.external_policy_local:
            nat_rules.write(
                "-A",
                ext_chain,
                "-m",
                "comment",
                "--comment",
                q(f"masquerade traffic for {spn} external destinations"),
                "-j",
                KUBE_MARK_MASQ,
            )
        else:
            nat_rules.write(
                "-A",
                ext_chain,
                "-m",
                "comment",
                "--comment",
                q(f"pod traffic for {spn} external destinations"),
                *if_local,
                "-j",
                cluster_chain,
            )
            nat_rules.write(
                "-A",
                ext_chain,
                "-m",
                "comment",
                "--comment",
                q(f"masquerade LOCAL traffic for {spn} external destinations"),
                "-m",
                "addrtype",
                "--src-type",
                "LOCAL",
                "-j",
                KUBE_MARK_MASQ,
            )
            nat_rules.write(
                "-A",
                ext_chain,
                "-m",
                "comment",
                "--comment",
                q(f"route LOCAL traffic for {spn} external destinations"),
                "-m",
                "addrtype",
                "--src-type",
                "LOCAL",
                "-j",
                cluster_chain,
            )
        if has_external:
            nat_rules.write("-A", ext_chain, "-j", external_policy_chain)

    if uses_fw_chain:
        nat_chains.write(f":{fw_chain} - [0:0]")
        fw_args = ("-A", fw_chain, "-m", "comment", "--comment", q(f"{spn} loadbalancer IP"))
        allow_from_node = False
        for cidr in info.load_balancer_source_ranges:
            nat_rules.write(*fw_args, "-s", cidr, "-j", ext_chain)
            allow_from_node = allow_from_node or _contains(cidr, opts.node_ip)
        if allow_from_node:
            for lb_ip in info.load_balancer_vips:
                nat_rules.write(*fw_args, "-s", lb_ip, "-j", ext_chain)
        nat_rules.write(
            "-A",
            fw_chain,
            "-m",
            "comment",
            "--comment",
            q(f"other traffic to {spn} will be dropped by KUBE-PROXY-FIREWALL"),
        )

    if uses_cluster_chain:
        nat_chains.write(f":{cluster_chain} - [0:0]")
        _service_to_endpoints(nat_rules, info, cluster_chain, cat.cluster, comment)
    if uses_local_chain:
        nat_chains.write(f":{local_chain} - [0:0]")
        _service_to_endpoints(nat_rules, info, local_chain, cat.local, comment)

    for ep in cat.all_reachable:
        sep = naming.sep_chain(info.spn, str(ep))
        nat_chains.write(f":{sep} - [0:0]")
        base = ("-A", sep, *comment(spn))
        nat_rules.write(*base, "-s", ep.ip, "-j", KUBE_MARK_MASQ)
        affinity = (
            ("-m", "recent", "--name", sep, "--set") if info.session_affinity_client_ip else ()
        )
        nat_rules.write(*base, *affinity, *match, "-j", "DNAT", "--to-destination", str(ep))


def _service_to_endpoints(
    nat_rules: _Lines,
    info: ServicePortInfo,
    chain: str,
    endpoints: tuple[EndpointInfo, ...],
    comment: Callable[[str], tuple[str, ...]],
) -> None:
    """writeServiceToEndpointRules: affinity checks first, then the statistic cascade."""
    spn = str(info.spn)
    if info.session_affinity_client_ip:
        for ep in endpoints:
            sep = naming.sep_chain(info.spn, str(ep))
            nat_rules.write(
                "-A",
                chain,
                *comment(q(f"{spn} -> {ep}")),
                "-m",
                "recent",
                "--name",
                sep,
                "--rcheck",
                "--seconds",
                str(info.sticky_max_age_seconds),
                "--reap",
                "-j",
                sep,
            )
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        sep = naming.sep_chain(info.spn, str(ep))
        stat = (
            ("-m", "statistic", "--mode", "random", "--probability", probability(n - i))
            if i < n - 1
            else ()
        )
        nat_rules.write("-A", chain, *comment(q(f"{spn} -> {ep}")), *stat, "-j", sep)


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
