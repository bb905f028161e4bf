"""Cluster states for tests that sync one node of a lab skeleton into a namespace of their own."""

from __future__ import annotations

from netlab.cluster.build import build_cluster
from netlab.cluster.state import ClusterState, Endpoint, EndpointPort, EndpointSlice, PodInfo
from netlab.scenario.k8s import ContainerPort, ObjectMeta, Service, ServicePort
from netlab.scenario.labspec import LabSpec, default_external_clients
from netlab.scenario.model import Scenario


def one_service_state(node_netns: str, lab_name: str) -> ClusterState:
    """A two-node lab skeleton with one Service "web" (two pods), node-1 living in our netns."""
    lab = LabSpec(
        name=lab_name,
        external_clients=default_external_clients("192.168.56.0/24"),
        client_pods=False,
    )
    state = build_cluster(Scenario(file=lab_name, lab=lab))
    state.nodes[0].netns = node_netns
    endpoints = []
    for j, node in enumerate(state.nodes):
        ip = f"{node.gateway.rsplit('.', 1)[0]}.{10 + j}"
        pod = PodInfo("default", f"web-{j}", node.name, ip, f"{lab_name}-never-{j}", {"app": "web"})
        pod.ports = [ContainerPort(8080)]
        state.pods.append(pod)
        endpoints.append(Endpoint(address=ip, node_name=node.name, pod=pod.key))
    state.services.append(
        Service(
            meta=ObjectMeta(name="web", labels={"app": "web"}),
            ports=[ServicePort(port=80, name="http", target_port=8080)],
            selector={"app": "web"},
            cluster_ip="10.96.0.50",
        )
    )
    state.slices.append(
        EndpointSlice(
            "default", "web-abcde", "default/web", [EndpointPort("http", 8080, "TCP")], endpoints
        )
    )
    return state
