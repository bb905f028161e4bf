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
    what = f"{len(specs)} checks" if specs is not None else "checks derived from the manifests"
    out.line(
        f"{args.file}: valid (lab {scenario.lab.name}: {len(scenario.lab.nodes)} nodes, "
        f"{len(state.pods)} pods, {len(state.services)} services, {what})"
    )
    return EXIT_OK


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
    from netlab.api.results import CheckResults

    fmt = machine(args)
    try:
        scenario, lab = _up(args, out)
    except NetlabError as exc:
        if args.junit:
            _junit_error(args, exc)
        raise
    results = CheckResults()
    timings = lab.timings
    try:
        specs = lab.checks(scenario)
        if not fmt:
            kind = "derived " if scenario.lab.checks is None else ""
            out.line(
                f"lab {lab.name} is up in {timings['up']:.2f}s; running {len(specs)} "
                f"{kind}checks ({lab.proxy})"
            )
        t0 = time.perf_counter()
        results = lab.run_checks(
            specs,
            on_result=None if fmt else (lambda r: report.check_line(out, r)),
            pcap_dir=args.pcap,
        )
        timings["checks"] = time.perf_counter() - t0
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
            results,
            suite=lab.name,
            mode=lab.mode,
            properties={"scenario": lab.scenario, "proxy": lab.proxy},
        )
    if fmt:
        out.data(_run_data(scenario, lab, results, timings, kept=args.keep), fmt)
    else:
        report.results(out, results, wide=args.output == "wide")
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
        ("run", "build the lab, run its checks, remove it", cmd_run),
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
