"""nftables mode: apply the rendered table with one ``nft -f -`` per node and sync.

As upstream's proxier, the first sync of each node is a full one, and later syncs are partial:
the Services changed since the node's last sync (:attr:`Proxier.changes`, kube-proxy's change
trackers) are re-rendered into what the proxier remembers of the node's table
(:class:`~netlab.proxy.nftables.partial.NodeTable`), and only their chains and the elements that
differ are written. A proxier that has synced nothing yet (a new ``netlab`` process, like a
restarted kube-proxy) lists the table and syncs in full.
"""

from __future__ import annotations

import time

from netlab.cluster.state import ClusterState, Node
from netlab.errors import UsageError
from netlab.kernel import process
from netlab.proxy.base import Proxier, SyncResult
from netlab.proxy.changes import changed_views
from netlab.proxy.nftables.partial import NodeTable
from netlab.proxy.nftables.render import (
    FAMILY,
    LAYOUTS,
    TABLE,
    Existing,
    NftablesOptions,
    build,
    filter_listing,
    parse_existing,
)
from netlab.proxy.servicemap import node_view

DEFAULT_LAYOUT = "kube-proxy"
# Above this many Service ports "auto" picks the fast layout: kube-proxy's takes ~25 s at 10k.
AUTO_FAST_THRESHOLD = 2000


def pick_layout(state: ClusterState) -> str:
    """The layout the Lab document asks for; ``auto`` is kube-proxy's unless the set is large."""
    wanted = state.lab.proxy.nftables_layout
    if wanted != "auto":
        return wanted
    ports = len(node_view(state, state.nodes[0].name)) if state.nodes else 0
    return "fast" if ports > AUTO_FAST_THRESHOLD else DEFAULT_LAYOUT


class NftablesProxier(Proxier):
    mode = "nftables"

    def __init__(self, state: ClusterState, layout: str | None = None):
        super().__init__(state)
        self.layout = layout or DEFAULT_LAYOUT
        if self.layout not in LAYOUTS:
            raise UsageError(
                f"unknown nftables layout {self.layout!r}", hint=f"layouts: {', '.join(LAYOUTS)}"
            )
        self._nodes: dict[str, NodeTable] = {}  # node -> what its table holds

    def options(self, node: Node) -> NftablesOptions:
        net = self.state.lab.network
        return NftablesOptions(
            node_ip=node.ip,
            cluster_cidr=net.pod_cidr,
            service_cidr=net.service_cidr,
            masquerade_all=self.state.lab.proxy.masquerade_all,
        )

    def node_sysctls(self) -> dict[str, str]:
        # No route_localnet: nftables mode does not support localhost NodePorts.
        return {}

    def existing(self, node: Node) -> Existing:
        """The table's chains and sets now, listed as upstream lists them before a sync."""
        chains = process.run(node.netns, ["nft", "-t", "list", "chains", FAMILY]).stdout
        sets = process.run(node.netns, ["nft", "-t", "list", "sets", FAMILY]).stdout
        return parse_existing(chains, sets)

    def render_text(self, node: Node, *, first: bool, existing: Existing | None = None) -> str:
        ruleset = build(node_view(self.state, node.name), self.options(node), self.layout)
        return ruleset.transaction(first=first, existing=existing)

    def sync(self, node: Node, *, first: bool) -> SyncResult:
        t0 = time.perf_counter()
        kernel = 0.0
        changed = self.pending(node, first=first)
        memory = self._nodes.pop(node.name, None)
        opts = self.options(node)
        try:
            if (
                changed is not None
                and memory is not None
                and (memory.opts, memory.layout) == (opts, self.layout)
            ):
                text = memory.update(changed_views(self.changes, changed, node.name))
                kind = "partial"
            else:
                view = node_view(self.state, node.name)
                ruleset = build(view, opts, self.layout)
                existing = None
                if not first:  # a fresh node has nothing stale; a later full sync looks first
                    k0 = time.perf_counter()
                    existing = self.existing(node)
                    kernel += time.perf_counter() - k0
                text = ruleset.transaction(first=first, existing=existing)
                memory, kind = NodeTable(ruleset, view), "full"
            if text:
                k0 = time.perf_counter()
                process.run(node.netns, ["nft", "-f", "-"], input=text, timeout=600)
                kernel += time.perf_counter() - k0
        except BaseException:
            self.changes.forget(node.name)  # what the node holds is unknown: sync it in full
            raise
        self._nodes[node.name] = memory
        if kind == "full":
            self.changes.synced_in_full(node.name)
        netlab = time.perf_counter() - t0 - kernel
        note = f"{self.layout} layout, {kind}"
        return SyncResult(node.name, kernel, text.count("\n"), note, netlab)

    def live_rules(
        self, node: Node, service: tuple[str, str] | None = None, *, counters: bool = False
    ) -> str:
        """``nft list table ip kube-proxy``. ``counters`` changes nothing: nft keeps counters
        only for rules with a ``counter`` statement, and kube-proxy's rules have none."""
        del counters
        text = process.run(node.netns, ["nft", "list", "table", FAMILY, TABLE]).stdout
        if service is None:
            return text
        svc = self.state.service(*service)
        return filter_listing(text, svc.meta.namespace, svc.meta.name, [svc.cluster_ip])

    def describe(self) -> str:
        return f"nftables ({self.layout} layout)"
