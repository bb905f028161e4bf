"""The tables ``kubectl get`` prints for Pods, Services and EndpointSlices, from a lab's state.

The API server turns objects into tables itself (kubernetes/kubernetes
``pkg/printers/internalversion/printers.go``, v1.33: ``printPod``, ``printService``,
``printEndpointSlice``), and kubectl lays them out; netlab's control plane in miniature does the
same from its desired state, so ``netlab get svc`` reads like ``kubectl get svc``. Columns of
priority 1 appear with ``-o wide`` only. Ages follow ``HumanDuration`` of
``staging/src/k8s.io/apimachinery/pkg/util/duration/duration.go``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from netlab.cluster.state import ClusterState, EndpointSlice, PodInfo
from netlab.scenario.k8s import Service

LOAD_BALANCER_WIDTH = 16  # loadBalancerWidth: the EXTERNAL-IP cell is clipped to it unless wide
LIST_MAX = 3  # formatDiscoveryPorts / formatDiscoveryEndpoints show three, then "+ N more..."


@dataclass(frozen=True)
class Column:
    """A column as upstream defines it (``Cluster-IP``); kubectl upper-cases it for the header."""

    name: str
    priority: int = 0  # 1: only with -o wide


@dataclass
class Table:
    """Rows of cells under their columns, like a ``meta.k8s.io/v1`` Table."""

    columns: list[Column]
    rows: list[list[str]] = field(default_factory=list)

    def header(self, wide: bool = False) -> list[str]:
        return [c.name.upper() for c in self.columns if wide or c.priority == 0]

    def cells(self, wide: bool = False) -> list[list[str]]:
        keep = [i for i, c in enumerate(self.columns) if wide or c.priority == 0]
        return [[row[i] for i in keep] for row in self.rows]


POD_COLUMNS = [
    Column("Name"),
    Column("Ready"),
    Column("Status"),
    Column("Restarts"),
    Column("Age"),
    Column("IP", 1),
    Column("Node", 1),
    Column("Nominated Node", 1),
    Column("Readiness Gates", 1),
]
SERVICE_COLUMNS = [
    Column("Name"),
    Column("Type"),
    Column("Cluster-IP"),
    Column("External-IP"),
    Column("Port(s)"),
    Column("Age"),
    Column("Selector", 1),
]
ENDPOINT_SLICE_COLUMNS = [
    Column("Name"),
    Column("AddressType"),
    Column("Ports"),
    Column("Endpoints"),
    Column("Age"),
]


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration``: about two or three significant figures of a duration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60 * 2:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def format_labels(labels: dict[str, str] | None) -> str:
    """``labels.FormatLabels``: ``k=v`` sorted by key, ``<none>`` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def pod_row(pod: PodInfo, age: str) -> list[str]:
    """``printPod`` for a pod the agent serves: every container running, none restarted;
    ``Terminating`` once it is being deleted."""
    total = len(pod.containers) or 1
    ready = total if pod.ready else 0
    return [
        pod.name,
        f"{ready}/{total}",
        "Terminating" if pod.terminating else "Running",
        "0",
        age,
        pod.ip or "<none>",
        pod.node or "<none>",
    ]


def pod_table(pods: Sequence[PodInfo], age: Callable[[object], str]) -> Table:
    rows = [[*pod_row(p, age(p)), "<none>", "<none>"] for p in pods]
    return Table(POD_COLUMNS, rows)


def service_external_ip(svc: Service, wide: bool) -> str:
    """``getServiceExternalIP``."""
    if svc.type in ("ClusterIP", "NodePort"):
        return ",".join(svc.external_ips) if svc.external_ips else "<none>"
    if svc.type == "LoadBalancer":
        lb = ",".join(sorted(set(svc.load_balancer_ingress)))
        if not wide and len(lb) > LOAD_BALANCER_WIDTH:
            lb = lb[: LOAD_BALANCER_WIDTH - 3] + "..."
        if svc.external_ips:
            return ",".join([*(lb.split(",") if lb else []), *svc.external_ips])
        return lb or "<pending>"
    if svc.type == "ExternalName":
        return svc.external_name
    return "<unknown>"


