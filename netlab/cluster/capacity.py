"""What does not fit in a lab, found by counting before anything is allocated.

A Deployment of 2147483647 replicas must be refused at once, not after two billion pod objects
have been made, so pod addresses are counted per node the way the scheduler would spread the
pods (:func:`netlab.cluster.controllers.schedule`: the least loaded node first), without creating
one. Each problem names the object and field at fault, so validation can point at its line.
A pod with no address left is worded as the host-local IPAM plugin fails
(containernetworking/plugins ``plugins/ipam/host-local/backend/allocator/allocator.go``:
"no IP addresses available in range set").
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netlab.errors import Diagnostic, ScenarioError
from netlab.scenario.model import Scenario

# netlab makes one network namespace (and serves sockets) per pod: far above any teaching lab or
# benchmark, far below what would take minutes to build.
MAX_PODS = 10_000


@dataclass(frozen=True)
class Problem:
    """An object the cluster cannot take as it is: which object, which field, why, what to do."""

    kind: str  # "Pod", "Deployment", "Service", or "Lab" for the Lab document
    namespace: str
    name: str
    path: tuple[str | int, ...]
    message: str
    hint: str
    shown: str = ""  # the path to print, when not the dotted ``path`` (spec.clusterIPs)

    @property
    def category(self) -> str:
        if self.kind == "Lab":
            return f"Lab {self.name}"
        return f"{self.kind} {self.namespace}/{self.name}"


class ClusterError(ScenarioError):
    """The scenario is valid object by object but does not fit the lab (addresses, ports)."""

    def __init__(self, problems: list[Problem], file: str = ""):
        self.problems = problems
        super().__init__(
            [
                Diagnostic(
                    message=p.message,
                    file=file,
                    path=p.shown or ".".join(str(x) for x in p.path),
                    hint=p.hint,
                    category=p.category,
                )
                for p in problems
            ]
        )


def pods_per_node(node_cidr_mask_size: int) -> int:
    """Pod addresses in one node's pod CIDR: all but the network, cni0's and the broadcast
    address (host-local hands out the rest)."""
    return int(2 ** (32 - node_cidr_mask_size)) - 3


def pod_range(pod_cidr: str, mask: int, index: int) -> str:
    """host-local's range set for node ``index`` (1-based), as its errors print it."""
    first = int(ipaddress.IPv4Network(pod_cidr).network_address) + index * 2 ** (32 - mask)
    net = ipaddress.IPv4Network((first, mask))
    return f"{net.network_address + 1}-{net.broadcast_address - 1}"


def fill(counts: list[int], n: int) -> list[int]:
    """``counts`` after ``n`` pods are placed one by one on the least loaded node (the first of
    equals), computed without placing them one by one: water filling to the highest level ``n``
    reaches, then one more pod on each of the first nodes at that level."""
    if n <= 0:
        return list(counts)

    def need(level: int) -> int:
        return sum(max(0, level - c) for c in counts)

    lo, hi = min(counts), min(counts) + n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if need(mid) <= n:
            lo = mid
        else:
            hi = mid - 1
    out = [max(c, lo) for c in counts]
    for i in [i for i, c in enumerate(out) if c == lo][: n - need(lo)]:
        out[i] += 1
    return out


def pod_problems(scenario: Scenario, client_pods: int, dns_replicas: int) -> list[Problem]:
    """Pods that would get no address, or a lab of more than :data:`MAX_PODS` pods.

    The order is :func:`netlab.cluster.build.build_cluster`'s: the scenario's Pods, then its
    Deployments' replicas, then one client pod per node, then CoreDNS.
    """
    lab = scenario.lab
    nodes = list(lab.nodes)
    per_node = pods_per_node(lab.network.node_cidr_mask_size)
    counts = [0] * len(nodes)
    total = 0
    items: list[tuple[str, str, str, tuple[str | int, ...], int, str, bool]] = [
        (
            "Pod",
            p.meta.namespace,
            p.meta.name,
            ("metadata", "name"),
            1,
            p.spec.node_name,
            p.spec.host_network,
        )
        for p in scenario.pods
    ]
    items += [
        (
            "Deployment",
            d.meta.namespace,
            d.meta.name,
            ("spec", "replicas"),
            d.replicas,
            d.template_spec.node_name,
            d.template_spec.host_network,
        )
        for d in scenario.deployments
    ]
    items += [("Lab", "", lab.name, ("spec", "clientPods"), 1, n, False) for n in nodes][
        : client_pods * len(nodes)
    ]
    if dns_replicas:
        items.append(("Lab", "", lab.name, ("spec", "dns", "replicas"), dns_replicas, "", False))
    for kind, ns, name, path, n, pinned, host in items:
        total += n
        if total > MAX_PODS:
            return [
                Problem(
                    kind,
                    ns,
                    name,
                    path,
                    f"Invalid value: {n}: the lab would run {total} pods, and netlab runs at most "
                    f"{MAX_PODS} (one network namespace each)",
                    "use fewer replicas; a lab teaches as well with a handful of pods per Service",
                )
            ]
        if host:
            continue  # the node's own address: no pod address taken
        if pinned:
            if pinned not in nodes:
                continue  # reported where nodeName is checked
            counts[nodes.index(pinned)] += n
        else:
            counts = fill(counts, n)
        over = [i for i, c in enumerate(counts) if c > per_node]
        if over:
            i = over[0]
            mask = lab.network.node_cidr_mask_size
            bigger = pods_per_node(mask - 1) if mask > 16 else per_node
            return [
                Problem(
                    kind,
                    ns,
                    name,
                    path,
                    f"Invalid value: {n}: {nodes[i]} would need {counts[i]} pod addresses: "
                    f"failed to allocate for range 0: no IP addresses available in range set: "
                    f"{pod_range(lab.network.pod_cidr, mask, i + 1)}",
                    f"each node's /{mask} pod CIDR holds {per_node} pods; use fewer replicas, "
                    "more nodes (spec.nodes in the Lab document), or a shorter "
                    f"spec.network.nodeCIDRMaskSize (/{mask - 1} holds {bigger} per node)",
                )
            ]
    return []
