"""Addresses a lab cannot have: the special IPv4 ranges no interface in a namespace can hold or
route (RFC 6890), and the places on the node network netlab gives to nodes and the external
client."""

from __future__ import annotations

import ipaddress

_SPECIAL = (
    (ipaddress.IPv4Network("0.0.0.0/8"), "the unspecified range (0.0.0.0/8)"),
    (ipaddress.IPv4Network("127.0.0.0/8"), "the loopback range (127.0.0.0/8)"),
    (ipaddress.IPv4Network("169.254.0.0/16"), "the link-local range (169.254.0.0/16)"),
    (ipaddress.IPv4Network("224.0.0.0/4"), "the multicast range (224.0.0.0/4)"),
    (ipaddress.IPv4Network("240.0.0.0/4"), "the reserved range (240.0.0.0/4)"),
)
HINT_PRIVATE = "use a private range such as 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
NODE_HOST_OFFSET = 10  # node-i sits at host 10 + i of the node network


def special(value: ipaddress.IPv4Network | ipaddress.IPv4Address) -> str:
    """Why ``value`` cannot be used ("may not be in the loopback range ..."), or ""."""
    net = value if isinstance(value, ipaddress.IPv4Network) else ipaddress.IPv4Network(value)
    for reserved, what in _SPECIAL:
        if net.overlaps(reserved):
            verb = "overlap" if isinstance(value, ipaddress.IPv4Network) else "be in"
            return f"may not {verb} {what}"
    return ""


def node_network_room(net: ipaddress.IPv4Network, nodes: int) -> str:
    """Why ``nodes`` nodes do not fit on ``net`` (they take hosts .11, .12, ...), or ""."""
    last = net.network_address + NODE_HOST_OFFSET + nodes
    if last >= net.broadcast_address:
        return f"has no address for node {nodes} (nodes take host {NODE_HOST_OFFSET + 1} upward)"
    return ""


def on_node_network(
    ip: ipaddress.IPv4Address, net: ipaddress.IPv4Network, nodes: tuple[str, ...]
) -> str:
    """Why ``ip`` cannot be an external client's address on the node network, or ""."""
    if ip == net.network_address:
        return f"is the node network {net}'s own address"
    if ip == net.broadcast_address:
        return f"is the node network {net}'s broadcast address"
    index = int(ip) - int(net.network_address) - NODE_HOST_OFFSET
    if 1 <= index <= len(nodes):
        return f"is {nodes[index - 1]}'s address"
    return ""
