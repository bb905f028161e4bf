"""netlab.scenario.k8s: API-server validation of manifests, with the API server's wording.

Every expected message below is written out in full (copied from the upstream sources named in
the netlab.scenario.k8s modules), so a change of wording shows up here rather than silently.
"""

from __future__ import annotations

import textwrap

import pytest

from netlab.errors import Diagnostic
from netlab.scenario.k8s import (
    Container,
    ContainerPort,
    Deployment,
    Namespace,
    ObjectMeta,
    Pod,
    PodSpec,
    Service,
    ServicePort,
)
from netlab.scenario.k8s.objects import SUPPORTED_KINDS
from netlab.scenario.k8s.parse import parse_object
from netlab.scenario.yamlpos import load_documents

DNS1035 = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1123_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    r"for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
QNAME_NAME_PART = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
PORT_RANGE = "must be between 1 and 65535, inclusive"
# transformDecodeError's prefix (k8s.io/apiserver pkg/endpoints/handlers/rest.go)
DEC_SVC = 'Service in version "v1" cannot be handled as a Service: '
DEC_POD = 'Pod in version "v1" cannot be handled as a Pod: '
DEC_DEPLOY = 'Deployment in version "v1" cannot be handled as a Deployment: '
DEC_NS = 'Namespace in version "v1" cannot be handled as a Namespace: '
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def parse(text: str) -> tuple[object | None, list[Diagnostic]]:
    """Parse one manifest; ``text`` starts with a newline so that line 1 is its first line."""
    docs, diags = load_documents(textwrap.dedent(text).lstrip("\n"), "scenario.yaml")
    assert diags == []
    assert len(docs) == 1
    out: list[Diagnostic] = []
    return parse_object(docs[0], out), out


def errors(out: list[Diagnostic]) -> list[tuple[str, str, int]]:
    return [(d.path, d.message, d.line) for d in out if d.severity == "error"]


def warnings(out: list[Diagnostic]) -> list[tuple[str, str, int]]:
    return [(d.path, d.message, d.line) for d in out if d.severity == "warning"]


def only_error(text: str) -> tuple[str, str, int]:
    obj, out = parse(text)
    assert obj is None
    errs = errors(out)
    assert len(errs) == 1, errs
    return errs[0]


def ok(text: str) -> tuple[object, list[Diagnostic]]:
    obj, out = parse(text)
    assert errors(out) == []
    assert obj is not None
    return obj, out


SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
"""


# ------------------------------------------------------------------------- documented examples


def test_nginx_deployment_from_the_docs_is_accepted_with_defaults() -> None:
    obj, out = ok(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: nginx-deployment
          labels:
            app: nginx
        spec:
          replicas: 3
          selector:
            matchLabels:
              app: nginx
          template:
            metadata:
              labels:
                app: nginx
            spec:
              containers:
              - name: nginx
                image: nginx:1.14.2
                ports:
                - containerPort: 80
        """
    )
    assert out == []
    assert obj == Deployment(
        meta=ObjectMeta(name="nginx-deployment", namespace="default", labels={"app": "nginx"}),
        replicas=3,
        selector={"app": "nginx"},
        template_meta=ObjectMeta(name="", namespace="default", labels={"app": "nginx"}),
        template_spec=PodSpec(
            containers=[
                Container(
                    name="nginx",
                    image="nginx:1.14.2",
                    ports=[ContainerPort(container_port=80, protocol="TCP")],
                )
            ]
        ),
        template_ready=True,
    )


def test_my_service_from_the_docs_is_accepted_with_defaults() -> None:
    obj, out = ok(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: my-service
        spec:
          selector:
            app.kubernetes.io/name: MyApp
          ports:
            - protocol: TCP
              port: 80
              targetPort: 9376
        """
    )
    assert out == []
    assert obj == Service(
        meta=ObjectMeta(name="my-service", namespace="default"),
        ports=[ServicePort(port=80, protocol="TCP", target_port=9376)],
        type="ClusterIP",
        selector={"app.kubernetes.io/name": "MyApp"},
        session_affinity="None",
        session_affinity_timeout=10800,
        external_traffic_policy="",
        internal_traffic_policy="Cluster",
    )


def test_nodeport_service_from_the_docs_defaults_protocol_target_port_and_policies() -> None:
    obj, out = ok(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: my-service
        spec:
          type: NodePort
          selector:
            app.kubernetes.io/name: MyApp
          ports:
            - port: 80
              # Optional field
              nodePort: 30007
        """
    )
    assert out == []
    assert isinstance(obj, Service)
    assert obj.type == "NodePort"
    assert obj.ports == [ServicePort(port=80, protocol="TCP", target_port=80, node_port=30007)]
    assert obj.external_traffic_policy == "Cluster"
    assert obj.internal_traffic_policy == "Cluster"
    assert obj.session_affinity == "None"
    assert obj.meta.namespace == "default"


