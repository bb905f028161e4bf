"""Stale UDP conntrack cleanup: which entries kube-proxy deletes (after kubernetes/kubernetes
``pkg/proxy/conntrack/cleanup_test.go``, v1.33, TestCleanStaleEntries and
TestServiceWithoutEndpoints), when it must run, and the ctnetlink messages that list and delete
entries (pure: no kernel)."""

from __future__ import annotations

import socket
import struct
import textwrap

from netlab.checks.observations import ConntrackEntry
from netlab.cluster.build import build_cluster
from netlab.cluster.state import ClusterState
from netlab.kernel import conntrack as ctnl
from netlab.kernel.nlattr import attr, attrs
from netlab.proxy.conntrack import cleanup_required, stale_entries, udp_frontends
from netlab.scenario.load import parse_scenario

CLUSTER_IP = "10.96.1.1"
EXTERNAL_IP = "192.168.99.100"
SERVICE_PORT = 8000
NODE_PORT = 32000
ENDPOINT_PORT = 9090
OLD_ENDPOINT_PORT = 8080
NON_SERVICE_PORT = 3000


def cluster() -> ClusterState:
    """One Service like upstream's test: TCP, UDP (with a NodePort) and SCTP on port 8000, a
    serving endpoint (10.244.1.2) and one that is not serving (10.244.1.3)."""
    text = textwrap.dedent(
        f"""\
        apiVersion: netlab.dev/v1alpha1
        kind: Lab
        metadata: {{name: demo}}
        spec: {{dns: {{enabled: false}}, clientPods: false}}
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: cleanup-test}}
        spec:
          type: LoadBalancer
          clusterIP: {CLUSTER_IP}
          externalIPs: [{EXTERNAL_IP}]
          selector: {{app: x}}
          ports:
          - {{name: test-tcp, port: {SERVICE_PORT}, targetPort: {ENDPOINT_PORT}}}
          - {{name: test-udp, port: {SERVICE_PORT}, protocol: UDP, targetPort: {ENDPOINT_PORT},
              nodePort: {NODE_PORT}}}
          - {{name: test-sctp, port: {SERVICE_PORT}, protocol: SCTP, targetPort: {ENDPOINT_PORT},
              nodePort: {NODE_PORT}}}
        """
    )
    for name, ready in (("serving", "true"), ("not-serving", "false")):
        text += textwrap.dedent(
            f"""\
            ---
            apiVersion: v1
            kind: Pod
            metadata:
              name: {name}
              labels: {{app: x}}
              annotations: {{netlab.dev/ready: "{ready}"}}
            spec:
              nodeName: node-1
              containers: [{{name: c, image: x}}]
            """
        )
    return build_cluster(parse_scenario(text, "demo.yaml"))


def entry(
    dst: str, dport: int, reply_src: str, reply_sport: int, proto: str = "UDP"
) -> ConntrackEntry:
    return ConntrackEntry(
        proto, ("10.244.2.9", dst, 40000, dport), (reply_src, "10.244.2.9", reply_sport, 40000)
    )


def test_clean_stale_entries_as_upstream() -> None:
    state = cluster()
    lb = state.service("default", "cleanup-test").load_balancer_ingress[0]
    serving, not_serving, deleted = "10.244.1.2", "10.244.1.3", "10.244.1.99"
    frontends = udp_frontends(state)
    assert frontends.by_address[(CLUSTER_IP, SERVICE_PORT)] == {(serving, ENDPOINT_PORT)}
    assert frontends.by_node_port == {NODE_PORT: frozenset({(serving, ENDPOINT_PORT)})}

    before: list[ConntrackEntry] = []
    after: list[ConntrackEntry] = []
    # The endpoint changed its port: cleared.
    for dst in (CLUSTER_IP, lb, EXTERNAL_IP):
        before.append(entry(dst, SERVICE_PORT, serving, OLD_ENDPOINT_PORT))
    for dnat in (serving, not_serving, deleted):
        for proto in ("TCP", "UDP", "SCTP"):
            for dst in (CLUSTER_IP, lb, EXTERNAL_IP):
                for port in (SERVICE_PORT, NON_SERVICE_PORT):
                    e = entry(dst, port, dnat, ENDPOINT_PORT, proto)
                    before.append(e)
                    if not (proto == "UDP" and port == SERVICE_PORT and dnat != serving):
                        after.append(e)
            e = entry("192.168.56.11", NODE_PORT, dnat, ENDPOINT_PORT, proto)
            before.append(e)
            if not (proto == "UDP" and dnat != serving):
                after.append(e)
    # Flows from when the Service had no endpoint: not DNATed (reply source = Service IP).
    for ip in (CLUSTER_IP, lb, EXTERNAL_IP):
        for port in (SERVICE_PORT, NON_SERVICE_PORT):
            e = entry(ip, port, ip, port)
            before.append(e)
            if port != SERVICE_PORT:
                after.append(e)
    doomed = stale_entries(before, frontends)
    assert [e for e in before if e not in doomed] == after
    assert len(doomed) == 3 + 6 + 2 + 3


def test_a_service_without_serving_endpoints_is_left_alone() -> None:
    state = cluster()
    for sl in state.slices:
        for ep in sl.endpoints:
            ep.serving = False
    frontends = udp_frontends(state)
    assert frontends.by_address == {} and frontends.by_node_port == {}
    assert (
        stale_entries([entry(CLUSTER_IP, SERVICE_PORT, "10.244.1.99", ENDPOINT_PORT)], frontends)
        == []
    )


def test_cleanup_is_required_only_when_a_udp_service_changed() -> None:
    state = cluster()
    assert cleanup_required(state, {"default/cleanup-test"})
    assert not cleanup_required(state, {"default/kubernetes"})
    assert not cleanup_required(state, set())


def test_delete_request_names_the_entry_by_its_original_tuple() -> None:
    e = ConntrackEntry(
        "UDP", ("10.244.1.3", "10.96.0.10", 40000, 53), ("10.244.2.4", "10.244.1.3", 53, 40000)
    )
    msg = ctnl.delete_request(e)
    assert msg[:4] == struct.pack("=BBH", socket.AF_INET, 0, 0)
    ((kind, orig),) = list(attrs(msg[4:]))
    assert kind == ctnl.CTA_TUPLE_ORIG
    parts = dict(attrs(orig))
    ip = dict(attrs(parts[ctnl.CTA_TUPLE_IP]))
    l4 = dict(attrs(parts[ctnl.CTA_TUPLE_PROTO]))
    assert (socket.inet_ntoa(ip[1]), socket.inet_ntoa(ip[2])) == ("10.244.1.3", "10.96.0.10")
    assert (
        l4[1] == bytes([17])
        and l4[2] == struct.pack("!H", 40000)
        and l4[3] == struct.pack("!H", 53)
    )


def test_a_dumped_entry_parses_back() -> None:
    e = ConntrackEntry(
        "UDP", ("10.244.1.3", "10.96.0.10", 40000, 53), ("10.244.2.4", "10.244.1.3", 53, 40000)
    )
    payload = (
        struct.pack("=BBH", socket.AF_INET, 0, 0)
        + ctnl.tuple_attr(ctnl.CTA_TUPLE_ORIG, e.proto, e.original)
        + ctnl.tuple_attr(ctnl.CTA_TUPLE_REPLY, e.proto, e.reply)
        + attr(3, struct.pack("!I", 0x8))  # CTA_STATUS, ignored
    )
    assert ctnl.parse_entry(payload) == e
    assert ctnl.parse_entry(struct.pack("=BBH", socket.AF_INET6, 0, 0)) is None
