"""Where a new pod goes: its node (the scheduler), its address (the node's host-local IPAM), its
namespace's name; and the pod as the cluster state holds it."""

from __future__ import annotations

from netlab.cluster.ipam import next_pod_ip
from netlab.cluster.state import ClusterState, Node, PodInfo
from netlab.scenario.k8s import Pod

__all__ = ["node_netns", "place_pod", "pod_info", "pod_netns"]


def pod_netns(lab: str, namespace: str, name: str) -> str:
    """``<lab>-<pod>`` in the default namespace, ``<lab>-<namespace>.<pod>`` elsewhere.

    Namespaces cannot contain dots, so the split is unambiguous.
    """
    return f"{lab}-{name}" if namespace == "default" else f"{lab}-{namespace}.{name}"


def node_netns(lab: str, node: str) -> str:
    return f"{lab}-{node}"


def runs(pod: Pod) -> str:
    """What the agent serves in the pod."""
    if pod.meta.namespace == "kube-system" and pod.owner == "Deployment/coredns":
        return "coredns"
    if pod.meta.namespace == "kube-system" and pod.meta.name.startswith("kube-apiserver-"):
        return "apiserver"
    return "netexec"


def pod_info(lab: str, pod: Pod, node: Node, ip: str, role: str) -> PodInfo:
    """A pod as the cluster state holds it, placed on ``node`` with address ``ip``."""
    host = pod.spec.host_network
    return PodInfo(
        namespace=pod.meta.namespace,
        name=pod.meta.name,
        node=node.name,
        ip=node.ip if host else ip,
        netns=node.netns if host else pod_netns(lab, pod.meta.namespace, pod.meta.name),
        labels=dict(pod.meta.labels),
        ports=list(pod.ports),
        ready=pod.ready,
        hostname=pod.spec.hostname,
        subdomain=pod.spec.subdomain,
        host_network=host,
        owner=pod.owner,
        role=role,
        runs=runs(pod),
        containers=list(pod.spec.containers),
        grace_seconds=pod.spec.termination_grace_period_seconds,
        dns_policy=pod.spec.dns_policy,
        dns_config=pod.spec.dns_config,
    )


def place_pod(state: ClusterState, pod: Pod, role: str = "workload") -> PodInfo | None:
    """Schedule and address a pod created in a running cluster; None while no node can take it.

    As the lab's scheduler at build time: ``spec.nodeName`` if set, else the schedulable node
    (not tainted unreachable) running the fewest pods. The address is the node's next one after
    the last it handed out. A pod bound to a node that is not ready stays Pending (None), as
    its kubelet cannot start it.
    """
    if pod.spec.node_name:
        node = state.node(pod.spec.node_name)
        if not node.schedulable:
            # Bound to a node whose kubelet is gone: it would stay Pending, with no address.
            return None
    else:
        candidates = [n for n in state.nodes if n.schedulable]
        if not candidates:
            return None
        load = {n.name: 0 for n in candidates}
        for p in state.pods:
            if p.node in load and not p.host_network and not p.terminating:
                load[p.node] += 1
        node = min(candidates, key=lambda n: (load[n.name], state.nodes.index(n)))
    ip = node.ip
    if not pod.spec.host_network:
        used = {p.ip for p in state.pods if p.node == node.name}
        ip = next_pod_ip(node.pod_cidr, node.last_pod_ip, used)
        node.last_pod_ip = ip
    info = pod_info(state.lab.name, pod, node, ip, role)
    state.pods.append(info)
    return info
