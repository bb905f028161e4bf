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
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from netlab.checks.model import ResolveError
from netlab.checks.resolve import located, resolve, resolve_all
from netlab.cluster import changes
from netlab.cluster.build import build_cluster
from netlab.cluster.capacity import ClusterError, Problem
from netlab.cluster.state import ClusterState
from netlab.errors import Diagnostic, ScenarioError
from netlab.scenario import Scenario, load_scenario
from netlab.scenario.changespec import WaitChange
from netlab.scenario.checkspec import CheckSpec
from netlab.scenario.stepspec import StepSpec

# The simulated clock starts here: any positive time will do (0 means "never" in the state).
SIMULATED_START = 1_000_000.0


def validate(scenario: Scenario) -> ClusterState:
    """Build the cluster model (pure), resolve the scenario's checks against it (every check,
    and every mode's own expectation of it, with every missing name reported at once), and play
    its steps on a copy, resolving each step's checks against the state at that step."""
    try:
        state = build_cluster(scenario)
    except ClusterError as exc:
        raise ScenarioError(
            [located_problem(scenario, p) for p in exc.problems] + scenario.warnings
        ) from None
    mode = scenario.lab.proxy.mode
    errors: list[Diagnostic] = []
    if scenario.lab.checks is not None:
        errors = resolve_checks(state, list(scenario.lab.checks), mode)
    if scenario.lab.steps:
        errors += play(copy.deepcopy(state), scenario.lab.steps, mode)
    if errors:
        raise ScenarioError(errors + scenario.warnings)
    return state


def resolve_checks(state: ClusterState, checks: list[CheckSpec], mode: str) -> list[Diagnostic]:
    """Every check resolved against ``state``, and each mode's own expectation of it; every
    problem located, in file order."""
    _, errors = resolve_all(state, checks, mode)
    for spec in checks:
        for other in spec.mode_expect:
            try:
                resolve(state, spec.for_mode(other), other)
            except ResolveError as exc:
                # what the mode's own expectation names; the rest is reported above
                errors += [
                    located(spec, p, f"modes.{other}.")
                    for p in exc.errors
                    if p.field_name.startswith("expect")
                ]
    errors.sort(key=lambda d: (d.file, d.line, d.col))
    return errors


def play(state: ClusterState, steps: tuple[StepSpec, ...], mode: str) -> list[Diagnostic]:
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
        errors += resolve_checks(state, list(step.checks), mode)
    return errors


def advance(state: ClusterState, now: float, until: float) -> float:
    """Let simulated time run to ``until``, each due transition happening at its time."""
    while (due := changes.next_due(state)) is not None and due <= until:
        now = max(now, due)
        changes.settle(state, now)
    return until


def located_problem(scenario: Scenario, problem: Problem) -> Diagnostic:
    """A problem of the cluster (no address left, no free port) at its object's field."""
    doc = scenario.origins.get((problem.kind, problem.namespace, problem.name))
    if problem.kind == "Lab":
        doc = scenario.origins.get(("Lab", "", ""))
    if doc is None:  # the Lab's defaults, or an object netlab adds itself
        return Diagnostic(
            message=problem.message,
            file=scenario.file,
            line=1,
            col=1,
            path=problem.shown or ".".join(str(p) for p in problem.path),
            hint=problem.hint,
            category=problem.category,
        )
    diag = doc.diag(problem.path, problem.message, hint=problem.hint, category=problem.category)
    return replace(diag, path=problem.shown) if problem.shown else diag


def load_and_validate(
    file: str | Path, *, name: str | None = None
) -> tuple[Scenario, ClusterState]:
    with collector_paused():
        scenario = load_scenario(file, name=name)
        return scenario, validate(scenario)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a file is turned into its model.

    Reading a file allocates hundreds of thousands of small dicts, lists and tuples that all
    live on (the documents, their positions, the objects): the collector, run every 700 of
    them, finds nothing to free and costs a tenth of the time on a file of 5,000 Services.
    Nothing built here holds a cycle; reference counting frees what is dropped.

    At the end, what was allocated meanwhile is moved to the oldest generation (``freeze`` then
    ``unfreeze``), where a collection would have put what survives; resuming otherwise starts
    with a collection that scans all of it once more, for another 7 %. Cyclic garbage, if any,
    is still found by the next full collection.
    """
    enabled = gc.isenabled()
    # a process that froze objects of its own (before forking) keeps them frozen
    promote = gc.get_freeze_count() == 0
    gc.disable()
    try:
        yield
    finally:
        if promote:
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()
