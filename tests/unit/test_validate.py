"""netlab validate reports everything at once: every check that names something the lab lacks,
each at the field that names it, with the valid choices."""

from __future__ import annotations

import textwrap

import pytest

from netlab.checks.validate import validate
from netlab.errors import ScenarioError
from netlab.scenario.load import parse_scenario

MANIFESTS = """\
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, labels: {app: web}}
spec:
  containers: [{name: web, image: nginx, ports: [{containerPort: 8080, name: http}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"""


def problems(lab: str) -> list[tuple[int, int, str, str, str]]:
    text = textwrap.dedent(lab) + MANIFESTS
    with pytest.raises(ScenarioError) as info:
        validate(parse_scenario(text, "refs.yaml"))
    return [(d.line, d.col, d.path, d.message, d.hint) for d in info.value.diagnostics]


def test_every_reference_error_of_a_file_at_its_own_field() -> None:
    lab = """\
    apiVersion: netlab.dev/v1alpha1
    kind: Lab
    metadata: {name: refs}
    spec:
      checks:
      - name: two-wrong
        from: pod/clinet-node-1
        to: service/wbe:http
      - name: bad-port
        from: pod/client-node-1
        to: {service: web, port: htp}
      - name: bad-endpoints
        from: pod/client-node-1
        to: service/web
        expect: {endpoints: [web-0, ghost, node/node-9]}
        modes:
          userspace:
            expect: {endpoints: [phantom]}
      - name: bad-answer
        kind: dns
        from: pod/client-node-1
        query: web
        expect: {answers: [service/web, service/nope, external/nowhere]}
    """
    endpoints = "endpoints: web-0; node/NODE stands for the endpoints on a node"
    assert problems(lab) == [
        (
            7,
            11,
            "spec.checks[0].from",
            'pod "clinet-node-1" not found',
            'did you mean "client-node-1"? pods in this lab: default/web-0, '
            "netlab/client-node-1, netlab/client-node-2",
        ),
        (
            8,
            9,
            "spec.checks[0].to",
            'service "default/wbe" not found',
            'did you mean "web"? Services in namespace default: kubernetes, web',
        ),
        (
            11,
            30,
            "spec.checks[1].to.port",
            "Service default/web has no port 'htp'",
            'did you mean "http"? ports of web: http (80/TCP)',
        ),
        (
            15,
            33,
            "spec.checks[2].expect.endpoints[1]",
            '"ghost" is not an endpoint of this destination',
            endpoints,
        ),
        (
            15,
            40,
            "spec.checks[2].expect.endpoints[2]",
            'node "node-9" not found',
            "nodes: node-1, node-2",
        ),
        (
            18,
            30,
            "spec.checks[2].modes.userspace.expect.endpoints[0]",
            '"phantom" is not an endpoint of this destination',
            endpoints,
        ),
        (
            23,
            37,
            "spec.checks[3].expect.answers[1]",
            'service "default/nope" not found',
            "Services in namespace default: kubernetes, web",
        ),
        (
            23,
            51,
            "spec.checks[3].expect.answers[2]",
            'external server "nowhere" not found',
            "there are no external servers",
        ),
    ]


def test_reference_errors_come_with_the_lab_documents_own_errors() -> None:
    # A Lab document error stops that document; manifests are still all checked.
    lab = """\
    apiVersion: netlab.dev/v1alpha1
    kind: Lab
    spec:
      nodse: 3
    """
    assert problems(lab) == [
        (
            4,
            3,
            "spec.nodse",
            'unknown field "spec.nodse"',
            'did you mean "nodes"?; fields allowed here: checks, clientPods, '
            "controlPlane, dns, external, featureGates, loadBalancer, network, nodes, proxy, "
            "steps",
        )
    ]


def test_a_check_made_in_code_reports_the_field_path() -> None:
    # the API's ad-hoc checks have no file: no line, but still the field
    from netlab.checks.adhoc import parse_adhoc
    from netlab.checks.resolve import resolve_all

    scenario = parse_scenario(MANIFESTS, "m.yaml")
    spec = parse_adhoc({"from": "pod/nobody", "to": "service/web:htp"})
    _, diags = resolve_all(validate(scenario), [spec])
    assert [(d.path, d.message) for d in diags] == [
        ("spec.checks[0].from", 'pod "nobody" not found'),
        ("spec.checks[0].to.port", "Service default/web has no port 'htp'"),
    ]
