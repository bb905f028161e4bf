"""Commands that take a scenario through the lab: validate, run, up, check.

Every one is a thin front end over the public API (:mod:`netlab.api`): it parses, calls, and
prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netlab.cli import report
from netlab.cli.args import DATA_FORMATS, AddCommand, add_lab, add_mode, add_output, machine
from netlab.cli.output import Out
from netlab.errors import EXIT_CHECK_FAILED, EXIT_OK, NetlabError

if TYPE_CHECKING:
    from netlab.api.lab import Lab
    from netlab.api.results import CheckResults
    from netlab.scenario.model import Scenario


def cmd_validate(args: argparse.Namespace, out: Out) -> int:
    import netlab

    validation = netlab.validate(args.file)
    scenario = validation.raise_for_errors()
    fmt = machine(args)
    if fmt:
        out.data(validation.to_data(), fmt)
        return EXIT_OK
    state = validation.state
    assert state is not None
    report.diagnostics(out, scenario.warnings)
    specs = scenario.lab.checks
    what = _count(len(specs), "check") if specs is not None else "checks derived from the manifests"
    if scenario.lab.steps:
        what += f", {_count(len(scenario.lab.steps), 'step')}"
    out.line(
        f"{args.file}: valid (lab {scenario.lab.name}: {len(scenario.lab.nodes)} nodes, "
        f"{len(state.pods)} pods, {len(state.services)} services, {what})"
    )
    return EXIT_OK


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _up(args: argparse.Namespace, out: Out) -> tuple[Scenario, Lab]:
    import netlab

    scenario = netlab.load(args.file, name=args.name)
    quiet = machine(args) is not None
    if not quiet:
        report.diagnostics(out, scenario.warnings)
        if scenario.header:
            out.line(scenario.header.splitlines()[0], style="bold")
    say = (lambda msg: None) if quiet else (lambda msg: out.line(f"  {msg}", style="dim"))
    return scenario, netlab.up(scenario, mode=args.mode, progress=say)


def cmd_run(args: argparse.Namespace, out: Out) -> int:
    from netlab.api.results import CheckResults, result_data
    from netlab.lab.timeline import StepResult

    fmt = machine(args)
    try:
        scenario, lab = _up(args, out)
    except NetlabError as exc:
        if args.junit:
            _junit_error(args, exc)
        raise
    results = checked = CheckResults()
    steps: list[StepResult] = []
    timings = lab.timings
    on_result = None if fmt else (lambda r: report.check_line(out, r))
    try:
        specs = lab.checks(scenario)
        if not fmt:
            kind = "derived " if scenario.lab.checks is None else ""
            steps_said = _count(len(scenario.lab.steps), "step")
            more = f", then {steps_said}" if scenario.lab.steps else ""
            out.line(
                f"lab {lab.name} is up in {timings['up']:.2f}s; running "
                f"{_count(len(specs), kind + 'check')}{more} ({lab.proxy})"
            )
        t0 = time.perf_counter()
        checked = lab.run_checks(specs, on_result=on_result, pcap_dir=args.pcap)
        results = checked
        timings["checks"] = time.perf_counter() - t0
        if scenario.lab.steps:
            t1 = time.perf_counter()
            steps = lab.run_steps(
                scenario,
                on_step=None if fmt else (lambda step: report.step_title(out, step)),
                on_result=on_result,
                on_phase=None
                if fmt
                else (lambda phase: report.change_phase(out, phase, lab.state, lab.proxy)),
                pcap_dir=args.pcap,
            )
            timings["steps"] = time.perf_counter() - t1
            # Every check counts, the steps' included.
            results = CheckResults([*checked, *(r for step in steps for r in step.results)])
    except NetlabError as exc:
        if args.junit:
            _junit_error(args, exc, lab)
        raise
    finally:
        if not args.keep or sys.exc_info()[0] is not None:
            timings["down"] = lab.down()
    if args.junit:
        from netlab.api.junit import write_junit

        write_junit(
            args.junit,
            checked,
            suite=lab.name,
            mode=lab.mode,
            properties={"scenario": lab.scenario, "proxy": lab.proxy},
            steps=steps,
        )
    if fmt:
        data = _run_data(scenario, lab, results, timings, kept=args.keep)
        if scenario.lab.steps:
            data["checks"] = checked.to_data()
            data["steps"] = [step.to_data(result_data) for step in steps]
        out.data(data, fmt)
    else:
        report.results(
            out,
            results,
            wide=args.output == "wide",
            steps=[(step.name, step.results) for step in steps],
        )
        if args.keep:
            out.line(
                f"lab {lab.name} kept; try: netlab status {lab.name}; "
                f"netlab down {lab.name} when done"
            )
    return EXIT_OK if results.passed else EXIT_CHECK_FAILED


def _junit_error(args: argparse.Namespace, exc: NetlabError, lab: Lab | None = None) -> None:
    """A run that produced no results still leaves a report CI can show."""
    from netlab.api.junit import write_junit

    name = lab.name if lab is not None else (args.name or Path(args.file).stem)
    write_junit(
        args.junit,
        [],
        suite=name,
        mode=lab.mode if lab is not None else (args.mode or ""),
        properties={"scenario": args.file},
        error=exc,
    )


def _run_data(
    scenario: Scenario,
    lab: Lab,
    results: CheckResults,
    timings: dict[str, float],
    kept: bool,
) -> dict[str, Any]:
    return {
        "lab": lab.name,
        "scenario": scenario.file,
        "mode": lab.mode,
        "proxy": lab.proxy,
        "passed": results.passed,
        "derived_checks": scenario.lab.checks is None,
        "summary": results.summary(),
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "kept": kept,
        "warnings": [w.__dict__ for w in scenario.warnings],
        "checks": results.to_data(),
    }


def cmd_up(args: argparse.Namespace, out: Out) -> int:
    from netlab.cli.inspect import print_status

    _, lab = _up(args, out)
    fmt = machine(args)
    if fmt:
        out.data(lab.status().to_data(), fmt)
    else:
        out.line(f"lab {lab.name} is up in {lab.timings['up']:.2f}s ({lab.proxy})")
        print_status(out, lab.status(), wide=False)
    return EXIT_OK


def cmd_check(args: argparse.Namespace, out: Out) -> int:
    import netlab

    lab = netlab.attach(args.lab)
    fmt = machine(args)
    results = lab.check(args.file, on_result=None if fmt else (lambda r: report.check_line(out, r)))
    if fmt:
        out.data(
            {
                "lab": lab.name,
                "passed": results.passed,
                "summary": results.summary(),
                "checks": results.to_data(),
            },
            fmt,
        )
    else:
        report.results(out, results, wide=args.output == "wide")
    return EXIT_OK if results.passed else EXIT_CHECK_FAILED


def register(add: AddCommand) -> None:
    """This module's subcommands."""
    s = add("validate", "check a scenario file without building anything (no root needed)")
    s.add_argument("file", help="the scenario file (YAML, one or more documents)")
    add_output(s, DATA_FORMATS)
    s.set_defaults(func=cmd_validate)

    for name, help_text, func in (
        ("run", "build the lab, run its checks and its timeline, remove it", cmd_run),
        ("up", "build the lab and leave it up", cmd_up),
    ):
        s = add(name, help_text)
        s.add_argument("file", help="the scenario file")
        add_mode(s)
        s.add_argument("--name", help="lab name (default: the Lab document's, else the file's)")
        if name == "run":
            add_output(s)
            s.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
            s.add_argument(
                "--junit",
                metavar="FILE",
                help="also write the results as JUnit XML to FILE (one test case per check)",
            )
            s.add_argument(
                "--pcap",
                metavar="DIR",
                help="record every connect check at both ends (client and backends) and keep "
                "the pcaps of those that fail in DIR/<check>/",
            )
        else:
            add_output(s, DATA_FORMATS)
        s.set_defaults(func=func)

    s = add("check", "run a live lab's checks again")
    add_lab(s)
    s.add_argument("file", nargs="?", help="scenario to take the checks from (default: the lab's)")
    add_output(s)
    s.set_defaults(func=cmd_check)
