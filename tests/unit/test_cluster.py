"""netlab.cluster: nodes, pod placement and addresses, Service allocation, EndpointSlices and IPAM,
built from scenarios written as YAML text (pure: no kernel)."""

from __future__ import annotations

import ipaddress
import re
import textwrap
from collections import Counter
from dataclasses import replace

import pytest

from netlab.cluster.build import build_cluster
from netlab.cluster.controllers import (
    endpoint_slices,
    pod_template_hash,
    random_suffix,
    safe_encode,
)
from netlab.cluster.ipam import NodePortAllocator, PodIPAM, ServiceIPAM, node_ip, node_subnets
from netlab.cluster.placement import node_netns, pod_netns
from netlab.cluster.state import ClusterState, Endpoint, EndpointPort, EndpointSlice
from netlab.scenario.k8s import Container, ContainerPort, Deployment, ObjectMeta, PodSpec
from netlab.scenario.load import parse_scenario

ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
LAB = "apiVersion: netlab.dev/v1alpha1\nkind: Lab\nmetadata: {name: demo}\n"


def build(*docs: str, lab: str = "") -> ClusterState:
    """Build a lab named ``demo`` from manifests (dedented); ``lab`` is the Lab document's spec.

    Cluster DNS is off unless ``lab`` configures it, so the objects listed are the scenario's.
    """
    spec = textwrap.dedent(lab).strip("\n")
    if "dns:" not in spec:
        spec = (spec + "\ndns: {enabled: false}").strip("\n")
    head = LAB + "spec:\n" + textwrap.indent(spec, "  ")
    text = "\n---\n".join([head.rstrip("\n"), *(textwrap.dedent(d).strip("\n") for d in docs)])
    return build_cluster(parse_scenario(text + "\n", "demo.yaml"))


def pod(name: str, labels: str = "{}", node: str = "", ports: str = "[]", extra: str = "") -> str:
    spec = f"  nodeName: {node}\n" if node else ""
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {labels}\n{extra}"
        f"spec:\n{spec}  containers: [{{name: c, image: x, ports: {ports}}}]"
    )


def svc(name: str, spec: str, namespace: str = "default") -> str:
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    meta = f"metadata: {{name: {name}, namespace: {namespace}}}"
    return f"apiVersion: v1\nkind: Service\n{meta}\nspec:\n{body}"


