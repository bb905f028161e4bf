"""Scenario files: load every document, validate all of it, and return a typed :class:`Scenario`.

A file of plain Kubernetes manifests is a valid scenario: it gets :func:`default_lab`.
Cross-object rules the API server enforces at create time (namespaces exist, names are unique,
NodePorts and ClusterIPs are in range and free) are checked here too, so ``netlab validate``
catches them without root and without building anything.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from netlab.errors import Diagnostic, ScenarioError
from netlab.scenario.k8s import NODE_PORT_RANGE, Deployment, Namespace, Pod, Service
from netlab.scenario.k8s.parse import parse_object
from netlab.scenario.labschema import LAB_NAME_HINT, LAB_NAME_MAX, lab_name_problem
from netlab.scenario.labspec import (
    CLIENT_NAMESPACE,
    LabSpec,
    default_lab,
    is_lab_document,
    parse_lab,
)
from netlab.scenario.model import Scenario
from netlab.scenario.yamlpos import Document, load_documents

BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def lab_name_from_file(file: str) -> str:
    """Default lab name: the file's stem, made into a DNS label."""
    stem = Path(file).stem.lower()
    name = "".join(c if c.isascii() and c.isalnum() else "-" for c in stem)
    return name[:LAB_NAME_MAX].strip("-") or "lab"


def load_scenario(file: str | Path, *, name: str | None = None) -> Scenario:
    """Read and validate ``file``; raise :class:`ScenarioError` with every error found."""
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(
            [
                Diagnostic(
                    message=f"cannot read the file: {exc.strerror}", file=str(file), category="file"
                )
            ]
        ) from None
    return parse_scenario(text, str(file), name=name)


def parse_scenario(text: str, file: str, *, name: str | None = None) -> Scenario:
    docs, out = load_documents(text, file)
    default_name = name or lab_name_from_file(file)
    lab: LabSpec | None = None
    lab_docs = [d for d in docs if is_lab_document(d.data)]
    for extra in lab_docs[1:]:
        out.append(
            extra.diag(
                (),
                "a scenario has at most one netlab Lab document",
                category="Lab",
                hint="merge the Lab documents into one",
            )
        )
    if lab_docs:
        lab = parse_lab(lab_docs[0], default_name, out)
    elif not any(d.severity == "error" for d in out):
        lab = default_lab(default_name)
    if name and lab_name_problem(name):
        out.append(
            Diagnostic(
                message=lab_name_problem(name),
                path="--name",
                hint=LAB_NAME_HINT,
                category="command line",
            )
        )
    elif lab is not None and name:
        lab = _renamed(lab, name)

    scenario = Scenario(file=file, lab=lab or default_lab(default_name), header=_header(text))
    origins: dict[int, Document] = {}
    for doc in docs:
        if doc.data is None or is_lab_document(doc.data):
            continue
        if not isinstance(doc.data, dict):
            out.append(
                doc.diag(
                    (),
                    "a document must be a mapping (a Kubernetes object)",
                    category="yaml",
                    hint="each --- section holds one object",
                )
            )
            continue
        obj = parse_object(doc, out)
        if obj is None:
            continue
        origins[id(obj)] = doc
        if isinstance(obj, Namespace):
            scenario.namespaces.append(obj)
        elif isinstance(obj, Pod):
            scenario.pods.append(obj)
        elif isinstance(obj, Deployment):
            scenario.deployments.append(obj)
        else:
            scenario.services.append(obj)

    # With an invalid Lab document the lab's own values are unknown; the checks that need them
    # (node names, the service CIDR) are skipped, the rest still run so every error shows.
    _cross_checks(scenario, origins, out, lab_known=lab is not None)
    out.sort(key=lambda d: (d.file, d.line, d.col))
    scenario.warnings = [d for d in out if d.severity != "error"]
    if any(d.severity == "error" for d in out):
        raise ScenarioError(out)
    return scenario


def _renamed(lab: LabSpec, name: str) -> LabSpec:
    from dataclasses import replace

    return replace(lab, name=name)


def _header(text: str) -> str:
    """The leading comment block; blank lines between its paragraphs are kept."""
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            lines.append(line[1:].removeprefix(" "))
        elif line.strip():
            break
        elif lines:
            lines.append("")
    return "\n".join(lines).strip()


