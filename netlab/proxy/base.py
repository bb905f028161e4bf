"""What every proxy mode provides to the lab: node sysctls, a sync, and a native live view."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from netlab.cluster.state import ClusterState, Node
from netlab.proxy.changes import ChangeTracker


@dataclass(frozen=True)
class SyncResult:
    node: str
    seconds: float  # the kernel's share: the tools and netlink requests that applied the sync
    lines: int  # size of the transaction (rule lines, set elements...)
    note: str = ""
    netlab_seconds: float = 0.0  # netlab's own share: finding what changed, rendering, diffing


class Proxier(abc.ABC):
    """One kube-proxy mode. Rendering stays pure in the mode's ``render`` module; a proxier only
    applies what was rendered, through :mod:`netlab.kernel`.

    A proxier lives as long as the lab's kube-proxy would: the first sync of each node is a full
    one, later ones are partial where the mode's kube-proxy syncs partially, built on what the
    proxier remembers writing and on :attr:`changes`, the Services changed since each node's
    last sync (kube-proxy's change trackers; see :mod:`netlab.proxy.changes`).
    """

    mode: str = ""

    def __init__(self, state: ClusterState):
        self.state = state
        self.changes = ChangeTracker()

    def pending(self, node: Node, *, first: bool) -> set[str] | None:
        """The Services changed since ``node``'s last sync through this proxier, or None when a
        full sync is due (``first``, or nothing synced here yet: upstream's needFullSync)."""
        self.changes.observe(self.state)
        return None if first else self.changes.checkout(node.name)

    def node_sysctls(self) -> dict[str, str]:
        """Sysctls this mode sets inside each node namespace."""
        return {}

    @abc.abstractmethod
    def sync(self, node: Node, *, first: bool) -> SyncResult:
        """Program ``node`` for the current state in one transaction."""

    @abc.abstractmethod
    def live_rules(
        self, node: Node, service: tuple[str, str] | None = None, *, counters: bool = False
    ) -> str:
        """The node's live state as the mode's own tool prints it (optionally one Service's,
        optionally with packet counters)."""

    def describe(self) -> str:
        return self.mode
