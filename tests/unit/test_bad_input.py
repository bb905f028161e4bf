"""Every input gets a verdict: bad bytes, bad YAML, YAML's traps, numbers of the wrong kind, labs
too small for what they hold, names that look like markup. Each is a located error with a hint,
produced quickly, never an exception of another kind."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import pytest
from rich.console import Console

from netlab.checks.validate import load_and_validate, validate
from netlab.cli import report
from netlab.cli.output import Out
from netlab.errors import Diagnostic, ScenarioError
from netlab.scenario.load import parse_scenario
from netlab.scenario.yamlpos import load_documents

Problem = tuple[int, int, str, str]


def file_problems(tmp_path: Path, content: bytes) -> list[Problem]:
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    with pytest.raises(ScenarioError) as info:
        load_and_validate(path)
    assert all(d.hint and d.line and d.col for d in info.value.diagnostics)
    return [(d.line, d.col, d.path, d.message) for d in info.value.diagnostics]


def problems(text: str) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        validate(parse_scenario(textwrap.dedent(text), "s.yaml"))
    assert all(d.hint and d.line and d.col for d in info.value.diagnostics)
    return [(d.line, d.col, d.path, d.message) for d in info.value.diagnostics]


# Bytes that are not UTF-8, and characters YAML forbids ------------------------------------------


def test_latin1_utf16_and_binary_files_are_refused_at_the_byte(tmp_path: Path) -> None:
    assert file_problems(tmp_path, b"apiVersion: v1\nkind: caf\xe9\n") == [
        (
            2,
            10,
            "",
            "the file is not UTF-8: byte 0xe9 here is not valid UTF-8 (invalid continuation byte)",
        )
    ]
    assert file_problems(tmp_path, "kind: Pod\n".encode("utf-16")) == [
        (
            1,
            1,
            "",
            "the file is UTF-16 (it starts with a UTF-16 byte-order mark); YAML for Kubernetes "
            "is UTF-8",
        )
    ]
    assert file_problems(tmp_path, "kind: Pod\n".encode("utf-16-le")) == [
        (
            1,
            2,
            "",
            "the file holds NUL bytes: it looks like UTF-16 or a binary file, not UTF-8 YAML",
        )
    ]
    assert file_problems(tmp_path, b"a: 1\n\xff\xfe\x00\x01")[0][:2] == (2, 1)


@pytest.mark.parametrize(
    ("char", "code"), [("\x00", "0000"), ("\x07", "0007"), ("\x7f", "007F"), ("\ud800", "D800")]
)
def test_control_characters_and_lone_surrogates_are_located(char: str, code: str) -> None:
    docs, diags = load_documents(f"a: 1\nb: x{char}y\n", "s.yaml")
    assert docs == []
    assert [(d.line, d.col, d.category) for d in diags] == [(2, 5, "yaml")]
    assert f"U+{code}" in diags[0].message


# Tags ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!int web", "cannot decode !!str `web` as a !!int"),
        ("!!float http", "cannot decode !!str `http` as a !!float"),
        ("!!bool nginx", "cannot decode !!str `nginx` as a !!bool"),
        ("!!timestamp yesterday", "cannot decode !!str `yesterday` as a !!timestamp"),
        ("!!int", "cannot decode !!null `` as a !!int"),
        ("!!float 2024-01-02", "cannot decode !!timestamp `2024-01-02` as a !!float"),
    ],
)
def test_tags_that_do_not_fit_their_value(value: str, message: str) -> None:
    docs, diags = load_documents(f"a: 1\nb: {value}\n", "s.yaml")
    assert [(d.line, d.col, d.path, d.message) for d in diags] == [(2, 4, "b", message)]
    assert docs[0].bad == [("b",)]


def test_bad_tags_as_keys_and_unknown_tags() -> None:
    docs, diags = load_documents("!!int abc: 1\n!foo x: !bar y\n", "s.yaml")
    assert [(d.line, d.col, d.message) for d in diags] == [
        (1, 1, "cannot decode !!str `abc` as a !!int")
    ]
    # go-yaml keeps the value of a tag it does not know as it was written
    assert docs[0].data == {"abc": 1, "x": "y"}


def test_bad_tags_inside_a_manifest_are_reported_once() -> None:
    text = """\
    apiVersion: v1
    kind: Service
    metadata: {name: a}
    spec:
      selector: {app: a}
      ports: [{port: !!int http}]
    """
    assert problems(text) == [
        (6, 18, "spec.ports[0].port", "cannot decode !!str `http` as a !!int")
    ]


# Nesting and aliases ---------------------------------------------------------------------------


def test_deep_nesting_is_refused_with_a_limit() -> None:
    for text in ("a: " + "[" * 5000 + "]" * 5000, "a: " + "{b: " * 3000 + "c" + "}" * 3000):
        docs, diags = load_documents(text, "s.yaml")
        assert docs == []
        assert len(diags) == 1
        assert "depth" in diags[0].message


def test_an_anchor_that_contains_itself() -> None:
    _, diags = load_documents("a: &x {b: *x}\nc: &y\n  <<: *y\n", "s.yaml")
    assert [(d.line, d.col, d.message) for d in diags] == [
        (1, 11, "anchor 'x' value contains itself"),
        (3, 7, "anchor 'y' value contains itself"),
    ]


def test_a_billion_laughs_is_refused_quickly_in_bounded_memory() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    tracemalloc.start()
    try:
        docs, diags = load_documents("\n".join(lines) + "\n", "s.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert docs == []
    assert [d.message for d in diags] == ["document contains excessive aliasing"]
    assert peak < 5_000_000  # a billion values would take gigabytes


def test_aliases_share_their_values_within_the_limit() -> None:
    docs, diags = load_documents("a: &x [1, 2]\nb: *x\nc: [*x, *x]\n", "s.yaml")
    assert diags == []
    assert docs[0].data == {"a": [1, 2], "b": [1, 2], "c": [[1, 2], [1, 2]]}


# Numbers of the wrong kind in the Lab document ------------------------------------------------


LAB = "apiVersion: netlab.dev/v1alpha1\nkind: Lab\nspec:\n"
SERVICE = """\
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""


