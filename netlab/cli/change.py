"""Commands that change a live lab, as the cluster would change: ready."""

from __future__ import annotations

import argparse

from netlab.cli.args import AddCommand, lab_name
from netlab.cli.output import Out
from netlab.errors import EXIT_OK, UsageError
from netlab.lab import doctor


def cmd_ready(args: argparse.Namespace, out: Out) -> int:
    doctor.require_root("change a lab")
    from netlab.lab.lifecycle import Lab

    lab = Lab.open(args.lab)
    kind, _, ref = args.pod.partition("/")
    if kind != "pod" or not ref:
        raise UsageError(f"expected pod/NAME or pod/NAMESPACE/NAME, got {args.pod!r}")
    pod = lab.pod(ref)
    ready = args.value == "true"
    seconds = lab.set_ready(pod, ready)
    out.line(
        f"pod {pod.key} is {'ready' if ready else 'not ready'}; EndpointSlices, "
        f"{lab.proxier.describe()} rules, DNS and load balancer updated in {seconds:.2f}s"
    )
    return EXIT_OK


def register(add: AddCommand) -> None:
    """This module's subcommands."""
    s = add("ready", "mark a pod of a live lab ready or not, and watch the cluster react")
    s.add_argument("lab", type=lab_name)
    s.add_argument("pod", help="pod/NAME or pod/NAMESPACE/NAME")
    s.add_argument("value", choices=["true", "false"])
    s.set_defaults(func=cmd_ready)
