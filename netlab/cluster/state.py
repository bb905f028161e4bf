"""The desired state of a lab's cluster: what the control plane in miniature decided.

Everything below the kernel line reads this: the topology plan, every proxy renderer, the checks.
It is plain data (saved in the lab's state file) and never touches the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.scenario.k8s import (
    Container,
    ContainerPort,
    Deployment,
    ObjectMeta,
    PodDNSConfig,
    PodSpec,
    Service,
)
from netlab.scenario.labspec import LabSpec

ZONE_LABEL = "topology.kubernetes.io/zone"  # v1.LabelTopologyZone


@dataclass
class Node:
    name: str
    index: int  # 1-based; node-i owns the i-th slice of the pod CIDR
    ip: str  # address on the node network (eth0)
    pod_cidr: str
    gateway: str  # cni0's address: the first host of pod_cidr
    netns: str
    # The node lifecycle controller's view (times are the lab clock, seconds since the epoch):
    reachable: bool = True  # False while the node is down: cut off, its kubelet silent
    unreachable_since: float = 0.0
    ready: bool = True  # the Ready condition; False (Unknown) once the grace period has passed
    not_ready_since: float = 0.0  # when it went NotReady and got the unreachable taints
    last_pod_ip: str = ""  # host-local IPAM's last reserved address on this node

    @property
    def schedulable(self) -> bool:
        """No node.kubernetes.io/unreachable:NoSchedule taint."""
        return self.ready

    labels: dict[str, str] = field(default_factory=dict)

    @property
    def zone(self) -> str:
        return self.labels.get(ZONE_LABEL, "")


@dataclass
class PodInfo:
    namespace: str
    name: str
    node: str
    ip: str
    netns: str  # the node's netns for hostNetwork pods
    labels: dict[str, str] = field(default_factory=dict)
    ports: list[ContainerPort] = field(default_factory=list)
    ready: bool = True
    hostname: str = ""
    subdomain: str = ""
    host_network: bool = False
    owner: str = ""  # "Deployment/web", "netlab" for the client pods, "" for bare pods
    role: str = "workload"  # "workload" | "client" | "system"
    runs: str = "netexec"  # what the agent serves in it: "netexec" | "coredns" | "apiserver"
    containers: list[Container] = field(default_factory=list)  # as the pod spec lists them
    grace_seconds: int = 30  # terminationGracePeriodSeconds
    deletion_timestamp: float = 0.0  # set when deleted: it terminates until + grace_seconds
    deletion_grace: int = 0  # the grace period the deletion asked for
    dns_policy: str = "ClusterFirst"
    dns_config: PodDNSConfig | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminating(self) -> bool:
        return self.deletion_timestamp > 0

    @property
    def template_hash(self) -> str:
        return self.labels.get("pod-template-hash", "")


@dataclass(frozen=True)
class EndpointPort:
    name: str
    port: int
    protocol: str


@dataclass
class Endpoint:
    address: str
    node_name: str
    pod: str  # namespace/name
    hostname: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    zone: str = ""  # its node's topology.kubernetes.io/zone label
    # hints.forZones / hints.forNodes, written for trafficDistribution (ready endpoints only)
    for_zones: list[str] = field(default_factory=list)
    for_nodes: list[str] = field(default_factory=list)


@dataclass
class EndpointSlice:
    """discovery.k8s.io/v1 EndpointSlice, as the EndpointSlice controller would write it."""

    namespace: str
    name: str
    service: str
    ports: list[EndpointPort]
    endpoints: list[Endpoint]


@dataclass
class ExternalWorld:
    """The external netns: the clients outside the cluster and the router to the nodes."""

    netns: str
    router_ip: str  # the external netns's address on the node network; the nodes' gateway
    clients: dict[str, str]  # client name -> address


@dataclass
class ReplicaSetInfo:
    """A Deployment's ReplicaSet: one per pod template, named ``<deployment>-<hash>``."""

    namespace: str
    deployment: str
    template_hash: str
    replicas: int
    template_meta: ObjectMeta
    template_spec: PodSpec
    template_ready: bool = True
    created: int = 0  # creation order: the Deployment controller scales the oldest down first

    @property
    def name(self) -> str:
        return f"{self.deployment}-{self.template_hash}"


@dataclass
class ClusterState:
    """The cluster as the control plane last decided it.

    A Service or EndpointSlice that changes is replaced by a new object, never edited in place,
    as every update is a new object in the API server: the proxiers find what changed between
    syncs by identity (:mod:`netlab.proxy.changes`), as kube-proxy learns of each update.
    """

    lab: LabSpec
    fabric_netns: str
    nodes: list[Node]
    pods: list[PodInfo]
    services: list[Service]
    slices: list[EndpointSlice]
    external: ExternalWorld
    deployments: list[Deployment] = field(default_factory=list)
    replica_sets: list[ReplicaSetInfo] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)  # declared by the scenario or applied
    # Pod names a ReplicaSet has handed out: "<namespace>/<rs name>" -> how many so far
    name_serials: dict[str, int] = field(default_factory=dict)
    serial: int = 0  # changes made so far (ReplicaSet creation order)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def pod(self, namespace: str, name: str) -> PodInfo:
        for p in self.pods:
            if p.namespace == namespace and p.name == name:
                return p
        raise KeyError(f"{namespace}/{name}")

    def service(self, namespace: str, name: str) -> Service:
        for s in self.services:
            if s.meta.namespace == namespace and s.meta.name == name:
                return s
        raise KeyError(f"{namespace}/{name}")

    def slices_for(self, service: Service) -> list[EndpointSlice]:
        key = f"{service.meta.namespace}/{service.meta.name}"
        return [s for s in self.slices if s.service == key]

    def deployment(self, namespace: str, name: str) -> Deployment:
        for d in self.deployments:
            if d.meta.namespace == namespace and d.meta.name == name:
                return d
        raise KeyError(f"{namespace}/{name}")

    def pod_by_ip(self, ip: str) -> PodInfo | None:
        for p in self.pods:
            if p.ip == ip and not p.host_network:
                return p
        return None
