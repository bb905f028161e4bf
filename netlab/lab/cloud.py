"""The stand-in cloud provider: LoadBalancer addresses and where its load balancer sends them.

A cloud load balancer sends a Service's traffic to nodes, and for externalTrafficPolicy: Local
only to the nodes whose ``healthCheckNodePort`` answers 200 (kube-proxy answers 200 where the
Service has local endpoints, 503 elsewhere); for Cluster policy every node takes traffic. Here
the load balancer is the external namespace's routing table: one ECMP route per address over the
chosen nodes, decided by real HTTP health checks sent from outside, like a cloud's.
"""

from __future__ import annotations

from dataclasses import dataclass

from netlab.cluster.state import ClusterState
from netlab.kernel import routes
from netlab.traffic import probe


@dataclass(frozen=True)
class Backends:
    address: str
    service: str
    nodes: tuple[str, ...]
    health: dict[str, int]  # node -> HTTP status of its health check (Local policy only)


def program(state: ClusterState) -> list[Backends]:
    """Health-check the nodes and route every LoadBalancer address to the healthy ones."""
    out: list[Backends] = []
    for svc in state.services:
        if svc.type != "LoadBalancer" or not svc.load_balancer_ingress:
            continue
        health: dict[str, int] = {}
        nodes = [n.name for n in state.nodes]
        if svc.external_traffic_policy == "Local" and svc.health_check_node_port:
            answers = probe.http_get(
                state.external.netns,
                [(n.ip, svc.health_check_node_port) for n in state.nodes],
                "/",
            )
            health = {n.name: a.status for n, a in zip(state.nodes, answers, strict=True)}
            nodes = [n for n in nodes if health[n] == 200]
        gateways = [state.node(n).ip for n in nodes]
        for address in svc.load_balancer_ingress:
            routes.set_nexthops(state.external.netns, f"{address}/32", gateways)
            out.append(
                Backends(address, f"{svc.meta.namespace}/{svc.meta.name}", tuple(nodes), health)
            )
    return out


def withdraw(state: ClusterState, addresses: list[str]) -> None:
    """Addresses the provider no longer serves (their Service is gone or changed type)."""
    for address in addresses:
        routes.set_nexthops(state.external.netns, f"{address}/32", [])
