"""Commands about labs and the host: down, cleanup, doctor, schema. Front ends over
:mod:`netlab.api`."""

from __future__ import annotations

import argparse

from netlab.cli.args import DATA_FORMATS, AddCommand, add_lab, add_output, machine
from netlab.cli.output import Out
from netlab.errors import EXIT_OK


def cmd_down(args: argparse.Namespace, out: Out) -> int:
    import netlab

    rep = netlab.down(args.lab)
    if rep.leftovers:
        out.line(
            f"removed leftovers of {args.lab}: {len(rep.namespaces)} namespaces, "
            f"{len(rep.processes)} processes"
        )
    else:
        out.line(f"lab {rep.lab} removed in {rep.seconds:.2f}s")
    return EXIT_OK


def cmd_cleanup(args: argparse.Namespace, out: Out) -> int:
    import netlab

    rep = netlab.cleanup(args.lab)
    fmt = machine(args)
    if fmt:
        out.data(rep.__dict__, fmt)
    elif not (rep.labs or rep.namespaces or rep.processes):
        out.line("nothing to clean up")
    else:
        out.line(
            f"removed {len(rep.namespaces)} namespaces and {len(rep.processes)} processes "
            f"of {', '.join(rep.labs) or 'unnamed labs'}"
        )
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, out: Out) -> int:
    import netlab

    diag = netlab.doctor()
    fmt = machine(args)
    if fmt:
        out.data(
            {
                "checks": [c.__dict__ for c in diag.checks],
                "modes": [m.__dict__ for m in diag.modes],
            },
            fmt,
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
    import netlab

    out.json(netlab.schema())
    return EXIT_OK


def register(add: AddCommand) -> None:
    """This module's subcommands."""
    s = add("down", "remove a lab")
    add_lab(s)
    s.set_defaults(func=cmd_down)

    s = add("cleanup", "remove whatever any lab left behind, found by its tags")
    add_lab(s, optional=True, help="only this lab (default: every lab)")
    add_output(s, DATA_FORMATS)
    s.set_defaults(func=cmd_cleanup)

    s = add("doctor", "what this host has, and which proxy modes can run here")
    add_output(s, DATA_FORMATS)
    s.set_defaults(func=cmd_doctor)

    s = add("schema", "print the JSON Schema of netlab's Lab document")
    s.set_defaults(func=cmd_schema)
