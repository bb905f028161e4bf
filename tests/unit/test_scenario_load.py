"""netlab.scenario.load.parse_scenario: whole files, the default lab, and the cross-object rules the
API server enforces at create time (namespaces, names, NodePorts, ClusterIPs, nodes)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from netlab.errors import Diagnostic, ScenarioError
from netlab.scenario.labspec import default_lab
from netlab.scenario.load import lab_name_from_file, load_scenario, parse_scenario
from netlab.scenario.model import Scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))

LAB = "apiVersion: netlab.dev/v1alpha1\nkind: Lab\n"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - {name: c, image: nginx}
"""


def service(name: str, *, namespace: str = "", spec: str = "") -> str:
    """A Service document (ending in a newline): 6 lines, then ``spec`` (indented by 2)."""
    ns = f", namespace: {namespace}" if namespace else ""
    body = textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ")
    return (
        "apiVersion: v1\nkind: Service\n"
        f"metadata: {{name: {name}{ns}}}\n"
        "spec:\n  selector: {app: web}\n  ports: [{port: 80}]\n" + (body + "\n" if body else "")
    )


def nodeport(name: str, port: int, *, namespace: str = "") -> str:
    """A NodePort Service; its ``spec.ports[0].nodePort`` is on the document's 8th line."""
    ns = f", namespace: {namespace}" if namespace else ""
    return (
        "apiVersion: v1\nkind: Service\n"
        f"metadata: {{name: {name}{ns}}}\n"
        "spec:\n  type: NodePort\n  selector: {app: web}\n  ports:\n"
        f"  - {{port: 80, nodePort: {port}}}\n"
    )


def join(*docs: str) -> str:
    return "---\n".join(docs)


def parse(text: str, file: str = "lab.yaml", **kw: str) -> Scenario:
    return parse_scenario(text, file, **kw)


def errors(text: str, file: str = "lab.yaml") -> list[tuple[int, int, str, str]]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, file)
    return [(d.line, d.col, d.path, d.message) for d in info.value.diagnostics]


# Files and labs --------------------------------------------------------------------------------


def test_plain_manifests_get_the_default_lab_named_after_the_file() -> None:
    scenario = parse(join(DEPLOYMENT, service("web")), "/some/dir/My Lab_v2.yaml")
    assert scenario.lab == default_lab("my-lab-v2")
    assert scenario.file == "/some/dir/My Lab_v2.yaml"
    assert [d.meta.name for d in scenario.deployments] == ["web"]
    assert [s.meta.name for s in scenario.services] == ["web"]
    assert scenario.pods == []
    assert scenario.namespaces == []
    assert scenario.warnings == []


def test_lab_name_from_file() -> None:
    assert lab_name_from_file("scenarios/nodeport.yaml") == "nodeport"
    assert lab_name_from_file("A B.c.yaml") == "a-b-c"
    assert lab_name_from_file("__.yaml") == "lab"
    assert lab_name_from_file("x" * 60 + ".yaml") == "x" * 40


def test_lab_document_metadata_name_wins() -> None:
    scenario = parse(join(LAB + "metadata: {name: demo}\nspec: {nodes: 3}\n", service("web")))
    assert scenario.lab.name == "demo"
    assert scenario.lab.nodes == ("node-1", "node-2", "node-3")


def test_lab_document_without_a_name_uses_the_file_stem() -> None:
    assert parse(LAB, "files/teaching.yaml").lab.name == "teaching"


def test_name_override() -> None:
    text = join(LAB + "metadata: {name: demo}\nspec: {nodes: 3}\n", service("web"))
    scenario = parse(text, name="other")
    assert scenario.lab.name == "other"
    assert scenario.lab.nodes == ("node-1", "node-2", "node-3")
    assert parse(service("web"), name="plain").lab == default_lab("plain")


