"""userspace mode: what the proxier remembers of a node's portal rules, for partial syncs.

The userspace proxier (kubernetes/kubernetes ``pkg/proxy/userspace/proxier.go``, v1.25) never
rewrote its chains: it opened and closed portals one at a time (``openPortal``, ``closePortal``)
with single ``EnsureRule`` and ``DeleteRule`` calls. netlab's later syncs do the same in one
``iptables-restore --noflush`` transaction: the rules of Service ports that went or changed are
deleted (``-D CHAIN RULE``) and the new ones inserted (``-I CHAIN N RULE``) at the place a full
render puts them, so the chains end exactly as a full sync leaves them.

A proxy port is found by probing from the Service port's seed past the ports taken by the
Service ports before it in view order (:func:`~netlab.proxy.userspace.render.assign_ports`), so
a new Service port can move a later one's; the assignment is redone at every sync from kept
seeds, and a Service port whose proxy port moved is rewritten too.
"""

from __future__ import annotations

from collections.abc import Mapping

from netlab.proxy.changes import PortKey, PortTable
from netlab.proxy.servicemap import ProxiedService
from netlab.proxy.userspace.render import (
    NAT_CHAINS,
    NODEPORT_NON_LOCAL,
    Portal,
    PortalRules,
    assign_ports,
    port_seed,
    portal_name,
    portal_rules,
    restore_text,
)


class NodePortals:
    """A node's portals: each Service port's seed, proxy port and rules, in view order."""

    def __init__(self, node_ip: str, view: list[ProxiedService]) -> None:
        self.node_ip = node_ip
        seeds = [port_seed(portal_name(s)) for s in view]
        ports = assign_ports(seeds)
        # Per Service port: (seed, proxy port, rules); rules None until rendered.
        self.table: PortTable[tuple[int, int, PortalRules | None]] = PortTable(
            (s, (seed, port, portal_rules(Portal(s, port), node_ip)))
            for s, seed, port in zip(view, seeds, ports, strict=True)
        )
        self.totals = dict.fromkeys(CHAINS, 0)  # rules per chain
        for _, _, (_, _, rules) in self.table:
            _count(self.totals, rules, +1)

    def portals(self) -> list[Portal]:
        return [Portal(svc, port) for _, svc, (_, port, _) in self.table]

    def text(self, *, bootstrap: bool) -> str:
        """The full sync's input for the portals as they are now."""
        shares = [rules for _, _, (_, _, rules) in self.table if rules is not None]
        return restore_text(shares, bootstrap=bootstrap)

    def update(self, views: Mapping[str, list[ProxiedService]]) -> str:
        """Replace the changed Services; the restore input that brings the chains from what
        they held to what a full render gives ("" if no rule changed)."""
        gone: dict[PortKey, PortalRules] = {}
        for service, view in views.items():
            fresh = [(s, (port_seed(portal_name(s)), 0, None)) for s in view]
            for key, _, (_, _, rules) in self.table.replace(service, fresh):
                if rules is not None:
                    gone[key] = rules
                    _count(self.totals, rules, -1)
        # Proxy ports again, from the kept seeds; render each port whose rules may differ.
        items, order = self.table.items, self.table.order
        held = [items[k][1] for k in order]
        ports = assign_ports([h[0] for h in held])
        written: list[int] = []  # indexes into order
        # A changed Service's ports were put in with port 0, so they are among these.
        for i in [i for i, (h, p) in enumerate(zip(held, ports, strict=True)) if h[1] != p]:
            key = order[i]
            svc, (seed, _, rules) = items[key]
            new = portal_rules(Portal(svc, ports[i]), self.node_ip)
            items[key] = (svc, (seed, ports[i], new))
            _count(self.totals, rules, -1)  # a port that only moved: its rules were counted
            _count(self.totals, new, +1)
            old = gone.pop(key, rules)
            if old != new:
                written.append(i)
                if old is not None:
                    gone[key] = old
        return self._transaction(gone, written)

    def _transaction(self, gone: Mapping[PortKey, PortalRules], written: list[int]) -> str:
        """Delete the old rules of ``gone``, then insert the rules of the ``written`` ports at
        their places (each insert lands where everything before it is final)."""
        if not gone and not written:
            return ""
        out: list[str] = []
        ins = self._inserts(written)
        for table in ("filter", "nat"):
            dels = [
                f"-D {chain} {rule}"
                for old in gone.values()
                for chain, rule in (old.filter if table == "filter" else old.nat)
            ]
            if dels or ins[table]:
                out += [f"*{table}", *dels, *ins[table], "COMMIT"]
        return "\n".join(out) + "\n" if out else ""

    def _inserts(self, written: list[int]) -> dict[str, list[str]]:
        """``-I CHAIN N RULE`` for the written ports' rules, N its final place: counted from the
        start of the chain or back from its end, whichever is nearer."""
        ins: dict[str, list[str]] = {"nat": [], "filter": []}
        if not written:
            return ins
        items, order = self.table.items, self.table.order
        first, last = min(written), max(written)
        mine = set(written)
        before = dict.fromkeys(CHAINS, 0)  # rules in the chain before each written port
        starts: dict[int, dict[str, int]] = {}
        if last < len(order) - first:
            for i in range(last + 1):
                rules = items[order[i]][1][2]
                assert rules is not None
                if i in mine:
                    starts[i] = dict(before)
                _count(before, rules, +1)
        else:
            after = dict.fromkeys(CHAINS, 0)  # rules from each port on to the chain's end
            for i in range(len(order) - 1, first - 1, -1):
                rules = items[order[i]][1][2]
                assert rules is not None
                _count(after, rules, +1)
                if i in mine:
                    starts[i] = {c: self.totals[c] - after[c] for c in CHAINS}
        for i in written:  # in view order
            rules = items[order[i]][1][2]
            assert rules is not None
            at = dict(starts[i])
            for table, pairs in (("nat", rules.nat), ("filter", rules.filter)):
                for chain, rule in pairs:
                    at[chain] += 1
                    ins[table].append(f"-I {chain} {at[chain]} {rule}")
        return ins


CHAINS = (*NAT_CHAINS, NODEPORT_NON_LOCAL)


def _count(counts: dict[str, int], rules: PortalRules | None, by: int) -> None:
    if rules is None:
        return
    for chain, _ in rules.nat:
        counts[chain] += by
    for chain, _ in rules.filter:
        counts[chain] += by