def test_external_name_service_from_the_docs() -> None:
    obj, out = ok(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: my-service
          namespace: prod
        spec:
          type: ExternalName
          externalName: my.database.example.com
        """
    )
    assert out == []
    assert isinstance(obj, Service)
    assert (obj.type, obj.external_name, obj.ports) == (
        "ExternalName",
        "my.database.example.com",
        [],
    )
    assert obj.meta.namespace == "prod"
    assert obj.selector is None
    assert (obj.external_traffic_policy, obj.internal_traffic_policy) == ("", "")


def test_pod_with_commonly_written_fields_is_accepted() -> None:
    obj, out = ok(
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: web-0
          labels: {app: web}
          annotations: {example.com/owner: me}
        spec:
          restartPolicy: Always
          terminationGracePeriodSeconds: 5
          serviceAccountName: default
          nodeSelector: {kubernetes.io/os: linux}
          tolerations: [{key: k, operator: Exists}]
          affinity: {nodeAffinity: {}}
          securityContext: {runAsNonRoot: true}
          volumes: [{name: data, emptyDir: {}}]
          hostname: web-0
          subdomain: web
          nodeName: node-1
          containers:
          - name: web
            image: nginx
            imagePullPolicy: IfNotPresent
            command: [nginx]
            args: ["-g", "daemon off;"]
            env: [{name: A, value: "1"}]
            resources: {requests: {cpu: 100m}, limits: {memory: 64Mi}}
            readinessProbe: {httpGet: {path: /, port: http}}
            livenessProbe: {tcpSocket: {port: 80}}
            volumeMounts: [{name: data, mountPath: /data}]
            securityContext: {allowPrivilegeEscalation: false}
            ports:
            - name: http
              containerPort: 80
            - containerPort: 53
              protocol: UDP
        """
    )
    assert out == []
    assert obj == Pod(
        meta=ObjectMeta(
            name="web-0",
            namespace="default",
            labels={"app": "web"},
            annotations={"example.com/owner": "me"},
        ),
        spec=PodSpec(
            containers=[
                Container(
                    name="web",
                    image="nginx",
                    ports=[
                        ContainerPort(container_port=80, protocol="TCP", name="http"),
                        ContainerPort(container_port=53, protocol="UDP"),
                    ],
                )
            ],
            node_name="node-1",
            hostname="web-0",
            subdomain="web",
            termination_grace_period_seconds=5,
        ),
        ready=True,
    )


def test_namespace_gets_its_name_label() -> None:
    obj, out = ok(
        """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: team-a
        """
    )
    assert out == []
    assert obj == Namespace(
        meta=ObjectMeta(
            name="team-a", namespace="", labels={"kubernetes.io/metadata.name": "team-a"}
        )
    )


# ------------------------------------------------------------------------- apiVersion and kind


def test_supported_kinds() -> None:
    assert set(SUPPORTED_KINDS) == {
        ("v1", "Namespace"),
        ("v1", "Pod"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
    }


def test_unknown_kind_is_reported_at_kind_with_what_netlab_accepts() -> None:
    obj, out = parse(
        """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: web
        """
    )
    assert obj is None
    assert errors(out) == [
        ("kind", 'no matches for kind "Ingress" in version "networking.k8s.io/v1"', 2)
    ]
    assert out[0].hint == ("netlab accepts: v1 Namespace, v1 Pod, v1 Service, apps/v1 Deployment")
    assert out[0].category == "Ingress default/web"


def test_wrong_api_version_for_a_known_kind_is_reported_at_api_version() -> None:
    assert only_error(
        """
        apiVersion: extensions/v1beta1
        kind: Deployment
        metadata:
          name: web
        """
    ) == ("apiVersion", 'no matches for kind "Deployment" in version "extensions/v1beta1"', 1)


def test_missing_kind_and_api_version() -> None:
    obj, out = parse(
        """
        metadata:
          name: web
        """
    )
    assert obj is None
    assert errors(out) == [
        ("kind", """Object 'Kind' is missing in '{"metadata":{"name":"web"}}'""", 1),
        ("apiVersion", """Object 'apiVersion' is missing in '{"metadata":{"name":"web"}}'""", 1),
    ]


# ------------------------------------------------------------------------- metadata


def test_missing_name() -> None:
    assert only_error(
        """
        apiVersion: v1
        kind: Namespace
        metadata:
          labels: {a: b}
        """
    ) == ("metadata.name", "Required value: name or generateName is required", 4)


def test_missing_metadata_altogether() -> None:
    _, out = parse(
        """
        apiVersion: v1
        kind: Namespace
        """
    )
    assert errors(out) == [("metadata.name", "Required value: name or generateName is required", 1)]
    assert out[0].category == "Namespace"


@pytest.mark.parametrize(
    ("kind", "api_version", "name", "message"),
    [
        ("Service", "v1", "Web_1", f'Invalid value: "Web_1": {DNS1035}'),
        ("Service", "v1", "1web", f'Invalid value: "1web": {DNS1035}'),
        ("Namespace", "v1", "team.a", 'Invalid value: "team.a": must not contain dots'),
        ("Namespace", "v1", "Team", f'Invalid value: "Team": {DNS1123_LABEL}'),
        ("Pod", "v1", "Web", f'Invalid value: "Web": {DNS1123_SUBDOMAIN}'),
        ("Deployment", "apps/v1", "web_1", f'Invalid value: "web_1": {DNS1123_SUBDOMAIN}'),
    ],
)
def test_name_rules_per_kind(kind: str, api_version: str, name: str, message: str) -> None:
    obj, out = parse(
        f"""
        apiVersion: {api_version}
        kind: {kind}
        metadata:
          name: {name}
        """
    )
    assert obj is None
    assert errors(out)[0] == ("metadata.name", message, 4)


def test_names_allowed_by_the_looser_rules() -> None:
    # a Pod name may contain dots; a Service name may not start with a digit but a Pod's may
    obj, _ = ok(
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: 1.web
        spec:
          containers: [{name: c, image: i}]
        """
    )
    assert isinstance(obj, Pod)
    assert obj.meta.name == "1.web"


def test_too_long_service_name() -> None:
    name = "a" * 64
    _, out = parse(SERVICE.replace("name: web", f"name: {name}") + "    - port: 80\n")
    assert errors(out) == [
        ("metadata.name", f'Invalid value: "{name}": must be no more than 63 characters', 4)
    ]


def test_invalid_namespace() -> None:
    assert only_error(
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          namespace: My_NS
        spec:
          containers: [{name: c, image: i}]
        """
    ) == ("metadata.namespace", f'Invalid value: "My_NS": {DNS1123_LABEL}', 5)


def test_namespace_field_on_a_namespace_is_ignored_with_a_warning() -> None:
    obj, out = ok(
        """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: a
          namespace: b
        """
    )
    assert isinstance(obj, Namespace)
    assert obj.meta.namespace == ""
    assert warnings(out) == [
        ("metadata.namespace", "is ignored: a Namespace is not inside a namespace", 5)
    ]


def test_labels_are_validated_like_the_api_server() -> None:
    obj, out = parse(
        """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: a
          labels:
            ok/fine: "yes"
            -bad: x
            Example.com/x: y
            good: "has space"
            a/b/c: d
        """
    )
    assert obj is None
    assert errors(out) == [
        ("metadata.labels", f'Invalid value: "-bad": {QNAME_NAME_PART}', 7),
        ("metadata.labels", f'Invalid value: "Example.com/x": prefix part {DNS1123_SUBDOMAIN}', 8),
        ("metadata.labels", f'Invalid value: "has space": {LABEL_VALUE}', 9),
        (
            "metadata.labels",
            'Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')",
            10,
        ),
    ]
    # a bad key is pointed at the key, a bad value at the value
    assert [d.col for d in out] == [5, 5, 11, 5]


