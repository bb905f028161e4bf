"""userspace mode: iptables steers Service traffic to proxy sockets the lab's agent serves.

The proxy sockets live in the agent (one process for the whole lab, as for the pods): a socket per
Service port per node, bound to 0.0.0.0:<proxy port> inside the node's namespace, choosing an
endpoint round-robin (or by client IP with ClientIP affinity) and copying bytes both ways. This
module only applies the steering rules; ``render.proxies`` tells the agent what to serve.

A node's first sync flushes and refills the portal chains; later ones are partial
(:mod:`netlab.proxy.userspace.partial`): the changed Service ports' rules are deleted and
inserted in place, as the userspace proxier opened and closed portals one by one.
"""

from __future__ import annotations

from netlab.cluster.state import ClusterState, Node
from netlab.kernel import rules
from netlab.proxy.base import Applied, PartialProxier
from netlab.proxy.changes import changed_views
from netlab.proxy.iptables.proxier import pick_backend
from netlab.proxy.servicemap import node_view
from netlab.proxy.userspace.partial import NodePortals
from netlab.proxy.userspace.render import portals, render


class UserspaceProxier(PartialProxier[NodePortals]):
    mode = "userspace"

    def __init__(self, state: ClusterState, backend: str | None = None):
        super().__init__(state)
        self.backend = backend or pick_backend(state.lab.proxy.iptables_backend, 0)

    def render_text(self, node: Node, *, first: bool) -> str:
        return render(portals(node_view(self.state, node.name)), node.ip, bootstrap=first)

    def can_build_on(self, node: Node, held: NodePortals) -> bool:
        return held.node_ip == node.ip

    def sync_full(self, node: Node, *, first: bool) -> tuple[Applied, NodePortals]:
        held = NodePortals(node.ip, node_view(self.state, node.name))
        text = held.text(bootstrap=first)
        seconds = rules.iptables_restore(node.netns, text, self.backend)
        return Applied(seconds, text.count("\n"), f"{self.backend} back end, full"), held

    def sync_partial(self, node: Node, held: NodePortals, changed: set[str]) -> Applied:
        text = held.update(changed_views(self.changes, changed, node))
        seconds = rules.iptables_restore(node.netns, text, self.backend) if text else 0.0
        return Applied(seconds, text.count("\n"), f"{self.backend} back end, partial")

    def live_rules(
        self, node: Node, service: tuple[str, str] | None = None, *, counters: bool = False
    ) -> str:
        text = rules.iptables_save(node.netns, self.backend, counters=counters)
        if service is None:
            return text
        key = f"{service[0]}/{service[1]}"
        keep = [
            ln
            for ln in text.splitlines()
            if not ln.startswith(("-A", "["))
            or f"--comment {key}:" in ln
            or f"--comment {key} " in ln
            or f'--comment "{key}' in ln
        ]
        return "\n".join(keep) + "\n"

    def describe(self) -> str:
        return f"userspace (round-robin proxy sockets, iptables {self.backend} back end)"
