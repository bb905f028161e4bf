"""Loading and validating scenario files, without root and without building anything.

:func:`validate` never raises for a bad file: its :class:`Validation` holds every error as a
:class:`~netlab.errors.Diagnostic` (file, line, column, dotted path, message, hint). :func:`load`
is the same check for code that wants an exception instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from netlab.cluster.state import ClusterState
from netlab.errors import Diagnostic, ScenarioError, UsageError
from netlab.scenario.model import Scenario


@dataclass
class Validation:
    """The verdict on one scenario file: valid or not, with every error and warning."""

    file: str
    valid: bool
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    scenario: Scenario | None = None
    state: ClusterState | None = None  # the cluster the file describes, when valid

    def raise_for_errors(self) -> Scenario:
        """The scenario, or :class:`ScenarioError` with every diagnostic."""
        if not self.valid or self.scenario is None:
            raise ScenarioError(self.errors + self.warnings)
        return self.scenario

    def to_data(self) -> dict[str, Any]:
        """What ``netlab validate --json`` prints."""
        if not self.valid or self.scenario is None or self.state is None:
            return {
                "valid": False,
                "file": self.file,
                "errors": [d.__dict__ for d in self.errors + self.warnings],
            }
        sc = self.scenario
        return {
            "valid": True,
            "file": self.file,
            "lab": sc.lab.name,
            "warnings": [w.__dict__ for w in sc.warnings],
            "objects": {
                "pods": len(sc.pods),
                "deployments": len(sc.deployments),
                "services": len(sc.services),
            },
            "checks": len(sc.lab.checks) if sc.lab.checks is not None else "derived",
        }


def validate(file: str | os.PathLike[str], *, name: str | None = None) -> Validation:
    """Load ``file`` and validate all of it: the documents, the cluster they describe, and every
    check's references against that cluster. ``name`` overrides the lab's name."""
    from netlab.checks.validate import load_and_validate

    path = os.fspath(file)
    try:
        scenario, state = load_and_validate(path, name=name)
    except ScenarioError as exc:
        return Validation(path, False, exc.diagnostics, exc.warnings)
    return Validation(path, True, [], list(scenario.warnings), scenario, state)


def load(file: str | os.PathLike[str], *, name: str | None = None) -> Scenario:
    """The validated scenario; :class:`ScenarioError` (``.diagnostics``) when it is not valid."""
    return validate(file, name=name).raise_for_errors()


def schema() -> dict[str, Any]:
    """The JSON Schema of netlab's Lab document (``docs/lab.schema.json``)."""
    from netlab.scenario.labschema import SCHEMA

    return SCHEMA


def graph(path: str | os.PathLike[str], fmt: str = "mermaid") -> str:
    """A scenario file drawn in ``mermaid`` or ``dot`` (nothing is built; no root needed)."""
    from netlab.checks.validate import load_and_validate
    from netlab.explain.graph import FORMATS, render

    if fmt not in FORMATS:
        raise UsageError(f"unknown graph format {fmt!r}", hint=f"formats: {', '.join(FORMATS)}")
    _, state = load_and_validate(os.fspath(path))
    return render(state, fmt)