def test_a_number_as_label_value_is_a_decoding_error_with_a_quoting_hint() -> None:
    err = only_error(
        """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: a
          labels:
            version: 1.0
        """
    )
    assert err == (
        "metadata.labels.version",
        DEC_NS
        + "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type "
        "string",
        6,
    )


def test_annotation_keys_are_qualified_names_in_any_case() -> None:
    _, out = parse(
        """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: a
          annotations:
            Example.COM/Owner: me
            bad key: x
        """
    )
    assert errors(out) == [
        ("metadata.annotations", f'Invalid value: "bad key": {QNAME_NAME_PART}', 7)
    ]


def test_generate_name_is_not_supported() -> None:
    assert only_error(
        """
        apiVersion: v1
        kind: Pod
        metadata:
          generateName: web-
        spec:
          containers: [{name: c, image: i}]
        """
    ) == (
        "metadata.generateName",
        "netlab needs a fixed name: generateName is not supported",
        4,
    )


def test_category_names_kind_and_object() -> None:
    _, out = parse(SERVICE.replace("  name: web", "  name: web\n  namespace: shop"))
    assert {d.category for d in out} == {"Service shop/web"}


# ------------------------------------------------------------------------- strict decoding


def test_unknown_fields_are_strict_decoding_errors_at_the_key() -> None:
    obj, out = parse(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: web
          lables: {a: b}
        spec:
          selector: {app: web}
          portz:
          - port: 80
          ports:
          - port: 80
            nodeport: 30080
        """
    )
    assert obj is None
    assert errors(out) == [
        ("metadata.lables", DEC_SVC + 'strict decoding error: unknown field "metadata.lables"', 5),
        ("spec.portz", DEC_SVC + 'strict decoding error: unknown field "spec.portz"', 8),
        (
            "spec.ports[0].nodeport",
            DEC_SVC + 'strict decoding error: unknown field "spec.ports[0].nodeport"',
            12,
        ),
    ]
    assert [d.col for d in out] == [3, 3, 5]
    assert out[1].hint == (
        'did you mean "ports"? field names are case-sensitive; remove fields Kubernetes does not '
        "define"
    )
    assert out[2].hint.startswith('did you mean "nodePort"?')


def test_unknown_field_inside_a_deployment_container() -> None:
    assert only_error(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers:
              - name: web
                image: nginx
                ports:
                - contaierPort: 80
        """
    ) == (
        "spec.template.spec.containers[0].ports[0].contaierPort",
        DEC_DEPLOY
        + 'strict decoding error: unknown field "spec.template.spec.containers[0].ports[0].'
        'contaierPort"',
        13,
    )


def test_wrong_types_read_like_the_api_servers_decoding_errors() -> None:
    obj, out = parse(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          selector: {app: web}
          publishNotReadyAddresses: "yes"
          externalIPs: 10.0.0.1
          ports:
          - port: "80"
            name: a
          - port: 8080.5
            name: 7
            targetPort: true
          - 443
        """
    )
    assert obj is None
    assert errors(out) == [
        (
            "spec.publishNotReadyAddresses",
            DEC_SVC + "json: cannot unmarshal string into Go struct field ServiceSpec."
            "spec.publishNotReadyAddresses of type bool",
            7,
        ),
        (
            "spec.externalIPs",
            DEC_SVC
            + "json: cannot unmarshal string into Go struct field ServiceSpec.spec.externalIPs of "
            "type []string",
            8,
        ),
        (
            "spec.ports[0].port",
            DEC_SVC
            + "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of "
            "type int32",
            10,
        ),
        (
            "spec.ports[1].port",
            DEC_SVC
            + "json: cannot unmarshal number 8080.5 into Go struct field ServicePort.spec.ports."
            "port of type int32",
            12,
        ),
        (
            "spec.ports[1].name",
            DEC_SVC
            + "json: cannot unmarshal number into Go struct field ServicePort.spec.ports.name of "
            "type string",
            13,
        ),
        (
            "spec.ports[1].targetPort",
            DEC_SVC + "json: cannot unmarshal bool into Go value of type int32",
            14,
        ),
        (
            "spec.ports[2]",
            DEC_SVC
            + "json: cannot unmarshal number into Go struct field ServiceSpec.spec.ports of type "
            "v1.ServicePort",
            15,
        ),
    ]
    assert out[2].hint == "write a whole number without quotes"


def test_null_values_mean_unset_and_whole_floats_are_numbers() -> None:
    obj, _ = ok(
        SERVICE
        + """\
  - port: 80.0
    name:
"""
    )
    assert isinstance(obj, Service)
    assert obj.ports == [ServicePort(port=80, target_port=80)]


def test_a_spec_of_the_wrong_type() -> None:
    assert only_error(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec: [a]
        """
    ) == (
        "spec",
        DEC_POD + "json: cannot unmarshal array into Go struct field Pod.spec of type v1.PodSpec",
        4,
    )


# ------------------------------------------------------------------------- pods


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
"""


def test_containers_are_required() -> None:
    assert only_error(POD.replace("  containers:\n", "  containers: []\n")) == (
        "spec.containers",
        "Required value",
        6,
    )


def test_empty_pod_spec() -> None:
    assert only_error(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        """
    ) == ("spec.containers", "Required value", 1)


