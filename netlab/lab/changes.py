"""A live lab follows a change the way a cluster does.

The change is written into the desired state (:mod:`netlab.cluster.changes`, pure); then each
pass of the controllers is realized in the kernel before the next, as the cluster's components
react one after the other:

1. new pods get their sandbox: namespace, veth on their node's bridge, address, route and
   resolver files (the CNI ADD);
2. the agent reloads: new pods' servers listen, removed pods' servers stop and close what they
   had open (their process exits), cluster DNS and kube-proxy's health servers answer from the
   new state;
3. removed pods' namespaces go (the CNI DEL), a node that went down is cut off from the node
   network, one that came back is joined again;
4. every reachable node's proxy syncs (partially, where the mode does); a node that is down keeps
   the rules it had, as its kube-proxy cannot hear the API server;
5. in the modes where kube-proxy does it, stale UDP conntrack entries are deleted;
6. the cloud load balancer health-checks the nodes again and moves its routes.

What only time brings (a grace period ending, a silent node marked not ready, evictions) is
realized the same way when it is due: :func:`run_until` waits for it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from netlab.cluster import changes, topology
from netlab.cluster.lifecycle import termination_due
from netlab.cluster.state import ClusterState, PodInfo
from netlab.kernel import build as kbuild
from netlab.kernel import conntrack, etcnetns, netns
from netlab.lab import cloud
from netlab.lab.record import LabRecord, write_record
from netlab.proxy import conntrack as stale
from netlab.proxy.base import Proxier, SyncResult
from netlab.scenario.changespec import Change, ProxyChange, WaitChange


class Lab(Protocol):
    """What a change needs of :class:`netlab.lab.lifecycle.Lab`."""

    @property
    def state(self) -> ClusterState: ...
    @property
    def proxier(self) -> Proxier: ...

    record: LabRecord

    def reload_agent(self, timeout: float = 30) -> None: ...
    def restart_proxy(self) -> None: ...
    def exclusive(self) -> contextlib.AbstractContextManager[None]: ...


OnPhase = Callable[["Phase"], None]
Clock = Callable[[], float]


@dataclass
class Phase:
    """One moment of a change: what the controllers did, and how long the lab took to
    converge on it (from the change to every reachable node synced)."""

    at: float  # seconds since the change was asked for
    said: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # pods whose sandboxes were made
    removed: list[str] = field(default_factory=list)
    syncs: list[SyncResult] = field(default_factory=list)
    conntrack_deleted: dict[str, int] = field(default_factory=dict)  # node -> entries
    seconds: float = 0.0

    def to_data(self) -> dict[str, Any]:
        return {
            "at": round(self.at, 3),
            "events": self.said,
            "podsAdded": self.added,
            "podsRemoved": self.removed,
            "convergedSeconds": round(self.seconds, 4),
            "syncs": [
                {"node": s.node, "seconds": round(s.seconds, 4), "lines": s.lines, "note": s.note}
                for s in self.syncs
            ],
            "conntrackDeleted": self.conntrack_deleted,
        }


@dataclass
class ChangeReport:
    change: str
    phases: list[Phase] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # still waiting for time
    converged: float = 0.0  # seconds the lab took to converge on the change itself
    # What fell due before the change, since the lab last changed (realized first).
    caught_up: list[Phase] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Time the lab took to converge on the change itself (or, for time passing, on the
        first thing that happened)."""
        return self.converged or (self.phases[0].seconds if self.phases else 0.0)

    def to_data(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "convergedSeconds": round(self.seconds, 4),
            "phases": [p.to_data() for p in self.phases],
            "pending": self.pending,
            "caughtUp": [p.to_data() for p in self.caught_up],
        }


def change(
    lab: Lab,
    what: Change,
    *,
    wait: bool = True,
    on_phase: OnPhase | None = None,
    clock: Clock = time.time,
) -> ChangeReport:
    """Apply ``what`` to the live lab and converge. With ``wait``, also live through what it
    set in motion (grace periods, a node's grace period and evictions) until nothing is
    pending. Raises :class:`netlab.cluster.changes.ChangeRefused` with nothing changed."""
    report = ChangeReport(what.describe())
    if isinstance(what, WaitChange):
        start = clock()
        run_until(lab, start + what.seconds, report, on_phase, clock, origin=start)
        _sleep_until(start + what.seconds, clock)
        report.pending = pending(lab, clock())
        return report
    with lab.exclusive():
        # What fell due while nobody looked comes first.
        run_until(lab, clock(), report, on_phase, clock, into=report.caught_up)
        start = clock()
        before = _snapshot(lab)
        said = changes.apply_change(lab.state, what, start)
        if isinstance(what, ProxyChange):
            lab.restart_proxy()
        restarted = isinstance(what, ProxyChange)
        report.phases.append(converge(lab, before, said, start, start, restarted=restarted))
        report.converged = report.phases[-1].seconds
    _tell(on_phase, report.phases[-1])
    if wait:
        run_until(lab, None, report, on_phase, clock, origin=start)
    report.pending = pending(lab, clock())
    return report


def catch_up(
    lab: Lab, *, on_phase: OnPhase | None = None, clock: Clock = time.time
) -> ChangeReport:
    """Realize what fell due while nobody was changing the lab."""
    report = ChangeReport("time passes")
    run_until(lab, clock(), report, on_phase, clock)
    report.pending = pending(lab, clock())
    return report


