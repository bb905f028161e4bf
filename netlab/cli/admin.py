"""Commands about labs and the host: down, cleanup, doctor, schema."""

from __future__ import annotations

import argparse

from netlab.cli.args import AddCommand, lab_name
from netlab.cli.output import Out
from netlab.errors import EXIT_OK, UsageError
from netlab.lab import doctor


def cmd_down(args: argparse.Namespace, out: Out) -> int:
    doctor.require_root("remove a lab")
    from netlab.lab.cleanup import cleanup
    from netlab.lab.lifecycle import Lab

    try:
        lab = Lab.open(args.lab)
    except UsageError:
        leftovers = cleanup(args.lab)
        if leftovers.namespaces or leftovers.processes:
            out.line(
                f"removed leftovers of {args.lab}: {len(leftovers.namespaces)} namespaces, "
                f"{len(leftovers.processes)} processes"
            )
            return EXIT_OK
        raise
    seconds = lab.down()
    out.line(f"lab {lab.name} removed in {seconds:.2f}s")
    return EXIT_OK


def cmd_cleanup(args: argparse.Namespace, out: Out) -> int:
    from netlab.lab.cleanup import cleanup

    doctor.require_root("clean up labs")
    rep = cleanup(args.lab)
    if args.json:
        out.json(rep.__dict__)
    elif not (rep.labs or rep.namespaces or rep.processes):
        out.line("nothing to clean up")
    else:
        out.line(
            f"removed {len(rep.namespaces)} namespaces and {len(rep.processes)} processes "
            f"of {', '.join(rep.labs) or 'unnamed labs'}"
        )
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, out: Out) -> int:
    diag = doctor.diagnose()
    if args.json:
        out.json(
            {"checks": [c.__dict__ for c in diag.checks], "modes": [m.__dict__ for m in diag.modes]}
        )
        return EXIT_OK
    for c in diag.checks:
        mark = "ok  " if c.ok else "MISS"
        out.line(
            f"{mark} {c.name}" + (f"  ({c.detail})" if c.detail else ""),
            style="" if c.ok else "yellow",
        )
        if not c.ok and c.hint:
            out.line(f"       fix: {c.hint}")
    out.line("proxy modes on this host:")
    for m in diag.modes:
        out.line(
            f"  {m.mode:<10} {'can run' if m.ok else 'cannot run'}"
            + (f": {'; '.join(m.reasons)}" if m.reasons else ""),
            style="green" if m.ok else "red",
        )
        if m.hint:
            out.line(f"             {m.hint}")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace, out: Out) -> int:
    from netlab.scenario.labschema import SCHEMA

    out.json(SCHEMA)
    return EXIT_OK


def register(add: AddCommand) -> None:
    """This module's subcommands."""
    s = add("down", "remove a lab")
    s.add_argument("lab", type=lab_name)
    s.set_defaults(func=cmd_down)

    s = add("cleanup", "remove whatever any lab left behind, found by its tags")
    s.add_argument("lab", nargs="?", type=lab_name, help="only this lab")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_cleanup)

    s = add("doctor", "what this host has, and which proxy modes can run here")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_doctor)

    s = add("schema", "print the JSON Schema of netlab's Lab document")
    s.set_defaults(func=cmd_schema)
