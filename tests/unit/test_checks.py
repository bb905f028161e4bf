"""netlab.checks: derived checks, resolution against the cluster state, and the verdict on
synthetic observations and captures (pure: no packets)."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from netlab.checks import (
    Backend,
    ResolvedConnect,
    ResolveError,
    default_connections,
    derive,
    evaluate,
    resolve,
    resolve_all,
)
from netlab.checks.observations import CapturedPacket, Observation
from netlab.cluster.build import build_cluster
from netlab.cluster.podfiles import pod_hosts
from netlab.cluster.resolvconf import ResolvConf
from netlab.cluster.state import ClusterState
from netlab.errors import Diagnostic
from netlab.scenario.checkspec import (
    CaptureCheck,
    CheckSpec,
    ConnectCheck,
    ConnectExpect,
    Destination,
    DnsCheck,
    DnsExpect,
    Source,
)
from netlab.scenario.load import parse_scenario

MANIFESTS = """\
apiVersion: v1
kind: Pod
metadata: {name: web-a, labels: {app: web, tier: local}}
spec:
  nodeName: node-1
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-b, labels: {app: web}}
spec:
  nodeName: node-2
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: nobody}
spec:
  selector: {app: nobody}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: ilocal}
spec:
  internalTrafficPolicy: Local
  selector: {tier: local}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: elocal}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {tier: local}
  ports: [{port: 80, targetPort: 8080, nodePort: 30081}]
