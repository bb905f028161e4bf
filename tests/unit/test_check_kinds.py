"""Session affinity in the expectation, "any failure" as an outcome, http checks, CNAME answers
and the derived checks of Services no proxy programs (pure: synthetic observations)."""

from __future__ import annotations

import textwrap

from netlab.checks import (
    ResolvedConnect,
    ResolvedHttp,
    derive,
    evaluate,
    evaluate_dns,
    evaluate_http,
    resolve,
)
from netlab.checks.observations import DNSResult, HttpObservation, Observation
from netlab.cluster.build import build_cluster
from netlab.scenario.checkspec import (
    ConnectCheck,
    ConnectExpect,
    Destination,
    DnsCheck,
    DnsExpect,
    HttpCheck,
    HttpExpect,
    Source,
)
from netlab.scenario.load import parse_scenario

MANIFESTS = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      replicas: 3
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: sticky}
    spec:
      type: LoadBalancer
      sessionAffinity: ClientIP
      sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}
      selector: {app: web}
      ports: [{port: 80, targetPort: 8080}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: plain}
    spec:
      selector: {app: web}
      ports: [{port: 80, targetPort: 8080}]
    ---
    apiVersion: v1
    kind: Service
    metadata:
      name: elsewhere
      labels: {service.kubernetes.io/service-proxy-name: other-proxy}
    spec:
      selector: {app: web}
      ports: [{port: 80, targetPort: 8080}]
    """)
STATE = build_cluster(parse_scenario(MANIFESTS, "kinds.yaml"))
WEB = sorted(p.name for p in STATE.pods if p.labels.get("app") == "web")
CLIENT = Source("pod", "client-node-1", "netlab")
CLIENT_IP = STATE.pod("netlab", "client-node-1").ip


def connect(
    dest: Destination,
    expect: ConnectExpect | None = None,
    source: Source = CLIENT,
    mode: str = "iptables",
) -> ResolvedConnect:
    spec = ConnectCheck(name="c", source=source, destination=dest, expect=expect or ConnectExpect())
    r = resolve(STATE, spec, mode)
    assert isinstance(r, ResolvedConnect)
    return r


def answers(*pods: str) -> list[Observation]:
    return [
        Observation("connected", p, CLIENT_IP, 40000 + i, CLIENT_IP, 40000 + i)
        for i, p in enumerate(pods)
    ]


# session affinity ------------------------------------------------------------------------------


def test_client_ip_affinity_expects_one_endpoint_whichever() -> None:
    for mode in ("iptables", "nftables", "ipvs", "userspace"):
        r = connect(Destination("sticky"), mode=mode)
        assert (r.sticky, r.max_endpoints) == (True, None), mode
        assert sorted(b.pod for b in r.expected or ()) == WEB
    r = connect(Destination("sticky"))
    one = evaluate(r, answers(WEB[1], WEB[1], WEB[1]))
    assert one.passed and one.expected["sticky"] is True
    two = evaluate(r, answers(WEB[0], WEB[1], WEB[0]))
    assert not two.passed
    assert two.failures == [
        "expected one endpoint for every connection (session affinity), reached "
        f"{WEB[0]} x2, {WEB[1]} x1"
    ]


def test_affinity_through_one_node_and_through_a_load_balancer() -> None:
    assert connect(
        Destination("sticky", via="nodePort", node="node-2"), source=Source("external")
    ).sticky
    assert connect(
        Destination("sticky", via="loadBalancer"), source=Source("node", "node-1")
    ).sticky
    # From outside, the load balancer spreads connections over both nodes, and each node
    # remembers the client on its own: at most one endpoint per node, none required.
    lb = connect(Destination("sticky", via="loadBalancer"), source=Source("external"))
    assert (lb.sticky, lb.max_endpoints) == (False, 2)
    assert evaluate(lb, answers(WEB[0], WEB[2], WEB[0])).passed
    three = evaluate(lb, answers(*WEB))
    assert not three.passed and "at most 2 endpoints" in three.failures[0]


def test_a_check_may_say_sticky() -> None:
    r = connect(Destination("plain"), ConnectExpect(sticky=True))
    assert r.sticky and evaluate(r, answers(WEB[2], WEB[2])).passed
    not_sticky = connect(Destination("sticky"), ConnectExpect(sticky=False))
    assert not not_sticky.sticky
    spread = evaluate(not_sticky, answers(WEB[0], WEB[0]))
    assert not spread.passed and spread.failures[0].startswith("never reached")
    # A plain Service spreads: no affinity expected.
    assert not connect(Destination("plain")).sticky
    # Raw addresses carry the Service's affinity too.
    ip = STATE.service("default", "sticky").cluster_ip
    assert connect(Destination(address=ip, port=80, via="")).sticky


# any failure ---------------------------------------------------------------------------------


def test_failed_takes_any_failure() -> None:
    r = connect(Destination("plain"), ConnectExpect(result="failed"))
    assert r.connections == 3 and r.expected == ()
    seen = [Observation("refused"), Observation("timeout"), Observation("unreachable")]
    assert evaluate(r, seen).passed
    bad = evaluate(r, [Observation("refused"), *answers(WEB[0])])
    assert bad.failures == ["expected every connection to be a failure, got 1 connected"]


def test_unproxied_services_get_derived_failures() -> None:
    derived = {c.name: c for c in derive(STATE)}
    check = derived["default/elsewhere:80 clusterIP from node-1 is not proxied"]
    assert isinstance(check, ConnectCheck) and check.expect == ConnectExpect(result="failed")
    assert not any("elsewhere" in n and "not proxied" not in n for n in derived)


# http ----------------------------------------------------------------------------------------


def http(expect: HttpExpect, dest: Destination | None = None, **kw: object) -> ResolvedHttp:
    spec = HttpCheck(
        name="h",
        source=Source("node", "node-1"),
        destination=dest or Destination(address="127.0.0.1", port=10249, via=""),
        path="/proxyMode",
        expect=expect,
        **kw,  # type: ignore[arg-type]
    )
    r = resolve(STATE, spec)
    assert isinstance(r, ResolvedHttp)
    return r


def test_http_check_resolution() -> None:
    r = http(HttpExpect(body="iptables"))
    assert (r.dest_ip, r.dest_port, r.path, r.status, r.body, r.connections) == (
        "127.0.0.1",
        10249,
        "/proxyMode",
        200,
        "iptables",
        1,
    )
    assert r.summary == "node/node-1 -> 127.0.0.1:10249 GET /proxyMode"
    assert r.expected is None and not r.sticky
    # Through a Service, whoever answers: endpoints are not judged.
    svc = http(HttpExpect(status=200), Destination("sticky"), connections=5)
    assert (svc.connections, svc.expected, svc.sticky) == (5, None, False)


def test_http_verdicts() -> None:
    r = http(HttpExpect(body="iptables"))
    ok = evaluate_http(r, [HttpObservation("connected", 200, "iptables")], 0.1)
    assert ok.passed and ok.kind == "http" and ok.protocol == "HTTP"
    assert ok.destination == "127.0.0.1:10249/proxyMode"
    assert ok.expected == {"result": "connected", "status": 200, "body": "iptables"}
    assert ok.observed == {"outcomes": {"connected": 1}, "statuses": {"200": 1}, "body": "iptables"}
    wrong = evaluate_http(r, [HttpObservation("connected", 404, "404 page not found\n")])
    assert wrong.failures == [
        "expected HTTP 200, got 404 x1",
        "expected the body to contain 'iptables', 1 did not: '404 page not found\\n'",
    ]
    refused = evaluate_http(r, [HttpObservation("refused", error="connection refused")])
    assert refused.failures == [
        "expected every connection to be connected, got 1 refused (connection refused)"
    ]
    down = http(HttpExpect(result="failed"))
    assert evaluate_http(down, [HttpObservation("timeout")]).passed


# CNAME answers ------------------------------------------------------------------------------


def test_a_cname_question_reports_the_cname() -> None:
    result = DNSResult(
        "10.96.0.10",
        "db.default.svc.cluster.local.",
        "CNAME",
        rcode="NOERROR",
        answers=(("db.default.svc.cluster.local.", "CNAME", 30, "db.example.com."),),
        cname_chain=("db.default.svc.cluster.local.", "db.example.com."),
    )
    assert result.data() == ["db.example.com."]
    assert result.data("A") == []
    spec = DnsCheck(
        name="d",
        source=CLIENT,
        query="db.default.svc.cluster.local.",
        qtype="CNAME",
        expect=DnsExpect(answers=("db.example.com",)),
    )
    verdict = evaluate_dns(resolve(STATE, spec), result)
    assert verdict.passed and verdict.observed["answers"] == ["db.example.com"]
