"""Manifests the API server accepts are accepted; manifests it refuses are refused, worded as it
words them (kubernetes/kubernetes ``pkg/apis/core/validation/validation.go``,
``pkg/apis/apps/validation/validation.go`` and ``pkg/registry/core/service/storage/alloc.go``,
read at commit a7264f95 and b0d609f0 of the v1.3x line; the decoder's prefix is
``transformDecodeError`` in ``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go``)."""

from __future__ import annotations

import textwrap

import pytest

from netlab.checks.derive import derive
from netlab.checks.validate import validate
from netlab.cluster.state import ClusterState
from netlab.errors import ScenarioError
from netlab.scenario.load import parse_scenario
from netlab.scenario.model import Scenario

Problem = tuple[int, int, str, str]


def ok(text: str) -> tuple[Scenario, ClusterState]:
    scenario = parse_scenario(textwrap.dedent(text), "t.yaml")
    return scenario, validate(scenario)


def problems(text: str) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        ok(text)
    assert all(d.hint for d in info.value.diagnostics)
    return [(d.line, d.col, d.path, d.message) for d in info.value.diagnostics]


# Valid manifests are accepted -----------------------------------------------------------------


def test_a_host_network_pod_and_deployment_without_node_name_are_placed() -> None:
    _, state = ok(
        """\
        apiVersion: v1
        kind: Pod
        metadata: {name: agent}
        spec:
          hostNetwork: true
          containers: [{name: c, image: i, ports: [{containerPort: 9100}]}]
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: edge}
        spec:
          replicas: 2
          selector: {matchLabels: {app: edge}}
          template:
            metadata: {labels: {app: edge}}
            spec:
              hostNetwork: true
              containers: [{name: c, image: i, ports: [{containerPort: 8080}]}]
        """
    )
    placed = {p.name: (p.node, p.ip) for p in state.pods if p.host_network and p.role != "system"}
    assert placed["agent"] == ("node-1", "192.168.56.11")
    # the scheduler's NodePorts filter: one 8080 per node
    assert sorted(node for name, (node, _) in placed.items() if name != "agent") == [
        "node-1",
        "node-2",
    ]


def test_derived_checks_do_not_promise_the_client_address_to_another_nodes_host() -> None:
    # a pod reaching another node's own address is masqueraded by the CNI (netlab.cluster.cni)
    _, state = ok(
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: agent}
        spec:
          replicas: 2
          selector: {matchLabels: {app: agent}}
          template:
            metadata: {labels: {app: agent}}
            spec:
              hostNetwork: true
              containers: [{name: a, image: i, ports: [{containerPort: 9100}]}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: agent}
        spec: {selector: {app: agent}, ports: [{port: 80, targetPort: 9100}]}
        """
    )
    checks = [c for c in derive(state) if c.name.startswith("default/agent:80 clusterIP")]
    assert [(c.expect.result, c.expect.source) for c in checks] == [  # type: ignore[union-attr]
        ("connected", None),
        ("connected", None),
    ]


def test_host_ports_no_node_can_take_are_the_schedulers_error() -> None:
    text = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: edge}
    spec:
      replicas: 3
      selector: {matchLabels: {app: edge}}
      template:
        metadata: {labels: {app: edge}}
        spec:
          hostNetwork: true
          containers: [{name: c, image: i, ports: [{containerPort: 10256}]}]
    """
    refused = [
        (
            5,
            13,
            "spec.replicas",
            "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod "
            "ports.",
        )
    ]
    assert problems(text) == refused
    # kube-proxy's metrics port (127.0.0.1:10249) is taken on every node too.
    assert problems(text.replace("10256", "10249")) == refused


def test_merge_keys_with_an_override() -> None:
    # YAML 1.1 merge keys (go-yaml applies them): keys written beside <<: win
    scenario, _ = ok(
        """\
        apiVersion: v1
        kind: Pod
        metadata: {name: a}
        spec:
          containers:
          - &base {name: web, image: nginx, ports: [{containerPort: 80, name: http}]}
          - <<: *base
            name: sidecar
            ports: [{containerPort: 9090, name: metrics}]
        """
    )
    assert [
        (c.name, c.image, [p.name for p in c.ports]) for c in scenario.pods[0].spec.containers
    ] == [
        ("web", "nginx", ["http"]),
        ("sidecar", "nginx", ["metrics"]),
    ]


