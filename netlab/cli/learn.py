"""Commands that show how a Service works: trace, explain, conntrack, capture, graph.

Every command calls the public API (:class:`netlab.api.lab.Lab`'s ``trace``, ``explain``,
``conntrack``, ``capture``, ``graph``; :func:`netlab.graph`); these functions only print: a tree
or table on a terminal, plain text otherwise, JSON or YAML on request.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from netlab.cli.args import DATA_FORMATS, AddCommand, add_lab, add_output, machine
from netlab.cli.output import Out
from netlab.errors import EXIT_OK, UsageError
from netlab.serial import to_data

# rich and the trace's tree are imported by the commands that print them: every other
# command (validate on a CI runner) starts without them.
if TYPE_CHECKING:
    from netlab.explain.trace.tree import TreeNode


def print_tree(out: Out, root: TreeNode) -> None:
    """A tree on a terminal, indented lines otherwise."""
    if out.console is None:
        for line in root.lines():
            out.line(line)
        return
    from rich.markup import escape
    from rich.tree import Tree

    def grow(tree: Tree, node: TreeNode) -> None:
        for child in node.children:
            grow(tree.add(escape(child.label)), child)

    top = Tree(f"[bold]{escape(root.label)}[/bold]")
    grow(top, root)
    out.console.print(top)


def cmd_trace(args: argparse.Namespace, out: Out) -> int:
    import netlab

    report = netlab.attach(args.lab).trace(
        args.source,
        args.destination,
        protocol=args.protocol,
        timeout=args.timeout,
        endpoint=args.endpoint or "",
    )
    fmt = machine(args)
    if fmt:
        out.data(to_data(report), fmt)
    else:
        from netlab.explain.trace.tree import report_tree

        print_tree(out, report_tree(report))
    return EXIT_OK


def cmd_explain(args: argparse.Namespace, out: Out) -> int:
    import netlab

    exp = netlab.attach(args.lab).explain(args.service, node=args.node, lang=args.lang)
    fmt = machine(args)
    if fmt:
        out.data(to_data(exp), fmt)
        return EXIT_OK
    if out.console is None:
        for line in exp.lines():
            out.line(line)
        return EXIT_OK
    from rich.markup import escape
    from rich.table import Table

    out.console.print(f"[bold]{escape(exp.title)}[/bold]")
    for section in exp.sections:
        if not section.items:
            continue
        table = Table(title=section.title, show_lines=True, title_justify="left")
        table.add_column("where", style="cyan", no_wrap=True)
        table.add_column("rule")
        table.add_column("what it does, and why")
        for item in section.items:
            table.add_row(escape(item.where), escape(item.text), escape(item.why))
        out.console.print(table)
    return EXIT_OK


def cmd_conntrack(args: argparse.Namespace, out: Out) -> int:
    import netlab

    if not args.node.startswith("node/"):
        raise UsageError(f"expected node/NODE, got {args.node!r}")
    table = netlab.attach(args.lab).conntrack(args.node, service=args.service)
    fmt = machine(args)
    if fmt:
        out.data({"node": table.node, "flows": [f.to_dict() for f in table.flows]}, fmt)
        return EXIT_OK
    if out.console is None:
        for line in table.text():
            out.line(line)
        return EXIT_OK
    from rich.markup import escape
    from rich.table import Table

    rich = Table(title=f"node/{table.node}: NATed flows", title_justify="left")
    for col in ("proto", "original (as the client sent it)", "reply (as the answer comes back)"):
        rich.add_column(col)
    rich.add_column("NAT", style="magenta")
    for row in table.rows():
        rich.add_row(*(escape(c) for c in row))
    out.console.print(rich)
    return EXIT_OK


def cmd_capture(args: argparse.Namespace, out: Out) -> int:
    import netlab

    lab = netlab.attach(args.lab)
    err = Out(sys.stderr)
    where = f"{args.target}" + (f" {args.interface}" if args.interface else "")

    def ready() -> None:
        dest = f" into {args.write}" if args.write else ""
        err.line(f"capturing on {where}{dest}; Ctrl-C to stop")

    count = lab.capture(
        args.target,
        iface=args.interface,
        path=args.write,
        bpf=args.filter or "",
        count=args.count,
        seconds=args.seconds,
        on_ready=ready,
        on_line=out.line,
    )
    err.line(f"{count} packet{'s' if count != 1 else ''} captured")
    return EXIT_OK


def cmd_graph(args: argparse.Namespace, out: Out) -> int:
    import os

    import netlab

    if os.path.exists(args.source) or args.source.endswith((".yaml", ".yml")):
        text = netlab.graph(args.source, args.format)
    else:
        text = netlab.attach(args.source).graph(args.format)
    sys.stdout.write(text)
    return EXIT_OK


def register(add: AddCommand) -> None:
    """This module's subcommands."""
    s = add("trace", "send one connection and show the path the kernel took, rule by rule")
    add_lab(s)
    s.add_argument("source", metavar="FROM", help="pod/NAME, node/NODE, external[/CLIENT]")
    s.add_argument(
        "destination",
        metavar="TO",
        help="service/[NS/]NAME[:PORT], IP:PORT, node/NODE:PORT, or a mapping such as "
        "'{service: web, via: nodePort, node: node-2}'",
    )
    s.add_argument("--protocol", help="TCP or UDP (default: the Service port's)")
    s.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for an answer")
    s.add_argument(
        "--endpoint",
        metavar="POD",
        help="connect again (each time traced) until the kernel picks this endpoint",
    )
    add_output(s, DATA_FORMATS)
    s.set_defaults(func=cmd_trace)

    s = add("explain", "a Service's rules on a node, each with what it does and why")
    add_lab(s)
    s.add_argument("service", help="service/NAMESPACE/NAME or service/NAME")
    s.add_argument("--node", help="node/NODE or NODE (default: the first node)")
    s.add_argument("--lang", choices=["en", "zh"], default="en", help="English or 中文")
    add_output(s, DATA_FORMATS)
    s.set_defaults(func=cmd_explain)

    s = add("conntrack", "a node's NATed flows, with pod and Service names beside addresses")
    add_lab(s)
    s.add_argument("node", help="node/NODE")
    s.add_argument("--service", help="only flows dialled at this Service (NAMESPACE/NAME)")
    add_output(s, DATA_FORMATS)
    s.set_defaults(func=cmd_conntrack)

    s = add("capture", "tcpdump in a pod, node or the outside world, to a pcap or the terminal")
    add_lab(s)
    s.add_argument("target", help="pod/NAME, pod/NAMESPACE/NAME, node/NODE, external, fabric")
    s.add_argument("-i", "--interface", help="interface (default: eth0 in a pod, else any)")
    s.add_argument("-w", "--write", metavar="FILE.pcap", help="write a pcap file instead")
    s.add_argument("--filter", metavar="BPF", help="a tcpdump filter, e.g. 'tcp port 8080'")
    s.add_argument("-c", "--count", type=int, help="stop after this many packets")
    s.add_argument("--seconds", type=float, help="stop after this many seconds")
    s.set_defaults(func=cmd_capture)

    s = add("graph", "draw a scenario file (no root needed) or a live lab, in mermaid or dot")
    s.add_argument("source", metavar="FILE|LAB", help="a scenario file or the name of a lab")
    s.add_argument(
        "-f",
        "--format",
        choices=["mermaid", "dot"],
        default="mermaid",
        help="mermaid (default; GitHub renders it) or Graphviz dot",
    )
    s.set_defaults(func=cmd_graph)
