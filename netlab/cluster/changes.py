"""A change to the cluster, the Kubernetes way: the new desired state is written (as the API
server would accept it), then the controllers recompute what follows from it.

:func:`apply_change` writes one change into the state (or refuses it with the API server's
words); :func:`run_controllers` is one pass of the controllers (node lifecycle and kubelets as
time passes, Deployments and ReplicaSets, the EndpointSlice controller); :func:`next_due` says
when time alone will change something next. All pure: the lab realizes each pass in the kernel
(:mod:`netlab.lab.changes`), and validation plays a scenario's whole timeline through the same
functions without building anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from netlab.cluster import lifecycle
from netlab.cluster.allocate import Allocators
from netlab.cluster.build import SYSTEM_SERVICES, recompute_slices
from netlab.cluster.placement import place_pod
from netlab.cluster.replicas import start_deletion, sync_deployments
from netlab.cluster.state import ClusterState, PodInfo
from netlab.scenario.changespec import (
    ApplyChange,
    Change,
    DeleteChange,
    NodeChange,
    ProxyChange,
    ReadyChange,
    ScaleChange,
    WaitChange,
)
from netlab.scenario.checkspec import Origin
from netlab.scenario.k8s import Deployment, Pod, Service
from netlab.scenario.labspec import CLIENT_NAMESPACE
from netlab.scenario.load import BUILTIN_NAMESPACES

SYSTEM_DEPLOYMENTS = {"kube-system/coredns"}


class ChangeRefused(Exception):
    """The API server (or the lab) refuses the change; nothing was changed."""

    def __init__(self, message: str, hint: str = "", origin: Origin | None = None):
        self.hint = hint
        self.origin = origin
        super().__init__(message)


@dataclass
class Pass:
    """What one pass of the controllers did."""

    said: list[str] = field(default_factory=list)
    services: set[str] = field(default_factory=set)  # Services whose EndpointSlices changed

    @property
    def changed(self) -> bool:
        return bool(self.said or self.services)


def apply_change(state: ClusterState, change: Change, now: float) -> list[str]:
    """Write ``change`` into the desired state; what was done. Refused changes raise
    :class:`ChangeRefused` before anything is written."""
    if isinstance(change, ScaleChange):
        deploy = _deployment(state, change.namespace, change.name, change.origin)
        before = deploy.replicas
        deploy.replicas = change.replicas
        ref = f"{deploy.meta.namespace}/{deploy.meta.name}"
        return [f"deployment.apps/{ref} scaled {before} -> {change.replicas}"]
    if isinstance(change, DeleteChange):
        return _delete(state, change, now)
    if isinstance(change, NodeChange):
        try:
            node = state.node(change.node)
        except KeyError:
            names = ", ".join(n.name for n in state.nodes)
            raise ChangeRefused(
                f'nodes "{change.node}" not found', f"nodes: {names}", change.origin
            ) from None
        if change.up:
            return lifecycle.node_up(state, node, now)
        return lifecycle.node_down(state, node, now)
    if isinstance(change, ReadyChange):
        pod = find_pod(state, change.namespace, change.name, change.origin)
        pod.ready = change.ready
        return [f"pod/{pod.key} readiness probe {'passes' if change.ready else 'fails'}"]
    if isinstance(change, ProxyChange):
        proxy = state.lab.proxy
        if change.conntrack_cleanup is not None:
            proxy = replace(proxy, conntrack_cleanup=change.conntrack_cleanup)
        state.lab = replace(state.lab, proxy=proxy)
        return [f"kube-proxy restarted (conntrackCleanup {str(proxy.conntrack_cleanup).lower()})"]
    if isinstance(change, WaitChange):
        return []
    return _apply(state, change, now)


def run_controllers(state: ClusterState, now: float) -> Pass:
    """One pass: time-driven transitions, then Deployments and ReplicaSets, then EndpointSlices."""
    said = lifecycle.sync_nodes(state, now)
    said += sync_deployments(state, now)
    return Pass(said, recompute_slices(state))


def next_due(state: ClusterState) -> float | None:
    return lifecycle.next_due(state)


def settle(state: ClusterState, now: float) -> list[Pass]:
    """Run the controllers until nothing more follows at ``now`` (for validation, which has no
    kernel to realize each pass in)."""
    passes: list[Pass] = []
    for _ in range(1000):  # each pass either changes something or ends the loop
        p = run_controllers(state, now)
        if not p.changed:
            return passes
        passes.append(p)
    raise RuntimeError("the controllers did not settle")  # pragma: no cover


# ------------------------------------------------------------------------------------------
# Lookups, worded as kubectl's NotFound errors


def find_pod(state: ClusterState, namespace: str, name: str, origin: Origin | None) -> PodInfo:
    if namespace:
        for p in state.pods:
            if (p.namespace, p.name) == (namespace, name):
                return p
        raise ChangeRefused(f'pods "{name}" not found in namespace {namespace}', "", origin)
    matches = [p for p in state.pods if p.name == name]
    default = [p for p in matches if p.namespace == "default"]
    if default:
        return default[0]
    if len(matches) == 1:
        return matches[0]
    if matches:
        spaces = ", ".join(sorted(p.namespace for p in matches))
        raise ChangeRefused(
            f'pod "{name}" exists in several namespaces ({spaces})',
            "write NAMESPACE/NAME",
            origin,
        )
    names = ", ".join(sorted(p.key for p in state.pods if p.role == "workload")[:8])
    raise ChangeRefused(f'pods "{name}" not found', f"pods: {names or 'none'}", origin)


def _deployment(
    state: ClusterState, namespace: str, name: str, origin: Origin | None
) -> Deployment:
    ns = namespace or "default"
    try:
        return state.deployment(ns, name)
    except KeyError:
        names = ", ".join(f"{d.meta.namespace}/{d.meta.name}" for d in state.deployments)
        raise ChangeRefused(
            f'deployments.apps "{name}" not found', f"deployments: {names or 'none'}", origin
        ) from None


def _service(state: ClusterState, namespace: str, name: str, origin: Origin | None) -> Service:
    ns = namespace or "default"
    try:
        return state.service(ns, name)
    except KeyError:
        names = ", ".join(
            f"{s.meta.namespace}/{s.meta.name}"
            for s in state.services
            if f"{s.meta.namespace}/{s.meta.name}" not in SYSTEM_SERVICES
        )
        raise ChangeRefused(
            f'services "{name}" not found', f"services: {names or 'none'}", origin
        ) from None


# ------------------------------------------------------------------------------------------
# delete


def _delete(state: ClusterState, change: DeleteChange, now: float) -> list[str]:
    if change.resource == "pod":
        pod = find_pod(state, change.namespace, change.name, change.origin)
        if change.grace == 0:
            return [lifecycle.remove_now(state, pod)]
        return [start_deletion(pod, now, change.grace)]
    if change.resource == "service":
        svc = _service(state, change.namespace, change.name, change.origin)
        key = f"{svc.meta.namespace}/{svc.meta.name}"
        if key in SYSTEM_SERVICES:
            raise ChangeRefused(f"service {key} is part of every lab", "", change.origin)
        state.services = [s for s in state.services if s is not svc]
        return [f'service "{key}" deleted']
    deploy = _deployment(state, change.namespace, change.name, change.origin)
    key = f"{deploy.meta.namespace}/{deploy.meta.name}"
    state.deployments = [d for d in state.deployments if d is not deploy]
    said = [f'deployment.apps "{key}" deleted']
    # The garbage collector deletes its ReplicaSets, and they their pods (gracefully).
    for rs in state.replica_sets:
        if (rs.namespace, rs.deployment) == (deploy.meta.namespace, deploy.meta.name):
            rs.replicas = 0
    return said


# ------------------------------------------------------------------------------------------
# apply


def _apply(state: ClusterState, change: ApplyChange, now: float) -> list[str]:
    """kubectl apply: validate everything against the cluster first, then write it all."""
    known = set(BUILTIN_NAMESPACES) | set(state.namespaces) | {CLIENT_NAMESPACE}
    known |= {n.meta.name for n in change.namespaces}

    def origin(kind: str, ns: str, name: str) -> Origin | None:
        return change.origins.get(f"{kind}/{ns}/{name}", change.origin)

    objects: list[Pod | Deployment | Service] = [
        *change.pods,
        *change.deployments,
        *change.services,
    ]
    for obj in objects:
        kind = type(obj).__name__
        if obj.meta.namespace not in known:
            raise ChangeRefused(
                f'namespaces "{obj.meta.namespace}" not found',
                f"apply a Namespace named {obj.meta.namespace} first",
                origin(kind, obj.meta.namespace, obj.meta.name),
            )
    for pod in change.pods:
        _check_pod_update(state, pod, origin("Pod", pod.meta.namespace, pod.meta.name))
    for deploy in change.deployments:
        _check_deployment_update(
            state, deploy, origin("Deployment", deploy.meta.namespace, deploy.meta.name)
        )
    runnable: list[Pod | Deployment] = [*change.pods, *change.deployments]
    for placed in runnable:
        spec = placed.spec if isinstance(placed, Pod) else placed.template_spec
        if spec.node_name and spec.node_name not in {n.name for n in state.nodes}:
            raise ChangeRefused(
                f'node "{spec.node_name}" is not in the lab',
                f"the lab's nodes are {', '.join(n.name for n in state.nodes)}",
                origin(type(placed).__name__, placed.meta.namespace, placed.meta.name),
            )
    services = _allocate(state, change, origin)

    said: list[str] = []
    for ns in change.namespaces:
        if ns.meta.name not in known - {n.meta.name for n in change.namespaces}:
            state.namespaces.append(ns.meta.name)
            said.append(f"namespace/{ns.meta.name} created")
    for svc, before in services:
        key = f"{svc.meta.namespace}/{svc.meta.name}"
        if before is None:
            state.services.append(svc)
            said.append(f"service/{key} created")
        elif svc != before:
            state.services[state.services.index(before)] = svc
            said.append(f"service/{key} configured")
    for deploy in change.deployments:
        key = f"{deploy.meta.namespace}/{deploy.meta.name}"
        try:
            old = state.deployment(deploy.meta.namespace, deploy.meta.name)
        except KeyError:
            state.deployments.append(deploy)
            said.append(f"deployment.apps/{key} created")
            continue
        if old != deploy:
            state.deployments[state.deployments.index(old)] = deploy
            said.append(f"deployment.apps/{key} configured")
    for pod in change.pods:
        said += _apply_pod(state, pod)
    if change.prune:
        said += _prune(state, change, now)
    return said


def _check_pod_update(state: ClusterState, pod: Pod, origin: Origin | None) -> None:
    """A pod's spec is immutable; its labels and annotations are not (ValidatePodUpdate)."""
    for p in state.pods:
        if (p.namespace, p.name) != (pod.meta.namespace, pod.meta.name):
            continue
        same = (
            p.ports == pod.ports
            and (pod.spec.node_name or p.node) == p.node
            and p.hostname == pod.spec.hostname
            and p.subdomain == pod.spec.subdomain
            and p.host_network == pod.spec.host_network
        )
        if not same:
            raise ChangeRefused(
                f'Pod "{pod.meta.name}" is invalid: spec: Forbidden: pod updates may not change '
                "fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
                "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
                "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if "
                "it was previously negative)",
                "delete the pod and apply it again to change its spec",
                origin,
            )


