"""Cluster DNS and the stand-in load balancer, poked at from a live lab as a learner would."""

from __future__ import annotations

import json
import re
import select
import socket
import time
from collections.abc import Iterator

import dnslib
import pytest

from netlab.kernel import threads
from netlab.lab.lifecycle import Lab
from tests.lab.host import netlab, scenario, snapshot

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)

LB_LOCAL_ROUTE = "192.0.2.2 via 192.168.56.11 dev eth0 "  # only the healthy node
LOCAL_HEALTHY = {
    "service": {"namespace": "default", "name": "local"},
    "localEndpoints": 1,
    "serviceProxyHealthy": True,
}


def _live_lab(file: str, name: str) -> Iterator[str]:
    """A lab up for a module's tests; ``down`` must succeed and leave the host as it was."""
    before = snapshot()
    up = netlab("up", scenario(file), "--name", name)
    assert up.returncode == 0, up.stderr
    yield name
    down = netlab("down", name)
    assert down.returncode == 0, down.stderr
    after = snapshot()
    assert after == before, before.diff(after)


@pytest.fixture(scope="module")
def dns_lab() -> Iterator[str]:
    yield from _live_lab("dns.yaml", "dnslab")


def _exec(lab: str, target: str, *argv: str) -> str:
    out = netlab("exec", lab, target, "--", *argv)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_dig_a_service_from_a_pod(dns_lab: str) -> None:
    fqdn = _exec(dns_lab, "pod/toolbox", "dig", "+short", "web.default.svc.cluster.local")
    assert fqdn.split() == ["10.96.100.100"]
    # The search path, as kubelet writes it, turns the short name into the same one.
    short = _exec(dns_lab, "pod/toolbox", "dig", "+search", "+short", "web")
    assert short.split() == ["10.96.100.100"]
    hosts = _exec(dns_lab, "pod/toolbox", "getent", "hosts", "web")
    assert hosts.split() == ["10.96.100.100", "web.default.svc.cluster.local"]


def test_pod_resolver_configuration_is_kubelets(dns_lab: str) -> None:
    assert _exec(dns_lab, "pod/toolbox", "cat", "/etc/resolv.conf") == (
        "search default.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\n"
        "options ndots:5\n"
    )
    hosts = _exec(dns_lab, "pod/toolbox", "cat", "/etc/hosts")
    assert hosts.startswith("# Kubernetes-managed hosts file.\n")
    assert re.search(r"^10\.244\.2\.\d+\ttoolbox$", hosts, re.M)


def _kube_dns_packets(lab: str, node: str) -> int:
    text = netlab(
        "rules", lab, f"node/{node}", "--counters", "--service", "kube-system/kube-dns"
    ).stdout
    counts = re.findall(r"^\[(\d+):\d+\] -A KUBE-SVC-TCOU7JCQXEZGVUNU ", text, re.M)
    assert counts, text
    return sum(int(c) for c in counts)


def test_dns_queries_cross_the_kube_dns_chain(dns_lab: str) -> None:
    before = _kube_dns_packets(dns_lab, "node-2")  # toolbox runs on node-2
    for _ in range(3):
        _exec(dns_lab, "pod/toolbox", "dig", "+short", "kubernetes.default.svc.cluster.local")
    after = _kube_dns_packets(dns_lab, "node-2")
    assert after >= before + 3


@pytest.fixture(scope="module")
def lb_lab() -> Iterator[str]:
    yield from _live_lab("loadbalancer.yaml", "lblab")


def _health(lab: str, ip: str) -> tuple[str, dict[str, object]]:
    """The Local Service's health check node port on one node, asked from outside."""
    out = _exec(lab, "external", "curl", "-s", "-w", "\n%{http_code}", f"http://{ip}:32000/")
    body, _, code = out.rpartition("\n")
    return code, json.loads(body)


def test_health_check_node_port_answers_like_kube_proxy(lb_lab: str) -> None:
    assert _health(lb_lab, "192.168.56.11") == ("200", LOCAL_HEALTHY)
    code, body = _health(lb_lab, "192.168.56.12")
    assert code == "503"
    assert body["localEndpoints"] == 0


