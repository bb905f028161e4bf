"""netlab.serial (the state file's round trip) and netlab.workloads.echo (what a pod answers)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from netlab.cluster.build import build_cluster
from netlab.cluster.state import ClusterState
from netlab.scenario.checkspec import (
    CaptureCheck,
    CheckSpec,
    ConnectCheck,
    ConnectExpect,
    Destination,
    DnsCheck,
    DnsExpect,
    HttpCheck,
    HttpExpect,
    Source,
)
from netlab.scenario.labspec import LabSpec
from netlab.scenario.load import load_scenario, parse_scenario
from netlab.serial import from_data, to_data
from netlab.workloads import echo
from netlab.workloads.echo import command, http_response, whoami

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))

RICH = """\
apiVersion: netlab.dev/v1alpha1
kind: Lab
metadata: {name: rich, description: Every kind of value.}
spec:
  nodes: [{name: cp}, {name: w1}, {name: w2}]
  proxy: {mode: iptables, masqueradeAll: true}
  external:
    clients: [{name: external}, {name: far, address: 203.0.113.7}]
  checks:
  - {name: a, from: pod/client-cp, to: "service/web:http", expect: {endpoints: [web-0, node/w1]}}
  - {name: b, from: external/far, to: "10.96.0.50:80", protocol: UDP, timeout: 2, connections: 4}
  - {name: c, from: node/w2, to: {service: web, via: nodePort, node: w1, port: 80}}
  - {name: d, from: pod/client-w1, to: service/web, expect: {result: refused, endpoints: none}}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  labels: {app: web}
  annotations: {netlab.dev/ready: "false"}
spec:
  hostname: web-0
  subdomain: web
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, labels: {tier: front}}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  publishNotReadyAddresses: true
  sessionAffinity: ClientIP
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: raw, port: 81, protocol: UDP, targetPort: 9000}
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec:
  type: ExternalName
  externalName: example.com
---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec:
  clusterIP: None
  selector: {}
  ports: [{port: 80}]
"""


def round_trip(state: ClusterState) -> ClusterState:
    return from_data(ClusterState, json.loads(json.dumps(to_data(state))))


def test_round_trip_of_a_rich_cluster_state() -> None:
    state = build_cluster(parse_scenario(RICH, "rich.yaml"))
    back = round_trip(state)
    assert back == state
    assert back.lab.nodes == ("cp", "w1", "w2")
    assert back.lab.checks is not None
    a, b, c, d = back.lab.checks
    assert all(isinstance(x, ConnectCheck) for x in (a, b, c, d))
    assert isinstance(a, ConnectCheck) and isinstance(b, ConnectCheck)
    assert isinstance(c, ConnectCheck) and isinstance(d, ConnectCheck)
    assert a.expect == ConnectExpect("connected", ("web-0", "node/w1"), None)
    assert isinstance(a.expect.endpoints, tuple)
    assert a.destination == Destination(service="web", port="http")
    assert (b.timeout, b.connections, b.protocol) == (2.0, 4, "UDP")
    assert c.destination == Destination(service="web", port=80, via="nodePort", node="w1")
    assert d.expect == ConnectExpect("refused", "none", None)
    assert a.origin is not None and a.origin.line == 10
    web = back.service("default", "web")
    assert web.ports[0].target_port == "http"
    assert web.ports[1].target_port == 9000
    assert back.service("default", "headless").cluster_ip == "None"
    assert back.service("default", "kubernetes").selector is None


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_round_trip_of_every_shipped_scenario(path: Path) -> None:
    state = build_cluster(load_scenario(path))
    assert round_trip(state) == state


def test_to_data_is_plain_json_data() -> None:
    spec = ConnectCheck(
        name="x", source=Source("pod", "a", "ns"), destination=Destination("web", port=80)
    )
    data = to_data(spec)
    assert data["source"] == {"kind": "pod", "name": "a", "namespace": "ns"}
    assert data["destination"]["port"] == 80
    assert data["expect"] == {
        "result": "connected",
        "endpoints": None,
        "source": None,
        "dnat": None,
        "sticky": None,
    }
    assert data["kind"] == "connect"
    assert data["origin"] is None
    assert json.loads(json.dumps(data)) == data
    assert from_data(ConnectCheck, data) == spec


def test_check_kinds_round_trip_through_a_union() -> None:
    """A lab's checks are a union of kinds; each comes back as its own type, told by its kind."""
    src = Source("pod", "a", "ns")
    checks: tuple[CheckSpec, ...] = (
        DnsCheck(name="d", source=src, query="web", expect=DnsExpect(rcode="NXDOMAIN")),
        CaptureCheck(name="c", source=src, destination=Destination("web", port=80)),
        ConnectCheck(name="n", source=src, destination=Destination("web", port=80)),
        HttpCheck(
            name="h",
            source=src,
            destination=Destination(address="127.0.0.1", port=10249, via=""),
            path="/proxyMode",
            expect=HttpExpect(status=200, body="iptables"),
            mode_expect={"nftables": HttpExpect(status=200, body="nftables")},
        ),
    )
    lab = LabSpec(name="kinds", checks=checks)
    back = from_data(LabSpec, json.loads(json.dumps(to_data(lab))))
    assert back == lab
    kinds = [type(c) for c in back.checks or ()]
    assert kinds == [DnsCheck, CaptureCheck, ConnectCheck, HttpCheck]


