"""A scenario's timeline on a live lab: its checks, then each step's change and the checks that
must hold after it.

A step's change is made without waiting for what it sets in motion (a deleted pod stays
terminating, a silent node stays Ready for its grace period), so the step's checks see the
cluster as it is right after the change; a ``wait`` step lets time pass, and whatever falls due
meanwhile happens when it is due. Connections held by a check stay open for later steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from netlab.checks import CheckResult
from netlab.lab.changes import ChangeReport, OnPhase
from netlab.lab.lifecycle import Lab
from netlab.scenario.model import Scenario
from netlab.scenario.stepspec import StepSpec


@dataclass
class StepResult:
    name: str
    change: str  # what the step changed, in words ("" for none)
    results: list[CheckResult] = field(default_factory=list)
    report: ChangeReport | None = None
    description: str = ""

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def to_data(self, result_data: Callable[[CheckResult], dict[str, Any]]) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "change": self.change,
            "report": self.report.to_data() if self.report else None,
            "passed": self.passed,
            "checks": [result_data(r) for r in self.results],
        }


def run_steps(
    lab: Lab,
    steps: tuple[StepSpec, ...],
    *,
    on_step: Callable[[StepSpec], None] | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
    on_phase: OnPhase | None = None,
    pcap_dir: str | None = None,
) -> list[StepResult]:
    """Every step in order: its change (if any), then its checks (with ``pcap_dir``, failed
    connect checks keep pcaps of both ends there, as :meth:`Lab.run_checks`)."""
    out: list[StepResult] = []
    for step in steps:
        if on_step:
            on_step(step)
        report = (
            lab.change(step.change, wait=False, on_phase=on_phase)
            if step.change is not None
            else lab.catch_up(on_phase=on_phase)
        )
        result = StepResult(
            name=step.name,
            change=step.change.describe() if step.change is not None else "",
            report=report if step.change is not None else None,
            description=step.description,
        )
        result.results = lab.run_checks(list(step.checks), on_result=on_result, pcap_dir=pcap_dir)
        out.append(result)
    return out


def run_scenario(lab: Lab, scenario: Scenario) -> tuple[list[CheckResult], list[StepResult]]:
    """The scenario's checks (derived ones if it wrote none), then its timeline."""
    results = lab.run_checks(lab.checks(scenario.lab.checks))
    return results, run_steps(lab, scenario.lab.steps)