def test_header_comment() -> None:
    text = "# Title line.\n#\n#  indented\n#no space\napiVersion: v1\n# not the header\n"
    text += "kind: Namespace\nmetadata: {name: a}\n"
    assert parse(text).header == "Title line.\n\n indented\nno space"
    assert parse(service("web")).header == ""
    assert parse("\n\n# After blank lines.\n" + service("web")).header == "After blank lines."


def test_load_scenario_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "from-disk.yaml"
    path.write_text("# Hi.\n" + service("web"), encoding="utf-8")
    scenario = load_scenario(path)
    assert (scenario.lab.name, scenario.header, scenario.file) == ("from-disk", "Hi.", str(path))


def test_load_scenario_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.diagnostics == [
        Diagnostic(
            message="cannot read the file: No such file or directory",
            file=str(path),
            category="file",
            hint="check the path; netlab validate FILE takes a scenario's YAML file",
        )
    ]


def test_two_lab_documents() -> None:
    text = join(LAB, service("web"), LAB + "metadata: {name: two}\n")
    assert errors(text) == [(12, 7, "kind", "a scenario has at most one netlab Lab document")]


def test_a_document_that_is_not_a_mapping() -> None:
    assert errors(join(service("web"), "- a\n- b\n")) == [
        (8, 1, "", "a document must be a mapping (a Kubernetes object)")
    ]


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_every_shipped_scenario_loads(path: Path) -> None:
    scenario = load_scenario(path)
    if path.name == "externalname.yaml":
        # That scenario's point: an IPv4-looking externalName is accepted with a warning.
        assert [(w.path, w.message.split(":")[0]) for w in scenario.warnings] == [
            (
                "spec.externalName",
                '"198.51.100.20" looks like an IP address, but an ExternalName is a DNS name',
            )
        ]
    else:
        assert scenario.warnings == []
    assert scenario.header
    assert scenario.services


def test_the_shipped_scenarios_are_there() -> None:
    assert [p.name for p in SCENARIOS] == [
        "clusterip.yaml",
        "dns.yaml",
        "e2e.yaml",
        "endpoint-choice.yaml",
        "externalname.yaml",
        "headless.yaml",
        "loadbalancer.yaml",
        "no-endpoints.yaml",
        "node-down.yaml",
        "nodeport.yaml",
        "plain-manifests.yaml",
        "rollout.yaml",
        "scale-to-zero.yaml",
        "terminating.yaml",
        "udp-conntrack.yaml",
    ]


# Errors across documents ------------------------------------------------------------------------


def test_errors_from_every_document_sorted_by_line() -> None:
    text = join(
        service("b", namespace="foo"),  # lines 1-6: unknown namespace at line 3
        LAB + "spec:\n  nodes: 0\n",  # lines 8-11: schema error at line 11
        service("c", spec="clusterIP: 10.0.0.5"),  # lines 13-19: clusterIP at line 19
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c}]\n",
    )
    with pytest.raises(ScenarioError) as info:
        parse(text)
    assert [(d.line, d.path, d.message, d.category) for d in info.value.diagnostics] == [
        (3, "metadata.namespace", 'namespaces "foo" not found', "Service foo/b"),
        (11, "spec.nodes", "Invalid value: 0: must be between 1 and 50, inclusive", "Lab"),
        # With an invalid Lab document the service CIDR is unknown: clusterIP is not range-checked.
        (25, "spec.containers[0].image", "Required value", "Pod default/p"),
    ]
    assert str(info.value) == "3 errors in the input"


def test_nodeport_errors_in_several_documents() -> None:
    text = join(
        LAB + "spec:\n  nodes: 1\n",
        nodeport("a", 40000),
        nodeport("b", 30000),
        nodeport("c", 30000),
    )
    assert errors(text) == [
        (
            13,
            26,
            "spec.ports[0].nodePort",
            "Invalid value: 40000: provided port is not in the valid range. The range of valid "
            "ports is 30000-32767",
        ),
        (
            31,
            26,
            "spec.ports[0].nodePort",
            "Invalid value: 30000: provided port is already allocated",
        ),
    ]