def test_whole_numbers_written_with_a_point_are_the_numbers() -> None:
    # YAML to JSON makes 2.0 the number 2, as it does for Kubernetes fields
    lab = (
        LAB + "  nodes: 2.0\n  dns: {replicas: 2.0}\n  checks:\n"
        "  - {from: external, to: {service: web, port: 80.0}, connections: 5.0}\n"
    )
    scenario = parse_scenario(lab + SERVICE, "s.yaml")
    assert scenario.lab.nodes == ("node-1", "node-2")
    assert scenario.lab.dns.replicas == 2
    assert scenario.lab.checks is not None
    check = scenario.lab.checks[0]
    assert (check.destination.port, check.connections) == (80, 5)  # type: ignore[union-attr]
    validate(scenario)


def test_fractions_and_nan_where_a_lab_takes_numbers() -> None:
    lab = (
        LAB + "  network: {nodeCIDRMaskSize: 24.5}\n  checks:\n"
        "  - {from: external, to: 192.168.56.11:80, timeout: .nan, connections: 2.5}\n"
    )
    assert problems(lab) == [
        (
            4,
            31,
            "spec.network.nodeCIDRMaskSize",
            "Invalid value: 24.5: must be a whole number",
        ),
        (6, 53, "spec.checks[0].timeout", "Invalid value: .nan: must be a finite number"),
        (6, 72, "spec.checks[0].connections", "Invalid value: 2.5: must be a whole number"),
    ]


def test_nan_in_a_manifest_fails_the_yaml_to_json_step() -> None:
    text = SERVICE.replace("{port: 80}", "{port: .nan}")
    assert problems(text) == [
        (7, 18, "spec.ports[0].port", "error converting YAML to JSON: json: unsupported value: NaN")
    ]


# Capacity --------------------------------------------------------------------------------------


