"""kube-proxy's ``nodePortAddresses`` (``--nodeport-addresses``): which of a node's addresses
serve NodePorts.

kubernetes/kubernetes v1.33: a list of CIDRs, or the single word ``primary`` (the node's primary
IP, turned into ``<nodeIP>/32`` at start-up in ``cmd/kube-proxy/app/server.go``). Unset, the
iptables and IPVS modes match every local address (``nodePortAddresses.MatchAll()``), while the
nftables mode defaults to ``primary`` (``platformApplyDefaults``): NodePorts there are served on
the node's own IP only, not on a bridge's address nor on 127.0.0.1. The iptables mode serves
localhost NodePorts (and sets route_localnet) only when the addresses include 127.0.0.1
(``ContainsIPv4Loopback``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from netlab.cluster.state import Node

PRIMARY = "primary"  # kubeproxyconfig.NodePortAddressesPrimary
LOOPBACK = "127.0.0.1"


def configured(setting: Sequence[str] | None, mode: str) -> tuple[str, ...]:
    """The nodePortAddresses a mode runs with: the Lab document's, else the mode's default
    (``primary`` for nftables, every address elsewhere). ``()`` matches every address."""
    if setting is None:
        return (PRIMARY,) if mode == "nftables" else ()
    return tuple(setting)


def cidrs_for(node: Node, setting: Sequence[str]) -> tuple[str, ...]:
    """The CIDRs, with ``primary`` resolved as kube-proxy does at start-up."""
    if tuple(setting) == (PRIMARY,):
        return (f"{node.ip}/32",)
    return tuple(setting)


def local_addresses(node: Node) -> tuple[str, ...]:
    """A lab node's IPv4 addresses: eth0 (its node IP), cni0 (its pods' gateway), lo."""
    return tuple(dict.fromkeys(a for a in (node.ip, node.gateway, LOOPBACK) if a))


def node_port_ips(node: Node, setting: Sequence[str]) -> tuple[str, ...] | None:
    """GetNodeIPs: the node's addresses inside the CIDRs; ``None`` when every address matches
    (MatchAll: the rules then match the destination type LOCAL instead of listing addresses)."""
    if not setting:
        return None
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs_for(node, setting)]
    if any(n.prefixlen == 0 and n.version == 4 for n in nets):
        return None  # 0.0.0.0/0 is MatchAll
    return tuple(
        a for a in local_addresses(node) if any(ipaddress.ip_address(a) in n for n in nets)
    )


def contains_loopback(node: Node, setting: Sequence[str]) -> bool:
    """ContainsIPv4Loopback: every address matches, or one of the CIDRs holds 127.0.0.1."""
    ips = node_port_ips(node, setting)
    return ips is None or LOOPBACK in ips


def serves(node: Node, address: str, setting: Sequence[str]) -> bool:
    """Whether ``address`` (one of the node's own) answers on NodePorts."""
    ips = node_port_ips(node, setting)
    return address in local_addresses(node) if ips is None else address in ips
