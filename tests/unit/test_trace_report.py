"""The trace parsers and report, on what the kernel's tools printed in real labs (recorded
once; tests/unit/data/trace/), so the pure half of ``netlab trace`` is pinned without root."""

from __future__ import annotations

from pathlib import Path

from netlab.checks.validate import load_and_validate
from netlab.explain.addresses import address_book
from netlab.explain.conntrack import Tuple, nat_table, parse_flows
from netlab.explain.trace.events import parse_nft, parse_xtables
from netlab.explain.trace.ipvs import parse_connections
from netlab.explain.trace.report import CLIENT, ORIGINAL, PROXY, REPLY, TraceInput, build
from netlab.explain.trace.select import FlowSelect
from netlab.explain.trace.tree import report_tree

DATA = Path(__file__).parent / "data" / "trace"
ROOT = Path(__file__).resolve().parents[2]


def text(name: str) -> str:
    return (DATA / name).read_text()


def test_xtables_passes_keep_interleaved_events_with_their_packet() -> None:
    passes = parse_xtables(text("iptables-reject-node-1.txt"))
    hooks = [(p.table, p.chain) for p in passes]
    assert hooks == [
        ("raw", "PREROUTING"),
        ("nat", "PREROUTING"),
        ("filter", "FORWARD"),
        ("raw", "OUTPUT"),
        ("filter", "OUTPUT"),
    ]
    forward = passes[2]
    assert forward.header.oif == "eth0" and forward.header.flags == "SYN"
    # The REJECT was printed after the ICMP error's events, yet belongs to the SYN's pass.
    last = forward.hits[-1]
    assert (last.chain, last.verdict) == ("KUBE-SERVICES", "drop")
    assert "has no endpoints" in last.rule and "-j REJECT" in last.rule
    assert [h.verdict for h in passes[1].hits] == ["jump KUBE-SERVICES", "accept"]
    assert passes[1].hits[-1].policy
    icmp = passes[3].header
    assert (icmp.src, icmp.dst, icmp.sport, icmp.proto) == ("10.244.1.1", "10.244.1.4", 0, "")


def test_xtables_return_verdict_is_read_from_its_number() -> None:
    passes = parse_xtables(text("userspace-node-1.txt"))
    returns = [h for p in passes for h in p.hits if h.verdict == "return"]
    assert returns and all("-j RETURN" in h.rule for h in returns)


def test_nft_passes_and_verdicts() -> None:
    passes = parse_nft(text("nftables-clusterip-node-1.txt"))
    nat = next(p for p in passes if p.chain == "nat-prerouting")
    assert nat.table == "kube-proxy"
    assert [h.verdict for h in nat.hits] == [
        "jump services",
        "goto service-SUSTUHLJ-default/web/tcp/http",
        "goto endpoint-QYTGA46O-default/web/tcp/http__10.244.1.3/8080",
        "accept",
    ]
    assert nat.hits[1].rule == "ip daddr . meta l4proto . th dport vmap @service-ips"
    assert nat.header.flags == "SYN" and nat.header.dport == 80
    psh = [p for p in passes if p.header.flags == "ACK PSH"]
    assert psh, "0x18 is ACK|PSH"


def test_nft_reject_and_icmp_error() -> None:
    passes = parse_nft(text("nftables-reject-node-1.txt"))
    forward = next(p for p in passes if p.chain == "filter-forward")
    assert [h.verdict for h in forward.hits] == [
        "jump service-endpoints-check",
        "goto reject-chain",
        "drop",
    ]
    assert forward.hits[-1].rule == "reject"
    icmp = next(p for p in passes if p.header.proto == "icmp")
    assert icmp.header.flags == "ICMP unreachable (port-unreachable)"


def test_userspace_report_shows_the_portal_and_the_proxys_two_connections() -> None:
    _, state = load_and_validate(str(ROOT / "scenarios" / "clusterip.yaml"))
    book = address_book(state)
    inp = TraceInput(
        lab="clusterip",
        mode="userspace",
        proxy="userspace",
        source="pod/client-node-1",
        destination="service default/web:http",
        protocol="TCP",
        client=("10.244.1.4", 35392),
        dialled=("10.107.164.13", 80),
        outcome="connected",
        error="",
        answered_by="web-65ffbfbc85-trp6n",
        backend=("10.244.1.3", 8080),
        seen=("10.244.1.1", 43094),
        client_where="pod/client-node-1",
        client_node="node-1",
        backend_where="pod/web-65ffbfbc85-trp6n",
        passes={"node-1": parse_xtables(text("userspace-node-1.txt"))},
        flows={"node-1": parse_flows(text("userspace-conntrack-node-1.txt"))},
    )
    report = build(inp, book)
    kinds = [(p.connection, p.direction) for p in report.packets]
    # This recording traced no packets from the endpoint: the proxy's replies are not in it.
    assert kinds == [(CLIENT, ORIGINAL), (CLIENT, REPLY), (PROXY, ORIGINAL)]
    first = report.packets[0]
    rules = [s.rule for ps in first.passes for s in ps.steps]
    assert any("-j REDIRECT --to-ports 35019" in r for r in rules)
    assert first.fate == "delivered to a socket on the node"
    proxy = report.packets[2]
    assert proxy.packet == "10.244.1.1:43094 -> 10.244.1.3:8080 SYN"
    assert [nf.connection for nf in report.conntrack] == [CLIENT, PROXY]  # client first
    assert report.masqueraded and report.seen_source == "10.244.1.1:43094"
    lines = report_tree(report).lines()
    assert lines[0].startswith("trace clusterip: pod/client-node-1 10.244.1.4:35392 -> ")
    assert any("the proxy's connection: node/node-1 (out cni0)" in ln for ln in lines)
    assert any("(service default/web:http)" in ln for ln in lines)