---
apiVersion: v1
kind: Service
metadata: {name: multi}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: alt, port: 8081, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 8080}
---
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: Pod
metadata: {name: tool, namespace: team, labels: {app: tool}}
spec:
  nodeName: node-2
  containers: [{name: c, image: x, ports: [{containerPort: 9000}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: tool, namespace: netlab}
spec:
  containers: [{name: c, image: x}]
---
apiVersion: v1
kind: Pod
metadata: {name: loner, namespace: team}
spec:
  containers: [{name: c, image: x}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: team}
spec:
  selector: {app: tool}
  ports: [{port: 80, targetPort: 9000}]
"""

STATE: ClusterState = build_cluster(parse_scenario(MANIFESTS, "checks.yaml"))
WEB_IP = STATE.service("default", "web").cluster_ip
CLIENT_1 = STATE.pod("netlab", "client-node-1")
WEB_A = Backend("web-a", "default", "10.244.1.2", 8080, "checks-web-a", "node-1")
WEB_B = Backend("web-b", "default", "10.244.2.2", 8080, "checks-web-b", "node-2")
FROM_CLIENT_1 = Source("pod", "client-node-1", "netlab")


def check(
    to: Destination,
    source: Source = FROM_CLIENT_1,
    expect: ConnectExpect | None = None,
    kind: str = "connect",
    **kw: Any,
) -> ConnectCheck:
    cls = CaptureCheck if kind == "capture" else ConnectCheck
    return cls(name="c", source=source, destination=to, expect=expect or ConnectExpect(), **kw)


def resolve_error(spec: CheckSpec) -> tuple[str, str, str]:
    with pytest.raises(ResolveError) as info:
        resolve(STATE, spec)
    return str(info.value), info.value.field_name, info.value.hint


# derive ---------------------------------------------------------------------------------------


def derived(state: ClusterState) -> list[tuple[str, str, str, str | None, object]]:
    return [
        (c.name, str(c.source), str(c.destination), c.protocol, c.expect)
        for c in derive(state)
        if c.derived and isinstance(c, ConnectCheck)
    ]


def test_derive_for_a_node_port_service_with_two_endpoints() -> None:
    got = [c for c in derived(STATE) if c[0].startswith("default/web:")]
    connected_client = ConnectExpect("connected", "all", "client")
    connected_masq = ConnectExpect("connected", "all", "masqueraded")
    assert got == [
        (
            "default/web:http clusterIP from node-1",
            "pod/netlab/client-node-1",
            "service/default/web:http",
            "TCP",
            connected_client,
        ),
        (
            "default/web:http clusterIP from node-2",
            "pod/netlab/client-node-2",
            "service/default/web:http",
            "TCP",
            connected_client,
        ),
        (
            "default/web:http nodePort 30080 on node-1 from external",
            "external",
            "service/default/web:http via nodePort on node-1",
            "TCP",
            connected_masq,
        ),
        (
            "default/web:http nodePort 30080 on node-2 from external",
            "external",
            "service/default/web:http via nodePort on node-2",
            "TCP",
            connected_masq,
        ),
    ]


def test_derive_without_endpoints_expects_refused() -> None:
    got = [(c[0], c[4]) for c in derived(STATE) if c[0].startswith("default/nobody:")]
    assert got == [
        ("default/nobody:80 clusterIP from node-1", ConnectExpect("refused")),
        ("default/nobody:80 clusterIP from node-2", ConnectExpect("refused")),
    ]


def test_derive_internal_traffic_policy_local() -> None:
    got = [(c[0], c[4]) for c in derived(STATE) if c[0].startswith("default/ilocal:")]
    assert got == [
        ("default/ilocal:80 clusterIP from node-1", ConnectExpect("connected", "all", "client")),
        ("default/ilocal:80 clusterIP from node-2", ConnectExpect("timeout")),
    ]
    # IPVS has no DROP for it: a virtual server without real servers, whose ICMP port
    # unreachable the kernel rate-limits per client (refused, or after a burst a timeout).
    ipvs = {c.name: c.expect for c in derive(STATE, "ipvs") if c.name.startswith("default/ilocal:")}
    assert ipvs["default/ilocal:80 clusterIP from node-2"] == ConnectExpect("failed")
    assert ipvs["default/ilocal:80 clusterIP from node-1"] == ConnectExpect(
        "connected", "all", "client"
    )


def test_derive_external_traffic_policy_local() -> None:
    got = [(c[0], c[4]) for c in derived(STATE) if c[0].startswith("default/elocal:")]
    assert got == [
        ("default/elocal:80 clusterIP from node-1", ConnectExpect("connected", "all", "client")),
        ("default/elocal:80 clusterIP from node-2", ConnectExpect("connected", "all", "client")),
        (
            "default/elocal:80 nodePort 30081 on node-1 from external",
            ConnectExpect("connected", "all", "client"),
        ),
        ("default/elocal:80 nodePort 30081 on node-2 from external", ConnectExpect("timeout")),
    ]


def test_derive_in_ebpf_mode_states_ciliums_behaviour() -> None:
    """Cilium SNATs an outside client only towards a backend on another node, and answers a
    frontend without endpoints in the scope asked with ICMP port unreachable (refused) whether
    the Service has none at all or none here; the other modes' expectations stay as they are."""
    got = {
        c.name: c.expect
        for c in derive(STATE, mode="ebpf")
        if c.derived and isinstance(c, ConnectCheck)
    }
    snat_if_remote = ConnectExpect("connected", "all", "snat-if-remote")
    assert got["default/web:http nodePort 30080 on node-1 from external"] == snat_if_remote
    assert got["default/web:http clusterIP from node-1"] == ConnectExpect(
        "connected", "all", "client"
    )
    assert got["default/nobody:80 clusterIP from node-1"] == ConnectExpect("refused")
    assert got["default/ilocal:80 clusterIP from node-2"] == ConnectExpect("refused")
    assert got["default/elocal:80 nodePort 30081 on node-1 from external"] == ConnectExpect(
        "connected", "all", "client"
    )
    assert got["default/elocal:80 nodePort 30081 on node-2 from external"] == ConnectExpect(
        "refused"
    )
    default = {c.name: c.expect for c in derive(STATE) if isinstance(c, ConnectCheck)}
    assert default["default/ilocal:80 clusterIP from node-2"] == ConnectExpect("timeout")


def test_derive_covers_every_port_and_skips_default_kubernetes() -> None:
    specs = derive(STATE)
    assert all(c.derived and c.origin is None for c in specs)
    assert not [c for c in specs if "kubernetes" in c.name]
    names = [c.name for c in specs]
    assert len(names) == len(set(names))
    assert [n for n in names if n.startswith(("default/multi:", "team/"))] == [
        "default/multi:http clusterIP from node-1",
        "default/multi:http clusterIP from node-2",
        "default/multi:alt clusterIP from node-1",
        "default/multi:alt clusterIP from node-2",
        "default/multi:dns clusterIP from node-1",
        "default/multi:dns clusterIP from node-2",
        "team/web:80 clusterIP from node-1",
        "team/web:80 clusterIP from node-2",
    ]
    connects = [c for c in specs if isinstance(c, ConnectCheck)]
    assert [c.protocol for c in connects if c.name.startswith("default/multi:dns")] == [
        "UDP",
        "UDP",
    ]
    # Cluster DNS answers from every node's client pod (kubernetes.default through kube-dns).
    dns = [c for c in specs if isinstance(c, DnsCheck)]
    assert [(c.name, c.query, c.expect.answers) for c in dns] == [
        ("cluster DNS from node-1", "kubernetes.default", ("service/default/kubernetes",)),
        ("cluster DNS from node-2", "kubernetes.default", ("service/default/kubernetes",)),
    ]
    assert len(specs) == 2 + 4 + 2 + 2 + 4 + 6 + 2


def test_derive_covers_headless_and_external_name_and_needs_client_pods() -> None:
    text = MANIFESTS + textwrap.dedent(
        """\
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: headless}
        spec:
          clusterIP: None
          selector: {app: web}
          ports: [{port: 80}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: ext}
        spec:
          type: ExternalName
          externalName: example.com
        """
    )
    state = build_cluster(parse_scenario(text, "checks.yaml"))
    extra = {c.name: c for c in derive(state)}
    for name in (c.name for c in derive(STATE)):
        del extra[name]
    # Headless: its A records are the ready endpoints, and by name the pods are reached
    # directly (no DNAT). ExternalName: a CNAME to its target.
    assert {n: (c.kind, getattr(c, "query", ""), c.expect) for n, c in extra.items()} == {
        "default/headless headless A records": (
            "dns",
            "headless.default.svc.cluster.local.",
            DnsExpect(answers=("endpoints/default/headless",)),
        ),
        "default/headless:80 by name reaches pods directly": (
            "connect",
            "",
            ConnectExpect(endpoints="all", source="client", dnat=False),
        ),
        "default/ext ExternalName resolves": (
            "dns",
            "ext.default.svc.cluster.local.",
            DnsExpect(cname="example.com"),
        ),
    }
    by_name = extra["default/headless:80 by name reaches pods directly"]
    assert isinstance(by_name, ConnectCheck)
    assert by_name.destination == Destination("headless", "default", 80, via="name")
    no_clients = parse_scenario(
        "apiVersion: netlab.dev/v1alpha1\nkind: Lab\nspec: {clientPods: false}\n---\n"
        + MANIFESTS.replace("metadata: {name: tool, namespace: netlab}", "metadata: {name: tool2}"),
        "checks.yaml",
    )
    # Without client pods only the NodePort checks from the external client remain.
    assert [c.name for c in derive(build_cluster(no_clients))] == [
        "default/web:http nodePort 30080 on node-1 from external",
        "default/web:http nodePort 30080 on node-2 from external",
        "default/elocal:80 nodePort 30081 on node-1 from external",
        "default/elocal:80 nodePort 30081 on node-2 from external",
    ]


def test_derived_checks_resolve() -> None:
    resolved, diags = resolve_all(STATE, derive(STATE))
    assert diags == []
    by_name = {r.name: r for r in resolved if isinstance(r, ResolvedConnect)}
    r = by_name["default/web:http nodePort 30080 on node-2 from external"]
    assert (r.source_netns, r.source_ip, r.bind) == (
        "checks-external",
        "192.168.56.100",
        "192.168.56.100",
    )
    assert (r.dest_ip, r.dest_port, r.protocol) == ("192.168.56.12", 30080, "TCP")
    assert r.expected == (WEB_A, WEB_B)
    assert by_name["default/elocal:80 nodePort 30081 on node-1 from external"].expected == (WEB_A,)
    timeout = by_name["default/elocal:80 nodePort 30081 on node-2 from external"]
    assert (timeout.expected, timeout.connections) == ((), 3)


# resolve --------------------------------------------------------------------------------------


def test_resolve_cluster_ip_by_port_name() -> None:
    r = resolve(
        STATE, check(Destination("web", port="http"), expect=ConnectExpect(source="client"))
    )
    assert r == ResolvedConnect(
        spec=r.spec,
        source_netns="checks-netlab.client-node-1",
        source_ip=CLIENT_1.ip,
        bind=None,
        dest_ip=WEB_IP,
        dest_port=80,
        protocol="TCP",
        connections=30,
        backends=(WEB_A, WEB_B),
        expected=(WEB_A, WEB_B),
        summary=f"pod/netlab/client-node-1 -> default/web:http ({WEB_IP}:80/TCP)",
        resolv=ResolvConf.for_pod("netlab"),
        hosts=pod_hosts(STATE, CLIENT_1),
        conntrack_netns="checks-node-1",
        node_ips=(("node-1", "192.168.56.11"), ("node-2", "192.168.56.12")),
    )
    assert r.name == "c"


def test_resolve_port_by_number_and_single_port_default() -> None:
    assert resolve(STATE, check(Destination("web", port=80))).dest_port == 80
    assert resolve(STATE, check(Destination("web"))).dest_port == 80
    multi = STATE.service("default", "multi")
    r = resolve(STATE, check(Destination("multi", port=8081)))
    assert (r.dest_ip, r.dest_port, r.protocol) == (multi.cluster_ip, 8081, "TCP")
    assert r.summary.startswith("pod/netlab/client-node-1 -> default/multi:alt (")


def test_resolve_protocol_picks_the_port() -> None:
    r = resolve(STATE, check(Destination("multi", port=53), protocol="UDP"))
    assert (r.dest_port, r.protocol) == (53, "UDP")
    # Only one UDP port: the protocol alone is enough.
    assert resolve(STATE, check(Destination("multi"), protocol="UDP")).dest_port == 53
    assert resolve_error(check(Destination("multi", port="http"), protocol="UDP")) == (
        "Service default/multi has no port 'http' over UDP",
        "to.port",
        "port http is TCP: drop protocol, or ask for TCP",
    )


def test_resolve_from_a_node_and_an_external_client() -> None:
    r = resolve(STATE, check(Destination("web"), source=Source("node", "node-2")))
    assert (r.source_netns, r.source_ip, r.bind) == ("checks-node-2", "192.168.56.12", None)
    r = resolve(STATE, check(Destination("web"), source=Source("external", "external")))
    assert (r.source_netns, r.source_ip, r.bind) == (
        "checks-external",
        "192.168.56.100",
        "192.168.56.100",
    )


def test_default_namespace_is_the_client_pods_if_it_has_the_service() -> None:
    team_web = STATE.service("team", "web").cluster_ip
    r = resolve(STATE, check(Destination("web"), source=Source("pod", "tool", "team")))
    assert r.dest_ip == team_web
    assert r.summary == f"pod/team/tool -> team/web:80 ({team_web}:80/TCP)"
    # A client pod whose namespace has no such Service: default.
    r = resolve(STATE, check(Destination("web"), source=Source("pod", "client-node-2", "netlab")))
    assert r.dest_ip == WEB_IP
    # From a node or outside: default.
    assert (
        resolve(STATE, check(Destination("web"), source=Source("node", "node-1"))).dest_ip == WEB_IP
    )
    # An explicit namespace always wins.
    r = resolve(STATE, check(Destination("web", "default"), source=Source("pod", "tool", "team")))
    assert r.dest_ip == WEB_IP


def test_pod_name_without_namespace() -> None:
    # Unique across namespaces: found wherever it is.
    assert resolve(STATE, check(Destination("web"), source=Source("pod", "loner"))).source_ip == (
        STATE.pod("team", "loner").ip
    )
    # In default and elsewhere: the default one.
    assert (
        resolve(STATE, check(Destination("web"), source=Source("pod", "web-a"))).source_ip
        == "10.244.1.2"
    )


def test_pod_name_ambiguous_across_namespaces() -> None:
    assert resolve_error(check(Destination("web"), source=Source("pod", "tool"))) == (
        'pod "tool" exists in several namespaces (netlab, team)',
        "from",
        "write pod/NAMESPACE/NAME",
    )


def test_unknown_pod() -> None:
    assert resolve_error(check(Destination("web"), source=Source("pod", "ghost"))) == (
        'pod "ghost" not found',
        "from",
        "pods in this lab: default/web-a, default/web-b, netlab/client-node-1, "
        "netlab/client-node-2, netlab/tool, team/loner, team/tool",
    )
    assert resolve_error(check(Destination("web"), source=Source("pod", "ghost", "team"))) == (
        'pod "team/ghost" not found',
        "from",
        "pods in this lab: default/web-a, default/web-b, netlab/client-node-1, "
        "netlab/client-node-2, netlab/tool, team/loner, team/tool",
    )


def test_unknown_node_and_external_client() -> None:
    assert resolve_error(check(Destination("web"), source=Source("node", "node-9"))) == (
        'node "node-9" not found',
        "from",
        "nodes: node-1, node-2",
    )
    assert resolve_error(check(Destination("web"), source=Source("external", "far"))) == (
        'external client "far" not found',
        "from",
        "external clients: external",
    )


def test_unknown_service() -> None:
    assert resolve_error(check(Destination("ghost"))) == (
        'service "default/ghost" not found',
        "to.service",
        "Services in namespace default: elocal, ilocal, kubernetes, multi, nobody, web",
    )
    assert resolve_error(check(Destination("wbe"))) == (
        'service "default/wbe" not found',
        "to.service",
        'did you mean "web"? Services in namespace default: elocal, ilocal, kubernetes, multi, '
        "nobody, web",
    )
    assert resolve_error(check(Destination("web", "nope"))) == (
        'service "nope/web" not found',
        "to.service",
        "a Service web exists in namespace default, team: write service/default/web",
    )


def test_multi_port_service_without_port() -> None:
    assert resolve_error(check(Destination("multi"))) == (
        "Service default/multi has several ports",
        "to.port",
        "name one of them: http, alt, dns",
    )


def test_unknown_port() -> None:
    assert resolve_error(check(Destination("web", port=81))) == (
        "Service default/web has no port 81",
        "to.port",
        "ports of web: http (80/TCP)",
    )
    assert resolve_error(check(Destination("multi", port="htp"))) == (
        "Service default/multi has no port 'htp'",
        "to.port",
        'did you mean "http"? ports of multi: http (80/TCP), alt (8081/TCP), dns (53/UDP)',
    )


def test_node_port_via_a_node() -> None:
    r = resolve(
        STATE, check(Destination("web", via="nodePort", node="node-2"), source=Source("external"))
    )
    assert (r.dest_ip, r.dest_port) == ("192.168.56.12", 30080)
    assert r.summary == "external -> default/web:http via nodePort (192.168.56.12:30080/TCP)"
    # Without a node: the first one.
    r = resolve(STATE, check(Destination("web", via="nodePort"), source=Source("external")))
    assert (r.dest_ip, r.dest_port) == ("192.168.56.11", 30080)


def test_node_port_errors() -> None:
    assert resolve_error(check(Destination("nobody", via="nodePort"))) == (
        "Service nobody port 80 has no nodePort",
        "to.via",
        "use type: NodePort or LoadBalancer",
    )
    assert resolve_error(check(Destination("web", via="nodePort", node="node-7"))) == (
        'node "node-7" not found',
        "to.node",
        "nodes: node-1, node-2",
    )


@pytest.mark.parametrize(
    "destination",
    [
        Destination(address="127.0.0.1", port=30080, via=""),
        Destination(address="192.168.56.12", port=30080, via=""),
        Destination(node="node-2", port=30080, via=""),
        Destination(address=WEB_IP, port=80, via=""),
    ],
    ids=["localhost-nodeport", "nodeip-nodeport", "node-nodeport", "clusterip"],
)
def test_raw_destinations_find_the_services_backends(destination: Destination) -> None:
    r = resolve(STATE, check(destination, source=Source("node", "node-1")))
    assert r.backends == (WEB_A, WEB_B)
    assert r.expected is None  # a raw address checks the outcome only
    assert r.connections == 14
    assert r.protocol == "TCP"
    assert r.summary == f"node/node-1 -> {r.dest_ip}:{r.dest_port}/TCP"


def test_raw_destination_with_named_endpoints() -> None:
    r = resolve(
        STATE,
        check(
            Destination(node="node-1", port=30080, via=""),
            expect=ConnectExpect(endpoints=("web-b",)),
        ),
    )
    assert (r.dest_ip, r.expected) == ("192.168.56.11", (WEB_B,))


def test_raw_destination_that_is_no_service() -> None:
    r = resolve(STATE, check(Destination(address="192.168.56.12", port=22, via="")))
    assert (r.backends, r.expected) == ((), None)
    r = resolve(STATE, check(Destination(address=WEB_IP, port=80, via=""), protocol="UDP"))
    assert r.backends == ()
    assert resolve_error(check(Destination(node="node-5", port=30080, via=""))) == (
        'node "node-5" not found',
        "to.node",
        "nodes: node-1, node-2",
    )


def test_expected_endpoints_by_name_and_node() -> None:
    r = resolve(
        STATE,
        check(
            Destination("web"), expect=ConnectExpect(endpoints=("web-b", "node/node-1", "web-b"))
        ),
    )
    assert r.expected == (WEB_B, WEB_A)
    assert r.connections == 30
    assert (
        resolve(STATE, check(Destination("web"), expect=ConnectExpect(endpoints="none"))).expected
        == ()
    )
    assert resolve(STATE, check(Destination("web"), expect=ConnectExpect("refused"))).expected == ()


def test_expected_endpoint_that_is_not_a_backend() -> None:
    assert resolve_error(check(Destination("web"), expect=ConnectExpect(endpoints=("ghost",)))) == (
        '"ghost" is not an endpoint of this destination',
        "expect.endpoints[0]",
        "endpoints: web-a, web-b; node/NODE stands for the endpoints on a node",
    )
    assert resolve_error(
        check(Destination("nobody"), expect=ConnectExpect(endpoints=("web-a",)))
    ) == (
        '"web-a" is not an endpoint of this destination',
        "expect.endpoints[0]",
        "there are no endpoints; node/NODE stands for the endpoints on a node",
    )


def test_connections_given_win() -> None:
    assert resolve(STATE, check(Destination("web"), connections=7)).connections == 7


def test_default_connections() -> None:
    assert default_connections(ConnectExpect(), (WEB_A,)) == 14
    assert default_connections(ConnectExpect(), (WEB_A, WEB_B)) == 30
    assert default_connections(ConnectExpect(), (WEB_A, WEB_B, WEB_A)) == 45
    assert default_connections(ConnectExpect(), None) == 14
    assert default_connections(ConnectExpect(), ()) == 14
    assert default_connections(ConnectExpect("refused"), ()) == 3
    assert default_connections(ConnectExpect("timeout"), None) == 3


def test_resolve_all_turns_errors_into_positioned_diagnostics() -> None:
    text = (
        textwrap.dedent(
            """\
        apiVersion: netlab.dev/v1alpha1
        kind: Lab
        spec:
          checks:
          - {name: fine, from: pod/client-node-1, to: service/web}
          - {name: bad-pod, from: pod/ghost, to: service/web}
          - name: bad-port
            from: external
            to: service/multi
        ---
        """
        )
        + MANIFESTS
    )
    scenario = parse_scenario(text, "checks.yaml")
    state = build_cluster(scenario)
    assert scenario.lab.checks is not None
    resolved, diags = resolve_all(state, list(scenario.lab.checks))
    assert [r.name for r in resolved] == ["fine"]
    assert diags == [
        Diagnostic(
            message='pod "ghost" not found',
            file="checks.yaml",
            line=6,
            col=27,
            path="spec.checks[1].from",
            hint="pods in this lab: default/web-a, default/web-b, netlab/client-node-1, "
            "netlab/client-node-2, netlab/tool, team/loner, team/tool",
            category="check bad-pod",
        ),
        Diagnostic(
            message="Service default/multi has several ports",
            file="checks.yaml",
            line=9,
            col=9,
            path="spec.checks[2].to",
            hint="name one of them: http, alt, dns",
            category="check bad-port",
        ),
    ]


def test_resolve_all_without_origin() -> None:
    _, diags = resolve_all(STATE, [check(Destination("ghost"))])
    assert diags == [
        Diagnostic(
            message='service "default/ghost" not found',
            hint="Services in namespace default: elocal, ilocal, kubernetes, multi, nobody, web",
            category="check c",
        )
    ]


# evaluate -------------------------------------------------------------------------------------

CLIENT = CLIENT_1.ip


def resolved(expect: ConnectExpect, to: Destination | None = None, **kw: Any) -> ResolvedConnect:
    r = resolve(STATE, check(to or Destination("web"), expect=expect, **kw))
    assert isinstance(r, ResolvedConnect)
    return r


def answer(pod: str, port: int, *, seen: tuple[str, int] | None = None) -> Observation:
    """A connection from CLIENT:port answered by ``pod``, which saw ``seen`` (default: itself)."""
    ip, sport = seen or (CLIENT, port)
    return Observation("connected", pod, ip, sport, CLIENT, port)


def test_all_reached_untranslated_passes() -> None:
    r = resolved(ConnectExpect(source="client"))
    observations = [answer("web-a", 40000), answer("web-b", 40001), answer("web-a", 40002)]
    result = evaluate(r, observations, seconds=1.5)
    assert result.passed
    assert result.failures == []
    assert (result.name, result.summary, result.source) == (
        "c",
        r.summary,
        "pod/netlab/client-node-1",
    )
    assert (result.destination, result.protocol, result.connections) == (f"{WEB_IP}:80", "TCP", 3)
    assert (result.seconds, result.derived, result.kind, result.description) == (
        1.5,
        False,
        "connect",
        "",
    )
    assert result.expected == {
        "result": "connected",
        "endpoints": ["web-a", "web-b"],
        "source": "client",
        "client": CLIENT,
    }
    assert result.observed == {
        "outcomes": {"connected": 3},
        "endpoints": {"web-a": 2, "web-b": 1},
        "sources": [CLIENT],
        "translated": 0,
    }


def test_missing_endpoint() -> None:
    result = evaluate(resolved(ConnectExpect()), [answer("web-a", 40000), answer("web-a", 40001)])
    assert not result.passed
    assert result.failures == ["never reached: web-b in 2 connections"]


def test_unexpected_endpoint() -> None:
    r = resolved(ConnectExpect(endpoints=("web-a",)))
    result = evaluate(r, [answer("web-a", 40000), answer("web-b", 40001)])
    assert result.failures == ["reached unexpected endpoints: web-b"]
    assert result.expected["endpoints"] == ["web-a"]


def test_refused_when_connected_expected() -> None:
    observations = [
        Observation("refused", error="connection refused"),
        Observation("refused", error="connection refused"),
        Observation("timeout", error="no answer"),
        answer("web-a", 40000),
    ]
    result = evaluate(resolved(ConnectExpect()), observations)
    assert result.failures == [
        "expected every connection to be connected, got 2 refused, 1 timeout "
        "(connection refused; no answer)",
        "never reached: web-b in 4 connections",
    ]
    assert result.observed["outcomes"] == {"connected": 1, "refused": 2, "timeout": 1}


def test_expected_refused() -> None:
    r = resolved(ConnectExpect("refused"), Destination("nobody"))
    refused = [Observation("refused", error="connection refused")] * 3
    assert evaluate(r, refused).passed
    assert evaluate(r, refused).expected == {"result": "refused", "endpoints": [], "client": CLIENT}
    result = evaluate(r, [Observation("timeout", error="no answer")] * 2)
    assert result.failures == ["expected every connection to be refused, got 2 timeout (no answer)"]
    result = evaluate(r, [answer("web-a", 40000)])
    assert result.failures == ["expected every connection to be refused, got 1 connected"]


def test_source_client_allows_a_moved_port_where_no_masquerade_keeps_the_address() -> None:
    # A pod's address kept with another port: the NAT core moved the port because an older
    # connection held the reply tuple; a masquerade would have shown the node's address.
    r = resolved(ConnectExpect(source="client"))
    observations = [answer("web-a", 40000), answer("web-b", 40001, seen=(CLIENT, 18732))]
    result = evaluate(r, observations)
    assert result.passed, result.failures
    assert result.observed["translated"] == 1  # still reported as seen


def test_source_client_from_a_node_to_another_nodes_nodeport_allows_a_moved_port() -> None:
    r = resolve(
        STATE,
        check(
            Destination("web", via="nodePort", node="node-1"),
            source=Source("node", "node-2"),
            expect=ConnectExpect(source="client"),
        ),
    )
    assert isinstance(r, ResolvedConnect)
    moved = Observation("connected", "web-a", r.source_ip, 18732, r.source_ip, 40000)
    assert evaluate(r, [moved, answer_from(r, "web-b", 40001)]).passed


def test_source_client_from_the_translating_node_rejects_a_translated_port() -> None:
    # A node dialling a ClusterIP translates itself: its masquerade address is the address it
    # sent from, so only the port tells the SNAT apart.
    r = resolve(
        STATE,
        check(
            Destination("web"),
            source=Source("node", "node-2"),
            expect=ConnectExpect(source="client"),
        ),
    )
    assert isinstance(r, ResolvedConnect)
    masq = Observation("connected", "web-b", r.source_ip, 5555, r.source_ip, 40001)
    result = evaluate(r, [answer_from(r, "web-a", 40000), masq])
    assert result.failures == [
        f"expected backends to see the client's own address {r.source_ip}, 1 saw a translated "
        f"one ({r.source_ip}:5555)"
    ]
    assert result.observed["translated"] == 1


def answer_from(r: ResolvedConnect, pod: str, port: int) -> Observation:
    """A connection from the check's client answered by ``pod``, which saw it untranslated."""
    return Observation("connected", pod, r.source_ip, port, r.source_ip, port)


def test_source_client_rejects_another_address() -> None:
    r = resolved(ConnectExpect(source="client"))
    observations = [
        answer("web-a", 40000, seen=("192.168.56.11", 40000)),
        answer("web-b", 40001, seen=("192.168.56.11", 61000)),
    ]
    result = evaluate(r, observations)
    assert result.failures == [
        f"expected backends to see the client's own address {CLIENT}, 2 saw a translated one "
        "(192.168.56.11:40000, 192.168.56.11:61000)"
    ]
    assert result.observed["sources"] == ["192.168.56.11"]


def test_masqueraded_expected() -> None:
    r = resolved(ConnectExpect(source="masqueraded"))
    masq = [
        answer("web-a", 40000, seen=("192.168.56.11", 40000)),
        answer("web-b", 40001, seen=(CLIENT, 33333)),
    ]
    assert evaluate(r, masq).passed
    result = evaluate(r, [answer("web-a", 40000), answer("web-b", 40001)])
    assert result.failures == [
        "expected masquerading, but 2 connections reached the backend with the client's own "
        f"address and port ({CLIENT})"
    ]


EXTERNAL = "192.168.56.100"
NODE_1_IP, NODE_2_IP = "192.168.56.11", "192.168.56.12"


def via_node_port(expect: ConnectExpect, node: str = "node-1") -> ResolvedConnect:
    return resolved(
        expect, Destination("web", via="nodePort", node=node), source=Source("external")
    )


def from_outside(pod: str, port: int, seen: str) -> Observation:
    return Observation("connected", pod, seen, port, EXTERNAL, port)


def test_snat_if_remote_expected() -> None:
    r = via_node_port(ConnectExpect(source="snat-if-remote"))
    assert r.entry_node == "node-1"
    assert dict(r.node_ips) == {"node-1": NODE_1_IP, "node-2": NODE_2_IP}
    # web-a is on node-1 (took the connection): the client's own address; web-b: node-1's.
    good = [from_outside("web-a", 40000, EXTERNAL), from_outside("web-b", 40001, NODE_1_IP)]
    assert evaluate(r, good).passed
    bad = [from_outside("web-a", 40000, NODE_1_IP), from_outside("web-b", 40001, EXTERNAL)]
    result = evaluate(r, bad)
    assert result.failures == [
        "expected the client's own address at backends on the node that took the connection "
        "and that node's address elsewhere: web-a is on node-1, the node that took the "
        f"connection, yet saw {NODE_1_IP} instead of the client's address; web-b (on node-2) saw "
        "the client's own address, though node-1 took the connection"
    ]
    result = evaluate(r, [from_outside("web-b", 40001, NODE_2_IP)] * 1 + good)
    assert result.failures[-1].endswith(
        f"web-b is on node-2, the node that took the connection, yet saw {NODE_2_IP} instead of "
        "the client's address"
    )


def test_literal_source_address_expected() -> None:
    r = resolved(ConnectExpect(source="169.254.42.1"))
    hairpin = [
        answer("web-a", 40000, seen=("169.254.42.1", 40000)),
        answer("web-b", 40001, seen=("169.254.42.1", 40001)),
    ]
    assert evaluate(r, hairpin).passed
    result = evaluate(r, [*hairpin, answer("web-b", 40002)])
    assert result.failures == [f"expected backends to see 169.254.42.1, they saw {CLIENT}"]


def test_raw_destination_checks_only_the_outcome() -> None:
    r = resolved(ConnectExpect(), Destination(address=WEB_IP, port=80, via=""))
    result = evaluate(r, [answer("web-a", 40000)])
    assert result.passed
    assert "endpoints" not in result.expected


# evaluate with captures ------------------------------------------------------------------------


def syn(src_port: int, dst: str, dport: int = 8080, flags: str = "S") -> CapturedPacket:
    return CapturedPacket(
        CLIENT, dst, src_port, dport, "TCP", flags, f"{CLIENT}:{src_port} > {dst}"
    )


def capture_check() -> ResolvedConnect:
    return resolved(ConnectExpect(source="client"), kind="capture")


OBSERVED = [answer("web-a", 40000), answer("web-b", 40001), answer("web-a", 40002)]


def test_capture_dnat_seen() -> None:
    captures = {
        "web-a": [syn(40000, WEB_A.ip), syn(40000, WEB_A.ip, flags="A"), syn(40002, WEB_A.ip)],
        "web-b": [syn(40001, WEB_B.ip)],
    }
    result = evaluate(capture_check(), OBSERVED, captures=captures)
    assert result.passed, result.failures
    assert result.kind == "capture"
    assert result.observed["dnat_seen"] == "3/3"
    assert result.observed["captured_syns"] == {"web-a": 2, "web-b": 1}
    assert result.observed["dnat_example"] == (
        f"{WEB_IP}:80 -> 10.244.1.2:8080 in web-a (SYN from {CLIENT}:40000)"
    )


def test_capture_syn_not_dnated() -> None:
    captures = {
        "web-a": [syn(40000, WEB_IP, 80), syn(40002, WEB_A.ip)],
        "web-b": [syn(40001, WEB_B.ip)],
    }
    result = evaluate(capture_check(), OBSERVED, captures=captures)
    assert result.failures == [
        f"the SYN reached web-a addressed to {WEB_IP}:80, not its own 10.244.1.2:8080"
    ]
    assert result.observed["dnat_seen"] == "2/3"


def test_capture_syn_missing() -> None:
    captures = {"web-a": [syn(40000, WEB_A.ip), syn(40002, WEB_A.ip)], "web-b": []}
    result = evaluate(capture_check(), OBSERVED, captures=captures)
    assert result.failures == [f"no SYN from {CLIENT}:40001 was captured in web-b"]
    assert result.observed["dnat_seen"] == "2/3"
    assert result.observed["captured_syns"] == {"web-a": 2, "web-b": 0}


def test_capture_syn_seen_in_two_pods() -> None:
    captures = {
        "web-a": [syn(40000, WEB_A.ip), syn(40002, WEB_A.ip)],
        "web-b": [syn(40001, WEB_B.ip), syn(40000, WEB_B.ip)],
    }
    result = evaluate(capture_check(), OBSERVED, captures=captures)
    assert result.failures == [f"the SYN from {CLIENT}:40000 also reached web-b"]
    assert result.observed["dnat_seen"] == "2/3"


def test_capture_one_source_port_towards_two_pods() -> None:
    """A node dialling pods (the userspace proxy) may use one source port towards two pods:
    two answered connections, each SYN in the pod that answered it, is no duplicate."""
    observed = [answer("web-a", 40000), answer("web-b", 40000)]
    captures = {"web-a": [syn(40000, WEB_A.ip)], "web-b": [syn(40000, WEB_B.ip)]}
    result = evaluate(capture_check(), observed, captures=captures)
    assert result.failures == []
    assert result.observed["dnat_seen"] == "2/2"


def test_capture_answer_from_a_non_endpoint_and_nothing_answered() -> None:
    result = evaluate(capture_check(), [answer("stranger", 40000)], captures={"web-a": []})
    assert "stranger answered but is not an endpoint" in result.failures
    result = evaluate(capture_check(), [Observation("timeout", error="no answer")], captures={})
    assert result.failures[-1] == "no connection was answered, so no SYN could be matched"
    assert result.observed["dnat_seen"] == "0/0"


def test_capture_more_than_three_problems_are_summarised() -> None:
    observed = [answer("web-a", 40000 + i) for i in range(5)]
    result = evaluate(capture_check(), observed, captures={"web-a": []})
    assert result.failures == [
        "never reached: web-b in 5 connections",
        f"no SYN from {CLIENT}:40000 was captured in web-a",
        f"no SYN from {CLIENT}:40001 was captured in web-a",
        f"no SYN from {CLIENT}:40002 was captured in web-a",
        "(and 2 more)",
    ]
