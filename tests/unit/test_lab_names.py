"""A lab's name becomes paths, namespace names and tags: wherever one comes in, it is checked."""

from __future__ import annotations

import pytest

from netlab.cli import main
from netlab.cluster import topology
from netlab.errors import ScenarioError, UsageError
from netlab.lab.record import state_dir
from netlab.scenario.labschema import lab_name_problem
from netlab.scenario.load import lab_name_from_file, parse_scenario

BAD = ["/etc", "..", "../../etc", "", "Web", "-web", "web-", "a" * 41, "web lab", "web/x"]


@pytest.mark.parametrize("name", ["web", "a", "my-lab-2", "a" * 40])
def test_good_names(name: str) -> None:
    assert lab_name_problem(name) == ""


@pytest.mark.parametrize("name", BAD)
def test_bad_names_are_refused(name: str) -> None:
    assert lab_name_problem(name) != ""
    with pytest.raises(UsageError):
        state_dir(name)


def test_state_dir_of_a_good_name() -> None:
    assert state_dir("web") == "/run/netlab/web"


@pytest.mark.parametrize("name", ["../../etc", "/etc"])
def test_name_option_is_validated(name: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n", "x.yaml", name=name
        )
    (diag,) = err.value.diagnostics
    assert diag.path == "--name"
    assert diag.message == f"{name!r} is not a valid lab name"
    assert diag.hint.startswith("lower-case letters")


@pytest.mark.parametrize(
    "command",
    [
        "down",
        "cleanup",
        "status",
        "check",
        "ready",
        "rules",
        "exec",
        "apply",
        "scale",
        "delete",
        "node",
    ],
)
def test_lab_arguments_are_validated(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    extra = {
        "ready": ["pod/x", "true"],
        "rules": ["node/node-1"],
        "exec": ["pod/x"],
        "apply": ["x.yaml"],
        "scale": ["deployment/web", "1"],
        "delete": ["pod/x"],
        "node": ["node-1", "down"],
    }
    with pytest.raises(SystemExit) as exc:
        main([command, "../../etc", *extra.get(command, [])])
    assert exc.value.code == 2
    assert "'../../etc' is not a valid lab name" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("scenarios/Café Demo.yaml", "caf--demo"),
        ("/x/---.yaml", "lab"),
        ("/x/" + "b" * 39 + "-c.yaml", "b" * 39),
    ],
)
def test_names_from_files_are_valid(file: str, name: str) -> None:
    assert lab_name_from_file(file) == name
    assert lab_name_problem(name) == ""


def test_tags_with_bad_lab_names_are_not_ours() -> None:
    assert topology.parse_tag(topology.tag("web", "node")) == ("web", "node")
    assert topology.parse_tag("netlab lab=.. role=node") is None
    assert topology.parse_tag("netlab lab=/etc role=node") is None
