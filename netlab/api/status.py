"""A live lab's state as users read it: :class:`LabStatus` for one lab, :class:`LabSummary` for
each lab that is up. Both are typed (the cluster's own objects) and turn into the JSON
``netlab status`` prints."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from netlab.cluster.state import ClusterState, ExternalWorld, Node, PodInfo
from netlab.scenario.k8s import Service

if TYPE_CHECKING:
    from netlab.lab.cloud import Backends
    from netlab.lab.lifecycle import Lab as LiveLab
    from netlab.lab.record import LabRecord


@dataclass
class LabSummary:
    """One lab that is up (or being built)."""

    name: str
    status: str  # "building" | "up"
    mode: str
    scenario: str
    nodes: int
    pods: int
    created: float

    @classmethod
    def of(cls, record: LabRecord) -> LabSummary:
        c = record.cluster
        return cls(
            record.name,
            record.status,
            record.mode,
            record.scenario,
            len(c.nodes),
            len(c.pods),
            record.created,
        )

    def to_data(self) -> dict[str, Any]:
        return {
            "lab": self.name,
            "status": self.status,
            "mode": self.mode,
            "scenario": self.scenario,
            "nodes": self.nodes,
            "pods": self.pods,
            "created": self.created,
        }


@dataclass
class LabStatus:
    """One live lab: where it came from, how it proxies, and what it holds."""

    name: str
    status: str
    scenario: str
    mode: str
    proxy: str  # the proxy as netlab describes it, e.g. "iptables (nft back end)"
    created: float
    state: ClusterState
    load_balancers: list[Backends] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)  # what still waits for time, in words

    @classmethod
    def of(cls, lab: LiveLab) -> LabStatus:
        from netlab.lab.changes import pending

        r = lab.record
        return cls(
            r.name,
            r.status,
            r.scenario,
            r.mode,
            lab.proxier.describe(),
            r.created,
            r.cluster,
            list(r.load_balancers),
            dict(r.timings),
            pending(lab, time.time()),
        )

    @property
    def nodes(self) -> list[Node]:
        return self.state.nodes

    @property
    def pods(self) -> list[PodInfo]:
        return self.state.pods

    @property
    def services(self) -> list[Service]:
        return self.state.services

    @property
    def external(self) -> ExternalWorld:
        return self.state.external

    @property
    def external_servers(self) -> dict[str, str]:
        return {s.name: s.address for s in self.state.lab.external_servers}

    def to_data(self) -> dict[str, Any]:
        """What ``netlab status LAB --json`` prints."""
        return {
            "lab": self.name,
            "status": self.status,
            "scenario": self.scenario,
            "mode": self.mode,
            "proxy": self.proxy,
            "nodes": [
                {
                    "name": n.name,
                    "ip": n.ip,
                    "podCIDR": n.pod_cidr,
                    "netns": n.netns,
                    "ready": n.ready,
                    "reachable": n.reachable,
                }
                for n in self.nodes
            ],
            "pods": [
                {
                    "namespace": p.namespace,
                    "name": p.name,
                    "node": p.node,
                    "ip": p.ip,
                    "ready": p.ready,
                    "terminating": p.terminating,
                    "netns": p.netns,
                }
                for p in self.pods
            ],
            "services": [_service_data(s) for s in self.services],
            "external": {
                "netns": self.external.netns,
                "clients": self.external.clients,
                "servers": self.external_servers,
            },
            "loadBalancers": [
                {
                    "address": b.address,
                    "service": b.service,
                    "nodes": list(b.nodes),
                    "health": b.health,
                }
                for b in self.load_balancers
            ],
            "timings": self.timings,
            "pending": self.pending,
        }


def _service_data(s: Service) -> dict[str, Any]:
    return {
        "namespace": s.meta.namespace,
        "name": s.meta.name,
        "type": s.type,
        "clusterIP": s.cluster_ip or None,
        "ports": [
            {
                "name": p.name,
                "port": p.port,
                "protocol": p.protocol,
                "targetPort": p.target_port,
                "nodePort": p.node_port or None,
            }
            for p in s.ports
        ],
    }
