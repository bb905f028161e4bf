"""The ``netlab`` command line: a front end over the lab lifecycle."""

from netlab.cli.main import main

__all__ = ["main"]
