"""Argument types and the shape every command module registers its subcommands with."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from netlab.scenario.labschema import LAB_NAME_HINT, PROXY_MODES, lab_name_problem

AddCommand = Callable[[str, str], argparse.ArgumentParser]
"""``add(name, help)``: a new subcommand's parser (its help is also its description)."""

TABLE_FORMATS = ("table", "wide", "json", "yaml")
DATA_FORMATS = ("json", "yaml")


def lab_name(value: str) -> str:
    """A LAB argument; refused before it can become a path or a namespace name."""
    problem = lab_name_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{problem} ({LAB_NAME_HINT})")
    return value


def add_lab(p: argparse.ArgumentParser, *, optional: bool = False, help: str = "") -> None:
    """The LAB positional, completed with the names of the labs that are up."""
    from netlab.cli import completers

    action = p.add_argument(
        "lab",
        nargs="?" if optional else None,
        type=lab_name,
        metavar="LAB",
        help=help or "the lab's name (see netlab status)",
    )
    completers.complete_with(action, completers.lab_names)


def add_output(p: argparse.ArgumentParser, formats: Sequence[str] = TABLE_FORMATS) -> None:
    """``-o FORMAT`` as kubectl has it, and ``--json`` as its short form."""
    default = formats[0] if formats[0] in ("table",) else None
    what = "table (default), wide (more columns), json or yaml"
    if tuple(formats) == DATA_FORMATS:
        what = "json or yaml instead of text"
    p.add_argument(
        "-o",
        "--output",
        choices=list(formats),
        default=default,
        metavar="FORMAT",
        help=f"output format: {what}",
    )
    p.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        help="machine-readable output (short for -o json)",
    )


def add_mode(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--mode",
        choices=list(PROXY_MODES),
        help="proxy mode (overrides the scenario's spec.proxy.mode); "
        "ebpf: Cilium's kube-proxy replacement",
    )


def machine(args: argparse.Namespace) -> str | None:
    """``json`` or ``yaml`` when the command was asked for machine-readable output."""
    fmt = getattr(args, "output", None)
    return fmt if fmt in DATA_FORMATS else None
