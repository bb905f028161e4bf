"""netlab.scenario.labspec and labschema: the Lab document's defaults, schema and semantic errors,
and the parsing of checks (sources, destinations, expectations, origins)."""

from __future__ import annotations

import textwrap

import pytest

from netlab.errors import Diagnostic
from netlab.scenario.checkspec import (
    CaptureCheck,
    CheckSpec,
    ConnectCheck,
    ConnectExpect,
    Destination,
    HttpCheck,
    HttpExpect,
    Origin,
    Source,
    parse_destination,
    parse_source,
)
from netlab.scenario.labschema import LAB_API_VERSION, LAB_KIND, PROXY_MODES, SCHEMA
from netlab.scenario.labspec import (
    ExternalClient,
    LabSpec,
    NetworkSpec,
    ProxySpec,
    default_lab,
    is_lab_document,
    parse_lab,
)
from netlab.scenario.yamlpos import load_documents

HEAD = "apiVersion: netlab.dev/v1alpha1\nkind: Lab\n"


def lab(body: str = "", *, head: str = HEAD) -> tuple[LabSpec | None, list[Diagnostic]]:
    """Parse a Lab document; ``body`` (dedented) follows the two header lines (lines 1-2)."""
    docs, diags = load_documents(head + textwrap.dedent(body).lstrip("\n"), "lab.yaml")
    assert diags == []
    out: list[Diagnostic] = []
    spec = parse_lab(docs[0], "fallback", out)
    return spec, out


def ok(body: str = "") -> LabSpec:
    spec, out = lab(body)
    assert out == []
    assert spec is not None
    return spec


def errs(body: str) -> list[tuple[int, int, str, str, str]]:
    spec, out = lab(body)
    assert spec is None
    assert all(d.file == "lab.yaml" and d.severity == "error" for d in out)
    return [(d.line, d.col, d.path, d.message, d.hint) for d in out]


def checks(body: str) -> tuple[CheckSpec, ...]:
    spec = ok("spec:\n  checks:\n" + textwrap.indent(textwrap.dedent(body).lstrip("\n"), "  "))
    assert spec.checks is not None
    return spec.checks


# Defaults -------------------------------------------------------------------------------------


def test_defaults_when_every_field_is_absent() -> None:
    assert ok() == LabSpec(
        name="fallback",
        nodes=("node-1", "node-2"),
        network=NetworkSpec(
            pod_cidr="10.244.0.0/16",
            node_cidr_mask_size=24,
            service_cidr="10.96.0.0/12",
            node_network="192.168.56.0/24",
        ),
        proxy=ProxySpec(mode="iptables", iptables_backend="auto", masquerade_all=False),
        external_clients=(ExternalClient("external", "192.168.56.100"),),
        client_pods=True,
        checks=None,
        description="",
    )


def test_default_lab_equals_an_empty_lab_document() -> None:
    assert default_lab("fallback") == ok()
    assert default_lab("x").name == "x"


def test_metadata_name_and_description() -> None:
    spec = ok("metadata: {name: my-lab, description: Teaches things.}\n")
    assert (spec.name, spec.description) == ("my-lab", "Teaches things.")


def test_nodes_as_a_count() -> None:
    assert ok("spec: {nodes: 3}").nodes == ("node-1", "node-2", "node-3")
    assert ok("spec: {nodes: 1}").nodes == ("node-1",)


def test_nodes_as_a_list() -> None:
    assert ok("spec:\n  nodes: [{name: cp}, {name: worker-a}]\n").nodes == ("cp", "worker-a")


def test_explicit_values() -> None:
    spec = ok(
        """
        spec:
          network:
            podCIDR: 10.32.0.0/12
            nodeCIDRMaskSize: 20
            serviceCIDR: 172.20.0.0/16
            nodeNetwork: 192.168.100.0/24
          proxy: {mode: nftables, iptablesBackend: legacy, masqueradeAll: true}
          clientPods: false
          checks: []
        """
    )
    assert spec.network == NetworkSpec("10.32.0.0/12", 20, "172.20.0.0/16", "192.168.100.0/24")
    assert spec.proxy == ProxySpec("nftables", "legacy", True)
    # The default external client follows the node network.
    assert spec.external_clients == (ExternalClient("external", "192.168.100.100"),)
    assert spec.client_pods is False
    assert spec.checks == ()


