"""iptables mode: what the proxier remembers of a node between syncs, for partial syncs.

kube-proxy's partial sync (kubernetes/kubernetes ``pkg/proxy/iptables/proxier.go``, v1.33,
``tryPartialSync``) still runs its loop over every Service port, and for the ones not in
``serviceUpdateResult.UpdatedServices`` or ``endpointUpdateResult.UpdatedServices`` sends their
own chains to ``skippedNatChains``/``skippedNatRules``. Go does that loop in milliseconds; in
Python it is most of a second at 10k Services, so netlab keeps each port's rendered share
(:class:`~netlab.proxy.iptables.restore.ServiceRules`) and renders only the changed Services'.
The restore input is then laid out from the kept shares exactly as from a full render's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from netlab.proxy.changes import PortKey, PortTable
from netlab.proxy.iptables.render import IptablesOptions, render_service
from netlab.proxy.iptables.restore import (
    LARGE_CLUSTER_ENDPOINTS_THRESHOLD,
    RenderedIptables,
    ServiceRules,
)
from netlab.proxy.servicemap import ProxiedService, port_key


class NodeRules:
    """What a node's kernel holds, per Service port, as this proxier last wrote it."""

    def __init__(
        self, rendered: RenderedIptables, services: Iterable[ProxiedService], opts: IptablesOptions
    ) -> None:
        self.opts = opts
        self.frame = rendered.frame
        self.large_cluster = rendered.large_cluster
        self.table: PortTable[ServiceRules] = PortTable(
            (svc, rules) for svc, (_, rules) in zip(services, rendered.services, strict=True)
        )
        self.endpoints = sum(rules.endpoints for _, rules in rendered.services)

    def rendered(self) -> RenderedIptables:
        """The node's rules as a full render of its view gives them."""
        return RenderedIptables(self.frame, _Shares(self.table), self.large_cluster)

    def update(
        self, views: Mapping[str, list[ProxiedService]]
    ) -> tuple[RenderedIptables, set[PortKey], list[str]]:
        """Replace the changed Services (``views``: each one's ports now) and return the
        rendered whole, the ports whose share changed or went, and the chains no longer
        written."""
        changed: set[PortKey] = set()
        gone: set[str] = set()
        made: set[str] = set()
        for key, view in views.items():
            new = [(svc, render_service(svc, self.opts, self.large_cluster)) for svc in view]
            old = self.table.replace(key, new)
            before = {k: rules for k, _, rules in old}
            made_keys = {port_key(svc.info.spn) for svc, _ in new}
            for svc, rules in new:
                k = port_key(svc.info.spn)
                if before.get(k) != rules:
                    changed.add(k)
                made |= rules.chains
            for k, _, rules in old:
                gone |= rules.chains
                if k not in made_keys:
                    changed.add(k)  # gone from the view: its top-level rules go too
            self.endpoints += sum(r.endpoints for _, r in new) - sum(r.endpoints for *_, r in old)
        large = self.endpoints > LARGE_CLUSTER_ENDPOINTS_THRESHOLD
        if large != self.large_cluster:
            # The comments of every Service's chains change: re-render them all.
            self.large_cluster = large
            for k, svc, rules in list(self.table):
                gone |= rules.chains
                fresh = render_service(svc, self.opts, large)
                self.table.items[k] = (svc, fresh)
                made |= fresh.chains
                changed.add(k)
        return self.rendered(), changed, sorted(gone - made)


class _Shares:
    """A node's Service port shares, in view order, read straight from its table."""

    def __init__(self, table: PortTable[ServiceRules]) -> None:
        self.table = table

    def __iter__(self) -> Iterator[tuple[PortKey, ServiceRules]]:
        items = self.table.items
        for key in self.table.order:
            yield key, items[key][1]
