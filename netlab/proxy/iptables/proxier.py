"""iptables mode: apply the rendered rules with one ``iptables-restore`` per node.

As upstream's proxier, the first sync of each node is a full one and later syncs are partial:
the Services changed since the node's last sync (:attr:`Proxier.changes`, kube-proxy's change
trackers) are re-rendered into what the proxier remembers of the node
(:class:`~netlab.proxy.iptables.partial.NodeRules`), and the restore rewrites the top-level chains
and only the changed Services' own chains. A proxier that has synced nothing yet (a new ``netlab``
process, like a restarted kube-proxy) reads the node's chains with ``iptables-save`` and syncs in
full.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from netlab.cluster.state import ClusterState, Node
from netlab.kernel import rules
from netlab.proxy import nodeports
from netlab.proxy.base import Applied, PartialProxier
from netlab.proxy.changes import changed_views
from netlab.proxy.iptables.partial import NodeRules
from netlab.proxy.iptables.render import (
    IptablesOptions,
    chains_in_save,
    filter_save,
    render,
    service_chains,
)
from netlab.proxy.servicemap import node_view

# Above this many Service ports the nft back end of iptables-restore grows far worse than
# linearly (see docs/performance.md), so "auto" switches to the legacy back end.
AUTO_LEGACY_THRESHOLD = 2000


def pick_backend(requested: str, service_ports: int) -> str:
    if requested != "auto":
        return requested
    return "legacy" if service_ports > AUTO_LEGACY_THRESHOLD else "nft"


class IptablesProxier(PartialProxier[NodeRules]):
    mode = "iptables"
    cleans_stale_udp = True

    def __init__(self, state: ClusterState, backend: str | None = None):
        super().__init__(state)
        lab = state.lab
        count = len(node_view(state, state.nodes[0].name)) if state.nodes else 0
        self.backend = backend or pick_backend(lab.proxy.iptables_backend, count)

    def options(self, node: Node) -> IptablesOptions:
        addresses = nodeports.configured(self.state.lab.proxy.node_port_addresses, self.mode)
        return IptablesOptions(
            node_ip=node.ip,
            cluster_cidr=self.state.lab.network.pod_cidr,
            masquerade_all=self.state.lab.proxy.masquerade_all,
            # localhostNodePorts is on unless nodePortAddresses leaves out 127.0.0.1.
            localhost_nodeports=nodeports.contains_loopback(node, addresses),
            nodeport_ips=nodeports.node_port_ips(node, addresses),
        )

    def node_sysctls(self) -> dict[str, str]:
        # localhostNodePorts (the default) needs route_localnet; kube-proxy sets it, unless
        # nodePortAddresses leaves out 127.0.0.1 (the same on every node: a lab's nodes differ
        # only in their own addresses, which never hold the loopback's).
        addresses = nodeports.configured(self.state.lab.proxy.node_port_addresses, self.mode)
        if self.state.nodes and not nodeports.contains_loopback(self.state.nodes[0], addresses):
            return {}
        return {"net.ipv4.conf.all.route_localnet": "1"}

    def render_text(self, node: Node, *, first: bool, existing: Iterable[str] = ()) -> str:
        return render(node_view(self.state, node.name), self.options(node)).restore_text(
            bootstrap=first, existing_nat_chains=existing
        )

    def can_build_on(self, node: Node, held: NodeRules) -> bool:
        return held.opts == self.options(node)

    def sync_full(self, node: Node, *, first: bool) -> tuple[Applied, NodeRules]:
        opts = self.options(node)
        view = node_view(self.state, node.name)
        rendered = render(view, opts)
        kernel = 0.0
        existing: set[str] = set()
        if not first:  # a fresh node has no stale chains; a later full sync looks
            k0 = time.perf_counter()
            existing = chains_in_save(rules.iptables_save(node.netns, self.backend, "nat"))
            kernel += time.perf_counter() - k0
        text = rendered.restore_text(bootstrap=first, existing_nat_chains=existing)
        kernel += rules.iptables_restore(node.netns, text, self.backend)
        note = f"{self.backend} back end, full"
        return Applied(kernel, text.count("\n"), note), NodeRules(rendered, view, opts)

    def sync_partial(self, node: Node, held: NodeRules, changed: set[str]) -> Applied:
        rendered, ports, stale = held.update(changed_views(self.changes, changed, node))
        kernel, text = 0.0, ""
        if ports or stale:  # else nothing of this node's changed: the kernel holds it all
            text = rendered.text(bootstrap=False, stale=stale, changed=ports)
            kernel = rules.iptables_restore(node.netns, text, self.backend)
        return Applied(kernel, text.count("\n"), f"{self.backend} back end, partial")

    def live_rules(
        self, node: Node, service: tuple[str, str] | None = None, *, counters: bool = False
    ) -> str:
        text = rules.iptables_save(node.netns, self.backend, counters=counters)
        if service is None:
            return text
        svc = self.state.service(*service)
        return filter_save(
            text,
            service_chains(node_view(self.state, node.name), svc),
            f"{svc.meta.namespace}/{svc.meta.name}",
        )

    def describe(self) -> str:
        return f"iptables ({self.backend} back end)"
