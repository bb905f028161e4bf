"""Commands that show how a Service works: trace, explain, conntrack, capture, graph.

The work is done in :mod:`netlab.lab.learn` and :mod:`netlab.lab.trace` (the same operations the
Python API offers) and in the pure :mod:`netlab.explain`; these functions only print: a tree or
table on a terminal, plain text otherwise, JSON on request.
"""

from __future__ import annotations

import argparse

from rich.markup import escape
from rich.tree import Tree

from netlab.cli.args import AddCommand, lab_name
from netlab.cli.output import Out
from netlab.errors import EXIT_OK
from netlab.explain.trace.tree import TreeNode, report_tree
from netlab.lab import doctor
from netlab.serial import to_data


def print_tree(out: Out, root: TreeNode) -> None:
    """A tree on a terminal, indented lines otherwise."""
    if out.console is None:
        for line in root.lines():
            out.line(line)
        return

    def grow(tree: Tree, node: TreeNode) -> None:
        for child in node.children:
            grow(tree.add(escape(child.label)), child)

    top = Tree(f"[bold]{escape(root.label)}[/bold]")
    grow(top, root)
    out.console.print(top)


def cmd_trace(args: argparse.Namespace, out: Out) -> int:
    doctor.require_root("trace a connection in a lab")
    from netlab.lab.lifecycle import Lab

    lab = Lab.open(args.lab)
    report = lab.trace(args.source, args.destination, protocol=args.protocol, timeout=args.timeout)
    if args.json:
        out.json(to_data(report))
    else:
        print_tree(out, report_tree(report))
    return EXIT_OK


def register(add: AddCommand) -> None:
    """This module's subcommands."""
    s = add("trace", "send one connection and show the path the kernel took, rule by rule")
    s.add_argument("lab", type=lab_name)
    s.add_argument("source", metavar="FROM", help="pod/NAME, node/NODE, external[/CLIENT]")
    s.add_argument(
        "destination",
        metavar="TO",
        help="service/[NS/]NAME[:PORT], IP:PORT, node/NODE:PORT, or a mapping such as "
        "'{service: web, via: nodePort, node: node-2}'",
    )
    s.add_argument("--protocol", help="TCP or UDP (default: the Service port's)")
    s.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for an answer")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_trace)
