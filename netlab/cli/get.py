"""``netlab get pods|svc|endpointslices LAB``: a live lab's objects as ``kubectl get`` prints them.

The columns and their formatting are the API server's table printers
(:mod:`netlab.cluster.printers`); ``-o json|yaml`` prints the objects as a ``v1`` List, as
``kubectl get -o json`` does. A front end over ``Lab.get`` of :mod:`netlab.api`.
"""

from __future__ import annotations

import argparse
import sys

from netlab.cli import completers
from netlab.cli.args import AddCommand, add_lab, add_output, machine
from netlab.cli.output import Out
from netlab.errors import EXIT_OK


def cmd_get(args: argparse.Namespace, out: Out) -> int:
    import netlab

    lab = netlab.attach(args.lab)
    listing = lab.get(args.resource, None if args.all_namespaces else args.namespace)
    fmt = machine(args)
    if fmt:
        out.data(listing.to_data(), fmt)
        return EXIT_OK
    if not listing.items:
        # kubectl says so on stderr, and prints nothing on stdout
        print(listing.empty_message(), file=sys.stderr)
        return EXIT_OK
    wide = args.output == "wide"
    table = listing.table(wide=wide)
    out.table(table.header(wide), table.cells(wide))
    return EXIT_OK


def register(add: AddCommand) -> None:
    """This module's subcommands."""
    s = add("get", "list a live lab's pods, services or endpointslices, as kubectl get does")
    resource = s.add_argument(
        "resource",
        metavar="RESOURCE",
        help="pods (po), services (svc) or endpointslices",
    )
    completers.complete_with(resource, lambda **_: ["pods", "services", "endpointslices"])
    add_lab(s)
    ns = s.add_argument(
        "-n", "--namespace", default="default", help="the namespace to list (default: default)"
    )
    completers.complete_with(ns, completers.namespaces)
    s.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="list every namespace (adds a NAMESPACE column)",
    )
    add_output(s)
    s.set_defaults(func=cmd_get)
