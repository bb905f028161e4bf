"""kube-proxy's nodePortAddresses in every mode: the nftables default ``primary`` (the node's own
IP only), every local address in iptables and IPVS modes, and CIDR lists (kubernetes/kubernetes
v1.33 ``cmd/kube-proxy/app/server_linux.go``, ``pkg/proxy/util/nodeport_addresses.go``)."""

from __future__ import annotations

import textwrap

import pytest

from netlab.cluster.build import build_cluster
from netlab.cluster.state import ClusterState
from netlab.errors import ScenarioError
from netlab.proxy import nodeports
from netlab.proxy.iptables.proxier import IptablesProxier
from netlab.proxy.iptables.render import render as iptables_render
from netlab.proxy.ipvs.proxier import IpvsProxier
from netlab.proxy.nftables.proxier import NftablesProxier
from netlab.proxy.nftables.render import build as nft_build
from netlab.proxy.servicemap import node_view
from netlab.scenario.load import parse_scenario

MANIFESTS = """\
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
"""

LAST_RULE = (
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the '
    'last rule in this chain"'
)


def lab(proxy: str = "{}") -> ClusterState:
    text = textwrap.dedent(f"""\
        apiVersion: netlab.dev/v1alpha1
        kind: Lab
        metadata: {{name: np}}
        spec:
          proxy: {proxy}
        ---
        """)
    return build_cluster(parse_scenario(text + MANIFESTS, "np.yaml"))


def iptables_tail(state: ClusterState) -> list[str]:
    node = state.nodes[0]
    proxier = IptablesProxier(state)
    text = iptables_render(node_view(state, node.name), proxier.options(node)).restore_text(
        bootstrap=True
    )
    return [ln for ln in text.splitlines() if ln.startswith(LAST_RULE)]


def test_defaults_per_mode() -> None:
    assert nodeports.configured(None, "nftables") == ("primary",)
    assert nodeports.configured(None, "iptables") == ()
    assert nodeports.configured(None, "ipvs") == ()
    assert nodeports.configured(("10.0.0.0/8",), "nftables") == ("10.0.0.0/8",)


def test_node_port_ips() -> None:
    node = lab().nodes[0]
    assert nodeports.node_port_ips(node, ()) is None  # MatchAll
    assert nodeports.node_port_ips(node, ("0.0.0.0/0",)) is None
    assert nodeports.node_port_ips(node, ("primary",)) == ("192.168.56.11",)
    assert nodeports.node_port_ips(node, ("10.244.0.0/16", "127.0.0.0/8")) == (
        "10.244.1.1",
        "127.0.0.1",
    )
    assert nodeports.node_port_ips(node, ("203.0.113.0/24",)) == ()
    assert nodeports.contains_loopback(node, ())
    assert not nodeports.contains_loopback(node, ("primary",))
    assert nodeports.serves(node, "10.244.1.1", ()) and nodeports.serves(node, "127.0.0.1", ())
    assert not nodeports.serves(node, "10.244.1.1", ("primary",))


def test_iptables_default_matches_every_local_address() -> None:
    state = lab()
    assert iptables_tail(state) == [f"{LAST_RULE} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"]
    assert IptablesProxier(state).node_sysctls() == {"net.ipv4.conf.all.route_localnet": "1"}


def test_iptables_primary_lists_the_node_ip_and_drops_localhost_node_ports() -> None:
    state = lab("{nodePortAddresses: primary}")
    assert iptables_tail(state) == [f"{LAST_RULE} -d 192.168.56.11 -j KUBE-NODEPORTS"]
    # No loopback among the addresses: no route_localnet, no KUBE-FIREWALL localnet rule.
    assert IptablesProxier(state).node_sysctls() == {}
    node = state.nodes[0]
    opts = IptablesProxier(state).options(node)
    text = iptables_render(node_view(state, node.name), opts).restore_text(bootstrap=True)
    assert "block incoming localnet connections" not in text


def test_iptables_cidrs_with_loopback() -> None:
    state = lab("{nodePortAddresses: [192.168.56.0/24, 127.0.0.1/32]}")
    assert iptables_tail(state) == [
        f"{LAST_RULE} -d 192.168.56.11 -j KUBE-NODEPORTS",
        f"{LAST_RULE} -d 127.0.0.1 -j KUBE-NODEPORTS",
    ]
    assert IptablesProxier(state).node_sysctls() == {"net.ipv4.conf.all.route_localnet": "1"}


def test_nftables_default_is_primary() -> None:
    state = lab()
    node = state.nodes[0]
    proxier = NftablesProxier(state)
    assert proxier.options(node).nodeport_ips == ("192.168.56.11",)
    ruleset = nft_build(node_view(state, node.name), proxier.options(node), "kube-proxy")
    text = ruleset.transaction(first=True)
    assert "add element ip kube-proxy nodeport-ips { 192.168.56.11 }" in text
    assert "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports" in text
    # 0.0.0.0/0: every local address, as iptables mode does by default.
    every = NftablesProxier(lab("{nodePortAddresses: [0.0.0.0/0]}"))
    assert every.options(node).nodeport_ips == ()


def test_ipvs_node_addresses() -> None:
    node = lab().nodes[0]
    assert IpvsProxier(lab()).options(node).node_ips == ("192.168.56.11", "10.244.1.1")
    primary = IpvsProxier(lab("{nodePortAddresses: primary}"))
    assert primary.options(node).node_ips == ("192.168.56.11",)
    loop = IpvsProxier(lab("{nodePortAddresses: [127.0.0.0/8, 10.244.1.0/24]}"))
    assert loop.options(node).node_ips == ("10.244.1.1",)  # never the loopback


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[primary, 10.0.0.0/8]", "spec.proxy.nodePortAddresses[0]: Invalid value: \"primary\": "
         "can't use both 'primary' and CIDRs"),
        ("[10.0.0.0/8, primary]", "spec.proxy.nodePortAddresses[1]: Invalid value: \"primary\": "
         "can't use both 'primary' and CIDRs"),
        ("[foo]", 'spec.proxy.nodePortAddresses[0]: Invalid value: "foo": must be a valid CIDR'),
        ("[10.0.0.1]", 'Invalid value: "10.0.0.1": must be a valid CIDR'),
        ("['2001:db8::/32']", "must be an IPv4 CIDR"),
        ("secondary", "spec.proxy.nodePortAddresses"),
    ],
)  # fmt: skip
def test_invalid_node_port_addresses(value: str, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        lab(f"{{nodePortAddresses: {value}}}")
    assert message in "\n".join(d.format() for d in err.value.diagnostics)


def test_empty_list_is_unset() -> None:
    assert lab("{nodePortAddresses: []}").lab.proxy.node_port_addresses is None
