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
    # Whether kube-proxy in this mode deletes stale UDP conntrack entries after a sync in which
    # a UDP Service's endpoints changed (pkg/proxy/conntrack, called by the iptables, ipvs and
    # nftables proxiers; the userspace proxier relayed UDP itself and did not).
    cleans_stale_udp: bool = False

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

    def describe(self) -> str:
        return self.mode