def run_until(
    lab: Lab,
    until: float | None,
    report: ChangeReport,
    on_phase: OnPhase | None,
    clock: Clock,
    origin: float | None = None,
    into: list[Phase] | None = None,
) -> None:
    """Realize every timed transition due up to ``until`` (None: until none is left), each
    when it is due; the phases go to ``into`` (default: the report's phases)."""
    phases = report.phases if into is None else into
    while (due := changes.next_due(lab.state)) is not None and (until is None or due <= until):
        _sleep_until(due, clock)
        with lab.exclusive():  # another process may have changed the lab while this one slept
            due = changes.next_due(lab.state)
            if due is None or due > clock():
                continue
            now = clock()
            before = _snapshot(lab)
            phase = converge(lab, before, [], now, origin if origin is not None else now)
        if phase.said or phase.added or phase.removed:
            phases.append(phase)
            _tell(on_phase, phase)


def converge(
    lab: Lab,
    before: dict[str, Any],
    said: list[str],
    now: float,
    origin: float,
    restarted: bool = False,
) -> Phase:
    """Run the controllers until they rest, realizing each pass in the kernel."""
    t0 = time.perf_counter()
    phase = Phase(at=max(0.0, now - origin), said=list(said))
    services: set[str] = set()
    for i in range(1000):
        p = changes.run_controllers(lab.state, now)
        phase.said += p.said
        services |= p.services
        if i > 0 and not p.changed:
            break
        # The first pass is realized even if the controllers did nothing: the change itself
        # (a node cut off, kube-proxy restarted) may need the kernel.
        realize(lab, before, phase, services, restarted)
        restarted = False
        services = set()
        before = _snapshot(lab)
        if not p.changed:
            break
    phase.seconds = time.perf_counter() - t0
    return phase


def realize(
    lab: Lab, before: dict[str, Any], phase: Phase, services: set[str], restarted: bool
) -> None:
    """Bring the kernel to the desired state, in the order of the module docstring."""
    state = lab.state
    record = lab.record
    old_pods: dict[str, PodInfo] = before["pods"]
    now_pods = {p.netns: p for p in state.pods if not p.host_network}
    added = [p for n, p in now_pods.items() if n not in old_pods]
    removed = [p for n, p in old_pods.items() if n not in now_pods]
    if added:
        made: list[str] = []
        try:
            kbuild.add_pods(topology.pods_plan(state, added), made)
        finally:
            record.netns += made
            write_record(record)
        phase.added += [p.key for p in added]
    lab.reload_agent()
    nodes = {n.name: n for n in state.nodes}
    for pod in removed:
        # The CNI DEL: the veth goes at once (the namespace itself is freed by the kernel later,
        # when nothing holds it any more: meanwhile its address must not answer).
        node = nodes.get(pod.node)
        if node is not None:
            kbuild.delete_link(node.netns, topology.veth_name(pod.netns))
        etcnetns.remove(pod.netns)
        netns.remove(pod.netns)
        phase.removed.append(pod.key)
    gone = {p.netns for p in removed}
    record.netns = [n for n in record.netns if n not in gone]
    for node in state.nodes:
        if before["reachable"].get(node.name, True) != node.reachable:
            kbuild.set_link_state(
                state.fabric_netns, topology.veth_name(node.netns), node.reachable
            )
    reachable = [n for n in state.nodes if n.reachable]
    phase.syncs += [lab.proxier.sync(node, first=False) for node in reachable]
    proxy = state.lab.proxy
    if (
        proxy.conntrack_cleanup
        and lab.proxier.cleans_stale_udp
        and (restarted or stale.cleanup_required(state, services))
    ):
        frontends = stale.udp_frontends(state)
        for node in reachable:
            doomed = stale.stale_entries(conntrack.list_entries(node.netns), frontends)
            if doomed:
                conntrack.delete_entries(node.netns, doomed)
                phase.conntrack_deleted[node.name] = len(doomed)
    if before["load_balancers"] or any(s.type == "LoadBalancer" for s in state.services):
        programmed = cloud.program(state)
        kept = {b.address for b in programmed}
        cloud.withdraw(state, [b.address for b in record.load_balancers if b.address not in kept])
        record.load_balancers = programmed
    write_record(record)


def pending(lab: Lab, now: float) -> list[str]:
    """What is still waiting for time, in words."""
    state = lab.state
    cp = state.lab.control_plane
    out: list[str] = []
    reachable = {n.name for n in state.nodes if n.reachable}
    for p in state.pods:
        if not p.terminating:
            continue
        if p.node in reachable:
            out.append(
                f"pod {p.key} terminating, gone in {max(0.0, termination_due(p) - now):.0f}s"
            )
        else:
            out.append(f"pod {p.key} terminating until node {p.node} is back")
    for node in state.nodes:
        if node.reachable:
            continue
        if node.ready:
            left = node.unreachable_since + cp.node_monitor_grace_period - now
            out.append(f"node {node.name} down, marked NotReady in {max(0.0, left):.0f}s")
        else:
            left = node.not_ready_since + cp.unreachable_toleration_seconds - now
            out.append(
                f"node {node.name} NotReady; its pods are evicted in {max(0.0, left):.0f}s"
                if left > 0
                else f"node {node.name} NotReady; its pods are evicted"
            )
    return out


def _snapshot(lab: Lab) -> dict[str, Any]:
    state = lab.state
    return {
        "pods": {p.netns: p for p in state.pods if not p.host_network},
        "reachable": {n.name: n.reachable for n in state.nodes},
        "load_balancers": list(lab.record.load_balancers),
    }


def _sleep_until(t: float, clock: Clock) -> None:
    while (left := t - clock()) > 0:
        time.sleep(min(left, 0.5))


def _tell(on_phase: OnPhase | None, phase: Phase) -> None:
    if on_phase is not None:
        on_phase(phase)
