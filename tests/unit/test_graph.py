"""``netlab graph`` on every shipped scenario: mermaid and dot that their own grammars accept
(a structural check of each line, and Graphviz's ``dot`` itself when installed)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from netlab.checks.validate import load_and_validate
from netlab.explain.graph import render

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(glob.glob(str(ROOT / "scenarios" / "*.yaml")))
IDS = [os.path.basename(p) for p in SCENARIOS]

_ID = r"[A-Za-z0-9_]+"
_MERMAID_NODE = re.compile(rf'^\s*({_ID})(\["[^"]*"\]|\("[^"]*"\)|\{{\{{"[^"]*"\}}\}})$')
_MERMAID_EDGE = re.compile(rf'^\s*({_ID}) (-->|-\.->)(\|"[^"]*"\|)? ({_ID})$')
_MERMAID_GROUP = re.compile(rf'^\s*subgraph ({_ID})\["[^"]*"\]$')


def check_mermaid(text: str) -> tuple[set[str], int]:
    """Every line is a header, a group, a node or an edge; edges join declared nodes."""
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    declared: set[str] = set()
    edges: list[tuple[str, str]] = []
    depth = 0
    for line in lines[1:]:
        if m := _MERMAID_GROUP.match(line):
            depth += 1
            continue
        if line.strip() == "end":
            depth -= 1
            assert depth >= 0
            continue
        if m := _MERMAID_NODE.match(line):
            assert m.group(1) not in declared, line
            declared.add(m.group(1))
            continue
        m = _MERMAID_EDGE.match(line)
        assert m, f"not mermaid: {line!r}"
        edges.append((m.group(1), m.group(4)))
    assert depth == 0
    assert all(a in declared and b in declared for a, b in edges), edges
    return declared, len(edges)


@pytest.mark.parametrize("path", SCENARIOS, ids=IDS)
def test_mermaid_of_every_scenario(path: str) -> None:
    _, state = load_and_validate(path)
    declared, edges = check_mermaid(render(state, "mermaid"))
    assert edges >= 1
    for pod in state.pods:
        assert any(d.endswith(re.sub(r"\W", "_", pod.name)) for d in declared), pod.name
    assert sum(d.startswith("svc_") for d in declared) == len(state.services)


@pytest.mark.parametrize("path", SCENARIOS, ids=IDS)
def test_dot_of_every_scenario(path: str, tmp_path: Path) -> None:
    _, state = load_and_validate(path)
    text = render(state, "dot")
    assert text.startswith('digraph "') and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    edges = [ln for ln in text.splitlines() if " -> " in ln]
    assert edges and all(re.match(rf"^\s*{_ID} -> {_ID}( \[.*\])?;$", e) for e in edges)
    if shutil.which("dot") is None:
        return  # scripts/setup installs graphviz; without it the structure above is what we check
    out = subprocess.run(
        ["dot", "-Tsvg"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "<svg" in out.stdout and not out.stderr.strip(), out.stderr


def test_a_file_is_drawn_without_root(tmp_path: Path) -> None:
    """The CLI draws a scenario file from the cluster model alone (run as an ordinary user)."""
    from netlab.cli.main import main

    out = tmp_path / "out.txt"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["graph", str(ROOT / "scenarios" / "clusterip.yaml"), "-f", "mermaid"]) == 0
    out.write_text(buf.getvalue())
    check_mermaid(out.read_text())
