"""netlab.proxy.ipvs.render against upstream kube-proxy's own IPVS unit tests.

The expectations come from ``kubernetes/kubernetes`` ``pkg/proxy/ipvs/proxier_test.go`` (the
``ktesting``/``buildFakeProxier(t)`` version, Kubernetes v1.31 and later) and the layout from
``proxier.go`` and ``ipset.go`` of the same releases. Upstream's fixtures are
rebuilt as netlab ``ProxiedService``s:

* endpoints whose slice sets ``NodeName: testNodeName`` are ``is_local``; IPv6 endpoints and
  addresses are kept in the fixture where upstream has them (the IPv4 render must skip them);
* ``NewFakeProxier(..., nodeIPs, ...)`` puts ``nodeIPs`` on the fake's eth0: that is
  ``IpvsOptions.node_ips``; a ``nodePortAddresses`` CIDR selects from them the same way;
* the fake's local detector is a no-op (its ClusterIP masquerade rule matches ``src,dst``);
  netlab always has DetectLocalByCIDR. ``checkIptables`` compares only each rule's target and
  matched set, so that difference is invisible to the ported expectations.

Some upstream fixtures give the endpoint port protocol UDP for a TCP Service (TestExternalIPs,
TestLoadBalancer, TestAcceptIPVSTraffic): upstream's EndpointsMap then has no endpoints for the
TCP port, so the ports here have none either.
"""

from __future__ import annotations

import platform
from typing import Any

import pytest

from netlab.cluster.build import build_cluster
from netlab.proxy.ipvs import render as r
from netlab.proxy.ipvs.proxier import IpvsProxier
from netlab.proxy.ipvs.render import (
    IpvsOp,
    IpvsOptions,
    IpvsRuleSet,
    RealServer,
    VirtualServer,
    bind_changes,
    canonical_entry,
    filter_ipvsadm_list,
    ipvs_sysctls,
    ipvsadm_restore_text,
    parse_ipset_save,
    reconcile,
    render,
)
from netlab.proxy.servicemap import ProxiedService
from netlab.scenario.load import parse_scenario
from tests.unit.servicemaps import TEST_NODE_NAME, ep, svc

NODE_IP = "100.101.102.103"


def fake(node_ips: tuple[str, ...] = (), **kw: Any) -> IpvsOptions:
    """NewFakeProxier: no node IP unless given (so no NodePort virtual servers)."""
    return IpvsOptions(
        node_ip=kw.pop("node_ip", ""), cluster_cidr="10.0.0.0/8", node_ips=node_ips, **kw
    )


def ipvs_state(rs: IpvsRuleSet) -> dict[tuple[str, int, str], list[str]]:
    """What ``reflect.DeepEqual(ipvs, expectedIPVS)`` compares: services and destinations."""
    out: dict[tuple[str, int, str], list[str]] = {}
    for vs in rs.virtual_servers:
        assert vs.scheduler == "rr"
        assert all(d.weight == 1 for d in vs.real_servers)
        out[(vs.address, vs.port, vs.protocol)] = [str(d) for d in vs.real_servers]
    return out


def vs_at(rs: IpvsRuleSet, ip: str, port: int, protocol: str = "TCP") -> VirtualServer:
    for vs in rs.virtual_servers:
        if vs.key == (protocol, ip, port):
            return vs
    raise AssertionError(f"no virtual server {ip}:{port}/{protocol}")


def entries(rs: IpvsRuleSet, name: str) -> list[str]:
    return sorted(rs.ipset(name).entries)


def chain_rules(rs: IpvsRuleSet, chain: str) -> list[tuple[str, str]]:
    """upstream getRules + checkIptables: (jump, matched set) of every rule in ``chain``, nat
    table first, then filter (the fake's SaveInto order)."""
    out = []
    for line in (*rs.nat_rules, *rs.filter_rules):
        words = line.split()
        if words[:2] != ["-A", chain]:
            continue
        jump = words[words.index("-j") + 1] if "-j" in words else ""
        match_set = words[words.index("--match-set") + 1] if "--match-set" in words else ""
        out.append((jump, match_set))
    return out


# Expected chains as upstream writes them in its tests.
SERVICES_BASE = [("RETURN", ""), ("KUBE-MARK-MASQ", r.CLUSTER_IP), ("KUBE-NODE-PORT", "")]


# ---------------------------------------------------------------------------------------------
# TestCreateAndLinkKubeChain, TestDismissLocalhostRuleExist, TestMasqueradeRule


def test_create_and_link_kube_chain() -> None:
    rs = render([], fake())
    assert "\n".join(rs.nat_chains) + "\n" == (
        ":KUBE-SERVICES - [0:0]\n"
        ":KUBE-POSTROUTING - [0:0]\n"
        ":KUBE-NODE-PORT - [0:0]\n"
        ":KUBE-LOAD-BALANCER - [0:0]\n"
        ":KUBE-MARK-MASQ - [0:0]\n"
    )
    assert "\n".join(rs.filter_chains) + "\n" == (
        ":KUBE-FORWARD - [0:0]\n"
        ":KUBE-NODE-PORT - [0:0]\n"
        ":KUBE-PROXY-FIREWALL - [0:0]\n"
        ":KUBE-SOURCE-RANGES-FIREWALL - [0:0]\n"
        ":KUBE-IPVS-FILTER - [0:0]\n"
        ":KUBE-IPVS-OUT-FILTER - [0:0]\n"
    )


def test_dismiss_localhost_rule_exist() -> None:
    rs = render([], fake())
    first = next(ln for ln in rs.nat_rules if ln.startswith("-A KUBE-SERVICES "))
    assert first == "-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN"


@pytest.mark.parametrize("random_fully", [False, True])
def test_masquerade_rule(random_fully: bool) -> None:
    rs = render([], fake(random_fully=random_fully))
    masq = [
        ln for ln in rs.nat_rules if ln.startswith("-A KUBE-POSTROUTING") and "MASQUERADE" in ln
    ]
    assert len(masq) == 1
    assert masq[0].endswith("--random-fully") == random_fully


def test_fixed_rules_without_services() -> None:
    """writeIptablesRules with nothing to match: the rules that do not depend on set contents,
    with kube-proxy's real mark string."""
    rs = render([], fake())
    assert rs.nat_rules == (
        "-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN",
        "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT",
        "-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000",
    )
    assert rs.filter_rules == (
        "-A KUBE-SOURCE-RANGES-FIREWALL -j DROP",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" '
        "-m mark --mark 0x00004000/0x00004000 -j ACCEPT",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" '
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        '-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" '
        "-m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT",
        "-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN",
        "-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN",
        "-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN",
        "-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN",
        "-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN",
        "-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst "
        "-j REJECT",
    )


