"""Whole-scenario validation: the file, then the cluster it describes, then its checks, then its
timeline.

The scenario package validates documents on their own; whether a check's ``from: pod/x`` or
``to: service/y:http`` names something real can only be known once the cluster model is built,
and whether a step's ``scale: {deployment: web}`` or its checks name something real only once the
timeline has been played up to that step. All of it happens here, on the desired state alone
(the controllers run, time is simulated), before anything is created, so ``validate``, ``run``
and ``up`` refuse the same inputs with the same diagnostics.
"""

from __future__ import annotations

import copy
from pathlib import Path

from netlab.checks.resolve import resolve_all
from netlab.cluster import changes
from netlab.cluster.build import build_cluster
from netlab.cluster.state import ClusterState
from netlab.errors import Diagnostic, ScenarioError
from netlab.scenario import Scenario, load_scenario
from netlab.scenario.changespec import WaitChange
from netlab.scenario.stepspec import StepSpec

# The simulated clock starts here: any positive time will do (0 means "never" in the state).
SIMULATED_START = 1_000_000.0


def validate(scenario: Scenario) -> ClusterState:
    """Build the cluster model (pure), resolve the scenario's checks against it, and play its
    steps on a copy, resolving each step's checks against the state at that step."""
    state = build_cluster(scenario)
    errors: list[Diagnostic] = []
    if scenario.lab.checks is not None:
        _, errors = resolve_all(state, list(scenario.lab.checks))
    if scenario.lab.steps:
        errors += play(copy.deepcopy(state), scenario.lab.steps)
    if errors:
        raise ScenarioError(errors + scenario.warnings)
    return state


def play(state: ClusterState, steps: tuple[StepSpec, ...]) -> list[Diagnostic]:
    """Play the timeline on ``state`` with simulated time; every problem found, located. A
    change that is refused stops the play (what follows it would be guesswork)."""
    now = SIMULATED_START
    errors: list[Diagnostic] = []
    for step in steps:
        change = step.change
        try:
            if isinstance(change, WaitChange):
                now = advance(state, now, now + change.seconds)
            elif change is not None:
                changes.apply_change(state, change, now)
                changes.settle(state, now)
        except changes.ChangeRefused as exc:
            o = exc.origin or (change.origin if change is not None else None) or step.origin
            errors.append(
                Diagnostic(
                    message=str(exc),
                    file=o.file if o else "",
                    line=o.line if o else 0,
                    col=o.col if o else 0,
                    path=o.path if o else "",
                    hint=exc.hint,
                    category=f"step {step.name}",
                )
            )
            return errors
        _, found = resolve_all(state, list(step.checks))
        errors += found
    return errors


def advance(state: ClusterState, now: float, until: float) -> float:
    """Let simulated time run to ``until``, each due transition happening at its time."""
    while (due := changes.next_due(state)) is not None and due <= until:
        now = max(now, due)
        changes.settle(state, now)
    return until


def load_and_validate(
    file: str | Path, *, name: str | None = None
) -> tuple[Scenario, ClusterState]:
    scenario = load_scenario(file, name=name)
    return scenario, validate(scenario)
