"""nftables mode: what the proxier remembers of a node's table between syncs, for partial syncs.

kube-proxy's nftables proxier (kubernetes/kubernetes ``pkg/proxy/nftables/proxier.go``, v1.33)
syncs partially after its first sync: a Service port whose Service and endpoints are not in
``serviceUpdateResult.UpdatedServices`` / ``endpointUpdateResult.UpdatedServices`` is skipped
(``skipServiceUpdate``: its chains are neither flushed nor rewritten), and the set and map
elements are kept in ``nftElementStorage``, which knows what the kernel holds, so only elements
that differ are added or deleted. :class:`NodeTable` is netlab's counterpart: each Service port's
objects (:class:`~netlab.proxy.nftables.render.ServiceObjects`) and the elements the table holds,
so a partial sync renders only the changed Services and writes only what differs.

Two Service ports may claim one element key (say, an external IP shared by two Services); as in
:meth:`Ruleset.elements`, the last claimant in the view's order owns it, and the claims are kept
so that the owner is right whichever of them changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from netlab.proxy.changes import PortKey, PortTable
from netlab.proxy.nftables.objects import Element, Transaction
from netlab.proxy.nftables.render import (
    NftablesOptions,
    Ruleset,
    ServiceObjects,
    delete_stale,
    render_service,
    write_services,
)
from netlab.proxy.servicemap import ProxiedService, port_key

ElementKey = tuple[str, tuple[str, ...]]  # (set or map, key)


class NodeTable:
    """What a node's ``ip kube-proxy`` table holds, per Service port, as this proxier wrote it."""

    def __init__(self, ruleset: Ruleset, services: Iterable[ProxiedService]) -> None:
        self.opts: NftablesOptions = ruleset.opts
        self.layout = ruleset.layout
        self.table: PortTable[ServiceObjects] = PortTable(
            zip(services, ruleset.services, strict=True)
        )
        self.claims: dict[ElementKey, dict[PortKey, Element]] = {}
        for key, _, objs in self.table:
            self._claim(key, objs)
        self.elements = ruleset.elements()  # what the kernel's sets and maps hold

    def ruleset(self) -> Ruleset:
        """The node's table as a full render of its view gives it."""
        return Ruleset(self.opts, self.layout, [objs for _, _, objs in self.table])

    def update(self, views: Mapping[str, list[ProxiedService]]) -> str:
        """Replace the changed Services (``views``: each one's ports now) and return the partial
        sync's ``nft -f`` input, as :meth:`Ruleset.delta` writes it ("" if nothing differs)."""
        changed: list[tuple[PortKey, ServiceObjects]] = []
        touched: set[ElementKey] = set()
        gone_chains: set[str] = set()
        gone_sets: set[str] = set()
        made_chains: set[str] = set()
        made_sets: set[str] = set()
        for service, view in views.items():
            new = [(svc, render_service(svc, self.opts, self.layout)) for svc in view]
            old = self.table.replace(service, new)
            before = {k: objs for k, _, objs in old}
            for k, _, objs in old:
                touched |= self._unclaim(k, objs)
                gone_chains |= objs.chains.keys()
                gone_sets |= objs.affinity_sets.keys()
            for svc, objs in new:
                k = port_key(svc.info.spn)
                if before.get(k) != objs:
                    changed.append((k, objs))
                touched |= self._claim(k, objs)
                made_chains |= objs.chains.keys()
                made_sets |= objs.affinity_sets.keys()
        out: list[str] = []
        write_services([objs for _, objs in sorted(changed, key=lambda c: c[0])], out)
        tx = Transaction(out)
        adds: list[Element] = []
        for ek in sorted(touched):
            claims = self.claims.get(ek)
            owner = claims[max(claims)] if claims else None
            held = self.elements.get(ek)
            if held == owner:
                continue
            if held is not None:
                tx.element("delete", Element(held.container, held.key))
                del self.elements[ek]
            if owner is not None:
                adds.append(owner)
                self.elements[ek] = owner
        for e in adds:
            tx.element("add", e)
        delete_stale(sorted(gone_chains - made_chains), sorted(gone_sets - made_sets), out)
        return "\n".join(out) + ("\n" if out else "")

    def _claim(self, key: PortKey, objs: ServiceObjects) -> set[ElementKey]:
        mine = {(e.container, e.key): e for e in objs.elements}  # a later one replaces
        for ek, e in mine.items():
            self.claims.setdefault(ek, {})[key] = e
        return set(mine)

    def _unclaim(self, key: PortKey, objs: ServiceObjects) -> set[ElementKey]:
        mine = {(e.container, e.key) for e in objs.elements}
        for ek in mine:
            claims = self.claims[ek]
            del claims[key]
            if not claims:
                del self.claims[ek]
        return mine
