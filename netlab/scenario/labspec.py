"""netlab's own document: typed form, defaults, and validation against :mod:`labschema`."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from netlab.errors import Diagnostic
from netlab.scenario.checkspec import CheckSpec, parse_check
from netlab.scenario.k8s.context import _Ctx
from netlab.scenario.k8s.objectmeta import _validate_labels
from netlab.scenario.labaddress import HINT_PRIVATE, node_network_room, on_node_network, special
from netlab.scenario.labcheck import json_numbers, render, schema_errors
from netlab.scenario.labschema import LAB_API_VERSION, SCHEMA
from netlab.scenario.stepspec import StepSpec, parse_duration, parse_steps
from netlab.scenario.yamlpos import Document, Path, dotted

DEFAULT_POD_CIDR = "10.244.0.0/16"  # kubeadm's usual --pod-network-cidr (flannel)
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"  # kubeadm DefaultServicesSubnet
DEFAULT_NODE_NETWORK = "192.168.56.0/24"
DEFAULT_EXTERNAL_ADDRESS_HOST = 100  # external client: .100 on the node network
DEFAULT_LB_POOL = "192.0.2.0/24"  # TEST-NET-1, as in the Kubernetes docs' LoadBalancer examples
CLIENT_NAMESPACE = "netlab"  # namespace of the client pods netlab adds on every node
RESERVED_NODE_NAMES = {"fabric", "external"}
_IPV4 = "must be a valid IPv4 address"
_HINT_IPV4 = "write four numbers 0-255, e.g. 203.0.113.7"
_HINT_CLIENT = "an external client needs an address of its own, outside the cluster"


@dataclass(frozen=True)
class NetworkSpec:
    pod_cidr: str = DEFAULT_POD_CIDR
    node_cidr_mask_size: int = 24
    service_cidr: str = DEFAULT_SERVICE_CIDR
    node_network: str = DEFAULT_NODE_NETWORK


@dataclass(frozen=True)
class ProxySpec:
    mode: str = "iptables"
    iptables_backend: str = "auto"
    masquerade_all: bool = False
    nftables_layout: str = "kube-proxy"
    # kube-proxy deletes the conntrack entries of UDP flows to endpoints that are gone; a lab
    # may turn that off to show the failure it prevents.
    conntrack_cleanup: bool = True
    # kube-proxy's nodePortAddresses: CIDRs or ("primary",); None = the mode's default.
    node_port_addresses: tuple[str, ...] | None = None


# kube-controller-manager --node-monitor-grace-period (50s since v1.32) and kube-apiserver
# --default-unreachable-toleration-seconds (the tolerationSeconds every pod gets by default).
DEFAULT_NODE_MONITOR_GRACE_PERIOD = 50.0
DEFAULT_UNREACHABLE_TOLERATION_SECONDS = 300


@dataclass(frozen=True)
class ControlPlaneSpec:
    """The control plane's timings that decide how fast Services notice a node is gone."""

    node_monitor_grace_period: float = DEFAULT_NODE_MONITOR_GRACE_PERIOD
    unreachable_toleration_seconds: float = DEFAULT_UNREACHABLE_TOLERATION_SECONDS


@dataclass(frozen=True)
class ExternalClient:
    name: str
    address: str


@dataclass(frozen=True)
class ExternalServer:
    """A server of the outside world: a name the upstream DNS resolves, an address, ports."""

    name: str
    address: str
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class DnsSpec:
    enabled: bool = True
    replicas: int = 2  # kubeadm's CoreDNS Deployment runs two
    domain: str = "cluster.local"


