"""The Deployment and ReplicaSet controllers, for a cluster that changes.

A Deployment owns one ReplicaSet per pod template it has had (named ``<deployment>-<hash>``);
scaling changes how many pods the current one wants, and a new template starts a rollout: the
Deployment controller moves replicas from the old ReplicaSets to the new one within
``maxSurge``/``maxUnavailable`` (RollingUpdate), or empties the old ones first (Recreate). The
ReplicaSet controller then creates pods (scheduled, addressed) or deletes the surplus, gracefully.
This follows kubernetes/kubernetes ``pkg/controller/deployment`` (``rolling.go``,
``recreate.go``, ``util/deployment_util.go``) and ``pkg/controller/replicaset`` (v1.33), with
pods counted available as soon as they are ready (minReadySeconds 0).

Each pass is pure and does one round: the lab realizes the round (new pods' namespaces and
servers, the proxies' syncs) before the next, so a pod created in a round becomes available in
the next one, as a rollout waits for new pods to become ready.
"""

from __future__ import annotations

from netlab.cluster.controllers import pod_template_hash, random_suffix
from netlab.cluster.placement import place_pod
from netlab.cluster.state import ClusterState, PodInfo, ReplicaSetInfo
from netlab.scenario.k8s import Deployment, ObjectMeta, Pod, PodSpec


def replica_set_for(state: ClusterState, deploy: Deployment, replicas: int = 0) -> ReplicaSetInfo:
    """The ReplicaSet of the Deployment's current template; made (with ``replicas``) if new."""
    template_hash = pod_template_hash(deploy)
    for rs in state.replica_sets:
        if (rs.namespace, rs.deployment, rs.template_hash) == (
            deploy.meta.namespace,
            deploy.meta.name,
            template_hash,
        ):
            return rs
    state.serial += 1
    rs = ReplicaSetInfo(
        namespace=deploy.meta.namespace,
        deployment=deploy.meta.name,
        template_hash=template_hash,
        replicas=replicas,
        template_meta=deploy.template_meta,
        template_spec=deploy.template_spec,
        template_ready=deploy.template_ready,
        created=state.serial,
    )
    state.replica_sets.append(rs)
    return rs


def pods_of(state: ClusterState, rs: ReplicaSetInfo) -> list[PodInfo]:
    owner = f"Deployment/{rs.deployment}"
    return [
        p
        for p in state.pods
        if p.owner == owner and p.namespace == rs.namespace and p.template_hash == rs.template_hash
    ]


def is_available(state: ClusterState, pod: PodInfo) -> bool:
    """Ready (on a node not marked not ready) and not being deleted."""
    return pod.ready and not pod.terminating and state.node(pod.node).ready


def _available(state: ClusterState, rs: ReplicaSetInfo) -> int:
    return sum(is_available(state, p) for p in pods_of(state, rs))


