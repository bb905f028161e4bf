"""From a validated scenario to the cluster's desired state (pure: no kernel, no I/O)."""

from __future__ import annotations

import ipaddress

from netlab.cluster.allocate import Allocators
from netlab.cluster.controllers import endpoint_slices, expand_deployment, schedule
from netlab.cluster.ipam import PodIPAM, node_ip, node_subnets
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
from netlab.scenario.labspec import CLIENT_NAMESPACE, LabSpec
from netlab.scenario.model import Scenario

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
    """kubeadm's CoreDNS Deployment: two replicas labelled k8s-app=kube-dns, ports 53 and 9153."""
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
        template_spec=PodSpec(containers=[Container("coredns", COREDNS_IMAGE, ports)]),
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
    lab = scenario.lab
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
    pods: list[PodInfo] = []
    for role, wave in waves:
        placement = schedule([p for p in wave if not p.spec.host_network], list(lab.nodes), counts)
        for pod in wave:
            key = f"{pod.meta.namespace}/{pod.meta.name}"
            node = by_name[pod.spec.node_name or placement[key]]
            ip = node.ip if pod.spec.host_network else ipams[node.name].allocate()
            pods.append(pod_info(name, pod, node, ip, role))
    for node in nodes:
        node.last_pod_ip = ipams[node.name].last()

    services = _allocate_services(scenario, lab)
    slices: list[EndpointSlice] = [_kubernetes_slice(nodes[0])]
    for svc in services[1:]:
        slices.extend(endpoint_slices(svc, pods, name))

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
        mine = endpoint_slices(svc, state.pods, state.lab.name, not_ready)
        if mine != before.pop(key, []):
            changed.add(key)
        state.slices.extend(mine)
    changed |= {k for k, v in before.items() if v and k != "default/kubernetes"}
    return changed


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


def _allocate_services(scenario: Scenario, lab: LabSpec) -> list[Service]:
    alloc = Allocators.fresh(lab)
    kube = kubernetes_service(alloc.ips.first())
    alloc.ips.reserve(alloc.ips.first())
    alloc.ips.reserve(alloc.ips.nth(KUBE_DNS_HOST))
    for svc in scenario.services:
        alloc.reserve(svc)
    out = [kube] + [alloc.allocate(svc) for svc in scenario.services]
    if lab.dns.enabled:
        out.append(kube_dns_service(alloc.ips.nth(KUBE_DNS_HOST)))
    return out