def test_yaml_syntax_error_is_a_scenario_error() -> None:
    with pytest.raises(ScenarioError) as info:
        parse(service("web") + "---\nkind: [\n")
    (diag,) = info.value.diagnostics
    assert (diag.file, diag.category) == ("lab.yaml", "yaml")
    assert diag.message.startswith("YAML syntax error: ")


# NodePorts -------------------------------------------------------------------------------------


def test_nodeport_out_of_range() -> None:
    with pytest.raises(ScenarioError) as info:
        parse(nodeport("web", 40000))
    assert info.value.diagnostics == [
        Diagnostic(
            message="Invalid value: 40000: provided port is not in the valid range. The range of "
            "valid ports is 30000-32767",
            file="lab.yaml",
            line=8,
            col=26,
            path="spec.ports[0].nodePort",
            hint="NodePorts lie in 30000-32767; omit it to have one allocated",
            category="Service default/web",
        )
    ]


def test_nodeport_range_bounds_are_inclusive() -> None:
    parse(join(nodeport("lo", 30000), nodeport("hi", 32767)))
    assert [m for _, _, _, m in errors(nodeport("web", 29999))] == [
        "Invalid value: 29999: provided port is not in the valid range. The range of valid ports "
        "is 30000-32767"
    ]


def test_nodeport_used_by_two_services() -> None:
    with pytest.raises(ScenarioError) as info:
        parse(join(nodeport("first", 30080), nodeport("second", 30080)))
    assert info.value.diagnostics == [
        Diagnostic(
            message="Invalid value: 30080: provided port is already allocated",
            file="lab.yaml",
            line=17,
            col=26,
            path="spec.ports[0].nodePort",
            hint="Service default/first already uses this NodePort; pick another or omit it",
            category="Service default/second",
        )
    ]


def test_same_nodeport_for_tcp_and_udp_in_one_service_is_fine() -> None:
    text = """\
    apiVersion: v1
    kind: Service
    metadata: {name: dns}
    spec:
      type: NodePort
      selector: {app: dns}
      ports:
      - {name: tcp, port: 53, nodePort: 30053}
      - {name: udp, port: 53, protocol: UDP, nodePort: 30053}
    """
    scenario = parse(textwrap.dedent(text))
    assert [p.node_port for p in scenario.services[0].ports] == [30053, 30053]


def test_health_check_node_port_out_of_range() -> None:
    text = """\
    apiVersion: v1
    kind: Service
    metadata: {name: lb}
    spec:
      type: LoadBalancer
      externalTrafficPolicy: Local
      healthCheckNodePort: 29999
      selector: {app: web}
      ports: [{port: 80}]
    """
    with pytest.raises(ScenarioError) as info:
        parse(textwrap.dedent(text))
    assert [(d.line, d.col, d.path, d.message, d.hint) for d in info.value.diagnostics] == [
        (
            7,
            24,
            "spec.healthCheckNodePort",
            "Internal error occurred: failed to allocate requested HealthCheck NodePort 29999: "
            "provided port is not in the valid range. The range of valid ports is 30000-32767",
            "NodePorts lie in 30000-32767; omit it to have one allocated",
        )
    ]


def test_health_check_node_port_taken_by_a_node_port() -> None:
    text = """\
    apiVersion: v1
    kind: Service
    metadata: {name: lb}
    spec:
      type: LoadBalancer
      externalTrafficPolicy: Local
      healthCheckNodePort: 30080
      selector: {app: web}
      ports: [{port: 80}]
    """
    assert errors(join(nodeport("web", 30080), textwrap.dedent(text))) == [
        (
            16,
            24,
            "spec.healthCheckNodePort",
            "Internal error occurred: failed to allocate requested HealthCheck NodePort 30080: "
            "provided port is already allocated",
        )
    ]


# ClusterIPs ------------------------------------------------------------------------------------