def test_external_clients_first_defaults_to_dot_100() -> None:
    spec = ok(
        """
        spec:
          external:
            clients:
            - name: ext
            - {name: far, address: 203.0.113.7}
        """
    )
    assert spec.external_clients == (
        ExternalClient("ext", "192.168.56.100"),
        ExternalClient("far", "203.0.113.7"),
    )


def test_is_lab_document() -> None:
    assert is_lab_document({"apiVersion": LAB_API_VERSION, "kind": "Lab"})
    assert not is_lab_document({"apiVersion": "v1", "kind": "Service"})
    assert not is_lab_document(["apiVersion", LAB_API_VERSION])
    assert not is_lab_document(None)


def test_schema_constants() -> None:
    assert (LAB_API_VERSION, LAB_KIND) == ("netlab.dev/v1alpha1", "Lab")
    assert SCHEMA["properties"]["apiVersion"]["const"] == LAB_API_VERSION
    assert SCHEMA["properties"]["spec"]["properties"]["proxy"]["properties"]["mode"]["enum"] == (
        PROXY_MODES
    )


# Schema errors --------------------------------------------------------------------------------


def test_unknown_field_at_its_key_with_the_allowed_fields() -> None:
    spec, out = lab("spec:\n  nodes: 2\n  bogus: 1\n")
    assert spec is None
    assert out == [
        Diagnostic(
            message='unknown field "spec.bogus"',
            file="lab.yaml",
            line=5,
            col=3,
            path="spec.bogus",
            hint=(
                "fields allowed here: checks, clientPods, controlPlane, dns, external, "
                "featureGates, loadBalancer, network, nodes, proxy, steps"
            ),
            category="Lab",
        )
    ]


def test_unknown_fields_at_top_level_each_reported() -> None:
    assert errs("zeta: 1\nalpha: 2\n") == [
        (
            3,
            1,
            "zeta",
            'unknown field "zeta"',
            "fields allowed here: apiVersion, kind, metadata, spec",
        ),
        (
            4,
            1,
            "alpha",
            'unknown field "alpha"',
            "fields allowed here: apiVersion, kind, metadata, spec",
        ),
    ]


def test_misspelt_field_and_value_get_did_you_mean() -> None:
    assert errs("spec:\n  nodse: 2\n  proxy: {mode: nftable}\n") == [
        (
            4,
            3,
            "spec.nodse",
            'unknown field "spec.nodse"',
            'did you mean "nodes"?; fields allowed here: checks, clientPods, '
            "controlPlane, dns, external, featureGates, loadBalancer, network, nodes, proxy, "
            "steps",
        ),
        (
            5,
            17,
            "spec.proxy.mode",
            'Unsupported value: "nftable": supported values: "iptables", "nftables", "ipvs", '
            '"userspace", "ebpf"',
            'did you mean "nftables"?; Default iptables.',
        ),
    ]


def test_enum_error() -> None:
    assert errs("spec:\n  proxy:\n    mode: kernelspace\n") == [
        (
            5,
            11,
            "spec.proxy.mode",
            'Unsupported value: "kernelspace": supported values: "iptables", "nftables", "ipvs", '
            '"userspace", "ebpf"',
            "Default iptables.",
        )
    ]


def test_wrong_type_uses_the_description_as_hint() -> None:
    assert errs('spec:\n  clientPods: "yes"\n') == [
        (
            4,
            15,
            "spec.clientPods",
            'Invalid value: "yes": must be true or false',
            "Add a client pod netlab/client-NODE on every node (default true).",
        )
    ]


def test_pattern_error_uses_the_x_hint() -> None:
    assert errs("spec:\n  network:\n    podCIDR: 10.244.0/16\n") == [
        (
            5,
            14,
            "spec.network.podCIDR",
            'Invalid value: "10.244.0/16": must be an IPv4 prefix (ADDRESS/LENGTH)',
            "an IPv4 prefix such as 10.244.0.0/16",
        )
    ]


