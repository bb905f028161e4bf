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
from netlab.proxy import nodeports
from netlab.proxy.base import Applied, PartialProxier
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


class NftablesProxier(PartialProxier[NodeTable]):
    mode = "nftables"
    cleans_stale_udp = True

    def __init__(self, state: ClusterState, layout: str | None = None):
        super().__init__(state)
        self.layout = layout or DEFAULT_LAYOUT
        if self.layout not in LAYOUTS:
            raise UsageError(
                f"unknown nftables layout {self.layout!r}", hint=f"layouts: {', '.join(LAYOUTS)}"
            )

    def options(self, node: Node) -> NftablesOptions:
        net = self.state.lab.network
        addresses = nodeports.configured(self.state.lab.proxy.node_port_addresses, self.mode)
        return NftablesOptions(
            node_ip=node.ip,
            cluster_cidr=net.pod_cidr,
            service_cidr=net.service_cidr,
            masquerade_all=self.state.lab.proxy.masquerade_all,
            # () = MatchAll; kube-proxy's nftables default is "primary": the node IP only.
            nodeport_ips=nodeports.node_port_ips(node, addresses) or (),
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

    def can_build_on(self, node: Node, held: NodeTable) -> bool:
        return (held.opts, held.layout) == (self.options(node), self.layout)

    def sync_full(self, node: Node, *, first: bool) -> tuple[Applied, NodeTable]:
        view = node_view(self.state, node.name)
        ruleset = build(view, self.options(node), self.layout)
        t0 = time.perf_counter()
        # A fresh node has nothing stale; a later full sync looks first, as kube-proxy does.
        existing = None if first else self.existing(node)
        listed = time.perf_counter() - t0
        text = ruleset.transaction(first=first, existing=existing)
        kernel = listed + self._apply(node, text)
        note = f"{self.layout} layout, full"
        return Applied(kernel, text.count("\n"), note), NodeTable(ruleset, view)

    def sync_partial(self, node: Node, held: NodeTable, changed: set[str]) -> Applied:
        text = held.update(changed_views(self.changes, changed, node))
        kernel = self._apply(node, text)
        return Applied(kernel, text.count("\n"), f"{self.layout} layout, partial")

    def _apply(self, node: Node, text: str) -> float:
        """One ``nft -f`` (none for an empty transaction); seconds taken."""
        if not text:
            return 0.0
        t0 = time.perf_counter()
        process.run(node.netns, ["nft", "-f", "-"], input=text, timeout=600)
        return time.perf_counter() - t0

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