def test_bootstrap_jumps_in_prepend_order() -> None:
    """iptablesJumpChain, prepended one by one: ``-I CHAIN 1`` lines in list order."""
    rs = render([], fake())
    text = rs.iptables_restore_text(bootstrap=True)
    assert rs.bootstrap["nat"] == (
        '-I OUTPUT 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-I PREROUTING 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-I POSTROUTING 1 -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
    )
    assert rs.bootstrap["filter"] == (
        '-I FORWARD 1 -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-I INPUT 1 -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT',
        '-I INPUT 1 -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL',
        '-I FORWARD 1 -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL',
        '-I INPUT 1 -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER',
        '-I OUTPUT 1 -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER',
    )
    # nat first (upstream's iptablesData order), each table committed; jumps after the chains.
    lines = text.splitlines()
    assert lines[0] == "*nat" and lines.count("COMMIT") == 2
    assert lines.index("*filter") > lines.index("COMMIT")
    assert lines.index(rs.bootstrap["nat"][0]) > lines.index(":KUBE-MARK-MASQ - [0:0]")
    assert "-I " not in rs.iptables_restore_text(bootstrap=False)


# ---------------------------------------------------------------------------------------------
# TestIPv4Proxier


def test_ipv4_proxier_two_cluster_ips_each_with_endpoints() -> None:
    services = [
        svc("ns1", "svc1", "10.20.30.41", ep("10.180.0.1")),
        svc(
            "ns2", "svc2", "1002:ab8::2:1", ep("1009:ab8::5:6", 8080), port_name="p8080", port=8080
        ),
    ]
    assert ipvs_state(render(services, fake())) == {("10.20.30.41", 80, "TCP"): ["10.180.0.1:80"]}


def test_ipv4_proxier_cluster_ip_no_endpoints() -> None:
    rs = render([svc("ns1", "svc1", "10.20.30.41")], fake())
    assert ipvs_state(rs) == {("10.20.30.41", 80, "TCP"): []}
    assert rs.addresses == ("10.20.30.41",)


# ---------------------------------------------------------------------------------------------
# TestNodePortIPv4


def test_node_port_two_endpoints() -> None:
    """'1 service with node port, has 2 endpoints' (one of them IPv6, so skipped)."""
    s = svc("ns1", "svc1", "10.20.30.41", ep("10.180.0.1"), ep("1002:ab8::2:10"), node_port=3001)
    rs = render([s], fake(node_ips=(NODE_IP, "2001:db8::1:1")))
    assert ipvs_state(rs) == {
        ("10.20.30.41", 80, "TCP"): ["10.180.0.1:80"],
        (NODE_IP, 3001, "TCP"): ["10.180.0.1:80"],
    }
    assert rs.addresses == ("10.20.30.41",)  # NodePort addresses are never bound


def test_node_port_udp() -> None:
    s = svc("ns1", "svc1", "10.20.30.41", ep("10.180.0.1"), protocol="UDP", node_port=3001)
    rs = render([s], fake(node_ips=(NODE_IP,)))
    assert ipvs_state(rs) == {
        ("10.20.30.41", 80, "UDP"): ["10.180.0.1:80"],
        (NODE_IP, 3001, "UDP"): ["10.180.0.1:80"],
    }
    assert entries(rs, r.NODE_PORT_UDP) == ["3001"]
    assert chain_rules(rs, "KUBE-NODE-PORT") == [
        ("KUBE-MARK-MASQ", r.NODE_PORT_UDP),
        ("ACCEPT", r.HEALTH_CHECK_NODE_PORT),
    ]
    assert chain_rules(rs, "KUBE-SERVICES") == [*SERVICES_BASE, ("ACCEPT", r.CLUSTER_IP)]
    assert "-A KUBE-NODE-PORT -p udp " in "\n".join(rs.nat_rules)


def test_node_port_no_endpoints() -> None:
    rs = render([svc("ns1", "svc1", "10.20.30.41", node_port=3001)], fake(node_ips=(NODE_IP,)))
    assert ipvs_state(rs) == {("10.20.30.41", 80, "TCP"): [], (NODE_IP, 3001, "TCP"): []}


def test_node_port_sctp_multiple_node_ips() -> None:
    node_ips = (NODE_IP, "100.101.102.104", "100.101.102.105", "2001:db8::1:1", "2001:db8::1:2")
    s = svc("ns1", "svc1", "10.20.30.41", ep("10.180.0.1"), protocol="SCTP", node_port=3001)
    rs = render([s], fake(node_ips=node_ips))
    assert ipvs_state(rs) == {
        ("10.20.30.41", 80, "SCTP"): ["10.180.0.1:80"],
        (NODE_IP, 3001, "SCTP"): ["10.180.0.1:80"],
        ("100.101.102.104", 3001, "SCTP"): ["10.180.0.1:80"],
        ("100.101.102.105", 3001, "SCTP"): ["10.180.0.1:80"],
    }
    assert entries(rs, r.NODE_PORT_SCTP) == [
        "100.101.102.103,sctp:3001",
        "100.101.102.104,sctp:3001",
        "100.101.102.105,sctp:3001",
    ]


def test_node_port_sctp_external_traffic_policy_local() -> None:
    s = svc(
        "ns1",
        "svc1",
        "10.20.30.41",
        ep("10.180.0.1", node=TEST_NODE_NAME),
        ep("10.180.1.1", node="other-node"),
        protocol="SCTP",
        node_port=3001,
        external_policy_local=True,
    )
    rs = render([s], fake(node_ips=(NODE_IP,)))
    assert ipvs_state(rs) == {
        ("10.20.30.41", 80, "SCTP"): ["10.180.0.1:80", "10.180.1.1:80"],
        (NODE_IP, 3001, "SCTP"): ["10.180.0.1:80"],
    }
    assert entries(rs, r.NODE_PORT_SCTP) == ["100.101.102.103,sctp:3001"]
    assert entries(rs, r.NODE_PORT_LOCAL_SCTP) == ["100.101.102.103,sctp:3001"]
    assert chain_rules(rs, "KUBE-NODE-PORT") == [
        ("RETURN", r.NODE_PORT_LOCAL_SCTP),
        ("KUBE-MARK-MASQ", r.NODE_PORT_SCTP),
        ("ACCEPT", r.HEALTH_CHECK_NODE_PORT),
    ]
    # SCTP's hash:ip,port sets are matched dst,dst.
    assert any("KUBE-NODE-PORT-SCTP-HASH dst,dst -j KUBE-MARK-MASQ" in ln for ln in rs.nat_rules)


