"""Scenario files: load every document, validate all of it, and return a typed :class:`Scenario`.

A file of plain Kubernetes manifests is a valid scenario: it gets :func:`default_lab`.
Cross-object rules the API server enforces at create time (namespaces exist, names are unique,
NodePorts and ClusterIPs are in range and free) are checked here too, so ``netlab validate``
catches them without root and without building anything.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
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
from netlab.scenario.source import read_source
from netlab.scenario.yamlpos import Document, load_documents

BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
ZONE_LABEL = "topology.kubernetes.io/zone"
KUBE_DNS_HOST = 10  # kubeadm: the service CIDR's tenth address is kube-dns's


def lab_name_from_file(file: str) -> str:
    """Default lab name: the file's stem, made into a DNS label."""
    stem = Path(file).stem.lower()
    name = "".join(c if c.isascii() and c.isalnum() else "-" for c in stem)
    return name[:LAB_NAME_MAX].strip("-") or "lab"


def load_scenario(file: str | Path, *, name: str | None = None) -> Scenario:
    """Read and validate ``file``; raise :class:`ScenarioError` with every error found."""
    text, problems = read_source(file)
    if text is None:
        raise ScenarioError(problems)
    return parse_scenario(text, str(file), name=name)


def parse_scenario(text: str, file: str, *, name: str | None = None) -> Scenario:
    docs, out = load_documents(text, file)
    default_name = name or lab_name_from_file(file)
    lab: LabSpec | None = None
    lab_docs = [d for d in docs if is_lab_document(d.data)]
    for extra in lab_docs[1:]:
        out.append(
            extra.diag(
                ("kind",),
                "a scenario has at most one netlab Lab document",
                category="Lab",
                hint="merge the Lab documents into one",
            )
        )
    origins_by_ref: dict[tuple[str, str, str], Document] = {}
    if lab_docs:
        lab = parse_lab(lab_docs[0], default_name, out)
        origins_by_ref[("Lab", "", "")] = lab_docs[0]
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
        obj = parse_object(doc, out, scenario.lab.feature_gates)
        if obj is None:
            continue
        origins[id(obj)] = doc
        ns = "" if isinstance(obj, Namespace) else obj.meta.namespace
        origins_by_ref.setdefault((type(obj).__name__, ns, obj.meta.name), doc)
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
    scenario.origins = origins_by_ref
    if any(d.severity == "error" for d in out):
        raise ScenarioError(out)
    return scenario


def _renamed(lab: LabSpec, name: str) -> LabSpec:
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

    seen: dict[tuple[str, str, str], object] = dict.fromkeys(_system_objects(lab, lab_known))
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
                "every lab has it already (netlab adds it, as a kubeadm cluster has it): "
                "name yours differently"
                if seen[key] is None
                else "each object needs a unique name within its namespace",
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

    if lab_known:
        _zone_warnings(scenario, origins, out)
    _check_service_allocations(scenario, origins, out, check_range=lab_known)


def _zone_warnings(scenario: Scenario, origins: dict[int, Document], out: list[Diagnostic]) -> None:
    """trafficDistribution PreferClose/PreferSameZone needs zone labels on nodes: without any,
    endpoints carry no zone, the controller writes no hints, and every endpoint is used."""
    zoned = any(ZONE_LABEL in labels for labels in scenario.lab.node_labels.values())
    for svc in scenario.services:
        if zoned or svc.traffic_distribution not in ("PreferClose", "PreferSameZone"):
            continue
        out.append(
            origins[id(svc)].diag(
                ("spec", "trafficDistribution"),
                f"no node of the lab has a {ZONE_LABEL} label, so no endpoint has a zone and "
                "no hints are written: every endpoint is used, from every node",
                hint="label the nodes in the Lab document, e.g. nodes: [{name: node-1, labels: "
                f"{{{ZONE_LABEL}: zone-a}}}}, ...]",
                category=f"Service {svc.meta.namespace}/{svc.meta.name}",
                severity="warning",
            )
        )


def _system_objects(lab: LabSpec, lab_known: bool) -> list[tuple[str, str, str]]:
    """The objects every lab has before the scenario's are created (as a kubeadm cluster has
    them), which a scenario's objects must not clash with: (kind, namespace, name)."""
    objects = [("Service", "default", "kubernetes")]
    if lab_known:
        objects.append(("Pod", "kube-system", f"kube-apiserver-{lab.nodes[0]}"))
        if lab.client_pods:
            objects.append(("Namespace", "", CLIENT_NAMESPACE))
            objects += [("Pod", CLIENT_NAMESPACE, f"client-{n}") for n in lab.nodes]
    if lab.dns.enabled:
        objects += [
            ("Service", "kube-system", "kube-dns"),
            ("Deployment", "kube-system", "coredns"),
        ]
    return objects


