"""From a validated scenario to the cluster's desired state (pure: no kernel, no I/O)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from netlab.cluster.capacity import ClusterError, Problem, pod_problems
from netlab.cluster.controllers import (
    NODE_PORTS_IN_USE,
    endpoint_slices,
    expand_deployment,
    schedule,
    schedule_host_network,
)
from netlab.cluster.ipam import (
    LoadBalancerIPAM,
    NodePortAllocator,
    PodIPAM,
    ServiceIPAM,
    node_ip,
    node_subnets,
)
from netlab.cluster.placement import node_netns, pod_info
from netlab.cluster.replicas import replica_set_for
from netlab.cluster.state import (
    ClusterState,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    ExternalWorld,
    Node,
    PodInfo,
)
from netlab.scenario.k8s import (
    Container,
    ContainerPort,
    Deployment,
    ObjectMeta,
    Pod,
    PodSpec,
    Service,
    ServicePort,
)
from netlab.scenario.k8s.objects import NODE_PORT_RANGE
from netlab.scenario.labspec import CLIENT_NAMESPACE, LabSpec
from netlab.scenario.model import Scenario

T = TypeVar("T")

APISERVER_PORT = 6443
KUBE_DNS_HOST = 10  # kubeadm: the service CIDR's tenth address is kube-dns
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.11.3"
# Objects netlab itself adds, as every kubeadm cluster has them; derived checks leave them out.
SYSTEM_SERVICES = {"default/kubernetes", "kube-system/kube-dns"}


def system_pods(first_node: str) -> list[Pod]:
    """The control-plane pods a Services lab needs: the API server, behind default/kubernetes."""
    return [
        Pod(
            meta=ObjectMeta(
                name=f"kube-apiserver-{first_node}",
                namespace="kube-system",
                labels={"component": "kube-apiserver", "tier": "control-plane"},
            ),
            spec=PodSpec(
                containers=[
                    Container(
                        name="kube-apiserver", ports=[ContainerPort(APISERVER_PORT, "TCP", "https")]
                    )
                ],
                node_name=first_node,
                host_network=True,
            ),
            owner="Node/" + first_node,
        )
    ]


def dns_deployment(replicas: int) -> Deployment:
    """kubeadm's CoreDNS Deployment: two replicas labelled k8s-app=kube-dns, ports 53 and 9153,
    ``dnsPolicy: Default``."""
    labels = {"k8s-app": "kube-dns"}
    ports = [
        ContainerPort(53, "UDP", "dns"),
        ContainerPort(53, "TCP", "dns-tcp"),
        ContainerPort(9153, "TCP", "metrics"),
    ]
    return Deployment(
        meta=ObjectMeta(name="coredns", namespace="kube-system", labels=labels),
        replicas=replicas,
        selector=labels,
        template_meta=ObjectMeta(name="", namespace="kube-system", labels=labels),
        # kubeadm's CoreDNS uses the node's resolver (it must not ask itself): dnsPolicy Default.
        template_spec=PodSpec(
            containers=[Container("coredns", COREDNS_IMAGE, ports)], dns_policy="Default"
        ),
    )


def kube_dns_service(cluster_ip: str) -> Service:
    """The kube-dns Service exactly as kubeadm creates it."""
    return Service(
        meta=ObjectMeta(
            name="kube-dns",
            namespace="kube-system",
            labels={
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
        ),
        ports=[
            ServicePort(53, "UDP", "dns", 53),
            ServicePort(53, "TCP", "dns-tcp", 53),
            ServicePort(9153, "TCP", "metrics", 9153),
        ],
        selector={"k8s-app": "kube-dns"},
        cluster_ip=cluster_ip,
    )


def client_pods(nodes: list[str]) -> list[Pod]:
    """One client pod per node (namespace ``netlab``), the sources of derived checks."""
    return [
        Pod(
            meta=ObjectMeta(name=f"client-{n}", namespace=CLIENT_NAMESPACE),
            spec=PodSpec(containers=[Container(name="client")], node_name=n),
            owner="netlab",
        )
        for n in nodes
    ]


def kubernetes_service(cluster_ip: str) -> Service:
    return Service(
        meta=ObjectMeta(
            name="kubernetes",
            namespace="default",
            labels={"component": "apiserver", "provider": "kubernetes"},
        ),
        ports=[ServicePort(port=443, protocol="TCP", name="https", target_port=APISERVER_PORT)],
        cluster_ip=cluster_ip,
    )


def build_cluster(scenario: Scenario) -> ClusterState:
    """The cluster's desired state; a :class:`ClusterError` naming every object that does not
    fit (no pod address, no free host port, NodePort or load-balancer address left)."""
    lab = scenario.lab
    problems = pod_problems(
        scenario, 1 if lab.client_pods else 0, lab.dns.replicas if lab.dns.enabled else 0
    )
    if problems:
        raise ClusterError(problems, scenario.file)
    name = lab.name
    net = lab.network
    subnets = node_subnets(net.pod_cidr, net.node_cidr_mask_size, len(lab.nodes))
    nodes = [
        Node(
            name=n,
            index=i,
            ip=node_ip(net.node_network, i),
            pod_cidr=str(subnets[i - 1]),
            gateway=str(subnets[i - 1].network_address + 1),
            netns=node_netns(name, n),
            labels=dict(lab.node_labels.get(n, {})),
        )
        for i, n in enumerate(lab.nodes, start=1)
    ]
    by_name = {n.name: n for n in nodes}

    # Pods: the API server, the scenario's, the clients, then cluster DNS. (A real cluster
    # starts CoreDNS early; placing it last keeps the scenario's pod addresses independent of
    # whether DNS is on.)
    waves: list[tuple[str, list[Pod]]] = [("system", system_pods(nodes[0].name))]
    workload = list(scenario.pods)
    for deploy in scenario.deployments:
        workload.extend(expand_deployment(deploy, name))
    waves.append(("workload", workload))
    if lab.client_pods:
        waves.append(("client", client_pods(list(lab.nodes))))
    if lab.dns.enabled:
        waves.append(("system", expand_deployment(dns_deployment(lab.dns.replicas), name)))

    ipams = {n.name: PodIPAM(ipaddress.IPv4Network(n.pod_cidr)) for n in nodes}
    counts = {n: 0 for n in lab.nodes}
    in_use = {n: {port: who for port, who in NODE_PORTS_IN_USE.items()} for n in lab.nodes}
    pods: list[PodInfo] = []
    for role, wave in waves:
        placement = schedule([p for p in wave if not p.spec.host_network], list(lab.nodes), counts)
        on_host, unplaced = schedule_host_network(
            [p for p in wave if p.spec.host_network], list(lab.nodes), in_use
        )
        placement.update(on_host)
        problems += _unschedulable(unplaced, in_use, problems)
        for pod in wave:
            key = f"{pod.meta.namespace}/{pod.meta.name}"
            if key not in placement:
                continue  # a hostNetwork pod no node can take: reported
            node = by_name[placement[key]]
            ip = node.ip if pod.spec.host_network else ipams[node.name].allocate()
            pods.append(pod_info(name, pod, node, ip, role))
    for node in nodes:
        node.last_pod_ip = ipams[node.name].last()

    services = _allocate_services(scenario, lab, problems)
    if problems:
        raise ClusterError(problems, scenario.file)
    slices: list[EndpointSlice] = [_kubernetes_slice(nodes[0])]
    for svc in services[1:]:
        slices.extend(endpoint_slices(svc, pods, name, zones=_zones(nodes)))

    deployments = list(scenario.deployments)
    if lab.dns.enabled:
        deployments.append(dns_deployment(lab.dns.replicas))
    first = lab.external_clients[0]
    state = ClusterState(
        lab=lab,
        fabric_netns=f"{name}-fabric",
        nodes=nodes,
        pods=pods,
        services=services,
        slices=slices,
        external=ExternalWorld(
            netns=f"{name}-external",
            router_ip=first.address,
            clients={c.name: c.address for c in lab.external_clients},
        ),
        deployments=deployments,
        namespaces=[n.meta.name for n in scenario.namespaces],
    )
    for deploy in deployments:
        rs = replica_set_for(state, deploy, deploy.replicas)
        state.name_serials[f"{rs.namespace}/{rs.name}"] = deploy.replicas
    return state


def _unschedulable(
    unplaced: list[tuple[Pod, str]], in_use: dict[str, dict[int, str]], seen: list[Problem]
) -> list[Problem]:
    """A problem per object whose hostNetwork pod no node can take (one per Deployment)."""
    out: list[Problem] = []
    for pod, reason in unplaced:
        kind, _, owner = pod.owner.partition("/")
        if kind != "Deployment":
            kind, owner = "Pod", pod.meta.name
        if any((p.kind, p.namespace, p.name) == (kind, pod.meta.namespace, owner) for p in seen):
            continue
        ports = sorted({p.container_port for p in pod.ports})
        holders = sorted(
            {
                f"{port} by {who}"
                for node in ([pod.spec.node_name] if pod.spec.node_name else in_use)
                for port, who in in_use.get(node, {}).items()
                if port in ports
            }
        )
        problem = Problem(
            kind,
            pod.meta.namespace,
            owner,
            ("spec", "replicas") if kind == "Deployment" else ("spec", "hostNetwork"),
            reason,
            "with hostNetwork a pod's ports are its node's own, one holder per node: taken "
            f"{', '.join(holders)}; use other ports, fewer replicas or more nodes",
        )
        out.append(problem)
        seen = [*seen, problem]
    return out


def recompute_slices(state: ClusterState) -> set[str]:
    """Run the EndpointSlice controller again, after pods or Services changed; return the
    Services (``namespace/name``) whose slices changed."""
    before: dict[str, list[EndpointSlice]] = {}
    for sl in state.slices:
        before.setdefault(sl.service, []).append(sl)
    not_ready = {n.name for n in state.nodes if not n.ready}
    state.slices = [_kubernetes_slice(state.nodes[0])]
    changed: set[str] = set()
    for svc in state.services[1:]:
        key = f"{svc.meta.namespace}/{svc.meta.name}"
        mine = endpoint_slices(svc, state.pods, state.lab.name, not_ready, _zones(state.nodes))
        if mine != before.pop(key, []):
            changed.add(key)
        state.slices.extend(mine)
    changed |= {k for k, v in before.items() if v and k != "default/kubernetes"}
    return changed


def _zones(nodes: list[Node]) -> dict[str, str]:
    """The zone label of each node that has one (what endpoints carry as their zone)."""
    return {n.name: n.zone for n in nodes if n.zone}


def _kubernetes_slice(node: Node) -> EndpointSlice:
    """The API server maintains this slice itself (no selector): its own address and port."""
    return EndpointSlice(
        namespace="default",
        name="kubernetes",
        service="default/kubernetes",
        ports=[EndpointPort("https", APISERVER_PORT, "TCP")],
        endpoints=[
            Endpoint(address=node.ip, node_name="", pod=f"kube-system/kube-apiserver-{node.name}")
        ],
    )


def _allocate_services(scenario: Scenario, lab: LabSpec, problems: list[Problem]) -> list[Service]:
    """ClusterIPs, NodePorts and load-balancer addresses, as the API server's allocators (and
    the stand-in cloud provider) give them; what is left without one becomes a problem."""
    ipam = ServiceIPAM(lab.network.service_cidr)
    ports = NodePortAllocator()
    lbs = LoadBalancerIPAM(lab)
    kube = kubernetes_service(ipam.first())
    ipam.reserve(ipam.first())
    ipam.reserve(ipam.nth(KUBE_DNS_HOST))
    system = [kube]
    for svc in scenario.services:
        if svc.cluster_ip and svc.cluster_ip != "None":
            ipam.reserve(svc.cluster_ip)
        for p in svc.ports:
            if p.node_port:
                ports.reserve(p.node_port)
        if svc.health_check_node_port:
            ports.reserve(svc.health_check_node_port)
        if svc.type == "LoadBalancer" and svc.load_balancer_ip:
            lbs.reserve(svc.load_balancer_ip)
    short = _Shortage(problems)
    out = system
    for svc in scenario.services:
        key = f"{svc.meta.namespace}/{svc.meta.name}"
        cluster_ip = svc.cluster_ip
        if svc.type != "ExternalName" and not cluster_ip:
            cluster_ip = short.take(ipam.allocate, key, svc, "clusterIPs") or ""
        wants_node_ports = svc.type == "NodePort" or (
            svc.type == "LoadBalancer" and svc.allocate_load_balancer_node_ports
        )
        new_ports = []
        # As findRequestedNodePort: a port number's NodePort requested on any of its ports wins.
        by_number = {p.port: p.node_port for p in reversed(svc.ports) if p.node_port}
        for i, p in enumerate(svc.ports):
            node_port = p.node_port
            if wants_node_ports and not node_port:
                # A Service reuses one NodePort for the same port number over TCP and UDP.
                node_port = by_number.get(p.port) or (
                    short.take(ports.allocate, f"{key}/{p.name}/{p.port}", svc, "nodePort", i) or 0
                )
            by_number.setdefault(p.port, node_port)
            new_ports.append(p if node_port == p.node_port else replace(p, node_port=node_port))
        hc = svc.health_check_node_port
        ingress: list[str] = []
        if svc.type == "LoadBalancer":
            if svc.external_traffic_policy == "Local" and not hc:
                hc = short.take(ports.allocate, f"{key}/health-check", svc, "healthCheck") or 0
            # The stand-in cloud provider: the requested address, else the pool's next free one.
            address = svc.load_balancer_ip or short.take(
                lambda _key: lbs.allocate(), key, svc, "loadBalancer"
            )
            ingress = [address] if address else []
        allocated = _shallow_copy(svc)  # the scenario's Service stays as written
        allocated.meta = _shallow_copy(svc.meta)
        allocated.cluster_ip = cluster_ip
        allocated.ports = new_ports
        allocated.health_check_node_port = hc
        allocated.load_balancer_ingress = ingress
        out.append(allocated)
    short.report(lab)
    if lab.dns.enabled:
        out.append(kube_dns_service(ipam.nth(KUBE_DNS_HOST)))
    return out


def _shallow_copy(obj: T) -> T:
    """``copy.copy`` of a plain dataclass, without its pickling machinery (5,000 Services)."""
    new: T = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


class _Shortage:
    """Allocations that found their range full: the first Service left without one is reported
    (worded as the API server's allocators fail), with how many more were left without."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        self.first: dict[str, tuple[Service, int]] = {}
        self.left: dict[str, set[str]] = {}

    def take(
        self, allocate: Callable[[str], T], key: str, svc: Service, what: str, index: int = 0
    ) -> T | None:
        try:
            return allocate(key)
        except ValueError:
            self.first.setdefault(what, (svc, index))
            self.left.setdefault(what, set()).add(f"{svc.meta.namespace}/{svc.meta.name}")
            return None

    def report(self, lab: LabSpec) -> None:
        for what, (svc, i) in self.first.items():
            more = len(self.left[what]) - 1
            others = (
                f"; {more} more Service{'s' if more != 1 else ''} get none either" if more else ""
            )
            path: tuple[str | int, ...]
            if what == "clusterIPs":
                path = ("spec", "clusterIPs")
                message = "Internal error occurred: failed to allocate a serviceIP: range is full"
                hint = (
                    f"the service CIDR {lab.network.service_cidr} is full; use a larger "
                    "spec.network.serviceCIDR in the Lab document"
                )
            elif what == "loadBalancer":
                path = ("spec", "type")
                message = (
                    f"no address left for this load balancer: the pool {lab.load_balancer_pool} "
                    "is all given out"
                )
                hint = "use a larger spec.loadBalancer.pool in the Lab document, e.g. a /23"
            else:
                lo, hi = NODE_PORT_RANGE
                if what == "healthCheck":
                    path = ("spec", "healthCheckNodePort")
                    message = (
                        "Internal error occurred: failed to allocate a HealthCheck NodePort 0: "
                        "range is full"
                    )
                else:
                    path = ("spec", "ports", i, "nodePort")
                    message = (
                        "Internal error occurred: failed to allocate a nodePort: range is full"
                    )
                hint = (
                    f"the NodePort range {lo}-{hi} holds {hi - lo + 1} ports; use fewer NodePort "
                    "and LoadBalancer Services, or allocateLoadBalancerNodePorts: false"
                )
            self.problems.append(
                Problem("Service", svc.meta.namespace, svc.meta.name, path, message, hint + others)
            )
