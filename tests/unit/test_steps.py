"""Timelines: ``spec.steps`` parsed with positions, held connections, durations, and the timeline
played on the desired state by validation (pure: no kernel)."""

from __future__ import annotations

import textwrap

import pytest

from netlab.checks.validate import validate
from netlab.errors import ScenarioError
from netlab.scenario.changespec import (
    ApplyChange,
    DeleteChange,
    NodeChange,
    ProxyChange,
    ReadyChange,
    ScaleChange,
    WaitChange,
)
from netlab.scenario.checkspec import ConnectCheck
from netlab.scenario.load import parse_scenario
from netlab.scenario.stepspec import parse_duration

HEAD = "apiVersion: netlab.dev/v1alpha1\nkind: Lab\nmetadata: {name: demo}\nspec:\n"
OBJECTS = """\
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"""


def scenario(spec: str) -> str:
    return HEAD + textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ") + "\n" + OBJECTS


def errors(spec: str) -> list[tuple[int, int, str, str]]:
    with pytest.raises(ScenarioError) as exc:
        validate(parse_scenario(scenario(spec), "t.yaml"))
    return [(d.line, d.col, d.path, d.message) for d in exc.value.diagnostics]


def test_every_change_kind_parses() -> None:
    s = parse_scenario(
        scenario(
            """
            checks: []
            steps:
            - {name: s1, scale: {deployment: web, replicas: 0}}
            - {delete: {pod: default/web-x, gracePeriodSeconds: 5}}
            - {delete: {service: web}}
            - {node: {name: node-2, state: down}}
            - {ready: {pod: web-x, value: false}}
            - {proxy: {conntrackCleanup: true}}
            - {wait: 1m30s}
            - apply:
              - {apiVersion: v1, kind: Namespace, metadata: {name: team}}
            - {name: just-checks}
            """
        ),
        "t.yaml",
    )
    changes = [step.change for step in s.lab.steps]
    assert changes[:7] == [
        ScaleChange(name="web", replicas=0, origin=changes[0].origin if changes[0] else None),
        DeleteChange(
            resource="pod",
            namespace="default",
            name="web-x",
            grace=5,
            origin=changes[1].origin if changes[1] else None,
        ),
        DeleteChange(
            resource="service", name="web", origin=changes[2].origin if changes[2] else None
        ),
        NodeChange(node="node-2", up=False, origin=changes[3].origin if changes[3] else None),
        ReadyChange(name="web-x", ready=False, origin=changes[4].origin if changes[4] else None),
        ProxyChange(conntrack_cleanup=True, origin=changes[5].origin if changes[5] else None),
        WaitChange(seconds=90.0, origin=changes[6].origin if changes[6] else None),
    ]
    assert isinstance(changes[7], ApplyChange) and changes[7].namespaces[0].meta.name == "team"
    assert changes[8] is None
    assert [step.name for step in s.lab.steps][:3] == ["s1", "step-2", "step-3"]
    origin = changes[0].origin if changes[0] else None
    assert origin is not None and (origin.line, origin.path) == (7, "spec.steps[0].scale")


def test_durations() -> None:
    assert parse_duration(40) == 40.0
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1.5h") == 5400.0
    for bad in ("", "5", "5 s", "-1s", -1, True, None, "1d"):
        assert parse_duration(bad) is None


def test_held_connections_take_their_holders_source_and_destination() -> None:
    s = parse_scenario(
        scenario(
            """
            checks:
            - {name: open, from: pod/client-node-1, to: service/web, hold: conn}
            steps:
            - checks:
              - {name: again, connection: conn, expect: {endpoints: all}}
            """
        ),
        "t.yaml",
    )
    (again,) = s.lab.steps[0].checks
    assert isinstance(again, ConnectCheck)
    assert (str(again.source), again.destination.service, again.connection) == (
        "pod/client-node-1",
        "web",
        "conn",
    )
    assert again.connections == 3


def test_step_errors_are_located() -> None:
    found = errors(
        """
        checks:
        - {name: open, from: pod/client-node-1, to: service/web, hold: conn}
        - {name: many, from: pod/client-node-1, to: service/web, hold: two, connections: 4}
        steps:
        - {name: a, scale: {deployment: web, replicas: 1}, wait: 5s}
        - {name: a, wait: 5s}
        - checks:
          - {name: c1, connection: nope}
          - {name: c2, connection: conn, to: service/web}
          - {name: c3, from: pod/client-node-1, to: service/web, hold: conn}
          - {name: c4, from: pod/client-node-1, to: service/web, hold: x, expect: {result: refused}}
        """
    )
    assert found == [
        (7, 84, "spec.checks[1].connections", "a held connection is one connection"),
        (9, 60, "spec.steps[0].wait", "scale and wait exclude each other"),
        (10, 12, "spec.steps[1].name", 'Duplicate value: "a"'),
        (
            12,
            30,
            "spec.steps[2].checks[0].connection",
            'no connection "nope" is held before this check',
        ),
        (
            13,
            40,
            "spec.steps[2].checks[1].to",
            "to does not apply to a check over a held connection",
        ),
        (14, 66, "spec.steps[2].checks[2].hold", 'Duplicate value: "conn"'),
        (
            15,
            66,
            "spec.steps[2].checks[3].hold",
            "a check expecting refused has no connection to hold",
        ),
    ]


def test_a_bad_duration_is_a_schema_error() -> None:
    assert errors("checks: []\nsteps:\n- {wait: 5 seconds}") == [
        (
            7,
            12,
            "spec.steps[0].wait",
            'Invalid value: "5 seconds": must be a number of seconds or a duration (40s, '
            "500ms, 1m30s)",
        )
    ]


def test_the_timeline_is_played_to_find_what_a_step_names() -> None:
    found = errors(
        """
        checks: []
        steps:
        - {name: grow, scale: {deployment: web, replicas: 3}}
        - {name: nope, scale: {deployment: api, replicas: 1}}
        """
    )
    assert found == [(8, 25, "spec.steps[1].scale", 'deployments.apps "api" not found')]


def test_checks_of_a_step_resolve_against_the_state_at_that_step() -> None:
    ok = scenario(
        """
        checks: []
        steps:
        - name: add
          apply:
          - apiVersion: v1
            kind: Service
            metadata: {name: api}
            spec: {selector: {app: web}, ports: [{port: 81, targetPort: http}]}
          checks:
          - {name: api-served, from: pod/client-node-1, to: service/api}
        - name: gone
          delete: {service: api}
        """
    )
    validate(parse_scenario(ok, "t.yaml"))
    too_early = ok.replace(
        "          checks:\n          - {name: api-served",
        "        - checks:\n          - {name: api-served",
    )
    with pytest.raises(ScenarioError):
        validate(
            parse_scenario(
                too_early.replace("- name: add\n", "- name: add\n  wait: 1s\n", 1), "t.yaml"
            )
        )


def test_a_manifest_inside_a_step_is_validated_with_its_position() -> None:
    found = errors(
        """
        checks: []
        steps:
        - apply:
          - apiVersion: v1
            kind: Service
            metadata: {name: api}
            spec: {ports: [{port: 70000}]}
        """
    )
    assert found[0][:3] == (11, 29, "spec.ports[0].port")
