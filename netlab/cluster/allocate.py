"""What the API server allocates for a Service: its ClusterIP, NodePorts, health-check port, and
(as the stand-in cloud provider) its load-balancer address. Used when a lab is built and when a
Service is applied to a live one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from netlab.cluster.ipam import LoadBalancerIPAM, NodePortAllocator, ServiceIPAM
from netlab.scenario.k8s import Service
from netlab.scenario.labspec import LabSpec


@dataclass
class Allocators:
    ips: ServiceIPAM
    ports: NodePortAllocator
    lbs: LoadBalancerIPAM

    @classmethod
    def fresh(cls, lab: LabSpec) -> Allocators:
        return cls(
            ServiceIPAM(lab.network.service_cidr), NodePortAllocator(), LoadBalancerIPAM(lab)
        )

    @classmethod
    def holding(cls, lab: LabSpec, services: list[Service]) -> Allocators:
        """Allocators of a running cluster: everything its Services hold is taken."""
        alloc = cls.fresh(lab)
        for svc in services:
            alloc.reserve(svc)
            for ip in svc.load_balancer_ingress:
                alloc.lbs.reserve(ip)
        return alloc

    def reserve(self, svc: Service) -> None:
        """Take what ``svc`` asks for by value (or holds), before anything is allocated."""
        if svc.cluster_ip and svc.cluster_ip != "None":
            self.ips.reserve(svc.cluster_ip)
        for p in svc.ports:
            if p.node_port:
                self.ports.reserve(p.node_port)
        if svc.health_check_node_port:
            self.ports.reserve(svc.health_check_node_port)
        if svc.type == "LoadBalancer" and svc.load_balancer_ip:
            self.lbs.reserve(svc.load_balancer_ip)

    def release(self, svc: Service) -> None:
        """A deleted Service's addresses and ports become free again."""
        self.ips.used.discard(svc.cluster_ip)
        for p in svc.ports:
            self.ports.used.discard(p.node_port)
        self.ports.used.discard(svc.health_check_node_port)
        for ip in svc.load_balancer_ingress:
            self.lbs.used.discard(ip)

    def allocate(self, svc: Service, before: Service | None = None) -> Service:
        """``svc`` with everything allocated. ``before`` is the Service it updates: as the API
        server's ``patchAllocatedValues``, an update keeps the ClusterIP, the NodePort of each
        port number and protocol, the health-check port and the load-balancer address it had,
        where the new spec still needs them and does not set them itself."""
        key = f"{svc.meta.namespace}/{svc.meta.name}"
        cluster_ip = svc.cluster_ip
        if svc.type == "ExternalName":
            cluster_ip = ""
        elif not cluster_ip:
            kept = before.cluster_ip if before and before.type != "ExternalName" else ""
            cluster_ip = kept or self.ips.allocate(key)
        wants_node_ports = svc.type == "NodePort" or (
            svc.type == "LoadBalancer" and svc.allocate_load_balancer_node_ports
        )
        had = {(p.port, p.protocol): p.node_port for p in before.ports} if before else {}
        new_ports = []
        # As findRequestedNodePort: a port number's NodePort requested on any of its ports wins.
        by_number = {p.port: p.node_port for p in reversed(svc.ports) if p.node_port}
        for p in svc.ports:
            node_port = p.node_port
            if wants_node_ports and not node_port:
                node_port = had.get((p.port, p.protocol), 0)
            if wants_node_ports and not node_port:
                # A Service reuses one NodePort for the same port number over TCP and UDP.
                node_port = by_number.get(p.port) or self.ports.allocate(f"{key}/{p.name}/{p.port}")
            if not wants_node_ports:
                node_port = 0
            by_number.setdefault(p.port, node_port)
            new_ports.append(replace(p, node_port=node_port))
        hc = svc.health_check_node_port
        ingress: list[str] = []
        if svc.type == "LoadBalancer":
            if svc.external_traffic_policy == "Local" and not hc:
                hc = (before.health_check_node_port if before else 0) or self.ports.allocate(
                    f"{key}/health-check"
                )
            # The stand-in cloud provider: the requested address, the one it had, else the
            # pool's next free one.
            kept_lb = (
                before.load_balancer_ingress[0] if before and before.load_balancer_ingress else ""
            )
            ingress = [svc.load_balancer_ip or kept_lb or self.lbs.allocate()]
        return replace(
            svc,
            cluster_ip=cluster_ip,
            ports=new_ports,
            health_check_node_port=hc,
            load_balancer_ingress=ingress,
            meta=replace(svc.meta),
        )