def scaled_value(value: int | str, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if isinstance(value, int):
        return value
    scaled = int(value.rstrip("%")) * total
    return -(-scaled // 100) if round_up else scaled // 100


def resolve_fenceposts(deploy: Deployment) -> tuple[int, int]:
    """``ResolveFenceposts``: (maxSurge, maxUnavailable); never both zero."""
    surge = scaled_value(deploy.max_surge, deploy.replicas, True)
    unavailable = scaled_value(deploy.max_unavailable, deploy.replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def sync_deployments(state: ClusterState, now: float) -> list[str]:
    """One pass of the Deployment controller, then of the ReplicaSet controller; what changed."""
    said: list[str] = []
    for deploy in state.deployments:
        new = replica_set_for(state, deploy)
        olds = [
            rs
            for rs in state.replica_sets
            if (rs.namespace, rs.deployment) == (deploy.meta.namespace, deploy.meta.name)
            and rs is not new
        ]
        olds.sort(key=lambda rs: rs.created)
        if deploy.strategy == "Recreate":
            said += _recreate(state, deploy, new, olds)
        else:
            said += _rolling(state, deploy, new, olds)
    for rs in state.replica_sets:
        said += _sync_replica_set(state, rs, now)
    # An emptied old ReplicaSet is kept by Kubernetes for rollbacks; the lab drops it once its
    # last pod is gone, as nothing routes to it any more.
    current = {(d.meta.namespace, d.meta.name, pod_template_hash(d)) for d in state.deployments}
    state.replica_sets = [
        rs
        for rs in state.replica_sets
        if (rs.namespace, rs.deployment, rs.template_hash) in current
        or rs.replicas
        or pods_of(state, rs)
    ]
    return said


def _scale(rs: ReplicaSetInfo, replicas: int, said: list[str]) -> None:
    if rs.replicas != replicas:
        said.append(f"replicaset {rs.namespace}/{rs.name} scaled {rs.replicas} -> {replicas}")
        rs.replicas = replicas


def _rolling(
    state: ClusterState, deploy: Deployment, new: ReplicaSetInfo, olds: list[ReplicaSetInfo]
) -> list[str]:
    """``rolloutRolling``: reconcileNewReplicaSet, then reconcileOldReplicaSets."""
    said: list[str] = []
    surge, max_unavailable = resolve_fenceposts(deploy)
    if new.replicas > deploy.replicas:
        _scale(new, deploy.replicas, said)
    elif new.replicas < deploy.replicas:
        current = new.replicas + sum(rs.replicas for rs in olds)
        total_allowed = deploy.replicas + surge
        if current < total_allowed:
            up = min(total_allowed - current, deploy.replicas - new.replicas)
            _scale(new, new.replicas + up, said)
    old_count = sum(rs.replicas for rs in olds)
    if old_count == 0:
        return said
    all_count = new.replicas + old_count
    min_available = deploy.replicas - max_unavailable
    new_unavailable = new.replicas - _available(state, new)
    max_scaled_down = all_count - min_available - new_unavailable
    if max_scaled_down <= 0:
        return said
    # cleanupUnhealthyReplicas: old pods that are not available go first.
    cleaned = 0
    for rs in olds:
        if cleaned >= max_scaled_down:
            break
        unhealthy = rs.replicas - _available(state, rs)
        down = min(unhealthy, max_scaled_down - cleaned, rs.replicas)
        if down > 0:
            _scale(rs, rs.replicas - down, said)
            cleaned += down
    # scaleDownOldReplicaSetsForRollingUpdate: then as many available ones as minAvailable allows.
    available = _available(state, new) + sum(_available(state, rs) for rs in olds)
    if available <= min_available:
        return said
    remaining = min(available - min_available, max_scaled_down - cleaned)
    for rs in olds:
        if remaining <= 0:
            break
        down = min(rs.replicas, remaining)
        if down > 0:
            _scale(rs, rs.replicas - down, said)
            remaining -= down
    return said


def _recreate(
    state: ClusterState, deploy: Deployment, new: ReplicaSetInfo, olds: list[ReplicaSetInfo]
) -> list[str]:
    """``rolloutRecreate``: old ReplicaSets to zero; the new one is scaled up only once no old
    pod is left, terminating ones included."""
    said: list[str] = []
    for rs in olds:
        _scale(rs, 0, said)
    if any(pods_of(state, rs) for rs in olds):
        return said
    _scale(new, deploy.replicas, said)
    return said


def _sync_replica_set(state: ClusterState, rs: ReplicaSetInfo, now: float) -> list[str]:
    """``manageReplicas``: create the missing pods, gracefully delete the surplus."""
    said: list[str] = []
    active = [p for p in pods_of(state, rs) if not p.terminating]
    if len(active) < rs.replicas:
        for _ in range(rs.replicas - len(active)):
            role = "system" if rs.namespace == "kube-system" else "workload"
            pod = place_pod(state, _template_pod(state, rs), role)
            if pod is None:  # Pending: no node can take it (the lab reports it)
                break
            said.append(f"pod {pod.key} created on {pod.node} ({pod.ip})")
    elif len(active) > rs.replicas:
        for pod in _deletion_order(state, rs, active)[: len(active) - rs.replicas]:
            said.append(start_deletion(pod, now, None))
    return said


def _deletion_order(
    state: ClusterState, rs: ReplicaSetInfo, active: list[PodInfo]
) -> list[PodInfo]:
    """``ActivePodsWithRanks`` as getPodsToDelete sorts them: not ready before ready, then
    pods on the node running the most of this ReplicaSet's pods, then the newest."""
    index = {id(p): i for i, p in enumerate(state.pods)}
    per_node: dict[str, int] = {}
    for p in active:
        per_node[p.node] = per_node.get(p.node, 0) + 1
    return sorted(
        active,
        key=lambda p: (is_available(state, p), -per_node[p.node], -index[id(p)]),
    )


def start_deletion(pod: PodInfo, now: float, grace: int | None) -> str:
    """Mark ``pod`` deleted: it terminates for its grace period (serving, as its endpoint says
    with ``terminating``) and then goes away."""
    seconds = pod.grace_seconds if grace is None else grace
    if pod.terminating:
        # A second delete may only shorten the grace period (as the API server allows).
        left = pod.deletion_timestamp + pod.deletion_grace - now
        if seconds >= left:
            return f"pod {pod.key} is already terminating"
    pod.deletion_timestamp = now
    pod.deletion_grace = seconds
    return f"pod {pod.key} terminating (grace {seconds}s)"


def _template_pod(state: ClusterState, rs: ReplicaSetInfo) -> Pod:
    """A new pod of ``rs``: named ``<deployment>-<hash>-<suffix>`` as the ReplicaSet controller
    names them (the suffix from netlab's deterministic stand-in for rand.String)."""
    key = f"{rs.namespace}/{rs.name}"
    prefix = f"{rs.deployment}-{rs.template_hash}-"
    taken = {p.name for p in state.pods if p.namespace == rs.namespace}
    while True:
        serial = state.name_serials.get(key, 0)
        state.name_serials[key] = serial + 1
        name = prefix + random_suffix(f"{state.lab.name}/{rs.namespace}/{prefix}/{serial}")
        if name not in taken:
            break
    meta = ObjectMeta(
        name=name,
        namespace=rs.namespace,
        labels={**rs.template_meta.labels, "pod-template-hash": rs.template_hash},
        annotations=dict(rs.template_meta.annotations),
    )
    spec = rs.template_spec
    return Pod(
        meta=meta,
        spec=PodSpec(
            containers=spec.containers,
            node_name=spec.node_name,
            hostname=spec.hostname,
            subdomain=spec.subdomain,
            host_network=spec.host_network,
            termination_grace_period_seconds=spec.termination_grace_period_seconds,
        ),
        ready=rs.template_ready,
        owner=f"Deployment/{rs.deployment}",
    )
