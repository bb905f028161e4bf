"""What every proxy mode provides to the lab: node sysctls, a sync, and a native live view."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from netlab.cluster.state import ClusterState, Node


@dataclass(frozen=True)
class SyncResult:
    node: str
    seconds: float
    lines: int  # size of the transaction (rule lines, set elements...)
    note: str = ""


class Proxier(abc.ABC):
    """One kube-proxy mode. Rendering stays pure in the mode's ``render`` module; a proxier only
    applies what was rendered, through :mod:`netlab.kernel`."""

    mode: str = ""

    def __init__(self, state: ClusterState):
        self.state = state

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