def test_unquoted_dates_are_the_strings_they_were_written_as() -> None:
    scenario, _ = ok(
        """\
        apiVersion: v1
        kind: Pod
        metadata:
          name: a
          labels: {released: 2024-01-02}
          annotations: {at: 2024-01-02T10:00:00Z, spaced: 2001-12-14 21:59:43.10 -5}
        spec:
          containers: [{name: c, image: i, args: [--since, 2024-01-02]}]
        """
    )
    meta = scenario.pods[0].meta
    assert meta.labels == {"released": "2024-01-02"}
    assert meta.annotations == {"at": "2024-01-02T10:00:00Z", "spaced": "2001-12-14 21:59:43.10 -5"}


def test_a_deployment_selector_with_match_expressions() -> None:
    _, state = ok(
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          replicas: 2
          selector:
            matchExpressions: [{key: app, operator: In, values: [web, www]}]
          template:
            metadata: {labels: {app: web}}
            spec: {containers: [{name: c, image: i}]}
        """
    )
    assert len([p for p in state.pods if p.owner == "Deployment/web"]) == 2


# Invalid manifests are refused ----------------------------------------------------------------


def service(ports: str, extra: str = "", name: str = "a", kind: str = "NodePort") -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec:\n  type: {kind}\n"
        f"  selector: {{app: a}}\n{extra}  ports:\n{ports}"
    )


def test_one_node_port_on_two_ports_of_a_service() -> None:
    same_protocol = (
        "  - {name: a, port: 80, nodePort: 30080}\n  - {name: b, port: 443, nodePort: 30080}\n"
    )
    assert problems(service(same_protocol)) == [
        (9, 36, "spec.ports[1].nodePort", "Duplicate value: 30080")
    ]
    other_protocol = (
        "  - {name: a, port: 80, nodePort: 30080}\n"
        "  - {name: b, port: 81, protocol: UDP, nodePort: 30080}\n"
    )
    assert problems(service(other_protocol)) == [
        (
            9,
            50,
            "spec.ports[1].nodePort",
            "Invalid value: 30080: provided port is already allocated",
        )
    ]


def test_a_health_check_node_port_equal_to_a_node_port_of_the_service() -> None:
    extra = "  externalTrafficPolicy: Local\n  healthCheckNodePort: 30080\n"
    assert problems(service("  - {port: 80, nodePort: 30080}\n", extra, kind="LoadBalancer")) == [
        (
            8,
            24,
            "spec.healthCheckNodePort",
            "Internal error occurred: failed to allocate requested HealthCheck NodePort 30080: "
            "provided port is already allocated",
        )
    ]


def test_the_cluster_ip_of_kube_dns_is_taken() -> None:
    extra = "  clusterIP: 10.96.0.10\n"
    assert problems(service("  - {port: 80}\n", extra, kind="ClusterIP")) == [
        (
            7,
            14,
            "spec.clusterIPs",
            'Invalid value: []string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: provided IP '
            "is already allocated",
        )
    ]


def test_objects_every_lab_has_already_exist() -> None:
    text = """\
    apiVersion: v1
    kind: Service
    metadata: {name: kubernetes}
    spec: {selector: {app: a}, ports: [{port: 80}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: kube-dns, namespace: kube-system}
    spec: {selector: {app: a}, ports: [{port: 80}]}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: coredns, namespace: kube-system}
    spec:
      selector: {matchLabels: {app: a}}
      template: {metadata: {labels: {app: a}}, spec: {containers: [{name: c, image: i}]}}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: kube-apiserver-node-1, namespace: kube-system}
    spec: {containers: [{name: c, image: i}]}
    """
    assert problems(text) == [
        (3, 18, "metadata.name", 'services "kubernetes" already exists'),
        (8, 18, "metadata.name", 'services "kube-dns" already exists'),
        (13, 18, "metadata.name", 'deployments.apps "coredns" already exists'),
        (20, 18, "metadata.name", 'pods "kube-apiserver-node-1" already exists'),
    ]


def test_traffic_distribution_values_the_server_does_not_know() -> None:
    extra = "  trafficDistribution: PreferSameNode\n"
    assert problems(service("  - {port: 80}\n", extra, kind="ClusterIP")) == [
        (
            7,
            24,
            "spec.trafficDistribution",
            'Unsupported value: "PreferSameNode": supported values: "PreferClose"',
        )
    ]
    # With the PreferSameTrafficDistribution gate on (alpha in v1.33) the server knows them.
    gate = (
        "apiVersion: netlab.dev/v1alpha1\nkind: Lab\nmetadata: {name: g}\n"
        "spec: {featureGates: {PreferSameTrafficDistribution: true}}\n---\n"
    )
    for value in ("PreferSameNode", "PreferSameZone"):
        ok(
            gate
            + service("  - {port: 80}\n", f"  trafficDistribution: {value}\n", kind="ClusterIP")
        )
    assert problems(
        gate + service("  - {port: 80}\n", "  trafficDistribution: Nearby\n", kind="ClusterIP")
    ) == [
        (
            12,
            24,
            "spec.trafficDistribution",
            'Unsupported value: "Nearby": supported values: "PreferClose", "PreferSameZone", '
            '"PreferSameNode"',
        )
    ]


def test_ip_families_an_ipv4_only_cluster_does_not_have() -> None:
    def families(extra: str) -> list[Problem]:
        return problems(service("  - {port: 80}\n", extra, kind="ClusterIP"))

    assert families("  ipFamilies: [IPv6]\n") == [
        (7, 16, "spec.ipFamilies[0]", 'Invalid value: "IPv6": not configured on this cluster')
    ]
    assert families("  ipFamilyPolicy: RequireDualStack\n") == [
        (
            7,
            19,
            "spec.ipFamilyPolicy",
            'Invalid value: "RequireDualStack": this cluster is not configured for dual-stack '
            "services",
        )
    ]
    assert families("  ipFamilyPolicy: SingleStack\n  ipFamilies: [IPv4, IPv6]\n") == [
        (
            7,
            19,
            "spec.ipFamilyPolicy",
            "Invalid value: \"SingleStack\": must be 'RequireDualStack' or 'PreferDualStack' "
            "when multiple IP families are specified",
        )
    ]
    assert families("  clusterIP: fd00::1\n") == [
        (
            7,
            14,
            "spec.clusterIPs[0]",
            'Invalid value: []string{"fd00::1"}: IPv6 is not configured on this cluster',
        )
    ]


def test_dns_policy_none_needs_a_dns_config() -> None:
    text = """\
    apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec:
      dnsPolicy: None
      containers: [{name: c, image: i}]
    """
    assert problems(text) == [
        (
            5,
            3,
            "spec.dnsConfig",
            "Required value: must provide `dnsConfig` when `dnsPolicy` is None",
        )
    ]


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
%s  selector: {matchLabels: {app: a}}
  template: {metadata: {labels: {app: a}}, spec: {containers: [{name: c, image: i}]}}
"""