def test_node_port_without_node_ips_is_skipped() -> None:
    """No node addresses: upstream `continue`s before the NodePort sets and the health check."""
    s = svc(
        "ns1",
        "svc1",
        "10.20.30.41",
        ep("10.180.0.1"),
        node_port=3001,
        external_policy_local=True,
        health_check_node_port=30000,
    )
    rs = render([s], fake())
    assert ipvs_state(rs) == {("10.20.30.41", 80, "TCP"): ["10.180.0.1:80"]}
    assert entries(rs, r.NODE_PORT_TCP) == entries(rs, r.HEALTH_CHECK_NODE_PORT) == []


# ---------------------------------------------------------------------------------------------
# TestExternalIPsNoEndpoint, TestExternalIPs, TestOnlyLocalExternalIPs


def test_external_ips_no_endpoint() -> None:
    s = svc("ns1", "svc1", "10.20.30.41", external_ips=("50.60.70.81",))
    rs = render([s], fake())
    assert ipvs_state(rs) == {("10.20.30.41", 80, "TCP"): [], ("50.60.70.81", 80, "TCP"): []}
    assert entries(rs, r.EXTERNAL_IP) == ["50.60.70.81,tcp:80"]
    assert rs.addresses == ("10.20.30.41", "50.60.70.81")


def test_external_ips() -> None:
    """IPv6 external IPs are left to the IPv6 proxier: 3 virtual servers, not 4."""
    s = svc("ns1", "svc1", "10.20.30.41", external_ips=("50.60.70.81", "2012::51", "127.0.0.1"))
    rs = render([s], fake())
    assert len(rs.virtual_servers) == 3
    assert {vs.address for vs in rs.virtual_servers} == {"10.20.30.41", "50.60.70.81", "127.0.0.1"}
    for vs in rs.virtual_servers:
        assert all(str(d) == "10.180.0.1:80" for d in vs.real_servers)


def test_only_local_external_ips() -> None:
    s = svc(
        "ns1",
        "svc1",
        "10.20.30.41",
        ep("10.180.0.1", node=TEST_NODE_NAME),
        ep("10.180.1.1", node="other-node"),
        external_ips=("50.60.70.81", "2012::51", "127.0.0.1"),
        external_policy_local=True,
    )
    rs = render([s], fake())
    assert len(rs.virtual_servers) == 3
    for ext in ("50.60.70.81", "127.0.0.1"):
        assert [str(d) for d in vs_at(rs, ext, 80).real_servers] == ["10.180.0.1:80"]
    assert entries(rs, r.EXTERNAL_IP_LOCAL) == ["127.0.0.1,tcp:80", "50.60.70.81,tcp:80"]
    assert entries(rs, r.EXTERNAL_IP) == []


def test_external_ip_on_a_node_interface_is_not_bound() -> None:
    """shouldBind: an external IP the node already has elsewhere stays off kube-ipvs0."""
    s = svc("ns1", "svc1", "10.20.30.41", ep("10.180.0.1"), external_ips=(NODE_IP,))
    rs = render([s], fake(node_ips=(NODE_IP,)))
    assert rs.addresses == ("10.20.30.41",)
    assert entries(rs, r.IPVS_IPS) == ["10.20.30.41"]
    assert [str(d) for d in vs_at(rs, NODE_IP, 80).real_servers] == ["10.180.0.1:80"]


# ---------------------------------------------------------------------------------------------
# TestLoadBalancer, TestOnlyLocalNodePorts, TestHealthCheckNodePort, TestLoadBalancerSourceRanges,
# TestAcceptIPVSTraffic, TestOnlyLocalLoadBalancing


def test_load_balancer() -> None:
    s = svc("ns1", "svc1", "10.20.30.41", node_port=3001, load_balancer_vips=("1.2.3.4",))
    rs = render([s], fake())
    assert len(rs.virtual_servers) == 2
    assert entries(rs, r.LOAD_BALANCER) == ["1.2.3.4,tcp:80"]
    assert chain_rules(rs, "KUBE-SERVICES") == [
        ("RETURN", ""),
        ("KUBE-LOAD-BALANCER", r.LOAD_BALANCER),
        ("KUBE-MARK-MASQ", r.CLUSTER_IP),
        ("KUBE-NODE-PORT", ""),
        ("ACCEPT", r.CLUSTER_IP),
        ("ACCEPT", r.LOAD_BALANCER),
    ]
    assert chain_rules(rs, "KUBE-LOAD-BALANCER") == [("KUBE-MARK-MASQ", "")]


def test_only_local_node_ports() -> None:
    s = svc(
        "ns1",
        "svc1",
        "10.20.30.41",
        ep("10.180.0.1", node=TEST_NODE_NAME),
        ep("10.180.1.1", node="other-node"),
        node_port=3001,
        external_policy_local=True,
    )
    # nodePortAddresses 100.101.102.0/24 over eth0 100.101.102.103 and eth1 2001:db8::
    rs = render([s], fake(node_ips=(NODE_IP,)))
    assert len(rs.virtual_servers) == 2
    assert [str(d) for d in vs_at(rs, NODE_IP, 3001).real_servers] == ["10.180.0.1:80"]
    assert entries(rs, r.NODE_PORT_TCP) == entries(rs, r.NODE_PORT_LOCAL_TCP) == ["3001"]
    assert chain_rules(rs, "KUBE-SERVICES") == [*SERVICES_BASE, ("ACCEPT", r.CLUSTER_IP)]
    assert chain_rules(rs, "KUBE-NODE-PORT") == [
        ("RETURN", r.NODE_PORT_LOCAL_TCP),
        ("KUBE-MARK-MASQ", r.NODE_PORT_TCP),
        ("ACCEPT", r.HEALTH_CHECK_NODE_PORT),
    ]


