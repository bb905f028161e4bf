"""``netlab completion bash|zsh``: the shell script that makes TAB complete netlab's commands,
options, lab names and a lab's pods, nodes and Services (:mod:`netlab.cli.completers`)."""

from __future__ import annotations

import argparse

from netlab.cli.args import AddCommand
from netlab.cli.output import Out
from netlab.errors import EXIT_OK

SHELLS = ("bash", "zsh")


def script(shell: str) -> str:
    """The completion script for ``shell``."""
    from argcomplete.shell_integration import shellcode

    return shellcode(["netlab"], shell=shell)


def cmd_completion(args: argparse.Namespace, out: Out) -> int:
    out.stream.write(script(args.shell))
    out.stream.flush()
    return EXIT_OK


def register(add: AddCommand) -> None:
    """This module's subcommands."""
    s = add(
        "completion",
        'print the shell completion script: eval "$(netlab completion bash)" in ~/.bashrc, '
        "or the same with zsh in ~/.zshrc",
    )
    s.add_argument("shell", choices=list(SHELLS), help="the shell to complete in: bash or zsh")
    s.set_defaults(func=cmd_completion)
