"""IPVS mode: what the proxier remembers of a node between syncs, for partial syncs.

kube-proxy's IPVS proxier (kubernetes/kubernetes ``pkg/proxy/ipvs/proxier.go``, v1.33) has no
partial sync: every sync reads the node back (``GetVirtualServers``, ``GetRealServers`` per
service, each ipset's entries in ``syncIPSetEntries``, the addresses on kube-ipvs0) and rewrites
the companion iptables rules. At 10k Services that read-back is most of a sync (docs/performance.md:
two thirds of adding one Service went to ``ipset save``). netlab's later syncs instead build on
what it wrote, as upstream's nftables proxier builds on its ``nftElementStorage`` and netlab's
iptables and nftables modes on their kept rules: :class:`NodeIpvs` keeps every Service port's
share (:class:`~netlab.proxy.ipvs.render.IpvsShare`) with reference counts for what shares
have in common (an ipset entry, a kube-ipvs0 address, a virtual server's key), and a sync sends
only what changed: the addresses to bind and unbind, the ipset entries to add and delete, the
virtual servers to add, edit or delete, and the companion rules only if they changed.

What is still read from the kernel is what only the kernel knows: the connection counts of real
servers about to be removed, so that TCP ones drain first as the GracefulTerminationManager
(``pkg/proxy/ipvs/graceful_termination.go``) has them; a virtual server with a draining real
server is looked at again at every sync until the server is gone (:attr:`NodeIpvs.draining`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from netlab.proxy.changes import PortKey, PortTable
from netlab.proxy.ipvs.ipset import IPSET_INFO, IPVS_IPS
from netlab.proxy.ipvs.render import (
    IpvsOptions,
    IpvsRuleSet,
    IpvsShare,
    assemble,
    companion_rules,
    entry_key,
    render_service,
)
from netlab.proxy.ipvs.servers import VirtualServer
from netlab.proxy.servicemap import ProxiedService, port_key

VsKey = tuple[str, str, int]  # VirtualServer.key: protocol, address, port
SET_ORDER = {name: i for i, (name, _, _) in enumerate(IPSET_INFO)}


@dataclass(frozen=True)
class IpvsChanges:
    """What one partial sync sends to a node, in the order a sync sends it."""

    bind: tuple[str, ...]  # addresses to add to kube-ipvs0
    ipset_text: str  # ``ipset restore`` input ("" if no entry changed)
    # Per virtual server key: (what the kernel holds as netlab wrote it, what it should hold);
    # None for "absent". Draining servers' keys are here too, with both the same.
    services: Mapping[VsKey, tuple[VirtualServer | None, VirtualServer | None]]
    iptables_text: str  # companion rules ("" if they did not change)
    unbind: tuple[str, ...]  # addresses to remove from kube-ipvs0, last


class NodeIpvs:
    """What a node holds in IPVS mode, per Service port, as this proxier wrote it."""

    def __init__(
        self,
        opts: IpvsOptions,
        shares: Iterable[tuple[ProxiedService, IpvsShare]],
        ruleset: IpvsRuleSet,
        draining: Iterable[VsKey] = (),
    ) -> None:
        self.opts = opts
        self.table: PortTable[IpvsShare] = PortTable(shares)
        self.entries: dict[tuple[str, str], int] = {}  # (ipset, entry) -> shares having it
        self.filled: dict[str, int] = {name: 0 for name, _, _ in IPSET_INFO}  # set -> entries
        self.claims: dict[VsKey, dict[PortKey, VirtualServer]] = {}
        for key, _, share in self.table:
            self._count(key, share, +1, {})
        self.virtual_servers = {vs.key: vs for vs in ruleset.virtual_servers}
        self.rules = replace(ruleset, addresses=(), virtual_servers=(), ipsets=())
        self.draining: set[VsKey] = set(draining)
        self.lb_shares = sum(1 for _, _, s in self.table if s.lb_no_node_access)

    def ruleset(self) -> IpvsRuleSet:
        """The node's state as a full render of its view gives it."""
        return assemble((share for _, _, share in self.table), self.opts)

    def update(self, views: Mapping[str, list[ProxiedService]]) -> IpvsChanges:
        """Replace the changed Services (``views``: each one's ports now); what to send."""
        was: dict[tuple[str, str], bool] = {}  # entries touched -> held before
        filled = {name: n > 0 for name, n in self.filled.items()}
        touched: set[VsKey] = set()
        lb_touched = False
        for service, view in views.items():
            new = [(svc, render_service(svc, self.opts)) for svc in view]
            for key, _, share in self.table.replace(service, new):
                touched |= self._count(key, share, -1, was)
                lb_touched = lb_touched or bool(share.lb_no_node_access)
                self.lb_shares -= bool(share.lb_no_node_access)
            for svc, share in new:
                touched |= self._count(port_key(svc.info.spn), share, +1, was)
                lb_touched = lb_touched or bool(share.lb_no_node_access)
                self.lb_shares += bool(share.lb_no_node_access)
        added = sorted(e for e, held in was.items() if not held and self.entries.get(e))
        deleted = sorted(e for e, held in was.items() if held and not self.entries.get(e))
        services: dict[VsKey, tuple[VirtualServer | None, VirtualServer | None]] = {}
        for vs_key in sorted(touched | self.draining):
            claims = self.claims.get(vs_key)
            owner = claims[min(claims)] if claims else None  # the first port in view order
            held = self.virtual_servers.get(vs_key)
            if held != owner or vs_key in self.draining:
                services[vs_key] = (held, owner)
            if owner is None:
                self.virtual_servers.pop(vs_key, None)
            else:
                self.virtual_servers[vs_key] = owner
        iptables_text = ""
        # The companion rules match only sets that hold something, and name the LB IPs the
        # node may not reach: they change only if one of those did.
        if lb_touched or any(filled[name] != (n > 0) for name, n in self.filled.items()):
            rules = self._companion_rules()
            if rules != self.rules:
                self.rules = rules
                iptables_text = rules.iptables_restore_text(bootstrap=False)
        return IpvsChanges(
            bind=tuple(e for s, e in _by_set(added) if s == IPVS_IPS),
            ipset_text=_ipset_text(added, deleted),
            services=services,
            iptables_text=iptables_text,
            unbind=tuple(e for s, e in _by_set(deleted) if s == IPVS_IPS),
        )

    def _count(
        self, key: PortKey, share: IpvsShare, by: int, was: dict[tuple[str, str], bool]
    ) -> set[VsKey]:
        """Add (``by`` 1) or take away (-1) one share's references; ``was`` learns whether
        each entry it touches was held before the first touch. Returns its virtual servers'
        keys."""
        # A kube-ipvs0 address is also an entry of KUBE-IPVS-IPS (render: entries[IPVS_IPS]).
        for entry in (*share.entries, *((IPVS_IPS, ip) for ip in share.bind)):
            n = self.entries.get(entry, 0)
            was.setdefault(entry, n > 0)
            if n + by:
                self.entries[entry] = n + by
            else:
                del self.entries[entry]
            if (n > 0) != (n + by > 0):
                self.filled[entry[0]] += by
        for vs in share.virtual_servers:
            claims = self.claims.setdefault(vs.key, {})
            if by > 0:
                claims[key] = vs
            else:
                del claims[key]
                if not claims:
                    del self.claims[vs.key]
        return {vs.key for vs in share.virtual_servers}

    def _companion_rules(self) -> IpvsRuleSet:
        lb = [t for _, _, s in self.table for t in s.lb_no_node_access] if self.lb_shares else []
        nat_rules, filter_rules = companion_rules(
            {name: n > 0 for name, n in self.filled.items()}, lb, self.opts
        )
        return replace(self.rules, nat_rules=tuple(nat_rules), filter_rules=tuple(filter_rules))


def _by_set(entries: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Entries grouped by set in upstream's set order, each set's sorted as a render sorts."""
    return sorted(entries, key=lambda e: (SET_ORDER[e[0]], entry_key(e[1])))


def _ipset_text(added: list[tuple[str, str]], deleted: list[tuple[str, str]]) -> str:
    """syncIPSetEntries for the entries that changed: stale ones deleted first, then the new
    ones added, set by set (the sets themselves exist since the node's full sync)."""
    out = [f"del {s} {e} -exist" for s, e in _by_set(deleted)]
    out += [f"add {s} {e} -exist" for s, e in _by_set(added)]
    return "\n".join(out) + "\n" if out else ""