def test_health_check_node_port() -> None:
    def lb(name: str, hc: int, local: bool) -> ProxiedService:
        return svc(
            "ns1",
            name,
            "10.20.30.41",
            node_port=3000,
            external_policy_local=local,
            health_check_node_port=hc,
        )

    services = [lb("valid-svc1", 30000, True), lb("valid-svc2", 30001, True)]
    services.append(lb("invalid-svc3", 30002, False))  # eTP Cluster: no health check
    rs = render(services, fake(node_ips=(NODE_IP,)))
    assert entries(rs, r.HEALTH_CHECK_NODE_PORT) == ["30000", "30001"]
    assert chain_rules(rs, "KUBE-NODE-PORT") == [
        ("RETURN", r.NODE_PORT_LOCAL_TCP),
        ("KUBE-MARK-MASQ", r.NODE_PORT_TCP),
        ("ACCEPT", r.HEALTH_CHECK_NODE_PORT),
    ]


def test_load_balancer_source_ranges() -> None:
    s = svc(
        "ns1",
        "svc1",
        "10.20.30.41",
        ep("10.180.0.1"),
        load_balancer_vips=("1.2.3.4",),
        load_balancer_source_ranges=("10.0.0.0/8",),
    )
    rs = render([s], fake())
    assert len(rs.virtual_servers) == 2
    assert [str(d) for d in vs_at(rs, "1.2.3.4", 80).real_servers] == ["10.180.0.1:80"]
    assert entries(rs, r.LOAD_BALANCER) == ["1.2.3.4,tcp:80"]
    assert entries(rs, r.LOAD_BALANCER_FW) == ["1.2.3.4,tcp:80"]
    assert entries(rs, r.LOAD_BALANCER_SOURCE_CIDR) == ["1.2.3.4,tcp:80,10.0.0.0/8"]
    assert chain_rules(rs, "KUBE-SERVICES") == [
        ("RETURN", ""),
        ("KUBE-LOAD-BALANCER", r.LOAD_BALANCER),
        ("KUBE-MARK-MASQ", r.CLUSTER_IP),
        ("KUBE-NODE-PORT", ""),
        ("ACCEPT", r.CLUSTER_IP),
        ("ACCEPT", r.LOAD_BALANCER),
    ]
    assert chain_rules(rs, "KUBE-PROXY-FIREWALL") == [
        ("KUBE-SOURCE-RANGES-FIREWALL", r.LOAD_BALANCER_FW)
    ]
    assert chain_rules(rs, "KUBE-SOURCE-RANGES-FIREWALL") == [
        ("RETURN", r.LOAD_BALANCER_SOURCE_CIDR),
        ("DROP", ""),
    ]
    # The (nil) node IP is in no range: the node itself may not use the LB (#119656).
    assert rs.filter_rules[rs.filter_rules.index("-A KUBE-SOURCE-RANGES-FIREWALL -j DROP") + 1] == (
        "-A KUBE-IPVS-OUT-FILTER -s 1.2.3.4 -m ipvs --vaddr 1.2.3.4 --vproto tcp --vport 80 -j DROP"
    )


def test_load_balancer_source_ranges_covering_the_node() -> None:
    """allowFromNode: the LB IP itself becomes an allowed source; no OUT-FILTER rule."""
    s = svc(
        "ns1",
        "svc1",
        "10.20.30.41",
        ep("10.180.0.1"),
        load_balancer_vips=("1.2.3.4",),
        load_balancer_source_ranges=("100.101.0.0/16", "203.0.113.7/32"),
    )
    rs = render([s], fake(node_ip=NODE_IP))
    assert entries(rs, r.LOAD_BALANCER_SOURCE_IP) == ["1.2.3.4,tcp:80,1.2.3.4"]
    assert entries(rs, r.LOAD_BALANCER_SOURCE_CIDR) == [
        "1.2.3.4,tcp:80,100.101.0.0/16",
        "1.2.3.4,tcp:80,203.0.113.7/32",
    ]
    assert chain_rules(rs, "KUBE-SOURCE-RANGES-FIREWALL") == [
        ("RETURN", r.LOAD_BALANCER_SOURCE_CIDR),
        ("RETURN", r.LOAD_BALANCER_SOURCE_IP),
        ("DROP", ""),
    ]
    assert chain_rules(rs, "KUBE-IPVS-OUT-FILTER") == []


def test_accept_ipvs_traffic() -> None:
    services = [
        svc("ns1", "svc1", "10.20.30.40", node_port=80, external_ips=("5.6.7.8",)),
        svc("ns1", "svc2", "10.20.30.41", node_port=80, load_balancer_vips=("1.2.3.4",)),
        svc("ns1", "svc3", "10.20.30.42", node_port=80),
    ]
    rs = render(services, fake())
    assert chain_rules(rs, "KUBE-SERVICES") == [
        ("RETURN", ""),
        ("KUBE-LOAD-BALANCER", r.LOAD_BALANCER),
        ("KUBE-MARK-MASQ", r.CLUSTER_IP),
        ("KUBE-MARK-MASQ", r.EXTERNAL_IP),
        ("ACCEPT", r.EXTERNAL_IP),  # with externalTrafficOnlyArgs
        ("ACCEPT", r.EXTERNAL_IP),  # with dstLocalOnlyArgs
        ("KUBE-NODE-PORT", ""),
        ("ACCEPT", r.CLUSTER_IP),
        ("ACCEPT", r.LOAD_BALANCER),
    ]
    ext = [ln for ln in rs.nat_rules if "KUBE-EXTERNAL-IP dst,dst" in ln]
    assert ext[1].endswith("-m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT")
    assert ext[2].endswith("-m addrtype --dst-type LOCAL -j ACCEPT")


def test_only_local_load_balancing() -> None:
    s = svc(
        "ns1",
        "svc1",
        "10.20.30.41",
        ep("10.180.0.1", node=TEST_NODE_NAME),  # local: a real server
        ep("10.180.1.1", node="other-node"),  # remote: not one
        node_port=3001,
        load_balancer_vips=("1.2.3.4",),
        external_policy_local=True,
    )
    rs = render([s], fake())
    assert len(rs.virtual_servers) == 2
    assert [str(d) for d in vs_at(rs, "1.2.3.4", 80).real_servers] == ["10.180.0.1:80"]
    assert entries(rs, r.LOAD_BALANCER) == entries(rs, r.LOAD_BALANCER_LOCAL) == ["1.2.3.4,tcp:80"]
    assert chain_rules(rs, "KUBE-LOAD-BALANCER") == [
        ("RETURN", r.LOAD_BALANCER_LOCAL),
        ("KUBE-MARK-MASQ", ""),
    ]