def test_cluster_ip_outside_the_service_cidr() -> None:
    with pytest.raises(ScenarioError) as info:
        parse(service("web", spec="clusterIP: 10.0.0.5"))
    assert info.value.diagnostics == [
        Diagnostic(
            message='Invalid value: []string{"10.0.0.5"}: failed to allocate IP 10.0.0.5: the '
            "provided IP (10.0.0.5) is not in the valid range. The range of valid IPs is "
            "10.96.0.0/12",
            file="lab.yaml",
            line=7,
            col=14,
            path="spec.clusterIPs",
            hint="pick an address inside the service CIDR 10.96.0.0/12, or omit clusterIP to have "
            "one allocated",
            category="Service default/web",
        )
    ]


@pytest.mark.parametrize("ip", ["10.96.0.0", "10.111.255.255", "10.112.0.1"])
def test_cluster_ip_network_broadcast_and_beyond_are_out_of_range(ip: str) -> None:
    assert [m for _, _, _, m in errors(service("web", spec=f"clusterIP: {ip}"))] == [
        f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: the provided IP ({ip}) '
        "is not in the valid range. The range of valid IPs is 10.96.0.0/12"
    ]


def test_cluster_ip_range_follows_the_lab_service_cidr() -> None:
    lab = LAB + "spec:\n  network: {serviceCIDR: 172.20.0.0/16}\n"
    assert parse(join(lab, service("web", spec="clusterIP: 172.20.0.50"))).services[
        0
    ].cluster_ip == ("172.20.0.50")
    assert [
        m for _, _, _, m in errors(join(lab, service("web", spec="clusterIP: 10.96.0.50")))
    ] == [
        'Invalid value: []string{"10.96.0.50"}: failed to allocate IP 10.96.0.50: the provided IP '
        "(10.96.0.50) is not in the valid range. The range of valid IPs is 172.20.0.0/16"
    ]


def test_cluster_ip_of_default_kubernetes_is_allocated() -> None:
    with pytest.raises(ScenarioError) as info:
        parse(service("web", spec="clusterIP: 10.96.0.1"))
    (diag,) = info.value.diagnostics
    assert diag.message == (
        'Invalid value: []string{"10.96.0.1"}: failed to allocate IP 10.96.0.1: provided IP is '
        "already allocated"
    )
    assert (diag.line, diag.col, diag.path) == (7, 14, "spec.clusterIPs")
    assert diag.hint == "10.96.0.1 is taken by default/kubernetes; pick another or omit clusterIP"


def test_cluster_ip_of_kube_dns_is_allocated_while_cluster_dns_runs() -> None:
    assert errors(service("web", spec="clusterIP: 10.96.0.10")) == [
        (
            7,
            14,
            "spec.clusterIPs",
            'Invalid value: []string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: provided IP '
            "is already allocated",
        )
    ]
    no_dns = LAB + "spec:\n  dns: {enabled: false}\n"
    assert parse(join(no_dns, service("web", spec="clusterIP: 10.96.0.10"))).services[
        0
    ].cluster_ip == ("10.96.0.10")


def test_cluster_ip_already_allocated_by_another_service() -> None:
    text = join(
        service("a", spec="clusterIP: 10.96.5.5"),
        service("b", namespace="kube-system", spec="clusterIP: 10.96.5.5"),
    )
    with pytest.raises(ScenarioError) as info:
        parse(text)
    assert [(d.line, d.message, d.hint, d.category) for d in info.value.diagnostics] == [
        (
            15,
            'Invalid value: []string{"10.96.5.5"}: failed to allocate IP 10.96.5.5: provided IP is '
            "already allocated",
            "10.96.5.5 is taken by default/a; pick another or omit clusterIP",
            "Service kube-system/b",
        )
    ]


def test_ipv6_cluster_ip_is_rejected() -> None:
    with pytest.raises(ScenarioError) as info:
        parse(service("web", spec="clusterIP: fd00::1"))
    assert [(d.line, d.col, d.path, d.message, d.hint) for d in info.value.diagnostics] == [
        (
            7,
            14,
            "spec.clusterIPs[0]",
            'Invalid value: []string{"fd00::1"}: IPv6 is not configured on this cluster',
            "netlab clusters are IPv4 only: use an IPv4 address, or omit clusterIP",
        )
    ]


