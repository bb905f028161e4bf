"""The ``netlab`` command line.

Exit statuses: 0 all checks passed, 1 a check failed, 2 invalid input (the scenario or the
command line), 3 a missing prerequisite (root, a tool, a kernel feature), 4 the lab itself could
not be built or removed. Errors are reported without tracebacks.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from netlab import __version__, doctor, report
from netlab.errors import (
    EXIT_CHECK_FAILED,
    EXIT_LAB,
    EXIT_OK,
    NetlabError,
    PrerequisiteError,
    ScenarioError,
    UsageError,
)
from netlab.report import Out
from netlab.scenario.labschema import LAB_NAME_HINT, lab_name_problem


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _load(args: argparse.Namespace) -> Any:
    """Load and fully validate (checks included) before anything is built."""
    from netlab.validation import load_and_validate

    return load_and_validate(args.file, name=getattr(args, "name", None))


def cmd_validate(args: argparse.Namespace, out: Out) -> int:
    scenario, state = _load(args)
    specs = list(scenario.lab.checks) if scenario.lab.checks is not None else None
    if args.json:
        out.json(
            {
                "valid": True,
                "file": args.file,
                "lab": scenario.lab.name,
                "warnings": [w.__dict__ for w in scenario.warnings],
                "objects": {
                    "pods": len(scenario.pods),
                    "deployments": len(scenario.deployments),
                    "services": len(scenario.services),
                },
                "checks": len(specs) if specs is not None else "derived",
            }
        )
        return EXIT_OK
    report.diagnostics(out, scenario.warnings)
    what = f"{len(specs)} checks" if specs is not None else "checks derived from the manifests"
    out.line(
        f"{args.file}: valid (lab {scenario.lab.name}: {len(scenario.lab.nodes)} nodes, "
        f"{len(state.pods)} pods, {len(state.services)} services, {what})"
    )
    return EXIT_OK


def _up(args: argparse.Namespace, out: Out) -> tuple[Any, Any]:
    from netlab.lab import Lab

    scenario, _ = _load(args)
    if not args.json:
        report.diagnostics(out, scenario.warnings)
        if scenario.header:
            out.line(scenario.header.splitlines()[0], style="bold")
    say = (lambda msg: None) if args.json else (lambda msg: out.line(f"  {msg}", style="dim"))
    lab = Lab.up(scenario, mode=args.mode, progress=say)
    return scenario, lab


def cmd_run(args: argparse.Namespace, out: Out) -> int:
    from netlab.checks import CheckResult

    scenario, lab = _up(args, out)
    results: list[CheckResult] = []
    timings = dict(lab.record.timings)
    try:
        specs = lab.checks(scenario.lab.checks)
        if not args.json:
            kind = "derived " if scenario.lab.checks is None else ""
            out.line(
                f"lab {lab.name} is up in {timings['up']:.2f}s; running {len(specs)} "
                f"{kind}checks ({lab.proxier.describe()})"
            )
        t0 = time.perf_counter()
        results = lab.run_checks(
            specs, on_result=None if args.json else (lambda r: report.check_line(out, r))
        )
        timings["checks"] = time.perf_counter() - t0
    finally:
        if not args.keep or sys.exc_info()[0] is not None:
            timings["down"] = lab.down()
    passed = all(r.passed for r in results)
    if args.json:
        out.json(_run_json(scenario, lab, results, timings, kept=args.keep))
    else:
        report.results_table(out, results)
        report.summary(out, results)
        if args.keep:
            out.line(
                f"lab {lab.name} kept; try: netlab status {lab.name}; "
                f"netlab down {lab.name} when done"
            )
    return EXIT_OK if passed else EXIT_CHECK_FAILED


def _run_json(
    scenario: Any, lab: Any, results: list[Any], timings: dict[str, float], kept: bool
) -> dict[str, Any]:
    return {
        "lab": lab.name,
        "scenario": scenario.file,
        "mode": lab.record.mode,
        "proxy": lab.proxier.describe(),
        "passed": all(r.passed for r in results),
        "derived_checks": scenario.lab.checks is None,
        "summary": _summary(results),
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "kept": kept,
        "warnings": [w.__dict__ for w in scenario.warnings],
        "checks": [report.result_data(r) for r in results],
    }


def _summary(results: list[Any]) -> dict[str, int]:
    return {
        "checks": len(results),
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
    }


def cmd_up(args: argparse.Namespace, out: Out) -> int:
    _, lab = _up(args, out)
    if args.json:
        out.json(_status_data(lab))
    else:
        out.line(
            f"lab {lab.name} is up in {lab.record.timings['up']:.2f}s ({lab.proxier.describe()})"
        )
        _print_status(out, lab)
    return EXIT_OK


def cmd_check(args: argparse.Namespace, out: Out) -> int:
    doctor.require_root("run checks in a lab")
    from netlab.lab import Lab
    from netlab.validation import load_and_validate

    lab = Lab.open(args.lab)
    file = args.file or lab.record.scenario
    specs = lab.checks(load_and_validate(file, name=lab.name)[0].lab.checks)
    results = lab.run_checks(
        specs, on_result=None if args.json else (lambda r: report.check_line(out, r))
    )
    if args.json:
        out.json(
            {
                "lab": lab.name,
                "passed": all(r.passed for r in results),
                "summary": _summary(results),
                "checks": [report.result_data(r) for r in results],
            }
        )
    else:
        report.summary(out, results)
    return EXIT_OK if all(r.passed for r in results) else EXIT_CHECK_FAILED


def _status_data(lab: Any) -> dict[str, Any]:
    st = lab.state
    return {
        "lab": lab.name,
        "status": lab.record.status,
        "scenario": lab.record.scenario,
        "mode": lab.record.mode,
        "proxy": lab.proxier.describe(),
        "nodes": [
            {"name": n.name, "ip": n.ip, "podCIDR": n.pod_cidr, "netns": n.netns} for n in st.nodes
        ],
        "pods": [
            {
                "namespace": p.namespace,
                "name": p.name,
                "node": p.node,
                "ip": p.ip,
                "ready": p.ready,
                "netns": p.netns,
            }
            for p in st.pods
        ],
        "services": [
            {
                "namespace": s.meta.namespace,
                "name": s.meta.name,
                "type": s.type,
                "clusterIP": s.cluster_ip or None,
                "ports": [
                    {
                        "name": p.name,
                        "port": p.port,
                        "protocol": p.protocol,
                        "targetPort": p.target_port,
                        "nodePort": p.node_port or None,
                    }
                    for p in s.ports
                ],
            }
            for s in st.services
        ],
        "external": {
            "netns": st.external.netns,
            "clients": st.external.clients,
            "servers": {s.name: s.address for s in st.lab.external_servers},
        },
        "loadBalancers": [
            {"address": b.address, "service": b.service, "nodes": list(b.nodes), "health": b.health}
            for b in lab.record.load_balancers
        ],
        "timings": lab.record.timings,
    }


def _print_status(out: Out, lab: Any) -> None:
    data = _status_data(lab)
    out.line(f"lab {data['lab']} ({data['status']}), {data['proxy']}, from {data['scenario']}")
    out.line("nodes:")
    for n in data["nodes"]:
        out.line(f"  {n['name']:<12} {n['ip']:<16} pods {n['podCIDR']:<18} netns {n['netns']}")
    out.line("pods:")
    for p in data["pods"]:
        ready = "" if p["ready"] else " (not ready)"
        out.line(
            f"  {p['namespace'] + '/' + p['name']:<44} {p['ip']:<16} {p['node']:<10} "
            f"netns {p['netns']}{ready}"
        )
    out.line("services:")
    for s in data["services"]:
        ports = ", ".join(
            f"{p['port']}{':' + str(p['nodePort']) if p['nodePort'] else ''}/{p['protocol']}"
            for p in s["ports"]
        )
        out.line(
            f"  {s['namespace'] + '/' + s['name']:<30} {s['type']:<13} "
            f"{s['clusterIP'] or '-':<16} {ports}"
        )
    ext = data["external"]
    clients = ", ".join(f"{k} {v}" for k, v in ext["clients"].items())
    servers = ", ".join(f"{k} {v}" for k, v in ext["servers"].items())
    out.line(
        f"external: netns {ext['netns']}; clients {clients}"
        + (f"; servers {servers}" if servers else "")
    )
    for lb in data["loadBalancers"]:
        health = ", ".join(f"{n} {code}" for n, code in lb["health"].items())
        out.line(
            f"load balancer {lb['address']} -> {lb['service']}: nodes "
            f"{', '.join(lb['nodes']) or 'none'}"
            + (f" (health checks: {health})" if health else "")
        )


def cmd_status(args: argparse.Namespace, out: Out) -> int:
    from netlab.lab import Lab, list_labs

    if args.lab:
        lab = Lab.open(args.lab)
        if args.json:
            out.json(_status_data(lab))
        else:
            _print_status(out, lab)
        return EXIT_OK
    records = list_labs()
    if args.json:
        out.json(
            [
                {
                    "lab": r.name,
                    "status": r.status,
                    "mode": r.mode,
                    "scenario": r.scenario,
                    "nodes": len(r.cluster.nodes),
                    "pods": len(r.cluster.pods),
                }
                for r in records
            ]
        )
        return EXIT_OK
    if not records:
        out.line("no labs are up")
    for r in records:
        out.line(
            f"{r.name:<20} {r.status:<9} {r.mode:<10} {len(r.cluster.nodes)} nodes "
            f"{len(r.cluster.pods)} pods  {r.scenario}"
        )
    return EXIT_OK


def cmd_down(args: argparse.Namespace, out: Out) -> int:
    doctor.require_root("remove a lab")
    from netlab.lab import Lab, cleanup

    try:
        lab = Lab.open(args.lab)
    except UsageError:
        leftovers = cleanup(args.lab)
        if leftovers.namespaces or leftovers.processes:
            out.line(
                f"removed leftovers of {args.lab}: {len(leftovers.namespaces)} namespaces, "
                f"{len(leftovers.processes)} processes"
            )
            return EXIT_OK
        raise
    seconds = lab.down()
    out.line(f"lab {lab.name} removed in {seconds:.2f}s")
    return EXIT_OK


def cmd_exec(args: argparse.Namespace, out: Out) -> int:
    doctor.require_root("enter a lab's namespaces")
    from netlab.lab import Lab

    lab = Lab.open(args.lab)
    target = lab.target_netns(args.target)
    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        argv = [os.environ.get("SHELL", "/bin/bash")]
    # `ip netns exec` also binds /etc/netns/<name>/* over /etc, as a learner would expect.
    env = {**os.environ, "NETLAB_LAB": lab.name, "NETLAB_TARGET": args.target}
    sys.stdout.flush()
    try:
        os.execvpe("ip", ["ip", "netns", "exec", target, *argv], env)
    except FileNotFoundError:
        raise PrerequisiteError(
            "ip (iproute2) is not installed", hint="apt-get install -y iproute2"
        ) from None
    return EXIT_OK  # pragma: no cover


def cmd_rules(args: argparse.Namespace, out: Out) -> int:
    doctor.require_root("read a node's rules")
    from netlab.lab import Lab

    lab = Lab.open(args.lab)
    kind, _, node_name = args.node.partition("/")
    if kind != "node" or not node_name:
        raise UsageError(f"expected node/NODE, got {args.node!r}")
    node = lab.node(node_name)
    service = None
    if args.service:
        ns, _, name = args.service.rpartition("/")
        try:
            lab.state.service(ns or "default", name)
        except KeyError:
            raise UsageError(f"no service {args.service} in lab {lab.name}") from None
        service = (ns or "default", name)
    sys.stdout.write(lab.proxier.live_rules(node, service, counters=args.counters))
    return EXIT_OK


def cmd_ready(args: argparse.Namespace, out: Out) -> int:
    doctor.require_root("change a lab")
    from netlab.lab import Lab

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


def cmd_cleanup(args: argparse.Namespace, out: Out) -> int:
    from netlab.lab import cleanup

    doctor.require_root("clean up labs")
    rep = cleanup(args.lab)
    if args.json:
        out.json(rep.__dict__)
    elif not (rep.labs or rep.namespaces or rep.processes):
        out.line("nothing to clean up")
    else:
        out.line(
            f"removed {len(rep.namespaces)} namespaces and {len(rep.processes)} processes "
            f"of {', '.join(rep.labs) or 'unnamed labs'}"
        )
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace, out: Out) -> int:
    diag = doctor.diagnose()
    if args.json:
        out.json(
            {"checks": [c.__dict__ for c in diag.checks], "modes": [m.__dict__ for m in diag.modes]}
        )
        return EXIT_OK
    for c in diag.checks:
        mark = "ok  " if c.ok else "MISS"
        out.line(
            f"{mark} {c.name}" + (f"  ({c.detail})" if c.detail else ""),
            style="" if c.ok else "yellow",
        )
        if not c.ok and c.hint:
            out.line(f"       fix: {c.hint}")
    out.line("proxy modes on this host:")
    for m in diag.modes:
        out.line(
            f"  {m.mode:<10} {'can run' if m.ok else 'cannot run'}"
            + (f": {'; '.join(m.reasons)}" if m.reasons else ""),
            style="green" if m.ok else "red",
        )
        if m.hint:
            out.line(f"             {m.hint}")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace, out: Out) -> int:
    from netlab.scenario.labschema import SCHEMA

    out.json(SCHEMA)
    return EXIT_OK


def _lab_name(value: str) -> str:
    """A LAB argument; refused before it can become a path or a namespace name."""
    problem = lab_name_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{problem} ({LAB_NAME_HINT})")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netlab",
        description="A Kubernetes Services lab: real namespaces, kube-proxy's rules, real packets.",
        epilog="exit status: 0 passed, 1 a check failed, 2 invalid input, 3 missing "
        "prerequisite, 4 the lab could not be built or removed",
    )
    p.add_argument("--version", action="version", version=f"netlab {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text)

    s = add("validate", "check a scenario file without building anything (no root needed)")
    s.add_argument("file")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_validate)

    for name, help_text, func in (
        ("run", "build the lab, run its checks, remove it", cmd_run),
        ("up", "build the lab and leave it up", cmd_up),
    ):
        s = add(name, help_text)
        s.add_argument("file")
        s.add_argument(
            "--mode",
            choices=["iptables", "nftables", "ipvs", "userspace"],
            help="proxy mode (overrides the scenario's)",
        )
        s.add_argument("--name", help="lab name (default: the Lab document's, else the file's)")
        s.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "run":
            s.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
        s.set_defaults(func=func)

    s = add("check", "run a live lab's checks again")
    s.add_argument("lab", type=_lab_name)
    s.add_argument("file", nargs="?", help="scenario to take the checks from (default: the lab's)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_check)

    s = add("status", "list labs, or show one lab's nodes, pods and services")
    s.add_argument("lab", nargs="?", type=_lab_name)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = add("down", "remove a lab")
    s.add_argument("lab", type=_lab_name)
    s.set_defaults(func=cmd_down)

    s = add("exec", "run a command in a lab namespace: pod/NAME, node/NODE, external, fabric")
    s.add_argument("lab", type=_lab_name)
    s.add_argument("target")
    s.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS] (default: a shell)")
    s.set_defaults(func=cmd_exec)

    s = add("rules", "show a node's live proxy rules as the mode's own tool prints them")
    s.add_argument("lab", type=_lab_name)
    s.add_argument("node", help="node/NODE")
    s.add_argument("--service", help="only this Service's part (NAMESPACE/NAME or NAME)")
    s.add_argument("--counters", action="store_true", help="with packet and byte counters")
    s.set_defaults(func=cmd_rules)

    s = add("ready", "mark a pod of a live lab ready or not, and watch the cluster react")
    s.add_argument("lab", type=_lab_name)
    s.add_argument("pod", help="pod/NAME or pod/NAMESPACE/NAME")
    s.add_argument("value", choices=["true", "false"])
    s.set_defaults(func=cmd_ready)

    s = add("cleanup", "remove whatever any lab left behind, found by its tags")
    s.add_argument("lab", nargs="?", type=_lab_name, help="only this lab")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_cleanup)

    s = add("doctor", "what this host has, and which proxy modes can run here")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_doctor)

    s = add("schema", "print the JSON Schema of netlab's Lab document")
    s.set_defaults(func=cmd_schema)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Out()
    err = Out(sys.stderr)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        code: int = args.func(args, out)
        return code
    except ScenarioError as exc:
        if getattr(args, "json", False):
            out.json(
                {
                    "passed": False,
                    "valid": False,
                    "errors": [d.__dict__ for d in exc.diagnostics + exc.warnings],
                }
            )
        else:
            report.diagnostics(err, exc.diagnostics + exc.warnings)
        return exc.exit_code
    except NetlabError as exc:
        hint = getattr(exc, "hint", "")
        detail = getattr(exc, "detail", "")
        if getattr(args, "json", False):
            out.json(
                {
                    "passed": False,
                    "error": str(exc),
                    "detail": detail,
                    "hint": hint,
                    "exit": exc.exit_code,
                }
            )
        else:
            err.line(f"netlab: error: {exc}", style="red")
            if detail:
                err.line(detail)
            if hint:
                err.line(f"hint: {hint}")
        return exc.exit_code
    except KeyboardInterrupt:
        builds = args.command in ("run", "up")
        err.line(
            "netlab: interrupted; everything this run made has been removed"
            if builds
            else "netlab: interrupted"
        )
        return 130
    except Exception as exc:  # not one of ours: still an exit status and a line, not a trace
        if os.environ.get("NETLAB_DEBUG") == "1":
            raise
        message = f"unexpected {type(exc).__name__}: {exc}"
        hint = "NETLAB_DEBUG=1 shows the traceback; please report it as a netlab bug"
        if getattr(args, "json", False):
            out.json({"passed": False, "error": message, "hint": hint, "exit": EXIT_LAB})
        else:
            err.line(f"netlab: error: {message}", style="red")
            err.line(f"hint: {hint}")
        return EXIT_LAB


if __name__ == "__main__":
    sys.exit(main())