# ---------------------------------------------------------------------------------------------
# TestSessionAffinity, TestMultiPortServiceBindAddr


def test_session_affinity() -> None:
    s = svc(
        "ns1",
        "svc1",
        "10.20.30.41",
        node_port=3001,
        external_ips=("50.60.70.81",),
        session_affinity_client_ip=True,
        sticky_max_age_seconds=10800,
    )
    rs = render([s], fake(node_ips=(NODE_IP,)))
    assert len(rs.virtual_servers) == 3
    for vs in rs.virtual_servers:
        assert vs.timeout == 10800 and vs.flags == r.FLAG_PERSISTENT
    assert "-A -t 10.20.30.41:80 -s rr -p 10800\n" in ipvsadm_restore_text(rs)


def test_mh_scheduler_sets_source_hash() -> None:
    rs = render([svc("ns1", "svc1", "10.20.30.41")], fake(scheduler="mh"))
    assert rs.virtual_servers[0].flags == r.FLAG_SOURCE_HASH


def test_multi_port_service_bind_addr() -> None:
    def ports(*specs: tuple[str, str, int]) -> list[ProxiedService]:
        return [
            svc("ns1", "svc1", "172.16.55.4", port_name=n, protocol=p, port=port)
            for n, p, port in specs
        ]

    one = render(ports(("port1", "TCP", 1234), ("port2", "TCP", 1235)), fake())
    assert one.addresses == ("172.16.55.4",)
    two = render(ports(("port1", "TCP", 1234)), fake())
    assert two.addresses == ("172.16.55.4",)
    three = ports(("port1", "TCP", 1234), ("port2", "TCP", 1235), ("port3", "UDP", 1236))
    assert render(three, fake()).addresses == ("172.16.55.4",)
    assert bind_changes(two.addresses, render([], fake()).addresses) == ([], ["172.16.55.4"])


# ---------------------------------------------------------------------------------------------
# TestEndpointSliceE2E, TestHealthCheckNodePortE2E, TestTestInternalTrafficPolicyE2E


def test_endpoint_slice_e2e() -> None:
    eps = (
        ep("10.0.1.1", node=TEST_NODE_NAME),
        ep("10.0.1.2", node="node2"),
        ep("10.0.1.3", node="node3"),
        ep("10.0.1.4", node="node3", ready=False, serving=False),  # not ready: ignored
    )
    rs = render([svc("ns1", "svc1", "172.20.1.1", *eps, port_name="")], fake())
    assert entries(rs, r.LOOP_BACK) == ["10.0.1.1,tcp:80,10.0.1.1"]
    assert ipvs_state(rs) == {
        ("172.20.1.1", 80, "TCP"): ["10.0.1.1:80", "10.0.1.2:80", "10.0.1.3:80"]
    }
    # The slice is deleted.
    gone = render([svc("ns1", "svc1", "172.20.1.1", port_name="")], fake())
    assert entries(gone, r.LOOP_BACK) == []
    assert ipvs_state(gone) == {("172.20.1.1", 80, "TCP"): []}


def test_health_check_node_port_e2e() -> None:
    def lb(hc: int) -> list[ProxiedService]:
        s = svc(
            "ns1",
            "svc1",
            "172.20.1.1",
            port_name="",
            external_policy_local=True,
            health_check_node_port=hc,
        )
        return [s]

    assert entries(render(lb(30000), fake()), r.HEALTH_CHECK_NODE_PORT) == ["30000"]
    assert entries(render(lb(30001), fake()), r.HEALTH_CHECK_NODE_PORT) == ["30001"]
    assert entries(render([], fake()), r.HEALTH_CHECK_NODE_PORT) == []


@pytest.mark.parametrize(
    ("local", "nodes", "loop_back", "real_servers"),
    [
        # internalTrafficPolicy is cluster with non-zero local endpoints
        (
            False,
            (TEST_NODE_NAME, "node1", "node2"),
            1,
            ["10.0.1.1:80", "10.0.1.2:80", "10.0.1.3:80"],
        ),
        # internalTrafficPolicy is cluster with zero local endpoints
        (False, ("node0", "node1", "node2"), 0, ["10.0.1.1:80", "10.0.1.2:80", "10.0.1.3:80"]),
        # internalTrafficPolicy is local with non-zero local endpoints
        (True, (TEST_NODE_NAME, "node1", "node2"), 1, ["10.0.1.1:80"]),
        # internalTrafficPolicy is local with zero local endpoints: no fallback (no cluster
        # endpoints are computed for a purely internal Local Service)
        (True, ("node0", "node1", "node2"), 0, []),
    ],
)
def test_internal_traffic_policy_e2e(
    local: bool, nodes: tuple[str, ...], loop_back: int, real_servers: list[str]
) -> None:
    eps = [ep(f"10.0.1.{i + 1}", node=n) for i, n in enumerate(nodes)]
    s = svc("ns1", "svc1", "172.20.1.1", *eps, port_name="", internal_policy_local=local)
    rs = render([s], fake())
    assert len(entries(rs, r.LOOP_BACK)) == loop_back
    assert ipvs_state(rs) == {("172.20.1.1", 80, "TCP"): real_servers}


# ---------------------------------------------------------------------------------------------
# Test_EndpointSlice{,Only}ReadyAndTerminating{Cluster,Local}

READY = {"ready": True, "serving": True, "terminating": False}
SERVING_TERMINATING = {"ready": False, "serving": True, "terminating": True}
TERMINATING = {"ready": False, "serving": False, "terminating": True}
NOTHING = {"ready": False, "serving": False, "terminating": False}


def _terminating_case(
    conditions: list[dict[str, bool]], local: bool, local_count: int = 4
) -> IpvsRuleSet:
    """Upstream's five endpoints: the first ``local_count`` on this node, the rest elsewhere."""
    nodes = [TEST_NODE_NAME] * local_count + ["another-node"] * (5 - local_count)
    eps = [
        ep(f"10.0.1.{i + 1}", node=n, **c)
        for i, (n, c) in enumerate(zip(nodes, conditions, strict=True))
    ]
    s = svc(
        "ns1",
        "svc1",
        "172.20.1.1",
        *eps,
        port_name="",
        external_ips=("1.2.3.4",),
        external_policy_local=local,
    )
    return render([s], fake())


