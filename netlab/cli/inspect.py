"""Commands that look at a live lab: status, exec, rules. Front ends over :mod:`netlab.api`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

from netlab.cli import completers
from netlab.cli.args import AddCommand, add_lab, add_output, machine
from netlab.cli.output import Out
from netlab.errors import EXIT_OK, PrerequisiteError

if TYPE_CHECKING:
    from netlab.api.status import LabStatus, LabSummary


def print_status(out: Out, status: LabStatus, *, wide: bool) -> None:
    """One lab as tables: nodes, pods, Services, the outside world, load balancers."""
    from netlab.cluster.printers import format_labels, port_string, service_external_ip

    out.line(f"lab {status.name} ({status.status}), {status.proxy}, from {status.scenario}")
    header = ["NAME", "STATUS", "IP", "POD CIDR"] + (["GATEWAY", "NETNS"] if wide else [])
    rows = [
        [n.name, _node_status(n.ready, n.reachable), n.ip, n.pod_cidr]
        + ([n.gateway, n.netns] if wide else [])
        for n in status.nodes
    ]
    _section(out, "nodes", header, rows)

    header = ["NAMESPACE", "NAME", "READY", "STATUS", "IP", "NODE"] + (
        ["ROLE", "OWNER", "NETNS"] if wide else []
    )
    rows = [
        [
            p.namespace,
            p.name,
            "true" if p.ready else "false",
            "Terminating" if p.terminating else "Running",
            p.ip,
            p.node,
        ]
        + ([p.role, p.owner or "-", p.netns] if wide else [])
        for p in status.pods
    ]
    _section(out, "pods", header, rows, ["" if p.ready else "yellow" for p in status.pods])

    header = ["NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"] + (
        ["SELECTOR"] if wide else []
    )
    rows = [
        [
            s.meta.namespace,
            s.meta.name,
            s.type,
            s.cluster_ip or "<none>",
            service_external_ip(s, wide),
            port_string(s),
        ]
        + ([format_labels(s.selector)] if wide else [])
        for s in status.services
    ]
    _section(out, "services", header, rows)

    ext = status.external
    rows = [[name, addr, "client"] for name, addr in ext.clients.items()]
    rows += [[name, addr, "server"] for name, addr in status.external_servers.items()]
    _section(out, f"outside the cluster (netns {ext.netns})", ["NAME", "ADDRESS", "ROLE"], rows)

    for line in status.pending:
        out.line(f"pending: {line}")
    if status.load_balancers:
        rows = [
            [
                b.address,
                b.service,
                ",".join(b.nodes) or "<none>",
                ",".join(f"{n}={code}" for n, code in b.health.items()) or "-",
            ]
            for b in status.load_balancers
        ]
        _section(out, "load balancers", ["ADDRESS", "SERVICE", "NODES", "HEALTH CHECKS"], rows)


def _node_status(ready: bool, reachable: bool) -> str:
    """kubectl's STATUS (Unknown shows as NotReady), and whether netlab has cut it off."""
    return ("Ready" if ready else "NotReady") + ("" if reachable else " (down)")


def _section(
    out: Out,
    title: str,
    header: list[str],
    rows: list[list[str]],
    styles: list[str] | None = None,
) -> None:
    if out.console:
        out.table(header, rows, title=title, styles=styles or [])
        return
    out.line("")
    out.line(f"{title}:")
    out.table(header, rows)


def print_labs(out: Out, labs: list[LabSummary], *, wide: bool) -> None:
    from netlab.cluster.manifests import timestamp
    from netlab.cluster.printers import human_duration

    if not labs:
        out.line("no labs are up")
        return
    now = time.time()
    header = ["NAME", "STATUS", "MODE", "NODES", "PODS", "AGE", "SCENARIO"]
    header += ["CREATED"] if wide else []
    rows = [
        [
            s.name,
            s.status,
            s.mode,
            str(s.nodes),
            str(s.pods),
            human_duration(now - s.created),
            s.scenario,
        ]
        + ([timestamp(s.created)] if wide else [])
        for s in labs
    ]
    out.table(header, rows)


def cmd_status(args: argparse.Namespace, out: Out) -> int:
    import netlab

    fmt = machine(args)
    wide = args.output == "wide"
    if args.lab:
        status = netlab.attach(args.lab).status()
        if fmt:
            out.data(status.to_data(), fmt)
        else:
            print_status(out, status, wide=wide)
        return EXIT_OK
    labs = netlab.labs()
    if fmt:
        out.data([s.to_data() for s in labs], fmt)
    else:
        print_labs(out, labs, wide=wide)
    return EXIT_OK


def cmd_exec(args: argparse.Namespace, out: Out) -> int:
    import netlab

    lab = netlab.attach(args.lab)
    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        argv = [os.environ.get("SHELL", "/bin/bash")]
    # `ip netns exec` also binds /etc/netns/<name>/* over /etc, as a learner would expect.
    command, env = lab.exec_command(args.target, argv)
    sys.stdout.flush()
    try:
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        raise PrerequisiteError(
            "ip (iproute2) is not installed", hint="apt-get install -y iproute2"
        ) from None
    return EXIT_OK  # pragma: no cover


def cmd_rules(args: argparse.Namespace, out: Out) -> int:
    import netlab

    lab = netlab.attach(args.lab)
    text = lab.rules(args.node, service=args.service, counters=args.counters, raw=args.raw)
    out.stream.write(text)
    out.stream.flush()
    return EXIT_OK


def register(add: AddCommand) -> None:
    """This module's subcommands."""
    s = add("status", "list labs, or show one lab's nodes, pods and services")
    add_lab(s, optional=True, help="the lab to show (default: list every lab that is up)")
    add_output(s)
    s.set_defaults(func=cmd_status)

    s = add("exec", "run a command in a lab namespace: pod/NAME, node/NODE, external, fabric")
    add_lab(s)
    target = s.add_argument(
        "target", help="pod/NAME, pod/NAMESPACE/NAME, node/NODE, external or fabric"
    )
    completers.complete_with(target, completers.targets)
    s.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS] (default: a shell)")
    s.set_defaults(func=cmd_exec)

    s = add("rules", "show a node's live proxy rules as the mode's own tool prints them")
    add_lab(s)
    node = s.add_argument("node", help="node/NODE")
    completers.complete_with(node, completers.nodes)
    service = s.add_argument("--service", help="only this Service's part (NAMESPACE/NAME or NAME)")
    completers.complete_with(service, completers.services)
    s.add_argument(
        "--counters",
        action="store_true",
        help="with packet and byte counters (ebpf: those of the conntrack entries)",
    )
    s.add_argument(
        "--raw",
        action="store_true",
        help="ebpf: bpftool's dumps of the pinned maps and the tc and cgroup attachments "
        "(the other modes' views are their tools' own output already)",
    )
    s.set_defaults(func=cmd_rules)