def test_load_balancer_status_and_routes(lb_lab: str) -> None:
    data = json.loads(netlab("status", lb_lab, "--json").stdout)
    by_service = {b["service"]: b for b in data["loadBalancers"]}
    assert by_service["default/web"]["nodes"] == ["node-1", "node-2"]
    assert by_service["default/local"]["nodes"] == ["node-1"]
    assert by_service["default/local"]["health"] == {"node-1": 200, "node-2": 503}
    routes = _exec(lb_lab, "external", "ip", "route")
    assert LB_LOCAL_ROUTE in routes.splitlines()
    # Cluster policy: every node is a next hop (ECMP).
    assert re.search(
        r"^192\.0\.2\.1 \n\tnexthop via 192\.168\.56\.11 dev eth0 weight 1 \n"
        r"\tnexthop via 192\.168\.56\.12 dev eth0 weight 1 $",
        routes,
        re.M,
    )


@pytest.fixture(scope="module")
def headless_lab() -> Iterator[str]:
    yield from _live_lab("headless.yaml", "hllab")


def _dig(lab: str, name: str) -> list[str]:
    return sorted(_exec(lab, "pod/client-node-1", "dig", "+short", name).split())


def test_headless_answers_follow_readiness(headless_lab: str) -> None:
    status = json.loads(netlab("status", headless_lab, "--json").stdout)
    ips = {p["name"]: p["ip"] for p in status["pods"]}
    assert _dig(headless_lab, "db.default.svc.cluster.local") == sorted([ips["db-0"], ips["db-1"]])
    flip = netlab("ready", headless_lab, "pod/db-1", "false")
    assert flip.returncode == 0, flip.stderr
    assert _dig(headless_lab, "db.default.svc.cluster.local") == [ips["db-0"]]
    assert netlab("ready", headless_lab, "pod/db-0", "false").returncode == 0
    nx = _exec(headless_lab, "pod/client-node-1", "dig", "db.default.svc.cluster.local")
    assert "status: NXDOMAIN" in nx  # no ready endpoint at all
    assert netlab("ready", headless_lab, "pod/db-0", "true").returncode == 0
    assert netlab("ready", headless_lab, "pod/db-1", "true").returncode == 0
    assert _dig(headless_lab, "db.default.svc.cluster.local") == sorted([ips["db-0"], ips["db-1"]])


def test_load_balancer_follows_health(lb_lab: str) -> None:
    """web-a is the Local Service's only endpoint: unready, node-1's health check turns 503 and
    the load balancer withdraws the address; ready again, it comes back."""
    assert netlab("ready", lb_lab, "pod/web-a", "false").returncode == 0
    try:
        data = json.loads(netlab("status", lb_lab, "--json").stdout)
        local = next(b for b in data["loadBalancers"] if b["service"] == "default/local")
        assert local["nodes"] == []
        assert local["health"] == {"node-1": 503, "node-2": 503}
        assert "192.0.2.2" not in _exec(lb_lab, "external", "ip", "route")
        # The Cluster Service lost an endpoint: its stale KUBE-SEP chain is gone from node-1.
        rules = netlab("rules", lb_lab, "node/node-1", "--service", "web").stdout
        assert rules.count(":KUBE-SEP-") == 1
    finally:
        assert netlab("ready", lb_lab, "pod/web-a", "true").returncode == 0
    data = json.loads(netlab("status", lb_lab, "--json").stdout)
    local = next(b for b in data["loadBalancers"] if b["service"] == "default/local")
    assert local["nodes"] == ["node-1"]
    assert local["health"] == {"node-1": 200, "node-2": 503}
    assert _health(lb_lab, "192.168.56.11") == ("200", LOCAL_HEALTHY)
    routes = _exec(lb_lab, "external", "ip", "route").splitlines()
    assert [ln for ln in routes if ln.startswith("192.0.2.2 ")] == [LB_LOCAL_ROUTE]


# A burst of queries --------------------------------------------------------------------------

BURST_PODS = ("pod/toolbox", "pod/netlab/client-node-1", "pod/netlab/client-node-2", "pod/web")
BURST = 2000