def test_endpoint_slice_ready_and_terminating_cluster() -> None:
    conds = [READY, READY, SERVING_TERMINATING, TERMINATING, READY]
    rs = _terminating_case(conds, local=False)
    assert entries(rs, r.LOOP_BACK) == [f"10.0.1.{i},tcp:80,10.0.1.{i}" for i in (1, 2, 3, 4)]
    assert ipvs_state(rs) == {
        ("172.20.1.1", 80, "TCP"): ["10.0.1.1:80", "10.0.1.2:80", "10.0.1.5:80"],
        ("1.2.3.4", 80, "TCP"): ["10.0.1.1:80", "10.0.1.2:80", "10.0.1.5:80"],
    }


def test_endpoint_slice_ready_and_terminating_local() -> None:
    conds = [READY, READY, SERVING_TERMINATING, TERMINATING, READY]
    rs = _terminating_case(conds, local=True)
    assert len(entries(rs, r.LOOP_BACK)) == 4
    assert ipvs_state(rs) == {
        ("172.20.1.1", 80, "TCP"): ["10.0.1.1:80", "10.0.1.2:80", "10.0.1.5:80"],
        ("1.2.3.4", 80, "TCP"): ["10.0.1.1:80", "10.0.1.2:80"],
    }


def test_endpoint_slice_only_ready_and_terminating_cluster() -> None:
    conds = [SERVING_TERMINATING, SERVING_TERMINATING, TERMINATING, SERVING_TERMINATING, NOTHING]
    rs = _terminating_case(conds, local=False, local_count=3)
    assert entries(rs, r.LOOP_BACK) == [f"10.0.1.{i},tcp:80,10.0.1.{i}" for i in (1, 2, 3)]
    assert ipvs_state(rs) == {
        ("172.20.1.1", 80, "TCP"): ["10.0.1.1:80", "10.0.1.2:80", "10.0.1.4:80"],
        ("1.2.3.4", 80, "TCP"): ["10.0.1.1:80", "10.0.1.2:80", "10.0.1.4:80"],
    }


def test_endpoint_slice_only_ready_and_terminating_local() -> None:
    # Upstream: .1-.3 local (serving-terminating, serving-terminating, terminating), .4
    # serving-terminating and .5 ready on another node.
    eps = [
        ep("10.0.1.1", node=TEST_NODE_NAME, **SERVING_TERMINATING),
        ep("10.0.1.2", node=TEST_NODE_NAME, **SERVING_TERMINATING),
        ep("10.0.1.3", node=TEST_NODE_NAME, **TERMINATING),
        ep("10.0.1.4", node="another-node", **SERVING_TERMINATING),
        ep("10.0.1.5", node="another-node", **READY),
    ]
    s = svc(
        "ns1",
        "svc1",
        "172.20.1.1",
        *eps,
        port_name="",
        external_ips=("1.2.3.4",),
        external_policy_local=True,
    )
    rs = render([s], fake())
    assert entries(rs, r.LOOP_BACK) == [f"10.0.1.{i},tcp:80,10.0.1.{i}" for i in (1, 2, 3)]
    assert ipvs_state(rs) == {
        ("172.20.1.1", 80, "TCP"): ["10.0.1.5:80"],
        ("1.2.3.4", 80, "TCP"): ["10.0.1.1:80", "10.0.1.2:80"],
    }


def test_external_policy_local_without_local_endpoints_falls_back() -> None:
    """kubernetes#97081: with no local endpoints the external virtual servers use the cluster's
    (the NoEndpointsMetric "externalTrafficPolicy is set and there are no local endpoints")."""
    eps = [ep("10.0.1.1", node="node0"), ep("10.0.1.2", node="node1")]
    s = svc("ns1", "svc1", "172.20.1.1", *eps, node_port=30000, external_policy_local=True)
    rs = render([s], fake(node_ips=("10.0.0.1",)))
    assert ipvs_state(rs)[("10.0.0.1", 30000, "TCP")] == ["10.0.1.1:80", "10.0.1.2:80"]


# ---------------------------------------------------------------------------------------------
# ipsets: names, types, create options, restore text


def test_ipset_info_matches_upstream() -> None:
    rs = render([], fake())
    assert [(s.name, s.type) for s in rs.ipsets] == [
        ("KUBE-LOOP-BACK", "hash:ip,port,ip"),
        ("KUBE-CLUSTER-IP", "hash:ip,port"),
        ("KUBE-EXTERNAL-IP", "hash:ip,port"),
        ("KUBE-EXTERNAL-IP-LOCAL", "hash:ip,port"),
        ("KUBE-LOAD-BALANCER", "hash:ip,port"),
        ("KUBE-LOAD-BALANCER-FW", "hash:ip,port"),
        ("KUBE-LOAD-BALANCER-LOCAL", "hash:ip,port"),
        ("KUBE-LOAD-BALANCER-SOURCE-IP", "hash:ip,port,ip"),
        ("KUBE-LOAD-BALANCER-SOURCE-CIDR", "hash:ip,port,net"),
        ("KUBE-NODE-PORT-TCP", "bitmap:port"),
        ("KUBE-NODE-PORT-LOCAL-TCP", "bitmap:port"),
        ("KUBE-NODE-PORT-UDP", "bitmap:port"),
        ("KUBE-NODE-PORT-LOCAL-UDP", "bitmap:port"),
        ("KUBE-NODE-PORT-SCTP-HASH", "hash:ip,port"),
        ("KUBE-NODE-PORT-LOCAL-SCTP-HASH", "hash:ip,port"),
        ("KUBE-HEALTH-CHECK-NODE-PORT", "bitmap:port"),
        ("KUBE-IPVS-IPS", "hash:ip"),
    ]
    assert all(len(s.name) <= 31 for s in rs.ipsets)
    assert rs.ipset(r.IPVS_IPS).comment == "Addresses on the ipvs interface"


def _small() -> IpvsRuleSet:
    return render(
        [
            svc(
                "ns1",
                "a",
                "10.96.0.10",
                ep("10.244.1.5", 53, TEST_NODE_NAME),
                protocol="UDP",
                port_name="dns",
                port=53,
            ),
            svc("ns1", "b", "10.96.0.20", ep("10.244.2.7"), node_port=30080),
        ],
        fake(node_ips=("192.168.0.2",)),
    )