def deployment(name: str, replicas: int, labels: str = "{app: web}", tspec: str = "") -> str:
    containers = "containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]"
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {labels}}}
  template:
    metadata: {{labels: {labels}}}
    spec:
{textwrap.indent(tspec, "      ")}      {containers}"""


NAMESPACE_OTHER = "apiVersion: v1\nkind: Namespace\nmetadata: {name: other}"
WEB = svc("web", "selector: {app: web}\nports: [{name: http, port: 80, targetPort: 8080}]")


def slices(state: ClusterState, name: str, namespace: str = "default") -> list[EndpointSlice]:
    return state.slices_for(state.service(namespace, name))


# Nodes, pods and their addresses ---------------------------------------------------------------


def test_nodes() -> None:
    state = build(lab="nodes: 3")
    assert [(n.name, n.index, n.ip, n.pod_cidr, n.gateway, n.netns) for n in state.nodes] == [
        ("node-1", 1, "192.168.56.11", "10.244.1.0/24", "10.244.1.1", "demo-node-1"),
        ("node-2", 2, "192.168.56.12", "10.244.2.0/24", "10.244.2.1", "demo-node-2"),
        ("node-3", 3, "192.168.56.13", "10.244.3.0/24", "10.244.3.1", "demo-node-3"),
    ]
    assert state.node("node-2").ip == "192.168.56.12"
    with pytest.raises(KeyError):
        state.node("node-4")


def test_nodes_follow_the_lab_network() -> None:
    state = build(
        lab="""
        nodes: [{name: cp}, {name: w}]
        network: {podCIDR: 10.32.0.0/16, nodeCIDRMaskSize: 20, nodeNetwork: 172.30.0.0/24}
        """
    )
    assert [(n.name, n.ip, n.pod_cidr, n.gateway) for n in state.nodes] == [
        ("cp", "172.30.0.11", "10.32.16.0/20", "10.32.16.1"),
        ("w", "172.30.0.12", "10.32.32.0/20", "10.32.32.1"),
    ]
    assert state.external.router_ip == "172.30.0.100"


def test_namespaces_of_the_lab() -> None:
    state = build()
    assert state.fabric_netns == "demo-fabric"
    assert state.external.netns == "demo-external"
    assert state.external.router_ip == "192.168.56.100"
    assert state.external.clients == {"external": "192.168.56.100"}
    assert node_netns("demo", "node-1") == "demo-node-1"
    assert pod_netns("demo", "default", "web") == "demo-web"
    assert pod_netns("demo", "team", "web") == "demo-team.web"


def test_system_and_client_pods() -> None:
    state = build()
    assert [
        (p.key, p.node, p.ip, p.netns, p.host_network, p.role, p.owner) for p in state.pods
    ] == [
        (
            "kube-system/kube-apiserver-node-1",
            "node-1",
            "192.168.56.11",
            "demo-node-1",
            True,
            "system",
            "Node/node-1",
        ),
        (
            "netlab/client-node-1",
            "node-1",
            "10.244.1.2",
            "demo-netlab.client-node-1",
            False,
            "client",
            "netlab",
        ),
        (
            "netlab/client-node-2",
            "node-2",
            "10.244.2.2",
            "demo-netlab.client-node-2",
            False,
            "client",
            "netlab",
        ),
    ]
    apiserver = state.pod("kube-system", "kube-apiserver-node-1")
    assert apiserver.labels == {"component": "kube-apiserver", "tier": "control-plane"}
    assert [(p.container_port, p.protocol, p.name) for p in apiserver.ports] == [
        (6443, "TCP", "https")
    ]


def test_no_client_pods() -> None:
    state = build(lab="clientPods: false")
    assert [p.key for p in state.pods] == ["kube-system/kube-apiserver-node-1"]


def test_pod_ips_are_sequential_per_node_from_dot_2() -> None:
    state = build(
        pod("a", node="node-1"),
        pod("b", node="node-2"),
        pod("c", node="node-1"),
        pod("d", node="node-1"),
        NAMESPACE_OTHER,
        pod("e", node="node-2").replace("name: e", "name: e\n  namespace: other"),
    )
    ips = {p.key: (p.node, p.ip, p.netns) for p in state.pods if p.role == "workload"}
    assert ips == {
        "default/a": ("node-1", "10.244.1.2", "demo-a"),
        "default/b": ("node-2", "10.244.2.2", "demo-b"),
        "default/c": ("node-1", "10.244.1.3", "demo-c"),
        "default/d": ("node-1", "10.244.1.4", "demo-d"),
        "other/e": ("node-2", "10.244.2.3", "demo-other.e"),
    }
    # Client pods come after the workload.
    assert state.pod("netlab", "client-node-1").ip == "10.244.1.5"
    assert state.pod("netlab", "client-node-2").ip == "10.244.2.4"
    found = state.pod_by_ip("10.244.1.3")
    assert found is not None and found.key == "default/c"
    assert state.pod_by_ip("192.168.56.11") is None  # host-network pods are not found by IP


def test_unplaced_pods_go_to_the_least_loaded_node() -> None:
    state = build(pod("a", node="node-1"), pod("b", node="node-1"), pod("c"), pod("d"), pod("e"))
    assert {p.name: p.node for p in state.pods if p.role == "workload"} == {
        "a": "node-1",
        "b": "node-1",
        "c": "node-2",
        "d": "node-2",
        "e": "node-1",  # a tie goes to the first node
    }


def test_pod_fields_carried_over() -> None:
    state = build(
        pod(
            "a",
            labels="{app: web}",
            ports="[{name: http, containerPort: 8080}]",
            extra="  annotations: {netlab.dev/ready: 'false'}\n",
        )
    )
    a = state.pod("default", "a")
    assert a.labels == {"app": "web"}
    assert [(p.container_port, p.protocol, p.name) for p in a.ports] == [(8080, "TCP", "http")]
    assert a.ready is False
    assert (a.owner, a.role, a.host_network) == ("", "workload", False)


# Deployments ------------------------------------------------------------------------------------


def test_deployment_pods() -> None:
    state = build(deployment("web", 4))
    pods = [p for p in state.pods if p.role == "workload"]
    assert len(pods) == 4
    hashes = {p.labels["pod-template-hash"] for p in pods}
    assert len(hashes) == 1
    (template_hash,) = hashes
    assert re.fullmatch(f"[{ALPHABET}]+", template_hash)
    for p in pods:
        assert re.fullmatch(f"web-{template_hash}-[{ALPHABET}]{{5}}", p.name), p.name
        assert p.labels == {"app": "web", "pod-template-hash": template_hash}
        assert p.owner == "Deployment/web"
        assert p.netns == f"demo-{p.name}"
    assert len({p.name for p in pods}) == 4
    assert Counter(p.node for p in pods) == {"node-1": 2, "node-2": 2}
    # Alternating placement: each pod goes to the node with the fewest pods so far.
    assert [p.node for p in pods] == ["node-1", "node-2", "node-1", "node-2"]


def test_deployment_spreads_around_pinned_pods() -> None:
    state = build(
        pod("pinned-a", node="node-1"), pod("pinned-b", node="node-1"), deployment("web", 3)
    )
    web = [p.node for p in state.pods if p.owner == "Deployment/web"]
    assert web == ["node-2", "node-2", "node-1"]


def test_deployment_node_name_honoured() -> None:
    state = build(deployment("web", 3, tspec="nodeName: node-2\n"))
    assert [p.node for p in state.pods if p.owner == "Deployment/web"] == ["node-2"] * 3
    assert [p.ip for p in state.pods if p.owner == "Deployment/web"] == [
        "10.244.2.2",
        "10.244.2.3",
        "10.244.2.4",
    ]


def test_deployment_pod_names_are_deterministic() -> None:
    first = [p.name for p in build(deployment("web", 3)).pods]
    second = [p.name for p in build(deployment("web", 3)).pods]
    assert first == second


def test_safe_encode_and_template_hash() -> None:
    assert safe_encode("0123456789") == "456789bcdf"
    assert safe_encode("") == ""
    assert safe_encode("a") == ALPHABET[ord("a") % 27]
    spec = PodSpec(containers=[Container(name="c", ports=[ContainerPort(8080)])])
    deploy = Deployment(
        meta=ObjectMeta(name="web"),
        replicas=1,
        selector={"app": "web"},
        template_meta=ObjectMeta(name="", labels={"app": "web"}),
        template_spec=spec,
    )
    value = pod_template_hash(deploy)
    assert re.fullmatch("[456789bcdf]{1,10}", value)  # a safe-encoded uint32 in decimal
    assert pod_template_hash(deploy) == value
    deploy.template_meta.labels["app"] = "other"
    assert pod_template_hash(deploy) != value


def test_random_suffix() -> None:
    assert random_suffix("k") == random_suffix("k")
    assert random_suffix("k") != random_suffix("l")
    assert re.fullmatch(f"[{ALPHABET}]{{5}}", random_suffix("k"))
    assert len(random_suffix("k", 8)) == 8


# Services ---------------------------------------------------------------------------------------


def test_default_kubernetes_service_and_slice() -> None:
    state = build()
    kube = state.service("default", "kubernetes")
    assert kube.cluster_ip == "10.96.0.1"
    assert [(p.name, p.port, p.protocol, p.target_port) for p in kube.ports] == [
        ("https", 443, "TCP", 6443)
    ]
    assert kube.selector is None
    assert state.services[0] is kube
    assert slices(state, "kubernetes") == [
        EndpointSlice(
            namespace="default",
            name="kubernetes",
            service="default/kubernetes",
            ports=[EndpointPort("https", 6443, "TCP")],
            endpoints=[
                Endpoint(
                    address="192.168.56.11", node_name="", pod="kube-system/kube-apiserver-node-1"
                )
            ],
        )
    ]


def test_kubernetes_service_follows_the_service_cidr() -> None:
    state = build(lab="network: {serviceCIDR: 172.20.0.0/16}")
    assert state.service("default", "kubernetes").cluster_ip == "172.20.0.1"


def many_services(n: int) -> list[str]:
    return [svc(f"s{i}", "selector: {app: web}\nports: [{port: 80}]") for i in range(n)]


def test_allocated_cluster_ips() -> None:
    state = build(*many_services(40))
    net = ipaddress.IPv4Network("10.96.0.0/12")
    ips = [s.cluster_ip for s in state.services[1:]]
    assert len(ips) == 40
    assert len(set(ips)) == 40
    assert "10.96.0.10" not in ips  # kube-dns's address
    for ip in ips:
        addr = ipaddress.IPv4Address(ip)
        assert addr in net
        # The dynamic band: above the 256 addresses kept for requested ClusterIPs.
        assert int(addr) - int(net.network_address) > 256
    assert [s.cluster_ip for s in build(*many_services(40)).services] == [
        s.cluster_ip for s in state.services
    ]


def test_cluster_ip_depends_on_the_service_not_its_position() -> None:
    alone = build(WEB).service("default", "web").cluster_ip
    later = build(*many_services(3), WEB).service("default", "web").cluster_ip
    assert alone == later


def test_requested_cluster_ip_honoured() -> None:
    state = build(
        svc("a", "clusterIP: 10.96.0.10\nselector: {app: a}\nports: [{port: 53}]"),
        svc("b", "clusterIP: 10.96.100.100\nselector: {app: b}\nports: [{port: 80}]"),
        svc("h", "clusterIP: None\nselector: {app: h}\nports: [{port: 80}]"),
        svc("x", "type: ExternalName\nexternalName: example.com"),
    )
    assert [(s.meta.name, s.cluster_ip) for s in state.services[1:]] == [
        ("a", "10.96.0.10"),
        ("b", "10.96.100.100"),
        ("h", "None"),
        ("x", ""),
    ]


def test_ten_is_never_allocated_in_a_small_cidr() -> None:
    state = build(*many_services(12), lab="network: {serviceCIDR: 10.96.0.0/28}")
    ips = sorted(int(ipaddress.IPv4Address(s.cluster_ip)) & 0xF for s in state.services)
    # 14 usable hosts: .1 for kubernetes, .10 kept for kube-dns, 12 Services take the rest.
    assert ips == [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14]


def test_node_ports_only_for_node_port_and_load_balancer() -> None:
    state = build(
        svc("cip", "selector: {app: web}\nports: [{port: 80}]"),
        svc("np", "type: NodePort\nselector: {app: web}\nports: [{port: 80}]"),
        svc("lb", "type: LoadBalancer\nselector: {app: web}\nports: [{port: 80}]"),
        svc(
            "lb-none",
            "type: LoadBalancer\nallocateLoadBalancerNodePorts: false\nselector: {app: web}\n"
            "ports: [{port: 80}]",
        ),
    )
    ports = {s.meta.name: s.ports[0].node_port for s in state.services[1:]}
    assert ports["cip"] == 0
    assert ports["lb-none"] == 0
    for name in ("np", "lb"):
        assert 30000 <= ports[name] <= 32767
    assert ports["np"] != ports["lb"]
    assert state.service("default", "np").health_check_node_port == 0
    assert state.service("default", "lb").health_check_node_port == 0  # eTP Cluster


def test_node_port_requested_is_honoured_and_never_reallocated() -> None:
    state = build(
        svc("np", "type: NodePort\nselector: {app: web}\nports: [{port: 80, nodePort: 30080}]"),
        *[
            svc(f"n{i}", "type: NodePort\nselector: {app: web}\nports: [{port: 80}]")
            for i in range(20)
        ],
    )
    assert state.service("default", "np").ports[0].node_port == 30080
    allocated = [s.ports[0].node_port for s in state.services[2:]]
    assert 30080 not in allocated
    assert len(set(allocated)) == 20
    # The dynamic band: above the 86 ports kept for requested NodePorts.
    assert all(30086 <= p <= 32767 for p in allocated)


def test_one_node_port_for_tcp_and_udp_of_one_port_number() -> None:
    state = build(
        svc(
            "dns",
            """
            type: NodePort
            selector: {app: dns}
            ports:
            - {name: dns-udp, port: 53, protocol: UDP}
            - {name: dns-tcp, port: 53, protocol: TCP}
            - {name: metrics, port: 9153}
            """,
        )
    )
    udp, tcp, metrics = state.service("default", "dns").ports
    assert udp.node_port == tcp.node_port
    assert metrics.node_port != udp.node_port
    assert all(30000 <= p.node_port <= 32767 for p in (udp, tcp, metrics))


def test_a_requested_node_port_is_shared_by_the_other_protocol() -> None:
    """As the API server's findRequestedNodePort: the TCP port reuses UDP's requested NodePort."""
    state = build(
        svc(
            "dns",
            """
            type: NodePort
            selector: {app: dns}
            ports:
            - {name: dns-tcp, port: 53, protocol: TCP}
            - {name: dns-udp, port: 53, protocol: UDP, nodePort: 30053}
            """,
        )
    )
    assert [p.node_port for p in state.service("default", "dns").ports] == [30053, 30053]


def test_health_check_node_port_for_load_balancer_with_local_policy() -> None:
    state = build(
        svc(
            "lb",
            "type: LoadBalancer\nexternalTrafficPolicy: Local\n"
            "selector: {app: web}\nports: [{port: 80}]",
        ),
        svc(
            "given",
            "type: LoadBalancer\nexternalTrafficPolicy: Local\nhealthCheckNodePort: 30100\n"
            "selector: {app: web}\nports: [{port: 80}]",
        ),
        svc(
            "np",
            "type: NodePort\nexternalTrafficPolicy: Local\n"
            "selector: {app: web}\nports: [{port: 80}]",
        ),
    )
    lb = state.service("default", "lb")
    assert 30000 <= lb.health_check_node_port <= 32767
    assert lb.health_check_node_port != lb.ports[0].node_port
    assert state.service("default", "given").health_check_node_port == 30100
    assert state.service("default", "np").health_check_node_port == 0


# EndpointSlices ---------------------------------------------------------------------------------


def test_endpoint_slice_selects_matching_pods_in_the_namespace_only() -> None:
    state = build(
        NAMESPACE_OTHER,
        pod("a", "{app: web}", "node-1"),
        pod("b", "{app: web, extra: x}", "node-2"),
        pod("c", "{app: db}", "node-2"),
        pod("d", "{app: web}", "node-1").replace("name: d", "name: d\n  namespace: other"),
        WEB,
    )
    (web,) = slices(state, "web")
    assert web.namespace == "default"
    assert web.service == "default/web"
    assert re.fullmatch(f"web-[{ALPHABET}]{{5}}", web.name)
    assert web.ports == [EndpointPort("http", 8080, "TCP")]
    assert web.endpoints == [
        Endpoint(address="10.244.1.2", node_name="node-1", pod="default/a"),
        Endpoint(address="10.244.2.2", node_name="node-2", pod="default/b"),
    ]


def test_client_pods_are_never_selected() -> None:
    state = build(
        pod("a", "{app: web}", "node-1"), svc("web", "selector: {app: web}\nports: [{port: 80}]")
    )
    service = state.service("default", "web")
    # Client pods carry no labels; even one that matched the selector is never an endpoint.
    client = replace(
        state.pod("netlab", "client-node-1"), namespace="default", labels={"app": "web"}
    )
    (only,) = endpoint_slices(service, [*state.pods, client], "demo")
    assert [e.pod for e in only.endpoints] == ["default/a"]
    assert state.pod("netlab", "client-node-1").labels == {}


def test_not_ready_pods_are_listed_not_ready() -> None:
    unready = "  annotations: {netlab.dev/ready: 'false'}\n"
    state = build(
        pod("a", "{app: web}", "node-1"), pod("b", "{app: web}", "node-2", extra=unready), WEB
    )
    (web,) = slices(state, "web")
    assert [(e.pod, e.ready, e.serving, e.terminating) for e in web.endpoints] == [
        ("default/a", True, True, False),
        ("default/b", False, False, False),
    ]


def test_publish_not_ready_addresses_makes_them_ready() -> None:
    unready = "  annotations: {netlab.dev/ready: 'false'}\n"
    state = build(
        pod("b", "{app: web}", "node-2", extra=unready),
        svc("web", "publishNotReadyAddresses: true\nselector: {app: web}\nports: [{port: 80}]"),
    )
    (web,) = slices(state, "web")
    assert [(e.pod, e.ready, e.serving) for e in web.endpoints] == [("default/b", True, False)]


def test_named_target_port_resolved_per_pod() -> None:
    state = build(
        pod("a", "{app: web}", "node-1", "[{name: http, containerPort: 8080}]"),
        pod("b", "{app: web}", "node-2", "[{name: http, containerPort: 9090}]"),
        pod("c", "{app: web}", "node-1", "[{name: http, containerPort: 8080}]"),
        svc("web", "selector: {app: web}\nports: [{name: web, port: 80, targetPort: http}]"),
    )
    got = sorted(
        (tuple((p.name, p.port, p.protocol) for p in s.ports), tuple(e.pod for e in s.endpoints))
        for s in slices(state, "web")
    )
    assert got == [
        ((("web", 8080, "TCP"),), ("default/a", "default/c")),
        ((("web", 9090, "TCP"),), ("default/b",)),
    ]
    names = [s.name for s in slices(state, "web")]
    assert len(set(names)) == 2


def test_pod_without_the_named_port_has_no_endpoint_for_that_port() -> None:
    state = build(
        pod(
            "a",
            "{app: web}",
            "node-1",
            "[{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}]",
        ),
        pod("b", "{app: web}", "node-2", "[{name: http, containerPort: 8080}]"),
        svc(
            "web",
            """
            selector: {app: web}
            ports:
            - {name: http, port: 80, targetPort: http}
            - {name: dns, port: 53, protocol: UDP, targetPort: dns}
            - {name: dns-tcp, port: 53, protocol: TCP, targetPort: dns}
            """,
        ),
    )
    got = sorted(
        (tuple((p.name, p.port, p.protocol) for p in s.ports), tuple(e.pod for e in s.endpoints))
        for s in slices(state, "web")
    )
    # The TCP port named "dns" matches no TCP container port: no pod has an endpoint for it.
    assert got == [
        ((("http", 8080, "TCP"),), ("default/b",)),
        ((("http", 8080, "TCP"), ("dns", 53, "UDP")), ("default/a",)),
    ]


def test_external_name_and_selectorless_services_get_no_slices() -> None:
    state = build(
        pod("a", "{app: web}", "node-1"),
        svc("ext", "type: ExternalName\nexternalName: example.com"),
        svc("manual", "ports: [{port: 80}]"),
    )
    assert slices(state, "ext") == []
    assert slices(state, "manual") == []
    assert [s.service for s in state.slices] == ["default/kubernetes"]


def test_hostname_only_when_subdomain_is_the_service() -> None:
    with_host = "  hostname: web-0\n  subdomain: web\n"
    other_sub = "  hostname: web-1\n  subdomain: other\n"
    state = build(
        pod("a", "{app: web}", "node-1").replace("spec:\n", "spec:\n" + with_host),
        pod("b", "{app: web}", "node-2").replace("spec:\n", "spec:\n" + other_sub),
        WEB,
    )
    (web,) = slices(state, "web")
    assert [(e.pod, e.hostname) for e in web.endpoints] == [
        ("default/a", "web-0"),
        ("default/b", ""),
    ]
    assert state.pod("default", "a").hostname == "web-0"
    assert state.pod("default", "a").subdomain == "web"


# IPAM directly -----------------------------------------------------------------------------------


def test_node_subnets_skip_slice_zero() -> None:
    assert [str(n) for n in node_subnets("10.244.0.0/16", 24, 3)] == [
        "10.244.1.0/24",
        "10.244.2.0/24",
        "10.244.3.0/24",
    ]
    assert [str(n) for n in node_subnets("10.0.0.0/24", 26, 3)] == [
        "10.0.0.64/26",
        "10.0.0.128/26",
        "10.0.0.192/26",
    ]


def test_node_ip() -> None:
    assert node_ip("192.168.56.0/24", 1) == "192.168.56.11"
    assert node_ip("10.0.0.0/16", 5) == "10.0.0.15"


def test_pod_ipam_is_sequential_and_ends_before_broadcast() -> None:
    ipam = PodIPAM(ipaddress.IPv4Network("10.244.1.0/29"))
    assert str(ipam.gateway) == "10.244.1.1"
    assert [ipam.allocate() for _ in range(5)] == [f"10.244.1.{i}" for i in range(2, 7)]
    with pytest.raises(ValueError, match=r"^pod CIDR 10\.244\.1\.0/29 is full$"):
        ipam.allocate()


def test_service_ipam_prefers_the_upper_band() -> None:
    ipam = ServiceIPAM("10.96.0.0/24")
    assert (ipam.size, ipam.offset) == (254, 16)
    assert ipam.first() == "10.96.0.1"
    assert ipam.nth(10) == "10.96.0.10"
    got = [ipam.allocate(f"svc-{i}") for i in range(238)]
    assert sorted(int(ipaddress.IPv4Address(ip)) & 0xFF for ip in got) == list(range(17, 255))
    # Then the static band, from its bottom.
    assert ipam.allocate("late-1") == "10.96.0.1"
    ipam.reserve("10.96.0.2")
    assert ipam.allocate("late-2") == "10.96.0.3"


def test_service_ipam_is_deterministic_and_skips_reserved() -> None:
    first = ServiceIPAM("10.96.0.0/12").allocate("default/web")
    assert ServiceIPAM("10.96.0.0/12").allocate("default/web") == first
    ipam = ServiceIPAM("10.96.0.0/12")
    ipam.reserve(first)
    assert ipam.allocate("default/web") != first


def test_service_ipam_falls_back_to_the_static_band_when_full() -> None:
    ipam = ServiceIPAM("10.96.0.0/27")  # 30 hosts: 16 kept static, 14 dynamic
    assert (ipam.size, ipam.offset) == (30, 16)
    dynamic = [ipam.allocate(f"k{i}") for i in range(14)]
    assert sorted(int(ipaddress.IPv4Address(ip)) & 0xFF for ip in dynamic) == list(range(17, 31))
    static = [ipam.allocate(f"s{i}") for i in range(16)]
    assert static == [f"10.96.0.{i}" for i in range(1, 17)]
    with pytest.raises(ValueError, match=r"^service CIDR 10\.96\.0\.0/27 is full$"):
        ipam.allocate("one-more")


def test_service_ipam_on_a_tiny_cidr_stays_inside_it() -> None:
    ipam = ServiceIPAM("10.96.0.0/28")  # 14 hosts: too few for a static band
    assert (ipam.size, ipam.offset) == (14, 0)
    got = [ipam.allocate(f"k{i}") for i in range(14)]
    assert sorted(int(ipaddress.IPv4Address(ip)) & 0xFF for ip in got) == list(range(1, 15))
    with pytest.raises(ValueError, match=r"^service CIDR 10\.96\.0\.0/28 is full$"):
        ipam.allocate("one-more")


def test_node_port_allocator_bands() -> None:
    ports = NodePortAllocator()
    assert (ports.lo, ports.hi, ports.size, ports.offset) == (30000, 32767, 2768, 86)
    first = ports.allocate("default/web/http/80")
    assert 30086 <= first <= 32767
    assert NodePortAllocator().allocate("default/web/http/80") == first
    for p in range(30086, 32768):
        ports.reserve(p)
    assert ports.allocate("x") == 30000
    ports.reserve(30001)
    assert ports.allocate("y") == 30002
    for p in range(30000, 30086):
        ports.reserve(p)
    with pytest.raises(ValueError, match=r"^no NodePort left in 30000-32767$"):
        ports.allocate("z")


def test_cluster_dns_is_kubeadms() -> None:
    state = build(lab="dns: {replicas: 2}")
    dns = state.service("kube-system", "kube-dns")
    assert dns.cluster_ip == "10.96.0.10"
    assert [(p.name, p.port, p.protocol) for p in dns.ports] == [
        ("dns", 53, "UDP"),
        ("dns-tcp", 53, "TCP"),
        ("metrics", 9153, "TCP"),
    ]
    assert dns.selector == {"k8s-app": "kube-dns"}
    pods = [p for p in state.pods if p.runs == "coredns"]
    assert [p.node for p in pods] == ["node-1", "node-2"]
    assert all(p.name.startswith("coredns-") and p.namespace == "kube-system" for p in pods)
    assert all(p.role == "system" for p in pods)
    (sl,) = state.slices_for(dns)
    assert sorted(e.address for e in sl.endpoints) == sorted(p.ip for p in pods)
    assert {(p.name, p.port, p.protocol) for p in sl.ports} == {
        ("dns", 53, "UDP"),
        ("dns-tcp", 53, "TCP"),
        ("metrics", 9153, "TCP"),
    }
    assert build().services[-1].meta.name != "kube-dns"  # off when disabled


def test_load_balancer_ingress_from_the_pool() -> None:
    lb = """\
        apiVersion: v1
        kind: Service
        metadata: {name: NAME}
        spec:
          type: LoadBalancer
          selector: {app: web}
          ports: [{port: 80}]
        """
    state = build(
        lb.replace("NAME", "a"),
        lb.replace("NAME", "b").replace("spec:\n", "spec:\n          loadBalancerIP: 192.0.2.1\n"),
        lb.replace("NAME", "c"),
    )
    assert state.service("default", "b").load_balancer_ingress == ["192.0.2.1"]
    assert state.service("default", "a").load_balancer_ingress == ["192.0.2.2"]
    assert state.service("default", "c").load_balancer_ingress == ["192.0.2.3"]
