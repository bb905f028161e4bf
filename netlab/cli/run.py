"""Commands that take a scenario through the lab: validate, run, up, check."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from netlab.cli import report
from netlab.cli.args import AddCommand, lab_name
from netlab.cli.inspect import print_status, status_data
from netlab.cli.output import Out
from netlab.errors import EXIT_CHECK_FAILED, EXIT_OK
from netlab.lab import doctor
from netlab.scenario.labschema import PROXY_MODES


def _load(args: argparse.Namespace) -> Any:
    """Load and fully validate (checks included) before anything is built."""
    from netlab.checks.validate import load_and_validate

    return load_and_validate(args.file, name=getattr(args, "name", None))


def cmd_validate(args: argparse.Namespace, out: Out) -> int:
    scenario, state = _load(args)
    specs = list(scenario.lab.checks) if scenario.lab.checks is not None else None
    if args.json:
        out.json(
            {
                "valid": True,
                "file": args.file,
                "lab": scenario.lab.name,
                "warnings": [w.__dict__ for w in scenario.warnings],
                "objects": {
                    "pods": len(scenario.pods),
                    "deployments": len(scenario.deployments),
                    "services": len(scenario.services),
                },
                "checks": len(specs) if specs is not None else "derived",
            }
        )
        return EXIT_OK
    report.diagnostics(out, scenario.warnings)
    what = f"{len(specs)} checks" if specs is not None else "checks derived from the manifests"
    out.line(
        f"{args.file}: valid (lab {scenario.lab.name}: {len(scenario.lab.nodes)} nodes, "
        f"{len(state.pods)} pods, {len(state.services)} services, {what})"
    )
    return EXIT_OK


def _up(args: argparse.Namespace, out: Out) -> tuple[Any, Any]:
    from netlab.lab.lifecycle import Lab

    scenario, _ = _load(args)
    if not args.json:
        report.diagnostics(out, scenario.warnings)
        if scenario.header:
            out.line(scenario.header.splitlines()[0], style="bold")
    say = (lambda msg: None) if args.json else (lambda msg: out.line(f"  {msg}", style="dim"))
    lab = Lab.up(scenario, mode=args.mode, progress=say)
    return scenario, lab


def cmd_run(args: argparse.Namespace, out: Out) -> int:
    from netlab.checks import CheckResult

    scenario, lab = _up(args, out)
    results: list[CheckResult] = []
    timings = dict(lab.record.timings)
    try:
        specs = lab.checks(scenario.lab.checks)
        if not args.json:
            kind = "derived " if scenario.lab.checks is None else ""
            out.line(
                f"lab {lab.name} is up in {timings['up']:.2f}s; running {len(specs)} "
                f"{kind}checks ({lab.proxier.describe()})"
            )
        t0 = time.perf_counter()
        results = lab.run_checks(
            specs, on_result=None if args.json else (lambda r: report.check_line(out, r))
        )
        timings["checks"] = time.perf_counter() - t0
    finally:
        if not args.keep or sys.exc_info()[0] is not None:
            timings["down"] = lab.down()
    passed = all(r.passed for r in results)
    if args.json:
        out.json(_run_json(scenario, lab, results, timings, kept=args.keep))
    else:
        report.results_table(out, results)
        report.summary(out, results)
        if args.keep:
            out.line(
                f"lab {lab.name} kept; try: netlab status {lab.name}; "
                f"netlab down {lab.name} when done"
            )
    return EXIT_OK if passed else EXIT_CHECK_FAILED


def _run_json(
    scenario: Any, lab: Any, results: list[Any], timings: dict[str, float], kept: bool
) -> dict[str, Any]:
    return {
        "lab": lab.name,
        "scenario": scenario.file,
        "mode": lab.record.mode,
        "proxy": lab.proxier.describe(),
        "passed": all(r.passed for r in results),
        "derived_checks": scenario.lab.checks is None,
        "summary": _summary(results),
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "kept": kept,
        "warnings": [w.__dict__ for w in scenario.warnings],
        "checks": [report.result_data(r) for r in results],
    }


def _summary(results: list[Any]) -> dict[str, int]:
    return {
        "checks": len(results),
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
    }


def cmd_up(args: argparse.Namespace, out: Out) -> int:
    _, lab = _up(args, out)
    if args.json:
        out.json(status_data(lab))
    else:
        out.line(
            f"lab {lab.name} is up in {lab.record.timings['up']:.2f}s ({lab.proxier.describe()})"
        )
        print_status(out, lab)
    return EXIT_OK


def cmd_check(args: argparse.Namespace, out: Out) -> int:
    doctor.require_root("run checks in a lab")
    from netlab.checks.validate import load_and_validate
    from netlab.lab.lifecycle import Lab

    lab = Lab.open(args.lab)
    file = args.file or lab.record.scenario
    specs = lab.checks(load_and_validate(file, name=lab.name)[0].lab.checks)
    results = lab.run_checks(
        specs, on_result=None if args.json else (lambda r: report.check_line(out, r))
    )
    if args.json:
        out.json(
            {
                "lab": lab.name,
                "passed": all(r.passed for r in results),
                "summary": _summary(results),
                "checks": [report.result_data(r) for r in results],
            }
        )
    else:
        report.summary(out, results)
    return EXIT_OK if all(r.passed for r in results) else EXIT_CHECK_FAILED


def register(add: AddCommand) -> None:
    """This module's subcommands."""
    s = add("validate", "check a scenario file without building anything (no root needed)")
    s.add_argument("file")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_validate)

    for name, help_text, func in (
        ("run", "build the lab, run its checks, remove it", cmd_run),
        ("up", "build the lab and leave it up", cmd_up),
    ):
        s = add(name, help_text)
        s.add_argument("file")
        s.add_argument(
            "--mode",
            choices=list(PROXY_MODES),
            help="proxy mode (overrides the scenario's); ebpf: Cilium's kube-proxy replacement",
        )
        s.add_argument("--name", help="lab name (default: the Lab document's, else the file's)")
        s.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "run":
            s.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
        s.set_defaults(func=func)

    s = add("check", "run a live lab's checks again")
    s.add_argument("lab", type=lab_name)
    s.add_argument("file", nargs="?", help="scenario to take the checks from (default: the lab's)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_check)
