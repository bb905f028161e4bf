"""Argument types and the shape every command module registers its subcommands with."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from netlab.scenario.labschema import LAB_NAME_HINT, lab_name_problem

AddCommand = Callable[[str, str], argparse.ArgumentParser]
"""``add(name, help)``: a new subcommand's parser (its help is also its description)."""


def lab_name(value: str) -> str:
    """A LAB argument; refused before it can become a path or a namespace name."""
    problem = lab_name_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{problem} ({LAB_NAME_HINT})")
    return value
