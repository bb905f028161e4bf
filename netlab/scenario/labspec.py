"""netlab's own document: typed form, defaults, and validation against :mod:`labschema`."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Any

import jsonschema

from netlab.errors import Diagnostic
from netlab.scenario.labschema import LAB_API_VERSION, SCHEMA
from netlab.scenario.yamlpos import Document, Path, dotted

DEFAULT_POD_CIDR = "10.244.0.0/16"  # kubeadm's usual --pod-network-cidr (flannel)
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"  # kubeadm DefaultServicesSubnet
DEFAULT_NODE_NETWORK = "192.168.56.0/24"
DEFAULT_EXTERNAL_ADDRESS_HOST = 100  # external client: .100 on the node network
DEFAULT_LB_POOL = "192.0.2.0/24"  # TEST-NET-1, as in the Kubernetes docs' LoadBalancer examples
CLIENT_NAMESPACE = "netlab"  # namespace of the client pods netlab adds on every node
RESERVED_NODE_NAMES = {"fabric", "external"}


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


@dataclass(frozen=True)
class ExternalClient:
    name: str
    address: str


@dataclass(frozen=True)
class Source:
    """Where a probe runs."""

    kind: str  # "pod" | "node" | "external"
    name: str = ""  # pod, node or external client name ("" = the first external client)
    namespace: str = ""

    def __str__(self) -> str:
        if self.kind == "external":
            return f"external/{self.name}" if self.name else "external"
        if self.kind == "pod" and self.namespace:
            return f"pod/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Destination:
    """What a probe dials: a Service (resolved at run time) or a raw address."""

    service: str = ""
    namespace: str = ""  # "" = same as the client pod's, else "default"
    port: int | str | None = None
    via: str = "clusterIP"
    node: str = ""
    address: str = ""
    name: str = ""  # a DNS name resolved from the source, then dialled

    def __str__(self) -> str:
        if self.name:
            return f"{self.name}:{self.port}"
        if self.service:
            ns = f"{self.namespace}/" if self.namespace else ""
            port = f":{self.port}" if self.port is not None else ""
            base = f"service/{ns}{self.service}{port}"
            if self.via == "nodePort":
                return f"{base} via nodePort on {self.node or 'the first node'}"
            return base if self.via == "clusterIP" else f"{base} via {self.via}"
        if self.node:
            return f"node/{self.node}:{self.port}"
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class Expect:
    result: str = "connected"
    endpoints: str | tuple[str, ...] | None = None  # None = "all" when connected, else "none"
    source: str | None = None
    dnat: bool | None = None  # seen in conntrack on the client's node
    # dns checks
    rcode: str = "NOERROR"
    answers: tuple[str, ...] | None = None
    cname: str | None = None


@dataclass(frozen=True)
class Origin:
    """Where something was written, for errors found after parsing (e.g. unknown pod names)."""

    file: str
    line: int
    col: int
    path: str


@dataclass(frozen=True)
class CheckSpec:
    name: str
    source: Source
    destination: Destination
    kind: str = "connect"
    protocol: str | None = None  # None = the Service port's protocol (TCP for raw addresses)
    connections: int | None = None  # None = enough to see every endpoint (see checks.py)
    timeout: float = 1.0
    expect: Expect = field(default_factory=Expect)
    description: str = ""
    derived: bool = False
    origin: Origin | None = None
    # dns checks
    query: str = ""
    qtype: str = "A"
    search: bool = True
    # Where proxy modes genuinely differ: the expectation for a mode, and why it differs.
    mode_expect: dict[str, Expect] = field(default_factory=dict)
    mode_why: dict[str, str] = field(default_factory=dict)

    def for_mode(self, mode: str) -> CheckSpec:
        """This check as it applies under ``mode``."""
        if mode not in self.mode_expect:
            return self
        return replace(self, expect=self.mode_expect[mode])


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


def default_external_clients(node_network: str) -> tuple[ExternalClient, ...]:
    net = ipaddress.ip_network(node_network, strict=False)
    return (ExternalClient("external", str(net.network_address + DEFAULT_EXTERNAL_ADDRESS_HOST)),)


def default_lab(name: str) -> LabSpec:
    return LabSpec(name=name, external_clients=default_external_clients(DEFAULT_NODE_NETWORK))


def is_lab_document(data: Any) -> bool:
    return isinstance(data, dict) and data.get("apiVersion") == LAB_API_VERSION


_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def parse_lab(doc: Document, default_name: str, out: list[Diagnostic]) -> LabSpec | None:
    """Validate the netlab document against the schema, then its semantics; return the spec."""
    before = len(out)
    for err in sorted(_VALIDATOR.iter_errors(doc.data), key=lambda e: list(e.absolute_path)):
        _schema_error(doc, err, out)
    if len(out) > before:
        return None
    data = doc.data
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
                f"invalid prefix {value!r}: {exc}",
                "give the network address with its length, e.g. 10.244.0.0/16",
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
    if isinstance(nodes_data, int):
        nodes = tuple(f"node-{i}" for i in range(1, nodes_data + 1))
    else:
        nodes = tuple(n["name"] for n in nodes_data)
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
    proxy = ProxySpec(
        mode=proxy_data.get("mode", "iptables"),
        iptables_backend=proxy_data.get("iptablesBackend", "auto"),
        masquerade_all=proxy_data.get("masqueradeAll", False),
        nftables_layout=proxy_data.get("nftablesLayout", "kube-proxy"),
    )

    clients: list[ExternalClient] = []
    ext_data = (spec.get("external") or {}).get("clients")
    if ext_data is None:
        if "nodeNetwork" in nets:
            clients = list(default_external_clients(network.node_network))
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
                diag(path, f'Invalid value: "{address}": must be a valid IPv4 address')
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
                diag(("spec", "external", "clients", i, "name"), f'Duplicate value: "{n}"')

    servers: list[ExternalServer] = []
    taken = {c.address: f"external client {c.name}" for c in clients}
    for i, srv in enumerate((spec.get("external") or {}).get("servers") or []):
        path = ("spec", "external", "servers", i)
        try:
            ip = ipaddress.IPv4Address(srv["address"])
        except ValueError:
            diag(
                (*path, "address"),
                f'Invalid value: "{srv["address"]}": must be a valid IPv4 address',
            )
            continue
        for key, net in nets.items():
            if ip in net:
                diag(
                    (*path, "address"),
                    f"{ip} lies inside {key} {net}",
                    "external servers live outside the cluster and the node network",
                )
        if str(ip) in taken and taken[str(ip)].startswith("external client"):
            diag((*path, "address"), f"{ip} is {taken[str(ip)]}'s address")
        if any(s.name == srv["name"] for s in servers):
            diag((*path, "name"), f'Duplicate value: "{srv["name"]}"')
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
        diag(("spec", "loadBalancer", "pool"), f"invalid prefix {pool!r}: {exc}")
    else:
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
                )

    checks: list[CheckSpec] | None = None
    if "checks" in spec:
        checks = []
        names_seen: set[str] = set()
        for i, c in enumerate(spec["checks"]):
            check = _parse_check(doc, ("spec", "checks", i), c, i, category, out)
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
    )


def _pairs(d: dict[str, ipaddress.IPv4Network]) -> list[tuple[tuple[str, Any], tuple[str, Any]]]:
    items = list(d.items())
    return [(items[i], items[j]) for i in range(len(items)) for j in range(i + 1, len(items))]


_SERVICE_STRING = re.compile(
    r"^service/(?:(?P<ns>[^/\s:]+)/)?(?P<name>[^/\s:]+)(?::(?P<port>\S+))?$"
)
_ADDRESS_STRING = re.compile(r"^(?P<ip>\d{1,3}(?:\.\d{1,3}){3}):(?P<port>\d+)$")
_NODE_STRING = re.compile(r"^node/(?P<node>[^\s:/]+):(?P<port>\d+)$")


def parse_source(text: str) -> Source:
    """``pod/NAME``, ``pod/NS/NAME``, ``node/NODE``, ``external``, ``external/CLIENT``."""
    kind, _, rest = text.partition("/")
    if kind == "pod":
        ns, _, name = rest.rpartition("/")
        return Source("pod", name, ns)
    return Source(kind, rest)


def parse_destination(value: str | dict[str, Any]) -> Destination:
    if isinstance(value, dict):
        service = value.get("service", "")
        namespace = value.get("namespace", "")
        if "/" in service:
            namespace, _, service = service.partition("/")
        port = value.get("port")
        return Destination(
            service=service,
            namespace=namespace,
            port=_port_value(port) if port is not None else None,
            via=value.get("via", "clusterIP" if service else ""),
            node=value.get("node", ""),
            address=value.get("address", ""),
            name=value.get("name", ""),
        )
    if m := _SERVICE_STRING.match(value):
        port = m.group("port")
        return Destination(
            service=m.group("name"),
            namespace=m.group("ns") or "",
            port=_port_value(port) if port else None,
        )
    if m := _ADDRESS_STRING.match(value):
        return Destination(address=m.group("ip"), port=int(m.group("port")), via="")
    if m := _NODE_STRING.match(value):
        return Destination(node=m.group("node"), port=int(m.group("port")), via="")
    raise ValueError(value)


def _port_value(port: int | str) -> int | str:
    return int(port) if isinstance(port, str) and port.isdigit() else port


def _parse_expect(
    doc: Document,
    path: Path,
    data: dict[str, Any],
    kind: str,
    category: str,
    out: list[Diagnostic],
    base: Expect | None = None,
) -> Expect:
    """An ``expect`` mapping; with ``base``, a per-mode override of the fields it names."""
    endpoints = data.get("endpoints")
    answers = data.get("answers")
    values: dict[str, Any] = {}
    if "result" in data:
        values["result"] = data["result"]
    if "endpoints" in data:
        values["endpoints"] = tuple(endpoints) if isinstance(endpoints, list) else endpoints
    for key in ("source", "rcode", "cname", "dnat"):
        if key in data:
            values[key] = data[key]
    if "answers" in data:
        values["answers"] = tuple(answers or ())
    expect = replace(base or Expect(), **values)
    if base is not None and "result" in data and data["result"] != "connected":
        # An override to a failure drops what only a connection can show.
        expect = replace(expect, endpoints=values.get("endpoints"), source=values.get("source"))

    def diag(key: str, message: str, hint: str) -> None:
        out.append(doc.diag((*path, key), message, category=category, hint=hint))

    if kind == "dns":
        for key in ("result", "endpoints", "source", "dnat"):
            if key in data:
                diag(
                    key,
                    f"{key} applies to connect checks",
                    "a dns check expects rcode, answers or cname",
                )
        return expect
    for key in ("rcode", "answers", "cname"):
        if key in data:
            diag(key, f"{key} applies to dns checks", "use kind: dns")
    if expect.result != "connected" and expect.endpoints not in (None, "none"):
        diag(
            "endpoints",
            f"a check expecting {expect.result} reaches no endpoints",
            "drop endpoints or use endpoints: none",
        )
    if expect.result != "connected" and expect.source is not None:
        diag("source", f"a check expecting {expect.result} sees no source address", "drop source")
    if kind == "capture" and expect.result != "connected":
        diag(
            "result", "a capture check needs a connection", "use kind: connect for refused/timeout"
        )
    return expect


def _check_destination(
    doc: Document, path: Path, data: dict[str, Any], category: str, out: list[Diagnostic]
) -> Destination | None:
    def diag(where: Path, message: str, hint: str = "") -> None:
        out.append(doc.diag((*path, *where), message, category=category, hint=hint))

    if "to" not in data:
        diag((), "Required value: to", "say what the probe dials")
        return None
    try:
        dest = parse_destination(data["to"])
    except ValueError:  # pragma: no cover - the schema pattern already rejects these
        diag(("to",), "unrecognised destination")
        return None
    if isinstance(data["to"], dict):
        d = data["to"]
        targets = [k for k in ("service", "address", "name") if d.get(k)]
        if not targets and not dest.node:
            diag(
                ("to",),
                "Required value: service, address, name or node",
                "say what the probe dials",
            )
        if len(targets) > 1:
            diag(("to", targets[1]), f"{targets[0]} and {targets[1]} exclude each other")
        if not dest.service and "via" in d:
            diag(("to", "via"), "via applies to a service only")
        if not dest.service and dest.port is None:
            diag(("to",), "Required value: port", "a raw address or a name needs a port number")
        if not dest.service and isinstance(dest.port, str):
            diag(("to", "port"), "a raw destination needs a port number")
        if dest.node and dest.service and dest.via != "nodePort":
            diag(("to", "node"), "node applies with via: nodePort", "add via: nodePort")
        if dest.node and (dest.address or dest.name):
            diag(("to", "node"), "node applies to a service or a raw port")
    return dest


def _parse_check(
    doc: Document,
    path: Path,
    data: dict[str, Any],
    index: int,
    category: str,
    out: list[Diagnostic],
) -> CheckSpec | None:
    before = len(out)
    source = parse_source(data["from"])
    kind = data.get("kind", "connect")
    dest = Destination()
    if kind == "dns":
        if "query" not in data:
            out.append(
                doc.diag(
                    path,
                    "Required value: query",
                    category=category,
                    hint="a dns check looks a name up, e.g. query: web",
                )
            )
        for key in ("to", "protocol", "connections"):
            if key in data:
                out.append(
                    doc.diag(
                        (*path, key),
                        f"{key} does not apply to dns checks",
                        category=category,
                        hint="a dns check has query and type",
                    )
                )
    else:
        for key in ("query", "type", "search"):
            if key in data:
                out.append(
                    doc.diag(
                        (*path, key),
                        f"{key} applies to dns checks",
                        category=category,
                        hint="add kind: dns",
                    )
                )
        parsed = _check_destination(doc, path, data, category, out)
        dest = parsed or dest
    expect = _parse_expect(doc, (*path, "expect"), data.get("expect") or {}, kind, category, out)
    mode_expect: dict[str, Expect] = {}
    mode_why: dict[str, str] = {}
    for mode, override in (data.get("modes") or {}).items():
        mode_expect[mode] = _parse_expect(
            doc,
            (*path, "modes", mode, "expect"),
            override["expect"],
            kind,
            category,
            out,
            base=expect,
        )
        if override.get("why"):
            mode_why[mode] = override["why"]
    if len(out) > before:
        return None
    name = data.get("name") or f"check-{index + 1}"
    line, col = doc.where(path)
    return CheckSpec(
        name=name,
        source=source,
        destination=dest,
        kind=kind,
        protocol=data.get("protocol"),
        connections=data.get("connections"),
        timeout=float(data.get("timeout", 1.0 if kind != "dns" else 2.0)),
        expect=expect,
        description=data.get("description", ""),
        origin=Origin(doc.file, line, col, dotted(path)),
        query=data.get("query", ""),
        qtype=data.get("type", "A"),
        search=data.get("search", True),
        mode_expect=mode_expect,
        mode_why=mode_why,
    )


def _schema_error(doc: Document, err: jsonschema.ValidationError, out: list[Diagnostic]) -> None:
    """Turn one jsonschema error into a positioned diagnostic with the schema's hint."""
    path: Path = tuple(err.absolute_path)
    message = err.message
    schema: dict[str, Any] = err.schema if isinstance(err.schema, dict) else {}
    instance: Any = err.instance
    validator_value: Any = err.validator_value
    if err.validator == "additionalProperties":
        extra = sorted(set(instance) - set(schema.get("properties", {})))
        allowed = ", ".join(sorted(schema.get("properties", {})))
        for name in extra:
            out.append(
                doc.diag(
                    (*path, name),
                    f'unknown field "{name}"',
                    key=True,
                    hint=f"fields allowed here: {allowed}",
                    category="Lab",
                )
            )
        return
    if err.validator == "oneOf":
        # A mapping given where a mapping is one of the choices: report what is wrong inside it
        # (e.g. an unknown field), not that no choice matched.
        inner = [e for e in err.context or [] if e.validator != "type"]
        if isinstance(instance, dict) and inner:
            _schema_error(doc, jsonschema.exceptions.best_match(inner), out)
            return
        message = f"invalid value {instance!r}"
    if err.validator == "enum":
        allowed = ", ".join(str(v) for v in validator_value)
        message = f"Unsupported value: {instance!r}: supported values: {allowed}"
    if err.validator == "const":
        message = f"must be {validator_value!r}"
    if err.validator == "required":
        missing = [k for k in validator_value if k not in instance]
        message = "Required value: " + ", ".join(missing)
    hint = str(schema.get("x-hint", ""))
    if not hint and err.parent is not None and isinstance(err.parent.schema, dict):
        hint = err.parent.schema.get("x-hint", "")
    if not hint:
        hint = str(schema.get("description", ""))
    out.append(doc.diag(path, message, hint=hint, category="Lab"))