@dataclass(frozen=True)
class LabSpec:
    name: str
    nodes: tuple[str, ...] = ("node-1", "node-2")
    network: NetworkSpec = field(default_factory=NetworkSpec)
    proxy: ProxySpec = field(default_factory=ProxySpec)
    external_clients: tuple[ExternalClient, ...] = ()
    client_pods: bool = True
    checks: tuple[CheckSpec, ...] | None = None  # None = derive checks from the manifests
    description: str = ""
    external_servers: tuple[ExternalServer, ...] = ()
    dns: DnsSpec = field(default_factory=DnsSpec)
    load_balancer_pool: str = DEFAULT_LB_POOL
    control_plane: ControlPlaneSpec = field(default_factory=ControlPlaneSpec)
    steps: tuple[StepSpec, ...] = ()  # the timeline: a change, then the checks after it
    node_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # node -> its labels
    feature_gates: tuple[str, ...] = ()  # the gates switched on (off by default, as in v1.33)


def default_external_clients(node_network: str) -> tuple[ExternalClient, ...]:
    net = ipaddress.ip_network(node_network, strict=False)
    return (ExternalClient("external", str(net.network_address + DEFAULT_EXTERNAL_ADDRESS_HOST)),)


def default_lab(name: str) -> LabSpec:
    return LabSpec(name=name, external_clients=default_external_clients(DEFAULT_NODE_NETWORK))


def is_lab_document(data: Any) -> bool:
    return isinstance(data, dict) and data.get("apiVersion") == LAB_API_VERSION


