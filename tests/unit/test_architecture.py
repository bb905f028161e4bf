"""The design's arrows, enforced: which room may import which, and no import cycles.

Rooms, innermost first (see docs/design.md):

- foundation: ``netlab.errors``, ``netlab.serial``: imported by everyone, import nothing of netlab;
- the pure core: ``scenario`` < ``cluster`` < the proxy renderers < ``checks`` (each may import
  the ones before it), plus the pure halves of the workloads (what the agent serves, what cluster
  DNS answers) and ``explain`` (what netlab shows a learner, read from the renderers' structures
  and the kernel tools' text): no kernel, no sockets of their own, unit-tested without root;
- ``kernel``: the only code that changes kernel state; it may read the pure core's data types
  (a topology plan, a conntrack entry), never anything above it;
- the runtime: the proxiers that apply rendered rules, the probes, the workloads, the lab
  lifecycle; they orchestrate everything below;
- the front ends: the command line (and the public API and pytest plugin over the same lab
  lifecycle); nothing below imports them.

Imports are read from the source (function-level ones included: a lazy import is still a
dependency), so the test needs no root and imports nothing it checks.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "netlab"

# (pattern over dotted module names, room); first match wins.
ROOMS: tuple[tuple[str, str], ...] = (
    ("netlab", "package"),
    ("netlab.errors", "foundation"),
    ("netlab.serial", "foundation"),
    ("netlab.scenario", "scenario"),
    ("netlab.scenario.*", "scenario"),
    ("netlab.cluster", "cluster"),
    ("netlab.cluster.*", "cluster"),
    # A mode's package is pure rendering except the proxier that applies it (and IPVS's netlink
    # message packing); the registry picks proxiers.
    ("netlab.proxy.registry", "runtime"),
    ("netlab.proxy.*.proxier", "runtime"),
    ("netlab.proxy.ipvs.wire", "runtime"),
    # ebpf: building the objects with clang, loading and attaching them, reading the live maps.
    ("netlab.proxy.ebpf.objects", "runtime"),
    ("netlab.proxy.ebpf.datapath", "runtime"),
    ("netlab.proxy.ebpf.live", "runtime"),
    ("netlab.proxy", "render"),
    ("netlab.proxy.*", "render"),
    ("netlab.checks", "checks"),
    ("netlab.checks.*", "checks"),
    # What netlab shows a learner (explainers, trace and conntrack parsers, graphs): pure.
    ("netlab.explain", "explain"),
    ("netlab.explain.*", "explain"),
    ("netlab.workloads.spec", "workload-model"),
    ("netlab.workloads.dns.zone", "workload-model"),
    ("netlab.workloads.dns.wire", "workload-model"),
    ("netlab.workloads.echo", "workload-model"),
    ("netlab.kernel", "kernel"),
    ("netlab.kernel.*", "kernel"),
    ("netlab.workloads", "runtime"),
    ("netlab.workloads.*", "runtime"),
    ("netlab.traffic", "runtime"),
    ("netlab.traffic.*", "runtime"),
    ("netlab.lab", "runtime"),
    ("netlab.lab.*", "runtime"),
    ("netlab.cli", "frontend"),
    ("netlab.cli.*", "frontend"),
    ("netlab.api", "frontend"),
    ("netlab.api.*", "frontend"),
    ("netlab.pytest_plugin", "frontend"),
    ("netlab.pytest_plugin.*", "frontend"),
)

PURE = {"scenario", "cluster", "render", "checks", "workload-model", "explain"}
# What each room may import, besides itself and the foundation.
ALLOWED: dict[str, set[str]] = {
    "foundation": set(),
    "scenario": set(),
    "cluster": {"scenario"},
    "render": {"scenario", "cluster"},
    "checks": {"scenario", "cluster", "render"},
    "workload-model": {"scenario", "cluster", "render"},
    "explain": {"scenario", "cluster", "render", "checks"},
    "kernel": PURE,
    "runtime": PURE | {"kernel", "runtime"},
    "frontend": PURE | {"kernel", "runtime", "frontend", "package"},
    # The package's __init__ is the public API: a front end.
    "package": PURE | {"kernel", "runtime", "frontend"},
}


def room(module: str) -> str:
    for pattern, name in ROOMS:
        if fnmatch.fnmatchcase(module, pattern):
            return name
    raise AssertionError(f"{module} belongs to no room: add it to ROOMS (and to docs/design.md)")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """netlab modules ``path`` imports, anywhere in the file, resolved to modules that exist."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c` is module a.b.c when that exists, else a name in a.b.
            subs = [f"{node.module}.{a.name}" for a in node.names]
            names = [s if s in known else node.module for s in subs]
        for name in names:
            if not name.startswith("netlab"):
                continue
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


GRAPH = {m: imports(p, set(modules())) - {m} for m, p in modules().items()}


def test_every_module_has_a_room() -> None:
    for m in GRAPH:
        room(m)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_inward(module: str) -> None:
    mine = room(module)
    wrong = sorted(
        f"{dep} ({room(dep)})"
        for dep in GRAPH[module]
        if room(dep) not in {mine, "foundation"} | ALLOWED[mine]
        and not (mine == room(dep) and mine in ALLOWED[mine] | {mine})
    )
    assert not wrong, f"{module} ({mine}) must not import: {', '.join(wrong)}"


def test_pure_core_never_touches_the_kernel() -> None:
    """The statement of the design that matters most, spelled out on its own."""
    for module, deps in GRAPH.items():
        if room(module) in PURE:
            assert not [d for d in deps if room(d) in {"kernel", "runtime", "frontend"}], module


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components over the module graph: every one is a single
    module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_no_module_is_too_long_to_hold() -> None:
    long = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > 800}
    assert not long, f"modules over 800 lines; split them along what they hold: {long}"


def test_test_tooling_is_not_installed() -> None:
    """The VM that runs the ipvs tests is test tooling, not part of what a user installs."""
    assert not (PACKAGE / "testing").exists()
    assert (ROOT / "tests" / "tooling" / "vm.py").exists()
