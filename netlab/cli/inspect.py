"""Commands that look at a live lab: status, exec, rules."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from netlab.cli.args import AddCommand, lab_name
from netlab.cli.output import Out
from netlab.errors import EXIT_OK, PrerequisiteError, UsageError
from netlab.kernel import cgroup
from netlab.lab import doctor


def status_data(lab: Any) -> dict[str, Any]:
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


def print_status(out: Out, lab: Any) -> None:
    data = status_data(lab)
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
    from netlab.lab.lifecycle import Lab
    from netlab.lab.record import list_labs

    if args.lab:
        lab = Lab.open(args.lab)
        if args.json:
            out.json(status_data(lab))
        else:
            print_status(out, lab)
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


def cmd_exec(args: argparse.Namespace, out: Out) -> int:
    doctor.require_root("enter a lab's namespaces")
    from netlab.lab.lifecycle import Lab

    lab = Lab.open(args.lab)
    target = lab.target_netns(args.target)
    argv = list(args.command)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        argv = [os.environ.get("SHELL", "/bin/bash")]
    # `ip netns exec` also binds /etc/netns/<name>/* over /etc, as a learner would expect.
    env = {**os.environ, "NETLAB_LAB": lab.name, "NETLAB_TARGET": args.target}
    command = ["ip", "netns", "exec", target, *argv]
    kind, _, name = args.target.partition("/")
    if kind == "node":
        # A node's own processes run in the cgroup the mode acts on (ebpf: socket LB).
        path = lab.proxier.node_cgroup(lab.node(name))
        if path is not None:
            command = cgroup.wrap(path, command)
    sys.stdout.flush()
    try:
        os.execvpe(command[0], command, env)
    except FileNotFoundError:
        raise PrerequisiteError(
            "ip (iproute2) is not installed", hint="apt-get install -y iproute2"
        ) from None
    return EXIT_OK  # pragma: no cover


def cmd_rules(args: argparse.Namespace, out: Out) -> int:
    doctor.require_root("read a node's rules")
    from netlab.lab.lifecycle import Lab

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
    if args.raw:
        if service is not None or args.counters:
            raise UsageError(
                "--raw shows every map and attachment as bpftool dumps them",
                hint="leave out --service and --counters",
            )
        sys.stdout.write(lab.proxier.live_raw(node))
        return EXIT_OK
    sys.stdout.write(lab.proxier.live_rules(node, service, counters=args.counters))
    return EXIT_OK


def register(add: AddCommand) -> None:
    """This module's subcommands."""
    s = add("status", "list labs, or show one lab's nodes, pods and services")
    s.add_argument("lab", nargs="?", type=lab_name)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = add("exec", "run a command in a lab namespace: pod/NAME, node/NODE, external, fabric")
    s.add_argument("lab", type=lab_name)
    s.add_argument("target")
    s.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS] (default: a shell)")
    s.set_defaults(func=cmd_exec)

    s = add("rules", "show a node's live proxy rules as the mode's own tool prints them")
    s.add_argument("lab", type=lab_name)
    s.add_argument("node", help="node/NODE")
    s.add_argument("--service", help="only this Service's part (NAMESPACE/NAME or NAME)")
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