def _check_deployment_update(
    state: ClusterState, deploy: Deployment, origin: Origin | None
) -> None:
    for d in state.deployments:
        if (d.meta.namespace, d.meta.name) != (deploy.meta.namespace, deploy.meta.name):
            continue
        key = f"{d.meta.namespace}/{d.meta.name}"
        if key in SYSTEM_DEPLOYMENTS:
            raise ChangeRefused(
                f"deployment {key} is part of every lab",
                "scale it with netlab scale instead",
                origin,
            )
        if d.selector != deploy.selector:
            raise ChangeRefused(
                f'Deployment.apps "{deploy.meta.name}" is invalid: spec.selector: Invalid value: '
                f"{deploy.selector}: field is immutable",
                "a Deployment's selector cannot change; delete the Deployment and apply it again",
                origin,
            )


def _allocate(
    state: ClusterState, change: ApplyChange, origin: Callable[[str, str, str], Origin | None]
) -> list[tuple[Service, Service | None]]:
    """Each applied Service with what the API server allocates for it, and the one it updates."""
    existing = {f"{s.meta.namespace}/{s.meta.name}": s for s in state.services}
    updating = {f"{s.meta.namespace}/{s.meta.name}" for s in change.services}
    alloc = Allocators.holding(state.lab, [s for k, s in existing.items() if k not in updating])
    owners: dict[str, str] = {}
    for s in state.services:
        key = f"{s.meta.namespace}/{s.meta.name}"
        if key in updating:
            continue
        if s.cluster_ip and s.cluster_ip != "None":
            owners[s.cluster_ip] = key
        for p in s.ports:
            if p.node_port:
                owners[str(p.node_port)] = key
    out: list[tuple[Service, Service | None]] = []
    for svc in change.services:
        key = f"{svc.meta.namespace}/{svc.meta.name}"
        where = origin("Service", svc.meta.namespace, svc.meta.name)
        if key in SYSTEM_SERVICES:
            raise ChangeRefused(f"service {key} is part of every lab", "", where)
        before = existing.get(key)
        if (
            before is not None
            and svc.cluster_ip
            and before.cluster_ip
            and svc.cluster_ip != before.cluster_ip
            and svc.type != "ExternalName"
            and before.type != "ExternalName"
        ):
            raise ChangeRefused(
                f'Service "{svc.meta.name}" is invalid: spec.clusterIPs[0]: Invalid value: '
                f'[]string{{"{svc.cluster_ip}"}}: may not change once set',
                f"leave clusterIP out (it keeps {before.cluster_ip}) or delete the Service first",
                where,
            )
        ip = svc.cluster_ip
        if ip and ip != "None" and ip in owners:
            raise ChangeRefused(
                f'Service "{svc.meta.name}" is invalid: spec.clusterIPs: Invalid value: '
                f'[]string{{"{ip}"}}: failed to allocate IP {ip}: provided IP is already '
                "allocated",
                f"{ip} is taken by {owners[ip]}",
                where,
            )
        for i, p in enumerate(svc.ports):
            if p.node_port and str(p.node_port) in owners:
                raise ChangeRefused(
                    f'Service "{svc.meta.name}" is invalid: spec.ports[{i}].nodePort: Invalid '
                    f"value: {p.node_port}: provided port is already allocated",
                    f"Service {owners[str(p.node_port)]} already uses this NodePort",
                    where,
                )
        alloc.reserve(svc)
        if before is not None:
            alloc.reserve(before)
    for svc in change.services:
        before = existing.get(f"{svc.meta.namespace}/{svc.meta.name}")
        out.append((alloc.allocate(svc, before), before))
    return out