def port_string(svc: Service) -> str:
    """``makePortString``: ``port/PROTO`` or ``port:nodePort/PROTO``, comma-separated."""
    pieces = [
        f"{p.port}:{p.node_port}/{p.protocol}" if p.node_port > 0 else f"{p.port}/{p.protocol}"
        for p in svc.ports
    ]
    return ",".join(pieces) or "<none>"


def service_table(services: Sequence[Service], age: Callable[[object], str]) -> Table:
    """``printService``; both the clipped and the wide EXTERNAL-IP are kept, one per mode."""
    rows = []
    for s in services:
        rows.append(
            [
                s.meta.name,
                s.type,
                s.cluster_ip or "<none>",
                service_external_ip(s, wide=False),
                port_string(s),
                age(s),
                format_labels(s.selector),
            ]
        )
    return Table(SERVICE_COLUMNS, rows)


def _list_with_more(items: list[str]) -> str:
    """``listWithMoreString`` after ``formatDiscovery*``: three, then ``+ N more...``."""
    shown = ",".join(items[:LIST_MAX])
    if len(items) > LIST_MAX:
        return f"{shown} + {len(items) - LIST_MAX} more..."
    return shown or "<unset>"


def endpoint_slice_row(es: EndpointSlice, age: str) -> list[str]:
    """``printEndpointSlice``: every endpoint's address, whatever its conditions."""
    ports = [str(p.port) if p.port else (p.name or "*") for p in es.ports]
    addresses = [e.address for e in es.endpoints]
    return [es.name, "IPv4", _list_with_more(ports), _list_with_more(addresses), age]


def endpoint_slice_table(slices: Sequence[EndpointSlice], age: Callable[[object], str]) -> Table:
    return Table(ENDPOINT_SLICE_COLUMNS, [endpoint_slice_row(s, age(s)) for s in slices])


def with_namespace(table: Table, namespaces: Sequence[str]) -> Table:
    """``--all-namespaces``: kubectl puts a NAMESPACE column first."""
    return Table(
        [Column("Namespace"), *table.columns],
        [[ns, *row] for ns, row in zip(namespaces, table.rows, strict=True)],
    )


RESOURCES: dict[str, str] = {
    # kubectl's names, plural and short forms for the three kinds a lab has
    "pod": "pods",
    "pods": "pods",
    "po": "pods",
    "service": "services",
    "services": "services",
    "svc": "services",
    "endpointslice": "endpointslices",
    "endpointslices": "endpointslices",
}


def objects(state: ClusterState, resource: str, namespace: str | None) -> list[object]:
    """The objects of one kind, in one namespace (``None``: all), sorted as the API lists them
    (by namespace, then name)."""
    kind = RESOURCES[resource]
    found: list[tuple[str, str, object]]
    if kind == "pods":
        found = [(p.namespace, p.name, p) for p in state.pods]
    elif kind == "services":
        found = [(s.meta.namespace, s.meta.name, s) for s in state.services]
    else:
        found = [(s.namespace, s.name, s) for s in state.slices]
    return [o for ns, _, o in sorted(found, key=lambda t: t[:2]) if namespace in (None, ns)]


def namespace_of(obj: object) -> str:
    if isinstance(obj, PodInfo | EndpointSlice):
        return obj.namespace
    assert isinstance(obj, Service)
    return obj.meta.namespace


def table(
    resource: str,
    items: Sequence[object],
    age: Callable[[object], str],
    *,
    all_namespaces: bool = False,
    wide: bool = False,
) -> Table:
    """The table of ``items`` (all of kind ``resource``), as ``kubectl get`` shows it."""
    kind = RESOURCES[resource]
    if kind == "pods":
        out = pod_table([i for i in items if isinstance(i, PodInfo)], age)
    elif kind == "services":
        svcs = [i for i in items if isinstance(i, Service)]
        out = service_table(svcs, age)
        if wide:  # the EXTERNAL-IP cell is not clipped in wide output
            for row, s in zip(out.rows, svcs, strict=True):
                row[3] = service_external_ip(s, wide=True)
    else:
        out = endpoint_slice_table([i for i in items if isinstance(i, EndpointSlice)], age)
    if all_namespaces:
        out = with_namespace(out, [namespace_of(i) for i in items])
    return out
