"""Names for addresses: which pod, node, Service or outside host an IP (and port) belongs to.

A learner reading ``10.244.2.2:8080`` in a trace or in conntrack wants to read
``pod/web-65ffbfbc85-bdtd5`` beside it. The book is built from the cluster state alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.cluster.state import ClusterState


@dataclass
class AddressBook:
    """IP -> name, and (IP, port, protocol) -> Service port name, for one lab."""

    hosts: dict[str, str] = field(default_factory=dict)
    services: dict[tuple[str, int, str], str] = field(default_factory=dict)
    node_ports: dict[tuple[int, str], str] = field(default_factory=dict)
    node_ips: set[str] = field(default_factory=set)

    def host(self, ip: str) -> str:
        """The name of whatever holds ``ip`` ("" when unknown)."""
        return self.hosts.get(ip, "")

    def name(self, ip: str, port: int = 0, protocol: str = "") -> str:
        """The best name for ``ip:port``: a Service port (ClusterIP, LB IP, external IP or a
        NodePort on a node), else the host holding the address."""
        proto = protocol.upper()
        if port and proto:
            svc = self.services.get((ip, port, proto))
            if svc:
                return f"service {svc}"
            if ip in self.node_ips or ip.startswith("127."):
                svc = self.node_ports.get((port, proto))
                if svc:
                    return f"{self.host(ip) or ip} nodePort of {svc}"
        return self.host(ip)

    def endpoint(self, ip: str, port: int, protocol: str = "") -> str:
        """``ip:port`` followed by its name in parentheses, when it has one."""
        label = self.name(ip, port, protocol)
        where = f"{ip}:{port}" if port else ip
        return f"{where} ({label})" if label else where


def address_book(state: ClusterState) -> AddressBook:
    book = AddressBook()
    ext = state.external
    book.hosts[ext.router_ip] = "external (router)"
    for name, ip in ext.clients.items():
        book.hosts[ip] = "external" if name == "external" else f"external/{name}"
    for server in state.lab.external_servers:
        book.hosts[server.address] = f"external server {server.name}"
    for node in state.nodes:
        book.hosts[node.ip] = f"node/{node.name}"
        book.hosts[node.gateway] = f"node/{node.name} cni0"
        book.node_ips |= {node.ip, node.gateway}
    for pod in state.pods:
        if pod.host_network:
            continue
        ns = "" if pod.namespace in ("default", "netlab") else f"{pod.namespace}/"
        book.hosts[pod.ip] = f"pod/{ns}{pod.name}"
    for svc in state.services:
        key = f"{svc.meta.namespace}/{svc.meta.name}"
        addresses = [a for a in (svc.cluster_ip,) if a and a != "None"]
        addresses += list(svc.external_ips) + list(svc.load_balancer_ingress)
        for p in svc.ports:
            spn = f"{key}:{p.name}" if p.name else key
            for a in addresses:
                book.services[(a, p.port, p.protocol.upper())] = spn
            if p.node_port:
                book.node_ports[(p.node_port, p.protocol.upper())] = spn
        for a in svc.load_balancer_ingress:
            book.hosts.setdefault(a, f"load balancer of {key}")
        if svc.cluster_ip and svc.cluster_ip != "None":
            book.hosts.setdefault(svc.cluster_ip, f"service {key}")
    return book
