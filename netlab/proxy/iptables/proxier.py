"""iptables mode: apply the rendered rules with one ``iptables-restore`` per node.

As upstream's proxier, the first sync of a proxier is a full one and later syncs are partial
(:meth:`RenderedIptables.partial_text`) from what this proxier last applied to the node; a
proxier that has applied nothing yet (a new ``netlab`` process, like a restarted kube-proxy) reads
the node's chains with ``iptables-save`` and syncs in full.
"""

from __future__ import annotations

from collections.abc import Iterable

from netlab.cluster.state import ClusterState, Node
from netlab.kernel import rules
from netlab.proxy import nodeports
from netlab.proxy.base import Proxier, SyncResult
from netlab.proxy.iptables.render import (
    IptablesOptions,
    RenderedIptables,
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


class IptablesProxier(Proxier):
    mode = "iptables"

    def __init__(self, state: ClusterState, backend: str | None = None):
        super().__init__(state)
        lab = state.lab
        count = len(node_view(state, state.nodes[0].name)) if state.nodes else 0
        self.backend = backend or pick_backend(lab.proxy.iptables_backend, count)
        self._applied: dict[str, RenderedIptables] = {}  # node -> what its kernel holds

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

    def sync(self, node: Node, *, first: bool) -> SyncResult:
        rendered = render(node_view(self.state, node.name), self.options(node))
        previous = None if first else self._applied.get(node.name)
        if previous is not None:
            text, kind = rendered.partial_text(previous), "partial"
        else:
            # A fresh node has no stale chains; a full later sync looks, as kube-proxy does.
            existing = (
                ()
                if first
                else chains_in_save(rules.iptables_save(node.netns, self.backend, "nat"))
            )
            text = rendered.restore_text(bootstrap=first, existing_nat_chains=existing)
            kind = "full"
        seconds = rules.iptables_restore(node.netns, text, self.backend)
        self._applied[node.name] = rendered
        return SyncResult(node.name, seconds, text.count("\n"), f"{self.backend} back end, {kind}")

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