def test_one_of_error_says_what_was_given_with_the_x_hint() -> None:
    assert errs("spec:\n  nodes: 0\n") == [
        (
            4,
            10,
            "spec.nodes",
            "Invalid value: 0: must be between 1 and 50, inclusive",
            "a number of nodes (1-50) or a list like [{name: node-1}]",
        )
    ]
    assert errs("spec:\n  nodes: two\n") == [
        (
            4,
            10,
            "spec.nodes",
            'Invalid value: "two": must be a number of nodes or a list of nodes',
            "a number of nodes (1-50) or a list like [{name: node-1}]",
        )
    ]


def test_const_error() -> None:
    spec, out = lab("", head="apiVersion: netlab.dev/v1alpha1\nkind: Laboratory\n")
    assert spec is None
    assert [(d.line, d.col, d.path, d.message, d.hint) for d in out] == [
        (
            2,
            7,
            "kind",
            'Unsupported value: "Laboratory": supported values: "Lab"',
            "netlab's own document starts apiVersion: netlab.dev/v1alpha1, kind: Lab",
        )
    ]


def test_minimum_error() -> None:
    assert errs("spec:\n  network:\n    nodeCIDRMaskSize: 8\n") == [
        (
            5,
            23,
            "spec.network.nodeCIDRMaskSize",
            "Invalid value: 8: must be between 16 and 28, inclusive",
            "Prefix length of each node's pod CIDR (default 24).",
        )
    ]


def test_schema_errors_in_checks() -> None:
    body = """
    spec:
      checks:
      - from: somewhere
        to: service/web
      - to: service/web
      - from: pod/a
        to: 10.0.0.1
      - from: pod/a
        to: service/web
        expect: {result: maybe, endpoints: some}
    """
    assert errs(body) == [
        (
            5,
            11,
            "spec.checks[0].from",
            'Invalid value: "somewhere": must name a pod, a node or an external client',
            "use pod/NAME, pod/NAMESPACE/NAME, node/NODE, external or external/CLIENT",
        ),
        (
            7,
            5,
            "spec.checks[1].from",
            "Required value",
            "use pod/NAME, pod/NAMESPACE/NAME, node/NODE, external or external/CLIENT",
        ),
        (
            9,
            9,
            "spec.checks[2].to",
            'Invalid value: "10.0.0.1": must be service/NAME[:PORT], IP:PORT or node/NODE:PORT',
            "use service/NAME[:PORT], IP:PORT, node/NODE:PORT, or {service:, via:, node:, port:}",
        ),
        (
            12,
            22,
            "spec.checks[3].expect.result",
            'Unsupported value: "maybe": supported values: "connected", "refused", "timeout", '
            '"unreachable", "unresolved", "closed", "failed"',
            "connected; refused (REJECT); timeout (DROP); unreachable (no route); unresolved "
            "(a name that did not resolve); closed (accepted, then closed without an answer: "
            "the userspace proxy with no endpoint); failed (any of these failures, where modes "
            "fail differently).",
        ),
        (
            12,
            40,
            "spec.checks[3].expect.endpoints",
            'Unsupported value: "some": supported values: "all", "none"',
            "use all, none, or a list such as [web-0, node/node-1]",
        ),
    ]


def test_schema_errors_stop_before_semantic_checks() -> None:
    # Overlapping CIDRs would be an error too, but the schema error is reported alone.
    out = errs(
        "spec:\n  clientPods: 1\n  network: {podCIDR: 10.0.0.0/8, serviceCIDR: 10.96.0.0/12}\n"
    )
    assert [path for _, _, path, _, _ in out] == ["spec.clientPods"]


# Semantic errors ------------------------------------------------------------------------------