def test_ipset_restore_text_fresh_node() -> None:
    text = _small().ipset_restore_text()
    lines = text.splitlines()
    assert lines[:3] == [
        "create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536 -exist",
        "flush KUBE-LOOP-BACK",
        "add KUBE-LOOP-BACK 10.244.1.5,udp:53,10.244.1.5 -exist",
    ]
    assert "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535 -exist" in lines
    assert "add KUBE-NODE-PORT-TCP 30080 -exist" in lines
    assert "add KUBE-CLUSTER-IP 10.96.0.10,udp:53 -exist" in lines
    assert lines[-3:] == [
        "flush KUBE-IPVS-IPS",
        "add KUBE-IPVS-IPS 10.96.0.10 -exist",
        "add KUBE-IPVS-IPS 10.96.0.20 -exist",
    ]
    # Every set is created before anything refers to it; every create is idempotent.
    creates = [ln for ln in lines if ln.startswith("create ")]
    assert len(creates) == 17 and all(ln.endswith(" -exist") for ln in creates)


def test_ipset_restore_text_diffs_against_existing() -> None:
    """syncIPSetEntries: delete what is stale, add what is missing, leave the rest."""
    existing = parse_ipset_save(
        "create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 "
        "bucketsize 12 initval 0x1\n"
        "add KUBE-CLUSTER-IP 10.96.0.10,udp:53\n"
        "add KUBE-CLUSTER-IP 10.96.0.99,tcp:80\n"
        "create KUBE-NODE-PORT-TCP bitmap:port range 0-65535\n"
        "add KUBE-NODE-PORT-TCP 30080\n"
    )
    lines = _small().ipset_restore_text(existing).splitlines()
    cluster = [ln for ln in lines if " KUBE-CLUSTER-IP " in ln and not ln.startswith("create")]
    assert cluster == [
        "del KUBE-CLUSTER-IP 10.96.0.99,tcp:80 -exist",
        "add KUBE-CLUSTER-IP 10.96.0.20,tcp:80 -exist",
    ]
    assert not any(" KUBE-NODE-PORT-TCP " in ln for ln in lines if not ln.startswith("create"))
    assert not any(ln.startswith("flush ") for ln in lines)
    # Re-syncing an identical node changes nothing but the (idempotent) creates.
    same = parse_ipset_save(
        "".join(f"add {s.name} {e}\n" for s in _small().ipsets for e in s.entries)
    )
    assert all(ln.startswith("create ") for ln in _small().ipset_restore_text(same).splitlines())


def test_canonical_entry_matches_ipset_save() -> None:
    assert canonical_entry("1.2.3.4,tcp:80,10.0.0.1/32") == "1.2.3.4,tcp:80,10.0.0.1"
    assert canonical_entry("1.2.3.4,tcp:80,10.0.0.0/8") == "1.2.3.4,tcp:80,10.0.0.0/8"
    assert canonical_entry("30080 timeout 0") == "30080"


# ---------------------------------------------------------------------------------------------
# ipvsadm text


def test_ipvsadm_restore_text() -> None:
    assert ipvsadm_restore_text(_small()) == (
        "-A -u 10.96.0.10:53 -s rr\n"
        "-a -u 10.96.0.10:53 -r 10.244.1.5:53 -m -w 1\n"
        "-A -t 10.96.0.20:80 -s rr\n"
        "-a -t 10.96.0.20:80 -r 10.244.2.7:80 -m -w 1\n"
        "-A -t 192.168.0.2:30080 -s rr\n"
        "-a -t 192.168.0.2:30080 -r 10.244.2.7:80 -m -w 1\n"
    )
    sctp = render([svc("ns1", "s", "10.96.0.30", ep("10.244.1.9"), protocol="SCTP")], fake())
    assert ipvsadm_restore_text(sctp).startswith("-A --sctp-service 10.96.0.30:80 -s rr\n")


def test_filter_ipvsadm_list() -> None:
    listing = (
        "IP Virtual Server version 1.2.1 (size=4096)\n"
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "TCP  10.96.0.20:80 rr\n"
        "  -> 10.244.2.7:80                Masq    1      0          0\n"
        "UDP  10.96.0.10:53 rr persistent 10800\n"
        "  -> 10.244.1.5:53                Masq    1      0          0\n"
    )
    out = filter_ipvsadm_list(listing, {("UDP", "10.96.0.10", 53)})
    assert out.splitlines()[3:] == [
        "UDP  10.96.0.10:53 rr persistent 10800",
        "  -> 10.244.1.5:53                Masq    1      0          0",
    ]
    assert len(out.splitlines()) == 5


# ---------------------------------------------------------------------------------------------
# Sysctls (NewProxier)


def test_sysctls() -> None:
    modern = ipvs_sysctls("6.1.0-28-amd64")
    assert modern == {
        "net.ipv4.vs.conntrack": "1",
        "net.ipv4.vs.expire_nodest_conn": "1",
        "net.ipv4.vs.expire_quiescent_template": "1",
        "net.ipv4.ip_forward": "1",
    }
    assert ipvs_sysctls("5.4.0-150-generic")["net.ipv4.vs.conn_reuse_mode"] == "0"
    assert "net.ipv4.vs.conn_reuse_mode" not in ipvs_sysctls("5.9.0")
    assert "net.ipv4.vs.conn_reuse_mode" not in ipvs_sysctls("3.10.0-1160.el7.x86_64")


# ---------------------------------------------------------------------------------------------
# reconcile: syncService, syncEndpoint, graceful termination, cleanLegacyService

VS = VirtualServer("10.96.0.10", 53, "UDP", real_servers=(RealServer("10.244.1.5", 53),))


def _ops(current: list[VirtualServer], desired: list[VirtualServer]) -> list[str]:
    return [str(op) for op in reconcile(current, desired)]


def test_reconcile_empty_kernel_adds_everything() -> None:
    assert _ops([], [VS]) == [
        "-A -u 10.96.0.10:53 -s rr",
        "-a -u 10.96.0.10:53 -r 10.244.1.5:53 -m -w 1",
    ]


def test_reconcile_in_sync_is_a_no_op() -> None:
    """The kernel reports every service HASHED; that alone is no change (syncService case 8)."""
    listed = VirtualServer(
        "10.96.0.10",
        53,
        "UDP",
        flags=r.FLAG_HASHED,
        real_servers=(RealServer("10.244.1.5", 53, 1, active_conns=3),),
    )
    assert reconcile([listed], [VS]) == []