def _check_service_allocations(
    scenario: Scenario, origins: dict[int, Document], out: list[Diagnostic], check_range: bool
) -> None:
    """Requested ClusterIPs and NodePorts, allocated as the API server's allocators allocate
    them (kubernetes/kubernetes ``pkg/registry/core/service/storage/alloc.go`` at commit
    b0d609f0: ``allocIPs``, ``initNodePorts``, ``allocHealthCheckNodePort``), Service after
    Service."""
    service_net = ipaddress.IPv4Network(scenario.lab.network.service_cidr)
    used_ips: dict[str, str] = {str(service_net.network_address + 1): "default/kubernetes"}
    if scenario.lab.dns.enabled:  # kubeadm creates kube-dns before any Service of ours
        used_ips[str(service_net.network_address + KUBE_DNS_HOST)] = "kube-system/kube-dns"
    # The NodePort allocator ignores the protocol: a port belongs to one Service, which may use it
    # for both TCP and UDP of one port number.
    used_ports: dict[int, str] = {}
    for svc in scenario.services:
        doc = origins[id(svc)]
        category = f"Service {svc.meta.namespace}/{svc.meta.name}"
        owner = f"{svc.meta.namespace}/{svc.meta.name}"
        ip = svc.cluster_ip
        if ip and ip != "None" and ipaddress.ip_address(ip).version == 4:
            _request_cluster_ip(doc, svc, category, service_net, used_ips, out, check_range)

        by_port: dict[int, int] = {}  # initNodePorts' svcPortToNodePort
        for i, p in enumerate(svc.ports):
            if not p.node_port:
                continue
            path: tuple[str | int, ...] = ("spec", "ports", i, "nodePort")
            allocated = by_port.get(p.port, 0)
            if allocated == p.node_port:
                continue  # the same port number's NodePort, e.g. for TCP and UDP
            if not allocated:
                # findRequestedNodePort: the first NodePort asked for this port number
                np = next(q.node_port for q in svc.ports if q.port == p.port and q.node_port)
                holder = used_ports.get(np, "")
                problem = _allocate(used_ports, np, owner)
                by_port[p.port] = np
            else:
                np, holder = p.node_port, used_ports.get(p.node_port, "")
                problem = _allocate(used_ports, np, owner)
            if problem:
                out.append(
                    doc.diag(
                        path,
                        f"Invalid value: {np}: {problem}",
                        hint=_node_port_hint(problem, holder, owner),
                        category=category,
                    )
                )
        hc = svc.health_check_node_port
        if hc:
            holder = used_ports.get(hc, "")
            problem = _allocate(used_ports, hc, owner)
            if problem:
                out.append(
                    doc.diag(
                        ("spec", "healthCheckNodePort"),
                        "Internal error occurred: failed to allocate requested HealthCheck "
                        f"NodePort {hc}: {problem}",
                        hint="the health check needs a NodePort of its own: this Service uses "
                        f"{hc} for a port; omit healthCheckNodePort to have one allocated"
                        if holder == owner
                        else _node_port_hint(problem, holder, owner),
                        category=category,
                    )
                )


def _allocate(used: dict[int, str], port: int, owner: str) -> str:
    """The NodePort allocator's ``Allocate``: "" when ``port`` is now ``owner``'s, else why not."""
    lo, hi = NODE_PORT_RANGE
    if not lo <= port <= hi:
        return f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
    if port in used:
        return "provided port is already allocated"
    used[port] = owner
    return ""


def _node_port_hint(problem: str, holder: str, owner: str) -> str:
    lo, hi = NODE_PORT_RANGE
    if "valid range" in problem:
        return f"NodePorts lie in {lo}-{hi}; omit it to have one allocated"
    if holder == owner:
        return (
            "this Service already uses this NodePort for another port; each port number gets "
            "its own NodePort (one number may serve TCP and UDP of the same port)"
        )
    return f"Service {holder} already uses this NodePort; pick another or omit it"


def _request_cluster_ip(
    doc: Document,
    svc: Service,
    category: str,
    service_net: ipaddress.IPv4Network,
    used_ips: dict[str, str],
    out: list[Diagnostic],
    check_range: bool,
) -> None:
    """``allocIPs`` for a requested address: errors at ``spec.clusterIPs``, where the
    allocator reports them, positioned at the address as written."""
    ip = svc.cluster_ip
    addr = ipaddress.IPv4Address(ip)
    where = (
        ("spec", "clusterIP")
        if doc.where(("spec", "clusterIP")) != doc.where(())
        else (
            "spec",
            "clusterIPs",
            0,
        )
    )
    prefix = f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: '
    if check_range and (
        addr not in service_net
        or addr in (service_net.network_address, service_net.broadcast_address)
    ):
        out.append(
            replace(
                doc.diag(
                    where,
                    prefix + f"the provided IP ({ip}) is not in the valid range. The range of "
                    f"valid IPs is {service_net}",
                    hint=f"pick an address inside the service CIDR {service_net}, or omit "
                    "clusterIP to have one allocated",
                    category=category,
                ),
                path="spec.clusterIPs",
            )
        )
    elif ip in used_ips:
        out.append(
            replace(
                doc.diag(
                    where,
                    prefix + "provided IP is already allocated",
                    hint=f"{ip} is taken by {used_ips[ip]}; pick another or omit clusterIP",
                    category=category,
                ),
                path="spec.clusterIPs",
            )
        )
    else:
        used_ips[ip] = f"{svc.meta.namespace}/{svc.meta.name}"