def test_deployment_timing_and_strategy() -> None:
    lines = "  minReadySeconds: -1\n  revisionHistoryLimit: -2\n  strategy: {type: BlueGreen}\n"
    assert problems(DEPLOYMENT % lines) == [
        (5, 20, "spec.minReadySeconds", "Invalid value: -1: must be greater than or equal to 0"),
        (
            6,
            25,
            "spec.revisionHistoryLimit",
            "Invalid value: -2: must be greater than or equal to 0",
        ),
        (
            7,
            13,
            "spec.strategy",
            'Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
            "RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "
            '"Recreate", "RollingUpdate"',
        ),
    ]
    lines = "  minReadySeconds: 30\n  progressDeadlineSeconds: 30\n"
    assert problems(DEPLOYMENT % lines) == [
        (
            6,
            28,
            "spec.progressDeadlineSeconds",
            "Invalid value: 30: must be greater than minReadySeconds",
        )
    ]
    lines = "  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}\n"
    assert problems(DEPLOYMENT % lines) == [
        (
            5,
            30,
            "spec.strategy.rollingUpdate",
            "Forbidden: may not be specified when strategy `type` is 'Recreate'",
        )
    ]


def test_namespace_finalizers_must_be_qualified_names() -> None:
    text = """\
    apiVersion: v1
    kind: Namespace
    metadata: {name: team}
    spec: {finalizers: [kubernetes, example.com/ok, tidy]}
    """
    assert problems(text) == [
        (
            4,
            20,
            "spec.finalizers",
            'Invalid value: "tidy": name is neither a standard finalizer name nor is it fully '
            "qualified",
        )
    ]