def test_container_names_images_and_duplicates() -> None:
    obj, out = parse(
        POD
        + """\
  - name: Web
    image: nginx
  - image: nginx
  - name: db
  - name: db
    image: " postgres"
"""
    )
    assert obj is None
    assert errors(out) == [
        ("spec.containers[0].name", f'Invalid value: "Web": {DNS1123_LABEL}', 7),
        ("spec.containers[1].name", "Required value", 9),
        ("spec.containers[2].image", "Required value", 10),
        (
            "spec.containers[3].image",
            'Invalid value: " postgres": must not have leading or trailing whitespace',
            12,
        ),
        ("spec.containers[3].name", 'Duplicate value: "db"', 11),
    ]


def test_container_ports() -> None:
    obj, out = parse(
        POD
        + """\
  - name: web
    image: nginx
    ports:
    - containerPort: 0
    - containerPort: 70000
      protocol: ICMP
    - containerPort: 80
      name: HTTP_port-too-long
    - containerPort: 81
      name: "8080"
    - containerPort: 82
      name: a--b
    - containerPort: 83
      name: -a
    - containerPort: 84
      name: http
    - containerPort: 85
      name: http
"""
    )
    assert obj is None
    assert errors(out) == [
        ("spec.containers[0].ports[0].containerPort", "Required value", 10),
        ("spec.containers[0].ports[1].containerPort", f"Invalid value: 70000: {PORT_RANGE}", 11),
        (
            "spec.containers[0].ports[1].protocol",
            'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
            12,
        ),
        (
            "spec.containers[0].ports[2].name",
            'Invalid value: "HTTP_port-too-long": must be no more than 15 characters',
            14,
        ),
        (
            "spec.containers[0].ports[2].name",
            'Invalid value: "HTTP_port-too-long": must contain only alpha-numeric characters '
            "(a-z, 0-9), and hyphens (-)",
            14,
        ),
        (
            "spec.containers[0].ports[3].name",
            'Invalid value: "8080": must contain at least one letter (a-z)',
            16,
        ),
        (
            "spec.containers[0].ports[4].name",
            'Invalid value: "a--b": must not contain consecutive hyphens',
            18,
        ),
        (
            "spec.containers[0].ports[5].name",
            'Invalid value: "-a": must not begin or end with a hyphen',
            20,
        ),
        ("spec.containers[0].ports[7].name", 'Duplicate value: "http"', 24),
    ]


def test_container_port_protocol_defaults_to_tcp() -> None:
    obj, _ = ok(POD + "  - name: web\n    image: nginx\n    ports: [{containerPort: 80}]\n")
    assert isinstance(obj, Pod)
    assert obj.ports == [ContainerPort(container_port=80, protocol="TCP")]


def test_same_port_name_in_two_containers_is_allowed_but_warned_about() -> None:
    _, out = ok(
        POD
        + """\
  - name: a
    image: nginx
    ports: [{name: http, containerPort: 80}]
  - name: b
    image: nginx
    ports: [{name: http, containerPort: 8080}]
"""
    )
    assert warnings(out) == [
        (
            "spec.containers[1].ports[0].name",
            'port name "http" is also used by container "a"',
            12,
        )
    ]


def test_pod_host_fields() -> None:
    obj, out = parse(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          hostname: web.0
          subdomain: Web
          nodeName: Node_1
          containers: [{name: c, image: i}]
        """
    )
    assert obj is None
    assert errors(out) == [
        ("spec.nodeName", f'Invalid value: "Node_1": {DNS1123_SUBDOMAIN}', 7),
        ("spec.hostname", 'Invalid value: "web.0": must not contain dots', 5),
        ("spec.subdomain", f'Invalid value: "Web": {DNS1123_LABEL}', 6),
    ]


def test_host_network_pod() -> None:
    obj, _ = ok(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          hostNetwork: true
          containers:
          - name: c
            image: i
            ports: [{containerPort: 80}]
        """
    )
    assert isinstance(obj, Pod)
    assert obj.spec.host_network is True


def test_host_network_host_port_must_match_container_port() -> None:
    assert only_error(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          hostNetwork: true
          containers:
          - name: c
            image: i
            ports:
            - containerPort: 80
              hostPort: 8080
        """
    ) == (
        "spec.containers[0].ports[0].hostPort",
        "Invalid value: 8080: must match `containerPort` when `hostNetwork` is true",
        11,
    )


def test_enumerated_pod_fields() -> None:
    _, out = parse(
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          restartPolicy: Sometimes
          dnsPolicy: Cluster
          containers:
          - name: c
            image: i
            imagePullPolicy: Sometimes
        """
    )
    assert errors(out) == [
        (
            "spec.containers[0].imagePullPolicy",
            'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"',
            10,
        ),
        (
            "spec.restartPolicy",
            'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
            5,
        ),
        (
            "spec.dnsPolicy",
            'Unsupported value: "Cluster": supported values: "ClusterFirstWithHostNet", '
            '"ClusterFirst", "Default", "None"',
            6,
        ),
    ]


@pytest.mark.parametrize(("value", "ready"), [('"true"', True), ('"false"', False), (None, True)])
def test_ready_annotation(value: str | None, ready: bool) -> None:
    annotations = f"  annotations:\n    netlab.dev/ready: {value}\n" if value else ""
    text = POD.replace("  name: web\n", "  name: web\n" + annotations)
    obj, _ = ok(text + "  - {name: c, image: i}\n")
    assert isinstance(obj, Pod)
    assert obj.ready is ready


def test_bad_ready_annotation() -> None:
    obj, out = parse(
        POD.replace("  name: web\n", "  name: web\n  annotations:\n    netlab.dev/ready: nope\n")
        + "  - {name: c, image: i}\n"
    )
    assert obj is None
    assert errors(out) == [
        (
            "metadata.annotations[netlab.dev/ready]",
            'Invalid value: "nope": must be "true" or "false"',
            6,
        )
    ]
    assert out[0].hint.startswith('netlab.dev/ready: "false" keeps the pod out')


