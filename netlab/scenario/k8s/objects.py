"""Typed Kubernetes objects, after the API server's defaulting.

Only the fields that matter to Service networking are kept; everything else a manifest may carry
(images, resources, probes...) is accepted by validation and dropped here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Annotation a scenario may put on a Pod (or a Deployment's pod template) to make it unready, so a
# learner can see the EndpointSlice controller leave it out. Lab-only, hence netlab's own prefix.
READY_ANNOTATION = "netlab.dev/ready"

NODE_PORT_RANGE = (30000, 32767)  # the API server's DefaultServiceNodePortRange


@dataclass(frozen=True)
class ObjectRef:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass
class ObjectMeta:
    name: str
    namespace: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerPort:
    container_port: int
    protocol: str = "TCP"
    name: str = ""


@dataclass
class Container:
    name: str
    image: str = ""
    ports: list[ContainerPort] = field(default_factory=list)


@dataclass(frozen=True)
class PodDNSConfigOption:
    name: str
    value: str | None = None


@dataclass
class PodDNSConfig:
    """``spec.dnsConfig``: what kubelet adds to (or, with dnsPolicy None, uses as) the pod's
    resolver configuration."""

    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[PodDNSConfigOption] = field(default_factory=list)


@dataclass
class PodSpec:
    containers: list[Container]
    node_name: str = ""
    hostname: str = ""
    subdomain: str = ""
    host_network: bool = False
    termination_grace_period_seconds: int = 30  # DefaultTerminationGracePeriodSeconds
    dns_policy: str = "ClusterFirst"  # SetDefaults_PodSpec
    dns_config: PodDNSConfig | None = None


@dataclass
class Pod:
    meta: ObjectMeta
    spec: PodSpec
    ready: bool = True
    owner: str = ""  # "Deployment/<name>" for pods a Deployment made

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("Pod", self.meta.namespace, self.meta.name)

    @property
    def ports(self) -> list[ContainerPort]:
        return [p for c in self.spec.containers for p in c.ports]


@dataclass
class Deployment:
    meta: ObjectMeta
    replicas: int
    selector: dict[str, str]
    template_meta: ObjectMeta
    template_spec: PodSpec
    template_ready: bool = True
    strategy: str = "RollingUpdate"  # or "Recreate"
    max_surge: int | str = "25%"  # spec.strategy.rollingUpdate, defaulted as apps/v1 does
    max_unavailable: int | str = "25%"


@dataclass(frozen=True)
class ServicePort:
    port: int
    protocol: str = "TCP"
    name: str = ""
    target_port: int | str = 0  # defaulted to ``port``; a string names a container port
    node_port: int = 0  # 0 until allocated (or when the type has none)
    app_protocol: str = ""


@dataclass
class Service:
    meta: ObjectMeta
    ports: list[ServicePort]
    type: str = "ClusterIP"
    selector: dict[str, str] | None = None
    cluster_ip: str = ""  # "" = allocate, "None" = headless
    external_ips: list[str] = field(default_factory=list)
    external_name: str = ""
    session_affinity: str = "None"
    session_affinity_timeout: int = 10800
    external_traffic_policy: str = ""  # "Cluster"/"Local" for NodePort and LoadBalancer
    internal_traffic_policy: str = "Cluster"
    load_balancer_ip: str = ""
    load_balancer_source_ranges: list[str] = field(default_factory=list)
    allocate_load_balancer_node_ports: bool = True
    health_check_node_port: int = 0
    publish_not_ready_addresses: bool = False
    traffic_distribution: str = ""  # PreferClose | PreferSameZone | PreferSameNode
    load_balancer_ingress: list[str] = field(default_factory=list)  # status, set by the lab

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("Service", self.meta.namespace, self.meta.name)

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"


@dataclass
class Namespace:
    meta: ObjectMeta


SUPPORTED_KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "a namespace to put objects in",
    ("v1", "Pod"): "a single pod (its containers' ports are what Services target)",
    ("v1", "Service"): "ClusterIP, NodePort, LoadBalancer, headless or ExternalName Services",
    ("apps/v1", "Deployment"): "a set of identical pods selected by matchLabels",
}

K8sObject = Namespace | Pod | Deployment | Service