def test_fields_netlab_ignores_are_still_validated() -> None:
    text = """\
    apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec:
      containers:
      - name: c
        image: i
        env: [{name: "A=B", value: x}]
        livenessProbe: {httpGet: {port: 70000}}
        readinessProbe: {tcpSocket: {port: "-web"}}
        resources: {requests: {cpu: 2, memory: 1Gx}, limits: {cpu: 1}}
    """
    assert problems(text) == [
        (
            8,
            18,
            "spec.containers[0].env[0].name",
            'Invalid value: "A=B": a valid environment variable name must consist only of '
            "printable ASCII characters other than '='",
        ),
        (
            9,
            37,
            "spec.containers[0].livenessProbe.httpGet.port",
            "Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        (
            10,
            40,
            "spec.containers[0].readinessProbe.tcpSocket.port",
            'Invalid value: "-web": must not begin or end with a hyphen',
        ),
        (
            11,
            33,
            "spec.containers[0].resources.requests",
            'Invalid value: "2": must be less than or equal to cpu limit of 1',
        ),
        (
            11,
            44,
            "spec.containers[0].resources.requests.memory",
            'Pod in version "v1" cannot be handled as a Pod: quantities must match the regular '
            "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
    ]


def test_lab_addresses_and_ports_that_cannot_exist() -> None:
    text = """\
    apiVersion: netlab.dev/v1alpha1
    kind: Lab
    spec:
      network: {podCIDR: 127.0.0.0/16, nodeNetwork: 192.168.56.0/28}
      nodes: 5
      external:
        clients: [{name: ext, address: 192.168.56.11}]
        servers: [{name: db.example.com, address: 224.0.0.5, ports: [5432]}]
      checks:
      - {from: external, to: "300.1.2.3:99999"}
    """
    assert problems(text) == [
        (
            4,
            22,
            "spec.network.podCIDR",
            'Invalid value: "127.0.0.0/16": may not overlap the loopback range (127.0.0.0/8)',
        ),
        (
            4,
            49,
            "spec.network.nodeNetwork",
            'Invalid value: "192.168.56.0/28": has no address for node 5 (nodes take host 11 '
            "upward)",
        ),
        (
            7,
            36,
            "spec.external.clients[0].address",
            'Invalid value: "192.168.56.11": is node-1\'s address',
        ),
        (
            8,
            47,
            "spec.external.servers[0].address",
            'Invalid value: "224.0.0.5": may not be in the multicast range (224.0.0.0/4)',
        ),
        (
            10,
            26,
            "spec.checks[0].to",
            "Invalid value: 99999: must be between 1 and 65535, inclusive",
        ),
        (10, 26, "spec.checks[0].to", 'Invalid value: "300.1.2.3": must be a valid IPv4 address'),
    ]


# The API server's exact wording ---------------------------------------------------------------


def test_decode_errors_name_the_go_type_and_carry_the_servers_prefix() -> None:
    text = """\
    apiVersion: v1
    kind: Service
    metadata: {name: a}
    spec:
      type: 5
      ipFamilies: IPv4
      selector: {app: a}
      ports: [{port: 80, protocol: [TCP]}]
    """
    prefix = 'Service in version "v1" cannot be handled as a Service: '
    assert problems(text) == [
        (
            5,
            9,
            "spec.type",
            prefix + "json: cannot unmarshal number into Go struct field ServiceSpec.spec.type "
            "of type v1.ServiceType",
        ),
        (
            6,
            15,
            "spec.ipFamilies",
            prefix + "json: cannot unmarshal string into Go struct field ServiceSpec.spec."
            "ipFamilies of type []v1.IPFamily",
        ),
        (
            8,
            32,
            "spec.ports[0].protocol",
            prefix + "json: cannot unmarshal array into Go struct field ServicePort.spec.ports."
            "protocol of type v1.Protocol",
        ),
    ]
    deployment = DEPLOYMENT % "  replicas: two\n"
    assert problems(deployment)[0][3].startswith(
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
        "string into Go struct field DeploymentSpec.spec.replicas of type int32"
    )
