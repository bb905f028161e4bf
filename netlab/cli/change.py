"""Commands that change a live lab, as the cluster would change: apply, scale, delete, node,
ready. Each asks :class:`netlab.lab.lifecycle.Lab` for the change and prints what the cluster did
and how long every node took to converge."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from netlab.cli import report
from netlab.cli.args import AddCommand, lab_name
from netlab.cli.output import Out
from netlab.errors import EXIT_OK, UsageError
from netlab.lab import doctor


def _open(args: argparse.Namespace) -> Any:
    doctor.require_root("change a lab")
    from netlab.lab.lifecycle import Lab

    return Lab.open(args.lab)


def _finish(args: argparse.Namespace, out: Out, lab: Any, done: Any) -> int:
    if args.json:
        out.json({"lab": lab.name, "proxy": lab.proxier.describe(), **done.to_data()})
    else:
        report.change_pending(out, done)
    return EXIT_OK


def _run(args: argparse.Namespace, out: Out, title: str, act: Callable[[Any, Any], Any]) -> int:
    """Open the lab, say what is asked, make the change (printing each phase as it is
    realized), then what is still pending."""
    lab = _open(args)
    if not args.json:
        out.line(title, style="bold")
    on_phase = None if args.json else (lambda phase: report.change_phase(out, phase, lab))
    done = act(lab, on_phase)
    return _finish(args, out, lab, done)


def _ref(value: str, kinds: tuple[str, ...]) -> tuple[str, str]:
    """``KIND/NAME`` or ``KIND/NAMESPACE/NAME`` -> (kind, NAME or NAMESPACE/NAME)."""
    kind, _, ref = value.partition("/")
    if kind not in kinds or not ref:
        forms = ", ".join(f"{k}/NAME" for k in kinds)
        raise UsageError(f"expected {forms} (or KIND/NAMESPACE/NAME), got {value!r}")
    return kind, ref


def cmd_apply(args: argparse.Namespace, out: Out) -> int:
    from netlab.scenario.manifests import load_manifests

    manifests = load_manifests(args.file, prune=args.prune)  # invalid: exit 2, nothing changed
    return _run(
        args,
        out,
        manifests.describe() + (" (pruning)" if args.prune else ""),
        lambda lab, on_phase: lab.apply(manifests, wait=not args.no_wait, on_phase=on_phase),
    )


def cmd_scale(args: argparse.Namespace, out: Out) -> int:
    _, ref = _ref(args.target, ("deployment",))
    return _run(
        args,
        out,
        f"scale deployment/{ref} to {args.replicas}",
        lambda lab, on_phase: lab.scale(
            ref, args.replicas, wait=not args.no_wait, on_phase=on_phase
        ),
    )


def cmd_delete(args: argparse.Namespace, out: Out) -> int:
    kind, ref = _ref(args.target, ("pod", "service", "deployment"))
    if args.grace is not None and kind != "pod":
        raise UsageError("--grace applies to deleting a pod")
    grace = f" (grace {args.grace}s)" if args.grace is not None else ""
    return _run(
        args,
        out,
        f"delete {kind}/{ref}{grace}",
        lambda lab, on_phase: lab.delete(
            kind, ref, grace=args.grace, wait=not args.no_wait, on_phase=on_phase
        ),
    )


def cmd_node(args: argparse.Namespace, out: Out) -> int:
    return _run(
        args,
        out,
        f"node {args.node} {args.state}",
        lambda lab, on_phase: lab.set_node(
            args.node, args.state == "up", wait=not args.no_wait, on_phase=on_phase
        ),
    )


def cmd_ready(args: argparse.Namespace, out: Out) -> int:
    _, ref = _ref(args.pod, ("pod",))
    ready = args.value == "true"

    def act(lab: Any, on_phase: Any) -> Any:
        from netlab.scenario.changespec import ReadyChange, parse_ref

        ns, name = parse_ref(ref)
        change = ReadyChange(namespace=ns, name=name, ready=ready)
        return lab.change(change, wait=False, on_phase=on_phase)

    return _run(args, out, f"pod/{ref} {'ready' if ready else 'not ready'}", act)


def register(add: AddCommand) -> None:
    """This module's subcommands."""

    def common(s: argparse.ArgumentParser, waits: bool = True) -> None:
        s.add_argument("--json", action="store_true", help="machine-readable output")
        if waits:
            s.add_argument(
                "--no-wait",
                action="store_true",
                help="return once the change itself has converged, without living through "
                "grace periods and the node lifecycle (the next command catches up)",
            )

    s = add("apply", "apply Kubernetes manifests to a live lab, as kubectl apply")
    s.add_argument("lab", type=lab_name)
    s.add_argument("file", help="a YAML file of Kubernetes manifests")
    s.add_argument(
        "--prune",
        action="store_true",
        help="also delete the lab's Services, Deployments and bare Pods the file does not list",
    )
    common(s)
    s.set_defaults(func=cmd_apply)

    s = add("scale", "scale a Deployment of a live lab, as kubectl scale")
    s.add_argument("lab", type=lab_name)
    s.add_argument("target", help="deployment/NAME or deployment/NAMESPACE/NAME")
    s.add_argument("replicas", type=_replicas, help="the number of pods wanted")
    common(s)
    s.set_defaults(func=cmd_scale)

    s = add("delete", "delete a pod, Service or Deployment of a live lab, as kubectl delete")
    s.add_argument("lab", type=lab_name)
    s.add_argument("target", help="pod/NAME, service/NAME or deployment/NAME (or KIND/NS/NAME)")
    s.add_argument(
        "--grace",
        "--grace-period",
        type=_grace,
        metavar="SECONDS",
        help="seconds the pod keeps serving as a terminating endpoint (default: its "
        "terminationGracePeriodSeconds; 0: gone at once)",
    )
    common(s)
    s.set_defaults(func=cmd_delete)

    s = add("node", "take a node of a live lab down (unreachable) or bring it back up")
    s.add_argument("lab", type=lab_name)
    s.add_argument("node", help="the node's name, e.g. node-2")
    s.add_argument("state", choices=["down", "up"])
    common(s)
    s.set_defaults(func=cmd_node)

    s = add("ready", "mark a pod of a live lab ready or not, and watch the cluster react")
    s.add_argument("lab", type=lab_name)
    s.add_argument("pod", help="pod/NAME or pod/NAMESPACE/NAME")
    s.add_argument("value", choices=["true", "false"])
    common(s, waits=False)
    s.set_defaults(func=cmd_ready)


def _replicas(value: str) -> int:
    if not value.isdigit() or int(value) > 1000:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of replicas (0-1000)")
    return int(value)


def _grace(value: str) -> int:
    if not value.isdigit() or int(value) > 3600:
        raise argparse.ArgumentTypeError(f"{value!r} is not a grace period in seconds (0-3600)")
    return int(value)