@pytest.mark.parametrize(
    "old",
    [
        VirtualServer("10.96.0.10", 53, "UDP", flags=r.FLAG_HASHED | r.FLAG_PERSISTENT),
        VirtualServer("10.96.0.10", 53, "UDP", scheduler="wlc"),
        VirtualServer("10.96.0.10", 53, "UDP", timeout=60),
    ],
)
def test_reconcile_changed_service_is_edited_in_place(old: VirtualServer) -> None:
    """syncService cases 5 and 6: UpdateVirtualServer, so the VIP never goes down."""
    ops = reconcile(
        [
            VirtualServer(
                old.address,
                old.port,
                old.protocol,
                old.scheduler,
                old.flags,
                old.timeout,
                VS.real_servers,
            )
        ],
        [VS],
    )
    assert [op.action for op in ops] == ["set-service"]
    assert str(ops[0]) == "-E -u 10.96.0.10:53 -s rr"


def test_reconcile_endpoints_added_and_removed() -> None:
    old = VirtualServer(
        "10.96.0.20",
        80,
        "TCP",
        real_servers=(RealServer("10.244.2.7", 80), RealServer("10.244.3.3", 80)),
    )
    new = VirtualServer(
        "10.96.0.20",
        80,
        "TCP",
        real_servers=(RealServer("10.244.2.7", 80), RealServer("10.244.1.1", 80)),
    )
    assert _ops([old], [new]) == [
        "-a -t 10.96.0.20:80 -r 10.244.1.1:80 -m -w 1",
        "-d -t 10.96.0.20:80 -r 10.244.3.3:80",
    ]


def test_reconcile_graceful_termination() -> None:
    """GracefulDeleteRS: a TCP real server with connections is quiesced (weight 0) and kept until
    they are gone; a quiesced one is left alone; UDP/SCTP ones are deleted at once."""
    busy = RealServer("10.244.3.3", 80, 1, active_conns=2)
    draining = RealServer("10.244.3.4", 80, 0, inactive_conns=1)
    idle = RealServer("10.244.3.5", 80, 0)
    tcp = VirtualServer("10.96.0.20", 80, "TCP", real_servers=(busy, draining, idle))
    assert _ops([tcp], [VirtualServer("10.96.0.20", 80, "TCP")]) == [
        "-e -t 10.96.0.20:80 -r 10.244.3.3:80 -m -w 0",
        "-d -t 10.96.0.20:80 -r 10.244.3.5:80",
    ]
    udp = VirtualServer(
        "10.96.0.10", 53, "UDP", real_servers=(RealServer("10.244.3.3", 53, 1, 5, 5),)
    )
    assert _ops([udp], [VirtualServer("10.96.0.10", 53, "UDP")]) == [
        "-d -u 10.96.0.10:53 -r 10.244.3.3:53"
    ]


def test_reconcile_resets_weights() -> None:
    """Test_syncEndpoint_updateWeightsOnRestart: weight 0 in the kernel goes back to 1 (also how
    a draining real server that is wanted again comes back)."""
    zero = VirtualServer("10.96.0.10", 53, "UDP", real_servers=(RealServer("10.244.1.5", 53, 0),))
    assert _ops([zero], [VS]) == ["-e -u 10.96.0.10:53 -r 10.244.1.5:53 -m -w 1"]


def test_reconcile_deletes_stale_services_last() -> None:
    """TestCleanLegacyServiceWithRealServers: a stale service goes, real servers and all."""
    stale = VirtualServer(
        "1.1.1.1", 53, "UDP", flags=r.FLAG_HASHED, real_servers=(RealServer("10.180.0.1", 53),)
    )
    ops = reconcile([stale], [VS])
    assert [op.action for op in ops] == ["add-service", "add-dest", "del-service"]
    assert str(ops[-1]) == "-D -u 1.1.1.1:53"
    assert isinstance(ops[-1], IpvsOp) and ops[-1].service == stale


def test_bind_changes() -> None:
    assert bind_changes(["10.96.0.1", "10.96.0.99"], ["10.96.0.10", "10.96.0.1"]) == (
        ["10.96.0.10"],
        ["10.96.0.99"],
    )


# ---------------------------------------------------------------------------------------------
# IpvsProxier over a built cluster (pure: renders only)

SCENARIO = """\
apiVersion: netlab.dev/v1alpha1
kind: Lab
metadata: {name: demo}
spec:
  dns: {enabled: false}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""


IPVS_SYSCTLS = {
    "net.ipv4.vs.conntrack": "1",
    "net.ipv4.vs.expire_nodest_conn": "1",
    "net.ipv4.vs.expire_quiescent_template": "1",
    "net.ipv4.ip_forward": "1",
}


@pytest.mark.parametrize(
    ("release", "extra"),
    [
        ("6.1.0-28-amd64", {}),
        ("5.9.0", {}),
        ("5.4.0-150-generic", {"net.ipv4.vs.conn_reuse_mode": "0"}),
    ],
)
def test_proxier_node_sysctls_follow_the_running_kernel(
    monkeypatch: pytest.MonkeyPatch, release: str, extra: dict[str, str]
) -> None:
    monkeypatch.setattr(platform, "release", lambda: release)
    state = build_cluster(parse_scenario(SCENARIO, "demo.yaml"))
    assert IpvsProxier(state, "nft").node_sysctls() == {**IPVS_SYSCTLS, **extra}


def test_proxier_renders_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "release", lambda: "6.1.0-28-amd64")
    state = build_cluster(parse_scenario(SCENARIO, "demo.yaml"))
    proxier = IpvsProxier(state, "nft")
    assert proxier.describe() == "ipvs (rr, iptables nft back end)"
    assert proxier.node_sysctls() == IPVS_SYSCTLS
    node = state.nodes[0]
    rs = proxier.ruleset(node)
    web = state.service("default", "web")
    node_port = web.ports[0].node_port
    assert node_port
    # The ClusterIPs (default/kubernetes and web) are bound; NodePorts on eth0 and cni0 are not.
    assert web.cluster_ip in rs.addresses
    assert node.ip not in rs.addresses and node.gateway not in rs.addresses
    backends = sorted(f"{p.ip}:8080" for p in state.pods if p.labels.get("app") == "web")
    for address, port in ((web.cluster_ip, 80), (node.ip, node_port), (node.gateway, node_port)):
        assert sorted(str(d) for d in vs_at(rs, address, port).real_servers) == backends
    assert entries(rs, r.NODE_PORT_TCP) == [str(node_port)]
    opts = proxier.options(node)
    assert opts.node_ips == (node.ip, node.gateway)
    assert opts.cluster_cidr == state.lab.network.pod_cidr
