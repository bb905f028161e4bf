"""A cluster that changes at random, and a fake ``iptables-restore``: for the tests that a chain
of partial syncs leaves a node exactly as one full sync of the final state would.

Every change replaces objects, never edits them in place, as the API server stores a new object
per update (the rule the proxiers' change tracker relies on). Services are drawn with the
features that make kube-proxy's rules differ (NodePorts, load balancers with source ranges,
external IPs shared between Services, traffic policies, affinity, several ports, UDP), and their
endpoints on both nodes, ready, terminating or not serving.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

from netlab.cluster.build import build_cluster
from netlab.cluster.state import ClusterState, Endpoint, EndpointPort, EndpointSlice
from netlab.proxy.servicemap import SERVICE_PROXY_NAME_LABEL
from netlab.scenario.k8s import ObjectMeta, Service, ServicePort
from netlab.scenario.labspec import LabSpec, default_external_clients
from netlab.scenario.model import Scenario

SHARED_EXTERNAL_IPS = ("192.168.99.11", "192.168.99.12")  # few, so Services share them
LB_IPS = ("192.168.100.1", "192.168.100.2", "192.168.100.3")
SOURCE_RANGES = ("203.0.113.0/25", "192.168.56.0/24", "198.51.100.7/32")


def base_state(name: str = "churn") -> ClusterState:
    """A two-node lab skeleton (kubernetes and kube-dns Services with their endpoints)."""
    lab = LabSpec(
        name=name, external_clients=default_external_clients("192.168.56.0/24"), client_pods=False
    )
    return build_cluster(Scenario(file=name, lab=lab))


class Churn:
    """Random Services and EndpointSlices added, changed and removed in ``state``."""

    def __init__(self, state: ClusterState, seed: int) -> None:
        self.state = state
        self.rng = random.Random(seed)
        self.serial = 0
        self.node_port = 30000

    def service(self) -> Service:
        rng = self.rng
        self.serial += 1
        kind = rng.choice(("ClusterIP", "ClusterIP", "NodePort", "LoadBalancer"))
        ports = []
        for name in rng.sample(("a", "b", "c"), rng.choice((1, 1, 2))):
            node_port = 0
            if kind != "ClusterIP":
                self.node_port += 1
                node_port = self.node_port
            proto = rng.choice(("TCP", "TCP", "UDP"))
            ports.append(ServicePort(rng.choice((80, 81)), proto, name, 8080, node_port))
        local = kind != "ClusterIP" and rng.random() < 0.4
        svc = Service(
            meta=ObjectMeta(
                name=f"s{self.serial}", namespace=rng.choice(("default", "other", "zed"))
            ),
            ports=ports,
            type=kind,
            selector={"app": f"s{self.serial}"},
            cluster_ip=f"10.96.{self.serial // 200 + 1}.{self.serial % 200 + 10}",
            external_ips=rng.sample(SHARED_EXTERNAL_IPS, rng.choice((0, 0, 1, 2))),
            session_affinity=rng.choice(("None", "None", "ClientIP")),
            session_affinity_timeout=rng.choice((10800, 60)),
            external_traffic_policy="Local"
            if local
            else ("Cluster" if kind != "ClusterIP" else ""),
            internal_traffic_policy=rng.choice(("Cluster", "Cluster", "Local")),
        )
        if kind == "LoadBalancer":
            svc.load_balancer_ingress = [rng.choice(LB_IPS)]
            svc.load_balancer_source_ranges = rng.sample(SOURCE_RANGES, rng.choice((0, 1, 2)))
            if local:
                self.node_port += 1
                svc.health_check_node_port = self.node_port
        return svc

    def slices(self, svc: Service) -> list[EndpointSlice]:
        rng = self.rng
        key = f"{svc.meta.namespace}/{svc.meta.name}"
        ports = [EndpointPort(p.name, rng.choice((8080, 8081)), p.protocol) for p in svc.ports]
        out = []
        for suffix in ("x", "y")[: rng.choice((0, 1, 1, 1, 2))]:
            endpoints = []
            for _ in range(rng.choice((0, 1, 2, 3))):
                node = rng.choice((1, 2))
                state = rng.choice(("ready", "ready", "ready", "terminating", "not-serving"))
                endpoints.append(
                    Endpoint(
                        address=f"10.244.{node}.{rng.randrange(10, 30)}",
                        node_name=f"node-{node}",
                        pod=f"{svc.meta.namespace}/pod-{rng.randrange(100)}",
                        ready=state == "ready",
                        serving=state != "not-serving",
                        terminating=state != "ready",
                    )
                )
            out.append(
                EndpointSlice(
                    svc.meta.namespace, f"{svc.meta.name}-{suffix}", key, ports, endpoints
                )
            )
        return out

    def add(self) -> None:
        svc = self.service()
        self.state.services.append(svc)
        self.state.slices.extend(self.slices(svc))

    def _mine(self) -> list[Service]:
        return [s for s in self.state.services if s.meta.name.startswith("s")]

    def step(self) -> str:
        """One random change; returns what it was."""
        rng, state = self.rng, self.state
        mine = self._mine()
        what = rng.choice(
            ("add", "remove", "ports", "policy", "slices", "slice", "label", "nothing")
            if mine
            else ("add",)
        )
        if what == "add":
            self.add()
            return what
        svc = rng.choice(mine)
        key = f"{svc.meta.namespace}/{svc.meta.name}"
        i = state.services.index(svc)
        if what == "remove":
            del state.services[i]
            state.slices = [sl for sl in state.slices if sl.service != key]
        elif what == "ports":
            fresh = self.service()
            state.services[i] = replace(svc, ports=fresh.ports, type=fresh.type)
        elif what == "policy":
            state.services[i] = replace(
                svc,
                internal_traffic_policy=rng.choice(("Cluster", "Local")),
                session_affinity=rng.choice(("None", "ClientIP")),
                external_ips=rng.sample(SHARED_EXTERNAL_IPS, rng.choice((0, 1))),
            )
        elif what == "slices":
            state.slices = [sl for sl in state.slices if sl.service != key] + self.slices(svc)
        elif what == "slice":
            mine_slices = [j for j, sl in enumerate(state.slices) if sl.service == key]
            if mine_slices:
                j = rng.choice(mine_slices)
                drawn = self.slices(svc)
                if drawn:
                    state.slices[j] = replace(drawn[0], name=state.slices[j].name)
                else:
                    del state.slices[j]
        elif what == "label":
            labels = dict(svc.meta.labels)
            if SERVICE_PROXY_NAME_LABEL in labels:
                del labels[SERVICE_PROXY_NAME_LABEL]
            else:
                labels[SERVICE_PROXY_NAME_LABEL] = "other-proxy"
            state.services[i] = replace(svc, meta=replace(svc.meta, labels=labels))
        elif what == "nothing":
            # A new object equal to the old: the API server's no-op update, no change to sync.
            state.services[i] = replace(svc)
        return what


class FakeIptables:
    """The tables ``iptables-restore --noflush`` leaves in one namespace. A declared chain is
    made or flushed; ``-A`` appends, ``-I C N`` inserts at N, ``-D C RULE`` deletes that rule,
    ``-X`` deletes a chain. What iptables refuses fails the whole transaction: a rule in or a
    jump to a chain that does not exist, deleting a chain that is not empty or still jumped to,
    deleting a rule that is not there."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, list[str]]] = {}

    def restore(self, text: str) -> None:
        tables = {t: {c: list(r) for c, r in chains.items()} for t, chains in self.tables.items()}
        table: dict[str, list[str]] = {}
        for line in text.splitlines():
            if line.startswith("*"):
                table = tables.setdefault(line[1:], {})
            elif line.startswith(":"):
                table[line[1:].split(" ", 1)[0]] = []
            elif line.startswith(("-A ", "-I ", "-D ")):
                op, chain, rest = line.split(" ", 2)
                if op == "-I":
                    pos, _, rest = rest.partition(" ")
                rules = table.setdefault(chain, []) if _builtin(chain) else table.get(chain)
                assert rules is not None, f"no chain {chain}: {line}"
                target = re.search(r"-[jg] (\S+)", rest)
                if target and target[1].startswith("KUBE-"):
                    assert target[1] in table, f"no chain {target[1]}: {line}"
                if op == "-A":
                    rules.append(rest)
                elif op == "-I":
                    assert 1 <= int(pos) <= len(rules) + 1, f"no position {pos}: {line}"
                    rules.insert(int(pos) - 1, rest)
                else:
                    assert rest in rules, f"no such rule: {line}"
                    rules.remove(rest)
            elif line.startswith("-X "):
                chain = line[3:]
                assert table.get(chain) == [], f"chain {chain} missing or not empty"
                jumps = [
                    r
                    for rs in table.values()
                    for r in rs
                    if re.search(rf"-[jg] {chain}$|-[jg] {chain} ", r)
                ]
                assert not jumps, f"chain {chain} is still jumped to: {jumps[0]}"
                del table[chain]
            else:
                assert line == "COMMIT", line
        self.tables = tables


def _builtin(chain: str) -> bool:
    return chain.isupper() and not chain.startswith("KUBE-")
