"""Checks as a scenario writes them: one type per kind (connect, capture, dns), parsed from the
Lab document's ``spec.checks`` with every problem located.

What a check *means* against a cluster (addresses, endpoints, the verdict) is :mod:`netlab.checks`;
this module only holds what the user wrote, typed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from netlab.errors import Diagnostic
from netlab.scenario.yamlpos import Document, Path, dotted


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


# "failed": any outcome but connected (refused, timeout, unreachable, unresolved, closed...).
FAILED = "failed"


@dataclass(frozen=True)
class ConnectExpect:
    """What connections must do: their outcome, who answers, and what the backends saw."""

    result: str = "connected"
    endpoints: str | tuple[str, ...] | None = None  # None = "all" when connected, else "none"
    # client | masqueraded | snat-if-remote | an address every backend must see
    source: str | None = None
    dnat: bool | None = None  # seen in conntrack on the client's node
    # One endpoint, whichever, for every connection (sessionAffinity ClientIP); None = what
    # the Service's affinity promises this client.
    sticky: bool | None = None


@dataclass(frozen=True)
class HttpExpect(ConnectExpect):
    """What HTTP answers must be: a status code and a piece of the body, from any server."""

    status: int | None = None  # None = 200 when connected
    body: str | None = None  # a substring every answer's body must contain


# What backends may see as the client (ConnectExpect.source), besides a literal address:
# the client's own address; a translated one; or Cilium's NodePort behaviour, the client's own
# at backends on the node that took the connection and that node's elsewhere.
SNAT_IF_REMOTE = "snat-if-remote"
NAMED_SOURCES = ("client", "masqueraded", SNAT_IF_REMOTE)


@dataclass(frozen=True)
class DnsExpect:
    """What one lookup must answer."""

    rcode: str = "NOERROR"
    answers: tuple[str, ...] | None = None
    cname: str | None = None


@dataclass(frozen=True)
class Origin:
    """Where a check was written, for errors found after parsing (e.g. unknown pod names): its
    own place, and the place of each of its values, so such an error points at the very field
    (``to.port``, ``expect.endpoints[1]``)."""

    file: str
    line: int
    col: int
    path: str
    # a value's path inside the check ("to.port", "expect.endpoints[1]") -> (line, col)
    places: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False)

    def at(self, field_path: str) -> tuple[int, int, str]:
        """(line, col, full dotted path) of ``field_path``, else of its nearest written parent."""
        probe = field_path
        while probe:
            if probe in self.places:
                line, col = self.places[probe]
                return line, col, f"{self.path}.{probe}"
            probe = probe[: max(probe.rfind("."), probe.rfind("["), 0)]
        # Written nowhere we know of (a check made in code): the field's own path.
        return self.line, self.col, f"{self.path}.{field_path}" if field_path else self.path


@dataclass(frozen=True, kw_only=True)
class ConnectCheck:
    """Connections from a source to a destination, judged by who answered and how."""

    name: str
    source: Source
    destination: Destination
    kind: str = "connect"
    protocol: str | None = None  # None = the Service port's protocol (TCP for raw addresses)
    connections: int | None = None  # None = enough to see every endpoint (see netlab.checks)
    timeout: float = 1.0
    expect: ConnectExpect = field(default_factory=ConnectExpect)
    description: str = ""
    derived: bool = False
    origin: Origin | None = None
    # Where proxy modes genuinely differ: the expectation for a mode, and why it differs.
    mode_expect: dict[str, ConnectExpect] = field(default_factory=dict)
    mode_why: dict[str, str] = field(default_factory=dict)
    # A connection kept open under this name for checks of later steps (``hold``), or such a
    # held connection used again instead of a new one (``connection``).
    hold: str = ""
    connection: str = ""

    def for_mode(self, mode: str) -> ConnectCheck:
        """This check as it applies under ``mode``."""
        if mode not in self.mode_expect:
            return self
        return replace(self, expect=self.mode_expect[mode])


@dataclass(frozen=True, kw_only=True)
class CaptureCheck(ConnectCheck):
    """A connect check that also captures inside the backends: each answered connection's SYN
    must arrive already DNATed to the pod that answered."""

    kind: str = "capture"

    def for_mode(self, mode: str) -> CaptureCheck:
        if mode not in self.mode_expect:
            return self
        return replace(self, expect=self.mode_expect[mode])


@dataclass(frozen=True, kw_only=True)
class DnsCheck:
    """One DNS lookup from a source, as its resolver would make it."""

    name: str
    source: Source
    query: str
    kind: str = "dns"
    qtype: str = "A"
    search: bool = True
    timeout: float = 2.0
    expect: DnsExpect = field(default_factory=DnsExpect)
    description: str = ""
    derived: bool = False
    origin: Origin | None = None
    mode_expect: dict[str, DnsExpect] = field(default_factory=dict)
    mode_why: dict[str, str] = field(default_factory=dict)

    def for_mode(self, mode: str) -> DnsCheck:
        if mode not in self.mode_expect:
            return self
        return replace(self, expect=self.mode_expect[mode])


@dataclass(frozen=True, kw_only=True)
class HttpCheck(ConnectCheck):
    """HTTP GETs from a source to any server (a pod, kube-proxy's health or metrics port, a
    node's port), judged by the status code and the body of each answer."""

    kind: str = "http"
    path: str = "/"
    expect: HttpExpect = field(default_factory=HttpExpect)
    mode_expect: dict[str, HttpExpect] = field(default_factory=dict)  # type: ignore[assignment]

    def for_mode(self, mode: str) -> HttpCheck:
        if mode not in self.mode_expect:
            return self
        return replace(self, expect=self.mode_expect[mode])


CheckSpec = ConnectCheck | CaptureCheck | DnsCheck | HttpCheck
CHECK_KINDS = ("connect", "capture", "dns", "http")


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
    where = ("to", "port") if isinstance(data["to"], dict) else ("to",)
    if isinstance(dest.port, int) and not 1 <= dest.port <= 65535:
        diag(
            where,
            f"Invalid value: {dest.port}: must be between 1 and 65535, inclusive",
            "a port number is 1-65535",
        )
    if dest.address:
        try:
            ipaddress.IPv4Address(dest.address)
        except ValueError:
            diag(
                ("to", "address") if isinstance(data["to"], dict) else ("to",),
                f'Invalid value: "{dest.address}": must be a valid IPv4 address',
                "write four numbers 0-255, e.g. 10.96.0.10",
            )
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
            diag(
                ("to", targets[1]),
                f"{targets[0]} and {targets[1]} exclude each other",
                "a check dials one thing: keep one of them",
            )
        if not dest.service and "via" in d:
            diag(("to", "via"), "via applies to a service only", "remove via, or add service:")
        if not dest.service and dest.port is None:
            diag(("to",), "Required value: port", "a raw address or a name needs a port number")
        if not dest.service and isinstance(dest.port, str):
            diag(("to", "port"), "a raw destination needs a port number", "write port: 80")
        if dest.node and dest.service and dest.via != "nodePort":
            diag(("to", "node"), "node applies with via: nodePort", "add via: nodePort")
        if dest.node and (dest.address or dest.name):
            diag(
                ("to", "node"),
                "node applies to a service or a raw port",
                "remove node, or dial {node: NODE, port: P}",
            )
    return dest


_DNS_ONLY = ("rcode", "answers", "cname")
_HTTP_ONLY = ("status", "body")
_CONNECT_ONLY = ("result", "endpoints", "source", "dnat", "sticky", *_HTTP_ONLY)


def _parse_connect_expect(
    doc: Document,
    path: Path,
    data: dict[str, Any],
    kind: str,
    category: str,
    out: list[Diagnostic],
    base: ConnectExpect | None = None,
) -> ConnectExpect:
    """A connect or capture check's ``expect``; with ``base``, a per-mode override of the fields
    it names."""

    def diag(key: str, message: str, hint: str) -> None:
        out.append(doc.diag((*path, key), message, category=category, hint=hint))

    values: dict[str, Any] = {}
    if "result" in data:
        values["result"] = data["result"]
    if "endpoints" in data:
        endpoints = data["endpoints"]
        values["endpoints"] = tuple(endpoints) if isinstance(endpoints, list) else endpoints
    for key in ("source", "dnat", "sticky"):
        if key in data:
            values[key] = data[key]
    if kind == "http":
        values.update({k: data[k] for k in _HTTP_ONLY if k in data})
    expect = replace(base or (HttpExpect() if kind == "http" else ConnectExpect()), **values)
    if base is not None and "result" in data and data["result"] != "connected":
        # An override to a failure drops what only a connection can show.
        expect = replace(
            expect,
            endpoints=values.get("endpoints"),
            source=values.get("source"),
            sticky=values.get("sticky"),
        )
        if isinstance(expect, HttpExpect):
            expect = replace(expect, status=values.get("status"), body=values.get("body"))
    for key in _DNS_ONLY:
        if key in data:
            diag(key, f"{key} applies to dns checks", "use kind: dns")
    if kind == "http":
        for key in ("endpoints", "source", "dnat", "sticky"):
            if key in data:
                diag(
                    key,
                    f"{key} applies to connect checks",
                    "an http check expects result, status and body: any server may answer",
                )
    else:
        for key in _HTTP_ONLY:
            if key in data:
                diag(key, f"{key} applies to http checks", "use kind: http")
    if isinstance(expect, HttpExpect) and expect.result != "connected":
        for key in _HTTP_ONLY:
            if getattr(expect, key) is not None:
                diag(key, f"a check expecting {expect.result} gets no HTTP answer", f"drop {key}")
    if expect.result != "connected" and expect.sticky is not None:
        diag("sticky", f"a check expecting {expect.result} reaches no endpoint", "drop sticky")
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


def _parse_dns_expect(
    doc: Document,
    path: Path,
    data: dict[str, Any],
    category: str,
    out: list[Diagnostic],
    base: DnsExpect | None = None,
) -> DnsExpect:
    """A dns check's ``expect``; with ``base``, a per-mode override of the fields it names."""
    values: dict[str, Any] = {k: data[k] for k in ("rcode", "cname") if k in data}
    if "answers" in data:
        values["answers"] = tuple(data["answers"] or ())
    _refuse_keys(
        doc,
        path,
        data,
        _CONNECT_ONLY,
        "{} applies to connect checks",
        "a dns check expects rcode, answers or cname",
        category,
        out,
    )
    return replace(base or DnsExpect(), **values)


def _refuse_keys(
    doc: Document,
    path: Path,
    data: dict[str, Any],
    keys: Iterable[str],
    message: str,
    hint: str,
    category: str,
    out: list[Diagnostic],
) -> None:
    """One diagnostic per key of ``keys`` present in ``data`` that this kind of check does not
    take, at the key's own position; ``message`` has ``{}`` where the key goes."""
    for key in keys:
        if key in data:
            out.append(doc.diag((*path, key), message.format(key), category=category, hint=hint))


def parse_check(
    doc: Document,
    path: Path,
    data: dict[str, Any],
    index: int,
    category: str,
    out: list[Diagnostic],
    places: dict[str, tuple[int, int]] | None = None,
) -> CheckSpec | None:
    """One entry of ``spec.checks`` (already schema-valid), as its kind's type; ``places`` are
    the positions of its values (see :class:`Origin`)."""
    before = len(out)
    source = parse_source(data.get("from", "external"))
    kind = data.get("kind", "connect")
    expect_data = data.get("expect") or {}
    modes = data.get("modes") or {}
    mode_why = {mode: o["why"] for mode, o in modes.items() if o.get("why")}
    name = data.get("name") or f"check-{index + 1}"
    line, col = doc.where(path)
    origin = Origin(doc.file, line, col, dotted(path), places or {})
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
        _refuse_keys(
            doc,
            path,
            data,
            ("hold", "connection"),
            "{} applies to connect checks",
            "a dns check holds no connection",
            category,
            out,
        )
        _refuse_keys(
            doc,
            path,
            data,
            ("to", "protocol", "connections", "path"),
            "{} does not apply to dns checks",
            "a dns check has query and type",
            category,
            out,
        )
        dns_expect = _parse_dns_expect(doc, (*path, "expect"), expect_data, category, out)
        dns_modes = {
            mode: _parse_dns_expect(
                doc, (*path, "modes", mode, "expect"), o["expect"], category, out, dns_expect
            )
            for mode, o in modes.items()
        }
        if len(out) > before:
            return None
        return DnsCheck(
            name=name,
            source=source,
            query=data.get("query", ""),
            qtype=data.get("type", "A"),
            search=data.get("search", True),
            timeout=float(data.get("timeout", 2.0)),
            expect=dns_expect,
            description=data.get("description", ""),
            origin=origin,
            mode_expect=dns_modes,
            mode_why=mode_why,
        )
    _refuse_keys(
        doc,
        path,
        data,
        ("query", "type", "search"),
        "{} applies to dns checks",
        "add kind: dns",
        category,
        out,
    )
    if "path" in data and kind != "http":
        out.append(
            doc.diag(
                (*path, "path"),
                "path applies to http checks",
                category=category,
                hint="add kind: http",
            )
        )
    held = data.get("connection", "")
    if held:
        # Source, destination and protocol are the held connection's (filled in by the steps).
        _refuse_keys(
            doc,
            path,
            data,
            ("to", "protocol", "hold"),
            "{} does not apply to a check over a held connection",
            "the connection named in connection: already has its source and destination",
            category,
            out,
        )
        if kind != "connect":
            out.append(
                doc.diag(
                    (*path, "kind"),
                    "a check over a held connection is a connect check",
                    category=category,
                    hint="drop kind",
                )
            )
        dest = Destination()
    else:
        dest = _check_destination(doc, path, data, category, out) or Destination()
    hold = data.get("hold", "")
    if hold and kind != "connect":
        out.append(
            doc.diag(
                (*path, "hold"),
                "only a connect check holds its connection",
                category=category,
                hint="drop kind, or hold from another check",
            )
        )
    if hold and data.get("connections", 1) != 1:
        out.append(
            doc.diag(
                (*path, "connections"),
                "a held connection is one connection",
                category=category,
                hint="drop connections; later checks send over it with connection: NAME",
            )
        )
    expect = _parse_connect_expect(doc, (*path, "expect"), expect_data, kind, category, out)
    if hold and expect.result != "connected":
        out.append(
            doc.diag(
                (*path, "hold"),
                f"a check expecting {expect.result} has no connection to hold",
                category=category,
                hint="hold a connection that connects",
            )
        )
    mode_expect = {
        mode: _parse_connect_expect(
            doc, (*path, "modes", mode, "expect"), o["expect"], kind, category, out, expect
        )
        for mode, o in modes.items()
    }
    if kind == "http" and data.get("protocol", "TCP") != "TCP":
        out.append(
            doc.diag(
                (*path, "protocol"),
                "HTTP runs over TCP",
                category=category,
                hint="drop protocol, or use kind: connect for UDP",
            )
        )
    if len(out) > before:
        return None
    if kind == "http":
        assert isinstance(expect, HttpExpect)
        return HttpCheck(
            name=name,
            source=source,
            destination=dest,
            protocol="TCP",
            connections=data.get("connections"),
            timeout=float(data.get("timeout", 1.0)),
            expect=expect,
            path=data.get("path", "/"),
            description=data.get("description", ""),
            origin=origin,
            mode_expect={m: e for m, e in mode_expect.items() if isinstance(e, HttpExpect)},
            mode_why=mode_why,
        )
    cls = CaptureCheck if kind == "capture" else ConnectCheck
    return cls(
        name=name,
        source=source,
        destination=dest,
        protocol=data.get("protocol"),
        connections=1 if hold else data.get("connections"),
        timeout=float(data.get("timeout", 1.0)),
        expect=expect,
        description=data.get("description", ""),
        origin=origin,
        mode_expect=mode_expect,
        mode_why=mode_why,
        hold=hold,
        connection=held,
    )
