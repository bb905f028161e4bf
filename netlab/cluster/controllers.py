"""The controllers a Services lab needs: Deployment, scheduler, EndpointSlice.

Each is a pure function of the objects, mirroring what the real controller writes, so the proxy
renderers see EndpointSlices shaped like the ones kube-proxy watches.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Set

from netlab.cluster.state import Endpoint, EndpointPort, EndpointSlice, PodInfo
from netlab.scenario.k8s import Deployment, Pod, PodSpec, Service, ServicePort
from netlab.serial import to_data

# k8s.io/apimachinery/pkg/util/rand: the alphabet without vowels or confusable characters.
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def safe_encode(s: str) -> str:
    """rand.SafeEncodeString: map each character into the safe alphabet by its code point."""
    return "".join(_ALPHANUMS[ord(c) % len(_ALPHANUMS)] for c in s)


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def pod_template_hash(deploy: Deployment) -> str:
    """The ``pod-template-hash`` label: FNV-32a of the template, safe-encoded (ComputeHash).

    Kubernetes hashes its Go object dump; netlab hashes a canonical JSON of the template instead,
    so the value has the real form (e.g. ``7c5ddbdf54``) but not the same digits.
    """
    blob = json.dumps(
        [to_data(deploy.template_meta), to_data(deploy.template_spec)], sort_keys=True
    ).encode()
    return safe_encode(str(_fnv32a(blob)))


# byte b -> _ALPHANUMS[b % 27], for bytes.translate
_SAFE_BYTES = bytes(ord(_ALPHANUMS[b % len(_ALPHANUMS)]) for b in range(256))


def random_suffix(key: str, n: int = 5) -> str:
    """A deterministic stand-in for rand.String(n): same alphabet, seeded by ``key``."""
    digest = hashlib.sha256(key.encode()).digest()
    return digest[:n].translate(_SAFE_BYTES).decode("ascii")


def expand_deployment(deploy: Deployment, lab: str) -> list[Pod]:
    """The pods a Deployment's ReplicaSet would create: ``<name>-<template-hash>-<suffix>``."""
    template_hash = pod_template_hash(deploy)
    pods = []
    for i in range(deploy.replicas):
        name = f"{deploy.meta.name}-{template_hash}-"
        name += random_suffix(f"{lab}/{deploy.meta.namespace}/{name}/{i}")
        meta = type(deploy.template_meta)(
            name=name,
            namespace=deploy.meta.namespace,
            labels={**deploy.template_meta.labels, "pod-template-hash": template_hash},
            annotations=dict(deploy.template_meta.annotations),
        )
        spec = PodSpec(
            containers=deploy.template_spec.containers,
            node_name=deploy.template_spec.node_name,
            hostname=deploy.template_spec.hostname,
            subdomain=deploy.template_spec.subdomain,
            host_network=deploy.template_spec.host_network,
            termination_grace_period_seconds=deploy.template_spec.termination_grace_period_seconds,
            dns_policy=deploy.template_spec.dns_policy,
            dns_config=deploy.template_spec.dns_config,
        )
        pods.append(
            Pod(
                meta=meta,
                spec=spec,
                ready=deploy.template_ready,
                owner=f"Deployment/{deploy.meta.name}",
            )
        )
    return pods


def schedule(pods: Iterable[Pod], nodes: list[str], counts: dict[str, int]) -> dict[str, str]:
    """Pod key -> node: ``spec.nodeName`` if set, else the node with fewest pods (spreading).

    ``counts`` holds pods already placed per node and is updated, so callers can schedule in waves.
    """
    placement: dict[str, str] = {}
    for pod in pods:
        node = pod.spec.node_name or min(nodes, key=lambda n: (counts[n], nodes.index(n)))
        counts[node] += 1
        placement[f"{pod.meta.namespace}/{pod.meta.name}"] = node
    return placement


# Ports every node's own network namespace already serves: kube-proxy's health server (its
# --healthz-bind-address default, 0.0.0.0:10256) and its metrics server (--metrics-bind-address,
# 127.0.0.1:10249, which a pod's listener on every address of the node would clash with).
NODE_PORTS_IN_USE = {10256: "kube-proxy's health server", 10249: "kube-proxy's metrics server"}


def schedule_host_network(
    pods: Iterable[Pod], nodes: list[str], in_use: dict[str, dict[int, str]]
) -> tuple[dict[str, str], list[tuple[Pod, str]]]:
    """Place hostNetwork pods, whose container ports are their node's own ports.

    As the scheduler's NodePorts filter (kubernetes/kubernetes
    ``pkg/scheduler/framework/plugins/nodeports``): a node whose port is taken does not fit.
    netlab serves every port over TCP and UDP, so a port number is taken whatever its
    protocol. Among the nodes that fit, the one with the fewest hostNetwork pods, then the
    first. ``in_use`` (node -> port -> who holds it) is updated. Returns the placement and the
    pods no node can take, each with the scheduler's reason.
    """
    placement: dict[str, str] = {}
    unschedulable: list[tuple[Pod, str]] = []
    placed = dict.fromkeys(nodes, 0)
    for pod in pods:
        wanted = {p.container_port for p in pod.ports}
        fits = [
            n
            for n in ([pod.spec.node_name] if pod.spec.node_name else nodes)
            if n in in_use and not wanted & set(in_use[n])
        ]
        if not fits:
            reason = "node(s) didn't have free ports for the requested pod ports"
            unschedulable.append(
                (
                    pod,
                    # kubelet's admission for a pod bound to its node, else the scheduler's
                    f"Predicate NodePorts failed: {reason}"
                    if pod.spec.node_name
                    else f"0/{len(nodes)} nodes are available: {len(nodes)} {reason}.",
                )
            )
            continue
        node = min(fits, key=lambda n: (placed[n], nodes.index(n)))
        placed[node] += 1
        for port in wanted:
            in_use[node][port] = f"{pod.meta.namespace}/{pod.meta.name}"
        placement[f"{pod.meta.namespace}/{pod.meta.name}"] = node
    return placement, unschedulable


def selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Every ``key: value`` of the selector is among the labels (an empty one matches all)."""
    return selector.items() <= labels.items()


def resolve_target_port(port: ServicePort, pod: PodInfo) -> int | None:
    """podutil.FindPort: a number is used as is; a name must match a container port's name
    with the same protocol, else this pod has no endpoint for that Service port."""
    if isinstance(port.target_port, int):
        return port.target_port
    for cp in pod.ports:
        if cp.name == port.target_port and cp.protocol == port.protocol:
            return cp.container_port
    return None


# The trafficDistribution values whose hints the controller writes (trafficdist.go).
CLOSE_TRAFFIC_DISTRIBUTION = ("PreferClose", "PreferSameZone", "PreferSameNode")

# EndpointPort is immutable: one instance per (name, port, protocol) serves every slice
_endpoint_port = functools.lru_cache(maxsize=1024)(EndpointPort)


@functools.lru_cache(maxsize=256)
def _text(ports: tuple[EndpointPort, ...]) -> str:
    """``str(ports)``, which seeds a slice's name: most Services of a file share a port set."""
    return str(ports)


def endpoint_slices(
    service: Service,
    pods: list[PodInfo],
    lab: str,
    not_ready_nodes: Set[str] = frozenset(),
    zones: dict[str, str] | None = None,
) -> list[EndpointSlice]:
    """The EndpointSlices the EndpointSlice controller writes for ``service``.

    Pods whose named target ports resolve differently land in different slices, exactly as
    upstream groups endpoints by their resolved port set. Conditions are ``podToEndpoint``'s:
    serving is the pod's Ready condition (false on a node the node lifecycle controller marked
    not ready), terminating is whether it is being deleted, and ready is serving and not
    terminating (or always, with publishNotReadyAddresses). ``zones`` maps node names to their
    ``topology.kubernetes.io/zone`` label: each endpoint gets its node's zone, and with a
    ``trafficDistribution`` the hints of trafficdist.ReconcileHints.
    """
    zones = zones or {}
    if service.type == "ExternalName" or not service.selector:
        return []
    ns = service.meta.namespace
    groups: dict[tuple[EndpointPort, ...], list[Endpoint]] = {}
    for pod in pods:
        if pod.namespace != ns or pod.role == "client":
            continue
        if not selector_matches(service.selector, pod.labels):
            continue
        ports: list[EndpointPort] = []
        for sp in service.ports:
            resolved = resolve_target_port(sp, pod)
            if resolved is not None:
                ports.append(_endpoint_port(sp.name, resolved, sp.protocol))
        hostname = pod.hostname if pod.hostname and pod.subdomain == service.meta.name else ""
        serving = pod.ready and pod.node not in not_ready_nodes
        endpoint = Endpoint(
            address=pod.ip,
            node_name=pod.node,
            pod=pod.key,
            hostname=hostname,
            ready=service.publish_not_ready_addresses or (serving and not pod.terminating),
            serving=serving,
            terminating=pod.terminating,
            zone=zones.get(pod.node, ""),
        )
        set_hints(endpoint, service.traffic_distribution)
        groups.setdefault(tuple(ports), []).append(endpoint)
    slices = []
    for ports_key, endpoints in groups.items():
        name = (
            service.meta.name
            + "-"
            + random_suffix(f"{lab}/{ns}/{service.meta.name}/{_text(ports_key)}")
        )
        slices.append(
            EndpointSlice(
                namespace=ns,
                name=name,
                service=f"{ns}/{service.meta.name}",
                ports=list(ports_key),
                endpoints=endpoints,
            )
        )
    return slices


def set_hints(endpoint: Endpoint, traffic_distribution: str) -> None:
    """trafficdist's preferCloseHeuristic.update (defaultHeuristic without a distribution):
    a ready endpoint is hinted for its own zone, and for PreferSameNode also for its own node;
    an unready one keeps no hints."""
    endpoint.for_zones, endpoint.for_nodes = [], []
    if traffic_distribution not in CLOSE_TRAFFIC_DISTRIBUTION or not endpoint.ready:
        return
    if endpoint.zone:
        endpoint.for_zones = [endpoint.zone]
    if endpoint.node_name and traffic_distribution == "PreferSameNode":
        endpoint.for_nodes = [endpoint.node_name]
