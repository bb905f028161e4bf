"""Address and port allocation: pod CIDRs and pod IPs, ClusterIPs, NodePorts.

Allocation is deterministic (a lab built twice from one file gets the same addresses, so docs and
tests can name them) but looks like a real cluster's: the API server hands out ClusterIPs and
NodePorts at random from the upper part of each range, keeping a lower "static" band for values
users ask for. netlab seeds that choice with the object's name instead of a random source.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools

from netlab.scenario.k8s import NODE_PORT_RANGE
from netlab.scenario.labspec import LabSpec


def _seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def _dotted(a: int) -> str:
    return f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"


def node_subnets(pod_cidr: str, mask: int, count: int) -> list[ipaddress.IPv4Network]:
    """Per-node pod CIDRs: node-i gets slice i (slice 0 stays unused, as in the design drawing)."""
    net = ipaddress.IPv4Network(pod_cidr)
    subnets = net.subnets(new_prefix=mask)
    next(subnets)
    return [next(subnets) for _ in range(count)]


def node_ip(node_network: str, index: int) -> str:
    """Node ``index`` (1-based) sits at host ``10 + index`` of the node network."""
    return str(ipaddress.IPv4Network(node_network).network_address + 10 + index)


class PodIPAM:
    """host-local IPAM per node: sequential addresses after the bridge's gateway address."""

    def __init__(self, subnet: ipaddress.IPv4Network):
        self.subnet = subnet
        self.gateway = subnet.network_address + 1
        self._next = subnet.network_address + 2

    def allocate(self) -> str:
        if self._next >= self.subnet.broadcast_address:
            raise ValueError(f"pod CIDR {self.subnet} is full")
        ip = self._next
        self._next += 1
        return str(ip)

    def last(self) -> str:
        """The last address handed out ("" if none): host-local's last reserved IP."""
        return str(self._next - 1) if self._next > self.subnet.network_address + 2 else ""


def next_pod_ip(pod_cidr: str, last: str, used: set[str]) -> str:
    """host-local IPAM on a running node: the next free address after the last one it handed
    out, wrapping around, so a deleted pod's address is not given again at once."""
    subnet = ipaddress.IPv4Network(pod_cidr)
    first = int(subnet.network_address) + 2  # after the network address and the gateway
    end = int(subnet.broadcast_address)  # exclusive
    size = end - first
    start = int(ipaddress.IPv4Address(last)) + 1 if last else first
    for i in range(size):
        candidate = first + (start - first + i) % size
        ip = str(ipaddress.IPv4Address(candidate))
        if ip not in used:
            return ip
    raise ValueError(f"pod CIDR {subnet} is full")


def _static_band(size: int, lo: int, hi: int, div: int) -> int:
    """Size of the lower band kept for user-chosen values (the API server's rangeOffset)."""
    if size <= lo:  # calculateRangeOffset: too small for a static band (e.g. a /28)
        return 0
    return min(max(lo, size // div), hi)


class ServiceIPAM:
    """ClusterIP allocator over the service CIDR."""

    def __init__(self, service_cidr: str):
        self.net = ipaddress.IPv4Network(service_cidr)
        self.size = self.net.num_addresses - 2  # no network or broadcast address
        self.used: set[str] = set()
        self.offset = _static_band(self.size, 16, 256, 16)

    def first(self) -> str:
        """The first address, which the API server gives to ``default/kubernetes``."""
        return str(self.net.network_address + 1)

    def nth(self, n: int) -> str:
        return str(self.net.network_address + n)

    def reserve(self, ip: str) -> None:
        self.used.add(ip)

    def allocate(self, key: str) -> str:
        dynamic = self.size - self.offset
        start = _seed(key) % dynamic
        base = int(self.net.network_address)
        # The first candidate is almost always free: tried before building the walk.
        ip = _dotted(base + self.offset + 1 + start)
        if ip not in self.used:
            self.used.add(ip)
            return ip
        # Prefer the dynamic band (hosts offset+1..size); fall back to the static band.
        # Lazily: a /12 has a million hosts.
        hosts = (self.offset + 1 + (start + i) % dynamic for i in range(1, dynamic))
        for n in itertools.chain(hosts, range(1, self.offset + 1)):
            ip = _dotted(base + n)
            if ip not in self.used:
                self.used.add(ip)
                return ip
        raise ValueError(f"service CIDR {self.net} is full")


class NodePortAllocator:
    """NodePort allocator over 30000-32767; one port belongs to one Service, whatever protocol."""

    def __init__(self) -> None:
        self.lo, self.hi = NODE_PORT_RANGE
        self.size = self.hi - self.lo + 1
        self.offset = _static_band(self.size, 16, 128, 32)
        self.used: set[int] = set()

    def reserve(self, port: int) -> None:
        self.used.add(port)

    def allocate(self, key: str) -> int:
        dynamic = self.size - self.offset
        start = _seed(key) % dynamic
        for i in range(dynamic):
            port = self.lo + self.offset + (start + i) % dynamic
            if port not in self.used:
                self.used.add(port)
                return port
        for port in range(self.lo, self.lo + self.offset):
            if port not in self.used:
                self.used.add(port)
                return port
        raise ValueError("no NodePort left in 30000-32767")


class LoadBalancerIPAM:
    """The stand-in cloud provider's pool: lowest free address first, as MetalLB hands them out.

    Addresses of external clients and servers are never handed out (the default pool may
    contain one; a pool one asks for is validated not to).
    """

    def __init__(self, lab: LabSpec):
        self.net = ipaddress.IPv4Network(lab.load_balancer_pool)
        self.used = {c.address for c in lab.external_clients}
        self.used |= {s.address for s in lab.external_servers}
        self._hosts = self.net.hosts()  # lowest first; what was passed is never free again

    def reserve(self, ip: str) -> None:
        self.used.add(ip)

    def allocate(self) -> str:
        for host in self._hosts:
            if str(host) not in self.used:
                self.used.add(str(host))
                return str(host)
        raise ValueError(f"load-balancer pool {self.net} is exhausted")