def test_overlapping_cidrs() -> None:
    body = """
    spec:
      network:
        podCIDR: 10.0.0.0/8
        serviceCIDR: 10.96.0.0/12
        nodeNetwork: 10.244.1.0/24
    """
    hint = "the pod, service and node networks must be disjoint"
    assert errs(body) == [
        (
            6,
            18,
            "spec.network.serviceCIDR",
            "serviceCIDR 10.96.0.0/12 overlaps podCIDR 10.0.0.0/8",
            hint,
        ),
        (
            7,
            18,
            "spec.network.nodeNetwork",
            "nodeNetwork 10.244.1.0/24 overlaps podCIDR 10.0.0.0/8",
            hint,
        ),
    ]


def test_semantic_errors_carry_the_lab_category() -> None:
    spec, out = lab("metadata: {name: demo}\nspec:\n  network: {serviceCIDR: 10.244.0.0/20}\n")
    assert spec is None
    assert [(d.category, d.message) for d in out] == [
        ("Lab demo", "serviceCIDR 10.244.0.0/20 overlaps podCIDR 10.244.0.0/16")
    ]


def test_prefix_with_host_bits() -> None:
    assert errs("spec:\n  network:\n    podCIDR: 10.244.0.1/16\n") == [
        (
            5,
            14,
            "spec.network.podCIDR",
            'Invalid value: "10.244.0.1/16": 10.244.0.1/16 has host bits set',
            "give the network address with its length, e.g. 10.244.0.0/16",
        )
    ]


def test_node_cidr_mask_size_must_be_longer_than_the_pod_cidr() -> None:
    assert errs("spec:\n  nodes: 1\n  network:\n    nodeCIDRMaskSize: 16\n") == [
        (
            6,
            23,
            "spec.network.nodeCIDRMaskSize",
            "nodeCIDRMaskSize 16 must be longer than the podCIDR prefix /16",
            "each node takes one slice of the podCIDR",
        ),
        (
            4,
            10,
            "spec.nodes",
            "1 nodes do not fit: podCIDR 10.244.0.0/16 holds 0 node slices of /16",
            "use fewer nodes, a larger podCIDR or a longer nodeCIDRMaskSize",
        ),
    ]


def test_too_many_nodes_for_the_pod_cidr() -> None:
    net = "  network: {podCIDR: 10.244.0.0/24, nodeCIDRMaskSize: 26}\n"
    # A /24 holds four /26 slices; slice 0 is never used, so three nodes fit and four do not.
    assert ok("spec:\n  nodes: 3\n" + net).nodes == ("node-1", "node-2", "node-3")
    assert errs("spec:\n  nodes: 4\n" + net) == [
        (
            4,
            10,
            "spec.nodes",
            "4 nodes do not fit: podCIDR 10.244.0.0/24 holds 3 node slices of /26",
            "use fewer nodes, a larger podCIDR or a longer nodeCIDRMaskSize",
        )
    ]


def test_duplicate_and_reserved_node_names() -> None:
    body = """
    spec:
      nodes:
      - name: a
      - name: fabric
      - name: a
      - name: external
    """
    assert errs(body) == [
        (6, 11, "spec.nodes[1].name", '"fabric" is reserved by netlab', "pick another node name"),
        (7, 11, "spec.nodes[2].name", 'Duplicate value: "a"', "node names are unique"),
        (8, 11, "spec.nodes[3].name", '"external" is reserved by netlab', "pick another node name"),
    ]


def test_external_client_address_rules() -> None:
    body = """
    spec:
      external:
        clients:
        - name: ext
          address: 10.1.2.3
        - name: other
        - name: inpods
          address: 10.244.5.5
        - name: bad
          address: 999.1.1.1
        - name: svc
          address: 10.100.0.1
    """
    outside = "use an address outside the cluster"
    assert errs(body) == [
        (
            7,
            16,
            "spec.external.clients[0].address",
            "the first external client must be on the node network 192.168.56.0/24",
            "it is the router between the lab and the outside",
        ),
        (
            8,
            7,
            "spec.external.clients[1]",
            "Required value: address",
            "every external client after the first needs an address",
        ),
        (
            10,
            16,
            "spec.external.clients[2].address",
            "10.244.5.5 lies inside podCIDR 10.244.0.0/16",
            outside,
        ),
        (
            12,
            16,
            "spec.external.clients[3].address",
            'Invalid value: "999.1.1.1": must be a valid IPv4 address',
            "write four numbers 0-255, e.g. 203.0.113.7",
        ),
        (
            14,
            16,
            "spec.external.clients[4].address",
            "10.100.0.1 lies inside serviceCIDR 10.96.0.0/12",
            outside,
        ),
    ]


