"""A lab drawn as a graph: nodes holding their pods, Services pointing at their endpoints, and
the world outside (clients, servers, load balancers), in mermaid or Graphviz dot.

Built from the cluster state alone, so a scenario file can be drawn without building anything,
and a live lab exactly as it is (readiness included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from netlab.cluster.state import ClusterState

FORMATS = ("mermaid", "dot")


@dataclass
class Graph:
    """Boxes grouped into clusters, and edges between boxes."""

    title: str
    groups: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # id -> (label, boxes)
    boxes: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (label, shape)
    edges: list[tuple[str, str, str, bool]] = field(default_factory=list)  # a, b, label, dashed

    def box(self, ident: str, label: str, shape: str = "box", group: str = "") -> str:
        self.boxes[ident] = (label, shape)
        if group:
            self.groups[group][1].append(ident)
        return ident


def ident(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))


def build(state: ClusterState) -> Graph:
    g = Graph(state.lab.name)
    g.groups["outside"] = ("outside the cluster", [])
    for name, ip in state.external.clients.items():
        g.box(ident("client", name), f"client {name}<br/>{ip}", "round", "outside")
    for server in state.lab.external_servers:
        g.box(
            ident("server", server.name), f"{server.name}<br/>{server.address}", "round", "outside"
        )
    for node in state.nodes:
        group = ident("node", node.name)
        g.groups[group] = (f"{node.name} {node.ip} (pods {node.pod_cidr})", [])
    for pod in state.pods:
        group = ident("node", pod.node)
        ready = "" if pod.ready else " (not ready)"
        ns = "" if pod.namespace == "default" else f"{pod.namespace}/"
        g.box(
            ident("pod", pod.namespace, pod.name),
            f"{ns}{pod.name}<br/>{pod.ip}{ready}",
            "box",
            group,
        )
    pods_by_key = {p.key: ident("pod", p.namespace, p.name) for p in state.pods}
    for svc in state.services:
        key = f"{svc.meta.namespace}/{svc.meta.name}"
        sid = ident("svc", svc.meta.namespace, svc.meta.name)
        ports = ", ".join(
            f"{p.port}{':' + str(p.node_port) if p.node_port else ''}/{p.protocol}"
            for p in svc.ports
        )
        where = svc.cluster_ip if svc.cluster_ip and not svc.headless else "headless"
        if svc.type == "ExternalName":
            where = f"CNAME {svc.external_name}"
        g.box(
            sid,
            f"Service {key}<br/>{svc.type} {where}<br/>{ports}".removesuffix("<br/>"),
            "service",
        )
        endpoints: dict[str, bool] = {}
        for sl in state.slices_for(svc):
            for ep in sl.endpoints:
                usable = ep.ready or (ep.serving and ep.terminating)
                endpoints[ep.pod] = endpoints.get(ep.pod, False) or usable
        for pod_key, usable in endpoints.items():
            if pod_key in pods_by_key:
                g.edges.append((sid, pods_by_key[pod_key], "", not usable))
        if svc.type == "ExternalName":
            target = svc.external_name.rstrip(".").lower()
            sid_target = ident("server", target)
            if sid_target not in g.boxes:
                g.box(sid_target, target, "round", "outside")
            g.edges.append((sid, sid_target, "CNAME", False))
        node_ports = [p for p in svc.ports if p.node_port]
        if node_ports:
            label = ", ".join(f"NodePort {p.node_port}" for p in node_ports)
            first = next(iter(state.external.clients), "")
            if first:  # any outside client reaches it; the first stands for them all
                g.edges.append((ident("client", first), sid, label, False))
        for address in svc.load_balancer_ingress:
            lb = g.box(ident("lb", address), f"load balancer<br/>{address}", "round", "outside")
            g.edges.append((lb, sid, "", False))
    return g


def _esc(text: str, fmt: str) -> str:
    if fmt == "mermaid":
        return text.replace('"', "#quot;")
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("<br/>", "\\n")


def mermaid(g: Graph) -> str:
    shapes = {"box": ('["', '"]'), "round": ('("', '")'), "service": ('{{"', '"}}')}
    out = ["flowchart LR"]
    grouped = {b for _, (_, members) in g.groups.items() for b in members}

    def node_line(b: str, indent: str) -> str:
        label, shape = g.boxes[b]
        left, right = shapes[shape]
        return f"{indent}{b}{left}{_esc(label, 'mermaid')}{right}"

    for gid, (label, members) in g.groups.items():
        if not members:
            continue
        out.append(f'  subgraph {gid}["{_esc(label, "mermaid")}"]')
        out += [node_line(b, "    ") for b in members]
        out.append("  end")
    out += [node_line(b, "  ") for b in g.boxes if b not in grouped]
    for a, b, label, dashed in g.edges:
        arrow = "-.->" if dashed else "-->"
        text = f'|"{_esc(label, "mermaid")}"|' if label else ""
        out.append(f"  {a} {arrow}{text} {b}")
    return "\n".join(out) + "\n"


def dot(g: Graph) -> str:
    shapes = {"box": "box", "round": "ellipse", "service": "hexagon"}
    out = [f'digraph "{_esc(g.title, "dot")}" {{', "  rankdir=LR;", "  node [fontsize=10];"]
    grouped = {b for _, (_, members) in g.groups.items() for b in members}

    def node_line(b: str, indent: str) -> str:
        label, shape = g.boxes[b]
        return f'{indent}{b} [shape={shapes[shape]}, label="{_esc(label, "dot")}"];'

    for gid, (label, members) in g.groups.items():
        if not members:
            continue
        out.append(f"  subgraph cluster_{gid} {{")
        out.append(f'    label="{_esc(label, "dot")}";')
        out += [node_line(b, "    ") for b in members]
        out.append("  }")
    out += [node_line(b, "  ") for b in g.boxes if b not in grouped]
    for a, b, label, dashed in g.edges:
        attrs = [f'label="{_esc(label, "dot")}"'] if label else []
        if dashed:
            attrs.append("style=dashed")
        out.append(f"  {a} -> {b}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    out.append("}")
    return "\n".join(out) + "\n"


def render(state: ClusterState, fmt: str = "mermaid") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown graph format {fmt!r}: {', '.join(FORMATS)}")
    g = build(state)
    return mermaid(g) if fmt == "mermaid" else dot(g)
