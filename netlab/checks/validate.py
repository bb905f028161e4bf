"""Whole-scenario validation: the file, then the cluster it describes, then its checks.

The scenario package validates documents on their own; whether a check's ``from: pod/x`` or
``to: service/y:http`` names something real can only be known once the cluster model is built.
Both happen here, before anything is created, so ``validate``, ``run`` and ``up`` refuse the same
inputs with the same diagnostics.
"""

from __future__ import annotations

from pathlib import Path

from netlab.checks.resolve import resolve_all
from netlab.cluster.build import build_cluster
from netlab.cluster.state import ClusterState
from netlab.errors import ScenarioError
from netlab.scenario import Scenario, load_scenario


def validate(scenario: Scenario) -> ClusterState:
    """Build the cluster model (pure) and resolve the scenario's checks against it."""
    state = build_cluster(scenario)
    if scenario.lab.checks is not None:
        _, errors = resolve_all(state, list(scenario.lab.checks))
        if errors:
            raise ScenarioError(errors + scenario.warnings)
    return state


def load_and_validate(
    file: str | Path, *, name: str | None = None
) -> tuple[Scenario, ClusterState]:
    scenario = load_scenario(file, name=name)
    return scenario, validate(scenario)