def test_duplicate_external_client_name() -> None:
    body = """
    spec:
      external:
        clients:
        - name: ext
        - {name: ext, address: 203.0.113.1}
    """
    assert errs(body) == [
        (
            7,
            14,
            "spec.external.clients[1].name",
            'Duplicate value: "ext"',
            "external client names are unique",
        )
    ]


def test_duplicate_external_client_name_after_a_skipped_client() -> None:
    """The duplicate is reported at its own index, even when an earlier client was invalid."""
    body = """
    spec:
      external:
        clients:
        - name: ext
        - name: no-address
        - {name: ext, address: 203.0.113.1}
    """
    assert [(line, path, msg) for line, _, path, msg, _ in errs(body)] == [
        (7, "spec.external.clients[1]", "Required value: address"),
        (8, "spec.external.clients[2].name", 'Duplicate value: "ext"'),
    ]


def test_duplicate_check_names() -> None:
    body = """
    spec:
      checks:
      - {name: x, from: pod/a, to: service/web}
      - {name: y, from: pod/a, to: service/web}
      - {name: x, from: pod/b, to: service/web}
    """
    assert errs(body) == [
        (7, 12, "spec.checks[2].name", 'Duplicate value: "x"', "check names are unique")
    ]


# Checks: sources and destinations ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("pod/web-0", Source("pod", "web-0", "")),
        ("pod/team/web-0", Source("pod", "web-0", "team")),
        ("node/node-1", Source("node", "node-1")),
        ("external", Source("external", "")),
        ("external/far", Source("external", "far")),
    ],
)
def test_parse_source(text: str, source: Source) -> None:
    assert parse_source(text) == source
    assert str(source) == text


@pytest.mark.parametrize(
    ("value", "destination"),
    [
        ("service/web", Destination(service="web")),
        ("service/ns/web:http", Destination(service="web", namespace="ns", port="http")),
        ("service/web:80", Destination(service="web", port=80)),
        ("10.96.0.20:80", Destination(address="10.96.0.20", port=80, via="")),
        ("node/node-1:30080", Destination(node="node-1", port=30080, via="")),
        (
            {"service": "web", "via": "nodePort", "node": "node-2"},
            Destination(service="web", via="nodePort", node="node-2"),
        ),
        (
            {"service": "ns/web", "port": "8080"},
            Destination(service="web", namespace="ns", port=8080),
        ),
        ({"service": "web", "namespace": "ns"}, Destination(service="web", namespace="ns")),
        ({"address": "10.96.0.20", "port": 80}, Destination(address="10.96.0.20", port=80, via="")),
        ({"node": "node-1", "port": 30080}, Destination(node="node-1", port=30080, via="")),
    ],
)
def test_parse_destination(value: str | dict[str, object], destination: Destination) -> None:
    assert parse_destination(value) == destination


def test_parse_destination_rejects_other_strings() -> None:
    with pytest.raises(ValueError, match=r"^web$"):
        parse_destination("web")


def test_destination_str() -> None:
    assert str(Destination(service="web")) == "service/web"
    assert str(Destination(service="web", namespace="ns", port="http")) == "service/ns/web:http"
    assert (
        str(Destination(service="web", via="nodePort"))
        == "service/web via nodePort on the first node"
    )
    assert (
        str(Destination(service="web", port=80, via="nodePort", node="node-2"))
        == "service/web:80 via nodePort on node-2"
    )
    assert str(Destination(service="web", via="loadBalancer")) == "service/web via loadBalancer"
    assert str(Destination(node="node-1", port=30080, via="")) == "node/node-1:30080"
    assert str(Destination(address="10.96.0.20", port=80, via="")) == "10.96.0.20:80"