def _cross_checks(
    scenario: Scenario, origins: dict[int, Document], out: list[Diagnostic], lab_known: bool
) -> None:
    """What the API server checks against other objects when each one is created."""
    lab = scenario.lab
    known_ns = set(BUILTIN_NAMESPACES) | {n.meta.name for n in scenario.namespaces}
    if lab.client_pods:
        known_ns.add(CLIENT_NAMESPACE)

    def at(
        obj: object, path: tuple[str | int, ...], message: str, hint: str, category: str
    ) -> None:
        doc = origins[id(obj)]
        out.append(doc.diag(path, message, hint=hint, category=category))

    seen: dict[tuple[str, str, str], object] = {}
    objects: list[Namespace | Pod | Deployment | Service] = [
        *scenario.namespaces,
        *scenario.pods,
        *scenario.deployments,
        *scenario.services,
    ]
    resource = {
        Namespace: "namespaces",
        Pod: "pods",
        Deployment: "deployments.apps",
        Service: "services",
    }
    for obj in objects:
        kind = type(obj).__name__
        ns = "" if isinstance(obj, Namespace) else obj.meta.namespace
        key = (kind, ns, obj.meta.name)
        category = f"{kind} {ns + '/' if ns else ''}{obj.meta.name}"
        if key in seen:
            at(
                obj,
                ("metadata", "name"),
                f'{resource[type(obj)]} "{obj.meta.name}" already exists',
                "each object needs a unique name within its namespace",
                category,
            )
        seen[key] = obj
        if isinstance(obj, Namespace):
            if obj.meta.name in BUILTIN_NAMESPACES:
                at(
                    obj,
                    ("metadata", "name"),
                    f'namespaces "{obj.meta.name}" already exists',
                    "this namespace exists in every cluster; drop the manifest",
                    category,
                )
            continue
        if ns not in known_ns:
            at(
                obj,
                ("metadata", "namespace"),
                f'namespaces "{ns}" not found',
                f"add a Namespace manifest named {ns} to the file",
                category,
            )
        spec = (
            obj.spec
            if isinstance(obj, Pod)
            else obj.template_spec
            if isinstance(obj, Deployment)
            else None
        )
        if lab_known and spec is not None and spec.node_name and spec.node_name not in lab.nodes:
            path: tuple[str | int, ...] = (
                ("spec", "nodeName")
                if isinstance(obj, Pod)
                else ("spec", "template", "spec", "nodeName")
            )
            at(
                obj,
                path,
                f'node "{spec.node_name}" is not in the lab',
                f"the lab's nodes are {', '.join(lab.nodes)}",
                category,
            )

    _check_service_allocations(scenario, origins, out, check_range=lab_known)


def _check_service_allocations(
    scenario: Scenario, origins: dict[int, Document], out: list[Diagnostic], check_range: bool
) -> None:
    """ClusterIP and NodePort allocation errors, worded as the API server's allocators word them."""
    service_net = ipaddress.IPv4Network(scenario.lab.network.service_cidr)
    lo, hi = NODE_PORT_RANGE
    used_ips: dict[str, str] = {str(service_net.network_address + 1): "default/kubernetes"}
    # The NodePort allocator ignores the protocol: a port belongs to one Service, which may use it
    # for both TCP and UDP (that per-Service duplicate is ValidateService's business).
    used_ports: dict[int, str] = {}
    for svc in scenario.services:
        doc = origins[id(svc)]
        category = f"Service {svc.meta.namespace}/{svc.meta.name}"
        ip = svc.cluster_ip
        if ip and ip != "None" and ipaddress.ip_address(ip).version != 4:
            out.append(
                doc.diag(
                    ("spec", "clusterIP"),
                    f"{ip} is an IPv6 address",
                    hint="netlab labs are IPv4-only; omit clusterIP or use IPv4",
                    category=category,
                )
            )
        elif ip and ip != "None":
            addr = ipaddress.IPv4Address(ip)
            if check_range and (
                addr not in service_net
                or addr in (service_net.network_address, service_net.broadcast_address)
            ):
                out.append(
                    doc.diag(
                        ("spec", "clusterIP"),
                        f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: the '
                        f"provided IP ({ip}) is not in the valid range. The range of valid IPs "
                        f"is {service_net}",
                        hint=f"pick an address inside the service CIDR {service_net}, or omit "
                        "clusterIP to have one allocated",
                        category=category,
                    )
                )
            elif ip in used_ips:
                out.append(
                    doc.diag(
                        ("spec", "clusterIP"),
                        f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: '
                        "provided IP is already allocated",
                        hint=f"{ip} is taken by {used_ips[ip]}",
                        category=category,
                    )
                )
            else:
                used_ips[ip] = f"{svc.meta.namespace}/{svc.meta.name}"
        extra: list[tuple[int, tuple[str | int, ...]]] = [
            (p.node_port, ("spec", "ports", i, "nodePort")) for i, p in enumerate(svc.ports)
        ]
        extra.append((svc.health_check_node_port, ("spec", "healthCheckNodePort")))
        owner = f"{svc.meta.namespace}/{svc.meta.name}"
        for node_port, path in extra:
            if not node_port:
                continue
            if not lo <= node_port <= hi:
                out.append(
                    doc.diag(
                        path,
                        f"Invalid value: {node_port}: provided port is not in the valid range. "
                        f"The range of valid ports is {lo}-{hi}",
                        hint=f"NodePorts lie in {lo}-{hi}; omit it to have one allocated",
                        category=category,
                    )
                )
            elif used_ports.get(node_port, owner) != owner:
                out.append(
                    doc.diag(
                        path,
                        f"Invalid value: {node_port}: provided port is already allocated",
                        hint=f"Service {used_ports[node_port]} already uses this NodePort; pick "
                        "another or omit it",
                        category=category,
                    )
                )
            else:
                used_ports[node_port] = owner