def deployment(replicas: int) -> str:
    return f"""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: big}}
    spec:
      replicas: {replicas}
      selector: {{matchLabels: {{app: big}}}}
      template:
        metadata: {{labels: {{app: big}}}}
        spec: {{containers: [{{name: c, image: i}}]}}
    """


def test_more_replicas_than_the_nodes_pod_cidrs_hold() -> None:
    assert problems(deployment(600)) == [
        (
            5,
            13,
            "spec.replicas",
            "Invalid value: 600: node-1 would need 300 pod addresses: failed to allocate for range "
            "0: no IP addresses available in range set: 10.244.1.1-10.244.1.254",
        )
    ]


def test_the_largest_replica_count_is_refused_without_making_its_pods() -> None:
    tracemalloc.start()
    try:
        found = problems(deployment(2147483647))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found == [
        (
            5,
            13,
            "spec.replicas",
            "Invalid value: 2147483647: the lab would run 2147483647 pods, and netlab runs at "
            "most 10000 (one network namespace each)",
        )
    ]
    assert peak < 20_000_000


def services(count: int, spec: str) -> str:
    return "---\n".join(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}}}\nspec: {spec}\n"
        for i in range(count)
    )


def test_more_load_balancers_than_the_pool_holds() -> None:
    text = services(300, "{type: LoadBalancer, selector: {app: a}, ports: [{port: 80}]}")
    (found,) = problems(text)
    assert found[2:] == (
        "spec.type",
        "no address left for this load balancer: the pool 192.0.2.0/24 is all given out",
    )
    assert found[0] == 5 * 254 + 4  # the 255th Service's type


def test_more_node_ports_than_the_range_holds() -> None:
    ports = ", ".join(f"{{name: p{j}, port: {j + 1}}}" for j in range(10))
    (found,) = problems(
        services(280, f"{{type: NodePort, selector: {{app: a}}, ports: [{ports}]}}")
    )
    assert found[2:] == (
        "spec.ports[8].nodePort",
        "Internal error occurred: failed to allocate a nodePort: range is full",
    )


def test_a_service_cidr_with_no_address_left() -> None:
    lab = LAB + "  network: {serviceCIDR: 10.96.0.0/28}\n---\n"
    (found,) = problems(lab + services(20, "{selector: {app: a}, ports: [{port: 80}]}"))
    assert found[2:] == (
        "spec.clusterIPs",
        "Internal error occurred: failed to allocate a serviceIP: range is full",
    )


# Printing --------------------------------------------------------------------------------------


def print_both(diags: list[Diagnostic]) -> tuple[str, str]:
    terminal, pipe = io.StringIO(), io.StringIO()
    out = Out(terminal)
    out.console = Console(file=terminal, force_terminal=True, color_system=None, width=400)
    report.diagnostics(out, diags)
    report.diagnostics(Out(pipe), diags)
    return terminal.getvalue(), pipe.getvalue()


def test_names_with_markup_and_newlines_are_printed_literally_one_per_line() -> None:
    d = Diagnostic(
        message='Invalid value: "[red]a\nb[/red]\\": bad',
        file="s[1].yaml",
        line=3,
        col=5,
        path="metadata.labels.[bold]x\ny",
        hint="a hint with [/] and a trailing backslash \\",
        category="Pod default/[red]p",
    )
    terminal, pipe = print_both([d])
    for text in (terminal, pipe):
        lines = text.splitlines()
        assert len(lines) == 3  # the diagnostic, its hint, the count
        assert "[red]a\\nb[/red]\\" in lines[0]
        assert "[bold]x\\ny" in lines[0]
        assert lines[1].endswith("[/] and a trailing backslash \\")
    assert terminal.splitlines()[0].startswith("s[1].yaml:3:5: error [Pod default/[red]p]")


def test_a_closed_pipe_ends_the_command_quietly() -> None:
    proc = subprocess.run(
        f"{Path(sys.executable).parent / 'netlab'} schema | head -c 10",
        shell=True,
        capture_output=True,
        text=True,
        check=False,
        executable="/bin/bash",
    )
    assert proc.stderr == ""
    assert proc.stdout == '{\n  "$sche'
