"""Commands that change a live lab, as the cluster would change: apply, scale, delete, node,
ready. Front ends over :mod:`netlab.api`: each prints, phase by phase, what the cluster did and
how long every node took to converge."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netlab.cli import completers, report
from netlab.cli.args import DATA_FORMATS, AddCommand, add_lab, add_output, machine
from netlab.cli.output import Out
from netlab.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from netlab.api.lab import Lab
    from netlab.lab.changes import ChangeReport, OnPhase


def _change(
    args: argparse.Namespace,
    out: Out,
    title: str,
    act: Callable[[Lab, OnPhase | None], ChangeReport],
) -> int:
    """Attach to the lab, say what is asked, make the change (printing each phase as it is
    realized), then what is still pending."""
    import netlab

    lab = netlab.attach(args.lab)
    fmt = machine(args)
    if not fmt:
        out.line(title, style="bold")
    on_phase = (
        None if fmt else (lambda phase: report.change_phase(out, phase, lab.state, lab.proxy))
    )
    done = act(lab, on_phase)
    if fmt:
        data: dict[str, Any] = {"lab": lab.name, "proxy": lab.proxy, **done.to_data()}
        out.data(data, fmt)
    else:
        report.change_pending(out, done)
    return EXIT_OK


def cmd_apply(args: argparse.Namespace, out: Out) -> int:
    from netlab.scenario.manifests import load_manifests

    manifests = load_manifests(args.file, prune=args.prune)  # invalid: exit 2, nothing changed
    title = manifests.describe() + (" (pruning)" if args.prune else "")
    return _change(
        args,
        out,
        title,
        lambda lab, on_phase: lab.apply(manifests, wait=not args.no_wait, on_phase=on_phase),
    )


def cmd_scale(args: argparse.Namespace, out: Out) -> int:
    kind, _, ref = args.target.partition("/")
    if kind != "deployment" or not ref:
        raise UsageError(
            f"expected deployment/NAME or deployment/NAMESPACE/NAME, got {args.target!r}"
        )
    return _change(
        args,
        out,
        f"scale deployment/{ref} to {args.replicas}",
        lambda lab, on_phase: lab.scale(
            ref, args.replicas, wait=not args.no_wait, on_phase=on_phase
        ),
    )


def cmd_delete(args: argparse.Namespace, out: Out) -> int:
    grace = f" (grace {args.grace}s)" if args.grace is not None else ""
    return _change(
        args,
        out,
        f"delete {args.target}{grace}",
        lambda lab, on_phase: lab.delete(
            args.target, grace=args.grace, wait=not args.no_wait, on_phase=on_phase
        ),
    )


def cmd_node(args: argparse.Namespace, out: Out) -> int:
    def act(lab: Lab, on_phase: OnPhase | None) -> ChangeReport:
        if args.state == "up":
            return lab.node_up(args.node, wait=not args.no_wait, on_phase=on_phase)
        return lab.node_down(args.node, wait=not args.no_wait, on_phase=on_phase)

    return _change(args, out, f"node {args.node} {args.state}", act)


def cmd_ready(args: argparse.Namespace, out: Out) -> int:
    if not args.pod.startswith("pod/"):
        raise UsageError(f"expected pod/NAME or pod/NAMESPACE/NAME, got {args.pod!r}")
    ready = args.value == "true"

    def act(lab: Lab, on_phase: OnPhase | None) -> ChangeReport:
        from netlab.scenario.changespec import ReadyChange

        pod = lab.pod(args.pod)
        change = ReadyChange(namespace=pod.namespace, name=pod.name, ready=ready)
        return lab.change(change, wait=False, on_phase=on_phase)

    return _change(args, out, f"{args.pod} {'ready' if ready else 'not ready'}", act)


def register(add: AddCommand) -> None:
    """This module's subcommands."""

    def waits(s: argparse.ArgumentParser) -> None:
        s.add_argument(
            "--no-wait",
            action="store_true",
            help="return once the change itself has converged, without living through grace "
            "periods and the node lifecycle (the next command catches up)",
        )

    s = add("apply", "apply Kubernetes manifests to a live lab, as kubectl apply")
    add_lab(s)
    s.add_argument("file", help="a YAML file of Kubernetes manifests")
    s.add_argument(
        "--prune",
        action="store_true",
        help="also delete the lab's Services, Deployments and bare Pods the file does not list",
    )
    waits(s)
    add_output(s, DATA_FORMATS)
    s.set_defaults(func=cmd_apply)

    s = add("scale", "scale a Deployment of a live lab, as kubectl scale")
    add_lab(s)
    target = s.add_argument("target", help="deployment/NAME or deployment/NAMESPACE/NAME")
    completers.complete_with(target, completers.deployments)
    s.add_argument("replicas", type=_replicas, help="the number of pods wanted (0-1000)")
    waits(s)
    add_output(s, DATA_FORMATS)
    s.set_defaults(func=cmd_scale)

    s = add("delete", "delete a pod, Service or Deployment of a live lab, as kubectl delete")
    add_lab(s)
    target = s.add_argument(
        "target", help="pod/NAME, service/NAME or deployment/NAME (or KIND/NAMESPACE/NAME)"
    )
    completers.complete_with(target, completers.deletables)
    s.add_argument(
        "--grace",
        "--grace-period",
        type=_grace,
        metavar="SECONDS",
        help="seconds a pod keeps serving as a terminating endpoint (default: its "
        "terminationGracePeriodSeconds; 0: gone at once)",
    )
    waits(s)
    add_output(s, DATA_FORMATS)
    s.set_defaults(func=cmd_delete)

    s = add("node", "take a node of a live lab down (unreachable) or bring it back up")
    add_lab(s)
    node = s.add_argument("node", help="the node's name, e.g. node-2")
    completers.complete_with(node, completers.node_names)
    s.add_argument("state", choices=["down", "up"], help="down: cut off; up: back")
    waits(s)
    add_output(s, DATA_FORMATS)
    s.set_defaults(func=cmd_node)

    s = add("ready", "mark a pod of a live lab ready or not, and watch the cluster react")
    add_lab(s)
    pod = s.add_argument("pod", help="pod/NAME or pod/NAMESPACE/NAME")
    completers.complete_with(pod, completers.pods)
    s.add_argument("value", choices=["true", "false"], help="true: ready; false: not ready")
    add_output(s, DATA_FORMATS)
    s.set_defaults(func=cmd_ready)


def _replicas(value: str) -> int:
    if not value.isdigit() or int(value) > 1000:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of replicas (0-1000)")
    return int(value)


def _grace(value: str) -> int:
    if not value.isdigit() or int(value) > 3600:
        raise argparse.ArgumentTypeError(f"{value!r} is not a grace period in seconds (0-3600)")
    return int(value)