def test_unquoted_ready_annotation_is_a_decoding_error() -> None:
    err = only_error(
        POD.replace("  name: web\n", "  name: web\n  annotations:\n    netlab.dev/ready: false\n")
        + "  - {name: c, image: i}\n"
    )
    assert err == (
        "metadata.annotations.netlab.dev/ready",
        DEC_POD
        + "json: cannot unmarshal bool into Go struct field ObjectMeta.metadata.annotations of "
        "type string",
        6,
    )


# ------------------------------------------------------------------------- deployments


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx
"""


def test_deployment_replicas_default_to_one() -> None:
    obj, _ = ok(DEPLOYMENT)
    assert isinstance(obj, Deployment)
    assert obj.replicas == 1
    assert obj.template_ready is True


def test_deployment_negative_replicas() -> None:
    assert only_error(
        DEPLOYMENT.replace("spec:\n  selector", "spec:\n  replicas: -1\n  selector")
    ) == (
        "spec.replicas",
        "Invalid value: -1: must be greater than or equal to 0",
        6,
    )


def test_deployment_selector_is_required() -> None:
    assert only_error(
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          template:
            metadata: {labels: {app: web}}
            spec: {containers: [{name: c, image: i}]}
        """
    ) == ("spec.selector", "Required value", 5)


def test_selector_must_match_template_labels() -> None:
    assert only_error(DEPLOYMENT.replace("        app: web", "        app: api")) == (
        "spec.template.metadata.labels",
        'Invalid value: map[string]string{"app":"api"}: `selector` does not match template '
        "`labels`",
        12,
    )


def test_template_without_labels() -> None:
    assert only_error(
        DEPLOYMENT.replace("      labels:\n        app: web\n", "      name: x\n")
    ) == (
        "spec.template.metadata.labels",
        "Invalid value: map[string]string(nil): `selector` does not match template `labels`",
        11,
    )


def test_empty_selector() -> None:
    assert only_error(
        DEPLOYMENT.replace("    matchLabels:\n      app: web\n", "    {}\n").replace(
            "  selector:\n    {}", "  selector: {}"
        )
    ) == (
        "spec.selector",
        "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
        "deployment",
        6,
    )


def test_match_expressions_are_accepted_and_matched_against_the_template() -> None:
    obj, out = parse(
        DEPLOYMENT.replace(
            "    matchLabels:\n      app: web\n",
            "    matchExpressions:\n    - {key: app, operator: In, values: [web]}\n",
        )
    )
    assert errors(out) == []
    assert isinstance(obj, Deployment)
    obj, out = parse(
        DEPLOYMENT.replace(
            "    matchLabels:\n      app: web\n",
            "    matchExpressions:\n    - {key: app, operator: In, values: [db]}\n",
        )
    )
    assert [(p, m.split(":")[0], line) for p, m, line in errors(out)] == [
        ("spec.template.metadata.labels", "Invalid value", 12)
    ]