def parse_lab(doc: Document, default_name: str, out: list[Diagnostic]) -> LabSpec | None:
    """Validate the netlab document against the schema, then its semantics; return the spec."""
    before = len(out)
    data = json_numbers(doc.data)
    out.extend(schema_errors(doc, SCHEMA, data))
    if len(out) > before or doc.bad:  # a value the loader could not read is reported there
        return None
    spec = data.get("spec") or {}
    meta = data.get("metadata") or {}
    name = meta.get("name") or default_name
    category = f"Lab {name}"

    def diag(path: Path, message: str, hint: str = "") -> None:
        out.append(doc.diag(path, message, hint=hint, category=category))

    net_data = spec.get("network") or {}
    network = NetworkSpec(
        pod_cidr=net_data.get("podCIDR", DEFAULT_POD_CIDR),
        node_cidr_mask_size=net_data.get("nodeCIDRMaskSize", 24),
        service_cidr=net_data.get("serviceCIDR", DEFAULT_SERVICE_CIDR),
        node_network=net_data.get("nodeNetwork", DEFAULT_NODE_NETWORK),
    )
    nets: dict[str, ipaddress.IPv4Network] = {}
    for key, value in (
        ("podCIDR", network.pod_cidr),
        ("serviceCIDR", network.service_cidr),
        ("nodeNetwork", network.node_network),
    ):
        try:
            nets[key] = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            diag(
                ("spec", "network", key),
                f"Invalid value: {render(value)}: {exc}",
                "give the network address with its length, e.g. 10.244.0.0/16",
            )
            continue
        if reason := special(nets[key]):
            diag(
                ("spec", "network", key), f"Invalid value: {render(value)}: {reason}", HINT_PRIVATE
            )
    if "serviceCIDR" in nets and nets["serviceCIDR"].prefixlen > 28:
        diag(
            ("spec", "network", "serviceCIDR"),
            f"serviceCIDR {nets['serviceCIDR']} is too small",
            "it needs at least 16 addresses (a /28): the first is default/kubernetes's and the "
            "tenth kube-dns's",
        )
    for (ka, a), (kb, b) in _pairs(nets):
        if a.overlaps(b):
            diag(
                ("spec", "network", kb),
                f"{kb} {b} overlaps {ka} {a}",
                "the pod, service and node networks must be disjoint",
            )
    if "podCIDR" in nets and network.node_cidr_mask_size <= nets["podCIDR"].prefixlen:
        diag(
            ("spec", "network", "nodeCIDRMaskSize"),
            f"nodeCIDRMaskSize {network.node_cidr_mask_size} must be longer than the podCIDR "
            f"prefix /{nets['podCIDR'].prefixlen}",
            "each node takes one slice of the podCIDR",
        )

    nodes_data = spec.get("nodes", 2)
    node_labels: dict[str, dict[str, str]] = {}
    if isinstance(nodes_data, int):
        nodes = tuple(f"node-{i}" for i in range(1, nodes_data + 1))
    else:
        nodes = tuple(n["name"] for n in nodes_data)
        ctx = _Ctx(doc, out, category)
        for i, n in enumerate(nodes_data):
            labels = n.get("labels") or {}
            where: Path = ("spec", "nodes", i, "labels")
            if _validate_labels(ctx, labels, where, dotted(where)) and labels:
                node_labels[n["name"]] = dict(labels)
        seen: set[str] = set()
        for i, n in enumerate(nodes):
            if n in seen:
                diag(
                    ("spec", "nodes", i, "name"), f'Duplicate value: "{n}"', "node names are unique"
                )
            if n in RESERVED_NODE_NAMES:
                diag(
                    ("spec", "nodes", i, "name"),
                    f'"{n}" is reserved by netlab',
                    "pick another node name",
                )
            seen.add(n)
    if "nodeNetwork" in nets and (reason := node_network_room(nets["nodeNetwork"], len(nodes))):
        diag(
            ("spec", "network", "nodeNetwork"),
            f"Invalid value: {render(network.node_network)}: {reason}",
            "use a larger nodeNetwork, e.g. a /24",
        )
    if "podCIDR" in nets:
        slices = 2 ** (network.node_cidr_mask_size - nets["podCIDR"].prefixlen)
        if slices < len(nodes) + 1:
            diag(
                ("spec", "nodes"),
                f"{len(nodes)} nodes do not fit: podCIDR {network.pod_cidr} "
                f"holds {slices - 1} node slices of /{network.node_cidr_mask_size}",
                "use fewer nodes, a larger podCIDR or a longer nodeCIDRMaskSize",
            )

    proxy_data = spec.get("proxy") or {}
    npa = proxy_data.get("nodePortAddresses")
    if isinstance(npa, str):
        npa = [npa]
    for i, value, message in node_port_address_problems(npa or []):
        npa_path: Path = ("spec", "proxy", "nodePortAddresses")
        diag(
            (*npa_path, i) if isinstance(proxy_data["nodePortAddresses"], list) else where,
            f'Invalid value: "{value}": {message}',
            "nodePortAddresses is the word primary, or a list of CIDRs such as "
            "[192.168.56.0/24, 127.0.0.1/32]",
        )
    proxy = ProxySpec(
        mode=proxy_data.get("mode", "iptables"),
        iptables_backend=proxy_data.get("iptablesBackend", "auto"),
        masquerade_all=proxy_data.get("masqueradeAll", False),
        nftables_layout=proxy_data.get("nftablesLayout", "kube-proxy"),
        conntrack_cleanup=proxy_data.get("conntrackCleanup", True),
        node_port_addresses=tuple(npa) if npa else None,  # [] is unset, as in kube-proxy
    )
    cp_data = spec.get("controlPlane") or {}
    control_plane = ControlPlaneSpec(
        node_monitor_grace_period=_seconds(
            doc,
            ("spec", "controlPlane", "nodeMonitorGracePeriod"),
            cp_data.get("nodeMonitorGracePeriod", DEFAULT_NODE_MONITOR_GRACE_PERIOD),
            category,
            out,
        ),
        unreachable_toleration_seconds=_seconds(
            doc,
            ("spec", "controlPlane", "defaultUnreachableTolerationSeconds"),
            cp_data.get(
                "defaultUnreachableTolerationSeconds", DEFAULT_UNREACHABLE_TOLERATION_SECONDS
            ),
            category,
            out,
        ),
    )

    clients: list[ExternalClient] = []
    ext_data = (spec.get("external") or {}).get("clients")
    if ext_data is None:
        if "nodeNetwork" in nets:
            clients = list(default_external_clients(network.node_network))
            if ipaddress.IPv4Address(clients[0].address) >= nets["nodeNetwork"].broadcast_address:
                diag(
                    ("spec", "network", "nodeNetwork"),
                    f"Invalid value: {render(network.node_network)}: has no address for the "
                    f"external client (host {DEFAULT_EXTERNAL_ADDRESS_HOST})",
                    "use a /25 or larger, or give spec.external.clients[0].address",
                )
    else:
        for i, c in enumerate(ext_data):
            address = c.get("address")
            path: Path = ("spec", "external", "clients", i, "address")
            if address is None:
                if i == 0 and "nodeNetwork" in nets:
                    address = str(
                        nets["nodeNetwork"].network_address + DEFAULT_EXTERNAL_ADDRESS_HOST
                    )
                else:
                    diag(
                        path[:-1],
                        "Required value: address",
                        "every external client after the first needs an address",
                    )
                    continue
            try:
                ip = ipaddress.IPv4Address(address)
            except ValueError:
                diag(path, f"Invalid value: {render(address)}: {_IPV4}", _HINT_IPV4)
                continue
            if reason := special(ip) or (
                on_node_network(ip, nets["nodeNetwork"], nodes) if "nodeNetwork" in nets else ""
            ):
                diag(path, f"Invalid value: {render(address)}: {reason}", _HINT_CLIENT)
                continue
            if i == 0 and "nodeNetwork" in nets and ip not in nets["nodeNetwork"]:
                diag(
                    path,
                    f"the first external client must be on the node network {nets['nodeNetwork']}",
                    "it is the router between the lab and the outside",
                )
            for key, net in nets.items():
                if key != "nodeNetwork" and ip in net:
                    diag(
                        path, f"{ip} lies inside {key} {net}", "use an address outside the cluster"
                    )
            clients.append(ExternalClient(c["name"], str(ip)))
        names = [c["name"] for c in ext_data]  # by index in the file, skipped ones included
        for i, n in enumerate(names):
            if n in names[:i]:
                diag(
                    ("spec", "external", "clients", i, "name"),
                    f'Duplicate value: "{n}"',
                    "external client names are unique",
                )

    servers: list[ExternalServer] = []
    taken = {c.address: f"external client {c.name}" for c in clients}
    for i, srv in enumerate((spec.get("external") or {}).get("servers") or []):
        path = ("spec", "external", "servers", i)
        try:
            ip = ipaddress.IPv4Address(srv["address"])
        except ValueError:
            diag(
                (*path, "address"), f"Invalid value: {render(srv['address'])}: {_IPV4}", _HINT_IPV4
            )
            continue
        if reason := special(ip):
            diag((*path, "address"), f"Invalid value: {render(str(ip))}: {reason}", HINT_PRIVATE)
            continue
        for key, net in nets.items():
            if ip in net:
                diag(
                    (*path, "address"),
                    f"{ip} lies inside {key} {net}",
                    "external servers live outside the cluster and the node network",
                )
        if str(ip) in taken and taken[str(ip)].startswith("external client"):
            diag(
                (*path, "address"),
                f"{ip} is {taken[str(ip)]}'s address",
                "give the server an address of its own",
            )
        if any(s.name == srv["name"] for s in servers):
            diag((*path, "name"), f'Duplicate value: "{srv["name"]}"', "server names are unique")
        servers.append(ExternalServer(srv["name"], str(ip), tuple(srv.get("ports") or ())))

    dns_data = spec.get("dns") or {}
    dns = DnsSpec(
        enabled=dns_data.get("enabled", True),
        replicas=dns_data.get("replicas", 2),
        domain=dns_data.get("domain", "cluster.local"),
    )

    pool_given = "pool" in (spec.get("loadBalancer") or {})
    pool = (spec.get("loadBalancer") or {}).get("pool", DEFAULT_LB_POOL)
    try:
        pool_net = ipaddress.IPv4Network(pool, strict=True)
    except ValueError as exc:
        diag(
            ("spec", "loadBalancer", "pool"),
            f"Invalid value: {render(pool)}: {exc}",
            "give the network address with its length, e.g. 192.0.2.0/24",
        )
    else:
        if reason := special(pool_net):
            diag(
                ("spec", "loadBalancer", "pool"),
                f"Invalid value: {render(pool)}: {reason}",
                HINT_PRIVATE,
            )
        for key, net in nets.items():
            if pool_net.overlaps(net):
                diag(
                    ("spec", "loadBalancer", "pool"),
                    f"pool {pool_net} overlaps {key} {net}",
                    "load-balancer addresses must be outside the cluster and node networks",
                )
        # The default pool just skips addresses in use; a pool one asked for must be free.
        for addr, what in [*taken.items(), *((s.address, s.name) for s in servers)]:
            if pool_given and ipaddress.IPv4Address(addr) in pool_net:
                diag(
                    ("spec", "loadBalancer", "pool"),
                    f"pool {pool_net} contains {what}'s address {addr}",
                    "the pool's addresses are given to Services: keep others out of it",
                )

    checks: list[CheckSpec] | None = None
    if "checks" in spec:
        checks = []
        names_seen: set[str] = set()
        places = _check_places(doc)
        for i, c in enumerate(spec["checks"]):
            check = parse_check(doc, ("spec", "checks", i), c, i, category, out, places.get(i))
            if check is None:
                continue
            if check.name in names_seen:
                diag(
                    ("spec", "checks", i, "name"),
                    f'Duplicate value: "{check.name}"',
                    "check names are unique",
                )
            names_seen.add(check.name)
            checks.append(check)
    steps = parse_steps(doc, spec.get("steps") or [], checks or [], category, out)
    if len(out) > before:
        return None
    return LabSpec(
        name=name,
        nodes=nodes,
        network=network,
        proxy=proxy,
        external_clients=tuple(clients),
        client_pods=spec.get("clientPods", True),
        checks=tuple(checks) if checks is not None else None,
        description=meta.get("description", ""),
        external_servers=tuple(servers),
        dns=dns,
        load_balancer_pool=pool,
        control_plane=control_plane,
        steps=tuple(steps),
        node_labels=node_labels,
        feature_gates=tuple(sorted(g for g, on in (spec.get("featureGates") or {}).items() if on)),
    )


