"""Commands that change a live lab, as the cluster would change: ready. Front ends over
:mod:`netlab.api`."""

from __future__ import annotations

import argparse

from netlab.cli import completers
from netlab.cli.args import AddCommand, add_lab
from netlab.cli.output import Out
from netlab.errors import EXIT_OK, UsageError


def cmd_ready(args: argparse.Namespace, out: Out) -> int:
    import netlab

    if not args.pod.startswith("pod/"):
        raise UsageError(f"expected pod/NAME or pod/NAMESPACE/NAME, got {args.pod!r}")
    lab = netlab.attach(args.lab)
    pod = lab.pod(args.pod)
    ready = args.value == "true"
    seconds = lab.ready(args.pod, ready)
    out.line(
        f"pod {pod.key} is {'ready' if ready else 'not ready'}; EndpointSlices, "
        f"{lab.proxy} rules, DNS and load balancer updated in {seconds:.2f}s"
    )
    return EXIT_OK


def register(add: AddCommand) -> None:
    """This module's subcommands."""
    s = add("ready", "mark a pod of a live lab ready or not, and watch the cluster react")
    add_lab(s)
    pod = s.add_argument("pod", help="pod/NAME or pod/NAMESPACE/NAME")
    completers.complete_with(pod, completers.pods)
    s.add_argument("value", choices=["true", "false"], help="true: ready; false: not ready")
    s.set_defaults(func=cmd_ready)