def _burst_socket(address: str) -> socket.socket:
    """A client socket in the pod's namespace (it stays there), with a receive buffer big enough
    that the client, not the server, would be the one to lose answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
    sock.connect((address, 53))
    sock.setblocking(False)
    return sock


def test_cluster_dns_holds_a_burst_of_queries(dns_lab: str) -> None:
    """2,000 queries from 4 pods at once, as fast as the clients can send them, all through
    kube-dns's ClusterIP: every one is answered (none lost to a full receive buffer)."""
    lab = Lab.open(dns_lab)
    netns = [lab.target_netns(t.replace("pod/web", f"pod/{_a_web_pod(lab)}")) for t in BURST_PODS]
    socks = [threads.call(_burst_socket, "10.96.0.10", netns_name=n) for n in netns]
    try:
        per = BURST // len(socks)
        wanted: set[tuple[int, int]] = set()
        t0 = time.perf_counter()
        for i in range(per):
            for s, sock in enumerate(socks):
                qid = s * per + i
                query = dnslib.DNSRecord.question("web.default.svc.cluster.local", "A")
                query.header.id = qid
                sock.send(query.pack())
                wanted.add((s, qid))
        sent = time.perf_counter() - t0
        got: set[tuple[int, int]] = set()
        deadline = time.monotonic() + 20
        while got != wanted and time.monotonic() < deadline:
            ready, _, _ = select.select(socks, [], [], 0.5)
            for sock in ready:
                s = socks.index(sock)
                while True:
                    try:
                        data = sock.recv(4096)
                    except BlockingIOError:
                        break
                    reply = dnslib.DNSRecord.parse(data)
                    assert reply.header.rcode == 0 and reply.rr, reply
                    got.add((s, reply.header.id))
        lost = len(wanted - got)
        assert lost == 0, f"{lost} of {len(wanted)} queries unanswered (sent in {sent:.2f}s)"
    finally:
        for sock in socks:
            sock.close()


def _a_web_pod(lab: Lab) -> str:
    return next(p.name for p in lab.state.pods if p.labels.get("app") == "web")


def test_dns_policies_as_kubelet_writes_them(dns_lab: str) -> None:
    """Default: the node's resolver; None: dnsConfig alone; the CoreDNS pods use Default, as
    kubeadm installs them, so they forward to the node's upstream and never to themselves."""
    assert _exec(dns_lab, "pod/hostdns", "cat", "/etc/resolv.conf") == "nameserver 192.168.56.100\n"
    assert _exec(dns_lab, "pod/owndns", "cat", "/etc/resolv.conf") == (
        "search svc.cluster.local default.svc.cluster.local\n"
        "nameserver 10.96.0.10\n"
        "options ndots:1\n"
    )
    lab = Lab.open(dns_lab)
    coredns = next(p for p in lab.state.pods if p.runs == "coredns")
    target = f"pod/kube-system/{coredns.name}"
    assert _exec(dns_lab, target, "cat", "/etc/resolv.conf") == "nameserver 192.168.56.100\n"
    # getent reads /etc/hosts first (nsswitch files dns): the pod's own name is there.
    toolbox = lab.state.pod("default", "toolbox")
    assert _exec(dns_lab, "pod/toolbox", "getent", "hosts", "toolbox").split() == [
        toolbox.ip,
        "toolbox",
    ]


def _dig_from_toolbox(lab: str, *args: str) -> str:
    return _exec(lab, "pod/toolbox", "dig", "+time=2", "+tries=1", *args)


def test_what_coredns_refuses_on_the_wire(dns_lab: str) -> None:
    """Through kube-dns's ClusterIP from a pod: BADVERS for EDNS version 1, REFUSED for class
    CH, NXDOMAIN for TXT of a name that does not exist, FORMERR for a 64-octet label."""
    dig = _dig_from_toolbox
    badvers = dig(dns_lab, "+edns=1", "+noednsnegotiation", "web.default.svc.cluster.local")
    assert "status: BADVERS" in badvers
    assert "status: REFUSED" in dig(dns_lab, "-c", "CH", "TXT", "version.bind")
    assert "status: NXDOMAIN" in dig(dns_lab, "TXT", "nope.default.svc.cluster.local")
    lab = Lab.open(dns_lab)
    raw = b"\x4e\x17\x01\x00\x00\x01" + bytes(6) + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01"
    reply = threads.call(_ask_raw, raw, netns_name=lab.target_netns("pod/toolbox"))
    assert reply == b"\x4e\x17\x81\x01" + bytes(8)  # FORMERR, header only: never silence


def _ask_raw(data: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(data, ("10.96.0.10", 53))
        return sock.recv(512)
