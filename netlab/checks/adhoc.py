"""One check written on the spot (``lab.connect("pod/x", "service/web:http")``), parsed exactly as
a scenario's ``spec.checks`` entry is: the same FROM/TO syntax, schema and errors.

It is wrapped in a Lab document and handed to the scenario parser, so an ad-hoc check can never
accept what a scenario refuses, or mean something else; errors come back as diagnostics whose
path is the check's own field (``to``, ``expect.endpoints``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from netlab.errors import Diagnostic, ScenarioError
from netlab.scenario.checkspec import CheckSpec
from netlab.scenario.labschema import LAB_API_VERSION, LAB_KIND
from netlab.scenario.labspec import parse_lab
from netlab.scenario.yamlpos import Document

_PREFIX = "spec.checks[0]"


def connect_data(
    source: str,
    destination: str | dict[str, Any],
    *,
    expect: dict[str, Any] | None = None,
    protocol: str | None = None,
    connections: int | None = None,
    timeout: float | None = None,
    name: str = "connect",
    kind: str = "connect",
) -> dict[str, Any]:
    """A check entry as a scenario would write it."""
    data: dict[str, Any] = {"name": name, "from": source, "to": destination}
    if kind != "connect":
        data["kind"] = kind
    optional = {
        "expect": expect,
        "protocol": protocol,
        "connections": connections,
        "timeout": timeout,
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    return data


def parse_adhoc(data: dict[str, Any], *, where: str = "check") -> CheckSpec:
    """Parse one check entry; raise :class:`ScenarioError` listing every problem in it."""
    document = {
        "apiVersion": LAB_API_VERSION,
        "kind": LAB_KIND,
        "metadata": {"name": "adhoc"},
        "spec": {"checks": [data]},
    }
    out: list[Diagnostic] = []
    lab = parse_lab(Document(file="", index=0, data=document, line=0), "adhoc", out)
    if out or lab is None or not lab.checks:
        raise relocate(ScenarioError(out or [Diagnostic("invalid check")]), where)
    return lab.checks[0]


def relocate(error: ScenarioError, where: str) -> ScenarioError:
    """The same errors, about the ad-hoc check's own fields (resolving it reports them at
    ``spec.checks[0]`` too, where the wrapping document put it)."""
    return ScenarioError([_relocate(d, where) for d in error.diagnostics + error.warnings])


def _relocate(d: Diagnostic, where: str) -> Diagnostic:
    """A diagnostic about ``spec.checks[0].to`` becomes one about ``to`` of this check."""
    path = d.path
    if path == _PREFIX:
        path = ""
    elif path.startswith(_PREFIX + "."):
        path = path[len(_PREFIX) + 1 :]
    return replace(d, path=path, category=where, line=0, col=0)