def _apply_pod(state: ClusterState, pod: Pod) -> list[str]:
    key = f"{pod.meta.namespace}/{pod.meta.name}"
    for p in state.pods:
        if (p.namespace, p.name) == (pod.meta.namespace, pod.meta.name):
            said = []
            if p.labels != pod.meta.labels:
                p.labels = dict(pod.meta.labels)
                said.append(f"pod/{key} configured (labels)")
            if p.ready != pod.ready:
                p.ready = pod.ready
                said.append(f"pod/{key} configured ({'ready' if pod.ready else 'not ready'})")
            return said
    placed = place_pod(state, pod, "workload")
    if placed is None:
        raise ChangeRefused(
            f"pod {key} cannot be scheduled: 0/{len(state.nodes)} nodes are available",
            "every node is down or tainted; bring one up first",
        )
    return [f"pod/{key} created on {placed.node} ({placed.ip})"]


def _prune(state: ClusterState, change: ApplyChange, now: float) -> list[str]:
    """kubectl apply --prune, over the objects the lab's scenario made (never netlab's own)."""
    said: list[str] = []
    keep_services = {(s.meta.namespace, s.meta.name) for s in change.services}
    for svc in list(state.services):
        key = (svc.meta.namespace, svc.meta.name)
        if f"{key[0]}/{key[1]}" in SYSTEM_SERVICES or key in keep_services:
            continue
        state.services.remove(svc)
        said.append(f"service/{key[0]}/{key[1]} pruned")
    keep_deployments = {(d.meta.namespace, d.meta.name) for d in change.deployments}
    for deploy in list(state.deployments):
        key = (deploy.meta.namespace, deploy.meta.name)
        if f"{key[0]}/{key[1]}" in SYSTEM_DEPLOYMENTS or key in keep_deployments:
            continue
        said += _delete(
            state, DeleteChange(resource="deployment", namespace=key[0], name=key[1]), now
        )
        said[-1] = said[-1].replace("deleted", "pruned")
    keep_pods = {(p.meta.namespace, p.meta.name) for p in change.pods}
    for pod in list(state.pods):
        if pod.role != "workload" or pod.owner or pod.terminating:
            continue
        if (pod.namespace, pod.name) not in keep_pods:
            said.append(start_deletion(pod, now, None) + " (pruned)")
    return said