def test_reject_report_names_the_rule() -> None:
    _, state = load_and_validate(str(ROOT / "scenarios" / "no-endpoints.yaml"))
    inp = TraceInput(
        lab="no-endpoints",
        mode="iptables",
        proxy="iptables",
        source="pod/client-node-1",
        destination="service default/nobody:web",
        protocol="TCP",
        client=("10.244.1.4", 43108),
        dialled=("10.106.246.117", 80),
        outcome="refused",
        error="connection refused",
        answered_by="",
        backend=None,
        seen=None,
        client_where="pod/client-node-1",
        client_node="node-1",
        backend_where="",
        passes={"node-1": parse_xtables(text("iptables-reject-node-1.txt"))},
        flows={"node-1": []},
    )
    report = build(inp, address_book(state))
    assert report.decided_by.startswith("rejected by KUBE-SERVICES: ")
    assert "default/nobody:web has no endpoints" in report.decided_by
    reply = [p for p in report.packets if p.direction == REPLY]
    assert reply and reply[0].packet.startswith("10.244.1.1 -> 10.244.1.4")


def test_select_renders_trace_rules_both_ways() -> None:
    sel = FlowSelect("tcp", "10.244.1.4", 40000, (("10.244.2.2", 8080),))
    on = sel.iptables_restore("-I").splitlines()
    off = sel.iptables_restore("-D").splitlines()
    assert on[0] == "*raw" and on[-1] == "COMMIT"
    assert on[1] == (
        '-I PREROUTING 1 -p tcp -s 10.244.1.4 --sport 40000 -m comment --comment "netlab trace" '
        "-j TRACE"
    )
    assert len(on) == len(off) == 2 + 2 * 5
    assert off[1].startswith("-D PREROUTING -p tcp -s 10.244.1.4 --sport 40000 ")
    table = sel.nft_table()
    assert "type filter hook prerouting priority -350; policy accept;" in table
    assert "\t\tip saddr 10.244.1.4 tcp sport 40000 meta nftrace set 1\n" in table


def test_ipvs_connection_table() -> None:
    listing = (
        "IPVS connection entries\n"
        "pro expire state       source             virtual            destination\n"
        "TCP 01:58  TIME_WAIT   10.244.1.4:40372   10.107.164.13:80   10.244.2.2:8080\n"
    )
    (c,) = parse_connections(listing)
    assert (c.source, c.virtual, c.destination) == (
        ("10.244.1.4", 40372),
        ("10.107.164.13", 80),
        ("10.244.2.2", 8080),
    )
    assert c.describe().endswith("real server 10.244.2.2:8080 (TIME_WAIT)")


def test_conntrack_flows_named_side_by_side() -> None:
    _, state = load_and_validate(str(ROOT / "scenarios" / "clusterip.yaml"))
    flows = parse_flows(text("userspace-conntrack-node-1.txt"))
    assert len(flows) == 3
    unknown, proxy, client = flows
    assert unknown.proto == "unknown" and "UNREPLIED" in unknown.flags
    assert (client.state, client.dnat, client.snat) == ("TIME_WAIT", True, False)
    assert client.involves(Tuple("10.244.1.1", "10.244.1.4", 35019, 35392))
    assert not proxy.dnat and not proxy.snat
    table = nat_table("node-1", flows, address_book(state), None)
    (row,) = table.rows()
    assert row[1] == (
        "10.244.1.4:35392 (pod/client-node-1) -> 10.107.164.13:80 (service default/web:http)"
    )
    assert row[2] == "10.244.1.1:35019 (node/node-1 cni0) -> 10.244.1.4:35392 (pod/client-node-1)"
    assert row[3] == "DNAT"
    assert nat_table("node-1", flows, address_book(state), {("10.96.0.10", 53)}).rows() == []


def test_trace_arguments_are_checked_before_anything_is_switched_on() -> None:
    """Bad FROM/TO/protocol: a clear usage error (exit 2), nothing touched."""
    import pytest

    from netlab.errors import UsageError
    from netlab.lab.record import LabRecord
    from netlab.lab.trace import _resolve, parse_target
    from netlab.proxy.registry import make_proxier

    _, state = load_and_validate(str(ROOT / "scenarios" / "clusterip.yaml"))
    record = LabRecord(
        name="t", scenario="", created=0, status="up", mode="iptables", cluster=state
    )

    class FakeLab:
        name = "t"

        def __init__(self) -> None:
            self.state = state
            self.record = record
            self.proxier = make_proxier("iptables", state)

    lab = FakeLab()
    assert parse_target("{service: web, via: nodePort, node: node-2}").via == "nodePort"
    for source, dest, proto, message in (
        ("pod/nope", "service/web:http", None, 'pod "nope" not found'),
        ("pod/client-node-1", "service/nope", None, 'service "default/nope" not found'),
        ("pod/client-node-1", "nowhere", None, "unknown destination 'nowhere'"),
        ("pod/client-node-1", "{service: [", None, "cannot read"),
        ("nodes/node-1", "service/web:http", None, "unknown source 'nodes/node-1'"),
        ("pod/client-node-1", "service/web:http", "SCTP", "unknown protocol 'SCTP'"),
    ):
        with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("[", r"\[")):
            _resolve(lab, source, dest, proto)
    ok = _resolve(lab, "pod/client-node-1", "service/web:http", None)
    assert (ok.dest_ip, ok.dest_port, ok.protocol) == (
        state.service("default", "web").cluster_ip,
        80,
        "TCP",
    )
    assert len(ok.backends) == 3
