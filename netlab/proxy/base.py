"""What every proxy mode provides to the lab: node sysctls, a sync, and a native live view."""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

from netlab.cluster.state import ClusterState, Node
from netlab.errors import LabError
from netlab.proxy.changes import ChangeTracker

M = TypeVar("M")  # what a proxier remembers of one node between syncs


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
    # Whether kube-proxy in this mode deletes stale UDP conntrack entries after a sync in which
    # a UDP Service's endpoints changed (pkg/proxy/conntrack, called by the iptables, ipvs and
    # nftables proxiers; the userspace proxier relayed UDP itself and did not).
    cleans_stale_udp: bool = False

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

    def live_raw(self, node: Node) -> str:
        """The node's state as the kernel's own tools dump it. For the rule-writing modes
        that is what :meth:`live_rules` shows already; the ebpf mode dumps its maps and
        attachments with bpftool."""
        return self.live_rules(node)

    def node_cgroup(self, node: Node) -> str | None:
        """The cgroup a node's own processes (node-sourced probes, ``netlab exec node/N``)
        must run in for this mode to handle their connections: the ebpf mode's socket
        load-balancing is attached there. None: anywhere will do."""
        del node
        return None

    def describe(self) -> str:
        return self.mode


@dataclass(frozen=True)
class Applied:
    """What one sync sent to a node's kernel."""

    kernel_seconds: float  # in the kernel's tools and netlink requests
    lines: int
    note: str


class PartialProxier(Proxier, Generic[M]):
    """A proxier whose syncs after a node's first are partial, as kube-proxy's are.

    The flow of syncProxyRules around ``tryPartialSync``: a node with nothing remembered (its
    first sync, or a proxier new to it) gets a full sync; later ones apply the Services changed
    since the node's last sync to what the proxier remembers of it (``held``). A partial sync
    the kernel refuses leaves the node's state unknown, so it is followed at once by a full one
    (upstream sets needFullSync and retries).
    """

    def __init__(self, state: ClusterState):
        super().__init__(state)
        self.held: dict[str, M] = {}

    @abc.abstractmethod
    def sync_full(self, node: Node, *, first: bool) -> tuple[Applied, M]:
        """Render everything, apply it; what the node now holds."""

    @abc.abstractmethod
    def sync_partial(self, node: Node, held: M, changed: set[str]) -> Applied:
        """Apply the Services ``changed`` to ``held`` (updating it) and to the node."""

    def can_build_on(self, node: Node, held: M) -> bool:
        """Whether a partial sync may start from ``held`` (not if the options changed)."""
        return True

    def sync(self, node: Node, *, first: bool) -> SyncResult:
        t0 = time.perf_counter()
        changed = self.pending(node, first=first)
        held = self.held.pop(node.name, None)
        applied = None
        refused = ""
        try:
            if changed is not None and held is not None and self.can_build_on(node, held):
                try:
                    applied = self.sync_partial(node, held, changed)
                except (LabError, OSError) as exc:
                    refused = f"partial sync refused: {exc}"
                    self.changes.forget(node.name)
                else:
                    self.held[node.name] = held
            if applied is None:
                applied, self.held[node.name] = self.sync_full(node, first=first)
                if refused:
                    applied = Applied(
                        applied.kernel_seconds, applied.lines, f"{applied.note} ({refused})"
                    )
                self.changes.synced_in_full(node.name)
        except BaseException:
            self.changes.forget(node.name)  # what the node holds is unknown: sync it in full
            raise
        netlab = time.perf_counter() - t0 - applied.kernel_seconds
        return SyncResult(node.name, applied.kernel_seconds, applied.lines, applied.note, netlab)