def test_headless_and_requested_cluster_ips_are_accepted() -> None:
    scenario = parse(
        join(service("a", spec="clusterIP: None"), service("b", spec="clusterIP: 10.96.0.20"))
    )
    assert [s.cluster_ip for s in scenario.services] == ["None", "10.96.0.20"]


# Namespaces, names, nodes ----------------------------------------------------------------------


def test_unknown_namespace() -> None:
    with pytest.raises(ScenarioError) as info:
        parse(service("web", namespace="foo"))
    assert info.value.diagnostics == [
        Diagnostic(
            message='namespaces "foo" not found',
            file="lab.yaml",
            line=3,
            col=34,
            path="metadata.namespace",
            hint="add a Namespace manifest named foo to the file",
            category="Service foo/web",
        )
    ]


def test_a_namespace_manifest_makes_it_known() -> None:
    text = join(
        service("web", namespace="foo"), "apiVersion: v1\nkind: Namespace\nmetadata: {name: foo}\n"
    )
    scenario = parse(text)
    assert [n.meta.name for n in scenario.namespaces] == ["foo"]
    assert scenario.services[0].meta.namespace == "foo"


def test_builtin_and_client_namespaces_are_known() -> None:
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease", "netlab"):
        parse(service("web", namespace=ns))
    # Without client pods, the netlab namespace does not exist.
    text = join(LAB + "spec: {clientPods: false}\n", service("web", namespace="netlab"))
    assert [m for _, _, _, m in errors(text)] == ['namespaces "netlab" not found']


def test_a_builtin_namespace_manifest_already_exists() -> None:
    assert errors("apiVersion: v1\nkind: Namespace\nmetadata: {name: default}\n") == [
        (3, 18, "metadata.name", 'namespaces "default" already exists')
    ]


def test_duplicate_object() -> None:
    with pytest.raises(ScenarioError) as info:
        parse(join(service("web"), service("web")))
    assert info.value.diagnostics == [
        Diagnostic(
            message='services "web" already exists',
            file="lab.yaml",
            line=10,
            col=18,
            path="metadata.name",
            hint="each object needs a unique name within its namespace",
            category="Service default/web",
        )
    ]


def test_same_name_in_another_namespace_or_kind_is_fine() -> None:
    ns = "apiVersion: v1\nkind: Namespace\nmetadata: {name: web}\n"
    scenario = parse(join(ns, DEPLOYMENT, service("web"), service("web", namespace="web")))
    assert [(s.meta.namespace, s.meta.name) for s in scenario.services] == [
        ("default", "web"),
        ("web", "web"),
    ]


def test_duplicate_deployment_wording() -> None:
    assert [m for _, _, _, m in errors(join(DEPLOYMENT, DEPLOYMENT))] == [
        'deployments.apps "web" already exists'
    ]


def test_node_name_not_in_the_lab() -> None:
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec:\n  nodeName: node-9\n  containers: [{name: c, image: x}]\n"
    )
    with pytest.raises(ScenarioError) as info:
        parse(join(LAB + "spec: {nodes: 3}\n", pod))
    assert [
        (d.line, d.col, d.path, d.message, d.hint, d.category) for d in info.value.diagnostics
    ] == [
        (
            9,
            13,
            "spec.nodeName",
            'node "node-9" is not in the lab',
            "the lab's nodes are node-1, node-2, node-3",
            "Pod default/p",
        )
    ]


def test_deployment_node_name_not_in_the_lab() -> None:
    text = DEPLOYMENT.replace("      containers:", "      nodeName: node-3\n      containers:")
    assert errors(text) == [
        (13, 17, "spec.template.spec.nodeName", 'node "node-3" is not in the lab')
    ]