def test_checks_parsed_with_origins() -> None:
    parsed = checks(
        """
        - {from: pod/a, to: service/web}
        - {name: x, from: pod/ns/a, to: "service/ns/web:http"}
        - {name: y, from: node/node-1, to: "service/web:80"}
        - {from: external, to: "10.96.0.20:80", protocol: UDP, connections: 5, timeout: 2}
        - {from: external/far, to: "node/node-1:30080", kind: capture}
        - {from: external, to: {service: web, via: nodePort, node: node-2}}
        """
    )
    assert parsed == (
        ConnectCheck(
            name="check-1",
            source=Source("pod", "a"),
            destination=Destination(service="web"),
            origin=Origin("lab.yaml", 5, 5, "spec.checks[0]"),
        ),
        ConnectCheck(
            name="x",
            source=Source("pod", "a", "ns"),
            destination=Destination(service="web", namespace="ns", port="http"),
            origin=Origin("lab.yaml", 6, 5, "spec.checks[1]"),
        ),
        ConnectCheck(
            name="y",
            source=Source("node", "node-1"),
            destination=Destination(service="web", port=80),
            origin=Origin("lab.yaml", 7, 5, "spec.checks[2]"),
        ),
        ConnectCheck(
            name="check-4",
            source=Source("external"),
            destination=Destination(address="10.96.0.20", port=80, via=""),
            protocol="UDP",
            connections=5,
            timeout=2.0,
            origin=Origin("lab.yaml", 8, 5, "spec.checks[3]"),
        ),
        CaptureCheck(
            name="check-5",
            source=Source("external", "far"),
            destination=Destination(node="node-1", port=30080, via=""),
            origin=Origin("lab.yaml", 9, 5, "spec.checks[4]"),
        ),
        ConnectCheck(
            name="check-6",
            source=Source("external"),
            destination=Destination(service="web", via="nodePort", node="node-2"),
            origin=Origin("lab.yaml", 10, 5, "spec.checks[5]"),
        ),
    )
    assert isinstance(parsed[3].timeout, float)


def test_check_expect_and_description() -> None:
    (check,) = checks(
        """
        - from: pod/a
          to: service/web
          description: Both endpoints, masqueraded.
          expect:
            endpoints: [a, node/node-2]
            source: masqueraded
        """
    )
    assert check.expect == ConnectExpect("connected", ("a", "node/node-2"), "masqueraded")
    assert check.description == "Both endpoints, masqueraded."
    assert check.derived is False


def test_check_expect_defaults_and_failures() -> None:
    first, second, third = checks(
        """
        - {from: pod/a, to: service/web}
        - {from: pod/a, to: service/web, expect: {result: refused}}
        - {from: pod/a, to: service/web, expect: {result: timeout, endpoints: none}}
        """
    )
    assert first.expect == ConnectExpect("connected", None, None)
    assert second.expect == ConnectExpect("refused", None, None)
    assert third.expect == ConnectExpect("timeout", "none", None)


def test_destination_object_errors() -> None:
    body = """
    spec:
      checks:
      - {from: pod/a, to: {address: 10.1.1.1, via: nodePort}}
      - {from: pod/a, to: {service: web, node: node-2}}
      - {from: pod/a, to: {address: 10.1.1.1}}
      - {from: pod/a, to: {address: 10.1.1.1, port: http}}
      - {from: pod/a, to: {port: 80}}
      - {from: pod/a, to: {service: web, address: 10.1.1.1}}
    """
    assert errs(body) == [
        (
            5,
            48,
            "spec.checks[0].to.via",
            "via applies to a service only",
            "remove via, or add service:",
        ),
        (
            5,
            23,
            "spec.checks[0].to",
            "Required value: port",
            "a raw address or a name needs a port number",
        ),
        (6, 44, "spec.checks[1].to.node", "node applies with via: nodePort", "add via: nodePort"),
        (
            7,
            23,
            "spec.checks[2].to",
            "Required value: port",
            "a raw address or a name needs a port number",
        ),
        (
            8,
            49,
            "spec.checks[3].to.port",
            "a raw destination needs a port number",
            "write port: 80",
        ),
        (
            9,
            23,
            "spec.checks[4].to",
            "Required value: service, address, name or node",
            "say what the probe dials",
        ),
        (
            10,
            47,
            "spec.checks[5].to.address",
            "service and address exclude each other",
            "a check dials one thing: keep one of them",
        ),
    ]


