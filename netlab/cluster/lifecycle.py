"""Time in the cluster: what the node lifecycle controller and the kubelets do as it passes.

- A pod that is deleted terminates for its grace period, then its kubelet reports it gone and it
  leaves the cluster; a kubelet that cannot be reached never reports it, so it stays terminating
  until its node comes back (kubectl shows it Terminating).
- A node that goes silent stays Ready for ``nodeMonitorGracePeriod``; then the node lifecycle
  controller sets its Ready condition to Unknown, taints it ``node.kubernetes.io/unreachable``
  (NoSchedule and NoExecute) and marks its pods not ready, so their endpoints stop being used.
  Pods tolerate the NoExecute taint for ``tolerationSeconds`` (kube-apiserver's default 300,
  from the DefaultTolerationSeconds admission plugin) and are then evicted: deleted, which on an
  unreachable node leaves them terminating, while their Deployments replace them elsewhere.
- A node that comes back posts Ready again: the taints go, its pods are ready again, and pods
  deleted meanwhile finish terminating.

Follows kubernetes/kubernetes ``pkg/controller/nodelifecycle`` and
``pkg/controller/tainteviction`` (v1.33). The lab's client pods tolerate the taints forever (as a
DaemonSet's pods do), and static pods (the API server's) are never evicted.

Everything here is a pure function of the state and the time; times are seconds since the epoch.
"""

from __future__ import annotations

from netlab.cluster.replicas import start_deletion
from netlab.cluster.state import ClusterState, Node, PodInfo


def node_down(state: ClusterState, node: Node, now: float) -> list[str]:
    if not node.reachable:
        return [f"node {node.name} is already down"]
    node.reachable = False
    node.unreachable_since = now
    grace = state.lab.control_plane.node_monitor_grace_period
    return [
        f"node {node.name} unreachable: its kubelet posts no status; the node lifecycle "
        f"controller waits nodeMonitorGracePeriod ({grace:g}s)"
    ]


def node_up(state: ClusterState, node: Node, now: float) -> list[str]:
    if node.reachable:
        return [f"node {node.name} is already up"]
    said = [f"node {node.name} Ready: its kubelet posts status again"]
    if not node.ready:
        said.append(f"node {node.name}: taints node.kubernetes.io/unreachable removed")
    node.reachable = True
    node.unreachable_since = 0.0
    node.ready = True
    node.not_ready_since = 0.0
    return said + finish_terminations(state, now)


def evictable(pod: PodInfo) -> bool:
    """Pods without a toleration for the unreachable taint beyond tolerationSeconds."""
    return pod.role != "client" and not pod.owner.startswith("Node/") and not pod.terminating


def termination_due(pod: PodInfo) -> float:
    return pod.deletion_timestamp + pod.deletion_grace


def sync_nodes(state: ClusterState, now: float) -> list[str]:
    """Whatever became due by ``now``: nodes marked not ready, pods evicted, terminations done."""
    said: list[str] = []
    cp = state.lab.control_plane
    for node in state.nodes:
        if node.reachable:
            continue
        if node.ready and now >= node.unreachable_since + cp.node_monitor_grace_period:
            node.ready = False
            node.not_ready_since = node.unreachable_since + cp.node_monitor_grace_period
            pods = [p for p in state.pods if p.node == node.name and not p.host_network]
            said.append(
                f"node {node.name} NotReady (Ready Unknown): tainted "
                f"node.kubernetes.io/unreachable NoSchedule and NoExecute; "
                f"{len(pods)} pods on it marked not ready"
            )
        if not node.ready:
            due = node.not_ready_since + cp.unreachable_toleration_seconds
            if now >= due:
                for pod in state.pods:
                    if pod.node == node.name and evictable(pod):
                        seconds = cp.unreachable_toleration_seconds
                        said.append(
                            f"{start_deletion(pod, due, None)}: evicted from unreachable "
                            f"node {node.name} (tolerationSeconds {seconds:g})"
                        )
    return said + finish_terminations(state, now)


def finish_terminations(state: ClusterState, now: float) -> list[str]:
    """Terminating pods whose grace period is over, on nodes whose kubelet can say so, go."""
    reachable = {n.name for n in state.nodes if n.reachable}
    gone = [
        p for p in state.pods if p.terminating and p.node in reachable and now >= termination_due(p)
    ]
    if not gone:
        return []
    ids = {id(p) for p in gone}
    state.pods = [p for p in state.pods if id(p) not in ids]
    return [f"pod {p.key} gone (grace period over)" for p in gone]


def remove_now(state: ClusterState, pod: PodInfo) -> str:
    """A forced deletion (grace period 0): the pod object goes at once, whatever its node."""
    state.pods = [p for p in state.pods if p is not pod]
    return f"pod {pod.key} deleted at once (grace 0)"


def next_due(state: ClusterState) -> float | None:
    """When the next timed transition is due (None: nothing is waiting for time)."""
    cp = state.lab.control_plane
    times: list[float] = []
    reachable = {n.name for n in state.nodes if n.reachable}
    times += [termination_due(p) for p in state.pods if p.terminating and p.node in reachable]
    for node in state.nodes:
        if node.reachable:
            continue
        if node.ready:
            times.append(node.unreachable_since + cp.node_monitor_grace_period)
        elif any(p.node == node.name and evictable(p) for p in state.pods):
            times.append(node.not_ready_since + cp.unreachable_toleration_seconds)
    return min(times) if times else None