def _seconds(doc: Document, path: Path, value: Any, category: str, out: list[Diagnostic]) -> float:
    """A duration written as seconds (``40``) or as Go writes durations (``40s``, ``1m30s``)."""
    seconds = parse_duration(value)
    if seconds is None:
        out.append(
            doc.diag(
                path,
                f"invalid duration {value!r}",
                hint="seconds, or a duration such as 40s, 500ms or 1m30s",
                category=category,
            )
        )
        return 0.0
    return seconds


def node_port_address_problems(setting: list[str]) -> list[tuple[int, str, str]]:
    """kube-proxy's validateKubeProxyNodePortAddress: ``(index, value, message)`` per bad entry.
    netlab labs are IPv4: an IPv6 CIDR matches no node address, so it is refused too."""
    out: list[tuple[int, str, str]] = []
    for i, value in enumerate(setting):
        if value == "primary":
            if i != 0 or len(setting) != 1:
                out.append((i, value, "can't use both 'primary' and CIDRs"))
            break
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            out.append((i, value, "must be a valid CIDR"))
            continue
        if "/" not in value:
            out.append((i, value, "must be a valid CIDR"))
        elif net.version != 4:
            out.append((i, value, "must be an IPv4 CIDR: netlab labs are IPv4 only"))
    return out


def _pairs(d: dict[str, ipaddress.IPv4Network]) -> list[tuple[tuple[str, Any], tuple[str, Any]]]:
    items = list(d.items())
    return [(items[i], items[j]) for i in range(len(items)) for j in range(i + 1, len(items))]


def _check_places(doc: Document) -> dict[int, dict[str, tuple[int, int]]]:
    """Per check (by index), where each of its values was written, by path inside the check."""
    out: dict[int, dict[str, tuple[int, int]]] = {}
    for path, pos in doc.values.items():
        if len(path) > 3 and path[:2] == ("spec", "checks") and isinstance(path[2], int):
            out.setdefault(path[2], {})[dotted(path[3:])] = pos
    return out