def test_expect_rules() -> None:
    body = """
    spec:
      checks:
      - {from: pod/a, to: service/web, expect: {result: refused, endpoints: all}}
      - {from: pod/a, to: service/web, expect: {result: timeout, source: client}}
      - {from: pod/a, to: service/web, expect: {result: refused, endpoints: none}}
      - {from: pod/a, to: service/web, kind: capture, expect: {result: timeout}}
      - {from: pod/a, to: service/web, expect: {result: refused, endpoints: [a]}}
    """
    assert errs(body) == [
        (
            5,
            73,
            "spec.checks[0].expect.endpoints",
            "a check expecting refused reaches no endpoints",
            "drop endpoints or use endpoints: none",
        ),
        (
            6,
            70,
            "spec.checks[1].expect.source",
            "a check expecting timeout sees no source address",
            "drop source",
        ),
        (
            8,
            68,
            "spec.checks[3].expect.result",
            "a capture check needs a connection",
            "use kind: connect for refused/timeout",
        ),
        (
            9,
            73,
            "spec.checks[4].expect.endpoints",
            "a check expecting refused reaches no endpoints",
            "drop endpoints or use endpoints: none",
        ),
    ]


def test_http_checks_and_new_expectations() -> None:
    http, sticky, failed = checks("""
    - name: mode
      kind: http
      from: node/node-1
      to: 127.0.0.1:10249
      path: /proxyMode
      expect: {status: 200, body: iptables}
      modes:
        nftables: {expect: {body: nftables}}
        userspace: {expect: {result: refused}}
    - {name: s, from: pod/a, to: service/web, expect: {sticky: true}}
    - {name: f, from: pod/a, to: service/web, expect: {result: failed}}
    """)
    assert isinstance(http, HttpCheck)
    assert (http.kind, http.path, http.protocol) == ("http", "/proxyMode", "TCP")
    assert http.expect == HttpExpect(status=200, body="iptables")
    assert http.for_mode("nftables").expect == HttpExpect(status=200, body="nftables")
    # An override to a failure drops what only an answer can show.
    assert http.for_mode("userspace").expect == HttpExpect(result="refused")
    assert isinstance(sticky, ConnectCheck) and sticky.expect.sticky is True
    assert failed.expect == ConnectExpect(result="failed")


def test_http_and_sticky_rules() -> None:
    body = """
    spec:
      checks:
      - {from: pod/a, to: service/web, kind: http, expect: {endpoints: all}}
      - {from: pod/a, to: service/web, expect: {status: 200}}
      - {from: pod/a, to: service/web, path: /x}
      - {from: pod/a, to: service/web, kind: http, expect: {result: refused, status: 503}}
      - {from: pod/a, to: service/web, expect: {result: failed, sticky: true}}
      - {from: pod/a, to: service/web, kind: http, protocol: UDP}
      - {from: pod/a, kind: dns, query: web, path: /}
    """
    assert [(path, message) for _, _, path, message, _ in errs(body)] == [
        ("spec.checks[0].expect.endpoints", "endpoints applies to connect checks"),
        ("spec.checks[1].expect.status", "status applies to http checks"),
        ("spec.checks[2].path", "path applies to http checks"),
        ("spec.checks[3].expect.status", "a check expecting refused gets no HTTP answer"),
        ("spec.checks[4].expect.sticky", "a check expecting failed reaches no endpoint"),
        ("spec.checks[5].protocol", "HTTP runs over TCP"),
        ("spec.checks[6].path", "path does not apply to dns checks"),
    ]