def test_invalid_match_expressions() -> None:
    # kubernetes/kubernetes staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/validation:
    # ValidateLabelSelectorRequirement
    obj, out = parse(
        DEPLOYMENT.replace(
            "    matchLabels:\n      app: web\n",
            "    matchExpressions:\n"
            "    - {key: app, operator: In}\n"
            "    - {key: app, operator: Exists, values: [x]}\n"
            "    - {key: app, operator: Near, values: [x]}\n",
        )
    )
    assert obj is None
    assert [(p, m) for p, m, _ in errors(out)][:3] == [
        (
            "spec.selector.matchExpressions[0].values",
            "Required value: must be specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            "spec.selector.matchExpressions[1].values",
            "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
        (
            "spec.selector.matchExpressions[2].operator",
            'Invalid value: "Near": not a valid selector operator',
        ),
    ]


def test_invalid_match_labels() -> None:
    obj, out = parse(DEPLOYMENT.replace("      app: web\n", "      app: -web\n", 1))
    assert obj is None
    assert errors(out) == [
        ("spec.selector.matchLabels", f'Invalid value: "-web": {LABEL_VALUE}', 8),
        (
            "spec.selector",
            'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"-web"}, '
            "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: invalid label selector",
            7,
        ),
    ]


def test_template_is_validated_as_a_pod_at_template_paths() -> None:
    obj, out = parse(
        DEPLOYMENT.replace("        image: nginx\n", "        ports: [{containerPort: 0}]\n")
        .replace(
            "    spec:\n", "    spec:\n      restartPolicy: Never\n      activeDeadlineSeconds: 5\n"
        )
        .replace(
            "      labels:\n        app: web\n",
            "      labels:\n        app: web\n        'x y': z\n",
        )
    )
    assert obj is None
    assert errors(out) == [
        ("spec.template.labels", f'Invalid value: "x y": {QNAME_NAME_PART}', 13),
        ("spec.template.spec.containers[0].image", "Required value", 18),
        ("spec.template.spec.containers[0].ports[0].containerPort", "Required value", 19),
        (
            "spec.template.spec.restartPolicy",
            'Unsupported value: "Never": supported values: "Always"',
            15,
        ),
        (
            "spec.template.spec.activeDeadlineSeconds",
            "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
            16,
        ),
    ]


def test_deployment_template_ready_annotation() -> None:
    obj, _ = ok(
        DEPLOYMENT.replace(
            "      labels:\n",
            '      annotations:\n        netlab.dev/ready: "false"\n      labels:\n',
        )
    )
    assert isinstance(obj, Deployment)
    assert obj.template_ready is False
    assert obj.template_meta.annotations == {"netlab.dev/ready": "false"}


def test_bad_deployment_template_ready_annotation() -> None:
    assert only_error(
        DEPLOYMENT.replace(
            "      labels:\n", "      annotations:\n        netlab.dev/ready: 'no'\n      labels:\n"
        )
    ) == (
        "spec.template.annotations[netlab.dev/ready]",
        'Invalid value: "no": must be "true" or "false"',
        12,
    )


# ------------------------------------------------------------------------- services


def service(ports: str = "  - port: 80\n", **spec: str) -> str:
    extra = "".join(f"  {k}: {v}\n" for k, v in spec.items())
    return SERVICE.replace("  selector:\n", extra + "  selector:\n") + ports


def test_service_type_unsupported() -> None:
    assert only_error(service(type="Internal")) == (
        "spec.type",
        'Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", '
        '"LoadBalancer", "NodePort"',
        6,
    )


def test_service_ports_are_required() -> None:
    assert only_error(SERVICE.replace("  ports:\n", "")) == ("spec.ports", "Required value", 6)


def test_headless_and_external_name_services_need_no_ports() -> None:
    obj, _ = ok(SERVICE.replace("  ports:\n", "  clusterIP: None\n"))
    assert isinstance(obj, Service)
    assert obj.headless
    assert obj.ports == []


def test_service_port_checks() -> None:
    obj, out = parse(
        service(
            """\
  - port: 0
    name: a
  - port: 70000
    name: Web
  - port: 81
    name: a
    protocol: HTTP
  - port: 82
    targetPort: "8_0"  # quoted: YAML reads 8_0 as the number 80
  - port: 83
    name: e
    targetPort: 70000
  - port: 84
    name: f
    appProtocol: a/b/c
"""
        )
    )
    assert obj is None
    assert errors(out) == [
        ("spec.ports[0].port", f"Invalid value: 0: {PORT_RANGE}", 9),
        ("spec.ports[0].targetPort", f"Invalid value: 0: {PORT_RANGE}", 9),
        ("spec.ports[1].name", f'Invalid value: "Web": {DNS1123_LABEL}', 12),
        ("spec.ports[1].port", f"Invalid value: 70000: {PORT_RANGE}", 11),
        ("spec.ports[1].targetPort", f"Invalid value: 70000: {PORT_RANGE}", 11),
        ("spec.ports[2].name", 'Duplicate value: "a"', 14),
        (
            "spec.ports[2].protocol",
            'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
            15,
        ),
        ("spec.ports[3].name", "Required value", 16),
        (
            "spec.ports[3].targetPort",
            'Invalid value: "8_0": must contain only alpha-numeric characters (a-z, 0-9), and '
            "hyphens (-)",
            17,
        ),
        (
            "spec.ports[3].targetPort",
            'Invalid value: "8_0": must contain at least one letter (a-z)',
            17,
        ),
        ("spec.ports[4].targetPort", f"Invalid value: 70000: {PORT_RANGE}", 20),
        (
            "spec.ports[5].appProtocol",
            'Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
            "'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
            "and '/' (e.g. 'example.com/MyName')",
            23,
        ),
    ]


def test_node_port_is_forbidden_on_a_cluster_ip_service() -> None:
    err = only_error(service("  - port: 80\n    nodePort: 30080\n"))
    assert err == (
        "spec.ports[0].nodePort",
        "Forbidden: may not be used when `type` is 'ClusterIP'",
        10,
    )


def test_duplicate_port_and_protocol_pairs() -> None:
    obj, out = parse(
        service(
            """\
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53}
  - {name: dns-again, port: 53, protocol: UDP}
"""
        )
    )
    assert obj is None
    assert errors(out) == [
        (
            "spec.ports[2]",
            'Duplicate value: core.ServicePort{Name:"", Protocol:"UDP", '
            "AppProtocol:(*string)(nil), Port:53, TargetPort:intstr.IntOrString{Type:0, "
            'IntVal:0, StrVal:""}, NodePort:0}',
            11,
        )
    ]


def test_duplicate_node_ports() -> None:
    _, out = parse(
        service(
            "  - {name: a, port: 80, nodePort: 30080}\n  - {name: b, port: 81, nodePort: 30080}\n",
            type="NodePort",
        )
    )
    assert errors(out) == [("spec.ports[1].nodePort", "Duplicate value: 30080", 11)]


def test_named_target_port_and_target_port_default() -> None:
    obj, _ = ok(service("  - {name: http, port: 80, targetPort: http}\n  - {name: b, port: 81}\n"))
    assert isinstance(obj, Service)
    assert [p.target_port for p in obj.ports] == ["http", 81]


@pytest.mark.parametrize(
    ("cluster_ip", "stored"), [("10.96.0.10", "10.96.0.10"), ("None", "None"), ('""', "")]
)
def test_valid_cluster_ips(cluster_ip: str, stored: str) -> None:
    obj, _ = ok(service(clusterIP=cluster_ip))
    assert isinstance(obj, Service)
    assert obj.cluster_ip == stored


def test_invalid_cluster_ip_is_reported_at_cluster_ips_like_the_api_server() -> None:
    err = only_error(service(clusterIP="10.96.0.300"))
    assert err == ("spec.clusterIPs[0]", f'Invalid value: "10.96.0.300": {IP_MSG}', 6)


def test_cluster_ips_must_start_with_cluster_ip() -> None:
    err = only_error(service(clusterIP="10.96.0.10", clusterIPs="[10.96.0.11]"))
    assert err == (
        "spec.clusterIPs",
        'Invalid value: []string{"10.96.0.11"}: first value must match `clusterIP`',
        7,
    )


@pytest.mark.parametrize("svc_type", ["NodePort", "LoadBalancer"])
def test_headless_only_for_cluster_ip_type(svc_type: str) -> None:
    err = only_error(service(type=svc_type, clusterIP="None"))
    assert err == (
        "spec.clusterIPs[0]",
        f"Invalid value: \"None\": may not be set to 'None' for {svc_type} services",
        7,
    )


def test_external_name_is_required_for_external_name_services() -> None:
    assert only_error(service(type="ExternalName")) == ("spec.externalName", "Required value", 6)


def test_external_name_must_be_a_dns_subdomain() -> None:
    assert only_error(service(type="ExternalName", externalName="DB.example.com")) == (
        "spec.externalName",
        f'Invalid value: "DB.example.com": {DNS1123_SUBDOMAIN}',
        7,
    )


def test_external_name_may_end_with_a_dot() -> None:
    obj, _ = ok(service(type="ExternalName", externalName="db.example.com."))
    assert isinstance(obj, Service)
    assert obj.external_name == "db.example.com."


def test_ip_looking_external_name_is_accepted_with_a_warning() -> None:
    obj, out = ok(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: db
        spec:
          type: ExternalName
          externalName: 192.0.2.10
        """
    )
    assert isinstance(obj, Service)
    assert obj.external_name == "192.0.2.10"
    assert warnings(out) == [
        (
            "spec.externalName",
            '"192.0.2.10" looks like an IP address, but an ExternalName is a DNS name: the API '
            "server accepts it, yet it does not resolve (CoreDNS answers the Service's name "
            "with NXDOMAIN; older kube-dns published a CNAME to a host name made of digits, "
            "which resolves nowhere either)",
            7,
        )
    ]


def test_cluster_ip_is_forbidden_for_external_name() -> None:
    assert only_error(
        service(type="ExternalName", externalName="db.example.com", clusterIP="None")
    ) == (
        "spec.clusterIPs",
        "Forbidden: may not be set for ExternalName services",
        8,
    )


def test_external_traffic_policy_only_for_externally_accessible_services() -> None:
    assert only_error(service(externalTrafficPolicy="Local")) == (
        "spec.externalTrafficPolicy",
        'Invalid value: "Local": may only be set for externally-accessible services',
        6,
    )


def test_external_traffic_policy_values_and_defaults() -> None:
    obj, _ = ok(service(type="LoadBalancer", externalTrafficPolicy="Local"))
    assert isinstance(obj, Service)
    assert obj.external_traffic_policy == "Local"
    obj, _ = ok(service(type="LoadBalancer"))
    assert isinstance(obj, Service)
    assert obj.external_traffic_policy == "Cluster"
    # externalIPs make a ClusterIP Service externally accessible too
    obj, _ = ok(service(externalIPs="[192.0.2.1]"))
    assert isinstance(obj, Service)
    assert obj.external_traffic_policy == "Cluster"
    assert only_error(service(type="NodePort", externalTrafficPolicy="Global")) == (
        "spec.externalTrafficPolicy",
        'Unsupported value: "Global": supported values: "Cluster", "Local"',
        7,
    )


def test_internal_traffic_policy() -> None:
    obj, _ = ok(service(internalTrafficPolicy="Local"))
    assert isinstance(obj, Service)
    assert obj.internal_traffic_policy == "Local"
    assert only_error(service(internalTrafficPolicy="Node")) == (
        "spec.internalTrafficPolicy",
        'Unsupported value: "Node": supported values: "Cluster", "Local"',
        6,
    )


def test_session_affinity() -> None:
    obj, _ = ok(service(sessionAffinity="ClientIP"))
    assert isinstance(obj, Service)
    assert (obj.session_affinity, obj.session_affinity_timeout) == ("ClientIP", 10800)
    obj, _ = ok(
        service(
            sessionAffinity="ClientIP", sessionAffinityConfig="{clientIP: {timeoutSeconds: 86400}}"
        )
    )
    assert isinstance(obj, Service)
    assert obj.session_affinity_timeout == 86400
    assert only_error(service(sessionAffinity="Sticky")) == (
        "spec.sessionAffinity",
        'Unsupported value: "Sticky": supported values: "ClientIP", "None"',
        6,
    )
    assert only_error(
        service(
            sessionAffinity="ClientIP", sessionAffinityConfig="{clientIP: {timeoutSeconds: 86401}}"
        )
    ) == (
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        "Invalid value: 86401: must be greater than 0 and less than 86400",
        7,
    )


def test_session_affinity_config_without_client_ip_is_dropped_with_a_warning() -> None:
    obj, out = ok(service(sessionAffinityConfig="{clientIP: {timeoutSeconds: 60}}"))
    assert isinstance(obj, Service)
    assert obj.session_affinity == "None"
    assert warnings(out) == [
        (
            "spec.sessionAffinityConfig",
            "is ignored: the API server drops it when sessionAffinity is None",
            6,
        )
    ]


def test_external_ips() -> None:
    obj, out = parse(service(externalIPs="[192.0.2.1, 127.0.0.1, 0.0.0.0, 169.254.0.1, nope]"))
    assert obj is None
    assert errors(out) == [
        (
            "spec.externalIPs[1]",
            'Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
            6,
        ),
        ("spec.externalIPs[2]", 'Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)', 6),
        (
            "spec.externalIPs[3]",
            'Invalid value: "169.254.0.1": may not be in the link-local range (169.254.0.0/16, '
            "fe80::/10)",
            6,
        ),
        ("spec.externalIPs[4]", f'Invalid value: "nope": {IP_MSG}', 6),
    ]


def test_non_standard_ip_gets_the_api_servers_warning() -> None:
    obj, out = ok(service(externalIPs="[192.0.2.010]"))
    assert isinstance(obj, Service)
    assert warnings(out) == [
        (
            "spec.externalIPs[0]",
            'non-standard IP address "192.0.2.010" will be considered invalid in a future '
            'Kubernetes release: use "192.0.2.10"',
            6,
        )
    ]


def test_load_balancer_source_ranges() -> None:
    obj, _ = ok(service(type="LoadBalancer", loadBalancerSourceRanges='[" 10.0.0.0/8 "]'))
    assert isinstance(obj, Service)
    assert obj.load_balancer_source_ranges == ["10.0.0.0/8"]
    obj, out = parse(service(loadBalancerSourceRanges="[10.0.0.0/33]"))
    assert errors(out) == [
        (
            "spec.LoadBalancerSourceRanges",
            "Forbidden: may only be used when `type` is 'LoadBalancer'",
            6,
        ),
        (
            "spec.LoadBalancerSourceRanges[0]",
            'Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or '
            "2001:db8::/64)",
            6,
        ),
    ]


def test_load_balancer_ip() -> None:
    obj, _ = ok(service(type="LoadBalancer", loadBalancerIP="192.0.2.50"))
    assert isinstance(obj, Service)
    assert obj.load_balancer_ip == "192.0.2.50"
    assert only_error(service(type="LoadBalancer", loadBalancerIP="lb.example.com")) == (
        "spec.loadBalancerIP",
        f'Invalid value: "lb.example.com": {IP_MSG}',
        7,
    )


def test_allocate_load_balancer_node_ports() -> None:
    obj, _ = ok(service(type="LoadBalancer"))
    assert isinstance(obj, Service)
    assert obj.allocate_load_balancer_node_ports is True
    obj, _ = ok(service(type="LoadBalancer", allocateLoadBalancerNodePorts="false"))
    assert isinstance(obj, Service)
    assert obj.allocate_load_balancer_node_ports is False
    assert only_error(service(type="NodePort", allocateLoadBalancerNodePorts="false")) == (
        "spec.allocateLoadBalancerNodePorts",
        "Forbidden: may only be used when `type` is 'LoadBalancer'",
        7,
    )


def test_load_balancer_class_only_for_load_balancers() -> None:
    assert only_error(service(loadBalancerClass="example.com/vip")) == (
        "spec.loadBalancerClass",
        "Forbidden: may only be used when `type` is 'LoadBalancer'",
        6,
    )


def test_health_check_node_port() -> None:
    obj, _ = ok(
        service(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort="30999")
    )
    assert isinstance(obj, Service)
    assert obj.health_check_node_port == 30999
    assert only_error(service(type="LoadBalancer", healthCheckNodePort="30999")) == (
        "spec.healthCheckNodePort",
        "Invalid value: 30999: may only be set when `type` is 'LoadBalancer' and "
        "`externalTrafficPolicy` is 'Local'",
        7,
    )


def test_publish_not_ready_addresses() -> None:
    obj, _ = ok(service(clusterIP="None", publishNotReadyAddresses="true"))
    assert isinstance(obj, Service)
    assert obj.publish_not_ready_addresses is True


def test_ip_families() -> None:
    _, out = parse(service(ipFamilies="[IPv4, IPv5]", ipFamilyPolicy="DualStack"))
    assert errors(out) == [
        (
            "spec.ipFamilies[1]",
            'Unsupported value: "IPv5": supported values: "IPv4", "IPv6"',
            6,
        ),
        (
            "spec.ipFamilyPolicy",
            'Unsupported value: "DualStack": supported values: "PreferDualStack", '
            '"RequireDualStack", "SingleStack"',
            7,
        ),
    ]


def test_status_is_ignored_with_a_warning() -> None:
    obj, out = ok(service() + "status:\n  loadBalancer:\n    ingress: [{ip: 192.0.2.1}]\n")
    assert isinstance(obj, Service)
    assert obj.load_balancer_ingress == []
    assert warnings(out) == [
        ("status", "is ignored: status is written by the cluster, not by manifests", 11)
    ]


@pytest.mark.parametrize("selector", ["", "  selector: {}\n"])
def test_service_without_selector_is_valid_but_warned_about(selector: str) -> None:
    obj, out = ok(
        f"""
apiVersion: v1
kind: Service
metadata:
  name: external-db
spec:
{selector}  ports:
  - port: 5432
"""
    )
    assert isinstance(obj, Service)
    assert obj.selector is None
    assert warnings(out) == [
        (
            "spec.selector",
            "no selector: netlab cannot add EndpointSlices by hand, so this Service will have no "
            "endpoints and connections to it will be refused",
            6,
        )
    ]


def test_service_selector_labels_are_validated() -> None:
    assert only_error(SERVICE.replace("app: web", "app: web!") + "  - port: 80\n") == (
        "spec.selector",
        f'Invalid value: "web!": {LABEL_VALUE}',
        7,
    )


def test_api_server_warnings() -> None:
    _, out = ok(service(clusterIP="None", externalIPs="[192.0.2.1]", externalName="x.example"))
    assert warnings(out) == [
        ("spec.externalIPs", "is ignored for headless services", 7),
        ("spec.externalName", 'is ignored when spec.type is not "ExternalName"', 8),
    ]


def test_misspelled_field_does_not_also_report_the_field_as_missing() -> None:
    obj, out = parse(service("  - prot: 80\n"))
    assert obj is None
    assert errors(out) == [
        (
            "spec.ports[0].prot",
            DEC_SVC + 'strict decoding error: unknown field "spec.ports[0].prot"',
            9,
        )
    ]


def test_one_document_with_several_problems_reports_them_all() -> None:
    obj, out = parse(
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: Web_1
          namespace: default
        spec:
          type: ClusterIP
          clusterIP: 10.96.0.300
          selectr: {app: web}
          ports:
          - name: http
            port: 0
            nodePort: 30080
          - name: http
            port: 8080
            protocol: ICMP
            targetPort: "8080"
        """
    )
    assert obj is None
    assert errors(out) == [
        ("spec.selectr", DEC_SVC + 'strict decoding error: unknown field "spec.selectr"', 9),
        ("metadata.name", f'Invalid value: "Web_1": {DNS1035}', 4),
        ("spec.ports[0].port", f"Invalid value: 0: {PORT_RANGE}", 12),
        ("spec.ports[0].targetPort", f"Invalid value: 0: {PORT_RANGE}", 12),
        ("spec.ports[1].name", 'Duplicate value: "http"', 14),
        (
            "spec.ports[1].protocol",
            'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
            16,
        ),
        (
            "spec.ports[1].targetPort",
            'Invalid value: "8080": must contain at least one letter (a-z)',
            17,
        ),
        ("spec.clusterIPs[0]", f'Invalid value: "10.96.0.300": {IP_MSG}', 8),
        ("spec.ports[0].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'", 13),
    ]
    assert all(d.file == "scenario.yaml" and d.category == "Service default/Web_1" for d in out)
    assert all(d.hint for d in out)