@dataclass
class _Inner:
    value: int | str


@dataclass
class _Outer:
    pair: tuple[int, str]
    many: tuple[_Inner, ...]
    table: dict[str, list[_Inner]] = field(default_factory=dict)
    maybe: _Inner | None = None


def test_from_data_builds_nested_types() -> None:
    obj = _Outer((1, "a"), (_Inner(2), _Inner("b")), {"k": [_Inner(3)]}, _Inner("x"))
    data = json.loads(json.dumps(to_data(obj)))
    assert data == {
        "pair": [1, "a"],
        "many": [{"value": 2}, {"value": "b"}],
        "table": {"k": [{"value": 3}]},
        "maybe": {"value": "x"},
    }
    assert from_data(_Outer, data) == obj
    # Missing fields take their defaults.
    assert from_data(_Outer, {"pair": [1, "a"], "many": []}) == _Outer((1, "a"), ())


# echo -----------------------------------------------------------------------------------------

CLIENT = ("10.244.1.5", 40000)


def response(
    status: str, body: bytes, length: int, ctype: str = "text/plain; charset=utf-8"
) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {length}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


@pytest.mark.parametrize("path", ["/hostname", "/", "/hostname?x=1"])
def test_http_hostname(path: str) -> None:
    assert http_response("web-0", CLIENT, f"GET {path} HTTP/1.1") == response("200 OK", b"web-0", 5)


def test_http_clientip() -> None:
    assert http_response("web-0", CLIENT, "GET /clientip HTTP/1.1") == response(
        "200 OK", b"10.244.1.5:40000", 16
    )


def test_http_whoami_is_json() -> None:
    out = http_response("web-0", CLIENT, "GET /whoami HTTP/1.1")
    body = b'{"hostname": "web-0", "clientip": "10.244.1.5:40000"}'
    assert out == response("200 OK", body, len(body), "application/json")
    assert json.loads(out.partition(b"\r\n\r\n")[2]) == {
        "hostname": "web-0",
        "clientip": "10.244.1.5:40000",
    }


def test_http_echo() -> None:
    assert http_response("w", CLIENT, "GET /echo?msg=hello%20world&x=1 HTTP/1.1") == response(
        "200 OK", b"hello world", 11
    )
    assert http_response("w", CLIENT, "GET /echo HTTP/1.1") == response("200 OK", b"", 0)
    # Content-Length counts bytes, not characters.
    assert http_response("w", CLIENT, "GET /echo?msg=h%C3%A9 HTTP/1.1") == response(
        "200 OK", "hé".encode(), 3
    )


def test_http_healthz() -> None:
    assert http_response("w", CLIENT, "GET /healthz HTTP/1.0") == response("200 OK", b"ok", 2)


def test_http_not_found() -> None:
    assert http_response("w", CLIENT, "GET /nope HTTP/1.1") == response(
        "404 Not Found", b"404 page not found\n", 19
    )


def test_http_head_has_no_body() -> None:
    assert http_response("web-0", CLIENT, "HEAD /hostname HTTP/1.1") == response("200 OK", b"", 5)
    assert http_response("web-0", CLIENT, "HEAD /nope HTTP/1.1") == response(
        "404 Not Found", b"", 19
    )


@pytest.mark.parametrize("line", ["POST /hostname HTTP/1.1", "DELETE / HTTP/1.1", "GET", ""])
def test_http_method_not_allowed(line: str) -> None:
    assert http_response("w", CLIENT, line) == response(
        "405 Method Not Allowed", b"method not allowed\n", 19
    )


def test_whoami() -> None:
    assert whoami("web-0", CLIENT) == '{"hostname": "web-0", "clientip": "10.244.1.5:40000"}'


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("hostname", "web-0"),
        ("hostname\n", "web-0"),
        ("clientip", "10.244.1.5:40000"),
        ("echo hi there", "hi there"),
        ("echo", ""),
        ("whoami", '{"hostname": "web-0", "clientip": "10.244.1.5:40000"}'),
        ("bogus arg", "unknown command 'bogus'; try hostname, clientip, echo TEXT, whoami"),
        ("", "unknown command ''; try hostname, clientip, echo TEXT, whoami"),
    ],
)
def test_command(text: str, answer: str) -> None:
    assert command("web-0", CLIENT, text) == answer


def test_http_keeps_the_connection_as_go_does() -> None:
    line = "GET /hostname HTTP/1.1\r\n"
    assert echo.keeps_alive(line, ["Host: x\r\n"])
    assert not echo.keeps_alive(line, ["Connection: close\r\n"])
    assert not echo.keeps_alive("GET / HTTP/1.0\r\n", [])
    kept = echo.http_response("web-0", ("10.0.0.1", 1234), line, keep_alive=True)
    assert kept.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection" not in kept
    assert kept.endswith(b"\r\n\r\nweb-0")
    closed = echo.http_response("web-0", ("10.0.0.1", 1234), line)
    assert b"Connection: close\r\n" in closed
