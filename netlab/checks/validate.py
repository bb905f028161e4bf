"""Whole-scenario validation: the file, then the cluster it describes, then its checks.

The scenario package validates documents on their own; whether a check's ``from: pod/x`` or
``to: service/y:http`` names something real can only be known once the cluster model is built.
Both happen here, before anything is created, so ``validate``, ``run`` and ``up`` refuse the same
inputs with the same diagnostics.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from netlab.checks.model import ResolveError
from netlab.checks.resolve import located, resolve, resolve_all
from netlab.cluster.build import build_cluster
from netlab.cluster.capacity import ClusterError, Problem
from netlab.cluster.state import ClusterState
from netlab.errors import Diagnostic, ScenarioError
from netlab.scenario import Scenario, load_scenario


def validate(scenario: Scenario) -> ClusterState:
    """Build the cluster model (pure) and resolve the scenario's checks against it: every
    check, and every mode's own expectation of it, with every missing name reported at once."""
    try:
        state = build_cluster(scenario)
    except ClusterError as exc:
        raise ScenarioError(
            [located_problem(scenario, p) for p in exc.problems] + scenario.warnings
        ) from None
    if scenario.lab.checks is not None:
        checks = list(scenario.lab.checks)
        _, errors = resolve_all(state, checks, scenario.lab.proxy.mode)
        for spec in checks:
            for mode in spec.mode_expect:
                try:
                    resolve(state, spec.for_mode(mode), mode)
                except ResolveError as exc:
                    # what the mode's own expectation names; the rest is reported above
                    errors += [
                        located(spec, p, f"modes.{mode}.")
                        for p in exc.errors
                        if p.field_name.startswith("expect")
                    ]
        if errors:
            errors.sort(key=lambda d: (d.file, d.line, d.col))
            raise ScenarioError(errors + scenario.warnings)
    return state


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
